"""Fuzzing every reading entry point with hostile run directories, sweeps, exports and checkpoints (tests/fuzz.py):
a correct result or one line and exit 2, within a timeout, nothing written outside the command's own output, no
module imported from a record. CI runs a short profile; `make fuzz` a deep one (FUZZ_EXAMPLES, counts in
FUZZ_REPORT)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from resnet_repro.use.evaluate import main as evaluate_main
from resnet_repro.use.export import main as export_main
from tests import fuzz
from tests.helpers import TINY, run_cli

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))


@pytest.fixture(scope="module")
def template(tiny_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    """A sweep with one trained ResNet-8 (24 iterations on the tiny CIFAR folder), its export, and what the fuzzed
    entry points need: the data folder (its image cache made) and the run's identity."""
    root = tmp_path_factory.mktemp("fuzz") / "template"
    run = root / "sweep" / "resnet8" / "seed=0"
    result = run_cli([*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir='{run}'"])
    assert result.returncode == 0, result.stderr[-3000:]
    (run / ".lock").unlink(missing_ok=True)
    assert fuzz.cli(export_main, [str(run), "--which", "last", "--out", str(root / "export.pt")])[0] == 0
    assert (
        fuzz.cli(evaluate_main, [str(root / "export.pt"), "--data", str(tiny_cifar), "--out", str(root / "e.json")])[0]
        == 0
    )
    identity = {
        k: v for k, v in json.loads((run / "recipe.json").read_text()).items() if k in ("recipe_id", "seed", "recipe")
    }
    yield root, {"data": str(tiny_cifar), "identity": identity}
    fuzz.write_counts(os.environ.get("FUZZ_REPORT"))


@pytest.mark.parametrize("entry", list(fuzz.ENTRY_POINTS))
def test_the_untouched_case_reads(template: tuple[Path, dict], entry: str) -> None:
    """Without a mutation every entry point succeeds: the harness judges real results, not its own failures."""
    assert fuzz.run_case(*template, entry, []) == []
    assert fuzz.COUNTS["ran"] >= 1


def test_the_watch_sees_writes_imports_and_hangs(template: tuple[Path, dict]) -> None:
    """The harness's own findings: a write into the victim tree, an import of a planted module, a blocking read."""
    case = fuzz.make_case(template[0])
    fuzz.WATCH.case, fuzz.WATCH.writes, fuzz.WATCH.imports = case, [], []
    try:
        (case.victim / "x").write_text("x")
        __import__("this")  # a module that acts on import: what a record could name
    finally:
        fuzz.WATCH.case = None
    assert fuzz.WATCH.writes and fuzz.WATCH.imports
    fuzz.ENTRY_POINTS["blocking read"] = lambda c, ctx: fuzz.api((c.run / "results.json").read_text)
    fuzz.TIMEOUT_S["blocking read"] = 2
    try:
        found = fuzz.run_case(*template, "blocking read", [fuzz.Mutation("special", "results.json", "fifo")])
    finally:
        del fuzz.ENTRY_POINTS["blocking read"]
    assert found == ["hang"]


# the deep profile (make fuzz) only generates: every finding is counted and kept with its case, none is shrunk
DEEP = os.environ.get("FUZZ_DEEP") == "1"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.generate] if DEEP else list(Phase),
)
@given(entry=st.sampled_from(list(fuzz.ENTRY_POINTS)), changes=st.lists(fuzz.mutations(), min_size=1, max_size=3))
def test_hostile_files_are_read_correctly_or_refused_in_one_line(
    template: tuple[Path, dict], entry: str, changes: list[fuzz.Mutation]
) -> None:
    findings = fuzz.run_case(*template, entry, changes)
    if DEEP and findings:
        fuzz.FOUND.append({"entry": entry, "changes": changes, "findings": findings})
        return
    assert not findings, (entry, changes, findings)
