"""The report on synthetic sweep folders with known numbers: grouping by recipe, like with like, claim verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from resnet_repro.errors import UserError
from resnet_repro.report import render, write_report
from resnet_repro.report.claims import CLAIMS, evaluate
from resnet_repro.report.collect import by_dataset, by_setting, find_runs, group_runs
from resnet_repro.report.render import describe_setting, mean_std, setting_floors
from resnet_repro.report.stats import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_RUN,
    difference,
    mean_interval,
    noise_floor,
    paired_difference,
    trend,
)
from resnet_repro.runs.recipe import fingerprint, make_recipe
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
    gradients: list[float] | None = None,
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
        "metrics": {"test_err": test, "train_err": train, "train_window": 391.0, **metrics}
        if status == "completed"
        else {},
        **identity,
        "data": {**data, "kind": "official-batches" if data["source"] == "official" else "image-folder"},
        "precision": cfg.trainer.precision,
        "params": 1,
        "git_commit": "0" * 40,
        "machine": {"cpu": "test"},
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if status != "completed":
        results["error"] = "RuntimeError: boom"
    (run_dir / "results.json").write_text(json.dumps(results))
    if responses is not None:
        (run_dir / "layer_responses.json").write_text(json.dumps({f"l{i}": r for i, r in enumerate(responses)}))
    if gradients is not None:
        (run_dir / "gradient_norms.json").write_text(json.dumps({f"l{i}": g for i, g in enumerate(gradients)}))
    return run_dir


def scorecard(sweep: Path) -> dict[int, list[dict]]:
    write_report([sweep], sweep / "report")
    claims = json.loads((sweep / "report" / "scorecard.json").read_text())["claims"]
    out: dict[int, list[dict]] = {}
    for claim in claims:
        out.setdefault(claim["id"], []).append(claim)
    return out


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every markdown table in `text`, each as rows keyed by the table's column names."""
    found, header = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            found.append([])
        elif not set("".join(cells)) <= set("-: "):
            found[-1].append(dict(zip(header, cells, strict=True)))
    return found


def row(text: str, label: str) -> list[dict[str, str]]:
    """The rows of the report's tables whose `net` column is `label`, keyed by column name."""
    return [r for table in tables(text) for r in table if r.get("net") == label]


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
    paper_recipe = next(r for r in rows if r["n"] == "2")
    assert paper_recipe["test err"] == "8.70 ± 0.28" and paper_recipe["paper"] == "8.75"
    assert paper_recipe["ours − paper"] == "-0.05"
    lr_row = next(r for r in rows if r["n"] == "1")
    assert lr_row["test err"] == "30.00" and "optim.lr = 0.05 (paper: 0.1)" in lr_row["paper"]
    assert lr_row["ours − paper"] == "–"
    (c100,) = row(cifar100, "ResNet-20")
    assert c100["test err"] == "33.00" and "paper has no number" in c100["paper"]


def test_resnet110_mean_and_best_meet_the_matching_paper_numbers(tmp_path: Path) -> None:
    for seed, err in enumerate((6.5, 6.7, 6.9)):
        add_run(tmp_path, ["net=resnet110"], seed, err)
    report = write_report([tmp_path], tmp_path / "report").read_text()
    (cells,) = row(report, "ResNet-110")
    assert cells["test err"] == "6.70 ± 0.20" and cells["best of n"] == "6.50"
    assert cells["paper"] == "6.61 ± 0.16 (mean of 5); best of 5 6.43"
    # the best of 3 runs is not the best of 5 (the expected minimum falls with n): no difference is printed
    assert cells["ours − paper"] == "mean +0.09; best: not comparable (best of 3, the paper's of 5)"
    for seed, err in ((3, 6.6), (4, 6.8)):
        add_run(tmp_path, ["net=resnet110"], seed, err)
    (cells,) = row(write_report([tmp_path], tmp_path / "report").read_text(), "ResNet-110")
    assert cells["ours − paper"] == "mean +0.09; best +0.07"


