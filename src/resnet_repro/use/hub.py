"""What hubconf.py serves: a CIFAR or ImageNet network of the paper, fresh or with trained weights (weights.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from resnet_repro.models.registry import ARCHITECTURES
from resnet_repro.use.weights import WeightsError, build, load_record, network_name, read_weights


def with_weights(
    arch: str, kwargs: dict[str, Any], weights: str | Path | None, which: str, convention: str | None = None
) -> nn.Module:
    """A fresh network of `arch` (arguments left None take the constructor's defaults; any other argument of its
    constructor is taken by name), or the one `weights` record, checked against the arguments given."""
    table = ARCHITECTURES[arch]
    asked = {k: v for k, v in kwargs.items() if v is not None}
    unknown = table.unknown(asked)
    if unknown:
        raise WeightsError(f"{arch} takes no argument {', '.join(map(repr, unknown))}")
    runtime = {k: v for k, v in asked.items() if k not in table.parameters}  # memory options (checkpoint_stages)
    asked = {k: v for k, v in asked.items() if k in table.parameters}
    if weights is None:
        return build({"arch": arch, "kwargs": {**asked, **runtime}})
    record = read_weights(weights, which, convention)
    held = table.complete(record["kwargs"]) if record["arch"] == arch else {}  # arguments it left at the default
    clash = {k: v for k, v in asked.items() if held.get(k) != v}
    if record["arch"] != arch or clash:
        raise WeightsError(f"{weights} holds {network_name(record)}, not what was asked ({arch}, {asked})")
    model = load_record(record)
    for name, value in runtime.items():
        setattr(model, name, value)
    return model


def cifar_resnet(
    depth: int | None = None,
    residual: bool | None = None,
    shortcut: str | None = None,
    num_classes: int | None = None,
    weights: str | Path | None = None,
    which: str = "best",
    convention: str | None = None,
    **options: Any,
) -> nn.Module:
    """A CIFAR network of Sec. 4.2 (ResNet-20 with option A unless told); with `weights`, trained and in eval mode
    (`convention`: a published checkpoint of another project, use/conventions.py). `options`: any other argument
    of CifarResNet (pad, zero_init_residual)."""
    kwargs = {"depth": depth, "residual": residual, "shortcut": shortcut, "num_classes": num_classes, **options}
    return with_weights("CifarResNet", kwargs, weights, which, convention)


def imagenet_resnet(
    depth: int | None = None,
    residual: bool | None = None,
    shortcut: str | None = None,
    num_classes: int | None = None,
    stride_in_1x1: bool | None = None,
    weights: str | Path | None = None,
    which: str = "best",
    **options: Any,
) -> nn.Module:
    """An ImageNet network of Table 1 (ResNet-50, option B unless told); with `weights`, trained and in eval mode.
    `options`: any other argument of ImageNetResNet."""
    kwargs = {"depth": depth, "residual": residual, "shortcut": shortcut, "num_classes": num_classes, **options}
    return with_weights("ImageNetResNet", {**kwargs, "stride_in_1x1": stride_in_1x1}, weights, which)
