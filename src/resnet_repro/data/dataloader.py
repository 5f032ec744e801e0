"""What both datamodules share: checks of the batch sizes and the classic torch DataLoader construction."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from resnet_repro.errors import ConfigError


def check_batch_sizes(batch_size: int, eval_batch_size: int) -> None:
    for key, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"data.{key}", f"must be an integer >= 1, got {value!r}")


def per_device_batch(batch_size: int, world_size: int) -> int:
    """Each process's share of the global batch (the paper's 128 on CIFAR, 256 on ImageNet) under DDP."""
    if batch_size % world_size:
        raise ConfigError(
            "data.batch_size",
            f"the global batch of {batch_size} does not split evenly over {world_size} processes (devices x nodes); "
            f"choose a batch size divisible by {world_size}",
        )
    return batch_size // world_size


def dataloader(dataset: Dataset, batch_size: int, train: bool, num_workers: int, seed: int) -> DataLoader:
    """A seeded DataLoader; training shuffles and drops the last partial batch (every step has the full batch)."""
    return DataLoader(
        dataset,
        batch_size,
        shuffle=train,
        drop_last=train,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
    )
