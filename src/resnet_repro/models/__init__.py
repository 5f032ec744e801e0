"""Plain and residual networks of the paper: CIFAR (Sec. 4.2) and ImageNet (Table 1)."""

from resnet_repro.models.blocks import BasicBlock, Bottleneck
from resnet_repro.models.cifar import CifarResNet
from resnet_repro.models.imagenet import ImageNetResNet
from resnet_repro.models.shortcuts import Projection, ZeroPadShortcut

__all__ = ["BasicBlock", "Bottleneck", "CifarResNet", "ImageNetResNet", "Projection", "ZeroPadShortcut"]
