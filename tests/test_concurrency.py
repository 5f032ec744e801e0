"""One run, one process: the same run or sweep started twice, a holder killed, a resume by another commit, and
writes that fail part-way (issue 13). Through the real command line; the lock tests use real processes."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from resnet_repro import files
from resnet_repro import train as train_cli
from resnet_repro.report import write_report
from resnet_repro.report.__main__ import main as report_main
from resnet_repro.report.tb_events import read_scalars
from resnet_repro.runs.lock import RunLock, holder
from tests.helpers import REPO, TINY, run_cli

pytestmark = pytest.mark.slow

RUN = [*TINY, "model.depth=8", "trainer.deterministic=true"]


def start(args: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.Popen:
    """`python -m resnet_repro.train ARGS` in the background, its output in a pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "resnet_repro.train", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until(condition, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "results.json").read_text())["metrics"]


def test_lock_is_exclusive_between_open_files_and_released_on_close(tmp_path: Path) -> None:
    first = RunLock(tmp_path / "run")
    first.acquire()
    assert holder(tmp_path / "run")["pid"] == os.getpid()
    holder(tmp_path / "run")  # reading .lock in the holding process does not drop its lock
    with pytest.raises(Exception, match=rf"held by another process \(host .*, pid {os.getpid()}, since"):
        RunLock(tmp_path / "run").acquire()
    first.release()
    assert holder(tmp_path / "run") is None
    with RunLock(tmp_path / "run"):
        pass


def test_same_run_started_twice_trains_once(real_cifar: Path, tmp_path: Path) -> None:
    """On the real CIFAR-10 copy: the second command exits 2 naming the holder and touches nothing; the report
    lists the run as held; the finished run equals one trained alone."""
    args = [
        f"data.root={real_cifar}",
        "model.depth=8",
        "data.batch_size=32",
        "data.eval_batch_size=1000",
        "trainer.max_steps=600",  # long enough (tens of seconds) to still be training when the report is written
        "trainer.val_check_interval=300",
        "optim.milestones=[400,500]",
        "trainer.deterministic=true",
        "progress_bar=false",
    ]
    run_dir = tmp_path / "sweep" / "run"
    first = start([*args, f"hydra.run.dir={run_dir}"])
    wait_until(lambda: holder(run_dir) is not None, first)

    second = run_cli([*args, f"hydra.run.dir={run_dir}"])
    assert second.returncode == 2, second.stderr[-3000:]
    assert f"is held by another process (host {os.uname().nodename}, pid {first.pid}, since" in second.stderr
    assert "Traceback" not in second.stderr and "resuming" not in second.stdout + second.stderr
    report = write_report([tmp_path / "sweep"], tmp_path / "report").read_text()
    assert first.poll() is None, "the first command ended before the report: lengthen its run"
    assert f"`run`: held by another process (host {os.uname().nodename}, pid {first.pid}" in report  # below the sweep

    assert first.wait(timeout=600) == 0, first.communicate()[0][-3000:]
    alone = run_cli([*args, f"hydra.run.dir={tmp_path / 'alone'}"])
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert metrics(run_dir) == metrics(tmp_path / "alone")
    assert [s["pid"] for s in json.loads((run_dir / "results.json").read_text())["segments"]] == [first.pid]


def test_sweep_started_twice_trains_every_run_once(tiny_cifar: Path, tmp_path: Path) -> None:
    args = ["-m", *RUN, f"data.root={tiny_cifar}", f"output_root={tmp_path}", "name=sweep", "seed=0,1,2,3"]
    sweeps = [start(args), start(args)]
    outputs = [proc.communicate(timeout=600)[0] for proc in sweeps]
    assert [proc.returncode for proc in sweeps] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    finished = [int(k) for out in outputs for k in re.findall(r"run (\d) of 4 finished", out)]
    assert sorted(finished) == [1, 2, 3, 4]  # each run trained by exactly one of the two sweeps
    assert "held by another process (host" in outputs[0] + outputs[1]
    for run_dir in (p.parent for p in (tmp_path / "sweep").rglob("results.json")):
        results = json.loads((run_dir / "results.json").read_text())
        assert results["status"] == "completed" and len(results["segments"]) == 1
        assert results["segments"][0]["pid"] in {proc.pid for proc in sweeps}
    assert len(list((tmp_path / "sweep").rglob("results.json"))) == 4


