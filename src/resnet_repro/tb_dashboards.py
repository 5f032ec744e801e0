"""What the project writes to TensorBoard besides each run's scalars: a run's HParams (the recipe keys that tell
runs apart, and its final errors), and a sweep's board (the report's figures as images, and Fig. 6 as custom
scalars: one chart per family with the training and test error of every run)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.tensorboard import SummaryWriter
from torchvision.transforms.functional import pil_to_tensor

# HParams columns: the recipe keys that tell the paper's runs apart (everything else is one value per sweep)
HPARAM_KEYS = (
    "data.name",
    "data.val_size",
    "model.depth",
    "model.residual",
    "model.shortcut",
    "trainer.precision",
    "data.batch_size",
    "optim.lr",
    "optim.weight_decay",
    "optim.milestones",
    "trainer.max_steps",
    "optim.warmup_lr",
)
BOARD = "tb"  # the sweep board's folder inside the report folder


def run_hparams(recipe: dict[str, Any], recipe_id: str, seed: int) -> dict[str, Any]:
    """The HParams of a run: HPARAM_KEYS from its recipe (lists as text, a missing warm-up as 0), its family, its
    recipe_id (a group of seeds) and its seed."""
    values: dict[str, Any] = {"family": "imagenet" if "ImageNet" in str(recipe.get("model._target_")) else "cifar"}
    for key in HPARAM_KEYS:
        value = recipe.get(key)
        values[key] = str(value) if isinstance(value, list) else (0.0 if value is None else value)
    return {**values, "recipe_id": recipe_id, "seed": seed}


def run_metrics(metrics: dict[str, float | None]) -> dict[str, float]:
    """The final errors, as HParams metrics."""
    keys = ("test_err", "val_err", "train_err", "test_err5")
    return {f"hparams/{k}": metrics[k] if metrics.get(k) is not None else math.nan for k in keys}


def fig6_tag(dataset: str, residual: bool, label: str, seed: int | None, split: str) -> str:
    return f"fig6-{dataset}/{'residual' if residual else 'plain'}/{label}/seed={seed}/{split}"


def write_board(
    out: Path, figures: list[Path], curves: dict[str, list[tuple[int, float]]], datasets: list[str]
) -> Path:
    """Write the sweep board into `out`/tb: `figures` (PNG files) as images, `curves` ({fig6_tag: points}) as
    scalars, and a custom-scalars layout with one chart per dataset and family. Returns the board's folder."""
    board = out / BOARD
    earlier = list(board.glob("events.out.tfevents.*"))  # replaced once the new board is written
    with SummaryWriter(str(board)) as writer:
        for figure in figures:
            with Image.open(figure) as image:
                writer.add_image(f"report/{figure.stem}", pil_to_tensor(image.convert("RGB")), 0)
        for tag, points in curves.items():
            for step, value in points:
                writer.add_scalar(tag, value, step)
        writer.add_custom_scalars(  # the custom-scalars plugin reads each chart's tags as regular expressions
            {
                f"Fig. 6 ({dataset}): training and test error (%)": {
                    family: ["Multiline", [rf"^fig6-{dataset}/{family}/"]] for family in ("plain", "residual")
                }
                for dataset in datasets
            }
        )
    for old in earlier:
        old.unlink()
    return board
