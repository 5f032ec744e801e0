"""Issue 25's attacks replayed through the command lines alone, against any checkout: the evidence that each one
broke the code it was found on (63efd54) and is refused now. Not collected by pytest (the regression tests of the
same attacks are tests/test_gate.py's, which use this version's modules); run it by hand:

    .venv/bin/python tests/replay_issue25.py CHECKOUT     # a folder holding src/resnet_repro of any commit

It trains one tiny ResNet-8 with that checkout's code (PYTHONPATH=CHECKOUT/src, this .venv's packages), then plays
each attack on a copy of the run and prints one line per attack: HELD (a result, or one line and exit 2, and nothing
outside the command's own output touched) or BROKEN (what happened), and a count. Exit status 1 when any is BROKEN.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import write_cifar_folder  # noqa: E402

TIMEOUT_S = 120  # a command still running after this long is a hang (the tiny run's commands take seconds)


class Replay:
    """A scratch folder with data and one trained run of `checkout`'s code, and the attacks' verdicts."""

    def __init__(self, checkout: Path) -> None:
        self.checkout = checkout
        self.env = {**os.environ, "PYTHONPATH": str(checkout / "src"), "PYTHONUNBUFFERED": "1"}
        self.base = Path(tempfile.mkdtemp(prefix="replay-issue25-"))
        self.data = write_cifar_folder(self.base / "data", 6, 4)
        self.tiny = [
            *("data.batch_size=16", "data.val_size=0", "data.eval_batch_size=100", "trainer.max_steps=8"),
            *("trainer.val_check_interval=4", "optim.milestones=[4,6]", "log_every=4", "progress_bar=false"),
            *("model.depth=8", f"data.root={self.data}"),
        ]
        self.verdicts: list[tuple[str, bool, str]] = []
        code, out = self.command("resnet_repro.train", *self.tiny, f"hydra.run.dir={self.base}/trained/sweep/run")
        if code != 0:
            sys.exit(f"the tiny run did not train with {checkout}:\n{out[-3000:]}")
        self.run = self.base / "trained" / "sweep" / "run"
        (self.run / ".lock").unlink(missing_ok=True)

    def command(self, module: str, *args: str, cwd: Path | None = None) -> tuple[int | str, str]:
        """`python -m module args` with the checkout's code: (exit status or "hang", its output)."""
        try:
            done = subprocess.run(
                [sys.executable, "-m", module, *args],
                capture_output=True,
                text=True,
                cwd=cwd or self.checkout,
                env=self.env,
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return "hang", ""
        return done.returncode, (done.stdout + done.stderr).strip()

    def copy(self, tag: str) -> Path:
        """A copy of the trained run, in a sweep folder of its own."""
        run = self.base / tag / "sweep" / "run"
        shutil.copytree(self.run, run, symlinks=True)
        return run

    def judge(
        self,
        name: str,
        code: int | str,
        out: str,
        untouched: bool = True,
        result_ok: bool = False,
        words: tuple[str, ...] = (),
    ) -> None:
        """HELD when nothing outside was touched and the command gave one line holding `words` and exit 2 (or,
        `result_ok`, a result: exit 0 and no traceback); BROKEN otherwise."""
        lines = out.splitlines()
        one_line = code == 2 and len(lines) == 1 and all(word in out for word in words)
        result = result_ok and code == 0 and "Traceback" not in out
        held = untouched and (one_line or result)
        shown = "hang" if code == "hang" else f"exit {code}, {len(lines)} lines: {lines[-1][:110] if lines else ''}"
        self.verdicts.append((name, held, shown if untouched else f"touched outside; {shown}"))


def poison(run: Path, key: str, value: Any) -> None:
    """Set every `key` in the run's records (recipe.json, results.json, its checkpoints) to `value`."""

    def deep(tree: Any) -> None:
        if isinstance(tree, dict):
            for k in list(tree):
                if k == key:
                    tree[k] = value
                else:
                    deep(tree[k])
        elif isinstance(tree, list):
            for item in tree:
                deep(item)

    for name in ("recipe.json", "results.json"):
        record = json.loads((run / name).read_text())
        deep(record)
        (run / name).write_text(json.dumps(record))
    for checkpoint in (run / "checkpoints").glob("*.ckpt"):
        state = torch.load(checkpoint, weights_only=False)
        deep(state)
        torch.save(state, checkpoint)


def edit_checkpoints(run: Path, change: Callable[[dict], None]) -> None:
    for checkpoint in (run / "checkpoints").glob("*.ckpt"):
        state = torch.load(checkpoint, weights_only=False)
        change(state)
        torch.save(state, checkpoint)


def fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def attacks(r: Replay) -> None:
    """Each attack of issue 25 that the command lines alone can play (all but a checkpoints/ folder swapped for a
    link mid-run, the sweep ledger's link, a changed image cache and loop counters past max_steps: their regression
    tests are in tests/test_gate.py and tests/test_concurrency.py)."""
    # the control: the untouched run evaluates, exports and reports (a refusal below is the attack's, not this)
    for module, args in (
        ("resnet_repro.evaluate", [str(r.copy("control")), "--data", str(r.data)]),
        ("resnet_repro.export", [str(r.base / "control" / "sweep" / "run")]),
        ("resnet_repro.report", [str(r.base / "control" / "sweep")]),
    ):
        code, out = r.command(module, *args)
        if code != 0:
            sys.exit(f"control: {module} failed on the untouched run:\n{out[-2000:]}")

    # code execution: a recorded data.name that is a path to a planted declaration, its `official:` a planted module
    run, plant = r.copy("plant"), r.base / "planted"
    plant.mkdir()
    (plant / "evil.yaml").write_text("name: evil\nfamily: cifar\nnum_classes: 10\nofficial: planted_mod.Reader\n")
    (plant / "planted_mod.py").write_text(f"open({str(plant / 'RAN')!r}, 'w')\nclass Reader: pass\n")
    poison(run, "data.name", str(plant / "evil"))
    code, out = r.command("resnet_repro.evaluate", str(run), "--data", str(r.data), cwd=plant)
    ran = (plant / "RAN").exists()
    r.judge("a recorded data.name imports a planted module (evaluate)", code, out, not ran, words=("data.name",))

    # export's default file name from a recorded seed holding ../
    run = r.copy("seed")
    poison(run, "seed", "/../../../../seed-victim")
    code, out = r.command("resnet_repro.export", str(run))
    outside = list(r.base.rglob("*seed-victim*"))
    r.judge("export's file name from a recorded seed with ../ (export)", code, out, not outside, True, ("seed",))

    # evaluate's cache path from a recorded data.name
    run = r.copy("cache")
    poison(run, "data.name", str(r.base / "cache-victim" / "x"))
    code, out = r.command("resnet_repro.evaluate", str(run), "--data", str(r.data))
    made = (r.base / "cache-victim").exists()
    r.judge("evaluate's cache path from a recorded data.name", code, out, not made, words=("data.name",))

    # the report's figure names from a recorded data.name, through a folder the stranger's sweep holds
    run = r.copy("figure")
    (run.parent / "report" / "fig6-x").mkdir(parents=True)
    poison(run, "data.name", "x/../../../figure-victim")
    code, out = r.command("resnet_repro.report", str(run.parent))
    victims = list(r.base.rglob("figure-victim*"))
    r.judge("the report's figure names from a recorded data.name", code, out, not victims, result_ok=True)

    # `report SWEEP` follows a `report` link into another folder
    run, other = r.copy("link"), r.base / "link" / "other"
    other.mkdir()
    (run.parent / "report").symlink_to(other, target_is_directory=True)
    code, out = r.command("resnet_repro.report", str(run.parent))
    r.judge("report SWEEP follows a report link", code, out, not list(other.iterdir()), words=("symbolic link",))

    # `report --out DIR` removes event files in DIR/tb that it did not write
    run, out_dir = r.copy("board"), r.base / "board" / "mine"
    (out_dir / "tb").mkdir(parents=True)
    theirs = out_dir / "tb" / "events.out.tfevents.1.host.someone"
    theirs.write_bytes(b"someone's events")
    code, out = r.command("resnet_repro.report", str(run.parent), "--out", str(out_dir))
    r.judge("report --out DIR removes event files it did not write", code, out, theirs.exists(), result_ok=True)

    # `evaluate --out notes.txt` replaces a file that holds no evaluation record
    notes = r.base / "notes.txt"
    notes.write_text("the user's notes")
    code, out = r.command("resnet_repro.evaluate", str(r.run), "--data", str(r.data), "--out", str(notes))
    kept = notes.read_text() == "the user's notes"
    r.judge("evaluate --out replaces a file of the user's", code, out, kept, words=("no evaluation record",))

    # a dangling tb/hparams.yaml link: training creates its target
    run, target = r.base / "hparams" / "run", r.base / "hparams-victim.yaml"
    (run / "tb").mkdir(parents=True)
    (run / "tb" / "hparams.yaml").symlink_to(target)
    code, out = r.command("resnet_repro.train", *r.tiny, f"hydra.run.dir={run}")
    r.judge("a dangling tb/hparams.yaml link (train)", code, out, not target.exists(), words=("symbolic link",))

    # a run directory that is itself a link sends every file to its target
    target, link = r.base / "link-target", r.base / "link-run"
    target.mkdir()
    link.symlink_to(target, target_is_directory=True)
    code, out = r.command("resnet_repro.train", *r.tiny, f"hydra.run.dir={link}")
    r.judge("a run directory that is a link (train)", code, out, not list(target.iterdir()), words=("symbolic link",))

    # progress that was never trained: a run recorded completed at step 1 is counted by the report
    run = r.copy("step")
    results = json.loads((run / "results.json").read_text())
    results.update(status="completed", step=1)
    (run / "results.json").write_text(json.dumps(results))
    code, out = r.command("resnet_repro.report", str(run.parent))
    report = run.parent / "report" / "report.md"
    counted = report.is_file() and "1 of 1 runs completed" in report.read_text()
    r.judge("the report counts a run recorded completed at step 1", code, out, not counted, result_ok=True)

    # FIFOs where a record should be: every reading command hangs
    for name, module, args in (
        ("results.json", "resnet_repro.report", ["SWEEP"]),
        ("results.json", "resnet_repro.evaluate", ["RUN", "--data", str(r.data)]),
        ("results.json", "resnet_repro.export", ["RUN"]),
        ("layer_responses.json", "resnet_repro.report", ["SWEEP"]),
        (".lock", "resnet_repro.report", ["SWEEP"]),
    ):
        run = r.copy(f"fifo-{name}-{module.split('.')[-1]}")
        fifo(run / name)
        args = [str(run.parent) if a == "SWEEP" else str(run) if a == "RUN" else a for a in args]
        code, out = r.command(module, *args)
        r.judge(f"a FIFO as {name} ({module.split('.')[-1]})", code, out, result_ok=True)
    run = r.base / "fifo-log" / "run"
    run.mkdir(parents=True)
    fifo(run / "train.log")
    code, out = r.command("resnet_repro.train", *r.tiny, f"hydra.run.dir={run}")
    r.judge("a FIFO as train.log (train)", code, out, result_ok=True)

    # tracebacks: bad values on the command line
    for override in ("optim.lr=abc", "seed=abc", "optim.milestones=[a]", "data.official=..x"):
        code, out = r.command(
            "resnet_repro.train", *r.tiny, override, f"hydra.run.dir={r.base}/cli/{override.split('=')[0]}"
        )
        r.judge(f"{override} (train)", code, out, words=(override.split("=")[0],))

    # tracebacks: records of the wrong types
    run = r.copy("list")
    (run / "results.json").write_text("[]")
    code, out = r.command("resnet_repro.evaluate", str(run), "--data", str(r.data))
    r.judge("results.json holding a list (evaluate)", code, out, result_ok=True, words=("results.json",))
    run = r.copy("nested")
    (run / "results.json").write_text('{"status": ' + "[" * 100_000 + "]" * 100_000 + "}")
    code, out = r.command("resnet_repro.report", str(run.parent))
    r.judge("results.json nested 100,000 deep (report)", code, out, result_ok=True)
    run = r.copy("text")
    recipe = json.loads((run / "recipe.json").read_text())
    recipe["recipe"]["trainer.max_steps"] = "abc"
    (run / "recipe.json").write_text(json.dumps(recipe))
    code, out = r.command("resnet_repro.report", str(run.parent))
    r.judge("text in a numeric recipe field (report)", code, out, result_ok=True)
    run = r.copy("intkeys")
    edit_checkpoints(run, lambda state: state.update(state_dict=dict(enumerate(state["state_dict"].values()))))
    code, out = r.command("resnet_repro.evaluate", str(run), "--data", str(r.data))
    r.judge("a state_dict with integer keys (evaluate)", code, out, words=("parameter name",))

    # a network with NaN weights: recorded as "top-1 error 90.00%"
    run = r.copy("nan")
    edit_checkpoints(
        run, lambda state: [t.fill_(float("nan")) for t in state["state_dict"].values() if t.is_floating_point()]
    )
    code, out = r.command("resnet_repro.evaluate", str(run), "--data", str(r.data))
    r.judge("NaN weights evaluated as an error rate (evaluate)", code, out, words=("not finite",))

    # class folders named in another encoding
    data = r.base / "latin1"
    shutil.copytree(r.data, data)
    for split in ("train", "test"):
        os.rename(data / split / "cat", os.path.join(os.fsencode(data / split), b"chat-\xe9"))
    code, out = r.command("resnet_repro.train", *r.tiny, f"data.root={data}", f"hydra.run.dir={r.base}/latin1-run")
    r.judge("class folders not named in UTF-8 (train)", code, out, result_ok=True)


def main() -> None:
    replay = Replay(Path(sys.argv[1]).resolve())
    try:
        attacks(replay)
    finally:
        shutil.rmtree(replay.base, ignore_errors=True)
    for name, held, shown in replay.verdicts:
        print(f"{'HELD  ' if held else 'BROKEN'} {name}: {shown}")
    broken = sum(not held for _, held, _ in replay.verdicts)
    print(f"{len(replay.verdicts) - broken} of {len(replay.verdicts)} attacks held, {broken} broke ({sys.argv[1]})")
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
