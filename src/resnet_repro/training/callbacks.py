"""Lightning callbacks and plugins of a run: its summary (speed, best val error), its segments (which code and
machine trained which steps), a progress log line for runs without a progress bar, the check that the run is
still held, its checkpoints (in the run directory, written atomically).

Each callback finds the run directory as `trainer.default_root_dir` (train.py sets it), so conf/callbacks/ can
name any of them, and a callback of the user's is added by config alone (`+callbacks.NAME._target_=...`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, TypeVar

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities.exceptions import SIGTERMException

from resnet_repro.files import atomic_write, remove_file
from resnet_repro.runs.layout import CHECKPOINTS, LAST
from resnet_repro.runs.lock import check_held
from resnet_repro.runs.provenance import segment
from resnet_repro.training.module import BAR_ERR, BAR_SPEED, is_log_step

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint through files.atomic_write below the run directory `root`: to a temporary file beside
    it, then renamed (a kill never leaves a truncated one), never through a link (checkpoints/ swapped for one
    mid-run is refused); removes old ones the same way."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = Path(root)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        atomic_write(path, lambda file: torch.save(checkpoint, file), self.root)

    def remove_checkpoint(self, path: Any) -> None:
        remove_file(Path(path), self.root)


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, in the run directory's checkpoints/ and by its `monitor` (val error) when the
    run has a val split; without one (data.val_size=0, the paper's CIFAR protocol) it keeps the latest. Its
    last.ckpt holds the latest evaluated weights at every evaluation (Lightning alone rewrites it only with a new
    best): what a rerun resumes from and what `--which last` takes."""

    def __init__(self, dirpath: str | None = None, save_last: bool = True, **kwargs: Any) -> None:
        if dirpath is not None:
            raise ValueError(
                f"a run's checkpoints are in <run>/{CHECKPOINTS}, where its resume finds them; leave dirpath unset"
            )
        if save_last is not True:
            raise ValueError(f"save_last must be true: {LAST} is what a rerun resumes from")
        # a rerun finds its last.ckpt under that name, never a versioned last-v1.ckpt beside a stale one
        super().__init__(save_last=True, enable_version_counter=False, **kwargs)
        if self.save_top_k == 0 or not (self._every_n_epochs or self._every_n_train_steps or self._train_time_interval):
            raise ValueError(
                f"save_top_k must not be 0 and some of every_n_epochs, every_n_train_steps, train_time_interval must "
                f"be on: {LAST} would be written at the end only"
            )

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        """A checkpoint written before this class existed holds its state under ModelCheckpoint's key: take it from
        there (a ModelCheckpoint of the user's keeps a key of its own, so the two never share a state)."""
        states = checkpoint.get("callbacks", {})
        earlier = self.state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)
        if self.state_key not in states and earlier in states:
            states[self.state_key] = states[earlier]
        super().on_load_checkpoint(trainer, pl_module, checkpoint)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = str(Path(trainer.default_root_dir) / CHECKPOINTS)
        if self.monitor is not None and "val" not in trainer.datamodule.eval_names():
            self.monitor = None
        super().setup(trainer, pl_module, stage)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Lightning's saves (the best by val error, and last.ckpt only when it wrote a best), then last.ckpt when it
        did not: last.ckpt holds the latest evaluated weights, the final ones at the end, which `--which last`
        exports and evaluates, never the best's again."""
        super().on_validation_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer):  # skipped: saved at this step already
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class StillHeld(pl.Callback):
    """Stops the run (LockLost) when its `.lock` was deleted or replaced: checked every `every` iterations and
    before each checkpoint is written, so a process that lost the run writes nothing more there."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if is_log_step(trainer.global_step, self.every, trainer.max_steps) and trainer.is_global_zero:
            check_held(Path(trainer.default_root_dir))

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if trainer.is_global_zero:
            check_held(Path(trainer.default_root_dir))


class Interrupts(pl.Callback):
    """Ctrl-C (SIGINT) and SIGTERM keep the work: the run stops at the next iteration's end (Lightning's own
    SIGTERM path, a clean state), writes checkpoints/last.ckpt at that step and says how to resume. A second
    Ctrl-C stops at once, as Python does."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers belong to the main thread

        def stop_at_the_next_iteration(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C: now
            print("\nstopping after this iteration to save a checkpoint (Ctrl-C again to stop at once)", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)  # Lightning's own handler: it stops at the iteration's end

        self.previous = signal.signal(signal.SIGINT, stop_at_the_next_iteration)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if getattr(self, "previous", None) is not None:
            signal.signal(signal.SIGINT, self.previous)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.on_train_end(trainer, pl_module)
        if not isinstance(exception, SIGTERMException) or trainer.global_step == 0:
            return
        path = Path(trainer.default_root_dir) / CHECKPOINTS / LAST
        # the whole state, to resume from; written atomically (AtomicCheckpointIO), while the run is still held
        trainer.save_checkpoint(path, weights_only=False)
        if trainer.is_global_zero:
            print(
                f"interrupted at step {trainer.global_step} of {trainer.max_steps}: saved {path}; run the same "
                "command again to resume from there",
                flush=True,
            )


C = TypeVar("C", bound=pl.Callback)


def find(trainer: pl.Trainer, kind: type[C]) -> C:
    """The trainer's callback of class `kind` (train.py always adds the run's own: RunSummary, Segments, ...)."""
    return next(c for c in trainer.callbacks if isinstance(c, kind))


def compile_time_s() -> float:
    """The wall time torch.compile has spent in this process so far (tracing, inductor, the C++ or Triton builds);
    less when inductor's caches (TORCHINDUCTOR_CACHE_DIR) hold the graphs of an earlier run."""
    return float(torch._dynamo.utils.calculate_time_spent().get("total_wall_time", 0.0))  # no public API has it


class RunSummary(pl.Callback):
    """Measures training throughput (images/s, validation excluded), the run's wall time, and the best val error
    with its step. Logs `train/images_per_s` with the training metrics; its totals survive a resume through the
    checkpoint, so a resumed run reports the whole run.
    """

    STATE = ("train_time_s", "images", "best_val_err", "best_val_step")

    def __init__(self, log_every: int = 50) -> None:
        self.log_every = log_every
        self.earlier_wall_time_s = 0.0  # spent by the processes before a resume
        self.started = time.perf_counter()
        self.train_time_s = 0.0
        self.images = 0
        self.best_val_err: float | None = None
        self.best_val_step: int | None = None
        self._window_start: float | None = None
        self._window_images = 0
        self._compile_before = 0.0  # torch.compile's time in this process before this run trains (on_train_start)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._compile_before = compile_time_s()  # a sweep's runs share one process; the module reset dynamo

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        if self._window_start is None:
            self._window_start, self._window_images = time.perf_counter(), 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self._window_images += len(batch[1])
        if is_log_step(trainer.global_step, self.log_every, trainer.max_steps):
            self._close_window(trainer)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.training:
            self._close_window(trainer, log=False)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        err = trainer.callback_metrics.get("val/err")
        if err is not None and not trainer.sanity_checking:
            err = float(err)
            if self.best_val_err is None or err < self.best_val_err:
                self.best_val_err, self.best_val_step = err, trainer.global_step

    def _close_window(self, trainer: pl.Trainer, log: bool = True) -> None:
        if self._window_start is None:
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # once per window, so the wall time covers the queued GPU work
        elapsed = time.perf_counter() - self._window_start
        self.train_time_s += elapsed
        self.images += self._window_images
        if log and elapsed > 0:
            rate = self._window_images / elapsed
            if trainer.logger is not None:
                trainer.logger.log_metrics({"train/images_per_s": rate}, step=trainer.global_step)
            trainer.lightning_module.log_dict(
                {"step": float(trainer.global_step), BAR_SPEED: rate}, prog_bar=True, logger=False
            )
        self._window_start = None

    @property
    def compile_s(self) -> float:
        """What torch.compile took during this run (its segment, when resumed)."""
        return compile_time_s() - self._compile_before

    @property
    def images_per_s(self) -> float | None:
        return self.images / self.train_time_s if self.train_time_s > 0 else None

    @property
    def wall_time_s(self) -> float:
        return self.earlier_wall_time_s + time.perf_counter() - self.started

    def state_dict(self) -> dict[str, Any]:
        return {"wall_time_s": self.wall_time_s, **{k: getattr(self, k) for k in self.STATE}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.earlier_wall_time_s = state_dict["wall_time_s"]
        for key in self.STATE:
            setattr(self, key, state_dict[key])


class Segments(pl.Callback):
    """The segments of a run: one per process that trained it (steps from-to, commit, host, versions; provenance.py),
    carried through resumes by the checkpoint. A checkpoint's last segment ends at the checkpoint's step."""

    def __init__(self) -> None:
        self.earlier: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.current = segment(trainer.global_step)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self.current["steps"][1] = trainer.global_step

    @property
    def segments(self) -> list[dict[str, Any]]:
        return [*self.earlier, *([self.current] if self.current else [])]

    def state_dict(self) -> dict[str, Any]:
        return {"segments": self.segments}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.earlier = state_dict["segments"]


class ProgressLog(pl.Callback):
    """When no progress bar is shown (progress_bar=false: logs, CI, clusters): one line per log interval with the
    run, the step of the total, the training error, images/s and the time left at this process's speed so far."""

    def __init__(self, log_every: int) -> None:
        self.log_every = log_every
        self.run_name, self.started, self.first_step = "", 0.0, 0
        self.silent = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.run_name = str(Path(*Path(trainer.default_root_dir).parts[-2:]))  # <overrides>/seed=N
        self.started, self.first_step = time.perf_counter(), trainer.global_step
        self.silent = trainer.progress_bar_callback is not None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        if is_log_step(trainer.global_step, self.log_every, -1) and trainer.global_step > self.first_step:
            self.report(trainer)  # the batch-end hooks of the previous step have logged its window

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.report(trainer)

    def report(self, trainer: pl.Trainer) -> None:
        if self.silent:
            return
        step, total = trainer.global_step, trainer.max_steps
        metrics = trainer.progress_bar_metrics
        elapsed = time.perf_counter() - self.started
        left = (total - step) * elapsed / max(1, step - self.first_step)
        log.info(
            "%s: step %d of %d, train err %.1f%%, %.0f images/s, %s left",
            self.run_name,
            step,
            total,
            float(metrics.get(BAR_ERR, float("nan"))),
            float(metrics.get(BAR_SPEED, float("nan"))),
            time.strftime("%H:%M:%S", time.gmtime(left)),
        )
