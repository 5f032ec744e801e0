"""ImageNet as ImageFolder trees (`train/<class>/*`, `val/<class>/*`) with the paper's protocol (Sec. 3.4).

Training: shorter side resized to a random value in [256, 480], a random 224x224 crop or its flip, mean
subtraction, and optionally AlexNet's PCA lighting noise. Evaluation: the single 224 center crop of the
shorter-side-256 image (`val/`), and the paper's 10-crop testing (`test/` metrics, the same images).
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms
from torchvision.transforms import v2

from resnet_repro.data.dataloader import (
    check_batch_sizes,
    check_declaration,
    dataloader,
    per_device_batch,
    resume_notice,
)
from resnet_repro.errors import ConfigError, DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # per channel, [0, 1] scale; stands for the (nearly flat) per-pixel mean
IMAGENET_STD = (0.229, 0.224, 0.225)
# AlexNet's PCA lighting noise (Krizhevsky et al. 2012), the eigen-decomposition used by fb.resnet.torch
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))


class Lighting(torch.nn.Module):
    """Adds alpha-weighted principal components of RGB to an image (3, H, W); alpha ~ N(0, std)."""

    def __init__(self, std: float = 0.1) -> None:
        super().__init__()
        self.std = std
        self.eigval = torch.tensor(PCA_EIGVAL)
        self.eigvec = torch.tensor(PCA_EIGVEC)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        alpha = torch.randn(3) * self.std
        rgb = self.eigvec @ (alpha * self.eigval)  # (3,)
        return image + rgb.view(3, 1, 1)


class TenCrop(torch.nn.Module):
    """The four corners and the center, and their flips: (3, H, W) -> (10, 3, size, size)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.stack(transforms.functional.ten_crop(image, self.size))


def normalization(mode: str) -> v2.Normalize:
    if mode == "pixel_mean":
        return v2.Normalize(IMAGENET_MEAN, (1.0, 1.0, 1.0))
    if mode == "channel_mean_std":
        return v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    raise ConfigError("data.normalize", f"must be pixel_mean or channel_mean_std, got {mode!r}")


def train_transform(normalize: str, lighting_std: float, flip: bool = True) -> v2.Compose:
    steps = [
        v2.PILToTensor(),
        v2.RandomResize(256, 481),  # shorter side uniform in [256, 480] (Sec. 3.4)
        v2.RandomCrop(224),
        *([v2.RandomHorizontalFlip()] if flip else []),
        v2.ToDtype(torch.float32, scale=True),
    ]
    if lighting_std > 0:
        steps.append(Lighting(lighting_std))
    return v2.Compose([*steps, normalization(normalize)])


def eval_transform(normalize: str, ten_crop: bool) -> v2.Compose:
    crop = TenCrop(224) if ten_crop else v2.CenterCrop(224)
    return v2.Compose(
        [v2.PILToTensor(), v2.Resize(256), v2.ToDtype(torch.float32, scale=True), normalization(normalize), crop]
    )


class ImageNetDataModule(pl.LightningDataModule):
    """ImageNet train/val ImageFolders; val = center crop, test = 10-crop on the same val images."""

    FAMILY = "imagenet"  # the images of the ImageNet nets (Sec. 3.4); data.family must say so

    def __init__(
        self,
        root: str | Path = "data/imagenet",
        name: str = "imagenet",
        title: str = "ImageNet",
        family: str = FAMILY,
        batch_size: int = 256,  # Sec. 3.4; the global batch, split evenly over DDP processes
        eval_batch_size: int = 100,
        num_workers: int = 8,
        normalize: str = "pixel_mean",
        lighting_std: float = 0.1,
        flip: bool = True,
        num_classes: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_declaration(self.FAMILY, family, num_classes, flip=flip)
        check_batch_sizes(batch_size, eval_batch_size)
        normalization(normalize)
        self.name, self.title, self.flip = name, title, flip
        self.root, self.batch_size, self.eval_batch_size = Path(root).expanduser(), batch_size, eval_batch_size
        self.num_workers, self.normalize, self.lighting_std = num_workers, normalize, lighting_std
        self.num_classes, self.seed = num_classes, seed
        self.folders: dict[str, datasets.ImageFolder] = {}
        self.provenance: dict[str, object] = {}  # what the data was, filled by prepare_data

    def prepare_data(self) -> None:
        """List the train and val folders once; record what they hold (a fingerprint of the file list)."""
        if self.folders:
            return
        self.folders = {split: self._folder(split) for split in ("train", "val")}
        h = hashlib.sha256()
        for split, folder in self.folders.items():
            for path, label in folder.samples:
                h.update(f"{split}/{Path(path).relative_to(folder.root)}|{label}\n".encode())
        self.provenance = {
            "source": "image-folder",
            "fingerprint": h.hexdigest()[:16],
            "kind": "image-folder",
            "path": str(self.root),
            "train_images": len(self.folders["train"]),
            "val_images": len(self.folders["val"]),
            "test_images": len(self.folders["val"]),  # 10-crop testing of the val images (Sec. 3.4)
        }

    def identity(self) -> dict[str, object]:
        """What enters the run's recipe: the data's source kind and fingerprint (after prepare_data)."""
        return {key: self.provenance[key] for key in ("source", "fingerprint")}

    def _folder(self, split: str) -> datasets.ImageFolder:
        path = self.root / split
        if not path.is_dir():
            raise DataError(
                f"ImageNet folder {path} not found: data.root must hold train/<class>/ and val/<class>/ "
                f"image folders (the ILSVRC-2012 images, val sorted into class folders)"
            )
        try:
            folder = datasets.ImageFolder(str(path))
        except (FileNotFoundError, RuntimeError) as err:
            raise DataError(f"{path}: {err}") from err
        if len(folder.classes) != self.num_classes:
            raise DataError(
                f"{path} has {len(folder.classes)} class folders, expected {self.num_classes} "
                f"(set data.num_classes for a subset)"
            )
        return folder

    def setup(self, stage: str | None = None) -> None:
        self.prepare_data()
        augment = train_transform(self.normalize, self.lighting_std, self.flip)
        self.train_set = with_transform(self.folders["train"], augment)
        self.val_set = with_transform(self.folders["val"], eval_transform(self.normalize, ten_crop=False))
        self.test_set = with_transform(self.folders["val"], eval_transform(self.normalize, ten_crop=True))

    def _loader(self, dataset: datasets.ImageFolder, batch_size: int, train: bool) -> DataLoader:
        loader = dataloader(dataset, batch_size, train, self.num_workers, self.seed)
        if train and self.trainer is not None:
            resume_notice(self.trainer.global_step, len(loader))
        return loader

    def train_dataloader(self) -> DataLoader:
        world_size = self.trainer.world_size if self.trainer is not None else 1
        return self._loader(self.train_set, per_device_batch(self.batch_size, world_size), train=True)

    def val_dataloader(self) -> list[DataLoader]:
        return [self._loader(self.val_set, self.eval_batch_size, train=False)]

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, max(1, self.eval_batch_size // 10), train=False)

    def eval_names(self) -> list[str]:
        return ["val"]


def with_transform(folder: datasets.ImageFolder, transform: v2.Compose) -> datasets.ImageFolder:
    """The same listed images with another transform (no second scan of the folder)."""
    view = copy.copy(folder)
    view.transform = transform
    return view
