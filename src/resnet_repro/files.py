"""Files, read and written safely. Every write goes through one writer, atomic_write: a temporary file in the same
folder, then a rename, so a write that fails part-way (a full disk, a lost permission) or a process killed mid-write
leaves the file's previous version intact; below the folder a command owns it never follows a link. Checkpoints
are read as data (torch.load with weights_only=True): a file from someone else never runs code here."""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import io
import json
import logging
import os
import pickle
import re
import secrets
import stat
import threading
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from resnet_repro.errors import UserError, escaped

TMP_SUFFIX = ".tmp"  # a temporary file is .<name>.<random>.tmp beside <name>


class WriteFailed(UserError):
    """A write that did not complete; the file's previous version, if there was one, is untouched."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        reason = getattr(cause, "strerror", None) or (str(cause).splitlines() or [""])[0] or type(cause).__name__
        kept = "its previous version is intact" if path.exists() else "nothing was written in its place"
        super().__init__(f"could not write {path} ({reason}); {kept}. Free space or fix permissions, then rerun")
        self.path = path


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], root: str | Path | None = None) -> None:
    """The one writer: render the file with `write(buffer)` in memory, write it to a temporary file beside `path`,
    fsync it, then rename it over `path`.

    `root`: the folder the command owns (a run directory, a report folder). Each folder from `root` (itself
    included) down to the file's is opened through directory descriptors without following links, at this very
    write (created when missing), so a link at any level below `root`, even one swapped in mid-run, is refused and
    nothing is written through it. Without `root` only the file itself is never written through a link. Raises
    WriteFailed naming `path` ("No space left on device" when the disk is full); the temporary file is removed then.
    """
    path = Path(path)
    buffer = io.BytesIO()
    try:
        write(buffer)
    except Exception as err:
        raise WriteFailed(path, err) from err
    folder, tmp = None, None
    try:
        folder = open_folder(path.parent, root)
        tmp = f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
        write_new_file(folder, tmp, buffer.getbuffer())
        os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)  # a link there is replaced, not followed
        tmp = None
    except Exception as err:
        raise WriteFailed(path, err) from err
    finally:
        if folder is not None:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=folder)
            os.close(folder)


def write_new_file(folder: int, name: str, data: memoryview) -> None:
    """Create the file `name` in the folder open as `folder` (never over an existing file or a link), write `data`
    and fsync it; a full disk raises OSError ENOSPC here ("No space left on device")."""
    descriptor = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=folder)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class LinkRefused(OSError):
    """A folder below a writer's root that is a symbolic link (or not a folder)."""


