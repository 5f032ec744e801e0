"""Rendering: report.md (the scorecard first, then one table per dataset), scorecard.json, Fig. 6 and Fig. 7."""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from resnet_repro.errors import UserError
from resnet_repro.files import atomic_write, interrupted_writes, write_json
from resnet_repro.report import claims, stats
from resnet_repro.report.board import fig6_tag, write_board
from resnet_repro.report.collect import (
    Group,
    Run,
    by_dataset,
    by_setting,
    find_runs,
    group_runs,
    keep_splitting_keys,
    numbers,
)
from resnet_repro.report.paper import departures, paper_numbers, paper_result
from resnet_repro.report.tb_events import read_scalars
from resnet_repro.runs.provenance import changed_across
from resnet_repro.runs.recipe import fingerprint, is_recipe_key

log = logging.getLogger(__name__)

METRICS = ("train_err", "test_err")
REPORT_FILES = ("report.md", "scorecard.json", "fig6-*.png", "fig7-*.png")  # what the report writes in its folder


def write_report(sweeps: list[Path], out: Path, compare: tuple[str, ...] = ()) -> Path:
    """Write report.md, scorecard.json and the figures into `out`; return the report's path.

    `compare`: keys whose effect gets a table of its own: every pair of groups whose recipes differ in that key
    alone, with the difference of their errors and its 95% interval. A recipe key (trainer.precision, optim.lr),
    or a key of how the runs computed (compile, data.loader) as their configs recorded it, which then tells their
    groups apart.

    Raises UserError when the sweeps hold no runs, or no run recorded a compared key (nothing is written then).
    """
    runs = find_runs(sweeps, tuple(key for key in compare if not is_recipe_key(key)))
    if not runs:
        raise UserError(f"no runs (folders with recipe.json or results.json) under {', '.join(map(str, sweeps))}")
    for key in compare:
        if all(run.setting_value(key) is None for run in runs):
            example = "a dotted config key: trainer.precision, compile"
            raise UserError(f"--compare {key}: no run recorded a value for it ({example})")
    keep_splitting_keys(runs)  # a key on which every run agrees splits nothing: setting ids stay as without it
    notes = interrupted_writes(out, REPORT_FILES, remove=True) if out.is_dir() else []
    for note in notes:
        log.warning(note)
    groups = group_runs(runs)
    datasets = by_dataset(groups)
    settings = {name: by_setting(gs) for name, gs in datasets.items()}
    results = claims.evaluate(settings, setting_floors, describe_setting)
    every_setting = [(name, setting) for name, dataset_settings in settings.items() for setting in dataset_settings]
    write_scorecard(out / "scorecard.json", sweeps, results, every_setting)

    lines = [f"# Reproduction report: {', '.join(str(s) for s in sweeps)}", ""]
    done = [r for r in runs if r.status in ("completed", "not counted")]
    twice = sum(r.status == "not counted" for r in done)
    counted = f", {twice} of them not counted (a recipe and seed counted already)" if twice else ""
    recipes = len({g.recipe_id for g in groups})
    lines += [f"{len(done)} of {len(runs)} runs completed{counted}, in {recipes} recipes. Errors are percent.", ""]
    lines += scorecard_table(results, every_setting)
    curves = {  # Fig. 6's curves, for the runs on 32x32 datasets (ImageNet has no Fig. 6)
        run.path: read_scalars(run.path, ["train/err", "test/err"])
        for g in groups
        if g.family == "cifar"
        for run in g.runs
    }
    figures: list[Path] = []
    for name, dataset_groups in datasets.items():
        lines += dataset_section(name, dataset_groups, settings[name], out, curves, figures)
    for key in compare:
        lines += key_effect(groups, key)
    lines += ["## Provenance", "", *provenance(runs), ""]
    resumed = [(r, changed_across(r.segments)) for r in runs]
    lines += ["## Runs resumed by other code, machines or library versions", ""]
    lines += [f"- `{r.path}`: {describe_segments(r.segments)}" for r, changed in resumed if changed] or ["none"]
    problems = [r for r in runs if r.status != "completed"]
    lines += ["", "## Runs not completed or not counted", ""]
    lines += [f"- `{r.path}`: {r.status}" + (f" ({r.error})" if r.error else "") for r in problems] or ["none"]
    if notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    fig6_datasets = [name for name, dataset_groups in datasets.items() if dataset_groups[0].family == "cifar"]
    board = write_board(out, figures, fig6_curves(groups, curves), fig6_datasets)
    lines += [
        "",
        f"TensorBoard: `tensorboard --logdir {out.parent}` shows every run, with this report's figures and "
        f"Fig. 6 as custom scalars ({board.relative_to(out.parent)}).",
    ]
    report = out / "report.md"
    atomic_write(report, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    return report


def setting_floors(groups: list[Group]) -> claims.Floors:
    """The noise floor of one setting for one run per side: from the replicates (seeds) of this setting's groups;
    without any, Table 6's ResNet-110 seed std for CIFAR-10 test error when the setting is the paper's own
    recipe; None otherwise (the comparison is then inconclusive)."""
    samples = {metric: [g.values(metric) for g in groups] for metric in METRICS}
    papers = groups[0].dataset == "cifar10" and any(departures(g) == [] for g in groups)

    def floor(metric: str, level: float) -> tuple[float, str] | None:
        found = stats.noise_floor(samples.get(metric, []), level)
        if found is not None:
            value, pooled, dof = found
            how = f"t × √2 × {pooled:.2f} pp, the seed std pooled over this setting's groups ({dof} dof)"
            return value, how
        if metric == "test_err" and papers:
            sigma = paper_numbers()["cifar10"]["resnet110_mean_std"][1]
            runs = paper_numbers()["cifar10"]["resnet110_runs"]
            value = stats.floor_of(sigma, runs - 1, level)
            return value, f"t × √2 × {sigma} pp, Table 6's ResNet-110 seed std ({runs} runs; the paper's recipe)"
        return None

    return floor


def floor_lines(groups: list[Group]) -> list[str]:
    """The setting's noise floors at 95%, one line per metric, as the report states them."""
    floor = setting_floors(groups)
    lines = []
    for metric in METRICS:
        found = floor(metric, stats.LEVEL)
        if found is None:
            lines.append(
                f"{metric}: none (no group of this setting has 2 differing seeds): one run per side is inconclusive"
            )
        else:
            lines.append(f"{metric}: ±{found[0]:.2f} pp at 95% = {found[1]}")
    return lines


def describe_setting(groups: list[Group]) -> str:
    """A setting (groups that differ only in the net) as its departures from the paper's recipe, in words, and the
    told-apart values (--compare) that split it from its twins."""
    apart = "".join(f"; {key}={value}" for key, value in groups[0].told_apart.items())
    for group in groups:
        words = departures(group)
        if words != ["the paper has no number for this network and dataset"]:
            return ("; ".join(words) or "the paper's recipe") + apart
    return f"recipe setting {fingerprint(groups[0].setting)[:8]} (the paper has no number to compare){apart}"


RULES = [
    "A claim is judged within one **setting**: runs whose recipes differ only in the network (config.net_keys: "
    "the model and its warm-up), so like is compared with like.",
    "Each comparison is a difference of means over seeds with its interval: Welch's t (both sides ≥ 2 seeds), "
    "Student's t with the larger side's variance (one side 1 seed), a least-squares trend on log2 depth (3 "
    "depths or more), or a t interval of a mean against a bound. Identical values (zero variance) give no "
    "interval.",
    "**Family-wise control**: a claim of m comparisons tests each at 1 − 0.05/m (Bonferroni), so its intervals "
    "hold together with 95% probability. It **holds** when every interval lies on the claim's side, **does not "
    "hold** when any lies wholly on the other side, and is **inconclusive** otherwise.",
    f"**Equivalence margins**: shortcut options within ±{claims.shortcut_margin():.2f} pp, half of what residual "
    "learning gains at depth 34 (Table 2), next to which the paper calls Table 3's A/B/C spread "
    f"({claims.shortcut_spread():.2f} pp) small; ResNet-1202's training error within "
    f"{claims.TRAIN_SIMILAR.why}. An equivalence holds when the whole interval is inside the margin, fails when "
    "it is wholly outside.",
    "**Noise floors**: one run per side counts only beyond t × √2 × σ, σ the seed std pooled over the replicates "
    "of the same setting; Table 6's σ (ResNet-110, 5 runs) only stands in for a CIFAR-10 setting with the paper's "
    "own recipe; without either, the comparison is inconclusive.",
    "**Training error** is the mean over the final epoch of training (augmented batches in train mode, as Fig. "
    "6's curves; `train_window` iterations in results.json), whatever the logging interval.",
    "A claim tested on a dataset where the paper does not make it is marked *our extension*.",
]


def scorecard_table(results: list[claims.ClaimResult], settings: list[tuple[str, list[Group]]]) -> list[str]:
    """The scorecard: its rules, then per setting its noise floors and the claims judged there, then the claims
    no setting could test, with the command that runs them."""
    lines = ["## Scorecard: the paper's claims", "", *[f"- {rule}" for rule in RULES], ""]
    shown = 0
    for _, groups in settings:
        judged = [r for r in results if r.setting_id == claims.setting_id(groups)]
        if not judged:
            continue
        shown += 1
        title = f"Setting {shown} (`{claims.setting_id(groups)}`): {groups[0].title}"
        lines += [f"### {title}, {describe_setting(groups)}", ""]
        lines += [f"Noise floors for one run per side: {'; '.join(floor_lines(groups))}.", ""]
        lines += ["| # | claim | source | verdict | statistics |", "|---:|---|---|---|---|"]
        for r in judged:
            claim = f"{r.claim} (*our extension*)" if r.extension else r.claim
            stated = f"each at {100 * r.level:.4g}%:<br>" if r.level else ""
            detail = stated + "<br>".join(r.evidence)
            lines.append(f"| {r.id} | {claim} | {r.source} | **{r.verdict}** | {detail} |")
        lines.append("")
    missing = [r for r in results if r.verdict == stats.NOT_RUN]
    if missing:
        lines += ["### Not run", "", "| # | claim | source | run it |", "|---:|---|---|---|"]
        lines += [f"| {r.id} | {r.claim} | {r.source} | `{r.command}` |" for r in missing]
        lines.append("")
    return lines


def write_scorecard(
    path: Path, sweeps: list[Path], results: list[claims.ClaimResult], settings: list[tuple[str, list[Group]]]
) -> None:
    floors = [
        {
            "dataset": name,
            "setting": describe_setting(groups),
            "setting_id": claims.setting_id(groups),
            "noise_floors_95": floor_lines(groups),
        }
        for name, groups in settings
    ]
    data = {
        "sweeps": [str(s) for s in sweeps],
        "rules": RULES,
        "settings": floors,
        "claims": [asdict(r) for r in results],
    }
    write_json(path, data)


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def recipe_cell(group: Group) -> str:
    """The recipe's id (as in its runs' recipe.json), and the told-apart values (--compare) that split it."""
    return f"`{group.recipe_id[:8]}`" + "".join(f" {key}={value}" for key, value in group.told_apart.items())


def best_of_n(group: Group) -> str:
    test = group.values("test_err")
    return f"{min(test):.2f}" if test else "–"


def params(group: Group) -> str:
    count = group.runs[0].results.get("params")
    return f"{count:,}" if isinstance(count, int) else "–"


# the dataset table's columns between "net | recipe" and the paper's, per family of images: (title, cell of a group).
# A new column (another metric) is one entry here; the paper's two columns follow them.
TABLE_COLUMNS: dict[str, tuple[tuple[str, Callable[[Group], str]], ...]] = {
    "cifar": (
        ("params", params),
        ("n", lambda g: str(len(g.runs))),
        ("test err", lambda g: mean_std(g.values("test_err"))),
        ("best of n", best_of_n),
        ("train err", lambda g: mean_std(g.values("train_err"))),
    ),
    "imagenet": (
        ("n", lambda g: str(len(g.runs))),
        ("top-1 (10-crop)", lambda g: mean_std(g.values("test_err"))),
        ("top-5 (10-crop)", lambda g: mean_std(g.values("test_err5"))),
        ("top-1 (center crop)", lambda g: mean_std(g.values("val_err"))),
    ),
}
PAPER_COLUMNS = {"cifar": ("paper", "ours − paper"), "imagenet": ("paper top-1 / top-5", "ours − paper")}


def dataset_section(
    name: str,
    groups: list[Group],
    settings: list[list[Group]],
    out: Path,
    curves: dict[Path, dict[str, list[tuple[int, float]]]],
    figures: list[Path],
) -> list[str]:
    """The dataset's table (TABLE_COLUMNS of its family) and, for 32x32 datasets, Fig. 6 and Fig. 7 of each
    setting (whose paths are added to `figures`)."""
    family = groups[0].family
    columns = TABLE_COLUMNS.get(family, TABLE_COLUMNS["cifar"])
    titles = ["net", "recipe", *(title for title, _ in columns), *PAPER_COLUMNS.get(family, PAPER_COLUMNS["cifar"])]
    lines = [f"## {groups[0].title}: error by network", ""]
    lines += ["| " + " | ".join(titles) + " |", "|---|---|" + "---:|" * len(columns) + "---|---|"]
    for group in groups:
        cells = [cell(group) for _, cell in columns]
        cells += paper_cells(group, group.values("test_err"), family == "imagenet")
        lines.append(f"| {group.label} | {recipe_cell(group)} | " + " | ".join(cells) + " |")
    lines.append("")
    if family == "cifar":  # Fig. 6 and Fig. 7 are CIFAR figures
        for i, setting in enumerate(settings):
            suffix = "" if len(settings) == 1 else f"-{i + 1}"
            fig6, fig7 = out / f"fig6-{name}{suffix}.png", out / f"fig7-{name}{suffix}.png"
            caption = describe_setting(setting)
            if plot_fig6(setting, fig6, curves):
                figures.append(fig6)
                lines += [
                    f"### Fig. 6 ({caption}): training curves, dashed train, bold test",
                    "",
                    f"![Fig. 6]({fig6.name})",
                    "",
                ]
            if plot_fig7(setting, fig7):
                figures.append(fig7)
                lines += [
                    f"### Fig. 7 ({caption}): layer responses",
                    "",
                    "Std of each 3x3 layer's output after BN, before ReLU/addition, on the test set in eval mode "
                    "(std over all elements; the stem conv is layer 1), mean over seeds.",
                    "",
                    f"![Fig. 7]({fig7.name})",
                    "",
                ]
    return lines


def key_effect(groups: list[Group], key: str) -> list[str]:
    """The effect of one recipe key: groups whose recipes differ only there, each against the first value."""
    lines = [
        f"## Effect of `{key}`",
        "",
        f"Pairs of groups whose recipes differ only in `{key}`: b − a with its 95% interval (stats.py; paired over "
        "seeds when both groups ran the same seeds).",
        "",
        f"| net | {key}: a → b | n | test err b − a (pp) | train err b − a (pp) |",
        "|---|---|---:|---|---|",
    ]
    alike: dict[str, list[Group]] = defaultdict(list)
    for group in groups:
        rest = {k: v for k, v in {**group.recipe, **group.told_apart}.items() if k != key}
        alike[fingerprint(rest)].append(group)
    for family in alike.values():
        base, *others = sorted(family, key=lambda g: str(g.setting_value(key)))
        for other in others:
            cells = [effect(base, other, m) for m in ("test_err", "train_err")]
            pair = f"{base.setting_value(key)} → {other.setting_value(key)}"
            lines.append(f"| {base.label} | {pair} | {len(base.runs)} vs {len(other.runs)} | {cells[0]} | {cells[1]} |")
    return [*lines, ""]


def effect(a: Group, b: Group, metric: str) -> str:
    """b − a of `metric`: paired over seeds when both ran the same ones (and at least 2), else Welch."""
    x, y = a.by_seed(metric), b.by_seed(metric)
    if len(x) >= 2 and x.keys() == y.keys():
        return stats.paired_difference(x, y).text()
    return stats.difference(list(x.values()), list(y.values())).text() if x and y else "–"


def paper_cells(group: Group, test: list[float], imagenet: bool) -> tuple[str, str]:
    """The paper column (a number, or in words why the row is not comparable) and ours − paper."""
    paper = paper_result(group)
    if paper is None:
        return "– (the paper has no number for this network)", "–"
    why_not = departures(group)
    if why_not:
        return "not comparable: " + "; ".join(why_not), "–"
    if not test:  # no run recorded a usable test error
        return "–", "–"
    if imagenet:
        top5 = f" / {paper['test_err5']:.2f}" if "test_err5" in paper else ""
        return f"{paper['test_err']:.2f}{top5}", f"{statistics.mean(test) - paper['test_err']:+.2f} (top-1)"
    if "test_err_mean" in paper:  # ResNet-110: Table 6 gives the best of 5 runs and their mean +- std
        runs = paper["runs"]
        text = f"{paper['test_err_mean']:.2f} ± {paper['test_err_std']:.2f} (mean of {runs}); best of {runs} "
        text += f"{paper['test_err']:.2f}"
        diff = f"mean {statistics.mean(test) - paper['test_err_mean']:+.2f}; "
        if len(test) == runs:
            diff += f"best {min(test) - paper['test_err']:+.2f}"
        else:  # the best of n runs is not the best of 5: the expected minimum depends on n
            diff += f"best: not comparable (best of {len(test)}, the paper's of {runs})"
        return text, diff
    if "read_precision" in paper:  # read off Fig. 6: its reading precision bounds any difference
        pm = paper["read_precision"]
        return (
            f"≈{paper['test_err']:g} ± {pm} (read off Fig. 6)",
            f"{statistics.mean(test) - paper['test_err']:+.1f} ± {pm}",
        )
    return f"{paper['test_err']:.2f}", f"{statistics.mean(test) - paper['test_err']:+.2f}"


def mean_curve(series: list[list[tuple[int, float]]]) -> tuple[list[int], list[float]]:
    """The mean over seeds at the iterations every seed logged."""
    common = sorted(set.intersection(*(set(s for s, _ in points) for points in series))) if series else []
    tables = [dict(points) for points in series]
    return common, [statistics.mean(t[s] for t in tables) for s in common]


def fig6_curves(
    groups: list[Group], curves: dict[Path, dict[str, list[tuple[int, float]]]]
) -> dict[str, list[tuple[int, float]]]:
    """Every CIFAR run's training and test error curves under the sweep board's Fig. 6 tags."""
    tagged = {}
    for group in groups:
        if group.family != "cifar":
            continue
        label = f"{group.label}-{group.recipe_id[:8]}" + "".join(f"-{k}={v}" for k, v in group.told_apart.items())
        for run in group.runs:
            for tag, split in (("train/err", "train"), ("test/err", "test")):
                if curves[run.path].get(tag):
                    tagged[fig6_tag(group.dataset, group.residual, label, run.seed, split)] = curves[run.path][tag]
    return tagged


def plot_fig6(groups: list[Group], path: Path, curves: dict[Path, dict[str, list[tuple[int, float]]]]) -> bool:
    """Fig. 6: plain (left) and residual (right) nets of one setting; dashed = training error, bold = test error.

    Returns False (and writes nothing) when no run logged a curve.
    """
    by_label = {g.label: [curves[r.path] for r in g.runs] for g in groups}
    if not any(c for runs in by_label.values() for c in runs):
        return False
    fig = Figure(figsize=(12, 4.5))  # no pyplot: no global state, no display backend
    axes = fig.subplots(1, 2, sharey=True)
    for ax, residual in zip(axes, (False, True), strict=True):
        for group in (g for g in groups if g.residual == residual):
            color = None
            for tag, style in (("test/err", "-"), ("train/err", "--")):
                series = [c[tag] for c in by_label[group.label] if c.get(tag)]
                if series:
                    steps, values = mean_curve(series)
                    label = group.label if color is None else None
                    (line,) = ax.plot(
                        steps, values, style, linewidth=2 if tag == "test/err" else 1, label=label, color=color
                    )
                    color = line.get_color()
        ax.set_title("residual" if residual else "plain")
        ax.set_xlabel("iterations")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    axes[0].set_ylabel("error (%)  — bold: test, dashed: train")
    save_figure(fig, path)
    return True


def plot_fig7(groups: list[Group], path: Path) -> bool:
    """Fig. 7: std of each 3x3 layer's response, in network order (top) and sorted by magnitude (bottom)."""
    by_label: dict[str, list[list[float]]] = defaultdict(list)
    for group in groups:
        for run in group.runs:
            values = numbers(run.responses)
            if values and all(len(values) == len(other) for other in by_label[group.label]):
                by_label[group.label].append(values)
    by_label = {label: seeds for label, seeds in by_label.items() if seeds}
    if not by_label:
        return False
    fig = Figure(figsize=(10, 7))
    axes = fig.subplots(2, 1)
    for label, seeds in sorted(by_label.items(), key=lambda kv: (kv[0].startswith("ResNet"), len(kv[1][0]))):
        std = [statistics.mean(values) for values in zip(*seeds, strict=True)]
        axes[0].plot(range(1, len(std) + 1), std, label=label)
        axes[1].plot(range(1, len(std) + 1), sorted(std, reverse=True), label=label)
    axes[0].set_xlabel("layer index (original)")
    axes[1].set_xlabel("layer index (sorted by magnitude)")
    for ax in axes:
        ax.set_ylabel("std")
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, path)
    return True


