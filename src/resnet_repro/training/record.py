"""What a run records in its results.json, assembled in one place: how the number was made (recipe, data,
precision, batch, commit, machine, seed) when the run starts, and its status, metrics, speed and segments when it
ends. Written by the global rank 0 alone, while it still holds the run (lock.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from resnet_repro.data.dataloader import per_device_batch
from resnet_repro.errors import UserError
from resnet_repro.files import read_json, write_json
from resnet_repro.models.registry import architecture
from resnet_repro.runs import records
from resnet_repro.runs.layout import RESULTS
from resnet_repro.runs.lock import RunLock, check_held
from resnet_repro.runs.provenance import git_commit, machine
from resnet_repro.training.callbacks import RunSummary, Segments, find
from resnet_repro.training.module import ResNetModule

log = logging.getLogger(__name__)


def start(
    cfg: DictConfig, trainer: pl.Trainer, module: ResNetModule, datamodule: Any, identity: dict[str, Any]
) -> dict[str, Any]:
    """The record of a run about to train: status "running", and everything that says how its numbers are made."""
    return {
        "status": "running",
        "step": 0,
        "metrics": {},
        **identity,
        "data": {**datamodule.provenance, "root": str(Path(cfg.data.root).expanduser().resolve())},
        "precision": str(trainer.precision),
        "batch": {
            "global": cfg.data.batch_size,
            "per_device": per_device_batch(cfg.data.batch_size, trainer.world_size),  # refuses a non-dividing one
            "processes": trainer.world_size,
        },
        "warmup_end_step": None,
        "network": network(cfg),  # what the report reads for the net's family (it never imports the models)
        "params": sum(p.numel() for p in module.model.parameters()),
        "wall_time_s": None,
        "images_per_s": None,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "git_commit": git_commit(),
        "machine": machine(),
        "segments": [],
    }


def network(cfg: DictConfig) -> dict[str, str]:
    """{"arch": class name, "family": the family of images it is for}, from the table of architectures."""
    arch = architecture(cfg.model._target_)
    return {"arch": arch.name, "family": arch.family} if arch else {"arch": str(cfg.model._target_), "family": ""}


def end(
    results: dict[str, Any], trainer: pl.Trainer, status: str, metrics: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """`results` with the run's end: its status, step, wall time and segments (from the run's callbacks); for a
    completed run its metrics, throughput and images seen; `extra` (an error, the warm-up's end) as given."""
    summary = find(trainer, RunSummary)
    results.update(
        {
            "status": status,
            "step": trainer.global_step,
            "wall_time_s": summary.wall_time_s,
            "segments": find(trainer, Segments).segments,  # one per process that trained it: commit, machine
            "compile_s": summary.compile_s if trainer.lightning_module.hparams.get("compile") else None,
        }
        | extra  # a diverged run's step is the first bad one
    )
    if metrics is not None:
        results.update(
            metrics=metrics,
            images_per_s=summary.images_per_s,  # of this process (under DDP, x processes for the whole)
            images_seen_per_process=summary.images,
        )
    return results


def val_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """The last validation's numbers ("val_err", ...): read after fit, before a test pass replaces them."""
    return {k.replace("/", "_"): float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}


def final_metrics(
    trainer: pl.Trainer, module: ResNetModule, val: dict[str, float], test: dict[str, float]
) -> dict[str, Any]:
    """The completed run's numbers: its last validation (`val`, from val_metrics), the `test` pass, the training
    error over its final epoch (module.final_train) and the best val error with its step."""
    summary = find(trainer, RunSummary)
    metrics = dict(val)
    metrics.update({k.replace("/", "_"): v for k, v in test.items()})
    metrics.update(module.final_train())
    metrics.update(best_val_err=summary.best_val_err, best_val_step=summary.best_val_step)
    return metrics


def ended(results: dict[str, Any]) -> str:
    """How a run ended, in one line: its status, steps, time and final errors (what results.json records)."""
    metrics = results.get("metrics") or {}
    words = [f"{results.get('status', 'unknown')} at step {results.get('step', '?')}"]
    if isinstance(results.get("wall_time_s"), int | float):
        words[0] += f" in {results['wall_time_s'] / 60:.1f} min"
    errors = [
        f"{name} {metrics[key]:.2f}%"
        for key, name in (("test_err", "test error"), ("train_err", "training error (final epoch)"))
        if isinstance(metrics.get(key), int | float)
    ]
    return ": ".join([words[0], ", ".join(errors)]) if errors else words[0]


def write(trainer: pl.Trainer, run_dir: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Write results.json (under DDP, from the global rank 0 alone, while it still holds the run); return it."""
    if trainer.is_global_zero:
        check_held(run_dir)
        write_json(run_dir / RESULTS, results, root=run_dir)
    return results


def write_failure(run_dir: Path, failed: dict[str, Any]) -> None:
    """Record a failed run in its results.json, holding the run meanwhile (never over the record of a run that was
    completed and trained to its length, never while another process holds it)."""
    try:
        with RunLock(run_dir):
            previous = read_json(run_dir / RESULTS)
            previous = previous if isinstance(previous, dict) else {}
            completed = previous.get("status") == "completed"
            if not completed or records.not_trained(previous, previous.get("recipe")):
                write_json(run_dir / RESULTS, failed, root=run_dir)
    except UserError as err:  # held by another process, or unwritable: the sweep's summary still counts it
        log.warning("the failure of %s is not recorded there: %s", run_dir, err)
