"""Issue 25's attacks, each a regression test: what a run, a sweep or a file says passes the reading gate
(runs/records.py) before anything uses it; progress that was never trained is refused; a changed image cache is
never trusted; a FIFO or a link where a run's file should be never hangs or redirects a command."""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_repro import load_model
from resnet_repro.data.cifar_sources import load_cifar
from resnet_repro.errors import UserError, escaped
from resnet_repro.files import HeldFolderFiles, WriteFailed, atomic_write, summary_writer
from resnet_repro.report import write_report
from resnet_repro.report.tb_events import read_scalars
from resnet_repro.runs import records
from resnet_repro.runs.directory import run_directory
from resnet_repro.runs.layout import refuse_links
from resnet_repro.runs.lock import RunLock
from resnet_repro.runs.recipe import resume_checkpoint
from resnet_repro.runs.records import RecordError
from resnet_repro.training.record import write_failure
from resnet_repro.training.tb_logger import RunTensorBoardLogger
from resnet_repro.use.weights import WeightsError
from tests.conftest import write_cifar_folder
from tests.helpers import REPO, TINY, refused, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tiny_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep folder with ResNet-8 trained for 24 iterations on the tiny CIFAR folder."""
    run = tmp_path_factory.mktemp("gate") / "sweep" / "resnet8"
    result = run_cli([*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={run}"])
    assert result.returncode == 0, result.stderr[-3000:]
    (run / ".lock").unlink(missing_ok=True)
    return run


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "sweep" / "resnet8"
    shutil.copytree(trained, copy)
    return copy


def command(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout
    )


def test_progress_that_was_never_trained_is_refused(run: Path, tiny_cifar: Path, tmp_path: Path) -> None:
    """A checkpoint with the run's own recipe whose step counters say more than its segments trained (the audit's
    step 10 of max_steps 4, recorded completed) is refused before anything runs; so is one past max_steps."""
    identity = {k: v for k, v in json.loads((run / "recipe.json").read_text()).items() if k != "overrides"}
    last = run / "checkpoints" / "last.ckpt"
    original = torch.load(last, weights_only=True)
    progress = original["loops"]["fit_loop"]["epoch_loop.automatic_optimization.optim_progress"]
    forged = run.parent / "forged.ckpt"
    cases = {
        "its loops record 24": lambda c: c.update(global_step=30),
        "its segments end at step 24": lambda c: (
            c.update(global_step=30),
            progress["optimizer"]["step"]["total"].update(completed=30),
        ),
        "past trainer.max_steps 24": lambda c: (
            c.update(global_step=30),
            progress["optimizer"]["step"]["total"].update(completed=30),
            c["callbacks"]["Segments"]["segments"][-1]["steps"].__setitem__(1, 30),
        ),
        "not an integer": lambda c: progress["optimizer"]["step"]["total"].update(completed="30"),
    }
    for words, forge in cases.items():
        checkpoint = torch.load(last, weights_only=True)
        progress = checkpoint["loops"]["fit_loop"]["epoch_loop.automatic_optimization.optim_progress"]
        forge(checkpoint)
        torch.save(checkpoint, forged)
        with pytest.raises(RecordError, match=words):
            resume_checkpoint(run.parent / "new", str(forged), identity)
    assert original["global_step"] == 24
    args = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"ckpt_path={forged}", f"hydra.run.dir={tmp_path / 'x'}"]
    refused(run_cli(args), "not an integer")


def test_a_run_recorded_completed_short_of_its_length_is_trained_again(run: Path, tiny_cifar: Path) -> None:
    """results.json says completed at step 1 of 24 (found by the fuzzer: a results.json that is a hard link to a
    stranger's file): the rerun does not believe it and trains from its checkpoint; it was a traceback before."""
    results = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**results, "step": 1}))
    result = run_cli([*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={run}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "was recorded completed, but its step is 1 of trainer.max_steps 24" in result.stdout + result.stderr
    rerun = json.loads((run / "results.json").read_text())
    assert (
        rerun["status"] == "completed" and rerun["step"] == 24 and records.not_trained(rerun, rerun["recipe"]) is None
    )
    for key in ("val_err", "test_err"):  # the checkpoint holds the final weights: evaluated again, the same numbers
        assert rerun["metrics"][key] == pytest.approx(results["metrics"][key], abs=1e-4)


def test_a_bare_completed_status_is_not_counted(run: Path, tmp_path: Path) -> None:
    """results.json {"status": "completed"} and no recipe.json (the fuzzer: a stranger's file by a hard link, a
    folder at recipe.json's name) was counted, then a KeyError in the report's provenance."""
    (run / "recipe.json").unlink()
    (run / "results.json").write_text('{"status": "completed"}')
    result = command("resnet_repro.report", str(run.parent), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "recorded completed, but it records no step; left out" in (tmp_path / "report" / "report.md").read_text()


def test_a_failure_is_recorded_over_a_completed_record_that_was_never_trained(tmp_path: Path) -> None:
    """write_failure keeps the record of a run completed and trained to its length, not a bare "completed"."""
    for step, kept in ((1, False), (24, True)):
        completed = {"status": "completed", "step": step, "recipe": {"trainer.max_steps": 24}}
        (tmp_path / "results.json").write_text(json.dumps(completed))
        write_failure(tmp_path, {"status": "failed", "error": "out of memory"})
        assert json.loads((tmp_path / "results.json").read_text())["status"] == ("completed" if kept else "failed")


def test_a_changed_image_cache_is_decoded_again(tmp_path: Path) -> None:
    """The audit changed the labels in the decoded-image cache: a run then recorded test error 0.0 under the clean
    data's fingerprint. The cache's tensors are fingerprinted again on load: a changed cache is decoded again."""
    root = write_cifar_folder(tmp_path / "data", 3, 2)
    clean = load_cifar("cifar10", root, False, None, 10)
    cache = next((root / ".resnet_repro_cache").glob("*.pt"))
    stored = torch.load(cache, weights_only=True)
    stored["test_labels"] = torch.zeros_like(stored["test_labels"])  # every test image of class 0
    torch.save(stored, cache)
    again = load_cifar("cifar10", root, False, None, 10)
    assert torch.equal(again.test_labels, clean.test_labels) and again.fingerprint == clean.fingerprint
    assert torch.equal(torch.load(cache, weights_only=True)["test_labels"], clean.test_labels)  # rebuilt


def test_fifos_never_hang_a_command(run: Path, tiny_cifar: Path, tmp_path: Path) -> None:
    """A FIFO in place of `.lock` made the report wait forever; in place of train.log, training."""
    running = run.parent / "running"
    shutil.copytree(run, running)
    results = json.loads((running / "results.json").read_text())
    (running / "results.json").write_text(json.dumps({**results, "status": "running"}))
    os.mkfifo(running / ".lock")  # the report asks who holds a run that is not completed
    result = command("resnet_repro.report", str(run.parent), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr[-2000:]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    os.mkfifo(fresh / "train.log")
    result = run_cli([*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={fresh}"], timeout=120)
    refused(result, "train.log is not a regular file")


def test_links_and_records_from_elsewhere(run: Path, tiny_cifar: Path, tmp_path: Path) -> None:
    """A run directory that is itself a link is not written through; a state_dict with integer keys, a results.json
    holding a list and text in a numeric recipe field are one line each, naming the file and the field."""
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(run, elsewhere)
    linked = tmp_path / "linked"
    linked.symlink_to(elsewhere, target_is_directory=True)
    refused(command("resnet_repro.evaluate", str(linked), "--data", str(tiny_cifar)), "is a symbolic link")
    assert not (elsewhere / "eval.json").exists()
    weights = tmp_path / "ints.pt"
    torch.save({0: torch.zeros(1), "fc.weight": torch.zeros(10, 64)}, weights)
    with pytest.raises(WeightsError):
        load_model(weights)
    (run / "results.json").write_text("[1, 2]")
    with pytest.raises(RecordError, match="results.json: the record is list, not a mapping"):
        load_model(run, which="last")
    (run / "results.json").unlink()
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["run_identity"]["recipe"]["model.depth"] = "eight"
    torch.save(checkpoint, run / "checkpoints" / "last.ckpt")
    result = command("resnet_repro.export", str(run), "--which", "last")
    refused(result, "recipe.model.depth must be an integer, got 'eight'")


def test_a_folder_name_that_is_not_utf8_is_listed_as_left_out(run: Path, tmp_path: Path) -> None:
    """A run folder named in another encoding (bytes 0xff 0xfe) is listed as left out, not a traceback."""
    os.rename(os.fsencode(run), os.fsencode(run.parent) + b"/\xff\xfe")
    shutil.copytree(os.fsencode(run.parent) + b"/\xff\xfe", os.fsencode(run))  # and a readable one beside it
    result = command("resnet_repro.report", str(run.parent), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr[-2000:]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "\\udcff\\udcfe" in report and "its folder name is not UTF-8 (rename it to report it)" in report


def test_the_writer_never_follows_a_link_below_its_root(run: Path, tmp_path: Path) -> None:
    """checkpoints/ swapped for a link mid-run received last.ckpt; a dangling tb/.../hparams.yaml link made training
    create its target. The writer opens every folder below the run with O_NOFOLLOW at each write, and a run with a
    link at any depth below its folders is refused before anything is written."""
    victim = tmp_path / "victim"
    victim.mkdir()
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").symlink_to(victim, target_is_directory=True)
    with pytest.raises(WriteFailed, match="checkpoints is a symbolic link or not a folder"):
        atomic_write(run / "checkpoints" / "last.ckpt", lambda file: file.write(b"weights"), root=run)
    assert list(victim.iterdir()) == []
    (run / "checkpoints").unlink()
    hparams = next((run / "tb").rglob("hparams.yaml"))
    hparams.unlink()
    hparams.symlink_to(victim / "created")
    with pytest.raises(UserError, match="hparams.yaml is a symbolic link"):
        refuse_links(run)


def test_a_report_removes_only_the_board_files_it_wrote(run: Path, tmp_path: Path) -> None:
    """`report --out DIR` deleted the TensorBoard event files in DIR/tb that it had not written."""
    out = tmp_path / "report"
    (out / "tb").mkdir(parents=True)
    theirs = out / "tb" / "events.out.tfevents.1.someone"
    theirs.write_bytes(b"another board's events")
    write_report([run.parent], out)
    first = set(json.loads((out / "board.json").read_text()))
    assert first and theirs.is_file()
    write_report([run.parent], out)
    second = set(json.loads((out / "board.json").read_text()))
    assert theirs.is_file() and not first & second  # its own earlier board replaced, the other one kept
    assert {p.name for p in (out / "tb").iterdir()} == second | {theirs.name}


def test_outside_audit_of_the_gate(run: Path, tiny_cifar: Path, tmp_path: Path) -> None:
    """The outside audit of this change: a FIFO among a run's event files hung the report; text in a recipe's depth
    crashed it; an export naming no network of ours crashed evaluate; a run resumed from a checkpoint older than
    segments was refused; a refusal came after the run's .lock and train.log were made; board.json could name a
    file for the report to delete."""
    os.mkfifo(run / "tb" / "events.out.tfevents.9.fifo")
    signal.alarm(60)  # a hang fails here, not in CI's timeout
    try:
        assert "train/err" in read_scalars(run)
    finally:
        signal.alarm(0)
    odd = run.parent / "odd"
    shutil.copytree(run, odd, ignore=shutil.ignore_patterns("*.fifo"))
    for name in ("recipe.json", "results.json"):
        record = json.loads((odd / name).read_text())
        record["recipe"]["model.depth"] = "abc"
        (odd / name).write_text(json.dumps(record))
    out = tmp_path / "report"
    (out / "tb").mkdir(parents=True)
    (out / "board.json").write_text(json.dumps(["../notes.txt", "../tb"]))  # names outside the board's event files
    (out / "notes.txt").write_text("the user's notes")
    text = write_report([run.parent], out).read_text()
    assert "recipe.model.depth must be an integer, got 'abc'" in text
    assert (out / "notes.txt").is_file() and (out / "tb").is_dir()

    weights = tmp_path / "foo.pt"
    record = {"format": "resnet-repro-weights/1", "arch": "Foo", "kwargs": {}, "state_dict": {"w": torch.zeros(1)}}
    torch.save(record, weights)
    refused(command("resnet_repro.evaluate", str(weights), "--data", str(tiny_cifar), "--out", str(tmp_path / "e")))

    assert records.results({"status": "completed", "step": 1000, "segments": [{"steps": [500, 1000]}]}, "r")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "results.json").write_text(json.dumps({"status": "completed", "step": "many"}))
    identity = {k: v for k, v in json.loads((run / "recipe.json").read_text()).items() if k != "overrides"}
    with pytest.raises(RecordError, match="step is 'many'"), run_directory(fresh, identity, {}, None):
        pass
    assert sorted(p.name for p in fresh.iterdir()) == ["results.json"]  # refused before .lock or train.log


def test_class_folders_named_in_another_encoding_train_and_evaluate(tmp_path: Path) -> None:
    """Class folders whose names are not UTF-8 (bytes 0xff) made training and evaluate fail with a traceback: their
    names are kept with the bytes as escapes, and the run trains, records and evaluates."""
    root = write_cifar_folder(tmp_path / "data", 40, 10)
    for split in ("train", "test"):
        os.rename(os.fsencode(root / split / "truck"), os.fsencode(root / split) + b"/tr\xffck")
    run = tmp_path / "run"
    result = run_cli([*TINY, f"data.root={root}", "model.depth=8", f"hydra.run.dir={run}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "results.json").read_text())["status"] == "completed"
    evaluated = command("resnet_repro.evaluate", str(run), "--which", "last")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]


def test_a_damaged_loader_state_is_one_line(run: Path, tiny_cifar: Path, tmp_path: Path) -> None:
    """A resume from a checkpoint whose data loader state is damaged (its position as text) was a traceback."""
    last = run / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["position"] = "abc"
    torch.save(checkpoint, last)
    (run / "results.json").unlink()  # so the rerun resumes from last.ckpt
    refused(run_cli([*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={run}"]), "position 'abc'")


def damage_export(record: dict) -> None:
    """An integer among the parameter names."""
    record["state_dict"] = {0: torch.zeros(1), **record["state_dict"]}


# The outside audit's 39 tracebacks (63efd54), by kind: each is now exit 2 and one line naming what is wrong. The
# config values among them (optim.lr=abc, seed=abc, optim.milestones=[a]) are test_cli_errors.py's table; a non-UTF-8
# class folder trains and evaluates (above); a non-UTF-8 run folder is listed as left out by the report (above).
EXPORTED = {  # an exported file changed by one edit -> what evaluate's refusal names
    "a state_dict with integer keys": (damage_export, "a parameter name of state_dict is 0"),
    "an arch that is a path": (lambda r: r.update(arch="../../x"), "arch is '../../x', not a name"),
    "an arch that is a number": (lambda r: r.update(arch=5), "arch is 5, not a name"),
    "kwargs that are a list": (lambda r: r.update(kwargs=[1]), "kwargs is list, not a mapping"),
    "a kwarg that is not an argument name": (lambda r: r["kwargs"].update({"a b": 1}), "is 'a b', not an argument"),
    "text for the depth": (lambda r: r["kwargs"].update(depth="abc"), "cannot build"),
    "a state_dict holding text": (lambda r: r["state_dict"].update({"fc.weight": "abc"}), "is 'abc', not a tensor"),
    "a state_dict that is a list": (lambda r: r.update(state_dict=[1]), "not a mapping of parameter names"),
}


@pytest.mark.parametrize("kind", list(EXPORTED))
def test_the_audits_exported_file_tracebacks_are_one_line(
    kind: str, run: Path, tiny_cifar: Path, tmp_path: Path
) -> None:
    """Exported files with odd arch, kwargs or state_dict crashed evaluate with a traceback."""
    exported = tmp_path / "weights.pt"
    made = command("resnet_repro.export", str(run), "--which", "last", "--out", str(exported))
    assert made.returncode == 0, made.stderr[-2000:]
    record = torch.load(exported, weights_only=True)
    edit, words = EXPORTED[kind]
    edit(record)
    torch.save(record, exported)
    out = tmp_path / "eval.json"
    refused(command("resnet_repro.evaluate", str(exported), "--data", str(tiny_cifar), "--out", str(out)), words)
    assert not out.exists()


RUN_FILES = {  # a file of a run changed by one edit -> the command that read it, and what its refusal names
    "results.json holding a list (export)": ("results.json", lambda r: [1, 2], "export", "is list, not a mapping"),
    "results.json holding a list (evaluate)": ("results.json", lambda r: [1, 2], "evaluate", "is list, not a mapping"),
    "text in a numeric recipe field": (
        "results.json",
        lambda r: {**r, "recipe": {**r["recipe"], "optim.lr": "abc"}},
        "evaluate",
        "recipe.optim.lr must be a number, got 'abc'",
    ),
    "deeply nested JSON": (
        "results.json",
        lambda r: {**r, "config": json.loads('{"a": ' * 100 + "1" + "}" * 100)},
        "export",
        "is nested deeper than 24 levels",
    ),
}


@pytest.mark.parametrize("kind", list(RUN_FILES))
def test_the_audits_run_record_tracebacks_are_one_line(kind: str, run: Path, tiny_cifar: Path) -> None:
    """A run's records of the wrong types crashed export and evaluate with a traceback."""
    name, edit, module, words = RUN_FILES[kind]
    (run / name).write_text(json.dumps(edit(json.loads((run / name).read_text()))))
    before = sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))
    args = ["--which", "last"] + (["--data", str(tiny_cifar)] if module == "evaluate" else [])
    refused(command(f"resnet_repro.{module}", str(run), *args), name, words)
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == before  # nothing written


def test_the_audits_resume_and_config_tracebacks_are_one_line(run: Path, tiny_cifar: Path) -> None:
    """A damaged loop state in a resume, and an `official:` of `..x`, were tracebacks."""
    last = run / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["ready"] = "abc"
    torch.save(checkpoint, last)
    (run / "results.json").unlink()  # so the rerun resumes from last.ckpt
    train = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={run}"]
    refused(run_cli(train), "last.ckpt", "epoch_loop.batch_progress.total.ready is 'abc'")
    refused(run_cli([*train[:-1], f"hydra.run.dir={run.parent / 'other'}", "data.official=..x"]), "data.official")


def test_a_second_report_into_one_folder_is_refused(run: Path, tmp_path: Path) -> None:
    """Two reports writing one folder at once: each removed the other's unfinished files (audit item 11). The
    report holds its folder while it writes; a second one is refused with one line and changes nothing there."""
    out = tmp_path / "report"
    write_report([run.parent], out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != ".lock"}
    with RunLock(out, doing="writing a report there"):
        result = command("resnet_repro.report", str(run.parent), "--out", str(out))
    refused(result, "is held by another process", "which is writing a report there")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != ".lock"} == before
    with RunLock(run):  # a report into a run being trained names what its holder does
        result = command("resnet_repro.report", str(run.parent), "--out", str(run))
    refused(result, "which is training it")
    notes = tmp_path / "notes.txt"
    notes.write_text("the user's notes")
    refused(command("resnet_repro.report", str(run.parent), "--out", str(notes)), "could not write", str(notes))
    assert notes.read_text() == "the user's notes"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "swapped").symlink_to(elsewhere)  # a folder swapped for a link after the report looked at it
    with pytest.raises(UserError, match="swapped is a symbolic link or not a folder: give a folder of its own"):
        RunLock(tmp_path / "swapped", doing="writing a report there").acquire()
    assert list(elsewhere.iterdir()) == []


def test_every_field_a_run_records_is_declared_and_checked(run: Path) -> None:
    """The gate's record types list every field a real run writes (a new field fails here until it is declared and
    checked), each provenance field of the wrong type is refused, naming it, and a path whose bytes are not UTF-8
    (Python's surrogate escapes, as our own runs record it) is kept."""
    recorded = json.loads((run / "results.json").read_text())
    declared = set(records.Results.__annotations__)
    checked = {"status", "step", "metrics", "segments", *records.Identity.__annotations__, *records.RESULT_FIELDS}
    assert set(recorded) <= declared == checked
    assert set(json.loads((run / "recipe.json").read_text())) == set(records.RecipeFile.__annotations__)
    odd_root = {**recorded, "data": {**recorded["data"], "root": "/mnt/d\udcffata"}}  # argv bytes that are not UTF-8
    assert records.results(odd_root, "results.json")["data"]["root"] == "/mnt/d\udcffata"  # our own record: kept
    with pytest.raises(RecordError, match="is not valid UTF-8 text"):
        records.results({**recorded, "git_commit": "\ud800"}, "results.json")  # no bytes decode to it: refused
    for field, kind in records.RESULT_FIELDS.items():
        wrong = "abc" if kind in (records.INTEGER, records.NUMBER) else 1
        with pytest.raises(RecordError, match=f"results.json: {field} is {wrong!r}, not {kind}"):
            records.results({**recorded, field: wrong}, run / "results.json")


def test_tensorboard_never_writes_through_a_link(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """TensorBoard reopens its event file by path at every flush, and Lightning wrote hparams.yaml at the end of a
    run, through a tb/ swapped for a link mid-run: the run's logger (training/tb_logger.py) writes its events from
    the folder it opened and holds (files.summary_writer), where they arrive, and hparams.yaml through the one
    writer (refused there: a warning); a link (symbolic or hard) at an event file's own name is not written
    through either: its events are dropped with one warning."""
    run, victim = tmp_path / "run", tmp_path / "victim"
    victim.mkdir()
    logger = RunTensorBoardLogger(save_dir=str(run), name="tb", version="")
    logger.log_hyperparams({"optim.lr": 0.1})
    logger.log_metrics({"train/err": 50.0}, step=1)
    (run / "tb").rename(tmp_path / "moved")
    (run / "tb").symlink_to(victim, target_is_directory=True)
    logger.log_metrics({"train/err": 40.0}, step=2)
    logger.save()
    assert list(victim.iterdir()) == [] and "hparams.yaml was not written" in caplog.text
    (run / "tb").unlink()
    (tmp_path / "moved").rename(run / "tb")
    assert [step for step, _ in read_scalars(run)["train/err"]] == [1, 2]
    logger.save()
    assert "optim.lr: 0.1" in (run / "tb" / "hparams.yaml").read_text()

    event = next((run / "tb").glob("events.out.tfevents.*"))
    (victim / "target").write_text("the victim's file")
    event.unlink()
    event.symlink_to(victim / "target")  # a link at the event file's own name
    logger.log_metrics({"train/err": 30.0}, step=3)
    logger.experiment.flush()
    event.unlink()
    os.link(victim / "target", event)  # a hard link there: O_NOFOLLOW does not see it
    logger.log_metrics({"train/err": 20.0}, step=4)
    logger.experiment.close()
    assert (victim / "target").read_text() == "the victim's file"
    assert f"TensorBoard events not written to {event}" in caplog.text  # one warning, no traceback from its thread

    fresh = RunTensorBoardLogger(save_dir=str(tmp_path / "other"), name="tb", version="")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "tb").symlink_to(victim, target_is_directory=True)
    with pytest.raises(WriteFailed, match="tb is a symbolic link or not a folder"):
        fresh.experiment.add_scalar("train/err", 50.0, 1)
    assert sorted(p.name for p in victim.iterdir()) == ["target"]


def test_a_record_cannot_add_lines_to_the_report(run: Path, tmp_path: Path) -> None:
    """A stranger's results.json whose error text holds newlines wrote lines of its own into report.md (a forged
    scorecard row): every line of the report is one line of the report, record text escaped."""
    forged = run.parent / "forged"
    forged.mkdir()
    shutil.copy(run / "recipe.json", forged / "recipe.json")
    row = "| 1 | Degradation (Fig. 1) | holds |"
    (forged / "results.json").write_text(json.dumps({"status": "failed", "error": f"boom\n\n{row}\n"}))
    report = write_report([run.parent], tmp_path / "report").read_text()
    assert row not in report.splitlines()
    assert f"boom\\n\\n{row}\\n" in report


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_escaped_text_stays_on_its_line_and_escaping_again_changes_nothing(text: str) -> None:
    """A message escaped where it is made (a RecordError) is escaped again by the report: it must read the same."""
    once = escaped(text)
    assert once.isprintable() and escaped(once) == once
    assert once == text or not text.isprintable()


def test_a_board_writer_releases_its_folder(tmp_path: Path) -> None:
    """Each held folder is released with its writer: a process writing many reports (a notebook, the fuzzing run)
    does not pile up open folders, and a released folder's descriptor number never receives a late write."""
    held = len(os.listdir("/proc/self/fd"))
    for step in range(30):
        with summary_writer(tmp_path / "tb", tmp_path) as writer:
            writer.add_scalar("x", 1.0, step)
        del writer
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= held + 1
    assert [step for step, _ in read_scalars(tmp_path)["x"]] == list(range(30))
    late = summary_writer(tmp_path / "tb", tmp_path)
    url = f"{late.log_dir}/events.out.tfevents.late"
    del late
    gc.collect()  # released; a new writer of another folder may get the same descriptor number
    other = summary_writer(tmp_path / "other", tmp_path)
    HeldFolderFiles().write(url, b"late events")
    assert not (tmp_path / "other" / "events.out.tfevents.late").exists()
    assert not (tmp_path / "tb" / "events.out.tfevents.late").exists()
    other.close()
