"""A run's HParams in TensorBoard: the recipe keys that tell the paper's runs apart, and its final errors."""

from __future__ import annotations

import math
from typing import Any

from resnet_repro.models.registry import architecture

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


def run_hparams(recipe: dict[str, Any], recipe_id: str, seed: int) -> dict[str, Any]:
    """The HParams of a run: HPARAM_KEYS from its recipe (lists as text, a missing warm-up as 0), its family, its
    recipe_id (a group of seeds) and its seed."""
    arch = architecture(str(recipe.get("model._target_")))
    values: dict[str, Any] = {"family": arch.family if arch else "unknown"}
    for key in HPARAM_KEYS:
        value = recipe.get(key)
        values[key] = str(value) if isinstance(value, list) else (0.0 if value is None else value)
    return {**values, "recipe_id": recipe_id, "seed": seed}


def run_metrics(metrics: dict[str, float | None]) -> dict[str, float]:
    """The final errors, as HParams metrics."""
    keys = ("test_err", "val_err", "train_err", "test_err5")
    return {f"hparams/{k}": metrics[k] if metrics.get(k) is not None else math.nan for k in keys}
