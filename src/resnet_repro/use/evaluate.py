"""`python -m resnet_repro.evaluate WEIGHTS [--data ROOT]`: the top-1 and top-5 error of trained weights on a split.

WEIGHTS is a run directory (or a checkpoint in one), a file from `python -m resnet_repro.export`, a torchvision
ResNet state_dict (loaded into ImageNetResNet with torchvision's stride placement), or with `--from NAME` a
published checkpoint of another project, built and fed as its authors' code does (use/conventions.py). The views are
the paper's: CIFAR nets see the single 32x32 test image (Sec. 4.2); ImageNet nets the 224 center crop of the
shorter-side-256 image or the standard 10-crop testing, softmax averaged over the crops (Sec. 3.4). A run's data
settings (the normalization and the split it was trained with) are taken from its recipe, so a run evaluated on its
own data gives the test error it recorded; without --data, a run is evaluated on the data root it recorded. The
result is printed and added to eval.json beside the weights (or --out).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from torchvision import datasets

from resnet_repro.config import declared_dataset, declared_datasets
from resnet_repro.data import CifarDataModule
from resnet_repro.data.dataloader import dataloader
from resnet_repro.data.imagenet import eval_transform
from resnet_repro.data.tensor_loader import TensorLoader
from resnet_repro.errors import DataError, UserError, one_line, printable_streams
from resnet_repro.files import read_json, write_json
from resnet_repro.models.registry import architecture
from resnet_repro.runs import records
from resnet_repro.runs.layout import EVAL, RESULTS, refuse_links
from resnet_repro.runs.provenance import git_commit, machine
from resnet_repro.training.console import quiet_console
from resnet_repro.training.module import ResNetModule
from resnet_repro.use import conventions
from resnet_repro.use.weights import WeightsError, load_record, network_name, read_weights, run_dir_of

VIEWS = {"cifar": ("single",), "imagenet": ("center-crop", "10-crop")}  # Sec. 4.2; Sec. 3.4


def family(record: dict[str, Any]) -> str:
    """The family of images of the record's network (the table of architectures); WeightsError if none of ours."""
    arch = architecture(str(record.get("arch")))
    if arch is None:
        raise WeightsError(f"{record['source']}: {ascii(record.get('arch'))} is not a network of this project")
    return arch.family


def check_classes(record: dict[str, Any], data: str, classes: int) -> None:
    fc = record["state_dict"].get("fc.weight")  # what the weights give, whatever the record's kwargs say
    outputs = fc.shape[0] if isinstance(fc, torch.Tensor) and fc.dim() == 2 else record["kwargs"].get("num_classes")
    if outputs != classes:
        raise WeightsError(f"{network_name(record)} has {outputs} outputs, but {data} has {classes} classes")


def declaration(record: dict[str, Any], dataset: str) -> dict[str, Any]:
    """What `dataset` declares (conf/data/<dataset>.yaml: family, num_classes, official reader); for a dataset
    declared elsewhere, a 32x32 image-folder dataset of the class count the weights' recipe recorded."""
    declared = declared_dataset(dataset)
    recipe = record.get("recipe", {})
    return {
        "family": declared.get("family", "cifar"),
        "num_classes": declared.get("num_classes", recipe.get("data.num_classes")),
        "official": declared.get("official"),
    }


def cifar_loader(
    record: dict[str, Any],
    dataset: str,
    declared: dict[str, Any],
    root: Path,
    split: str,
    batch_size: int,
    cache_dir: str | None = None,
) -> tuple[TensorLoader, int]:
    """The split of a 32x32 dataset (`declared`: its declaration), normalized as the run was (its recipe's data.*
    settings; the defaults otherwise), and its number of images."""
    recipe = record.get("recipe", {})
    settings = {
        key: recipe[f"data.{key}"]
        for key in ("val_size", "split_seed", "train_size", "test_size", "normalize")
        if f"data.{key}" in recipe
    }
    if split == "val" and not settings.get("val_size"):
        raise UserError(
            "--split val: these weights were trained on all 50,000 training images, so there is no held-out val "
            "split to evaluate on; use --split test"
        )
    reader = {key: declared[key] for key in ("num_classes", "official")}
    data = CifarDataModule(
        root=root, name=dataset, eval_batch_size=batch_size, cache_dir=cache_dir, **reader, **settings
    )
    data.prepare_data()
    data.setup("test")
    loader = data.val_dataloader()[0] if split == "val" else data.test_dataloader()
    return loader, len(loader.labels)


