"""Atomic file writes: a temporary file in the same folder, then a rename, so a kill never leaves a truncated file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary path beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.chmod(0o666 & ~_umask())  # mkstemp creates 0600; give the file the permissions open() would
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
