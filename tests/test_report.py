"""The report on synthetic sweep folders with known numbers: grouping by recipe, like with like, claim verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_repro.errors import UserError
from resnet_repro.report import render, write_report
from resnet_repro.report.claims import evaluate
from resnet_repro.report.collect import find_runs, group_runs
from resnet_repro.report.render import mean_std
from resnet_repro.report.stats import (
    NOT_RUN,
    difference,
    holm,
    mean_interval,
    paired_difference,
    pooled_std,
    trend,
)
from tests.helpers import REPO
from tests.sweeps import FOLDER, add_run, row


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
    setting = lr_row["paper"].split("`")[1]
    assert lr_row["test err"] == "30.00" and lr_row["paper"] == f"not comparable (setting `{setting}`)"
    assert f"Setting `{setting}` is not the paper's recipe: optim.lr = 0.05 (paper: 0.1)." in cifar10
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
    assert cells["paper"].startswith("not comparable (setting `") and cells["ours − paper"] == "–"
    said = next(line for line in report.splitlines() if line.startswith("Setting `"))
    assert report.count(said) == 1  # once under the table, not in every row
    for words in (
        "1,000 of 64,000 iterations",
        "image folder, not the official files",
        "5,000-image test subset",
        "precision bf16-mixed (paper: 32-true)",
    ):
        assert words in said, words


def test_unreadable_run_files_are_left_out_not_fatal(tmp_path: Path) -> None:
    """Layer records of the wrong types count as not recorded; a results.json of the wrong types (a metric as
    text) leaves its run out, listed with the field the reading gate refused (runs/records.py)."""
    run = add_run(tmp_path, ["net=resnet20"], 0, 8.7, responses=[1.0])
    (run / "layer_responses.json").write_text("[1, 2, 3]")
    (run / "gradient_norms.json").write_text('{"a": "x", "b": 1}')
    (group,) = group_runs(find_runs([tmp_path]))
    assert group.values("test_err") == [8.7] and group.values("response") == [] and group.values("gradient_decay") == []
    results = json.loads((run / "results.json").read_text())
    results["metrics"]["test_err"] = "8.7"
    (run / "results.json").write_text(json.dumps(results))
    (found,) = find_runs([tmp_path])
    assert found.status == "unreadable" and "metrics.test_err is '8.7', not a number" in found.error
    assert group_runs([found]) == [] and write_report([tmp_path], tmp_path / "report").is_file()
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


def test_statistics() -> None:
    welch = difference([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert welch.estimate == 3 and welch.low == pytest.approx(3 - 2.776 * (2 / 3) ** 0.5, rel=1e-3)
    assert welch.se == pytest.approx((2 / 3) ** 0.5) and welch.dof == pytest.approx(4)
    assert difference([1.0], [2.0]).low is None
    # one run per side against the setting's pooled seed std (0.5 pp, 4 dof): t(0.975, 4) * sqrt(2) * 0.5
    single = difference([1.0], [2.0], floor=(0.5, 4))
    assert single.high - single.estimate == pytest.approx(2.7764 * 2**0.5 * 0.5, rel=1e-4)
    paired = paired_difference({0: 1.0, 1: 2.0}, {0: 1.5, 1: 2.5})
    assert paired.estimate == 0.5 and paired.low is None  # identical differences: no interval
    slope = trend([20, 20, 56, 56, 110, 110], [8.7, 8.8, 7.0, 6.9, 6.5, 6.6])
    assert slope is not None and slope.high < 0
    assert trend([20, 56], [8.7, 7.0]) is None
    flat = trend([20, 32, 44], [7.0, 7.0, 7.0])  # identical values: no interval, and no nan in the text
    assert flat.low is None and "nan" not in flat.text()
    assert difference([7.0, 7.0], [7.02, 7.02]).low is None
    assert paired_difference({0: 7.0, 1: 7.1}, {0: 7.02, 1: 7.12}).low is None
    assert pooled_std([[7.0, 7.0], [6.0, 6.0]]) is None
    assert mean_interval([1.0, 1.0]).low is None
    # Holm (1979): sorted p times (m - rank), monotone, capped at 1
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


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
    assert evaluate([])[0].verdict == NOT_RUN


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


def test_the_report_recounts_what_a_run_calls_completed(tmp_path: Path) -> None:
    """A run recorded "completed" at step 1 of its recipe's 64,000, or whose segments stop short, is not counted."""
    for seed, (step, segments) in enumerate(((64000, [[0, 64000]]), (1, [[0, 1]]), (64000, [[0, 10], [20, 64000]]))):
        run = add_run(tmp_path, ["net=resnet20"], seed, 8.7 + seed)
        results = json.loads((run / "results.json").read_text())
        results.update(step=step, segments=[{"steps": s} for s in segments])
        (run / "results.json").write_text(json.dumps(results))
    report = write_report([tmp_path], tmp_path / "report").read_text()
    assert "1 of 3 runs completed" in report
    assert "its step is 1 of trainer.max_steps 64000" in report and "does not continue from step 10" in report
