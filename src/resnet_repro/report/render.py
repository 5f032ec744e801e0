"""Rendering: report.md (the scorecard first, then one table per dataset), scorecard.json, Fig. 6 and Fig. 7."""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from resnet_repro.errors import UserError, escaped
from resnet_repro.files import WriteFailed, atomic_write, file_name, interrupted_writes, write_json
from resnet_repro.report import claims, stats
from resnet_repro.report.board import write_board
from resnet_repro.report.collect import (
    Group,
    Run,
    by_dataset,
    by_setting,
    find_runs,
    group_runs,
    keep_splitting_keys,
)
from resnet_repro.report.figures import fig6_curves, plot_fig6, plot_fig7
from resnet_repro.report.paper import departures, paper_result
from resnet_repro.report.tb_events import read_scalars
from resnet_repro.runs.layout import LOCK
from resnet_repro.runs.lock import LocksUnsupported, RunLock
from resnet_repro.runs.provenance import changed_across
from resnet_repro.runs.recipe import fingerprint, is_recipe_key

log = logging.getLogger(__name__)

METRICS = ("train_err", "test_err")
REPORT_FILES = (
    "report.md",
    "scorecard.json",
    "runs.json",
    "fig6-*.png",
    "fig7-*.png",
    "board.json",
)  # what the report writes in its folder


def write_report(sweeps: list[Path], out: Path, compare: tuple[str, ...] = ()) -> Path:
    """Write report.md, scorecard.json and the figures into `out`; return the report's path.

    `compare`: keys whose effect gets a table of its own: every pair of groups whose recipes differ in that key
    alone, with the difference of their errors and its 95% interval. A recipe key (trainer.precision, optim.lr),
    or a key of how the runs computed (compile, data.loader) as their configs recorded it, which then tells their
    groups apart.

    Raises UserError when the sweeps hold no runs, or no run recorded a compared key (nothing is written then), and
    RunHeldError when another process holds `out` (a report being written there). The report's `.lock` stays in
    `out`; while one report writes there, a second one is refused.
    """
    if out.is_symlink():  # a `report` link in a stranger's sweep would send the report (and its removals) elsewhere
        raise UserError(f"{out} is a symbolic link: give the report a folder of its own (--out DIR)")
    runs = find_runs(sweeps, tuple(key for key in compare if not is_recipe_key(key)))
    if not runs:
        raise UserError(f"no runs (folders with recipe.json or results.json) under {', '.join(map(str, sweeps))}")
    for key in compare:
        if all(run.setting_value(key) is None for run in runs):
            example = "a dotted config key: trainer.precision, compile"
            raise UserError(f"--compare {key}: no run recorded a value for it ({example})")
    keep_splitting_keys(runs)  # a key on which every run agrees splits nothing: setting ids stay as without it
    lock, held = RunLock(out, doing="writing a report there"), True  # a second report would remove this one's files
    try:
        lock.acquire()  # RunHeldError naming the holder
    except LocksUnsupported as err:  # a report alone in its folder still writes it; two at once may clash there
        log.warning("%s; writing the report without a lock", err)
        held = False
    except OSError as err:  # `out` is a file, or cannot be made
        raise WriteFailed(out / LOCK, err) from err
    try:
        return render(runs, sweeps, out, compare, held)
    finally:
        lock.release()


def render(runs: list[Run], sweeps: list[Path], out: Path, compare: tuple[str, ...], held: bool) -> Path:
    """write_report's files, written while this process holds `out` (`held`; without a lock, another process's
    unfinished files are left alone)."""
    notes = interrupted_writes(out, REPORT_FILES, remove=held)
    for note in notes:
        log.warning("%s", escaped(note))
    groups = group_runs(runs)
    datasets = by_dataset(groups)
    settings = {name: by_setting(gs) for name, gs in datasets.items()}
    every_setting = [(name, setting) for name, dataset_settings in settings.items() for setting in dataset_settings]
    results = claims.evaluate(every_setting)
    write_scorecard(out / "scorecard.json", sweeps, results, every_setting, compare)
    write_json(
        out / "runs.json", [run.record() for run in runs], root=out
    )  # what the report read: it regenerates from this

    lines = [f"# Reproduction report: {', '.join(s.name for s in sweeps)}", ""]
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
    lines += [f"- `{r.where}`: {describe_segments(r.segments)}" for r, changed in resumed if changed] or ["none"]
    problems = [r for r in runs if r.status != "completed"]
    lines += ["", "## Runs not completed or not counted", ""]
    lines += [f"- `{r.where}`: {r.status}" + (f" ({r.error})" if r.error else "") for r in problems] or ["none"]
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
    text = "\n".join(map(escaped, lines)) + "\n"  # one line each: what a record says cannot add a line
    atomic_write(report, lambda file: file.write(text.encode()), out)
    return report


