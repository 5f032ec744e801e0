"""The report: reads the runs of one or more sweeps and writes report.md with the paper's tables and figures.

    python -m resnet_repro.report outputs/cifar10 [more sweep dirs] [--out DIR]

Table 6 (our mean +- std over seeds beside the paper's number), Fig. 6 (training error dashed, test error bold,
against iterations; plain and residual panels), Fig. 7 (response std per layer, in order and sorted), shortcut
options side by side, and a plain-vs-residual degradation summary. Runs that failed, diverged or have not
finished are listed, never dropped silently.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from resnet_repro.files import read_json  # noqa: E402
from resnet_repro.recipe import RECIPE, flatten  # noqa: E402

PAPER_NUMBERS = Path(__file__).resolve().parents[2] / "experiments" / "paper_numbers.yaml"


@dataclass
class Run:
    """One run directory and what it recorded."""

    path: Path
    status: str
    depth: int | None = None
    residual: bool = True
    shortcut: str = "A"
    seed: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        name = f"{'ResNet' if self.residual else 'plain'}-{self.depth}"
        return f"{name}-{self.shortcut}" if self.residual and self.shortcut != "A" else name

    @property
    def key(self) -> tuple[bool, int, str]:
        return (self.residual, self.depth or 0, self.shortcut)


def find_runs(sweeps: list[Path]) -> list[Run]:
    """Every run directory (one with recipe.json or results.json) under the sweeps, with what it recorded."""
    runs = []
    for sweep in sweeps:
        run_dirs = {p.parent for name in (RECIPE, "results.json") for p in sweep.rglob(name)}
        for run_dir in sorted(run_dirs):
            identity = read_json(run_dir / RECIPE) or {}
            results = read_json(run_dir / "results.json") or {"status": "unfinished"}
            recipe = results.get("recipe") or identity.get("recipe") or flatten(results.get("config") or {})
            runs.append(
                Run(
                    path=run_dir,
                    status=results["status"],
                    depth=recipe.get("model.depth"),
                    residual=recipe.get("model.residual", True),
                    shortcut=str(recipe.get("model.shortcut", "A")).upper(),
                    seed=results.get("seed", identity.get("seed", recipe.get("seed"))),
                    metrics=results.get("metrics") or {},
                    error=results.get("error"),
                    results=results,
                )
            )
    return runs


def curves(run: Run) -> dict[str, list[tuple[int, float]]]:
    """train/err and test/err against iterations, from the run's TensorBoard logs."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for events in sorted((run.path / "tb").glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in ("train/err", "test/err", "val/err"):
            if tag in acc.Tags()["scalars"]:
                out[tag].update({e.step: e.value for e in acc.Scalars(tag)})
    return {tag: sorted(points.items()) for tag, points in out.items()}


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def mean_curve(series: list[list[tuple[int, float]]]) -> tuple[list[int], list[float]]:
    """The mean over seeds at the iterations every seed logged."""
    common = sorted(set.intersection(*(set(s for s, _ in points) for points in series))) if series else []
    tables = [dict(points) for points in series]
    return common, [statistics.mean(t[s] for t in tables) for s in common]


def grouped(runs: list[Run]) -> dict[tuple[bool, int, str], list[Run]]:
    groups: dict[tuple[bool, int, str], list[Run]] = defaultdict(list)
    for run in runs:
        if run.status == "completed":
            groups[run.key].append(run)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])))


