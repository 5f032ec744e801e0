"""The paper's three shortcut options (Sec. 3.3), as small named modules.

A: identity; where dimensions increase, subsample spatially and pad the new channels with zeros (no parameters).
B: a 1x1 projection + BN where dimensions change, identity elsewhere (Eqn. 2).
C: a 1x1 projection + BN on every shortcut.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SHORTCUT_OPTIONS = ("A", "B", "C")


def check_shortcut(shortcut: str) -> str:
    """Return the option upper-cased, or raise ValueError naming the valid choices."""
    if not isinstance(shortcut, str) or shortcut.upper() not in SHORTCUT_OPTIONS:
        raise ValueError(f"shortcut must be one of {', '.join(SHORTCUT_OPTIONS)} (Sec. 3.3), got {shortcut!r}")
    return shortcut.upper()


class ZeroPadShortcut(nn.Module):
    """Option A where dimensions increase: keep every `stride`-th pixel, append zero channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, C + extra, H / stride, W / stride); the extra channels are zero, as fb.resnet.torch
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra_channels}, stride={self.stride}"


class Projection(nn.Sequential):
    """Options B and C: a strided 1x1 convolution and BN (torchvision's `downsample` layout: keys 0.* and 1.*)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )


def make_shortcut(option: str, in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """The module applied to x on the shortcut, or None for a pure identity."""
    changes = stride != 1 or in_channels != out_channels
    if option == "C" or (option == "B" and changes):
        return Projection(in_channels, out_channels, stride)
    if option == "A" and changes:
        return ZeroPadShortcut(in_channels, out_channels, stride)
    return None