def floor_lines(groups: list[Group]) -> list[str]:
    """The setting's seed spread per metric, as the report states it: the noise floor of single runs."""
    lines = []
    for metric in METRICS:
        found = claims.spread(groups, metric)
        words = claims.METRIC_WORDS[metric]
        if found is None:
            lines.append(
                f"{words}: none (no group of this setting has 2 differing seeds): one run per side is not tested"
            )
        else:
            std, dof = found
            lines.append(
                f"{words}: ±{stats.floor_of(std, dof):.2f} pp at 95% (seed std {std:.2f} pp pooled over "
                f"this setting's groups, {dof} dof)"
            )
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
    "A claim is judged within one **setting**: runs whose recipes differ only in the network (the model and its "
    "warm-up), so like is compared with like. A setting that lacks a network the claim names, or a metric it "
    "tests, gets **inconclusive** with what is missing: a claim is never judged on part of its statement.",
    "Each comparison is a difference of means over seeds (Welch's t; Student's t with the larger side's variance "
    "when one side has one seed), a least-squares trend on log2 depth, or a mean against a bound; its p-value "
    "tests the claim's hypothesis (an equivalence: two one-sided tests within the margin). Identical values "
    "(zero variance) give no test.",
    "**Family-wise control over the whole scorecard**: the p-values of every comparison of every claim in every "
    "setting are adjusted together by Holm's method, and a comparison decides only when its adjusted p-value is "
    "below 0.05, so the probability of any false verdict in this report is at most 5%. A claim **holds** when "
    "every comparison decides for it, **does not hold** when any decides against it, and is **inconclusive** "
    "otherwise; then the report says how many seeds per network would give 80% power. "
    "`python -m resnet_repro.report --calibrate` measures both by simulation.",
    '"Falls (rises) with depth" is a significant trend per doubling of depth and no step between adjacent '
    "depths significantly the other way: *holds* on a depth series asserts the trend and that no step is shown "
    "reversed, not that every step falls (a small reversal the seeds cannot resolve does not stop it).",
    "**Margins and bounds** are stated with their source on the metric's own scale, in the design table below.",
    "**Noise floors**: one run per side is tested against the seed spread pooled over the replicates of the same "
    "setting, never another setting's or the paper's; without replicates it is not tested.",
    "**Training error** is the mean over the last epoch of training, or over the whole run when it is shorter than "
    "an epoch (`train_window` iterations in runs.json; augmented batches in train mode, as Fig. "
    "6's curves), whatever the logging interval.",
    "A claim tested on a dataset where the paper does not make it is marked *our extension*.",
]


def design_table() -> list[str]:
    """Each claim's design: the paper's words, what is tested, the networks, the margins and bounds."""
    lines = [
        "### How each claim is tested",
        "",
        "| # | the paper's words | tested as | networks | margins, bounds, what is ours |",
        "|---:|---|---|---|---|",
    ]
    for claim in claims.CLAIMS:
        tests = "<br>".join(c.hypothesis for c in claim.comparisons)
        margins = [f"{c.margin.text}: {c.margin.why}" for c in claim.comparisons if c.margin][:1]
        margins += [f"bound {c.bound:+g}" for c in claim.comparisons if c.bound is not None][:1]
        margins += [f"ours: {claim.ours}"] if claim.ours else []
        where = claim.source + ("" if claim.paper_dataset else "; *our extension* on every dataset")
        lines.append(
            f'| {claim.id} | "{claim.quote}" ({where}) | {tests} | {", ".join(claim.nets)} | '
            f"{'<br>'.join(margins) or '–'} |"
        )
    return [*lines, ""]


def evidence_text(e: claims.Evidence) -> str:
    """One comparison in words: estimate, 95% interval, p-values and what it decided."""
    unit = claims.UNITS.get(e.metric, "")
    if e.kind == "trend":
        unit += " per doubling"
    if e.p is None:
        return f"{e.hypothesis}: not tested ({e.why}) → {e.verdict}"
    extra = f", margin {e.margin:.2f}" if e.margin is not None else ""
    return f"{e.hypothesis}: {e.interval.text(unit)}{extra}; p = {e.p:.2g}, Holm {e.p_holm:.2g} → {e.verdict}"


