"""Checks of a composed config before anything is built or written; each message names the key to change."""

from __future__ import annotations

import importlib

from omegaconf import DictConfig, ListConfig, OmegaConf

from resnet_repro.errors import ConfigError
from resnet_repro.models.registry import ARCHITECTURES, architecture
from resnet_repro.runs.records import KEY_TYPES, typed

TITLES = {a.family: a.images for a in ARCHITECTURES.values()}  # each family of images in words


def check_types(cfg: DictConfig) -> None:
    """Refuse a key holding a value of the wrong kind (text for a number: optim.lr=abc, seed=abc, milestones=[a]) by
    its name, before anything runs; the kinds are the reading gate's (records.KEY_TYPES), one table for both."""
    for key in (*KEY_TYPES, "optim.milestones"):
        if OmegaConf.select(cfg, key, default="<absent>") == "<absent>":
            continue
        value = OmegaConf.select(cfg, key)
        value = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
        problem = typed(key, value)
        if problem:
            raise ConfigError(key, problem)


def validate(cfg: DictConfig, explicit_model: bool = False) -> None:
    """Refuse settings that make no sense. `explicit_model`: the user chose `model=` on the command line."""
    check_types(cfg)
    max_steps = cfg.trainer.max_steps
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ConfigError("trainer.max_steps", f"must be a positive number of iterations, got {max_steps!r}")
    milestones = list(cfg.optim.milestones)
    if milestones and max(milestones) > max_steps:
        raise ConfigError("optim.milestones", f"{milestones} go beyond trainer.max_steps={max_steps}")
    interval = cfg.trainer.val_check_interval
    if not isinstance(interval, int) or interval < 1:
        raise ConfigError("trainer.val_check_interval", f"must be a positive number of iterations, got {interval!r}")
    if max_steps % interval:
        raise ConfigError(
            "trainer.val_check_interval",
            f"{interval} must divide trainer.max_steps={max_steps}, so that the final weights are validated",
        )
    if not isinstance(cfg.log_every, int) or cfg.log_every < 1:
        raise ConfigError("log_every", f"must be a positive number of iterations, got {cfg.log_every!r}")
    module, _, name = str(cfg.data.get("_target_")).rpartition(".")
    try:
        served = getattr(getattr(importlib.import_module(module), name, None), "FAMILY", None)  # its data module's
    except Exception:  # a target that cannot be imported: building the data says so, naming data (build.py)
        served = None
    arch = architecture(cfg.model._target_)
    net, images = arch.family if arch else None, cfg.data.get("family") or served  # undeclared: the module's
    if served is not None and images != served:
        raise ConfigError("data.family", f"{cfg.data._target_} serves {served!r} datasets, got {images!r}")
    if net and images in TITLES and net != images and not explicit_model:
        raise ConfigError(
            "model",
            f"{cfg.model._target_.rsplit('.', 1)[-1]}-{cfg.model.depth} is a network for {TITLES[net]} images but "
            f"data={cfg.data.name} holds {TITLES[images]} images, which is no recipe of the paper. Choose the "
            f"matching data (for ImageNet nets: data=imagenet optim=sgd_imagenet, or experiment=imagenet_table3) or "
            f"a net of the data's family, or name model= on the command line to train this pairing anyway",
        )


def check_train_size(train_images: int | None, batch_size: int) -> None:
    """Refuse a training set smaller than one global batch: batches are full (drop_last), so it would train on
    nothing. `train_images` None: the data module does not know its size before training."""
    if train_images is not None and train_images < batch_size:
        raise ConfigError(
            "data.batch_size",
            f"the training set has {train_images} images, fewer than one batch of {batch_size}: a run would train "
            "on nothing. Use more training images (data.train_size, data.val_size) or a smaller data.batch_size",
        )
