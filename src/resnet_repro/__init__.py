"""resnet-repro: a faithful, fast reproduction of He et al., "Deep Residual Learning for Image Recognition"."""

__version__ = "0.1.0"