def open_folder(folder: Path, root: str | Path | None, create: bool = True) -> int:
    """A descriptor of `folder`: below `root` each level opened with O_NOFOLLOW from its parent's descriptor
    (created when missing and `create`); LinkRefused for a link at any level, `root` itself included."""
    flags = os.O_RDONLY | os.O_DIRECTORY
    if root is None:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return os.open(folder, flags)
    root = Path(root)
    parts = folder.relative_to(root).parts  # ValueError: a caller's root that does not hold the file
    if create:
        root.mkdir(parents=True, exist_ok=True)
    descriptor, where = None, root
    try:
        descriptor = os.open(root, flags | os.O_NOFOLLOW)
        for part in parts:
            where = where / part
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=descriptor)
            child = os.open(part, flags | os.O_NOFOLLOW, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = child
    except OSError as err:
        if descriptor is not None:
            os.close(descriptor)
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            problem = f"{where} is a symbolic link or not a folder; nothing is written through it"
            raise LinkRefused(err.errno, problem) from None
        raise
    return descriptor


def remove_file(path: Path, root: str | Path) -> bool:
    """Remove the file `path` below `root` (never following a link on the way; a link there is removed itself,
    not its target). False when there was none."""
    try:
        folder = open_folder(path.parent, root, create=False)
    except FileNotFoundError:
        return False
    try:
        os.unlink(path.name, dir_fd=folder)
    except FileNotFoundError:
        return False
    finally:
        os.close(folder)
    return True


def interrupted_writes(folder: Path, names: Iterable[str], remove: bool) -> list[str]:
    """One line for each temporary file in `folder` (not below it) that a killed process left mid-write of a file
    named by one of the glob patterns `names`: the caller's own files only (removed when `remove`: only a process
    that holds the folder may, since a live writer's file looks the same)."""
    lines = []
    patterns = list(names)
    for tmp in sorted(Path(folder).glob(f".*{TMP_SUFFIX}")):
        target = tmp.parent / tmp.name[1:].rsplit(".", 2)[0]
        if not tmp.is_file() or tmp.is_symlink() or not any(fnmatch.fnmatch(target.name, p) for p in patterns):
            continue
        done = "removed it" if remove else "left it"
        lines.append(
            f"an earlier write of {target} was interrupted ({tmp.name}, {tmp.stat().st_size} bytes); {done}; "
            + ("the previous version is intact" if target.exists() else "there was no previous version")
        )
        if remove:
            tmp.unlink(missing_ok=True)
    return lines


class CheckpointError(UserError):
    """A checkpoint that cannot be used: missing, unreadable, or holding more than tensors and plain data."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint (or any torch.save file) read as data: torch.load(weights_only=True), on the CPU.

    Raises CheckpointError naming the file when it is missing, truncated or not a torch file, and when it holds
    objects other than tensors and plain containers (a pickle payload): those are never unpickled, since
    unpickling them could run code.
    """
    path = Path(path)
    if path.is_symlink():
        raise CheckpointError(f"{path} is a symbolic link (to {os.readlink(path)}); give the file itself")
    try:  # never blocks on a FIFO, never follows a link swapped in meanwhile
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        raise CheckpointError(f"checkpoint {path} does not exist (or is not a file)") from None
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise CheckpointError(f"checkpoint {path} does not exist (or is not a file)")
        return checkpoint_data(path, file)


def checkpoint_data(path: Path, file: Any) -> dict[str, Any]:
    """torch.load of an open file, as data only (see load_checkpoint)."""
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = next((line.strip() for line in str(err).splitlines() if "unsupported global" in line.lower()), None)
        if found:  # a class or function to call on unpickling: what a payload needs, and no checkpoint has
            raise CheckpointError(
                f"{path} holds objects other than tensors and plain data ({found.rstrip('.')[:160]}); it was not "
                "loaded, since unpickling them could run code. Use checkpoints written by resnet-repro"
            ) from None
        raise CheckpointError(f"{path} is not a readable checkpoint (its pickle is damaged or not torch's)") from None
    except Exception as err:  # truncated, not a zip/pickle, unreadable
        first = str(err).splitlines()[0][:160] if str(err) else ""
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(err).__name__}: {first})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a checkpoint (a dict)")
    return data


def write_json(path: str | Path, data: Any, root: str | Path | None = None) -> None:
    """Write `data` as indented JSON, atomically (atomic_write, below `root` when given)."""
    atomic_write(path, lambda file: file.write((json.dumps(data, indent=2, default=str) + "\n").encode()), root)


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")  # cifar10, my-digits.v2: never a path


def file_name(name: object) -> bool:
    """Whether `name` (a dataset's, from a config or a record) may become part of a file name: letters, digits, _,
    - and inner dots, at most 64 characters; no separator, no '..'."""
    return isinstance(name, str) and len(name) <= 64 and NAME.fullmatch(name) is not None


JSON_LIMIT = 64 * 2**20  # bytes: no record this project writes comes near it


def read_json(path: str | Path) -> Any | None:
    """The JSON in `path`, or None when it is missing, not a regular file (a FIFO would block the reader, a link
    may point anywhere), larger than JSON_LIMIT, or not valid JSON (a truncated leftover is never trusted)."""
    try:
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        descriptor = os.open(path, flags)
    except OSError:
        return None
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or info.st_size > JSON_LIMIT:  # a directory, a FIFO, a device
        os.close(descriptor)
        return None
    with os.fdopen(descriptor, "rb") as file:
        try:
            return json.loads(file.read())
        except (OSError, ValueError, RecursionError):
            return None


def save_tensors(path: str | Path, data: dict[str, Any], root: str | Path | None = None) -> None:
    """torch.save, atomically (atomic_write, below `root` when given)."""
    atomic_write(path, lambda file: torch.save(data, file), root)


HELD = "resnet-repro-held"  # TensorBoard's writer opens `HELD://<token>/<file name>` (HeldFolderFiles)
_HELD_FOLDERS: dict[str, tuple[int, Path]] = {}  # token -> (descriptor, folder) of a folder a live writer holds
_WARNED: set[tuple[str, str]] = set()  # (token, file name) whose refused write was reported
_HELD_LOCK = threading.Lock()  # a token's lookup and its open, against its release (a finalizer, any thread)
log = logging.getLogger(__name__)


