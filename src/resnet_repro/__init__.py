"""resnet-repro: a faithful, fast reproduction of He et al., "Deep Residual Learning for Image Recognition"."""

__version__ = "0.1.0"

from resnet_repro.use.weights import load_model  # noqa: E402

__all__ = ["load_model"]
