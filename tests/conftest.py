"""Shared fixtures: small generated datasets in the layouts users have, and the real CIFAR-10 copy when present."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
REAL_CIFAR = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar_folder(root: Path, per_class_train: int, per_class_test: int, seed: int = 0) -> Path:
    """A CIFAR-like image-folder tree: class k is a noisy image of its own colour and stripe, so it is learnable."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class_train), ("test", per_class_test)):
        for k, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            base = np.zeros((32, 32, 3), dtype=np.float64)
            base[..., k % 3] = 60 + 18 * k
            base[(k * 3) % 32 : (k * 3) % 32 + 4, :, :] = 255 - 20 * k
            for i in range(count):
                image = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
                Image.fromarray(image).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 classes, 40 training and 10 test images each (PNG)."""
    return write_cifar_folder(tmp_path_factory.mktemp("tiny_cifar"), 40, 10)


@pytest.fixture(scope="session")
def real_cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real CIFAR-10 images (JPEG, image-folder layout) from ../shared/data, extracted once per session."""
    if not REAL_CIFAR.is_file():
        pytest.skip(f"the real CIFAR-10 copy {REAL_CIFAR} is not on this machine")
    root = tmp_path_factory.mktemp("cifar10_jpeg")
    with tarfile.open(REAL_CIFAR) as tar:
        tar.extractall(root, filter="data")
    return root


@pytest.fixture(scope="session")
def tiny_imagenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ImageFolder tree with 3 classes of a few JPEGs of ImageNet-like sizes."""
    root = tmp_path_factory.mktemp("tiny_imagenet")
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        for k in range(3):
            folder = root / split / f"n0000000{k}"
            folder.mkdir(parents=True)
            for i in range(count):
                h, w = (300, 400) if i % 2 else (360, 270)
                image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
                image[..., k] = 200
                Image.fromarray(image).save(folder / f"{i}.JPEG")
    return root