def test_numbers_read_off_fig6_carry_their_precision(tmp_path: Path) -> None:
    add_run(tmp_path, ["net=plain56"], 0, 13.0)
    (cells,) = row(write_report([tmp_path], tmp_path / "report").read_text(), "plain-56")
    assert cells["paper"] == "≈13.25 ± 0.2 (read off Fig. 6)" and cells["ours − paper"] == "-0.2 ± 0.2"


def test_a_recipe_that_is_not_the_papers_gets_no_difference(tmp_path: Path) -> None:
    quick = ["experiment=quick", "net=resnet56"]
    add_run(tmp_path, quick, 0, 57.3, data=FOLDER)
    report = write_report([tmp_path], tmp_path / "report").read_text()
    (cells,) = row(report, "ResNet-56")
    assert cells["paper"].startswith("not comparable: ") and cells["ours − paper"] == "–"
    for words in (
        "1,000 of 64,000 iterations",
        "image folder, not the official files",
        "5,000-image test subset",
        "precision bf16-mixed (paper: 32-true)",
    ):
        assert words in cells["paper"], words


# The claims: a holding, a failing and a noisy case each. {label: (overrides, [(train, test), ...])}
PLAIN_20 = ["net=plain20"]
PLAIN_56 = ["net=plain56"]
TIGHT = (-0.05, 0.0, 0.05)  # three seeds around a value
NOISY = (-3.0, 0.0, 3.0)


def seeds(train: float, test: float, spread: tuple[float, ...] = TIGHT) -> list[tuple[float, float]]:
    return [(max(0.0, train + d / 10), test + d) for d in spread]


CLAIM_CASES = {
    1: (
        {"p20": (PLAIN_20, seeds(1.3, 9.6)), "p56": (PLAIN_56, seeds(5.7, 13.3))},
        {"p20": (PLAIN_20, seeds(5.7, 13.3)), "p56": (PLAIN_56, seeds(1.3, 9.6))},
        {"p20": (PLAIN_20, seeds(1.3, 9.6, NOISY)), "p56": (PLAIN_56, seeds(1.5, 10.0, NOISY))},
    ),
    2: (
        {"p56": (PLAIN_56, seeds(5.6, 13.2)), "r56": (["net=resnet56"], seeds(0.15, 6.95))},
        {"p56": (PLAIN_56, seeds(0.15, 6.95)), "r56": (["net=resnet56"], seeds(5.6, 13.2))},
        {"p56": (PLAIN_56, seeds(3.0, 10.0, NOISY)), "r56": (["net=resnet56"], seeds(2.8, 9.5, NOISY))},
    ),
    3: (
        {
            "r20": (["net=resnet20"], seeds(0.5, 8.75)),
            "r56": (["net=resnet56"], seeds(0.1, 6.97)),
            "r110": (["net=resnet110"], seeds(0.1, 6.43)),
        },
        {
            "r20": (["net=resnet20"], seeds(0.5, 6.5)),
            "r56": (["net=resnet56"], seeds(0.1, 7.0)),
            "r110": (["net=resnet110"], seeds(0.1, 8.7)),
        },
        {
            "r20": (["net=resnet20"], seeds(0.5, 8.0, NOISY)),
            "r56": (["net=resnet56"], seeds(0.1, 7.5, NOISY)),
            "r110": (["net=resnet110"], seeds(0.1, 7.0, NOISY)),
        },
    ),
    4: (
        {"r110": (["net=resnet110"], seeds(1.0, 6.5)), "r1202": (["net=resnet1202"], seeds(1.05, 7.9))},
        {"r110": (["net=resnet110"], seeds(1.0, 6.5)), "r1202": (["net=resnet1202"], seeds(1.05, 6.0))},
        {"r110": (["net=resnet110"], seeds(1.0, 6.5, NOISY)), "r1202": (["net=resnet1202"], seeds(1.0, 7.9, NOISY))},
    ),
    6: (
        {"a": (["net=resnet20"], seeds(0.5, 8.7)), "b": (["net=resnet20", "model.shortcut=B"], seeds(0.5, 8.6))},
        {"a": (["net=resnet20"], seeds(0.5, 8.7)), "b": (["net=resnet20", "model.shortcut=B"], seeds(0.5, 11.6))},
        {
            "a": (["net=resnet20"], seeds(0.5, 8.7, NOISY)),
            "b": (["net=resnet20", "model.shortcut=B"], seeds(0.5, 8.0, NOISY)),
        },
    ),
}