def imagenet_loader(
    record: dict[str, Any], root: Path, split: str, views: str, batch_size: int
) -> tuple[DataLoader, int]:
    """ImageNet val as an image folder (val/<class>/*), center crop or 10-crop of the shorter-side-256 image, and
    its number of images."""
    if split != "val":
        raise UserError("ImageNet's test labels are not public: evaluate on --split val (Sec. 3.4, Tables 2-4)")
    folder = root / "val"
    if not folder.is_dir():
        raise DataError(f"{folder} not found: --data must hold val/<class>/ image folders")
    # torchvision's weights were trained with per-channel mean and std; this project's ImageNet runs record theirs
    normalize = record.get("recipe", {}).get("data.normalize", "channel_mean_std")
    images = datasets.ImageFolder(str(folder), transform=eval_transform(normalize, ten_crop=views == "10-crop"))
    check_classes(record, f"imagenet {split}", len(images.classes))
    workers = min(8, os.cpu_count() or 1)
    loader = dataloader(images, max(1, batch_size // 10) if views == "10-crop" else batch_size, False, workers, 0)
    return loader, len(images)


def recorded_data(weights: str | Path) -> dict[str, Any]:
    """What a run recorded of its data (results.json: data, and the config's data), empty for weights of no run."""
    run_dir = run_dir_of(Path(weights))
    results = (records.read(run_dir / RESULTS, records.results) or {}) if run_dir is not None else {}
    config = results.get("config")
    config_data = config.get("data") if isinstance(config, dict) else None
    return {"data": results.get("data"), "config": config_data if isinstance(config_data, dict) else {}}


def recorded_cache(weights: str | Path) -> str | None:
    """The decoded-image cache folder a run was trained with (data.cache_dir), so evaluating it decodes nothing
    again; None for the default (beside the data) or weights of no run."""
    cache = recorded_data(weights)["config"].get("cache_dir")
    if not isinstance(cache, str) or not cache:
        return None
    folder = Path(cache).expanduser()  # a path from a record: used only where a cache already is, never created
    return cache if folder.is_dir() and not folder.is_symlink() and any(folder.glob("*.pt")) else None


def recorded_root(weights: str | Path) -> Path:
    """Where a run's data was (results.json: data.root, or the config's data.root), for `evaluate RUN` without
    --data; a UserError when the weights are no run or the run did not record it."""
    recorded = recorded_data(weights)
    data, config_data = recorded["data"], recorded["config"]
    found = [d.get("root") for d in (data, config_data) if isinstance(d, dict) and isinstance(d.get("root"), str)]
    root = found[0] if found else None
    if root is None:
        raise UserError(f"--data is needed: {weights} does not record where its data was (give the dataset's root)")
    return Path(root)


def evaluate(
    weights: str | Path,
    data_root: str | Path | None,
    dataset: str | None = None,
    split: str | None = None,
    views: str | None = None,
    which: str = "best",
    batch_size: int = 500,
    accelerator: str = "cpu",
    convention: str | None = None,
) -> dict[str, Any]:
    """Evaluate `weights` on a split (default: CIFAR test, ImageNet val); the eval record (errors in percent, what
    was evaluated and how). `convention`: read a published checkpoint as its authors' code does."""
    record = read_weights(weights, which, convention)
    kind = family(record)
    split = split or ("test" if kind == "cifar" else "val")
    dataset = dataset or record.get("recipe", {}).get("data.name") or ("cifar10" if kind == "cifar" else "imagenet")
    declared = declaration(record, dataset)
    if declared["family"] != kind:
        raise WeightsError(f"{network_name(record)} is a {kind.upper()} network; it cannot be evaluated on {dataset}")
    views = views or VIEWS[kind][-1]
    if views not in VIEWS[kind]:
        raise UserError(f"--views {views}: {kind.upper()} nets are tested with {' or '.join(VIEWS[kind])}")
    # the run's recorded data location (data.root, data.cache_dir) only when the user names none: `evaluate RUN`
    root = Path(data_root).expanduser() if data_root is not None else recorded_root(weights)
    cache = recorded_cache(weights) if data_root is None else None
    if kind == "cifar":
        check_classes(record, f"{dataset} {split}", declared["num_classes"])
        loader, images = cifar_loader(record, dataset, declared, root, split, batch_size, cache)
    else:
        loader, images = imagenet_loader(record, root, split, views, batch_size)
    module = ResNetModule(load_record(record), eval_names=("test",), top5=True)
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision="32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    started = time.perf_counter()
    metrics = trainer.test(module, dataloaders=loader, verbose=False)[0]
    if not math.isfinite(metrics["test/loss"]):  # NaN outputs would count as 90% error, a number that means nothing
        raise WeightsError(f"{network_name(record)} from {weights} gives outputs that are not finite (NaN weights?)")
    return {
        "weights": str(Path(weights).resolve()),
        "checkpoint": record["source"],
        "format": record["format"],
        "convention": record.get("convention"),
        "normalize": record.get("recipe", {}).get("data.normalize", "pixel_mean") if kind == "cifar" else None,
        "network": network_name(record),
        "recipe_id": record.get("recipe_id"),
        "seed": record.get("seed"),
        "dataset": dataset,
        "split": split,
        "views": views,
        "images": images,
        "top1_err": metrics["test/err"],
        "top5_err": metrics["test/err5"],
        "loss": metrics["test/loss"],
        "precision": "32-true",
        "data_root": str(root),
        "seconds": round(time.perf_counter() - started, 1),
        "git_commit": git_commit(),
        "machine": machine(),
    }


def default_out(weights: Path) -> Path:
    """eval.json beside the weights: in the run directory, or in the folder of a weights file."""
    run_dir = run_dir_of(weights)
    if run_dir is not None and (weights.is_dir() or weights.suffix == ".ckpt"):
        return run_dir / EVAL
    return weights.parent / EVAL


def record_eval(out: Path, result: dict[str, Any], root: Path | None = None) -> None:
    """Add `result` to the evaluations in `out`, keyed by weights, dataset, split and views (others are kept);
    written below `root` (the run directory, for the default eval.json) without following a link."""
    key = f"{Path(result['checkpoint']).name} | {result['dataset']} {result['split']} | {result['views']}"
    evaluations = read_json(out) if out.exists() else {}
    if not isinstance(evaluations, dict) or not all(
        isinstance(v, dict) and "top1_err" in v for v in evaluations.values()
    ):  # a file that is no evaluation record is the user's: never replaced
        raise UserError(f"{out} exists and holds no evaluation records: choose another --out")
    write_json(out, {**evaluations, key: result}, root=root)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m resnet_repro.evaluate", description=" ".join(__doc__.split("\n\n")[0].split())
    )
    parser.add_argument("weights", type=Path, help="a run directory, an exported file or a torchvision state_dict")
    parser.add_argument(
        "--data", type=Path, default=None, help="the dataset's root (as data.root in training; default: the run's)"
    )
    parser.add_argument("--dataset", choices=declared_datasets(), default=None, help="default: the run's")
    parser.add_argument("--split", choices=("test", "val"), default=None, help="default: test (CIFAR), val (ImageNet)")
    parser.add_argument("--views", choices=("single", "center-crop", "10-crop"), default=None)
    parser.add_argument("--which", choices=("best", "last"), default="best", help="run directories: which checkpoint")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--accelerator", default="cpu", help="cpu, gpu, auto")
    parser.add_argument("--out", type=Path, default=None, help=f"default: {EVAL} beside the weights")
    conventions.add_argument(parser)
    args = parser.parse_args(argv)
    quiet_console()
    printable_streams()
    try:
        if args.out is None and run_dir_of(args.weights) is not None:
            refuse_links(run_dir_of(args.weights))  # eval.json is written beside a run only if it holds no links
        result = evaluate(
            args.weights,
            args.data,
            args.dataset,
            args.split,
            args.views,
            args.which,
            args.batch_size,
            args.accelerator,
            args.convention,
        )
        out = args.out or default_out(args.weights)
        record_eval(out, result, root=None if args.out else out.parent)
    except UserError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)
    top5 = f", top-5 error {result['top5_err']:.2f}%" if result["top5_err"] is not None else ""
    print(
        f"{result['network']} on {result['dataset']} {result['split']} ({result['images']} images, {result['views']}): "
        f"top-1 error {result['top1_err']:.2f}%{top5}; recorded in {out}"
    )


if __name__ == "__main__":
    main()