def test_killed_holder_is_taken_over(tiny_cifar: Path, tmp_path: Path) -> None:
    args = [*RUN, f"data.root={tiny_cifar}", "trainer.max_steps=408", f"hydra.run.dir={tmp_path}"]
    proc = start(args)
    wait_until(lambda: (tmp_path / "checkpoints" / "last.ckpt").exists(), proc)
    assert holder(tmp_path)["pid"] == proc.pid
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert holder(tmp_path) is None  # the kernel dropped the lock with the process
    resumed = run_cli(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout + resumed.stderr


def commit_copy(code: Path, message: str) -> str:
    """Commit the copy of the project in `code`; its commit hash."""
    git = ["git", "-C", str(code), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True, capture_output=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", message], check=True, capture_output=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def test_resume_by_another_commit_records_two_segments(tiny_cifar: Path, tmp_path: Path) -> None:
    """A copy of the project in its own git repository trains a run, is killed, gets a new commit and resumes it:
    results.json has a segment per commit and the report marks the run. A commit that changes the recipe (a config
    default) is refused, naming the key."""
    code = tmp_path / "code"
    shutil.copytree(
        REPO / "src", code / "src", symlinks=True, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )  # src/resnet_repro/conf stays a link to the copy's conf/
    shutil.copytree(REPO / "conf", code / "conf")
    subprocess.run(["git", "init", "-q", str(code)], check=True)
    old = commit_copy(code, "first")
    env = {"PYTHONPATH": str(code / "src")}

    def run_copy(args: list[str]) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "resnet_repro.train", *args]
        return subprocess.run(command, env={**os.environ, **env}, cwd=tmp_path, capture_output=True, text=True)

    run_dir = tmp_path / "sweep" / "run"
    args = [*RUN, f"data.root={tiny_cifar}", "trainer.max_steps=408", f"hydra.run.dir={run_dir}"]
    proc = start(args, env=env, cwd=tmp_path)
    wait_until(lambda: (run_dir / "checkpoints" / "last.ckpt").exists(), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]

    optim = code / "conf" / "optim" / "sgd_cifar.yaml"
    text = optim.read_text()
    optim.write_text(text.replace("momentum: 0.9", "momentum: 0.8"))
    commit_copy(code, "a new default")
    refused = run_copy(args)
    assert refused.returncode == 2
    assert "optim.momentum (recorded 0.9, asked 0.8)" in refused.stderr

    optim.write_text(text)
    new = commit_copy(code, "the same recipe again")
    resumed = run_copy(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    segments = json.loads((run_dir / "results.json").read_text())["segments"]
    assert [(s["steps"], s["commit"]) for s in segments] == [([0, at], old), ([at, 408], new)]
    report = write_report([tmp_path / "sweep"], tmp_path / "report").read_text()
    section = report.split("## Runs resumed by other code, machines or library versions")[1].split("##")[0]
    assert f"`run`: steps 0-{at}: commit {old[:12]}; steps {at}-408: commit {new[:12]}" in section


def fail_part_way(monkeypatch: pytest.MonkeyPatch, name: str, after: int = 0) -> None:
    """Make the (after+1)-th atomic write of `name` write half its bytes, then fail as on a full disk."""
    calls = {"n": 0}
    real = files.write_new_file

    def failing(folder: int, tmp: str, data: memoryview) -> None:
        if not tmp.startswith(f".{name}."):
            return real(folder, tmp, data)
        calls["n"] += 1
        if calls["n"] <= after:
            return real(folder, tmp, data)
        real(folder, tmp, data[: len(data) // 2])  # the disk fills half-way through the file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "write_new_file", failing)


def cli(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> int:
    """The training command line, in this process (so that a test can make its writes fail)."""
    monkeypatch.setattr(sys, "argv", ["resnet_repro.train", *args])
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main()
        raise SystemExit(0)
    return exit_info.value.code


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def test_failed_checkpoint_write_keeps_the_previous_one(
    tiny_cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    args = [*RUN, f"data.root={tiny_cifar}", f"hydra.run.dir={tmp_path}"]
    with monkeypatch.context() as patch:
        fail_part_way(patch, "last.ckpt", after=1)  # the checkpoint at step 12 is written, the one at 24 fails
        assert cli(patch, args) == 2
    err = capfd.readouterr().err
    assert error_lines(err) == [
        f"error: could not write {tmp_path}/checkpoints/last.ckpt (No space left on device); its previous version "
        "is intact. Free space or fix permissions, then rerun"
    ]
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 12
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "results.json").exists()

    # a process killed mid-write leaves its temporary file: the next run says so in one line and resumes
    (tmp_path / "checkpoints" / ".last.ckpt.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    assert cli(monkeypatch, args) == 0
    out = capfd.readouterr().out
    assert (
        f"an earlier write of {tmp_path}/checkpoints/last.ckpt was interrupted (.last.ckpt.k1ll3d.tmp, 17 bytes); "
        "removed it; the previous version is intact" in out
    )
    assert "resuming from" in out and json.loads((tmp_path / "results.json").read_text())["status"] == "completed"
    assert not list(tmp_path.rglob("*.tmp"))


def test_failed_results_write_keeps_the_previous_one(
    tiny_cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    args = [*RUN, f"data.root={tiny_cifar}", "optim.lr=1e30", f"hydra.run.dir={tmp_path}"]
    assert cli(monkeypatch, args) == 1  # diverged, recorded
    before = (tmp_path / "results.json").read_bytes()
    capfd.readouterr()
    with monkeypatch.context() as patch:
        fail_part_way(patch, "results.json")  # the retry diverges again; recording it fails part-way
        assert cli(patch, args) == 2
    assert error_lines(capfd.readouterr().err) == [
        f"error: could not write {tmp_path}/results.json (No space left on device); its previous version is "
        "intact. Free space or fix permissions, then rerun"
    ]
    assert (tmp_path / "results.json").read_bytes() == before
    assert not list(tmp_path.rglob("*.tmp"))


def test_failed_report_write_keeps_the_previous_one(
    tiny_cifar: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert run_cli([*RUN, f"data.root={tiny_cifar}", f"hydra.run.dir={tmp_path / 'sweep' / 'run'}"]).returncode == 0
    out = tmp_path / "report"
    report_main([str(tmp_path / "sweep"), "--out", str(out)])
    before = (out / "report.md").read_bytes()
    capfd.readouterr()
    with monkeypatch.context() as patch:
        fail_part_way(patch, "report.md")
        with pytest.raises(SystemExit) as exit_info:
            report_main([str(tmp_path / "sweep"), "--out", str(out)])
    assert exit_info.value.code == 2
    assert error_lines(capfd.readouterr().err) == [
        f"error: could not write {out}/report.md (No space left on device); its previous version is intact. "
        "Free space or fix permissions, then rerun"
    ]
    assert (out / "report.md").read_bytes() == before and not list(out.glob("*.tmp"))

    (out / ".report.md.k1ll3d.tmp").write_text("# half a rep")  # a report killed mid-write
    report_main([str(tmp_path / "sweep"), "--out", str(out)])
    line = f"an earlier write of {out}/report.md was interrupted (.report.md.k1ll3d.tmp, 12 bytes); removed it"
    assert [m for m in caplog.messages if "interrupted" in m] == [f"{line}; the previous version is intact"]
    assert f"- {line}" in (out / "report.md").read_text()
    assert not list(out.glob("*.tmp"))


def test_failed_export_write_keeps_the_previous_one(
    tiny_cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    from resnet_repro.use.export import main as export_main

    run_dir = tmp_path / "run"
    assert run_cli([*RUN, f"data.root={tiny_cifar}", f"hydra.run.dir={run_dir}"]).returncode == 0
    out = tmp_path / "net.pt"
    export_main([str(run_dir), "--which", "last", "--out", str(out)])
    before = out.read_bytes()
    capfd.readouterr()
    with monkeypatch.context() as patch:
        fail_part_way(patch, "net.pt")
        with pytest.raises(SystemExit) as exit_info:
            export_main([str(run_dir), "--which", "best", "--out", str(out)])
    assert exit_info.value.code == 2
    assert error_lines(capfd.readouterr().err) == [
        f"error: could not write {out} (No space left on device); its previous version is intact. "
        "Free space or fix permissions, then rerun"
    ]
    assert out.read_bytes() == before and not list(tmp_path.glob("*.tmp"))


def test_ctrl_c_keeps_the_work_and_the_rerun_resumes(tiny_cifar: Path, tmp_path: Path) -> None:
    """A real SIGINT to a real training process: it stops at the end of an iteration, saves last.ckpt at that step,
    says how to resume and exits 130; the same command resumes from that step and TensorBoard holds one point per
    logged step. A sweep stopped the same way prints how each run ended."""
    keep = [
        o for o in TINY if not o.startswith(("optim.milestones", "trainer.val_check_interval", "trainer.max_steps"))
    ]
    args = [*keep, "trainer.max_steps=400", f"data.root={tiny_cifar}", "model.depth=8"]
    run_dir = tmp_path / "run"
    proc = start([*args, f"hydra.run.dir={run_dir}"])
    wait_until(lambda: any((run_dir / "tb").rglob("events.*")), proc)
    time.sleep(2)  # some iterations in
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 130, out[-3000:]
    step = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert 0 < step < 400 and f"interrupted at step {step} of 400" in out and "run the same command again" in out
    assert "`weights_only` was not set" not in out  # Lightning's note on what a checkpoint holds: ours, said
    assert json.loads((run_dir / "results.json").read_text())["status"] == "interrupted"
    again = run_cli([*args, f"hydra.run.dir={run_dir}"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from step {step} (last.ckpt in {run_dir})" in again.stdout + again.stderr
    assert "add the following callbacks" not in again.stdout + again.stderr
    steps = [s for s, _ in read_scalars(run_dir)["train/err"]]
    assert steps == list(range(4, 401, 4))  # the first attempt's points past its checkpoint are purged
    sweep = start(["-m", *args, f"output_root={tmp_path}", "name=sweep", "model.residual=true,false"])
    wait_until(lambda: any((tmp_path / "sweep").rglob("events.*")), sweep)
    time.sleep(2)
    sweep.send_signal(signal.SIGINT)
    out = sweep.communicate(timeout=300)[0]
    assert sweep.returncode == 130, out[-3000:]
    assert "interrupted at step" in out and "1 interrupted, 1 not run: its report: python -m resnet_repro.report" in out