def add_groups(sweep: Path, groups: dict[str, tuple[list[str], list[tuple[float, float]]]], **kwargs) -> None:
    for overrides, values in groups.values():
        for seed, (train, test) in enumerate(values):
            add_run(sweep, overrides, seed, test, train, **kwargs)


@pytest.mark.parametrize("claim", sorted(CLAIM_CASES))
@pytest.mark.parametrize(("case", "expected"), [(0, HOLDS), (1, FAILS), (2, INCONCLUSIVE)])
def test_claim_verdicts(claim: int, case: int, expected: str, tmp_path: Path) -> None:
    add_groups(tmp_path, CLAIM_CASES[claim][case])
    (result,) = scorecard(tmp_path)[claim]
    assert result["verdict"] == expected, result["evidence"]
    assert result["setting"] == "the paper's recipe" and result["statistics"] and result["dataset"] == "cifar10"


def test_table6_sweep_judges_resnet110_with_its_depth_series(tmp_path: Path) -> None:
    """experiment=table6 with known errors: ResNet-110 (its warm-up is part of the net) joins ResNet-20..56 in one
    setting; when it is clearly worse than ResNet-56, claim 3 does not hold, whatever the trend says."""
    known = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 8.5}
    for depth, err in known.items():
        for seed, d in enumerate(TIGHT):
            add_run(tmp_path, ["experiment=table6", f"net=resnet{depth}"], seed, err + d)
    card = scorecard(tmp_path)
    (claim3,) = card[3]
    assert claim3["setting"] == "the paper's recipe"
    whats = [s["what"] for s in claim3["statistics"]]
    assert "ResNet-110 − ResNet-56 test_err" in whats and any("trend" in w or "doubling" in w for w in whats)
    assert claim3["verdict"] == FAILS, claim3["evidence"]
    step = next(s for s in claim3["statistics"] if s["what"] == "ResNet-110 − ResNet-56 test_err")
    assert step["verdict"] == FAILS and step["level"] == pytest.approx(1 - 0.05 / 5)  # 4 steps + the trend
    # one setting: the report's Fig. 6 draws ResNet-110 with the others
    groups = group_runs(find_runs([tmp_path]))
    assert len(by_setting(groups)) == 1
    report = (tmp_path / "report" / "report.md").read_text()
    assert report.count("### Setting ") == 1 and report.count("![Fig. 6]") == 0  # no curves logged here


def test_reversed_adjacent_pair_contradicts_a_falling_trend(tmp_path: Path) -> None:
    """The trend falls, but ResNet-44 is significantly worse than ResNet-32: the claim says 'at each step'."""
    known = {20: 8.75, 32: 7.5, 44: 8.0, 56: 6.9}
    for depth, err in known.items():
        for seed, d in enumerate((-0.02, 0.0, 0.02)):
            add_run(tmp_path, [f"net=resnet{depth}"], seed, err + d)
    (claim3,) = scorecard(tmp_path)[3]
    verdicts = {s["what"]: s["verdict"] for s in claim3["statistics"]}
    assert verdicts["ResNet-44 − ResNet-32 test_err"] == FAILS
    assert claim3["verdict"] == FAILS


