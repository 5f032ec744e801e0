"""One process per run directory: an OS-level lock on `<run>/.lock`, held from the recipe check to results.json
(a report holds its own folder the same way while it writes; `.lock` says what its holder does there).

On Linux it is an open-file-description (OFD) record lock: the kernel drops it when the process ends, however it
ends (SIGKILL included); it is tied to the open file, not the process, so reading `.lock` elsewhere in the same
process never drops it; and the Linux NFS client passes it to the server, so processes on several machines that
share an NFS (v4, or v3 with lockd) export see each other's locks. Other systems fall back to flock(2). The file
holds who took the lock (host, pid, since) for the message of whoever finds it held; the file itself stays, since
deleting a lock file while others may open it would let two processes hold two different files.

`hold` takes the lock and, while it is held, copies the process's log to `<run>/train.log`: only the holder writes
in the run directory. Neither `.lock` nor `train.log` is opened through a symbolic link. Deleting or replacing
`.lock` under a running run would let a second process lock a new file; the holder checks that its file is still
the one at `.lock` (same inode) every few iterations and before each write, and stops (LockLost) if not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import stat
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from resnet_repro.errors import UserError, escaped
from resnet_repro.files import read_json
from resnet_repro.runs.layout import LOCK, RUN_LOG

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # as conf/hydra/job_logging/console.yaml
_OFD = hasattr(fcntl, "F_OFD_SETLK")  # Linux 3.15+
_NO_LOCKS = {errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL}  # a filesystem without file locks
FOLDER_ONLY = getattr(os, "O_PATH", os.O_RDONLY)  # a folder opened only to open files in it (Linux: no read needed)
_HELD: dict[Path, RunLock] = {}  # the run directories this process holds
TRAINING = "training it"  # what the holder of a run directory does there (a report's holder says otherwise)


class RunHeldError(UserError):
    """The folder is held by another process (it trains the run, or writes a report there); this one leaves it
    alone. The message says what the holder does, as the holder recorded it in `.lock`."""

    def __init__(self, run_dir: Path, holder: dict[str, Any]) -> None:
        self.run_dir, self.holder = run_dir, holder
        doing = holder.get("doing") if isinstance(holder.get("doing"), str) else TRAINING
        super().__init__(
            f"{run_dir} is held by another process ({holder_text(holder)}), which is {escaped(doing)}; nothing "
            f"was changed there. Once that process ends, run the same command again"
            + (": it resumes or skips the run" if doing == TRAINING else "")
        )


class LocksUnsupported(UserError):
    """The folder's file system takes no file locks."""


class LockLost(UserError):  # noqa: N818
    """This process's `.lock` was deleted or replaced while it held the run: another process may hold it now. No
    process is sure to finish the run, so a sweep counts it as stopped (a failure), never as held."""

    def __init__(self, run_dir: Path) -> None:
        path = Path(run_dir) / LOCK
        holder = _read_holder(path) if path.is_file() and not path.is_symlink() else {}
        super().__init__(
            f"{path} was deleted or replaced while this process held the run (never delete a run's .lock: the "
            f"kernel releases it when its process ends); this process stopped without writing more, since another "
            f"process may hold the run now" + (f" ({holder_text(holder)})" if holder else "")
        )


def holder_text(holder: dict[str, Any]) -> str:
    """'host H, pid P, since T' for a holder record (what the holder wrote in `.lock`, escaped: another process's
    file may hold anything)."""
    return escaped(f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, since {holder.get('since', '?')}")


def _flock_struct(kind: int) -> bytes:
    # struct flock {short l_type, l_whence; off_t l_start, l_len; pid_t l_pid} on Linux; the whole file, pid 0
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, 0, 0, 0)


def _try_lock(fd: int, path: Path) -> bool:
    """Take the exclusive lock on `fd` (the file `path`) without waiting; False when another open file holds it.
    A filesystem without lock support is a UserError naming it."""
    try:
        if _OFD:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock_struct(fcntl.F_WRLCK))
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        if err.errno in _NO_LOCKS:
            raise LocksUnsupported(
                f"cannot lock {path}: its filesystem does not support file locks ({os.strerror(err.errno)}); "
                "train in an output_root on a local disk or a filesystem with locks (README: several processes)"
            ) from None
        raise
    return True


