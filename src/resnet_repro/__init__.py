"""resnet-repro: a faithful, fast reproduction of He et al., "Deep Residual Learning for Image Recognition"."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_model"]


def __getattr__(name: str) -> Any:
    """`resnet_repro.load_model`, imported when first asked for: the report and the configs do not load the
    training stack (Lightning) by importing the package."""
    if name == "load_model":
        from resnet_repro.use.weights import load_model

        return load_model
    raise AttributeError(f"module 'resnet_repro' has no attribute {name!r}")
