"""Hydra entry point: one training run of the paper's recipe, recorded in results.json.

    python -m resnet_repro.train model.depth=56 model.residual=false data.root=/data/cifar10
    python -m resnet_repro.train -m experiment=fig6 seed=0,1,2          # a sweep, resumable
    tensorboard --logdir outputs/

Each run directory holds recipe.json (the run's identity, written before training), tb/ (TensorBoard), checkpoints/
(last, and best-by-val when there is a val split), results.json and layer_responses.json. Rerunning a command
resumes unfinished runs from their last checkpoint and skips completed ones; a directory that holds another recipe
is refused (recipe.py).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pytorch_lightning.utilities.exceptions import SIGTERMException

from resnet_repro import config
from resnet_repro.config import CONFIG_DIR, VERSION_BASE
from resnet_repro.errors import UserError, one_line, printable_streams
from resnet_repro.runs.directory import run_directory
from resnet_repro.runs.layout import CHECKPOINTS, LAST, RESULTS
from resnet_repro.runs.lock import LockLost, RunHeldError
from resnet_repro.runs.recipe import checkpoint_step, fingerprint
from resnet_repro.training import record
from resnet_repro.training.analysis import record_responses, save_analyses
from resnet_repro.training.build import instantiate, make_callbacks, shows_progress_bar
from resnet_repro.training.callbacks import AtomicCheckpointIO
from resnet_repro.training.checks import check_train_size, validate
from resnet_repro.training.console import quiet_console
from resnet_repro.training.hparams import log_hparams, run_hparams, run_metrics
from resnet_repro.training.module import DivergedError, ResNetModule
from resnet_repro.training.sweep import (
    RunInterrupted,
    StopSweep,
    SweepFailed,
    announce,
    close_ledger,
    ledger_now,
    summarize,
)

log = logging.getLogger(__name__)


def command_overrides() -> list[str]:
    """The overrides given on the command line, when running under Hydra's main."""
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # composed by a test or a notebook
        return []


def tensorboard_purge(out_dir: Path, ckpt_path: str | None) -> dict[str, int]:
    """{"purge_step": N} when the run will resume from step N (SummaryWriter's purge_step), else {}."""
    step = checkpoint_step(out_dir, ckpt_path)
    return {"purge_step": step} if step else {}


