"""What both datamodules share: checks of a dataset's declaration and the batch sizes, and the classic torch
DataLoader construction.

The classic loader resumes at epoch granularity: its training order is a function of (seed, epoch) (EpochShuffle),
so a run resumed at an epoch boundary sees each later epoch's images in the order an uninterrupted run would (its
random augmentation draws, made in worker processes, are not restored). Resumed inside an epoch, Lightning starts
that epoch's order over for the iterations left (it warns that the loader is not resumable; `resume_notice` says
what that means here). The fast CIFAR loader resumes exactly, augmentation included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from resnet_repro.errors import ConfigError

log = logging.getLogger(__name__)


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


class EpochShuffle(Sampler[int]):
    """A permutation of the dataset per epoch, a function of (seed, epoch) alone; Lightning calls `set_epoch`."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def dataloader(dataset: Dataset, batch_size: int, train: bool, num_workers: int, seed: int) -> DataLoader:
    """A seeded DataLoader; training shuffles per (seed, epoch) and drops the last partial batch (every step has the
    full batch)."""
    return DataLoader(
        dataset,
        batch_size,
        sampler=EpochShuffle(len(dataset), seed) if train else None,
        drop_last=train,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),  # the workers' seeds
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
    )


def resume_notice(step: int, batches_per_epoch: int) -> None:
    """Say what a resume inside an epoch means for the classic loader (nothing at an epoch boundary)."""
    if step % batches_per_epoch:
        epoch, done = divmod(step, batches_per_epoch)
        log.warning(
            "resuming at iteration %d, %d iterations into epoch %d: the classic (torchvision) loader resumes at epoch "
            "granularity, so the rest of this epoch draws the start of its order again (some images twice, some not "
            "at all); later epochs are as in an uninterrupted run. data.loader=fast (CIFAR) resumes exactly",
            step,
            done,
            epoch,
        )


def check_declaration(expected_family: str, family: str, num_classes: int, **switches: bool) -> None:
    """A dataset's declaration (conf/data/): the family its data module serves, a class count, and its on/off
    `switches` (augment, flip, download) as booleans, each message naming its key."""
    for key, value in switches.items():
        if not isinstance(value, bool):
            raise ConfigError(f"data.{key}", f"must be true or false, got {value!r}")
    if family != expected_family:
        raise ConfigError("data.family", f"this data module serves {expected_family!r} datasets, got {family!r}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ConfigError("data.num_classes", f"must be the number of classes (>= 2), got {num_classes!r}")
