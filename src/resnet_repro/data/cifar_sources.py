"""Where the images of a 32x32 dataset (CIFAR-10/100, or any other in image folders) come from, decoded once into
uint8 tensors and cached.

`root` may hold, detected in this order:
1. the official release of a dataset torchvision reads (`official`, its class: `torchvision.datasets.CIFAR10`),
   extracted (`cifar-10-batches-py/` or `cifar-100-python/`, torchvision's layout);
2. its archive (`cifar-10-python.tar.gz` / `cifar-100-python.tar.gz`), checked and extracted next to it;
3. an image-folder tree `train/<class>/*` and `test/<class>/*` (PNG or JPEG, 32x32), for any dataset;
4. nothing: with `download=True` the official archive is downloaded into `root`.
The official format (download, checksums, extraction, unpickling) is torchvision's `datasets.CIFAR10/100`; this
module adds one message per failure, the image-folder reader, and the tensor cache. A dataset's name, class
count and official reader are declared in its config (conf/data/).
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import CIFAR10, CIFAR100
from torchvision.datasets.utils import check_integrity

from resnet_repro.errors import ConfigError, DataError
from resnet_repro.files import WriteFailed, load_checkpoint, save_tensors

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
CACHE_VERSION = 2  # 2: the arrays' fingerprint is cached with them


@dataclass
class CifarArrays:
    """A whole CIFAR dataset as tensors: images (N, 3, 32, 32) uint8, labels (N,) int64."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    source: str  # the path they were read from
    fingerprint: str = ""  # of the decoded arrays: equal pixels and labels, equal fingerprint
    kind: str = ""  # official-batches, official-archive or image-folder

    def identity(self) -> dict[str, str]:
        """What the data was, for a run's recipe: official or image-folder pixels, and which ones."""
        return {
            "source": "official" if self.kind.startswith("official") else self.kind,
            "fingerprint": self.fingerprint,
        }


def array_fingerprint(*tensors: torch.Tensor) -> str:
    """16 hex digits of a SHA-256 over the tensors' bytes (about 0.2 s for CIFAR's 180 MB)."""
    h = hashlib.sha256()
    for tensor in tensors:
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# the official releases torchvision reads, by the name a dataset config gives in `official` (never imported by name)
OFFICIAL_READERS: dict[str, type[CIFAR10]] = {
    "torchvision.datasets.CIFAR10": CIFAR10,
    "torchvision.datasets.CIFAR100": CIFAR100,
}


def official_reader(target: str | None) -> type[CIFAR10] | None:
    """The torchvision class named by a dataset's `official` key (torchvision.datasets.CIFAR10), or None."""
    if target is None:
        return None
    if target not in OFFICIAL_READERS:
        known = ", ".join(OFFICIAL_READERS)
        raise ConfigError("data.official", f"{target!r} is not an official reader ({known}); null: image folders only")
    return OFFICIAL_READERS[target]


def load_cifar(
    name: str,
    root: str | Path,
    download: bool = False,
    cache_dir: str | Path | None = None,
    num_classes: int = 10,
    official: str | None = "torchvision.datasets.CIFAR10",
) -> CifarArrays:
    """Find dataset `name` under `root` (see the module docstring), decode it once, and cache the tensors.
    `official`: the torchvision class that reads its official release, None for image folders only."""
    root = Path(root).expanduser()
    reader = official_reader(official)
    batches = root / reader.base_folder if reader else None
    archive = root / reader.filename if reader else None
    if batches and batches.is_dir():
        kind, files = "official-batches", _official_files(reader, batches)
    elif archive and archive.is_file():
        _check_archive(reader, archive)
        _torchvision_fetch(reader, root)  # extracts the verified archive; no download
        kind, files = "official-archive", _official_files(reader, batches)
    elif (root / "train").is_dir() and (root / "test").is_dir():  # the files the reader decodes, links followed
        kind = "image-folder"
        files = [f for split in ("train", "test") for f in _images(_class_folders(root / split, num_classes))]
    elif download and reader:
        _torchvision_fetch(reader, root)
        kind, files = "official-archive", _official_files(reader, batches)
    else:
        raise DataError(_missing_message(name, root, reader))

    cache = Path(cache_dir).expanduser() if cache_dir else root / ".resnet_repro_cache"
    layout = "official" if kind.startswith("official") else "folder"
    cache_file = cache / f"{name}-{layout}-{_fingerprint(files)}.pt"
    arrays = _cached(cache_file, kind) or _decode_and_cache(reader, root, layout, kind, num_classes, cache_file)
    if len(arrays.classes) != num_classes:  # an official release (or its cache) of another class count
        raise ConfigError("data.num_classes", f"{arrays.source} holds {len(arrays.classes)} classes, not {num_classes}")
    return arrays


