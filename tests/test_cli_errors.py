"""Bad input through the real command line: one clear message, a non-zero exit, no results.json claiming success."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_cifar_folder
from tests.helpers import REPO, TINY, run_cli

pytestmark = pytest.mark.slow


def bad_roots(base: Path, tiny_cifar: Path) -> dict[str, Path]:
    roots = {"empty": base / "empty", "archive": base / "archive"}
    roots["empty"].mkdir(parents=True)
    roots["archive"].mkdir()
    (roots["archive"] / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b\x08 truncated download")
    roots["classes"] = write_cifar_folder(base / "classes", 2, 1)
    shutil.rmtree(roots["classes"] / "test" / "ship")
    roots["image"] = write_cifar_folder(base / "image", 2, 1)
    (roots["image"] / "train" / "frog" / "0001.png").write_bytes(b"\x89PNG garbage")
    return roots


CASES = [
    # (name, overrides, root key or None for the good data, expected text, exit code)
    ("depth not 6n+2", ["model.depth=21"], None, "6n+2", 2),
    ("unknown shortcut", ["model.shortcut=D"], None, "shortcut must be one of A, B, C", 2),
    ("unknown dataset", ["data=mnist"], None, "Could not find 'data/mnist'", 2),
    ("missing data offline", [], "empty", "cifar10 not found in", 2),
    ("corrupt archive", [], "archive", "is corrupt or truncated", 2),
    ("wrong class count", [], "classes", "has 9 class folders, expected 10", 2),
    ("unreadable image", [], "image", "cannot read image", 2),
    ("negative lr", ["optim.lr=-0.1"], None, "optim.lr: the learning rate must be > 0", 2),
    ("text for the lr", ["optim.lr=abc"], None, "optim.lr: must be a number, got 'abc'", 2),
    ("text for the seed", ["seed=abc"], None, "seed: must be an integer, got 'abc'", 2),
    ("text in the milestones", ["optim.milestones=[a]"], None, "optim.milestones: must be a list of iteration", 2),
    ("text for the split seed", ["data.split_seed=abc"], None, "data.split_seed: must be an integer", 2),
    ("a depth of text", ["model.depth=abc"], None, "model.depth: must be an integer, got 'abc'", 2),
    ("milestones beyond max_steps", ["optim.milestones=[10,5000]"], None, "optim.milestones", 2),
    ("batch size 0", ["data.batch_size=0"], None, "data.batch_size: must be an integer >= 1", 2),
    ("malformed sweep override", ["-m", "model.depth=20,,32"], None, "Error parsing override", 2),
    ("unwritable output dir", ["hydra.run.dir=/proc/resnet_repro_run"], None, "cannot write", 2),
    ("unknown key", ["optim.learning_rate=0.1"], None, "Could not override 'optim.learning_rate'", 2),
    (
        "callback that does not exist",
        ["+callbacks.x._target_=no.such.Class"],
        None,
        "callbacks.x: cannot import no.such.Class",
        2,
    ),
    ("callback that is not one", ["+callbacks.x._target_=builtins.dict"], None, "is not a Lightning Callback", 2),
    ("checkpoints removed", ["~callbacks.checkpoint"], None, "exactly one resnet_repro.training.callbacks.Run", 2),
    ("checkpoints elsewhere", ["+callbacks.checkpoint.dirpath=/tmp/elsewhere"], None, "leave dirpath unset", 2),
    ("no last.ckpt", ["callbacks.checkpoint.save_last=false"], None, "save_last must be true", 2),
    ("last.ckpt at the end only", ["callbacks.checkpoint.save_top_k=0"], None, "must not be 0", 2),
    ("no checkpoint trigger", ["+callbacks.checkpoint.every_n_train_steps=0"], None, "must not be 0", 2),
    ("an option a callback lacks", ["+callbacks.progress_log.colour=red"], None, "unexpected keyword argument", 2),
    (
        "two progress bars",
        ["progress_bar=true", "+callbacks.tq._target_=pytorch_lightning.callbacks.TQDMProgressBar"],
        None,
        "callbacks.tq: a second progress bar",
        2,
    ),
]


@pytest.mark.parametrize(("name", "overrides", "root", "expected", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_message(
    name: str, overrides: list[str], root: str | None, expected: str, code: int, tiny_cifar: Path, tmp_path: Path
) -> None:
    data_root = bad_roots(tmp_path / "roots", tiny_cifar)[root] if root else tiny_cifar
    run_dir = tmp_path / "run"
    flags = [o for o in overrides if o.startswith("-")]
    run_dir_override = [] if any(o.startswith("hydra.run.dir") for o in overrides) else [f"hydra.run.dir={run_dir}"]
    args = [*flags, *TINY, f"data.root={data_root}", *run_dir_override, *(o for o in overrides if o not in flags)]
    result = run_cli(args, timeout=300)
    assert result.returncode == code, result.stdout[-2000:] + result.stderr[-2000:]
    assert expected in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    # the refusal alone: nothing before it (no "Seed set to 0", no Hydra "Error executing job"), on one line
    assert result.stderr.strip().splitlines() == [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(result.stderr.strip().splitlines()) == 1 and "Seed set" not in result.stdout + result.stderr
    assert not (run_dir / "results.json").exists()
    assert not list(tmp_path.rglob("results.json"))


@pytest.mark.parametrize("module", ["resnet_repro.report", "resnet_repro.export", "resnet_repro.evaluate"])
def test_help_texts_are_whole_sentences(module: str) -> None:
    """--help prints the command's first paragraph whole (export's used to stop at "as a plain weights")."""
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0
    description = " ".join(result.stdout.split("\n\n")[1].split())
    assert description.endswith((".", ")")), description
