"""Building blocks of Fig. 5: the basic block (two 3x3 layers) and the bottleneck (1x1, 3x3, 1x1).

Each block is residual or plain from the same code: with `residual=False` the shortcut is never built nor added.
The layout follows Sec. 3.2 and 3.4: BN right after each convolution, the second ReLU after the addition.
Module names follow torchvision (conv1, bn1, ..., downsample) so that state_dicts interchange.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from resnet_repro.models.shortcuts import make_shortcut


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 layers; y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)) (Fig. 2, Fig. 5 left)."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        residual: bool = True,
        shortcut: str = "A",
        pad: str = "after",
    ) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.residual = residual
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = make_shortcut(shortcut, in_channels, out_channels, stride, pad) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)

    def response_layers(self) -> list[nn.BatchNorm2d]:
        """The BNs whose outputs are Fig. 7's responses of the 3x3 layers."""
        return [self.bn1, self.bn2]

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) (Fig. 5 right).

    `stride_in_1x1=True` puts the stride on the first 1x1 as the paper's Caffe models do; False puts it on the 3x3
    (torchvision's "v1.5").
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        residual: bool = True,
        shortcut: str = "B",
        stride_in_1x1: bool = True,
    ) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.residual = residual
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_channels, channels, stride_1x1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride_3x3)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = make_shortcut(shortcut, in_channels, out_channels, stride) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)

    def response_layers(self) -> list[nn.BatchNorm2d]:
        return [self.bn2]

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3


def init_weights(model: nn.Module, zero_init_residual: bool = False) -> None:
    """He initialization [13] for convolutions, BN weight 1 and bias 0 (Sec. 3.4).

    `zero_init_residual` zeroes the last BN of each residual branch (Goyal et al., arXiv 1706.02677); the paper
    does not use it, so it is off by default.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, BasicBlock | Bottleneck) and m.residual:
                nn.init.zeros_(m.last_bn().weight)


def check_num_classes(num_classes: int) -> int:
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    return num_classes


def named_responses(model: nn.Module) -> list[tuple[str, nn.BatchNorm2d]]:
    """(name, BN) for the stem and every block's 3x3 layers, in forward order."""
    names = {m: name for name, m in model.named_modules()}
    layers = [model.bn1]
    for stage in model.stages():
        for block in stage:
            layers.extend(block.response_layers())
    return [(names[bn], bn) for bn in layers]


def run_stage(stage: nn.Sequential, x: torch.Tensor, checkpointed: bool) -> torch.Tensor:
    """Run one stage; with `checkpointed`, keep only the inputs of about sqrt(blocks) segments of it and recompute
    each segment's activations in backward (Chen et al. 2016, arXiv 1604.06174).

    This trades about one extra forward pass for memory, so very deep nets (ResNet-1202) fit. The recomputation
    runs BN on the batch a second time; its running statistics are restored after it, so they take one momentum
    step per iteration, exactly as without checkpointing.
    """
    if not (checkpointed and stage.training and torch.is_grad_enabled()):
        return stage(x)
    blocks = list(stage)
    segments = max(1, round(math.sqrt(len(blocks))))
    size = len(blocks) // segments
    starts = range(0, size * (segments - 1), size)  # the last segment runs as usual: backward needs it at once
    for start in starts:
        segment = nn.Sequential(*blocks[start : start + size])
        x = checkpoint(
            segment,
            x,
            use_reentrant=False,
            context_fn=lambda segment=segment: (contextlib.nullcontext(), kept_bn_statistics(segment)),
        )
    rest = blocks[starts[-1] + size :] if starts else blocks
    for block in rest:
        x = block(x)
    return x


@contextlib.contextmanager
def kept_bn_statistics(module: nn.Module) -> Iterator[None]:
    """Restores the running statistics (mean, variance, batch count) of every BN in `module` on exit."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [[buffer.clone() for buffer in (m.running_mean, m.running_var, m.num_batches_tracked)] for m in bns]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, values in zip(bns, saved, strict=True):
                for buffer, value in zip((m.running_mean, m.running_var, m.num_batches_tracked), values, strict=True):
                    buffer.copy_(value)
