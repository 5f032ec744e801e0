"""A stranger's run is data: checkpoints load as data only, nothing is written through a symbolic link or into
files the process does not own, a run holds its `.lock` or stops, and a run that did not train is never
`completed`. Each case through the real command line (or the public function) on a run trained for real."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from resnet_repro import load_model
from resnet_repro.data.cifar_sources import load_cifar
from resnet_repro.errors import UserError
from resnet_repro.files import CheckpointError, load_checkpoint
from resnet_repro.report import write_report
from resnet_repro.runs.lock import RunLock
from resnet_repro.training.sweep import LEDGER_ENV
from resnet_repro.use.weights import best_checkpoint, read_weights
from tests.conftest import write_cifar_folder
from tests.helpers import REPO, TINY, refused, run_cli

pytestmark = pytest.mark.slow


class Payload:
    """Unpickling this runs `touch <marker>`: what a checkpoint from a stranger may carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def trained_run(tiny_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ResNet-8 trained for 24 iterations on the tiny CIFAR folder, with a 50-image val split."""
    run_dir = tmp_path_factory.mktemp("stranger") / "run"
    result = run_cli([*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={run_dir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    (copy / ".lock").unlink(missing_ok=True)
    return copy


def poison(checkpoint: Path, marker: Path) -> None:
    """Add a pickle payload to a real checkpoint (what a tampered run directory holds)."""
    data = torch.load(checkpoint, weights_only=True)
    data["extra"] = Payload(marker)
    torch.save(data, checkpoint)


def python(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def test_a_pickle_payload_never_runs(run_copy: Path, tmp_path: Path, tiny_cifar: Path) -> None:
    marker = tmp_path / "payload-ran"
    for name in ("last.ckpt", *(p.name for p in (run_copy / "checkpoints").glob("best-step=*.ckpt"))):
        poison(run_copy / "checkpoints" / name, marker)
    last = run_copy / "checkpoints" / "last.ckpt"

    with pytest.raises(CheckpointError, match="could run code"):
        load_model(run_copy)
    with pytest.raises(CheckpointError, match="could run code"):
        torch.hub.load(str(REPO), "cifar_resnet", source="local", weights=str(run_copy), which="last")
    refused(python("-m", "resnet_repro.evaluate", str(run_copy), "--data", str(tiny_cifar)), "could run code")
    refused(python("-m", "resnet_repro.export", str(run_copy), "--which", "last"), "could run code")
    assert not (run_copy / "export").exists()

    # an automatic resume of the unfinished run, and an explicit ckpt_path: refused, the file left where it is
    results = json.loads((run_copy / "results.json").read_text())
    (run_copy / "results.json").write_text(json.dumps({**results, "status": "running"}))
    args = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={run_copy}"]
    refused(run_cli(args), "last.ckpt", "could run code")
    refused(run_cli([*args, f"ckpt_path={last}"]), "could run code")
    assert last.is_file() and not list(last.parent.glob("*.corrupt-*"))
    assert not marker.exists()


def test_a_symlinked_lock_or_log_is_refused(run_copy: Path, tmp_path: Path, tiny_cifar: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    args = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={run_copy}"]
    (run_copy / "results.json").unlink()  # an unfinished run: a command would resume it
    for name in (".lock", "train.log"):
        (run_copy / name).unlink(missing_ok=True)
        (run_copy / name).symlink_to(victim)
        refused(run_cli(args), name, "symbolic link")
        assert victim.read_text() == "precious\n"
        (run_copy / name).unlink()
    with pytest.raises(UserError, match="symbolic link"):  # the lock alone, too
        (run_copy / ".lock").symlink_to(victim)
        RunLock(run_copy).acquire()
    assert victim.read_text() == "precious\n"


def test_the_report_removes_only_its_own_leftovers(run_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    foreign = [out / ".last.ckpt.x1y2.tmp", out / "sub" / ".report.md.abc.tmp", out / ".notes.txt.q.tmp"]
    for path in foreign:
        path.write_text("someone else's write in progress")
    own = out / ".report.md.k3j4.tmp"
    own.write_text("half a report")
    write_report([run_copy.parent], out)
    assert all(p.is_file() for p in foreign) and not own.exists()


def test_an_inherited_ledger_path_is_left_alone(tiny_cifar: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "someone" / "ledger"
    ledger.mkdir(parents=True)
    (ledger / "sweep.json").write_text('{"total": 3, "sweep_dir": "elsewhere"}')
    env = {**os.environ, LEDGER_ENV: str(ledger)}
    args = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={tmp_path / 'run'}"]
    result = subprocess.run(
        [sys.executable, "-m", "resnet_repro.train", *args], capture_output=True, text=True, cwd=REPO, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in ledger.iterdir()) == ["sweep.json"]  # neither removed nor written into


def replace_lock_under(command: list[str], root: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """Start `command`, wait until it trains in a run directory under `root`, then delete that run's `.lock` and
    let a "second process" create a new one; return the finished process and the run directory."""
    holder = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.time() + 300
        while not (events := list(root.glob("**/tb/events.*"))) and time.time() < deadline:  # training started
            time.sleep(0.5)
        run_dir = events[0].parent.parent
        (run_dir / ".lock").unlink()  # a "stale lock" cleanup while the run is held
        (run_dir / ".lock").write_text("{}")  # and a second process's new file
        stdout, stderr = holder.communicate(timeout=300)
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGKILL)
    return subprocess.CompletedProcess(command, holder.returncode, stdout, stderr), run_dir


def test_a_replaced_lock_stops_its_holder(tiny_cifar: Path, tmp_path: Path) -> None:
    args = [*TINY, "trainer.max_steps=4000", "trainer.val_check_interval=4000", "optim.milestones=[3000]"]
    args += [f"data.root={tiny_cifar}", "model.depth=8"]
    train = [sys.executable, "-m", "resnet_repro.train"]
    single, run_dir = replace_lock_under([*train, *args, f"hydra.run.dir={tmp_path / 'one'}"], tmp_path / "one")
    assert single.returncode == 2, single.stderr[-3000:]
    assert "was deleted or replaced while this process held the run" in single.stderr
    assert not (run_dir / "results.json").exists()
    # in a sweep: not "held by another process" (no process is sure to finish it) but stopped, and exit 1
    sweep, run_dir = replace_lock_under(
        [*train, "-m", *args, f"output_root={tmp_path}", "name=sweep"], tmp_path / "sweep"
    )
    assert sweep.returncode == 1, sweep.stderr[-3000:]
    assert "1 stopped (its .lock was replaced)" in sweep.stderr and "held by another process" not in sweep.stderr
    assert not (run_dir / "results.json").exists()


def test_best_is_the_current_attempts_by_number(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    for name in ("best-step=9000.ckpt", "best-step=10000.ckpt"):
        torch.save({}, folder / name)
    assert best_checkpoint(folder).name == "best-step=10000.ckpt"  # as numbers, not text
    # a restarted run: the earlier attempt's best-step=24 stays, the current one is -v1, named by last.ckpt's state
    for name in ("best-step=24.ckpt", "best-step=24-v1.ckpt"):
        torch.save({}, folder / name)
    (folder / "best-step=9000.ckpt").unlink()
    (folder / "best-step=10000.ckpt").unlink()
    state = {"best_model_path": "/another/machine/run/checkpoints/best-step=24-v1.ckpt"}
    torch.save({"callbacks": {"ModelCheckpoint{'monitor': 'val/err'}": state}}, folder / "last.ckpt")
    assert best_checkpoint(folder).name == "best-step=24-v1.ckpt"
    (folder / "last.ckpt").unlink()
    assert best_checkpoint(folder).name == "best-step=24-v1.ckpt"  # without it: the highest version of a step


def test_an_explicit_checkpoint_is_checked_against_the_recipe(
    trained_run: Path, tiny_cifar: Path, tmp_path: Path
) -> None:
    last = trained_run / "checkpoints" / "last.ckpt"
    args = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={tmp_path / 'run'}"]
    refused(run_cli([*args, "optim.lr=0.05", f"ckpt_path={last}"]), "optim.lr (recorded 0.1, asked 0.05)")
    refused(run_cli([*args, f"ckpt_path={tmp_path / 'missing.ckpt'}"]), "does not exist")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(os.urandom(4096))
    refused(run_cli([*args, f"ckpt_path={garbage}"]), "not a readable checkpoint")
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_training_set_smaller_than_a_batch_is_refused(tiny_cifar: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", "data.train_size=10", f"output_root={out}", "name=tiny"]
    refused(run_cli(args), "10 images", "batch of 16")
    assert not out.exists() or list(out.iterdir()) == []  # no empty run directory left behind


def test_a_run_that_stops_early_is_not_completed(tiny_cifar: Path, tmp_path: Path) -> None:
    """trainer.max_epochs=1 ends training after one epoch (350 images / 16 = 21 iterations), before max_steps."""
    args = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", "trainer.max_epochs=1", "trainer.max_steps=48"]
    args += ["trainer.val_check_interval=24", "optim.milestones=[32,40]", f"hydra.run.dir={tmp_path}"]
    result = run_cli(args)
    assert result.returncode == 1 and "training stopped at step 21 of 48" in result.stderr, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "stopped" and results["step"] == 21 and not results["metrics"]


def test_unusable_weights_are_one_line_each(run_copy: Path, tiny_cifar: Path, tmp_path: Path) -> None:
    last = run_copy / "checkpoints" / "last.ckpt"
    # weights that do not fit their network: export refuses and writes nothing
    data = load_checkpoint(last)
    data["state_dict"] = {k: v for k, v in data["state_dict"].items() if not k.endswith("fc.bias")}
    torch.save(data, last)
    refused(python("-m", "resnet_repro.export", str(run_copy), "--which", "last"), "do not fit")
    assert not (run_copy / "export").exists()
    # an exported file outside any run, without --out: where to write is asked for, not guessed
    exported = tmp_path / "weights.pt"
    torch.save({**read_weights(run_copy), "source": "x"}, exported)
    refused(python("-m", "resnet_repro.export", str(exported)), "--out")
    # a recipe without model.num_classes
    data = load_checkpoint(run_copy / "checkpoints" / next(p.name for p in last.parent.glob("best-step=*")))
    identity = data["run_identity"]
    del identity["recipe"]["model.num_classes"]
    torch.save({**data, "run_identity": identity}, last)
    refused(python("-m", "resnet_repro.evaluate", str(run_copy), "--which", "last"), "model.num_classes")
    # a truncated checkpoint
    last.write_bytes(last.read_bytes()[:1000])
    refused(python("-m", "resnet_repro.evaluate", str(run_copy), "--which", "last"), "not a readable checkpoint")


def test_evaluate_uses_the_runs_recorded_data(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    result = python("-m", "resnet_repro.evaluate", str(trained_run), "--which", "last", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    (record,) = json.loads(out.read_text()).values()
    recorded = json.loads((trained_run / "results.json").read_text())
    assert record["top1_err"] == pytest.approx(recorded["metrics"]["test_err"], abs=1e-4)
    assert record["data_root"] == recorded["data"]["root"]


def test_a_filesystem_without_locks_is_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_locks(*args: object) -> None:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

    monkeypatch.setattr(fcntl, "fcntl", no_locks)
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(UserError, match="does not support file locks"):
        RunLock(tmp_path / "run").acquire()


def test_data_cache_follows_links_and_survives_an_unwritable_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_cifar_folder(tmp_path / "data", 2, 1)
    elsewhere = tmp_path / "elsewhere" / "cat"
    shutil.move(root / "train" / "cat", elsewhere)
    (root / "train" / "cat").symlink_to(elsewhere, target_is_directory=True)
    first = load_cifar("cifar10", root).fingerprint
    image = elsewhere / "0000.png"
    write_cifar_folder(tmp_path / "other", 2, 1, seed=7)
    shutil.copy(tmp_path / "other" / "train" / "cat" / "0000.png", image)  # an edited image behind the link
    os.utime(image, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert load_cifar("cifar10", root).fingerprint != first  # the cache key saw the change

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    arrays = load_cifar("cifar10", write_cifar_folder(tmp_path / "data2", 2, 1), cache_dir=blocker / "cache")
    assert arrays.train_images.shape == (20, 3, 32, 32) and "training goes on without a cache" in caplog.text


def test_a_recorded_dataset_name_never_becomes_a_path_or_an_import(run_copy: Path, tmp_path: Path) -> None:
    """The outside audit of 63efd54: a run whose recipe names its dataset `../<planted>` made evaluate read the
    planted YAML and import its `official:` module (code ran); a name with `../` put the image cache and the
    report's figures outside their folders. Now the name is looked up among the declared datasets only, and a
    name that is no file name is refused in one line."""
    planted = tmp_path / "planted"
    planted.mkdir()
    marker = tmp_path / "ran"
    (planted / "evil.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    (planted / "x.yaml").write_text("family: cifar\nnum_classes: 10\nofficial: evil.Reader\n")
    hostile = os.path.relpath(planted / "x", REPO / "conf" / "data")
    for name in ("recipe.json", "results.json"):
        record = json.loads((run_copy / name).read_text())
        record["recipe"]["data.name"] = hostile
        (run_copy / name).write_text(json.dumps(record))
    for checkpoint in (run_copy / "checkpoints").glob("*.ckpt"):  # the identity each checkpoint carries too
        data = torch.load(checkpoint, weights_only=True)
        data["run_identity"]["recipe"]["data.name"] = hostile
        torch.save(data, checkpoint)
    env = {**os.environ, "PYTHONPATH": str(planted)}
    result = python(
        "-m", "resnet_repro.evaluate", str(run_copy), "--which", "last", "--out", str(tmp_path / "e.json"), env=env
    )
    refused(result, "data.name")
    assert not marker.exists()
    before = set(tmp_path.rglob("*"))
    write_report([run_copy.parent], tmp_path / "report")
    made = {p for p in set(tmp_path.rglob("*")) - before if not p.is_relative_to(tmp_path / "report")}
    assert made == set() and any((tmp_path / "report").glob("fig7-dataset-*.png"))


def test_a_fifo_in_place_of_a_record_does_not_hang(run_copy: Path, tmp_path: Path) -> None:
    """A FIFO where results.json (or layer_responses.json) should be made the report and load_model wait forever;
    a record that is not a regular file is now no record."""
    (run_copy / "results.json").unlink()
    os.mkfifo(run_copy / "results.json")
    (run_copy / "layer_responses.json").unlink()
    os.mkfifo(run_copy / "layer_responses.json")
    result = python("-m", "resnet_repro.report", str(run_copy.parent), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "unfinished" in (tmp_path / "report" / "report.md").read_text()
    assert load_model(run_copy, which="last") is not None


def test_evaluate_and_report_write_only_their_own_files(run_copy: Path, tmp_path: Path) -> None:
    """evaluate --out never replaces a file that is no evaluation record; NaN weights are an error, not 90%; a
    `report` link in a sweep is refused, not followed."""
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    result = python("-m", "resnet_repro.evaluate", str(run_copy), "--which", "last", "--out", str(notes))
    refused(result, "holds no evaluation records")
    assert notes.read_text() == "my notes"
    for checkpoint in (run_copy / "checkpoints").glob("*.ckpt"):
        data = torch.load(checkpoint, weights_only=True)
        data["state_dict"] = {
            k: v.float() * float("nan") if v.is_floating_point() else v for k, v in data["state_dict"].items()
        }
        torch.save(data, checkpoint)
    result = python("-m", "resnet_repro.evaluate", str(run_copy), "--which", "last", "--out", str(tmp_path / "e.json"))
    refused(result, "not finite")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run_copy.parent / "report").symlink_to(elsewhere)
    result = python("-m", "resnet_repro.report", str(run_copy.parent))
    refused(result, "is a symbolic link")
    assert list(elsewhere.iterdir()) == []
