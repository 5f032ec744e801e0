"""Building a run's objects from its config: hydra.utils.instantiate with a bad value reported as a ConfigError
naming its group, and the run's callbacks (its own, then conf/callbacks/ in a loop)."""

from __future__ import annotations

import sys
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.errors import InstantiationException
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ProgressBar

from resnet_repro.errors import ConfigError, UserError
from resnet_repro.training.analysis import GradientNorms
from resnet_repro.training.callbacks import Interrupts, RunCheckpoint, RunSummary, Segments, StillHeld

# what Python says when a call does not fit a signature: an option the constructor does not take, or lacks
SIGNATURE_ERRORS = ("unexpected keyword argument", "required positional argument", "required keyword-only argument")


def instantiate(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, with a constructor's refusal of a value (ValueError, UserError), a target that
    does not exist and options that do not fit its signature reported as a ConfigError naming the group; any other
    error inside a constructor is a bug, and keeps its traceback."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as err:
        cause, target = err.__cause__, node.get("_target_")
        if isinstance(cause, UserError):
            raise cause from None
        if isinstance(cause, ValueError):
            raise ConfigError(key, str(cause)) from err
        if str(err).startswith("Error locating target"):
            raise ConfigError(key, f"cannot import {target}: {' '.join(str(cause or err).split())}") from err
        if isinstance(cause, TypeError) and any(text in str(cause) for text in SIGNATURE_ERRORS):
            raise ConfigError(key, f"{target}: {cause}") from err
        raise


def shows_progress_bar(setting: Any) -> bool:
    """progress_bar: true, false, or auto (a bar when the output is a terminal: in a log file a bar is garbage)."""
    if setting == "auto":
        return sys.stdout.isatty()
    if not isinstance(setting, bool):
        raise ConfigError("progress_bar", f"must be true, false or auto, got {setting!r}")
    return setting


def make_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """The run's own callbacks (what results.json and gradient_norms.json record, and the lock check), then each of
    conf/callbacks/ in order (progress bars only when progress_bar is true). Exactly one of them must be the run's
    RunCheckpoint: its last.ckpt is what a rerun resumes from."""
    own = [RunSummary(cfg.log_every), Segments(), GradientNorms(cfg.log_every), StillHeld(cfg.log_every), Interrupts()]
    chosen = []
    for name, node in cfg.callbacks.items():
        if node is None:
            continue
        callback = instantiate(node, f"callbacks.{name}")
        if not isinstance(callback, pl.Callback):
            raise ConfigError(f"callbacks.{name}", f"{type(callback).__name__} is not a Lightning Callback")
        if isinstance(callback, ProgressBar) and any(isinstance(c, ProgressBar) for c in chosen):
            raise ConfigError(f"callbacks.{name}", "a second progress bar: Lightning shows one")
        if shows_progress_bar(cfg.progress_bar) or not isinstance(callback, ProgressBar):
            chosen.append(callback)
    if sum(isinstance(c, RunCheckpoint) for c in chosen) != 1:
        raise ConfigError(
            "callbacks.checkpoint",
            "a run needs exactly one resnet_repro.training.callbacks.RunCheckpoint (its last.ckpt is what a rerun "
            "resumes from): set its options, do not remove or repeat it",
        )
    return [*own, *chosen]
