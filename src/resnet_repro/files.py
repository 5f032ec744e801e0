"""Atomic file writes: a temporary file in the same folder, then a rename. A write that fails part-way (a full
disk, a lost permission) or a process killed mid-write leaves the file's previous version intact."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
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


def interrupted_writes(folder: Path, remove: bool) -> list[str]:
    """One line for each temporary file under `folder` that a killed process left mid-write (removed when
    `remove`: only a process that holds the folder may, since a live writer's file looks the same)."""
    lines = []
    for tmp in sorted(Path(folder).rglob(f".*{TMP_SUFFIX}")):
        target = tmp.parent / tmp.name[1:].rsplit(".", 2)[0]
        done = "removed it" if remove else "left it"
        lines.append(
            f"an earlier write of {target} was interrupted ({tmp.name}, {tmp.stat().st_size} bytes); {done}; "
            + ("the previous version is intact" if target.exists() else "there was no previous version")
        )
        if remove:
            tmp.unlink(missing_ok=True)
    return lines


def write_json(path: str | Path, data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def read_json(path: str | Path) -> Any | None:
    """The JSON in `path`, or None when it is missing or not valid JSON (a truncated leftover is never trusted)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def save_tensors(path: str | Path, data: dict[str, Any]) -> None:
    """torch.save, atomically."""
    atomic_write(path, lambda tmp: torch.save(data, tmp))