def test_one_run_per_side_takes_its_floor_from_its_own_setting(tmp_path: Path) -> None:
    """Single quick runs stay inconclusive although a paper-recipe setting has tight seeds; seeds of their own
    setting give them a floor."""
    quick = ["experiment=quick"]
    add_run(tmp_path, [*quick, "net=plain20"], 0, 40.0, 44.0, data=FOLDER)
    add_run(tmp_path, [*quick, "net=plain56"], 0, 42.0, 46.0, data=FOLDER)
    for seed, (train, test) in enumerate(seeds(1.3, 9.6)):  # the paper's recipe, tight seeds: another setting
        add_run(tmp_path, ["net=plain20"], seed, test, train)
        add_run(tmp_path, ["net=resnet20"], seed, test - 0.8, train)
    results = scorecard(tmp_path)[1]
    (quick_result,) = [r for r in results if r["setting"].startswith("1,000 of 64,000")]
    assert quick_result["verdict"] == INCONCLUSIVE, quick_result["evidence"]
    assert all("no noise floor known" in line for line in quick_result["evidence"])
    report = (tmp_path / "report" / "report.md").read_text()
    quick_section = report.split("### Setting")[1 if "1,000 of 64,000" in report.split("### Setting")[1] else 2]
    assert "none (no group of this setting has 2 differing seeds)" in quick_section

    for seed, (train, test) in enumerate(((37.0, 36.0), (39.0, 41.0))):  # quick ResNet-20 with 2 seeds
        add_run(tmp_path, [*quick, "net=resnet20"], seed, test, train, data=FOLDER)
    (quick_result,) = [r for r in scorecard(tmp_path)[1] if r["setting"].startswith("1,000 of 64,000")]
    # floor from the quick ResNet-20's own seeds: std 3.54 pp, 1 dof; at 97.5% (2 parts) t = 25.45 -> ±127.26 pp
    test_line = next(e for e in quick_result["evidence"] if "test_err" in e)
    assert "noise floor ±127.26" in test_line and quick_result["verdict"] == INCONCLUSIVE
    groups = by_dataset(group_runs(find_runs([tmp_path])))
    quick_groups = next(g for g in by_setting(groups["cifar10"]) if describe_setting(g).startswith("1,000"))
    value, how = setting_floors(quick_groups)("test_err", 0.95)
    assert value == pytest.approx(12.706 * 2**0.5 * 12.5**0.5, rel=1e-3) and "this setting's groups" in how


def test_the_papers_own_recipe_may_borrow_table6_sigma(tmp_path: Path) -> None:
    add_run(tmp_path, ["net=plain20"], 0, 9.6, 1.3)
    add_run(tmp_path, ["net=plain56"], 0, 13.3, 5.7)
    (claim1,) = scorecard(tmp_path)[1]
    evidence = {s["what"]: s for s in claim1["statistics"]}
    test = evidence["plain-56 − plain-20 test_err"]
    # t(1 - 0.025/2, 4) x sqrt(2) x 0.16 = 3.495 x 0.2263: Table 6's sigma for test error only, at the claim's level
    assert test["high"] - test["estimate"] == pytest.approx(3.4954 * 2**0.5 * 0.16, rel=1e-3)
    assert evidence["plain-56 − plain-20 train_err"]["low"] is None
    assert claim1["verdict"] == INCONCLUSIVE  # the training error has no floor


def test_zero_variance_gives_no_interval(tmp_path: Path) -> None:
    for seed in (0, 1):
        add_run(tmp_path, ["net=resnet20"], seed, 7.0)
        add_run(tmp_path, ["net=resnet20", "model.shortcut=B"], seed, 7.02)
    (claim6,) = scorecard(tmp_path)[6]
    assert claim6["verdict"] == INCONCLUSIVE and claim6["statistics"][0]["low"] is None
    assert "zero variance" in claim6["evidence"][0]
    assert difference([7.0, 7.0], [7.02, 7.02]).low is None
    assert paired_difference({0: 7.0, 1: 7.1}, {0: 7.02, 1: 7.12}).low is None
    assert noise_floor([[7.0, 7.0], [6.0, 6.0]]) is None
    assert mean_interval([1.0, 1.0]).low is None
    assert trend([20, 32, 44], [3.0, 2.0, 1.0]) is not None  # a trend's interval comes from its residuals


