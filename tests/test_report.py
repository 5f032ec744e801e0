"""The report on synthetic sweep folders with known numbers: grouping by recipe, like with like, claim verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_repro.recipe import fingerprint, make_recipe
from resnet_repro.report import write_report
from resnet_repro.report.claims import CLAIMS, evaluate
from resnet_repro.report.collect import by_dataset, by_setting, find_runs, group_runs
from resnet_repro.report.render import describe_setting, noise_floors
from resnet_repro.report.stats import FAILS, HOLDS, INCONCLUSIVE, NOT_RUN, difference, paired_difference, trend
from tests.helpers import REPO, compose_config

OFFICIAL = {"source": "official", "fingerprint": "0123456789abcdef"}
FOLDER = {"source": "image-folder", "fingerprint": "fedcba9876543210"}


def add_run(
    sweep: Path,
    overrides: list[str],
    seed: int,
    test: float,
    train: float = 1.0,
    data: dict | None = None,
    responses: list[float] | None = None,
    status: str = "completed",
    **metrics: float,
) -> Path:
    """A run directory as training writes it, with the recipe the real configs compose for `overrides`."""
    cfg = compose_config(overrides)
    data = data or OFFICIAL
    recipe = make_recipe(cfg, data)
    run_dir = sweep / fingerprint(recipe) / f"seed={seed}"
    run_dir.mkdir(parents=True)
    identity = {"recipe_id": fingerprint(recipe), "seed": seed, "recipe": recipe}
    (run_dir / "recipe.json").write_text(json.dumps(identity))
    results = {
        "status": status,
        "step": cfg.trainer.max_steps,
        "metrics": {"test_err": test, "train_err": train, **metrics} if status == "completed" else {},
        **identity,
        "data": {**data, "kind": "official-batches" if data["source"] == "official" else "image-folder"},
        "precision": cfg.trainer.precision,
        "params": 1,
        "git_commit": "0" * 40,
        "machine": {"cpu": "test"},
    }
    if status != "completed":
        results["error"] = "RuntimeError: boom"
    (run_dir / "results.json").write_text(json.dumps(results))
    if responses is not None:
        (run_dir / "layer_responses.json").write_text(json.dumps({f"l{i}": r for i, r in enumerate(responses)}))
    return run_dir


def scorecard(sweep: Path) -> dict[int, list[dict]]:
    write_report([sweep], sweep / "report")
    claims = json.loads((sweep / "report" / "scorecard.json").read_text())["claims"]
    out: dict[int, list[dict]] = {}
    for claim in claims:
        out.setdefault(claim["id"], []).append(claim)
    return out


def row(report: str, label: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.split("|")[1:-1]] for line in report.splitlines() if line.startswith(f"| {label} |")
    ]


def test_other_datasets_and_lr_sweeps_keep_their_own_rows(tmp_path: Path) -> None:
    for seed, err in ((0, 8.5), (1, 8.9)):
        add_run(tmp_path, ["net=resnet20"], seed, err)
    add_run(tmp_path, ["net=resnet20", "optim.lr=0.05"], 0, 30.0)
    add_run(tmp_path, ["net=resnet20", "data=cifar100"], 0, 33.0)
    groups = group_runs(find_runs([tmp_path]))
    assert sorted((g.dataset, len(g.runs)) for g in groups) == [("cifar10", 1), ("cifar10", 2), ("cifar100", 1)]
    report = write_report([tmp_path], tmp_path / "report").read_text()
    cifar10, cifar100 = report.split("## CIFAR-100")[0], report.split("## CIFAR-100")[1]
    rows = row(cifar10, "ResNet-20")
    assert len(rows) == 2
    paper_recipe = next(r for r in rows if r[3] == "2")
    assert paper_recipe[4] == "8.70 ± 0.28" and paper_recipe[7] == "8.75" and paper_recipe[8] == "-0.05"
    lr_row = next(r for r in rows if r[3] == "1")
    assert lr_row[4] == "30.00" and "optim.lr = 0.05 (paper: 0.1)" in lr_row[7] and lr_row[8] == "–"
    (c100,) = row(cifar100, "ResNet-20")
    assert c100[4] == "33.00" and "paper has no number" in c100[7]


def test_resnet110_mean_and_best_meet_the_matching_paper_numbers(tmp_path: Path) -> None:
    for seed, err in enumerate((6.5, 6.7, 6.9)):
        add_run(tmp_path, ["net=resnet110"], seed, err)
    report = write_report([tmp_path], tmp_path / "report").read_text()
    (cells,) = row(report, "ResNet-110")
    assert cells[4] == "6.70 ± 0.20" and cells[5] == "6.50"
    assert cells[7] == "6.61 ± 0.16 (mean of 5); best of 5 6.43"
    assert cells[8] == "mean +0.09; best +0.07"


def test_a_recipe_that_is_not_the_papers_gets_no_difference(tmp_path: Path) -> None:
    quick = ["experiment=quick", "net=resnet56"]
    add_run(tmp_path, quick, 0, 57.3, data=FOLDER)
    report = write_report([tmp_path], tmp_path / "report").read_text()
    (cells,) = row(report, "ResNet-56")
    assert cells[7].startswith("not comparable: ") and cells[8] == "–"
    for words in (
        "1,000 of 64,000 iterations",
        "image folder, not the official files",
        "5,000-image test subset",
        "precision bf16-mixed (paper: 32-true)",
    ):
        assert words in cells[7], words


# The claims: a holding, a failing and a noisy case each. {label: (overrides, [(train, test), ...])}
PLAIN_20 = ["net=plain20"]
PLAIN_56 = ["net=plain56"]
CLAIM_CASES = {
    1: (
        {
            "p20": (PLAIN_20, [(1.2, 9.5), (1.3, 9.7), (1.4, 9.6)]),
            "p56": (PLAIN_56, [(5.5, 13.1), (5.7, 13.3), (5.9, 13.4)]),
        },
        {
            "p20": (PLAIN_20, [(5.5, 13.1), (5.7, 13.3), (5.9, 13.4)]),
            "p56": (PLAIN_56, [(1.2, 9.5), (1.3, 9.7), (1.4, 9.6)]),
        },
        {
            "p20": (PLAIN_20, [(1.0, 9.0), (6.0, 14.0), (3.0, 11.0)]),
            "p56": (PLAIN_56, [(2.0, 10.0), (5.0, 13.0), (4.0, 9.0)]),
        },
    ),
    2: (
        {"p56": (PLAIN_56, [(5.5, 13.1), (5.7, 13.3)]), "r56": (["net=resnet56"], [(0.1, 7.0), (0.2, 6.9)])},
        {"p56": (PLAIN_56, [(0.1, 7.0), (0.2, 6.9)]), "r56": (["net=resnet56"], [(5.5, 13.1), (5.7, 13.3)])},
        {"p56": (PLAIN_56, [(1.0, 7.0), (6.0, 13.0)]), "r56": (["net=resnet56"], [(5.0, 12.0), (0.5, 7.5)])},
    ),
    3: (
        {
            "r20": (["net=resnet20"], [(0.5, 8.7), (0.6, 8.8)]),
            "r56": (["net=resnet56"], [(0.1, 7.0), (0.1, 6.9)]),
            "r110": (["net=resnet110"], [(0.1, 6.5), (0.1, 6.6)]),
        },
        {
            "r20": (["net=resnet20"], [(0.5, 6.5), (0.6, 6.6)]),
            "r56": (["net=resnet56"], [(0.1, 7.0), (0.1, 6.9)]),
            "r110": (["net=resnet110"], [(0.1, 8.7), (0.1, 8.8)]),
        },
        {
            "r20": (["net=resnet20"], [(0.5, 8.0), (0.6, 6.0)]),
            "r56": (["net=resnet56"], [(0.1, 9.0), (0.1, 6.0)]),
            "r110": (["net=resnet110"], [(0.1, 5.0), (0.1, 8.5)]),
        },
    ),
    4: (
        {
            "r110": (["net=resnet110"], [(0.1, 6.5), (0.1, 6.6)]),
            "r1202": (["net=resnet1202"], [(0.05, 7.9), (0.08, 8.0)]),
        },
        {
            "r110": (["net=resnet110"], [(0.1, 6.5), (0.1, 6.6)]),
            "r1202": (["net=resnet1202"], [(0.05, 6.0), (0.08, 6.1)]),
        },
        {
            "r110": (["net=resnet110"], [(0.1, 6.5), (0.1, 8.6)]),
            "r1202": (["net=resnet1202"], [(0.05, 7.9), (0.08, 6.0)]),
        },
    ),
    6: (
        {
            "a": (["net=resnet20"], [(0.5, 8.7), (0.6, 8.8)]),
            "b": (["net=resnet20", "model.shortcut=B"], [(0.5, 8.6), (0.5, 8.7)]),
        },
        {
            "a": (["net=resnet20"], [(0.5, 8.7), (0.6, 8.8)]),
            "b": (["net=resnet20", "model.shortcut=B"], [(0.5, 11.6), (0.5, 11.7)]),
        },
        {
            "a": (["net=resnet20"], [(0.5, 8.7), (0.6, 9.8)]),
            "b": (["net=resnet20", "model.shortcut=B"], [(0.5, 8.0), (0.5, 10.7)]),
        },
    ),
}


@pytest.mark.parametrize("claim", sorted(CLAIM_CASES))
@pytest.mark.parametrize(("case", "expected"), [(0, HOLDS), (1, FAILS), (2, INCONCLUSIVE)])
def test_claim_verdicts(claim: int, case: int, expected: str, tmp_path: Path) -> None:
    for overrides, seeds in CLAIM_CASES[claim][case].values():
        for seed, (train, test) in enumerate(seeds):
            add_run(tmp_path, overrides, seed, test, train)
    (result,) = [r for r in scorecard(tmp_path)[claim] if r["setting"]]  # claim 6 is also "not run" on ImageNet
    assert result["verdict"] == expected, result["evidence"]
    assert result["setting"] == "the paper's recipe" and result["statistics"]


@pytest.mark.parametrize(("case", "expected"), [(0, HOLDS), (1, FAILS), (2, INCONCLUSIVE)])
def test_layer_response_verdicts(case: int, expected: str, tmp_path: Path) -> None:
    plain, resnet = {0: (1.0, 0.5), 1: (0.5, 1.0), 2: (0.8, 0.7)}[case]
    for seed, wiggle in enumerate((-0.05, 0.05)):
        add_run(tmp_path, PLAIN_20, seed, 9.6, responses=[plain + wiggle * (case == 2) * 4] * 7)
        add_run(tmp_path, ["net=resnet20"], seed, 8.7, responses=[resnet - wiggle * (case == 2) * 4] * 7)
    (result,) = scorecard(tmp_path)[5]
    assert result["verdict"] == expected, result["evidence"]


@pytest.mark.parametrize(("case", "expected"), [(0, HOLDS), (1, FAILS), (2, INCONCLUSIVE)])
def test_imagenet_table2_verdicts(case: int, expected: str, tmp_path: Path) -> None:
    errors = {0: (27.9, 28.5, 27.9, 25.0), 1: (28.5, 27.9, 25.0, 27.9), 2: (27.9, 28.5, 27.9, 25.0)}[case]
    nets = [("18", "false"), ("34", "false"), ("18", "true"), ("34", "true")]
    for (depth, residual), err in zip(nets, errors, strict=True):
        seeds = (err - 0.05, err + 0.05) if case < 2 else (err - 4, err + 4)
        for seed, value in enumerate(seeds):
            add_run(
                tmp_path,
                ["experiment=imagenet_table2", f"model.depth={depth}", f"model.residual={residual}"],
                seed,
                value,
                data={"source": "image-folder", "fingerprint": "1" * 16},
            )
    card = scorecard(tmp_path)
    (result,) = card[7]
    assert result["verdict"] == expected, result["evidence"]
    if case == 0:
        report = (tmp_path / "report" / "report.md").read_text()
        (cells,) = row(report.split("## ImageNet")[1], "plain-34")
        assert cells[6] == "28.54 / 10.02" and cells[7] == "-0.04 (top-1)"


def test_claims_without_runs_are_not_run_with_their_command(tmp_path: Path) -> None:
    add_run(tmp_path, ["net=resnet20"], 0, 8.7)
    card = scorecard(tmp_path)
    assert {r["verdict"] for i in (1, 2, 4, 5, 7) for r in card[i]} == {NOT_RUN}
    assert "experiment=fig6" in card[1][0]["command"] and "experiment=imagenet_table2" in card[7][0]["command"]
    assert len(CLAIMS) == 8  # claim 6 is checked on CIFAR-10 and on ImageNet


def test_one_seed_per_side_needs_a_stated_noise_floor(tmp_path: Path) -> None:
    """One run per side: inconclusive without a floor; decided beyond a floor measured from other seeds."""
    quick = ["experiment=quick"]
    add_run(tmp_path / "one", [*quick, "net=plain20"], 0, 40.0, 44.0, data=FOLDER)
    add_run(tmp_path / "one", [*quick, "net=plain56"], 0, 76.0, 79.0, data=FOLDER)
    (alone,) = scorecard(tmp_path / "one")[1]
    assert alone["verdict"] == INCONCLUSIVE and "no noise floor known" in alone["evidence"][0]
    report = (tmp_path / "one" / "report" / "report.md").read_text()
    assert "none (no group has 2 seeds" in report

    for seed, (train, test) in enumerate(((37.0, 36.0), (39.0, 38.0))):  # a ResNet-20 group with 2 seeds
        add_run(tmp_path / "one", [*quick, "net=resnet20"], seed, test, train, data=FOLDER)
    (decided,) = scorecard(tmp_path / "one")[1]
    assert decided["verdict"] == HOLDS and "noise floor ±" in decided["evidence"][0]
    groups = by_dataset(group_runs(find_runs([tmp_path / "one"])))
    floors, lines = noise_floors(groups)
    assert floors["cifar10"]["test_err"] == pytest.approx(12.706 * 2**0.5 * 2**0.5, rel=1e-3)  # t(.975, 1)·√2·√2
    assert describe_setting(by_setting(groups["cifar10"])[0]).startswith("1,000 of 64,000 iterations")


def test_statistics() -> None:
    welch = difference([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert welch.estimate == 3 and welch.low == pytest.approx(3 - 2.776 * (2 / 3) ** 0.5, rel=1e-3)
    assert difference([1.0], [2.0]).low is None and difference([1.0], [2.0], floor=0.5).low == 0.5
    paired = paired_difference({0: 1.0, 1: 2.0}, {0: 1.5, 1: 2.5})
    assert paired.estimate == 0.5 and paired.low == paired.high == 0.5
    slope = trend([20, 20, 56, 56, 110, 110], [8.7, 8.8, 7.0, 6.9, 6.5, 6.6])
    assert slope is not None and slope.high < 0
    assert trend([20, 56], [8.7, 7.0]) is None


def test_empty_sweep_fails_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "resnet_repro.report", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no runs" in result.stderr
    assert not (tmp_path / "empty" / "report").exists()


def test_report_covers_the_settings_it_finds(tmp_path: Path) -> None:
    add_run(tmp_path, ["net=resnet20"], 0, 8.7)
    add_run(tmp_path, ["net=resnet20"], 1, 9.9, status="failed")
    report = write_report([tmp_path], tmp_path / "report").read_text()
    assert "1 of 2 runs completed, in 1 recipes" in report
    assert "failed (RuntimeError: boom)" in report
    assert evaluate({}, {}, describe_setting)[0].verdict == NOT_RUN


def test_the_effect_of_one_recipe_key(tmp_path: Path) -> None:
    for seed, (fp32, bf16) in enumerate(((30.0, 30.5), (31.0, 31.5), (32.0, 32.6))):
        add_run(tmp_path, ["net=resnet20"], seed, fp32, data=FOLDER)
        add_run(tmp_path, ["net=resnet20", "trainer.precision=bf16-mixed"], seed, bf16, data=FOLDER)
    add_run(tmp_path, ["net=resnet20", "optim.lr=0.05"], 0, 40.0, data=FOLDER)  # differs elsewhere: no pair
    report = write_report([tmp_path], tmp_path / "report", compare=("trainer.precision",)).read_text()
    section = report.split("## Effect of `trainer.precision`")[1]
    (cells,) = row(section, "ResNet-20")
    assert cells[1] == "32-true → bf16-mixed" and cells[2] == "3 vs 3"
    # the same seeds: paired differences 0.5, 0.5, 0.6 -> mean 0.533, t(0.975, 2) * 0.0577 / sqrt(3) = 0.143
    assert cells[3] == "+0.53 pp [95% CI +0.39, +0.68], n = 3 vs 3 (paired t over seeds)"