class HeldFolderFiles:
    """The file system TensorBoard's writer is given for a folder this process opened (open_folder) and holds.
    TensorBoard reopens its event file by path at every flush; here each of those opens is made from the folder's
    descriptor with O_NOFOLLOW, the first write creates the file (never over an existing file or a link), and an
    append is refused unless the file is the one regular file of its name (no hard link to another file). A refused
    or failed write is one warning and its events are dropped (it happens in TensorBoard's writer thread, where an
    exception would only print a traceback); the run's own records are written as ever."""

    def makedirs(self, path: bytes | str) -> None:
        """The held folder exists: nothing to make."""

    def write(self, filename: bytes | str, content: bytes | str, binary_mode: bool = False) -> None:
        self._write(filename, content, os.O_EXCL)

    def append(self, filename: bytes | str, content: bytes | str, binary_mode: bool = False) -> None:
        self._write(filename, content, os.O_APPEND)

    def _write(self, filename: bytes | str, content: bytes | str, mode: int) -> None:
        token, _, name = os.fsdecode(filename).removeprefix(f"{HELD}://").partition("/")
        data = content if isinstance(content, bytes) else content.encode()
        with _HELD_LOCK:
            folder, path = _HELD_FOLDERS.get(token, (None, Path(token)))
            try:
                if folder is None or name in ("", ".", "..") or "/" in name:
                    raise LinkRefused(errno.EBADF, "its writer no longer holds the folder")
                flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | mode
                descriptor = os.open(name, flags, 0o666, dir_fd=folder)
                try:
                    info = os.fstat(descriptor)
                    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                        raise LinkRefused(errno.EPERM, "not a regular file of its own (a hard link or a device)")
                    view = memoryview(data)
                    while view:
                        view = view[os.write(descriptor, view) :]
                finally:
                    os.close(descriptor)
            except OSError as err:
                if (token, name) not in _WARNED:  # once per file: TensorBoard flushes every few seconds
                    _WARNED.add((token, name))
                    log.warning("%s", escaped(f"TensorBoard events not written to {path / name}: {err.strerror}"))


def summary_writer(folder: Path, root: str | Path, **kwargs: Any) -> Any:
    """A TensorBoard SummaryWriter (`kwargs` are its own) writing its event files into `folder` below `root`: the
    folder is made and opened now without following a link (LinkRefused otherwise) and held while the writer
    lives (released when it is garbage-collected: a writer may be reopened after close, as Lightning does); every
    write of TensorBoard's goes through HeldFolderFiles. WriteFailed when the folder cannot be made or opened (a
    link at any level). Where TensorBoard writes through TensorFlow's own file system (TensorFlow installed) or the
    system has no dir_fd, it is given the path, with a warning."""
    from tensorboard.compat import tf
    from torch.utils.tensorboard import SummaryWriter

    try:
        descriptor = open_folder(folder, root)
    except OSError as err:
        raise WriteFailed(folder, err) from err
    gfile = tf.io.gfile
    if gfile.__name__ != "tensorboard.compat.tensorflow_stub.io.gfile" or os.open not in os.supports_dir_fd:
        os.close(descriptor)
        log.warning("TensorBoard writes %s by its path here (TensorFlow's file system, or no dir_fd)", folder)
        try:
            return SummaryWriter(log_dir=str(folder), **kwargs)
        except OSError as err:
            raise WriteFailed(folder, err) from err
    gfile.register_filesystem(HELD, HeldFolderFiles())
    token = secrets.token_hex(8)  # never reused, unlike a descriptor's number
    with _HELD_LOCK:
        _HELD_FOLDERS[token] = (descriptor, folder)
    try:
        writer = SummaryWriter(log_dir=f"{HELD}://{token}", **kwargs)
    except BaseException as err:
        release_folder(token)
        if isinstance(err, OSError):
            raise WriteFailed(folder, err) from err
        raise
    weakref.finalize(writer, release_folder, token)
    return writer


def release_folder(token: str) -> None:
    """Close the folder a summary_writer held; later writes for it are refused (HeldFolderFiles)."""
    with _HELD_LOCK:
        descriptor, _ = _HELD_FOLDERS.pop(token, (None, None))
        if descriptor is not None:
            os.close(descriptor)
