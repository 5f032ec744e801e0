"""The ImageNet networks of Table 1: 18/34 with basic blocks, 50/101/152 with bottlenecks; plain or residual.

Parameter counts (option B; `stride_in_1x1` does not change them) equal torchvision's:
18: 11,689,512; 34: 21,797,672; 50: 25,557,032; 101: 44,549,160; 152: 60,192,808. Plain-34 equals ResNet-34-A.
Multiply-accumulates at 224x224 with the paper's stride placement are within 5% of Table 1
(1.8 / 3.6 / 3.8 / 7.6 / 11.3 x 10^9), counted by tests with torch.utils.flop_counter.
"""

from __future__ import annotations

import torch
from torch import nn

from resnet_repro.models.blocks import (
    BasicBlock,
    Bottleneck,
    check_num_classes,
    init_weights,
    named_responses,
    run_stage,
)
from resnet_repro.models.shortcuts import check_shortcut

# Table 1: block type and blocks per stage (conv2_x .. conv5_x).
IMAGENET_LAYOUTS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
IMAGENET_WIDTHS = (64, 128, 256, 512)


class ImageNetResNet(nn.Module):
    """ResNet-18/34/50/101/152 of Table 1; `residual=False` gives the plain net of the same depth."""

    def __init__(
        self,
        depth: int = 50,
        residual: bool = True,
        shortcut: str = "B",
        num_classes: int = 1000,
        stride_in_1x1: bool = True,
        zero_init_residual: bool = False,
        checkpoint_stages: bool = False,
    ) -> None:
        super().__init__()
        if depth not in IMAGENET_LAYOUTS:
            raise ValueError(f"ImageNet depth must be one of {sorted(IMAGENET_LAYOUTS)} (Table 1), got {depth!r}")
        shortcut = check_shortcut(shortcut)
        check_num_classes(num_classes)
        block, counts = IMAGENET_LAYOUTS[depth]
        self.depth, self.residual, self.shortcut = depth, residual, shortcut
        self.checkpoint_stages = checkpoint_stages  # activation checkpointing per stage (see blocks.run_stage)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = 64
        stages = []
        for i, (width, count) in enumerate(zip(IMAGENET_WIDTHS, counts, strict=True)):
            blocks = []
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1  # conv3_1, conv4_1, conv5_1 downsample (Table 1)
                extra = {"stride_in_1x1": stride_in_1x1} if block is Bottleneck else {}
                blocks.append(block(in_channels, width, stride, residual, shortcut, **extra))
                in_channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        init_weights(self, zero_init_residual)
        if block is Bottleneck:  # where the stride sits travels with the weights: shapes cannot tell the two apart
            self.register_buffer("stride_in_1x1", torch.tensor(stride_in_1x1))
            self._register_load_state_dict_pre_hook(self._check_stride_placement)

    def _check_stride_placement(self, state: dict[str, torch.Tensor], prefix: str, *args: object) -> None:
        """A state_dict that does not say where its strides sit (torchvision's) was trained with them on the 3x3
        conv: it loads into stride_in_1x1=False and is refused by the paper's placement, which would compute
        something else with the same shapes."""
        key = f"{prefix}stride_in_1x1"
        if key not in state:
            if bool(self.stride_in_1x1):
                raise ValueError(
                    "these weights do not record their stride placement (torchvision's do not: their strides sit on "
                    f"the 3x3 conv): build ImageNetResNet({self.depth}, stride_in_1x1=False) for them; a run or "
                    "export of this project loads with resnet_repro.load_model, which knows its placement"
                )
            state[key] = torch.tensor(False)
        elif bool(state[key]) != bool(self.stride_in_1x1):
            raise ValueError(
                f"these weights were trained with stride_in_1x1={bool(state[key])}; this network has "
                f"stride_in_1x1={bool(self.stride_in_1x1)}: build it with the weights' placement"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 3, 224, 224) -> (B, 64, 56, 56)
        x = run_stage(self.layer1, x, self.checkpoint_stages)
        x = run_stage(self.layer2, x, self.checkpoint_stages)  # -> (B, 128 or 512, 28, 28)
        x = run_stage(self.layer3, x, self.checkpoint_stages)  # -> (B, 256 or 1024, 14, 14)
        return run_stage(self.layer4, x, self.checkpoint_stages)  # -> (B, 512 or 2048, 7, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.avgpool(self.forward_features(x)).flatten(1))

    def stages(self) -> list[nn.Sequential]:
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def response_layers(self) -> list[tuple[str, nn.BatchNorm2d]]:
        """Fig. 7's tensors for ImageNet nets: the BN output of every 3x3 layer (the 7x7 stem's BN leads)."""
        return named_responses(self)
