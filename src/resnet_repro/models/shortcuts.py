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
# where option A puts its zero channels: "after" the identity's (fb.resnet.torch, this project's default) or half
# on "both" sides (akamaster/pytorch_resnet_cifar10: planes // 4 before and after). Equal up to a channel
# permutation, so equal in training, but trained weights of one placement compute something else in the other.
PAD_PLACEMENTS = ("after", "both")


def check_pad(pad: str) -> str:
    """Return the placement, or raise ValueError naming the valid choices."""
    if pad not in PAD_PLACEMENTS:
        raise ValueError(
            f"pad must be one of {', '.join(PAD_PLACEMENTS)} (where option A's zero channels go), got {pad!r}"
        )
    return pad


def check_shortcut(shortcut: str) -> str:
    """Return the option upper-cased, or raise ValueError naming the valid choices."""
    if not isinstance(shortcut, str) or shortcut.upper() not in SHORTCUT_OPTIONS:
        raise ValueError(f"shortcut must be one of {', '.join(SHORTCUT_OPTIONS)} (Sec. 3.3), got {shortcut!r}")
    return shortcut.upper()


class ZeroPadShortcut(nn.Module):
    """Option A where dimensions increase: keep every `stride`-th pixel, add zero channels after the identity's
    (`pad="after"`) or half before and half after (`pad="both"`)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, pad: str = "after") -> None:
        super().__init__()
        self.extra_channels = out_channels - in_channels
        self.stride, self.pad = stride, check_pad(pad)
        self.before = self.extra_channels // 2 if pad == "both" else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, C + extra, H / stride, W / stride); the extra channels are zero
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.before, self.extra_channels - self.before))

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra_channels}, stride={self.stride}, pad={self.pad!r}"


class Projection(nn.Sequential):
    """Options B and C: a strided 1x1 convolution and BN (torchvision's `downsample` layout: keys 0.* and 1.*)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )


def make_shortcut(
    option: str, in_channels: int, out_channels: int, stride: int, pad: str = "after"
) -> nn.Module | None:
    """The module applied to x on the shortcut, or None for a pure identity (`pad`: option A's placement)."""
    changes = stride != 1 or in_channels != out_channels
    if option == "C" or (option == "B" and changes):
        return Projection(in_channels, out_channels, stride)
    if option == "A" and changes:
        return ZeroPadShortcut(in_channels, out_channels, stride, pad)
    return None