def save_figure(fig: Figure, path: Path) -> None:
    """A PNG, written atomically."""
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


def describe_segments(segments: list[dict[str, Any]]) -> str:
    """'steps 0-12: commit 1a2b3c4d5e, host a, torch 2.14.1, ...; steps 12-24: ...' (the keys that changed)."""
    changed = changed_across(segments)
    return "; ".join(
        f"steps {s['steps'][0]}-{s['steps'][1]}: " + ", ".join(f"{k} {str(s.get(k))[:12]}" for k in changed)
        for s in segments
    )


def provenance(runs: list[Run]) -> list[str]:
    """Where the numbers come from: commits, machines, precision, data, iterations and wall time of the runs."""
    done = [r.results for r in runs if r.status in ("completed", "not counted")]

    def values(get: Any) -> str:
        return ", ".join(sorted({str(get(r)) for r in done})) or "–"

    machines = sorted({", ".join(f"{k}: {v}" for k, v in r["machine"].items()) for r in done if r.get("machine")})
    hours = sum(r.get("wall_time_s") or 0 for r in done) / 3600
    return [
        f"- commits: {values(lambda r: str(r.get('git_commit'))[:10])}",
        f"- machines: {'; '.join(machines) or 'not recorded'}",
        f"- precision: {values(lambda r: r.get('precision', 'not recorded'))}",
        f"- data: {values(lambda r: (r.get('data') or {}).get('kind', 'not recorded'))}",
        f"- iterations per run: {values(lambda r: r['step'])}; total wall time of the completed runs: {hours:.2f} h",
    ]
