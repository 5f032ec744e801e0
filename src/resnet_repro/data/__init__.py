"""Data: CIFAR-10/100 (fast on-device tensors or torchvision loaders) and ImageNet folders."""

from resnet_repro.data.cifar import CifarDataModule
from resnet_repro.data.imagenet import ImageNetDataModule

__all__ = ["CifarDataModule", "ImageNetDataModule"]
