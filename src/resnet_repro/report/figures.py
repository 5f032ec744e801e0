"""The report's figures: Fig. 6 (training curves) and Fig. 7 (layer responses) of one setting, as PNG files."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from matplotlib.figure import Figure

from resnet_repro.files import atomic_write
from resnet_repro.report.board import fig6_tag
from resnet_repro.report.collect import Group, numbers


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
    atomic_write(path, lambda file: fig.savefig(file, dpi=110, format="png"), path.parent)