def test_shortcut_options_compare_every_pair(tmp_path: Path) -> None:
    for option, err in (("A", 8.7), ("B", 8.6), ("C", 11.0)):
        for seed, d in enumerate(TIGHT):
            add_run(tmp_path, ["net=resnet20", f"model.shortcut={option}"], seed, err + d)
    (claim6,) = scorecard(tmp_path)[6]
    verdicts = {s["what"]: s["verdict"] for s in claim6["statistics"]}
    assert verdicts == {
        "ResNet-20-B − ResNet-20 test_err": HOLDS,
        "ResNet-20-C − ResNet-20 test_err": FAILS,
        "ResNet-20-C − ResNet-20-B test_err": FAILS,
    }
    assert claim6["verdict"] == FAILS and claim6["extension"]
    assert "margin ±1.75" in claim6["evidence"][0]  # Table 2: half of plain-34 28.54 − ResNet-34 25.03


def test_table3_itself_holds_its_shortcut_claim(tmp_path: Path) -> None:
    """The paper's own Table 3 (A 25.03, B 24.52, C 24.19) with tight seeds: a faithful reproduction holds."""
    for option, err in (("a", 25.03), ("b", 24.52), ("c", 24.19)):
        for seed, d in enumerate(TIGHT):
            overrides = ["experiment=imagenet_table3", f"net=resnet34_{option}"]
            add_run(tmp_path, overrides, seed, err + d, data={"source": "image-folder", "fingerprint": "1" * 16})
    (claim9,) = scorecard(tmp_path)[9]
    assert claim9["verdict"] == HOLDS, claim9["evidence"]
    assert len(claim9["statistics"]) == 3


def test_one_net_twice_in_a_setting_does_not_decide(tmp_path: Path) -> None:
    """ResNet-56 with and without the warm-up in one setting: claims that need ResNet-56 cannot tell which to use;
    claims about the plain nets are unaffected."""
    for seed, d in enumerate(TIGHT):
        add_run(tmp_path, PLAIN_20, seed, 9.6 + d, 1.3 + d)
        add_run(tmp_path, PLAIN_56, seed, 13.3 + d, 5.7 + d)
        add_run(tmp_path, ["net=resnet56"], seed, 7.0 + d, 0.2 + d)
        add_run(tmp_path, ["net=resnet56", "optim.warmup_lr=0.01"], seed, 7.1 + d, 0.2 + d)
    card = scorecard(tmp_path)
    (claim1,) = card[1]
    assert claim1["verdict"] == HOLDS
    (claim2,) = card[2]
    assert claim2["verdict"] == INCONCLUSIVE and "which to compare is unclear" in claim2["evidence"][0]
    assert card[3][0]["verdict"] == NOT_RUN  # no pairing of ResNet-56 with itself


def test_unreadable_run_files_are_left_out_not_fatal(tmp_path: Path) -> None:
    run = add_run(tmp_path, ["net=resnet20"], 0, 8.7, responses=[1.0])
    (run / "layer_responses.json").write_text("[1, 2, 3]")
    (run / "gradient_norms.json").write_text('{"a": "x", "b": 1}')
    results = json.loads((run / "results.json").read_text())
    results["metrics"]["test_err"] = "8.7"
    (run / "results.json").write_text(json.dumps(results))
    (group,) = group_runs(find_runs([tmp_path]))
    assert group.values("test_err") == [] and group.values("response") == [] and group.values("gradient_decay") == []
    assert write_report([tmp_path], tmp_path / "report").is_file()
    for content in ('{"status": "completed", "metrics": 5}', '{"metrics": {}}', "[1, 2]", '"text"'):
        (run / "results.json").write_text(content)  # what a stranger's folder may hold: left out, not fatal
        assert write_report([tmp_path], tmp_path / "report").is_file(), content


def test_a_train_err_of_the_older_definition_is_not_used(tmp_path: Path) -> None:
    run = add_run(tmp_path, ["net=resnet20"], 0, 8.7, 0.5)
    results = json.loads((run / "results.json").read_text())
    del results["metrics"]["train_window"]  # recorded before train_err was the final epoch's mean
    (run / "results.json").write_text(json.dumps(results))
    (group,) = group_runs(find_runs([tmp_path]))
    assert group.values("train_err") == [] and group.values("test_err") == [8.7]


