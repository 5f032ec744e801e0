"""Foreign checkpoints as conventions, declared as data: where a published project keeps its state_dict, how its
keys map to ours, and what its networks and inputs were. A checkpoint read through its convention becomes an
export record (weights.py) that evaluates, exports and loads like one of ours, with the convention recorded.

A new convention is one `Convention(...)` in CONVENTIONS and its test.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from resnet_repro.models.registry import ARCHITECTURES


@dataclass(frozen=True)
class Convention:
    name: str
    source: str  # the project (and snapshot) whose code defines it
    arch: str  # our network class (models/registry.py)
    state_key: str | None  # the file's key that holds the state_dict (a bare state_dict is read too)
    renames: tuple[tuple[str, str], ...]  # (regular expression, replacement) on every key, in order
    kwargs: dict[str, Any] = field(default_factory=dict)  # constructor arguments its networks all have
    normalize: str = "pixel_mean"  # data.normalize of its inputs (data/transforms.py)
    filled: tuple[str, ...] = ()  # buffer names its files lack (saved by older PyTorch), filled with zeros
    marks: tuple[str, ...] = ()  # patterns of keys only its files have: a file without them is not its
    max_depth: int = 1202  # the deepest network it publishes: a file claiming more blocks is not built

    def rename(self, key: str) -> str:
        for pattern, replacement in self.renames:
            key = re.sub(pattern, replacement, key)
        return key


CONVENTIONS = {
    "akamaster": Convention(
        name="akamaster",
        source="akamaster/pytorch_resnet_cifar10 (resnet.py, trainer.py; snapshot d5489e8)",
        arch="CifarResNet",
        state_key="state_dict",  # {"best_prec1": ..., "state_dict": ...}, saved from nn.DataParallel
        renames=((r"^module\.", ""), (r"^linear\.", "fc.")),
        kwargs={"residual": True, "shortcut": "A", "pad": "both"},  # LambdaLayer: planes // 4 zeros on each side
        normalize="imagenet_mean_std",  # ToTensor, Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        filled=("num_batches_tracked",),
        marks=(r"(^|\.)linear\.weight$",),  # their classifier is `linear` (ours and torchvision's: fc)
    ),
}


def state_of(data: dict[str, Any], convention: Convention) -> dict[str, Any] | None:
    """The state_dict in a loaded file, where the convention keeps it (or the file itself, saved bare); None if
    it is not there."""
    state = data.get(convention.state_key, data) if convention.state_key else data
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return None
    return state


def cifar_kwargs(state: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    """depth (6n+2 from the blocks of layer1) and num_classes (fc's rows) of a CIFAR state_dict in our names."""
    blocks = {m.group(1) for key in state if (m := re.match(r"layer1\.(\d+)\.", key))}
    if not blocks or "fc.weight" not in state:
        return None
    return {"depth": 6 * len(blocks) + 2, "num_classes": int(state["fc.weight"].shape[0])}


def read(data: dict[str, Any], convention: Convention, path: Path) -> dict[str, Any] | None:
    """The weights of a loaded foreign file as {arch, kwargs, state_dict, recipe, convention}, or None when the
    file does not hold what the convention says."""
    found = state_of(data, convention)
    if found is None or not all(any(re.search(mark, str(key)) for key in found) for mark in convention.marks):
        return None
    state = {convention.rename(str(key)): value for key, value in found.items()}
    shape = cifar_kwargs(state)
    if shape is None or shape["depth"] > convention.max_depth:
        return None
    kwargs = {**shape, **convention.kwargs}
    for key in [k for k in state if k.endswith(".running_var")]:  # every BN: the buffers older files lack
        for name in convention.filled:
            state.setdefault(key.removesuffix("running_var") + name, torch.tensor(0))
    try:
        expected = ARCHITECTURES[convention.arch].cls(**kwargs).state_dict()
    except ValueError:  # a depth or class count no network of ours has
        return None
    if expected.keys() != state.keys() or any(expected[k].shape != state[k].shape for k in expected):
        return None  # not the convention's network: another project's keys that happen to look alike
    return {
        "arch": convention.arch,
        "kwargs": kwargs,
        "state_dict": state,
        "recipe": {"data.normalize": convention.normalize, **{f"model.{k}": v for k, v in kwargs.items()}},
        "convention": convention.name,
        "convention_source": convention.source,
        "source": str(path),
    }


def matching(data: dict[str, Any], path: Path) -> list[str]:
    """The conventions that read this file."""
    return [name for name, convention in CONVENTIONS.items() if read(data, convention, path) is not None]


def add_argument(parser: argparse.ArgumentParser) -> None:
    """`--from NAME` of the commands that read weights (evaluate, export)."""
    parser.add_argument(
        "--from",
        dest="convention",
        choices=sorted(CONVENTIONS),
        default=None,
        help="a published checkpoint of another project: build and feed it as its authors' code does",
    )
