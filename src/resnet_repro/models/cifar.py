"""The CIFAR-10 networks of Sec. 4.2: 6n+2 weighted layers, plain or residual.

    layer        output   plain / residual
    conv1        32x32    3x3, 16
    layer1       32x32    [3x3, 16; 3x3, 16] x n
    layer2       16x16    [3x3, 32; 3x3, 32] x n   (stride-2 first conv)
    layer3        8x8     [3x3, 64; 3x3, 64] x n   (stride-2 first conv)
    avgpool, fc  1x1      global average pool, 10-way fully connected

Parameters (conv weights, BN weight and bias, fc weight and bias; plain nets equal option A), asserted by tests:

    depth   n     option A / plain   option B     option C     Table 6
    20      3          269,722        272,474      283,962      0.27M
    32      5          464,154        466,906      489,594      0.46M
    44      7          658,586        661,338      695,226      0.66M
    56      9          853,018        855,770      900,858      0.85M
    110     18       1,727,962      1,730,714    1,826,202      1.7M
    1202    200     19,421,274     19,424,026   20,538,714     19.4M
"""

from __future__ import annotations

import torch
from torch import nn

from resnet_repro.models.blocks import BasicBlock, check_num_classes, init_weights, named_responses, run_stage
from resnet_repro.models.shortcuts import check_pad, check_shortcut

CIFAR_WIDTHS = (16, 32, 64)  # filters per stage, Sec. 4.2


def blocks_per_stage(depth: int) -> int:
    """n for a depth of 6n+2 (Sec. 4.2); ValueError for any other depth."""
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(f"CIFAR depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, 1202, ...), got {depth!r}")
    return (depth - 2) // 6


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images (Sec. 4.2); `residual=False` gives the plain net of the same depth."""

    def __init__(
        self,
        depth: int = 20,
        residual: bool = True,
        shortcut: str = "A",
        num_classes: int = 10,
        zero_init_residual: bool = False,
        checkpoint_stages: bool = False,
        pad: str = "after",
    ) -> None:
        super().__init__()
        n = blocks_per_stage(depth)
        shortcut, pad = check_shortcut(shortcut), check_pad(pad)
        check_num_classes(num_classes)
        self.depth, self.residual, self.shortcut, self.pad = depth, residual, shortcut, pad
        self.checkpoint_stages = checkpoint_stages  # activation checkpointing per stage (see blocks.run_stage)
        self.conv1 = nn.Conv2d(3, CIFAR_WIDTHS[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(CIFAR_WIDTHS[0])
        self.relu = nn.ReLU(inplace=True)
        in_channels = CIFAR_WIDTHS[0]
        stages = []
        for i, width in enumerate(CIFAR_WIDTHS):
            stride = 1 if i == 0 else 2  # subsampling by stride-2 convolutions, Sec. 4.2
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(in_channels, width, stride if j == 0 else 1, residual, shortcut, pad))
                in_channels = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        init_weights(self, zero_init_residual)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (B, 3, 32, 32) -> (B, 16, 32, 32)
        x = run_stage(self.layer1, x, self.checkpoint_stages)
        x = run_stage(self.layer2, x, self.checkpoint_stages)  # -> (B, 32, 16, 16)
        return run_stage(self.layer3, x, self.checkpoint_stages)  # -> (B, 64, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.forward_features(x)).flatten(1)  # (B, 64, 8, 8) -> (B, 64)
        return self.fc(x)

    def stages(self) -> list[nn.Sequential]:
        return [self.layer1, self.layer2, self.layer3]

    def response_layers(self) -> list[tuple[str, nn.BatchNorm2d]]:
        """Fig. 7's measured tensors in network order: every 3x3 layer's BN output (the stem's included)."""
        return named_responses(self)