def test_one_noisy_reversed_part_of_many_does_not_decide(tmp_path: Path) -> None:
    """Claim 2 at four depths has 8 comparisons. One reversed by an amount that a lone 95% interval would call
    significant is inside the claim's 99.375% intervals, so the claim is inconclusive, not 'does not hold'."""
    for depth in (20, 32, 44, 56):
        plain, resnet = (8.7, 8.87) if depth == 44 else (9.0, 7.0)
        for seed, d in enumerate(TIGHT):
            add_run(tmp_path, [f"net=plain{depth}"], seed, plain + d, 2.0 + d)
            add_run(tmp_path, [f"net=resnet{depth}"], seed, resnet + d, 1.0 + d)
    (claim2,) = scorecard(tmp_path)[2]
    part = next(s for s in claim2["statistics"] if s["what"] == "ResNet-44 − plain-44 test_err")
    lone = difference([8.65, 8.7, 8.75], [8.82, 8.87, 8.92])
    assert lone.low > 0  # alone, at 95%: a significant reversal
    assert part["verdict"] == INCONCLUSIVE and part["level"] == pytest.approx(1 - 0.05 / 8)
    assert claim2["verdict"] == INCONCLUSIVE


def test_similar_training_error_scales_with_it(tmp_path: Path) -> None:
    """Training errors near 0.1%: 0.10 against 0.95 is not similar (the old ±1 pp margin called it so)."""
    for seed, d in enumerate((-0.01, 0.0, 0.01)):
        add_run(tmp_path, ["net=resnet110"], seed, 6.5 + d * 10, 0.10 + d)
        add_run(tmp_path, ["net=resnet1202"], seed, 7.9 + d * 10, 0.95 + d)
    (claim4,) = scorecard(tmp_path)[4]
    train = next(s for s in claim4["statistics"] if "train_err" in s["what"])
    assert train["verdict"] == FAILS and claim4["verdict"] == FAILS
    assert "margin ±0.05" in next(e for e in claim4["evidence"] if "train_err" in e)


def test_gradient_claim(tmp_path: Path) -> None:
    """Claim 8 (Sec. 4.1): the first layer's gradient norm against the last's, per plain net, over seeds."""
    for seed, d in enumerate(TIGHT):
        add_run(tmp_path, PLAIN_20, seed, 9.6, gradients=[0.5 + d, 0.3, 0.2])  # log10(0.5 / 0.2) = +0.4
        add_run(tmp_path, PLAIN_56, seed, 13.3, gradients=[0.001 * (1 + d), 0.1, 0.2])  # about -2.3: vanishing
    (claim8,) = scorecard(tmp_path)[8]
    verdicts = {s["what"]: s["verdict"] for s in claim8["statistics"]}
    assert verdicts == {"plain-20 gradient_decay": HOLDS, "plain-56 gradient_decay": FAILS}
    assert claim8["verdict"] == FAILS


def test_a_cifar100_fig6_sweep_gets_claims_1_to_5_as_our_extension(tmp_path: Path) -> None:
    for depth, (plain, resnet) in {20: (33.0, 31.0), 56: (38.0, 29.0)}.items():
        for seed, d in enumerate(TIGHT):
            overrides = ["experiment=fig6", "data=cifar100"]
            add_run(tmp_path, [*overrides, f"net=plain{depth}"], seed, plain + d, plain / 4 + d, responses=[1.0 + d])
            add_run(tmp_path, [*overrides, f"net=resnet{depth}"], seed, resnet + d, resnet / 8 + d, responses=[0.5 + d])
    card = scorecard(tmp_path)
    for claim in (1, 2):
        (result,) = card[claim]
        assert result["dataset"] == "cifar100" and result["extension"] and result["verdict"] == HOLDS, result
    (claim3,) = card[3]
    assert claim3["verdict"] == HOLDS and claim3["extension"]  # ResNet-56 29% < ResNet-20 31%
    report = (tmp_path / "report" / "report.md").read_text()
    assert "### Setting 1 (`" in report and "): CIFAR-100, " in report and "(*our extension*)" in report


