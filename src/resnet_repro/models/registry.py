"""The one table of this project's networks: each class, the family of images it is for, and its constructor
arguments (read from the constructor's signature). Checks, HParams, weights, evaluate and hub read it; a new
model argument is the model's and its config's (conf/model/), nothing else."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from torch import nn

from resnet_repro.models.cifar import CifarResNet
from resnet_repro.models.imagenet import ImageNetResNet

RUNTIME = ("checkpoint_stages",)  # constructor arguments that change memory or speed, never the function


@dataclass(frozen=True)
class Architecture:
    cls: type[nn.Module]
    family: str  # the family of images a dataset declares (data.family): "cifar" or "imagenet"
    images: str  # the family in words, for messages

    @property
    def name(self) -> str:
        return self.cls.__name__

    @property
    def parameters(self) -> dict[str, inspect.Parameter]:
        """The constructor's arguments that define the network (RUNTIME ones left out), with their defaults."""
        found = inspect.signature(self.cls).parameters
        return {name: p for name, p in found.items() if name not in RUNTIME}

    @property
    def arguments(self) -> tuple[str, ...]:
        return tuple(self.parameters)

    def unknown(self, kwargs: dict[str, Any]) -> list[str]:
        """The names in `kwargs` that the constructor does not take."""
        return [name for name in kwargs if name not in inspect.signature(self.cls).parameters]

    def complete(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """`kwargs` with every argument left out at its constructor default (what a network built from them has)."""
        defaults = {name: p.default for name, p in self.parameters.items() if p.default is not inspect.Parameter.empty}
        return {**defaults, **{k: v for k, v in kwargs.items() if k in self.parameters}}


ARCHITECTURES = {
    a.name: a
    for a in (
        Architecture(CifarResNet, "cifar", "32x32 CIFAR-like"),  # Sec. 4.2
        Architecture(ImageNetResNet, "imagenet", "224x224 ImageNet-like"),  # Table 1
    )
}


def architecture(target: str) -> Architecture | None:
    """The network a class name or a `_target_` (resnet_repro.models.CifarResNet) names, None if none of ours."""
    return ARCHITECTURES.get(str(target).rsplit(".", 1)[-1])
