"""One process per run directory: an OS-level lock on `<run>/.lock`, held from the recipe check to results.json.

On Linux it is an open-file-description (OFD) record lock: the kernel drops it when the process ends, however it
ends (SIGKILL included); it is tied to the open file, not the process, so reading `.lock` elsewhere in the same
process never drops it; and the Linux NFS client passes it to the server, so processes on several machines that
share an NFS (v4, or v3 with lockd) export see each other's locks. Other systems fall back to flock(2). The file
holds who took the lock (host, pid, since) for the message of whoever finds it held; the file itself stays, since
deleting a lock file while others may open it would let two processes hold two different files.

`hold` takes the lock and, while it is held, copies the process's log to `<run>/train.log`: only the holder writes
in the run directory.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from resnet_repro.errors import UserError

LOCK = ".lock"
RUN_LOG = "train.log"
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # as conf/hydra/job_logging/console.yaml
_OFD = hasattr(fcntl, "F_OFD_SETLK")  # Linux 3.15+


class RunHeldError(UserError):
    """The run directory is held by another process (that process trains it; this one leaves it alone)."""

    def __init__(self, run_dir: Path, holder: dict[str, Any]) -> None:
        self.run_dir, self.holder = run_dir, holder
        super().__init__(
            f"{run_dir} is held by another process ({describe(holder)}), which is training it; nothing was "
            f"changed there. Once that process ends, the same command resumes or skips the run"
        )


def describe(holder: dict[str, Any]) -> str:
    """'host H, pid P, since T' for a holder record (what the holder wrote in `.lock`)."""
    return f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, since {holder.get('since', '?')}"


def _flock_struct(kind: int) -> bytes:
    # struct flock {short l_type, l_whence; off_t l_start, l_len; pid_t l_pid} on Linux; the whole file, pid 0
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, 0, 0, 0)


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock on `fd` without waiting; False when another open file holds it."""
    try:
        if _OFD:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock_struct(fcntl.F_WRLCK))
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):  # being written this very moment
        return {}


def holder(run_dir: Path) -> dict[str, Any] | None:
    """Who holds `run_dir` now ({host, pid, since}), or None when no process does. Takes no lock on Linux (it
    asks the kernel, F_OFD_GETLK), so a process starting the run at this moment never finds it held by the asker.
    """
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if _OFD:
            answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock_struct(fcntl.F_WRLCK))
            held = struct.unpack("hhqqi4x", answer)[0] != fcntl.F_UNLCK
        else:
            held = not _try_lock(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return _read_holder(path) if held else None


class RunLock:
    """The lock of one run directory, taken by `acquire` (or `with`) and released on `release` or process end."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, creating the directory and `.lock` when new; RunHeldError naming the holder if held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        if not _try_lock(fd):
            os.close(fd)
            raise RunHeldError(self.path.parent, _read_holder(self.path))
        me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor of the open file drops its lock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def hold(run_dir: Path, is_holder: bool = True) -> Iterator[None]:
    """Hold `run_dir` (RunHeldError when another process does) with the log copied to its train.log; a process
    that is not the holder (a DDP rank other than 0) takes neither."""
    if not is_holder:
        yield
        return
    with RunLock(run_dir):
        handler = logging.FileHandler(Path(run_dir) / RUN_LOG)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(handler)
        try:
            yield
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