def _cached(cache_file: Path, kind: str) -> CifarArrays | None:
    """The decoded arrays cached in `cache_file`, None when there are none. A damaged or changed cache is never
    trusted: the fingerprint of its tensors is computed again (about 0.2 s for CIFAR) and must be the recorded one,
    so a run never records the clean data's fingerprint for changed pixels or labels."""
    if not cache_file.is_file():
        return None
    try:
        arrays = CifarArrays(**{**load_checkpoint(cache_file), "kind": kind})
        tensors = (arrays.train_images, arrays.train_labels, arrays.test_images, arrays.test_labels)
        if array_fingerprint(*tensors) != arrays.fingerprint:
            raise ValueError("its tensors do not match the fingerprint recorded with them: they were changed")
        return arrays
    except Exception as err:
        log.warning("ignoring the cache %s (%s); decoding the images again", cache_file, str(err).splitlines()[0])
        return None


def _decode_and_cache(
    reader: type[CIFAR10] | None, root: Path, layout: str, kind: str, num_classes: int, cache_file: Path
) -> CifarArrays:
    arrays = _read_official(reader, root) if layout == "official" else _read_folder(root, num_classes)
    arrays.kind = kind
    arrays.fingerprint = array_fingerprint(
        arrays.train_images, arrays.train_labels, arrays.test_images, arrays.test_labels
    )
    try:
        save_tensors(cache_file, vars(arrays))
        log.info("cached decoded images in %s", cache_file)
    except (OSError, WriteFailed) as err:  # training goes on from the decoded arrays
        log.warning(
            "training goes on without a cache of the decoded images (%s): the next run decodes them again; "
            "data.cache_dir=DIR keeps them in a writable folder",
            err,
        )
    return arrays


def _missing_message(name: str, root: Path, official: type[CIFAR10] | None) -> str:
    if official is None:
        return (
            f"{name} not found in {root}: it needs {root}/train/<class>/ and {root}/test/<class>/ (image folders, "
            f"PNG or JPEG, 32x32); point data.root at a copy"
        )
    return (
        f"{name} not found in {root}. Looked for: {root / official.base_folder}/ (official python version, "
        f"extracted), {root / official.filename} (its archive), or {root}/train/<class>/ and {root}/test/<class>/ "
        f"(image folders, PNG or JPEG). Get it from {official.url} and put the archive in {root}, "
        f"set data.download=true to download it there, or point data.root at an existing copy."
    )


def _official_files(official: type[CIFAR10], batches: Path) -> list[Path]:
    """The official batch files, each checked against torchvision's md5."""
    files = []
    for filename, md5 in [*official.train_list, *official.test_list, (official.meta["filename"], official.meta["md5"])]:
        path = batches / filename
        if not path.is_file():
            raise DataError(
                f"{path} is missing: the extracted CIFAR folder {batches} is incomplete; extract the "
                f"official archive {official.filename} again or delete the folder"
            )
        if not check_integrity(str(path), md5):
            raise DataError(
                f"{path} is corrupt (md5 mismatch with the official release); replace it from the "
                f"official archive {official.url}. Nothing was deleted."
            )
        files.append(path)
    return files


