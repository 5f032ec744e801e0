"""Sweeps: multirun through the basic, joblib and submitit launchers; resumable; failures recorded; the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resnet_repro.report import write_report
from tests.helpers import REPO, TINY, run_cli

pytestmark = pytest.mark.slow

SWEEP = [*TINY, "model.depth=8", "trainer.deterministic=true"]


def run_dirs(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.rglob("recipe.json"))


def statuses(sweep: Path, *keys: str) -> dict[tuple, str]:
    """{(config values at the dotted `keys`): status} of every run directory in the sweep."""
    out = {}
    for run_dir in run_dirs(sweep):
        results = json.loads((run_dir / "results.json").read_text())
        values = []
        for key in keys:
            node = results["config"]
            for part in key.split("."):
                node = node[part]
            values.append(node)
        out[tuple(values)] = results["status"]
    assert len(out) == len(run_dirs(sweep))
    return out


def test_multirun_report_and_skip_completed(tiny_cifar: Path, tmp_path: Path) -> None:
    args = [
        "-m",
        *SWEEP,
        f"data.root={tiny_cifar}",
        f"output_root={tmp_path}",
        "name=sweep",
        "model.residual=true,false",
        "optim.lr=0.1,1e30",
    ]
    first = run_cli(args)
    assert first.returncode == 1, first.stderr[-3000:]  # every run recorded, then a non-zero exit
    assert (
        first.stderr.strip().splitlines()[-1]
        == f"error: 2 completed, 2 diverged: its report: python -m resnet_repro.report {tmp_path}/sweep"
    )
    assert "run 4 of 4 finished" in first.stdout + first.stderr
    table = [line for line in first.stdout.splitlines() if line.startswith("  ") and "at step" in line]
    assert len(table) == 4 and sum("completed at step 24 in" in line and "test error" in line for line in table) == 2
    sweep = tmp_path / "sweep"
    assert statuses(sweep, "model.residual", "optim.lr") == {
        (True, 0.1): "completed",
        (True, 1e30): "diverged",  # recorded; the sweep went on
        (False, 0.1): "completed",
        (False, 1e30): "diverged",
    }
    report = write_report([sweep], tmp_path / "report")
    text = report.read_text()
    assert "| ResNet-8 |" in text and "| plain-8 |" in text
    assert text.count("diverged") >= 2 and "Runs not completed" in text
    assert (tmp_path / "report" / "fig6-cifar10.png").stat().st_size > 10_000
    assert (tmp_path / "report" / "fig7-cifar10.png").stat().st_size > 10_000
    assert (tmp_path / "report" / "scorecard.json").is_file()

    again = run_cli(args)  # nothing completed is trained again; the diverged runs are tried again
    assert again.returncode == 1
    assert (again.stdout + again.stderr).count("is completed; skipping it") == 2


def test_bad_input_stops_a_sweep_at_its_first_job(tmp_path: Path) -> None:
    """Missing data would fail every job: one message, exit 2, no job after the first started."""
    (tmp_path / "empty").mkdir()
    args = ["-m", *SWEEP, f"data.root={tmp_path / 'empty'}", f"output_root={tmp_path}", "name=sweep", "seed=0,1,2"]
    result = run_cli(args)
    assert result.returncode == 2
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    assert "cifar10 not found in" in result.stderr and "Traceback" not in result.stderr
    assert "run 1 of 3 started" in result.stdout + result.stderr and "run 2 of 3" not in result.stdout + result.stderr
    assert not list(tmp_path.rglob("results.json")) and not list(tmp_path.rglob("recipe.json"))
    assert not list(tmp_path.rglob(".sweeps"))  # the sweep's ledger is cleaned up


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_two_job_multirun_through_launcher(launcher: str, tiny_cifar: Path, tmp_path: Path) -> None:
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else ["hydra.launcher.timeout_min=10"]
    result = run_cli(
        [
            "-m",
            *SWEEP,
            f"data.root={tiny_cifar}",
            f"output_root={tmp_path}",
            "name=sweep",
            f"hydra/launcher={launcher}",
            *extra,
            "seed=0,1",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert statuses(tmp_path / "sweep", "seed") == {(0,): "completed", (1,): "completed"}


def test_killed_multirun_resumes_without_retraining(tiny_cifar: Path, tmp_path: Path) -> None:
    """SIGKILL a sweep after its first run finished; rerun it: that run is skipped, the rest complete."""
    args = ["-m", *SWEEP, f"data.root={tiny_cifar}", f"output_root={tmp_path}", "name=sweep", "seed=0,1,2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "resnet_repro.train", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not list(tmp_path.rglob("results.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("results.json")}
    assert 1 <= len(finished) < 3

    rerun = run_cli(args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in finished.items())  # finished runs were not redone
    assert statuses(tmp_path / "sweep", "seed") == {(0,): "completed", (1,): "completed", (2,): "completed"}
    text = write_report([tmp_path / "sweep"], tmp_path / "report").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| ResNet-8 |"))
    assert row.split("|")[4].strip() == "3"  # every run counted exactly once


def test_make_reproduce_cifar_without_data_stops_once_and_writes_no_report(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        ["make", "--no-print-directory", "reproduce-cifar", f"DATA={tmp_path / 'empty'}", f"OUT={tmp_path / 'out'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.count("error: ") == 1 and "could not download" in result.stderr  # data.download=true
    assert "run 2 of 9" not in result.stdout + result.stderr
    assert not (tmp_path / "out" / "cifar10" / "report").exists()
