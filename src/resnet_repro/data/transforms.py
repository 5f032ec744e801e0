"""The paper's CIFAR input pipeline (Sec. 4.2), batched on the device and per image for torchvision.

Normalization: per-pixel mean subtraction (the paper), per-channel mean/std of the training split (an option),
or the fixed ImageNet mean/std that the common PyTorch reproduction uses (its published weights expect it), on
images scaled to [0, 1]. Augmentation, after normalization as in fb.resnet.torch: 4 pixels of zero padding per
side, a random 32x32 crop, and a horizontal flip with probability 0.5 (for datasets that take flips: data.flip).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

NORMALIZATIONS = ("pixel_mean", "channel_mean_std", "imagenet_mean_std")
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # torchvision's; akamaster's trainer.py


class Normalize:
    """uint8 images (..., 3, H, W) -> float32, minus a mean and over a std (NORMALIZATIONS)."""

    def __init__(self, train_images: torch.Tensor, mode: str = "pixel_mean") -> None:
        if mode not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {mode!r}")
        x = train_images.double() / 255  # (N, 3, H, W)
        if mode == "pixel_mean":  # Sec. 4.2: "the per-pixel mean subtracted"
            self.mean, self.std = x.mean(0).float(), torch.ones(1, 1, 1)
        elif mode == "imagenet_mean_std":  # fixed numbers, whatever the training images
            self.mean, self.std = (torch.tensor(v).view(3, 1, 1) for v in IMAGENET_MEAN_STD)
        else:
            self.mean = x.mean((0, 2, 3)).float().view(3, 1, 1)
            self.std = x.std((0, 2, 3)).float().view(3, 1, 1)
        self.mode = mode

    def to(self, device: torch.device | str) -> Normalize:
        self.mean, self.std = self.mean.to(device), self.std.to(device)
        return self

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() / 255 - self.mean) / self.std


def sample_crop_flip(
    n: int, padding: int, generator: torch.Generator, flip: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop offsets uniform over 0..2*padding in each axis, and flip flags with probability 0.5 (all False when
    not `flip`: the same draws are made, so the crops are those of the flipping run)."""
    dy, dx = torch.randint(0, 2 * padding + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    return dy, dx, flips & flip


def crop_flip(
    x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, padding: int = 4
) -> torch.Tensor:
    """Zero-pad, take each image's crop of the original size at (dy, dx), flip where `flip`: two gathers, no loop."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))  # (B, C, H+2p, W+2p)
    rows = dy[:, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = dx[:, None] + torch.arange(w, device=x.device)  # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # a flipped crop reads its columns right to left
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * padding))  # (B, C, H, W+2p)
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))  # (B, C, H, W)