def _check_archive(official: type[CIFAR10], archive: Path) -> None:
    """An archive that is there but damaged gets its own message (torchvision would try to download it again)."""
    if not check_integrity(str(archive), official.tgz_md5):
        raise DataError(
            f"{archive} is corrupt or truncated (md5 mismatch with the official release); download it "
            f"again from {official.url}. Nothing was deleted."
        )


def _torchvision_fetch(official: type[CIFAR10], root: Path) -> None:
    """torchvision's download=True: download the archive unless a verified one is there, then extract it."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        official(str(root), train=True, download=True)
    except Exception as err:
        raise DataError(
            f"could not download or extract {official.url} into {root} ({type(err).__name__}: {err}). Without "
            f"network access, copy {official.filename} into {root} or point data.root at a copy."
        ) from err


def _fingerprint(files: list[Path]) -> str:
    """A short hash of the source files' names, sizes and modification times: a changed source rebuilds the cache."""
    h = hashlib.sha1(f"v{CACHE_VERSION}".encode())
    for path in files:
        stat = path.stat()
        h.update(os.fsencode(path) + f"|{stat.st_size}|{stat.st_mtime_ns}\n".encode())  # names as bytes
    return h.hexdigest()[:16]


def _read_official(official: type[CIFAR10], root: Path) -> CifarArrays:
    """The official batches under `root`, checked and unpickled by torchvision ((N, 32, 32, 3) uint8, labels)."""
    splits = [official(str(root), train=train, download=False) for train in (True, False)]
    tensors = [
        tensor
        for split in splits
        for tensor in (
            torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous(),  # (N, 32, 32, 3) -> (N, 3, 32, 32)
            torch.tensor(split.targets, dtype=torch.int64),
        )
    ]
    return CifarArrays(*tensors, list(splits[0].classes), str(root / official.base_folder))


def _read_folder(root: Path, num_classes: int) -> CifarArrays:
    train_classes = _class_folders(root / "train", num_classes)
    test_classes = _class_folders(root / "test", num_classes)
    if [p.name for p in train_classes] != [p.name for p in test_classes]:
        raise DataError(f"the class folders of {root / 'train'} and {root / 'test'} differ; both need the same names")
    train_images, train_labels = _decode_split(train_classes)
    test_images, test_labels = _decode_split(test_classes)
    names = [readable(p.name) for p in train_classes]
    return CifarArrays(train_images, train_labels, test_images, test_labels, names, readable(str(root)))


def readable(name: str) -> str:
    """A file name as text that any record can hold: bytes that are not UTF-8 written as escapes (\\xff)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _class_folders(split: Path, num_classes: int) -> list[Path]:
    classes = sorted(p for p in split.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) != num_classes:
        raise DataError(
            f"{split} has {len(classes)} class folders, expected {num_classes} "
            f"(found: {', '.join(p.name for p in classes) or 'none'})"
        )
    for folder in classes:
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
            raise DataError(f"class folder {folder} holds no PNG or JPEG image")
    return classes


def _decode(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
    except Exception as err:
        raise DataError(f"cannot read image {path}: {err}") from err
    if array.shape != (32, 32, 3):
        raise DataError(f"image {path} is {array.shape[1]}x{array.shape[0]}, CIFAR images are 32x32")
    return array


def _images(classes: list[Path]) -> list[Path]:
    """The image files of the class folders, class by class, sorted: what is decoded and what the cache key hashes."""
    return [p for folder in classes for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]


def _decode_split(classes: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    paths, labels = [], []
    for label, folder in enumerate(classes):
        files = _images([folder])
        paths.extend(files)
        labels.extend([label] * len(files))
    with ThreadPoolExecutor(max_workers=4) as pool:
        images = np.stack(list(pool.map(_decode, paths, chunksize=256)))  # (N, 32, 32, 3)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels, dtype=torch.int64)
