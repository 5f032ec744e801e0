"""Data: sources and their errors, the cache, the paper's split and augmentation, fast vs torchvision loaders."""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import time
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from torchvision import datasets

from resnet_repro import config
from resnet_repro.config import compose_config
from resnet_repro.data import CifarDataModule, ImageNetDataModule
from resnet_repro.data.cifar import torchvision_transform
from resnet_repro.data.cifar_sources import load_cifar
from resnet_repro.data.tensor_loader import TensorLoader
from resnet_repro.data.transforms import crop_flip, sample_crop_flip
from resnet_repro.errors import ConfigError, DataError
from tests.conftest import CLASSES, write_cifar_folder


def datamodule(root: Path, **kwargs) -> CifarDataModule:
    dm = CifarDataModule(root=root, **{"val_size": 50, "eval_batch_size": 64, **kwargs})
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_folder_source_loads_and_caches(tiny_cifar: Path) -> None:
    first = load_cifar("cifar10", tiny_cifar)
    assert first.train_images.shape == (400, 3, 32, 32) and first.train_images.dtype == torch.uint8
    assert first.test_images.shape == (100, 3, 32, 32)
    assert first.classes == CLASSES
    assert torch.equal(torch.bincount(first.train_labels), torch.full((10,), 40))
    cache_files = list((tiny_cifar / ".resnet_repro_cache").glob("cifar10-folder-*.pt"))
    assert len(cache_files) == 1
    second = load_cifar("cifar10", tiny_cifar)
    assert torch.equal(first.train_images, second.train_images)
    assert first.kind == second.kind == "image-folder"  # recorded in results.json and the recipe
    assert len(first.fingerprint) == 16 and second.fingerprint == first.fingerprint  # cached with the arrays
    assert first.identity() == {"source": "image-folder", "fingerprint": first.fingerprint}


def test_cache_is_rebuilt_when_the_source_changes(tmp_path: Path) -> None:
    root = write_cifar_folder(tmp_path, 3, 1)
    before = load_cifar("cifar10", root)
    image = root / "train" / "bird" / "0000.png"
    from PIL import Image

    Image.fromarray(np.full((32, 32, 3), 7, dtype=np.uint8)).save(image)
    os.utime(image, (time.time() + 5, time.time() + 5))
    after = load_cifar("cifar10", root)
    index = CLASSES.index("bird") * 3
    assert not torch.equal(before.train_images[index], after.train_images[index])
    assert torch.all(after.train_images[index] == 7)
    assert after.fingerprint != before.fingerprint  # other pixels: another recipe
    assert len(list((root / ".resnet_repro_cache").glob("*.pt"))) == 2


