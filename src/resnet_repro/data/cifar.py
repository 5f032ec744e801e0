"""The LightningDataModule of 32x32 datasets (CIFAR-10/100, or any in image folders) with the paper's protocol
(Sec. 4.2); what a dataset is (name, title, classes, official reader, flips) is declared in conf/data/.

By default the network trains on all 50k training images and is tested on the 10k test set, as the paper's
reported networks were; `val_size=5000` holds out the fixed-seed 45k/5k train/val split on which the paper tuned
its schedule. Per-pixel mean subtraction is computed on the training split; augmentation is pad-4/crop and, where
the dataset takes it, a horizontal flip.
`loader="fast"` (default) keeps each split as one tensor on the device; `loader="torchvision"` is the classic
Dataset/DataLoader path with the same semantics, kept for comparison.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from resnet_repro.data.cifar_sources import CifarArrays, load_cifar
from resnet_repro.data.dataloader import (
    check_batch_sizes,
    check_declaration,
    dataloader,
    per_device_batch,
    resume_notice,
)
from resnet_repro.data.tensor_loader import TensorLoader
from resnet_repro.data.transforms import NORMALIZATIONS, Normalize
from resnet_repro.errors import ConfigError
from resnet_repro.files import file_name

LOADERS = ("fast", "torchvision")


class CifarDataModule(pl.LightningDataModule):
    """A 32x32 dataset as train / val / test loaders. What a dataset is comes from its config (conf/data/); the
    defaults here are CIFAR-10's, for callers outside Hydra."""

    FAMILY = "cifar"  # the images of the CIFAR nets (Sec. 4.2); data.family must say so

    def __init__(
        self,
        root: str | Path = "data",
        name: str = "cifar10",
        title: str = "CIFAR-10",
        family: str = FAMILY,
        num_classes: int = 10,
        official: str | None = "torchvision.datasets.CIFAR10",
        download: bool = False,
        cache_dir: str | None = None,
        batch_size: int = 128,  # Sec. 4.2; the global batch, split evenly over DDP processes
        eval_batch_size: int = 1000,
        val_size: int = 0,  # Sec. 4.2: the reported nets train on all 50k; 5000 gives the 45k/5k tuning split
        split_seed: int = 0,
        train_size: int | None = None,
        test_size: int | None = None,
        normalize: str = "pixel_mean",
        augment: bool = True,
        flip: bool = True,
        loader: str = "fast",
        num_workers: int = 2,
        seed: int = 0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        check_declaration(self.FAMILY, family, num_classes, augment=augment, flip=flip, download=download)
        if not file_name(name):  # it names cache files: never a path
            raise ConfigError("data.name", f"must be a name of letters, digits, '_', '-' and '.', got {name!r}")
        if download and official is None:
            raise ConfigError("data.download", f"{name} has no official release to download (data.official is null)")
        if normalize not in NORMALIZATIONS:
            raise ConfigError("data.normalize", f"must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")
        if loader not in LOADERS:
            raise ConfigError("data.loader", f"must be one of {', '.join(LOADERS)}, got {loader!r}")
        check_batch_sizes(batch_size, eval_batch_size)
        if not isinstance(val_size, int) or val_size < 0:
            raise ConfigError("data.val_size", f"must be an integer >= 0 (0 trains on the whole set), got {val_size!r}")
        self.root, self.name, self.title, self.download, self.cache_dir = root, name, title, download, cache_dir
        self.num_classes, self.official = num_classes, official
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.split_seed, self.train_size, self.test_size = val_size, split_seed, train_size, test_size
        self.normalize_mode, self.augment, self.flip, self.loader = normalize, augment, flip, loader
        self.num_workers, self.seed, self.channels_last = num_workers, seed, channels_last
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.arrays: CifarArrays | None = None
        self.provenance: dict[str, object] = {}  # what the data was, filled by prepare_data

    def prepare_data(self) -> None:
        if self.arrays is None and not self.splits:  # download, extract and cache once
            self.arrays = self._load(self.download)
            indices = split_indices(
                len(self.arrays.train_labels),
                len(self.arrays.test_labels),
                self.val_size,
                self.split_seed,
                self.train_size,
                self.test_size,
            )
            self.provenance = {
                **self.arrays.identity(),
                "kind": self.arrays.kind,
                "path": self.arrays.source,
                **{f"{name}_images": len(idx) for name, idx in indices.items()},
            }

    def _load(self, download: bool) -> CifarArrays:
        return load_cifar(self.name, self.root, download, self.cache_dir, self.num_classes, self.official)

    def identity(self) -> dict[str, object]:
        """What enters the run's recipe: the data's source kind and fingerprint (after prepare_data)."""
        return {key: self.provenance[key] for key in ("source", "fingerprint")}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        arrays = self.arrays or self._load(download=False)
        self.splits = split(arrays, self.val_size, self.split_seed, self.train_size, self.test_size)
        self.arrays = None  # the splits hold what is needed
        self.normalizer = Normalize(self.splits["train"][0], self.normalize_mode)
        if self.loader == "fast":
            device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
            self.normalizer.to(device)
            self.splits = {k: (x.to(device), y.to(device)) for k, (x, y) in self.splits.items()}

    def train_dataloader(self) -> TensorLoader | DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> list[TensorLoader | DataLoader]:
        """The val split (model selection) and the test set (the paper's curves), evaluated together."""
        return [self._loader(k, train=False) for k in self.eval_names()]

    def test_dataloader(self) -> TensorLoader | DataLoader:
        return self._loader("test", train=False)

    def eval_names(self) -> list[str]:
        """Metric prefixes of the loaders returned by `val_dataloader`, in order."""
        return ["val", "test"] if self.val_size > 0 else ["test"]

    def _loader(self, split_name: str, train: bool) -> TensorLoader | DataLoader:
        images, labels = self.splits[split_name]
        trainer = self.trainer
        world_size = trainer.world_size if trainer is not None else 1
        batch_size = per_device_batch(self.batch_size, world_size) if train else self.eval_batch_size
        augment = train and self.augment
        if self.loader == "fast":
            return TensorLoader(
                images,
                labels,
                batch_size,
                self.normalizer,
                train,
                augment,
                self.flip,
                self.seed,
                self.channels_last,
                step_fn=(lambda: trainer.global_step) if train and trainer is not None else None,
                rank=trainer.global_rank if trainer is not None else 0,
                world_size=world_size,
            )
        dataset = TorchvisionCifar(images, labels, torchvision_transform(self.normalizer, augment, self.flip))
        loader = dataloader(dataset, batch_size, train, self.num_workers, self.seed)
        if train and self.trainer is not None:
            resume_notice(self.trainer.global_step, len(loader))
        return loader


def split(
    arrays: CifarArrays, val_size: int, split_seed: int, train_size: int | None = None, test_size: int | None = None
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The train, val and test splits as (images, labels), by `split_indices`."""
    idx = split_indices(len(arrays.train_labels), len(arrays.test_labels), val_size, split_seed, train_size, test_size)
    return {
        "train": (arrays.train_images[idx["train"]], arrays.train_labels[idx["train"]]),
        "val": (arrays.train_images[idx["val"]], arrays.train_labels[idx["val"]]),
        "test": (arrays.test_images[idx["test"]], arrays.test_labels[idx["test"]]),
    }


def split_indices(
    n: int, n_test: int, val_size: int, split_seed: int, train_size: int | None = None, test_size: int | None = None
) -> dict[str, torch.Tensor]:
    """A fixed-seed train/val split of the `n` training images, and the test images used.

    `train_size` keeps a subset of the rest and `test_size` a fixed random subset of the test set (quick runs).
    """
    if val_size >= n:
        raise ConfigError("data.val_size", f"must be smaller than the training set ({n}), got {val_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    val_idx, train_idx = order[:val_size], order[val_size:]
    if train_size is not None:
        if not 0 < train_size <= len(train_idx):
            raise ConfigError("data.train_size", f"must be in 1..{len(train_idx)} or null, got {train_size}")
        train_idx = train_idx[:train_size]
    test_idx = torch.arange(n_test)
    if test_size is not None:
        if not 0 < test_size <= len(test_idx):
            raise ConfigError("data.test_size", f"must be in 1..{len(test_idx)} or null, got {test_size}")
        # a fixed random subset, sorted: folder layouts list the test set class by class
        test_idx = torch.randperm(len(test_idx), generator=torch.Generator().manual_seed(split_seed))[:test_size]
        test_idx = test_idx.sort().values
    return {"train": train_idx, "val": val_idx, "test": test_idx}


class TorchvisionCifar(Dataset):
    """Per-image access for the classic DataLoader path (uint8 CHW tensors -> transformed float images)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: transforms.Compose) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[i]), int(self.labels[i])


def torchvision_transform(normalize: Normalize, augment: bool, flip: bool = True) -> transforms.Compose:
    """The same semantics as the fast path, one image at a time: normalize, then pad-4 crop (and flip)."""
    steps = [normalize]
    if augment:
        steps += [transforms.RandomCrop(32, padding=4)] + ([transforms.RandomHorizontalFlip()] if flip else [])
    return transforms.Compose(steps)