def train(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Train one run in `out_dir` and return its results.json content (written there by the global rank 0).

    Resumes the run from its last checkpoint, or returns its recorded results when it completed, after checking
    that `out_dir` is new or holds this very recipe and seed (recipe.py).
    """
    overrides = command_overrides()
    validate(cfg, explicit_model=any(o.split("=", 1)[0].lstrip("+~") == "model" for o in overrides))
    callbacks = make_callbacks(cfg)  # a callback that cannot be built is refused before the data is read
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # recorded in results.json
    datamodule = instantiate(cfg.data, "data")
    model = instantiate(cfg.model, "model")
    datamodule.prepare_data()  # find, check and cache the data before anything is written
    check_train_size(datamodule.provenance.get("train_images"), cfg.data.batch_size)
    module = ResNetModule(
        model,
        **OmegaConf.to_container(cfg.optim, resolve=True),
        eval_names=tuple(datamodule.eval_names()),
        top5=cfg.top5,
        log_every=cfg.log_every,
        compile=cfg.compile,
        channels_last=cfg.channels_last,
    )
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        "trainer",
        # a resumed run's TensorBoard hides what an earlier attempt logged past its checkpoint: one point per step
        logger=hydra.utils.instantiate(cfg.logger, save_dir=str(out_dir), **tensorboard_purge(out_dir, cfg.ckpt_path)),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO(out_dir)],
        default_root_dir=str(out_dir),  # where every callback finds the run directory
        enable_progress_bar=shows_progress_bar(cfg.progress_bar),
    )
    recipe = config.recipe(cfg, datamodule.identity())
    identity = {"recipe_id": fingerprint(recipe), "seed": cfg.seed, "recipe": recipe}
    results = record.start(cfg, trainer, module, datamodule, identity)
    # refused (links, another recipe, a checkpoint it did not train) before anything is written; held meanwhile
    with run_directory(out_dir, identity, {"overrides": overrides}, cfg.ckpt_path, trainer.is_global_zero) as run:
        if run.completed:
            return {**run.completed, "skipped": True}
        module.run_identity = identity  # saved in every checkpoint (ResNetModule.on_save_checkpoint)
        return fit_and_test(trainer, module, datamodule, run.resume_from, results)


def fit_and_test(
    trainer: pl.Trainer, module: ResNetModule, datamodule: Any, ckpt_path: Path | None, results: dict[str, Any]
) -> dict[str, Any]:
    """Fit (from `ckpt_path` when resuming), test with Fig. 7's responses gathered, and record `results`."""
    out_dir = Path(trainer.default_root_dir)
    try:  # Lightning loads the checked file as data too
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
    except DivergedError as err:
        return record.write(trainer, out_dir, record.end(results, trainer, "diverged", step=err.step, error=str(err)))
    except SIGTERMException as err:  # Ctrl-C or SIGTERM: callbacks.Interrupts saved checkpoints/last.ckpt
        error = (
            f"interrupted at step {trainer.global_step} of {trainer.max_steps}; {CHECKPOINTS}/{LAST} holds that "
            "step: run the same command again to resume from there"
        )
        record.write(trainer, out_dir, record.end(results, trainer, "interrupted", error=error))
        raise RunInterrupted(error) from err
    if trainer.global_step < trainer.max_steps:  # stopped early (a callback, a signal): not a completed run
        error = (
            f"training stopped at step {trainer.global_step} of {trainer.max_steps} (trainer.max_steps), by a signal, "
            "a callback or trainer.max_epochs; the run is not completed: remove the cause and rerun to resume"
        )
        return record.write(trainer, out_dir, record.end(results, trainer, "stopped", error=error))
    val = record.val_metrics(trainer)
    if not val and "val" in datamodule.eval_names():  # resumed at its last step: fit ran no validation, so run it
        trainer.validate(module, datamodule=datamodule, verbose=False)
        val = record.val_metrics(trainer)
    with record_responses(module.model) as responses:  # Fig. 7, gathered during the final test pass
        test = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    metrics = record.final_metrics(trainer, module, val, test)
    save_analyses(trainer, out_dir, responses)
    recipe, seed = results["recipe"], results["seed"]
    log_hparams(trainer.logger, run_hparams(recipe, results["recipe_id"], seed), run_metrics(metrics))
    trainer.logger.finalize("success")
    results = record.end(results, trainer, "completed", metrics, warmup_end_step=module.schedule().warmup_end_step)
    return record.write(trainer, out_dir, results)


def remove_empty(folder: Path, root: Path) -> None:
    """Remove `folder` and its parents below `root` while they are empty (Hydra made them for a refused run)."""
    root = root.resolve()
    folder = folder.resolve()
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()  # fails on a folder with anything in it
        except OSError:
            return
        folder = folder.parent


def run(cfg: DictConfig) -> float | None:
    """Run one job. Returns the final val error (for sweepers).

    Bad input (a UserError: a config value, missing data, a directory of another recipe) stops a sweep at the
    first job with one message, since every job would hit it; any other failure of one job of a sweep is recorded
    in its results.json and the sweep goes on, to end with a non-zero exit (sweep.py).
    """
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    if multirun and torch.cuda.device_count() > 1 and cfg.trainer.devices == 1:
        # parallel local sweeps (hydra/launcher=local_gpus): job i trains on GPU i mod the GPU count
        cfg.trainer.devices = [HydraConfig.get().job.num % torch.cuda.device_count()]
    job = HydraConfig.get().job.num if multirun else 0
    progress = announce if multirun else lambda *args, **kwargs: None
    progress(job, "started", out_dir)
    try:
        results = train(cfg, out_dir)
    except RunInterrupted as err:
        progress(job, "finished", out_dir, "interrupted", str(err))
        raise  # the sweep stops here too; main() says how it ended
    except RunHeldError as err:
        if not multirun:
            raise  # main() reports it
        progress(job, "skipped", out_dir, "held", holder=err.holder)  # the holder trains it; the sweep goes on
        return None
    except LockLost as err:
        if not multirun:
            raise  # main() reports it
        log.error("%s", err)  # no process is sure to finish this run: the sweep goes on, and ends as failed
        progress(job, "finished", out_dir, "stopped (its .lock was replaced)")
        return None
    except UserError as err:
        remove_empty(out_dir, Path(cfg.output_root))  # a refused command leaves no empty run directory behind
        # past Hydra (a BaseException): its launcher would go on with the next job, its runner print the overrides
        raise StopSweep(err) from err
    except Exception as err:
        if not multirun:
            raise
        log.exception("run %s failed", out_dir)
        results = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
        record.write_failure(out_dir, {**results, "config": OmegaConf.to_container(cfg, resolve=True)})
    progress(
        job, "skipped" if results.get("skipped") else "finished", out_dir, results["status"], record.ended(results)
    )
    if not multirun and results["status"] == "completed":
        print(f"{out_dir}: {record.ended(results)}", flush=True)  # how the run ended, in one line
    if results["status"] in ("diverged", "stopped"):
        print(f"error: {results['error']}; recorded in {out_dir / RESULTS}", file=sys.stderr)
        if not multirun:
            sys.exit(1)
    return results.get("metrics", {}).get("val_err")


@hydra.main(version_base=VERSION_BASE, config_path=CONFIG_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    return run(cfg)


def main() -> None:
    """The command line: bad input of any kind is one line on stderr and exit code 2, never a traceback."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors; they are reported once, here
    quiet_console()
    printable_streams()
    try:
        hydra_main()
    except (UserError, HydraException, OmegaConfBaseException, StopSweep) as err:  # the refusal, in one line
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)
    except SweepFailed as failed:  # every run was recorded; some failed or diverged
        print(f"error: {one_line(failed)}", file=sys.stderr)
        sys.exit(1)
    except RunInterrupted as interrupted:  # Ctrl-C or SIGTERM: the run saved its step; a sweep says how far it got
        ledger = ledger_now()
        if ledger is not None:
            lines, line, _ = summarize(ledger)
            print("\n".join([*lines, line]), flush=True)
        print(f"error: {one_line(interrupted)}", file=sys.stderr)
        sys.exit(130)
    except OSError as err:
        if err.filename is None:
            raise
        print(
            f"error: cannot write {err.filename}: {err.strerror}; choose another output_root or hydra.run.dir",
            file=sys.stderr,
        )
        sys.exit(2)
    finally:
        close_ledger()


if __name__ == "__main__":
    main()