def claim_cell(r: claims.ClaimResult) -> str:
    lines = [evidence_text(e) for e in r.evidence]
    if r.missing:
        lines.append("not tested: " + "; ".join(r.missing))
    if r.seeds_needed is not None:
        lines.append(f"seeds needed: {r.seeds_needed['why']}")
    return "<br>".join(lines)


def scorecard_table(results: list[claims.ClaimResult], settings: list[tuple[str, list[Group]]]) -> list[str]:
    """The scorecard: its rules and design, then per setting its noise floors and the claims judged there, then
    the claims no setting could test, with the command that runs them."""
    lines = ["## Scorecard: the paper's claims", "", *[f"- {rule}" for rule in RULES], "", *design_table()]
    shown = 0
    for _, groups in settings:
        judged = [r for r in results if r.setting_id == claims.setting_id(groups)]
        if not judged:
            continue
        shown += 1
        title = f"Setting {shown} (`{claims.setting_id(groups)}`): {groups[0].title}"
        lines += [f"### {title}, {describe_setting(groups)}", ""]
        lines += [f"Seed spread (noise floor of single runs): {'; '.join(floor_lines(groups))}.", ""]
        lines += ["| # | claim | source | verdict | evidence |", "|---:|---|---|---|---|"]
        for r in judged:
            claim = f"{r.statement} (*our extension*)" if r.extension else r.statement
            lines.append(f"| {r.id} | {claim} | {r.source} | **{r.verdict}** | {claim_cell(r)} |")
        lines.append("")
    missing = [r for r in results if r.verdict == stats.NOT_RUN]
    if missing:
        lines += ["### Not run", "", "| # | claim | source | run it |", "|---:|---|---|---|"]
        lines += [f"| {r.id} | {r.statement} | {r.source} | `{r.command}` |" for r in missing]
        lines.append("")
    return lines


def write_scorecard(
    path: Path,
    sweeps: list[Path],
    results: list[claims.ClaimResult],
    settings: list[tuple[str, list[Group]]],
    compare: tuple[str, ...] = (),
) -> None:
    described = {claims.setting_id(groups): describe_setting(groups) for _, groups in settings}
    data = {
        "sweeps": [s.name for s in sweeps],
        "compare": list(compare),
        "rules": RULES,
        "design": [
            {
                "id": c.id,
                "quote": c.quote,
                "source": c.source,
                "statement": c.statement,
                "networks": list(c.nets),
                "hypotheses": [c.hypothesis for c in c.comparisons],
                "margins": [{"size": x.margin.text, "why": x.margin.why} for x in c.comparisons if x.margin],
                "ours": c.ours,
            }
            for c in claims.CLAIMS
        ],
        "settings": [
            {
                "dataset": name,
                "setting": described[claims.setting_id(groups)],
                "setting_id": claims.setting_id(groups),
                "noise_floors_95": floor_lines(groups),
            }
            for name, groups in settings
        ],
        "claims": [{**asdict(r), "setting": described.get(r.setting_id, "")} for r in results],
    }
    write_json(path, data, root=path.parent)


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
    departed: dict[str, list[str]] = {}  # each setting's departures from the paper, said once under the table
    for group in groups:
        cells = [cell(group) for _, cell in columns]
        cells += paper_cells(group, group.values("test_err"), family == "imagenet")
        if cells[-2].startswith("not comparable"):
            departed[fingerprint(group.setting)[:8]] = departures(group)
            cells[-2] = f"not comparable (setting `{fingerprint(group.setting)[:8]}`)"
        lines.append(f"| {group.label} | {recipe_cell(group)} | " + " | ".join(cells) + " |")
    lines.append("")
    for setting, words in departed.items():
        lines += [f"Setting `{setting}` is not the paper's recipe: {'; '.join(words)}.", ""]
    if family == "cifar":  # Fig. 6 and Fig. 7 are CIFAR figures
        for i, setting in enumerate(settings):
            suffix = "" if len(settings) == 1 else f"-{i + 1}"
            shown = name if file_name(name) else f"dataset-{fingerprint({'name': name})[:8]}"  # a record's: no path
            fig6, fig7 = out / f"fig6-{shown}{suffix}.png", out / f"fig7-{shown}{suffix}.png"
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
