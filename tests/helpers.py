"""Helpers for tests that compose the real Hydra configs and run the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A short run on tiny data: small batches, a few iterations, logs and evaluation every few steps.
TINY = [
    "data.batch_size=16",
    "data.val_size=50",
    "data.eval_batch_size=100",
    "trainer.max_steps=24",
    "trainer.val_check_interval=12",
    "optim.milestones=[16,20]",
    "log_every=4",
    "progress_bar=false",
    "trainer.enable_model_summary=false",
]


def run_cli(args: list[str], timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """`python -m resnet_repro.train ARGS` in a fresh process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **kwargs.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-m", "resnet_repro.train", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
        **kwargs,
    )


def refused(result: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2 and the refusal alone, on one line that starts with "error:" and holds `words` (nothing before it)."""
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