def test_missing_data_message_lists_layouts_and_url(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_cifar("cifar10", tmp_path / "nowhere")
    message = str(err.value)
    for expected in ("cifar-10-batches-py", "cifar-10-python.tar.gz", "train/<class>", "https://", "data.root"):
        assert expected in message


def test_download_failure_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # nothing listens there
    with pytest.raises(DataError, match="could not download .* into"):
        load_cifar("cifar10", tmp_path, download=True)


def test_corrupt_archive_is_refused_and_kept(tmp_path: Path) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_cifar("cifar10", tmp_path)
    assert archive.read_bytes() == b"\x1f\x8b truncated"  # nothing of the user's is deleted


def test_corrupt_batch_file_is_refused_and_kept(tmp_path: Path) -> None:
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    data = {"data": np.zeros((10, 3072), dtype=np.uint8), "labels": [0] * 10}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (batches / name).write_bytes(pickle.dumps(data))
    with pytest.raises(DataError, match="data_batch_1 is corrupt"):
        load_cifar("cifar10", tmp_path)
    assert (batches / "data_batch_1").is_file()


def test_wrong_class_count_empty_class_and_bad_image(tmp_path: Path) -> None:
    root = write_cifar_folder(tmp_path / "a", 2, 1)
    shutil.rmtree(root / "train" / "truck")
    with pytest.raises(DataError, match="has 9 class folders, expected 10"):
        load_cifar("cifar10", root)

    root = write_cifar_folder(tmp_path / "b", 2, 1)
    for f in (root / "test" / "cat").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"test/cat holds no PNG or JPEG"):
        load_cifar("cifar10", root)

    root = write_cifar_folder(tmp_path / "c", 2, 1)
    (root / "train" / "dog" / "0001.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"cannot read image .*dog/0001.png"):
        load_cifar("cifar10", root)


def test_split_is_fixed_disjoint_and_sized(tiny_cifar: Path) -> None:
    a, b = datamodule(tiny_cifar, seed=1), datamodule(tiny_cifar, seed=2)
    assert len(a.splits["train"][1]) == 350 and len(a.splits["val"][1]) == 50 and len(a.splits["test"][1]) == 100
    assert torch.equal(a.splits["val"][0], b.splits["val"][0])  # the split does not depend on the training seed
    train = {bytes(x.numpy()) for x in a.splits["train"][0]}
    assert not any(bytes(x.numpy()) in train for x in a.splits["val"][0])
    full = datamodule(tiny_cifar, val_size=0)
    assert len(full.splits["train"][1]) == 400 and full.eval_names() == ["test"]


def test_pixel_mean_normalization(tiny_cifar: Path) -> None:
    dm = datamodule(tiny_cifar)
    x = dm.normalizer(dm.splits["train"][0])
    assert x.mean(0).abs().max() < 1e-5  # every pixel of every channel is centred
    assert dm.normalizer.mean.shape == (3, 32, 32)
    channel = datamodule(tiny_cifar, normalize="channel_mean_std").normalizer
    y = channel(dm.splits["train"][0])
    assert y.mean((0, 2, 3)).abs().max() < 1e-4 and (y.std((0, 2, 3)) - 1).abs().max() < 1e-3


def test_fast_and_torchvision_paths_give_the_same_eval_batches(tiny_cifar: Path) -> None:
    fast = datamodule(tiny_cifar, loader="fast")
    slow = datamodule(tiny_cifar, loader="torchvision", num_workers=0)
    for a, b in zip(fast.val_dataloader(), slow.val_dataloader(), strict=True):
        batches_a, batches_b = list(a), list(b)
        assert len(batches_a) == len(batches_b)
        for (xa, ya), (xb, yb) in zip(batches_a, batches_b, strict=True):
            torch.testing.assert_close(xa, xb)
            assert torch.equal(ya, yb)


def position_images(n: int) -> torch.Tensor:
    """Normalized images whose channel 0 holds row+1 and channel 1 column+1, so a crop reveals its offset."""
    rows = torch.arange(32, dtype=torch.float32).view(32, 1).expand(32, 32) + 1
    return torch.stack([rows, rows.T, torch.zeros(32, 32)]).expand(n, 3, 32, 32).clone()


def decode(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop offsets (0..8) and flips from cropped position images (see position_images)."""
    dy = out[:, 0, 16, 16] - 13
    flip = out[:, 1, 16, 17] < out[:, 1, 16, 16]
    dx = torch.where(flip, out[:, 1, 16, 16] - 12, out[:, 1, 16, 16] - 13)
    return dy.round().long(), dx.round().long(), flip


@pytest.mark.parametrize("path", ["fast", "torchvision"])
def test_augmentation_statistics(path: str) -> None:
    """Both paths: crop offsets uniform over 0..8 in each axis, flips with rate 0.5, zero padding."""
    n = 18_000
    images = position_images(n)
    if path == "fast":
        out = crop_flip(images, *sample_crop_flip(n, 4, torch.Generator().manual_seed(0)))
    else:
        torch.manual_seed(0)
        transform = torchvision_transform(lambda x: x, augment=True)
        out = torch.stack([transform(img) for img in images])
    dy, dx, flip = decode(out)
    for offsets in (dy, dx):
        counts = torch.bincount(offsets, minlength=9)
        assert len(counts) == 9 and counts.min() > 0
        assert (counts.float() / n - 1 / 9).abs().max() < 0.015
    assert abs(flip.float().mean().item() - 0.5) < 0.015
    corner = out[dy == 0][:, 0, 0, :]  # crops taken from the top edge begin with padded (zero) rows
    assert torch.all(corner == 0)


def test_fast_loader_order_depends_on_seed_and_epoch_only(tiny_cifar: Path) -> None:
    dm = datamodule(tiny_cifar, batch_size=32)
    images, labels = dm.splits["train"]
    step = {"value": 0}

    def loader() -> TensorLoader:
        return TensorLoader(images, labels, 32, dm.normalizer, True, True, seed=3, step_fn=lambda: step["value"])

    epoch0 = list(loader())
    assert len(epoch0) == 350 // 32  # the last partial batch is dropped
    step["value"] = 5  # a run resumed after 5 iterations continues with batch 5 of epoch 0
    resumed = list(loader())
    assert len(resumed) == len(epoch0) - 5
    for (xa, ya), (xb, yb) in zip(epoch0[5:], resumed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    step["value"] = len(epoch0)  # the next epoch has a new order
    assert not torch.equal(list(loader())[0][1], epoch0[0][1])


def test_an_official_reader_is_looked_up_never_imported(
    tiny_cifar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`data.official` named a module that was imported (its code ran) before the class was checked: it is looked
    up in a table of torchvision's readers, so a module on the path named there is never imported."""
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "planted_reader.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(planted))
    with pytest.raises(ConfigError, match="'planted_reader.CIFAR10' is not an official reader"):
        CifarDataModule(root=tiny_cifar, official="planted_reader.CIFAR10").prepare_data()
    assert not (tmp_path / "ran").exists() and "planted_reader" not in sys.modules


def test_bad_datamodule_settings_name_their_key(tiny_cifar: Path) -> None:
    with pytest.raises(ConfigError, match="data.batch_size"):
        CifarDataModule(root=tiny_cifar, batch_size=0)
    with pytest.raises(ConfigError, match="data.loader"):
        CifarDataModule(root=tiny_cifar, loader="dali")
    with pytest.raises(ConfigError, match="data.family: this data module serves 'cifar' datasets"):
        CifarDataModule(root=tiny_cifar, family="imagenet")
    with pytest.raises(ConfigError, match="data.num_classes"):
        CifarDataModule(root=tiny_cifar, num_classes=None)
    for target in ("torchvision.datasets.NoSuch", "torchvision.datasets.MNIST", "..x", "", "os.system"):
        with pytest.raises(ConfigError, match=f"data.official: {target!r} is not an official reader"):
            CifarDataModule(root=tiny_cifar, official=target).prepare_data()
    with pytest.raises(ConfigError, match="data.flip: must be true or false, got 'false'"):
        CifarDataModule(root=tiny_cifar, flip="false")
    with pytest.raises(ConfigError, match="data.download: digits has no official release to download"):
        CifarDataModule(root=tiny_cifar, name="digits", official=None, download=True)
    with pytest.raises(ConfigError, match="data.flip"):
        ImageNetDataModule(root=tiny_cifar, flip="no")
    with pytest.raises(ConfigError, match="data.val_size"):
        datamodule(tiny_cifar, val_size=400)


def test_a_declaration_extends_the_one_it_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What conf/data/<name>.yaml declares, over the declaration its defaults name (as Hydra composes it)."""
    (tmp_path / "data").mkdir()
    shutil.copy(Path(config.CONFIG_DIR) / "data" / "cifar10.yaml", tmp_path / "data" / "cifar10.yaml")
    (tmp_path / "data" / "digits.yaml").write_text("defaults:\n  - cifar10\n  - _self_\nname: digits\nflip: false\n")
    monkeypatch.setattr(config, "CONFIG_DIR", str(tmp_path))
    config.declared_dataset.cache_clear()
    try:
        declared = config.declared_dataset("digits")
        assert declared["name"] == "digits" and declared["flip"] is False and declared["family"] == "cifar"
        assert declared["official"] == "torchvision.datasets.CIFAR10" and config.declared_dataset("none") == {}
        (tmp_path / "data" / "under.yaml").write_text("defaults:\n  - _self_\n  - cifar10\nname: under\n")
        (tmp_path / "data" / "loop.yaml").write_text("defaults:\n  - loop\nname: loop\n")
        assert config.declared_dataset("under")["name"] == "cifar10"  # after _self_: over it, as Hydra merges
        (tmp_path / "data" / "absolute.yaml").write_text(
            "defaults:\n  - /data/digits@_here_\n  - _self_\nname: absolute\n"
        )
        assert config.declared_dataset("absolute")["flip"] is False  # Hydra's own forms of a default, composed by it
        with pytest.raises(ConfigError, match="loop.yaml: does not compose: its defaults name it again"):
            config.declared_dataset("loop")
        (tmp_path / "data" / "broken.yaml").write_text("name: [unclosed\n")
        (tmp_path / "data" / "listed.yaml").write_text("- name\n- title\n")
        (tmp_path / "data" / "choice(cifar10).yaml").write_text("name: sweep\n")  # Hydra's grammar: a sweep
        with pytest.raises(ConfigError, match="broken.yaml: does not compose"):
            config.declared_dataset("broken")
        with pytest.raises(ConfigError, match="listed.yaml: declares no mapping"):
            config.declared_dataset("listed")
        assert "choice(cifar10)" not in config.declared_datasets() and config.declared_dataset("choice(cifar10)") == {}
        (tmp_path / "data" / "10.yaml").write_text("name: ten\n")  # a name Hydra would read as a number
        assert config.declared_dataset("10") == {"name": "ten"}
    finally:
        config.declared_dataset.cache_clear()


def test_a_declaration_composes_inside_a_running_hydra_app() -> None:
    """A sweep's callback runs inside Hydra: composing a declaration there leaves the app's own Hydra as it was."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import JobRuntime

    config.declared_dataset.cache_clear()
    with initialize_config_dir(config_dir=config.CONFIG_DIR, version_base=config.VERSION_BASE, job_name="sweep"):
        app, store = GlobalHydra.instance(), GlobalHydra.instance().hydra
        assert config.declared_dataset("cifar100")["num_classes"] == 100
        assert GlobalHydra.instance() is app and app.hydra is store and JobRuntime.instance().get("name") == "sweep"
        assert compose(config_name="train").data.name == "cifar10"
    assert not GlobalHydra.instance().is_initialized()
    config.declared_dataset.cache_clear()  # and with a GlobalHydra that exists, uninitialized (as after a clear)
    assert config.declared_dataset("cifar10")["num_classes"] == 10 and not GlobalHydra.instance().is_initialized()


def test_imagenet_datamodule_crops_and_ten_crop(tiny_imagenet: Path) -> None:
    dm = ImageNetDataModule(root=tiny_imagenet, batch_size=4, eval_batch_size=20, num_workers=0, num_classes=3)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 224, 224) and y.shape == (4,)
    x, _ = next(iter(dm.val_dataloader()[0]))
    assert x.shape == (6, 3, 224, 224)
    x, _ = next(iter(dm.test_dataloader()))
    assert x.shape == (2, 10, 3, 224, 224)
    torch.testing.assert_close(x[:, 5], x[:, 1].flip(-1))  # the mirror's top-left crop = the top-right one, flipped
    assert not torch.equal(x[:, 0], x[:, 4])
    with pytest.raises(DataError, match="has 3 class folders, expected 1000"):
        ImageNetDataModule(root=tiny_imagenet, num_workers=0).setup("fit")
    with pytest.raises(DataError, match="train/<class>"):
        ImageNetDataModule(root=tiny_imagenet / "missing", num_workers=0).setup("fit")


@pytest.mark.slow
def test_real_cifar10_copy(real_cifar: Path) -> None:
    """The real CIFAR-10 (JPEG copy): 50,000/10,000 images, 10 classes of 5,000/1,000, the published mean."""
    arrays = load_cifar("cifar10", real_cifar)
    assert arrays.train_images.shape == (50_000, 3, 32, 32) and arrays.test_images.shape == (10_000, 3, 32, 32)
    assert arrays.classes == CLASSES
    assert torch.equal(torch.bincount(arrays.train_labels), torch.full((10,), 5_000))
    assert torch.equal(torch.bincount(arrays.test_labels), torch.full((10,), 1_000))
    mean = arrays.train_images.double().mean((0, 2, 3))
    torch.testing.assert_close(mean, torch.tensor([125.3, 122.9, 113.9], dtype=torch.float64), atol=0.3, rtol=0)
    assert datasets.ImageFolder(str(real_cifar / "test")).classes == CLASSES


def test_official_python_batches_are_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The official layout (pickled dicts of (N, 3072) uint8 rows, CHW order), read by torchvision's CIFAR10 into
    our (N, 3, 32, 32) tensors; through load_cifar, as official-batches, with its cache."""
    from torchvision.datasets import CIFAR10

    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    rng = np.random.default_rng(0)
    rows = {}
    for name, _ in [*CIFAR10.train_list, *CIFAR10.test_list]:
        rows[name] = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        batch = {"data": rows[name], "labels": [1, 2, 3, 4]}
        (batches / name).write_bytes(pickle.dumps(batch))
    (batches / "batches.meta").write_bytes(pickle.dumps({"label_names": CLASSES}))
    # these small batches are not the release's: let the md5 checks (ours and torchvision's) accept them
    for module in ("resnet_repro.data.cifar_sources", "torchvision.datasets.cifar"):
        monkeypatch.setattr(f"{module}.check_integrity", lambda path, md5=None: True)
    arrays = load_cifar("cifar10", tmp_path)
    assert arrays.kind == "official-batches" and arrays.identity()["source"] == "official"
    assert arrays.train_images.shape == (20, 3, 32, 32) and arrays.test_images.shape == (4, 3, 32, 32)
    assert arrays.classes == CLASSES and arrays.train_labels.tolist() == [1, 2, 3, 4] * 5
    first = rows["data_batch_1"][0]
    assert torch.equal(arrays.train_images[0, 0].flatten(), torch.from_numpy(first[:1024]))  # red plane first
    assert torch.equal(arrays.train_images[0, 2].flatten(), torch.from_numpy(first[2048:]))
    for _ in range(2):  # decoded, then from its cache: a declared class count that is not the release's is refused
        with pytest.raises(ConfigError, match="data.num_classes: .* holds 10 classes, not 100"):
            load_cifar("cifar10", tmp_path, num_classes=100)


def test_cifar100_folder(tmp_path: Path) -> None:
    from PIL import Image

    for split in ("train", "test"):
        for k in range(100):
            folder = tmp_path / split / f"class{k:03d}"
            folder.mkdir(parents=True)
            Image.fromarray(np.full((32, 32, 3), k, dtype=np.uint8)).save(folder / "0.png")
    cfg = compose_config(["data=cifar100", f"data.root={tmp_path}", "data.val_size=10", "data.eval_batch_size=50"])
    dm = hydra.utils.instantiate(cfg.data)  # conf/data/cifar100.yaml declares its 100 classes and reader
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_classes == 100 and dm.title == "CIFAR-100" and len(dm.splits["train"][1]) == 90
    assert torch.equal(torch.bincount(dm.splits["test"][1]), torch.ones(100, dtype=torch.int64))
    with pytest.raises(DataError, match="expected 10"):
        load_cifar("cifar10", tmp_path)


def test_lighting_noise_shifts_each_image_by_one_rgb_offset() -> None:
    from resnet_repro.data.imagenet import Lighting

    torch.manual_seed(0)
    image = torch.rand(3, 8, 8)
    shifted = Lighting(0.1)(image)
    offset = (shifted - image).flatten(1)
    torch.testing.assert_close(offset, offset[:, :1].expand_as(offset))  # constant per channel
    assert offset.abs().max() > 0
    torch.testing.assert_close(Lighting(0.0)(image), image)
