"""Files, read and written safely. Writes are atomic: a temporary file in the same folder, then a rename, so a
write that fails part-way (a full disk, a lost permission) or a process killed mid-write leaves the file's previous
version intact. Checkpoints are read as data (torch.load with weights_only=True): a file from someone else never
runs code here."""

from __future__ import annotations

import fnmatch
import json
import os
import pickle
import re
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from resnet_repro.errors import UserError

TMP_SUFFIX = ".tmp"  # a temporary file is .<name>.<random>.tmp beside <name>


class WriteFailed(UserError):
    """A write that did not complete; the file's previous version, if there was one, is untouched."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        kept = "its previous version is intact" if path.exists() else "nothing was written in its place"
        super().__init__(f"could not write {path} ({reason}); {kept}. Free space or fix permissions, then rerun")
        self.path = path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary path beside `path`, fsync it, then rename it over `path`.

    Raises WriteFailed (naming `path`) when any step fails; the temporary file is removed then.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        tmp.chmod(0o666 & ~_umask())  # mkstemp creates 0600; give the file the permissions open() would
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as err:
        raise WriteFailed(path, err) from err
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def write_json(path: str | Path, data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


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


def save_tensors(path: str | Path, data: dict[str, Any]) -> None:
    """torch.save, atomically."""
    atomic_write(path, lambda tmp: torch.save(data, tmp))