def test_claims_without_runs_are_not_run_with_their_command(tmp_path: Path) -> None:
    add_run(tmp_path, ["net=resnet20"], 0, 8.7)
    card = scorecard(tmp_path)
    assert {r["verdict"] for i in (1, 2, 4, 5, 7, 8, 9) for r in card[i]} == {NOT_RUN}
    assert "experiment=fig6" in card[1][0]["command"] and "experiment=imagenet_table2" in card[7][0]["command"]
    assert len({c.id for c in CLAIMS}) == len(CLAIMS)  # every claim id once
    report = (tmp_path / "report" / "report.md").read_text()
    (not_run,) = [t for t in tables(report.split("### Not run")[1])[:1]]
    assert [r["#"] for r in not_run] == ["1", "2", "3", "4", "5", "6", "7", "8", "9"]


def test_the_report_states_its_rules(tmp_path: Path) -> None:
    add_run(tmp_path, ["net=resnet20"], 0, 8.7)
    report = (write_report([tmp_path], tmp_path / "report")).read_text()
    for words in ("Bonferroni", "Equivalence margins", "±1.75 pp", "(0.84 pp)", "Noise floors", "final epoch"):
        assert words.lower() in report.lower(), words


@pytest.mark.parametrize(("case", "expected"), [(0, HOLDS), (1, FAILS), (2, INCONCLUSIVE)])
def test_layer_response_verdicts(case: int, expected: str, tmp_path: Path) -> None:
    plain, resnet = {0: (1.0, 0.5), 1: (0.5, 1.0), 2: (0.8, 0.7)}[case]
    for seed, wiggle in enumerate((-0.02, 0.0, 0.02)):
        noise = wiggle * (10 if case == 2 else 1)  # identical values would give no interval
        add_run(tmp_path, PLAIN_20, seed, 9.6, responses=[plain + noise] * 7)
        add_run(tmp_path, ["net=resnet20"], seed, 8.7, responses=[resnet - noise] * 7)
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
        assert cells["paper top-1 / top-5"] == "28.54 / 10.02" and cells["ours − paper"] == "-0.04 (top-1)"


