"""Like with like: the paper's number for a group, and whether the group's recipe is the paper's.

The paper's recipe of a network is what this project's configs compose for it by default (the configs are
faithful by design: conf/ holds the recipe's numbers once); the paper's results are in
experiments/paper_numbers.yaml. A group is compared with the paper only when its recipe equals the paper's,
data aside from its fingerprint (the official files for CIFAR); otherwise the report says in words why not.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from resnet_repro.config import compose_config, declared_dataset, recipe  # the paper's recipe, its data
from resnet_repro.report.collect import Group

PAPER_NUMBERS = Path(__file__).resolve().parents[1] / "paper_numbers.yaml"  # links to experiments/paper_numbers.yaml


@cache
def paper_numbers() -> dict[str, Any]:
    return yaml.safe_load(PAPER_NUMBERS.read_text())


def reference_overrides(group: Group) -> tuple[str, ...] | None:
    """The config overrides that compose the paper's recipe of this group's network, None if the paper has none."""
    if group.family == "cifar":
        if group.dataset != "cifar10" or (group.residual and group.shortcut != "A"):
            return None
        name = f"{'resnet' if group.residual else 'plain'}{group.depth}"
        known = paper_numbers()["cifar10"]["test_err"]["resnet" if group.residual else "plain"]
        return (f"net={name}",) if group.depth in known else None
    if group.depth == 34 and group.residual and group.shortcut in ("B", "C"):
        return ("experiment=imagenet_table3", f"net=resnet34_{group.shortcut.lower()}")
    if group.depth in (18, 34) and group.shortcut == "A":  # shortcut: one of the options, never a config name
        return ("experiment=imagenet_table2", f"model.depth={group.depth}", f"model.residual={group.residual}")
    if group.depth in (50, 101, 152) and group.residual and group.shortcut == "B":
        return ("experiment=imagenet_table3", f"net=resnet{group.depth}")
    return None


@cache
def reference_recipe(overrides: tuple[str, ...], dataset: str) -> dict[str, Any]:
    cfg = compose_config(list(overrides))
    # the paper's data: the official release where the dataset has one (CIFAR), else ImageNet's image folders
    return recipe(cfg, {"source": "official" if declared_dataset(dataset).get("official") else "image-folder"})


def departures(group: Group) -> list[str]:
    """How the group's recipe departs from the paper's, in words; empty when it is the paper's recipe."""
    overrides = reference_overrides(group)
    if overrides is None:
        return ["the paper has no number for this network and dataset"]
    paper = reference_recipe(overrides, group.dataset)
    ours = group.recipe
    words = []
    first = ("trainer.max_steps", "data.source", "data.train_size", "data.val_size", "data.test_size")
    for key in sorted(paper.keys() | ours.keys(), key=lambda k: (first.index(k) if k in first else len(first), k)):
        if key == "data.fingerprint" or paper.get(key) == ours.get(key):
            continue
        words.append(departure(key, ours.get(key), paper.get(key)))
    return words


COUNTS = ("trainer.max_steps", "data.val_size", "data.train_size", "data.test_size")  # said as counts


def departure(key: str, ours: Any, paper: Any) -> str:
    """One departure from the paper's recipe, as a reader would say it."""
    said = (ours, paper) if key == "trainer.max_steps" else (ours,)
    if key in COUNTS and any(not isinstance(v, int) or isinstance(v, bool) for v in said):
        return f"{key} = {ours} (paper: {paper})"  # a count recorded as something else (or not at all)
    if key == "trainer.max_steps":
        return f"{ours:,} of {paper:,} iterations"
    if key == "data.source":
        return "image folder, not the official files" if ours == "image-folder" else f"data source {ours}"
    if key == "data.val_size":
        return f"{ours:,} training images held out for validation"
    if key == "data.train_size":
        return f"{ours:,}-image training subset"
    if key == "data.test_size":
        return f"{ours:,}-image test subset"
    if key == "trainer.precision":
        return f"precision {ours} (paper: {paper})"
    if key == "optim.milestones":
        return f"lr steps at {ours} (paper: {paper})"
    return f"{key} = {ours} (paper: {paper})"


def paper_result(group: Group) -> dict[str, float] | None:
    """The paper's numbers for this group's network: test_err (and test_err_mean/std, test_err5 where given)."""
    numbers = paper_numbers()
    if reference_overrides(group) is None:
        return None
    if group.family == "cifar":
        kind = "resnet" if group.residual else "plain"
        out = {"test_err": numbers["cifar10"]["test_err"][kind][group.depth]}
        if kind in numbers["cifar10"]["read_off_figure"]:  # Fig. 6's curves, read to a stated precision
            out["read_precision"] = numbers["cifar10"]["read_off_figure"][kind]
        if group.residual and group.depth == 110:  # Table 6: best of 5 runs, and their mean +- std
            out["test_err_mean"], out["test_err_std"] = numbers["cifar10"]["resnet110_mean_std"]
            out["runs"] = numbers["cifar10"]["resnet110_runs"]
        return out
    table2 = numbers["imagenet"]["table2_top1"]
    name = f"{'resnet' if group.residual else 'plain'}{group.depth}"
    if group.shortcut == "A" and name in table2:
        out = {"test_err": table2[name]}
        table3_name = "resnet34_a" if name == "resnet34" else name
        if table3_name in numbers["imagenet"]["table3"]:  # Table 3 adds top-5 for plain-34 and ResNet-34 A
            out["test_err5"] = numbers["imagenet"]["table3"][table3_name][1]
        return out
    key = f"resnet34_{group.shortcut.lower()}" if group.depth == 34 else f"resnet{group.depth}"
    top1, top5 = numbers["imagenet"]["table3"][key]
    return {"test_err": top1, "test_err5": top5}


def paper_value(family: str, label: str, metric: str) -> float | None:
    """The paper's number for a network named by its label (plain-56, ResNet-20, ResNet-34-B) on the paper's
    dataset of its family (CIFAR-10: test and training error of Table 6 and Fig. 6; ImageNet: top-1 of Tables 2
    and 3), None where the paper gives none."""
    kind, depth, *option = label.split("-")
    residual = kind == "ResNet"
    numbers = paper_numbers()
    if family == "cifar":
        if option or metric not in ("test_err", "train_err"):  # CIFAR's ResNets are option A, unnamed
            return None
        return numbers["cifar10"][metric]["resnet" if residual else "plain"].get(int(depth))
    if metric != "test_err":
        return None
    name = f"{'resnet' if residual else 'plain'}{depth}"
    shortcut = option[0] if option else "B"
    if shortcut == "A" or not residual:
        return numbers["imagenet"]["table2_top1"].get(name)
    key = f"resnet34_{shortcut.lower()}" if depth == "34" else name
    found = numbers["imagenet"]["table3"].get(key)
    return found[0] if found else None