def plot_fig6(groups: dict, path: Path) -> None:
    """Fig. 6: plain (left) and residual (right) nets; dashed = training error, bold = test error."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, residual in zip(axes, (False, True), strict=True):
        for (res, _depth, shortcut), runs in groups.items():
            if res != residual or shortcut != "A":
                continue
            data = [curves(r) for r in runs]
            line = None
            for tag, style in (("test/err", "-"), ("train/err", "--")):
                series = [d[tag] for d in data if d.get(tag)]
                if not series:
                    continue
                steps, values = mean_curve(series)
                kwargs = {"color": line.get_color()} if line is not None else {}
                (drawn,) = ax.plot(
                    steps,
                    values,
                    style,
                    linewidth=2 if tag == "test/err" else 1,
                    label=runs[0].label if line is None else None,
                    **kwargs,
                )
                line = line or drawn
        ax.set_title("residual" if residual else "plain")
        ax.set_xlabel("iterations")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("error (%)  — bold: test, dashed: train")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fig7(runs: list[Run], path: Path) -> None:
    """Fig. 7: std of each 3x3 layer's response, in network order (top) and sorted by magnitude (bottom)."""
    fig, axes = plt.subplots(2, 1, figsize=(10, 7))
    by_label: dict[str, list[list[float]]] = defaultdict(list)
    for run in runs:
        responses = read_json(run.path / "layer_responses.json")
        if responses and run.shortcut == "A":
            by_label[run.label].append(list(responses.values()))
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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(sweeps: list[Path], out: Path) -> Path:
    """Write report.md, fig6.png and fig7.png into `out`; return the report's path."""
    paper = yaml.safe_load(PAPER_NUMBERS.read_text())["cifar10"]
    runs = find_runs(sweeps)
    if not runs:
        raise SystemExit(f"error: no runs (folders with recipe.json) under {', '.join(map(str, sweeps))}")
    out.mkdir(parents=True, exist_ok=True)
    groups = grouped(runs)
    lines = [
        f"# Report: {', '.join(str(s) for s in sweeps)}",
        "",
        f"{sum(r.status == 'completed' for r in runs)} of {len(runs)} runs completed. Errors are percent; "
        "mean ± std over seeds (n = seeds).",
        "",
        *provenance(runs),
        "",
        "## Table 6: test error by depth (plain nets: Fig. 6)",
        "",
        "| net | params | n | test err | train err | paper test err | ours − paper |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (residual, depth, shortcut), group in groups.items():
        test = [r.metrics["test_err"] for r in group if "test_err" in r.metrics]
        train = [r.metrics["train_err"] for r in group if "train_err" in r.metrics]
        ref = paper["test_err"]["resnet" if residual else "plain"].get(depth) if shortcut == "A" else None
        diff = f"{statistics.mean(test) - ref:+.2f}" if ref is not None and test else "–"
        params = group[0].results.get("params")
        lines.append(
            f"| {group[0].label} | {params:,} | {len(group)} | {mean_std(test)} | {mean_std(train)} | "
            f"{ref if ref is not None else '–'} | {diff} |"
        )

    lines += ["", "## Degradation: plain vs residual", ""]
    lines += degradation(groups, paper)

    shortcut_depths = {d for (res, d, s) in groups if res and s != "A"}
    if shortcut_depths:
        lines += [
            "",
            "## Shortcut options A / B / C (test error)",
            "",
            "| depth | A | B | C |",
            "|---:|---:|---:|---:|",
        ]
        for depth in sorted(shortcut_depths):
            cells = [mean_std([r.metrics["test_err"] for r in groups.get((True, depth, s), [])]) for s in "ABC"]
            lines.append(f"| {depth} | " + " | ".join(cells) + " |")

    plot_fig6(groups, out / "fig6.png")
    plot_fig7([r for g in groups.values() for r in g], out / "fig7.png")
    lines += [
        "",
        "## Fig. 6: training curves",
        "",
        "![Fig. 6](fig6.png)",
        "",
        "## Fig. 7: layer responses",
        "",
        "Std of each 3x3 layer's output after BN, before ReLU/addition, on the "
        "test set in eval mode (std over all elements; the stem conv is layer 1).",
        "",
        "![Fig. 7](fig7.png)",
        "",
    ]

    problems = [r for r in runs if r.status != "completed"]
    lines += ["## Runs not completed", ""]
    lines += [f"- `{r.path}`: {r.status}" + (f" ({r.error})" if r.error else "") for r in problems] or ["none"]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def provenance(runs: list[Run]) -> list[str]:
    """Where the numbers come from: commits, machines, iterations and wall time of the runs."""
    done = [r.results for r in runs if r.status == "completed"]
    commits = sorted({str(r.get("git_commit"))[:10] for r in done})
    machines = sorted({", ".join(f"{k}: {v}" for k, v in r["machine"].items()) for r in done if r.get("machine")})
    steps = sorted({r["step"] for r in done})
    hours = sum(r.get("wall_time_s") or 0 for r in done) / 3600
    return [
        f"- commits: {', '.join(commits) or '–'}",
        f"- machines: {'; '.join(machines) or 'not recorded'}",
        f"- iterations per run: {', '.join(map(str, steps)) or '–'}; total wall time of the completed runs: "
        f"{hours:.2f} h",
    ]


def degradation(groups: dict, paper: dict) -> list[str]:
    """Deeper plain nets train worse (Fig. 6 left); residual nets of the same depth train better."""

    def mean_of(residual: bool, depth: int, key: str) -> float | None:
        values = [r.metrics[key] for r in groups.get((residual, depth, "A"), []) if key in r.metrics]
        return statistics.mean(values) if values else None

    plain_depths = sorted(d for (res, d, s) in groups if not res and s == "A")
    lines = []
    if len(plain_depths) >= 2:
        lo, hi = plain_depths[0], plain_depths[-1]
        for key, name in (("train_err", "train"), ("test_err", "test")):
            a, b = mean_of(False, lo, key), mean_of(False, hi, key)
            ref = paper[f"{name}_err"]["plain"]
            ref_text = f" (paper: {ref[hi] - ref[lo]:+.2f})" if lo in ref and hi in ref else ""
            if a is not None and b is not None:
                verdict = "degradation" if b > a else "no degradation"
                lines.append(f"- plain-{hi} − plain-{lo} {name} error: {b - a:+.2f} pp{ref_text}: {verdict}.")
    for depth in plain_depths:
        p, r = mean_of(False, depth, "test_err"), mean_of(True, depth, "test_err")
        pt, rt = mean_of(False, depth, "train_err"), mean_of(True, depth, "train_err")
        if None not in (p, r, pt, rt):
            verdict = "residual better" if rt < pt else "residual not better"
            lines.append(
                f"- depth {depth}: ResNet − plain train error {rt - pt:+.2f} pp, test error {r - p:+.2f} pp: {verdict}."
            )
    return lines or ["not enough plain and residual runs to compare"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep directories (their runs hold results.json)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <first sweep>/report)")
    args = parser.parse_args(argv)
    missing = [s for s in args.sweeps if not s.is_dir()]
    if missing:
        print(f"error: not a directory: {', '.join(map(str, missing))}", file=sys.stderr)
        sys.exit(2)
    report = write_report(args.sweeps, args.out or args.sweeps[0] / "report")
    print(f"wrote {report}")


if __name__ == "__main__":
    main()