def _read_holder(path: Path) -> dict[str, Any]:
    """What the holder wrote in `.lock`; empty while it is being written (or when it holds anything else)."""
    found = read_json(path)
    return found if isinstance(found, dict) else {}


def holder(run_dir: Path) -> dict[str, Any] | None:
    """Who holds `run_dir` now ({host, pid, since}), or None when no process does. Takes no lock on Linux (it
    asks the kernel, F_OFD_GETLK), so a process starting the run at this moment never finds it held by the asker.
    """
    path = Path(run_dir) / LOCK
    try:
        fd = _open_regular(path, os.O_RDONLY)
    except (OSError, UserError):  # none, a symbolic link or a FIFO: no lock of this project's
        return None
    try:
        if _OFD:
            answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock_struct(fcntl.F_WRLCK))
            held = struct.unpack("hhqqi4x", answer)[0] != fcntl.F_UNLCK
        else:
            held = not _try_lock(fd, path)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return _read_holder(path) if held else None


class RunLock:
    """The lock of one run directory (or a report's folder: `doing` says what its holder does there, for the message
    of whoever finds it held), taken by `acquire` (or `with`) and released on `release` or process end."""

    def __init__(self, run_dir: Path, doing: str = TRAINING) -> None:
        self.path = Path(run_dir) / LOCK
        self.doing = doing
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, creating the directory and `.lock` when new; RunHeldError naming the holder if held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:  # the folder opened once, never through a link: one swapped in after a caller's check is refused too
            folder = os.open(self.path.parent, FOLDER_ONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENOTDIR):
                where = self.path.parent
                raise UserError(f"{where} is a symbolic link or not a folder: give a folder of its own") from None
            raise
        try:
            fd = _open_regular(self.path, os.O_RDWR | os.O_CREAT, folder)
        finally:
            os.close(folder)
        try:
            held = not _try_lock(fd, self.path)
        except BaseException:
            os.close(fd)
            raise
        if held:
            os.close(fd)
            raise RunHeldError(self.path.parent, _read_holder(self.path))
        since = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        me = {"host": socket.gethostname(), "pid": os.getpid(), "since": since, "doing": self.doing}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd
        _HELD[self.path.parent.resolve()] = self

    def still_held(self) -> bool:
        """Whether `.lock` is still this lock's file (not deleted, not replaced by another file or a link)."""
        if self._fd is None:
            return False
        try:
            now = os.lstat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(self._fd)
        return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self) -> None:
        if self._fd is not None:
            _HELD.pop(self.path.parent.resolve(), None)
            os.close(self._fd)  # closing the last descriptor of the open file drops its lock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_held(run_dir: Path) -> None:
    """Raise LockLost when this process holds `run_dir` but its `.lock` was deleted or replaced; a directory this
    process does not hold (a DDP rank other than 0) passes."""
    lock = _HELD.get(Path(run_dir).resolve())
    if lock is not None and not lock.still_held():
        raise LockLost(run_dir)


def _open_regular(path: Path, flags: int, folder: int | None = None) -> int:
    """A descriptor of the regular file `path`, opened with `flags` (O_CREAT creates it), by its name in the open
    `folder` when given: a symbolic link, a FIFO or any other kind of file there is refused with one line (a FIFO
    would block the open or every write)."""
    try:
        name = path.name if folder is not None else path
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666, dir_fd=folder)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UserError(f"{path} is a symbolic link; remove it (nothing was written)") from None
        if err.errno in (errno.ENXIO, errno.EISDIR):  # a FIFO nobody reads (opened for writing), a folder
            raise UserError(f"{path} is not a regular file; remove it (nothing was written)") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:  # a hard link would let the holder overwrite another file
        os.close(fd)
        raise UserError(f"{path} is not a regular file (a FIFO, a hard link); remove it (nothing was written)")
    return fd


def _open_log(path: Path) -> logging.Handler:
    """A log handler appending to `path`, never through a symbolic link, never blocking on a FIFO."""
    fd = _open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    return logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))


@contextlib.contextmanager
def hold(run_dir: Path, is_holder: bool = True) -> Iterator[None]:
    """Hold `run_dir` (RunHeldError when another process does) with the log copied to its train.log; a process
    that is not the holder (a DDP rank other than 0) takes neither."""
    if not is_holder:
        yield
        return
    with RunLock(run_dir):
        handler = _open_log(Path(run_dir) / RUN_LOG)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(handler)
        try:
            yield
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
