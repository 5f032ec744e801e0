"""How a number was made, beyond its recipe: the project's commit and the machine (for results.json)."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import time
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

# what a segment records of the code and machine that trained it; a run whose segments differ in any was resumed
# by another commit, machine or library version (the report marks it)
SEGMENT_KEYS = ("commit", "host", "cpu", "gpu", "torch", "lightning", "python")


@cache
def git_commit() -> str | None:
    """The project's commit when this process loaded it, from a git checkout: asked once, so a commit made while a
    sweep runs is not recorded for runs that execute the code loaded before it."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def native_bf16() -> bool:
    """Whether the hardware computes bf16 natively: a CUDA GPU with bf16, or a CPU with AVX512-BF16 or AMX."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return any(
        getattr(torch.cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def machine() -> dict[str, Any]:
    """What the run ran on: the evidence names its machine."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "torch": str(torch.__version__),  # a TorchVersion would not load with weights_only=True
        "native_bf16": native_bf16(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def segment(from_step: int) -> dict[str, Any]:
    """A stretch of training done by this process, from `from_step` (to_step is updated as it trains)."""
    info = machine()
    return {
        "steps": [from_step, from_step],
        "commit": git_commit(),
        "host": socket.gethostname(),
        "cpu": info["cpu"],
        "gpu": info.get("gpu"),
        "torch": info["torch"],
        "lightning": version("pytorch-lightning"),  # its metadata: reading a run does not import Lightning
        "python": platform.python_version(),
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def changed_across(segments: list[dict[str, Any]]) -> list[str]:
    """The SEGMENT_KEYS whose value differs between a run's segments (empty for a run trained in one go)."""
    return [key for key in SEGMENT_KEYS if len({str(s.get(key)) for s in segments}) > 1]