def test_statistics() -> None:
    welch = difference([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert welch.estimate == 3 and welch.low == pytest.approx(3 - 2.776 * (2 / 3) ** 0.5, rel=1e-3)
    assert difference([1.0], [2.0]).low is None and difference([1.0], [2.0], floor=0.5).low == 0.5
    paired = paired_difference({0: 1.0, 1: 2.0}, {0: 1.5, 1: 2.5})
    assert paired.estimate == 0.5 and paired.low is None  # identical differences: no interval
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


def test_a_new_metric_in_the_table_is_one_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dataset table's columns are render.TABLE_COLUMNS: a metric added there shows in every row, by name."""
    for seed, (test, val) in enumerate(((8.5, 9.0), (8.9, 9.4))):
        add_run(tmp_path, ["net=resnet20"], seed, test, val_err=val)
    columns = render.TABLE_COLUMNS["cifar"]
    monkeypatch.setitem(render.TABLE_COLUMNS, "cifar", (*columns, ("val err", lambda g: mean_std(g.values("val_err")))))
    report = write_report([tmp_path], tmp_path / "report").read_text()
    (cells,) = [r for r in row(report, "ResNet-20") if "val err" in r]
    assert cells["val err"] == "9.20 ± 0.28" and cells["test err"] == "8.70 ± 0.28" and cells["n"] == "2"


def test_the_effect_of_a_key_outside_the_recipe_and_a_seed_counted_once(tmp_path: Path) -> None:
    """compile is not a recipe key: its two sides share recipe and seeds, so they land in separate sweeps; --compare
    tells them apart by the recorded config. Without it, a seed run twice still counts once."""
    for seed, (eager, compiled) in enumerate(((30.0, 30.4), (31.0, 31.3), (32.0, 32.5))):
        add_run(tmp_path / "eager", ["net=resnet20"], seed, eager, data=FOLDER)
        add_run(tmp_path / "compiled", ["net=resnet20", "compile=true"], seed, compiled, data=FOLDER)
    report = write_report([tmp_path], tmp_path / "report", compare=("compile",)).read_text()
    (cells,) = row(report.split("## Effect of `compile`")[1], "ResNet-20")
    assert cells["compile: a → b"] == "False → True" and cells["n"] == "3 vs 3"
    # paired differences 0.4, 0.3, 0.5 -> mean 0.40, t(0.975, 2) * 0.1 / sqrt(3) = 0.248
    assert cells["test err b − a (pp)"] == "+0.40 pp [95% CI +0.15, +0.65], n = 3 vs 3 (paired t over seeds)"
    # the rows keep the recipe id of their recipe.json, with the value that splits them
    recipe_id = json.loads(next((tmp_path / "eager").rglob("recipe.json")).read_text())["recipe_id"]
    rows = [r for r in row(report.split("## Effect of")[0], "ResNet-20") if "recipe" in r]
    assert sorted(r["recipe"] for r in rows) == [f"`{recipe_id[:8]}` compile={c}" for c in (False, True)]
    report = write_report([tmp_path], tmp_path / "plain-report").read_text()
    (table_row,) = [r for r in row(report, "ResNet-20") if "n" in r]
    assert table_row["n"] == "3"  # not 6: each seed once
    assert report.count("not counted (the recipe and seed of") == 3
    assert "6 of 6 runs completed, 3 of them not counted (a recipe and seed counted already)" in report
    # where every run has one value, the key splits nothing: the settings keep the ids of a report without it
    plain = json.loads((tmp_path / "plain-report" / "scorecard.json").read_text())["settings"]
    write_report([tmp_path / "eager"], tmp_path / "eager-report", compare=("compile",))
    write_report([tmp_path / "eager"], tmp_path / "eager-plain")
    ids = [
        json.loads((tmp_path / f / "scorecard.json").read_text())["settings"] for f in ("eager-report", "eager-plain")
    ]
    assert ids[0] == ids[1] and [s["setting_id"] for s in ids[0]] == [s["setting_id"] for s in plain]
    with pytest.raises(UserError, match="--compare compiled: no run recorded"):
        write_report([tmp_path], tmp_path / "bad", compare=("compiled",))
    assert not (tmp_path / "bad").exists()
    # a recipe key left out of recipes at its earlier default (data.flip) compares at that default
    flips = tmp_path / "flips"
    for seed in (0, 1):
        add_run(flips, ["net=resnet20"], seed, 30.0 + seed, data=FOLDER)
        add_run(flips, ["net=resnet20", "data.flip=false"], seed, 31.0 + seed * 1.5, data=FOLDER)
    report = write_report([flips], flips / "report", compare=("data.flip",)).read_text()
    (cells,) = row(report.split("## Effect of `data.flip`")[1], "ResNet-20")
    assert cells["data.flip: a → b"] == "False → True" and cells["n"] == "2 vs 2"


def test_the_effect_of_one_recipe_key(tmp_path: Path) -> None:
    for seed, (fp32, bf16) in enumerate(((30.0, 30.5), (31.0, 31.5), (32.0, 32.6))):
        add_run(tmp_path, ["net=resnet20"], seed, fp32, data=FOLDER)
        add_run(tmp_path, ["net=resnet20", "trainer.precision=bf16-mixed"], seed, bf16, data=FOLDER)
    add_run(tmp_path, ["net=resnet20", "optim.lr=0.05"], 0, 40.0, data=FOLDER)  # differs elsewhere: no pair
    report = write_report([tmp_path], tmp_path / "report", compare=("trainer.precision",)).read_text()
    section = report.split("## Effect of `trainer.precision`")[1]
    (cells,) = row(section, "ResNet-20")
    assert cells["trainer.precision: a → b"] == "32-true → bf16-mixed" and cells["n"] == "3 vs 3"
    # the same seeds: paired differences 0.5, 0.5, 0.6 -> mean 0.533, t(0.975, 2) * 0.0577 / sqrt(3) = 0.143
    assert cells["test err b − a (pp)"] == "+0.53 pp [95% CI +0.39, +0.68], n = 3 vs 3 (paired t over seeds)"
