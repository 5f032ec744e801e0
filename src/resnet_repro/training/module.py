"""The LightningModule: one network, the paper's SGD recipe, percent-error metrics (the paper's unit)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import MeanMetric

from resnet_repro.errors import ConfigError
from resnet_repro.training.schedule import PaperSchedule, check_warmup

BAR_ERR, BAR_SPEED = "err", "img/s"  # the progress bar's training error and speed (ProgressLog reads them)
# earlier versions held the network a second time under these names (a submodule alias of model)
FORMER_ALIASES = ("forward_fn.", "train_forward.")


def is_log_step(step: int, every: int, last: int) -> bool:
    """Whether iteration `step` (1-based: iterations done) closes a logging window: every `every`, and the last."""
    return step % every == 0 or step == last


def mean() -> MeanMetric:
    """A running mean that keeps a NaN (torchmetrics' default drops it with a warning): a NaN loss or output makes
    the mean NaN, which a run records as diverged and evaluate refuses, never a mean of the finite values alone."""
    return MeanMetric(nan_strategy="disable")


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, step: int) -> None:
        super().__init__(f"training diverged: the loss is NaN or infinite at step {step}")
        self.step = step


class ResNetModule(pl.LightningModule):
    """Trains a classifier with SGD + momentum and the paper's iteration-based schedule.

    Logs `train/err`, `train/loss` and `lr` every `log_every` iterations (accumulated on the device in between, so
    there is no host sync per step), and `val/err`, `test/err` (and top-5 where `top5`) at each validation.
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        nesterov: bool = False,
        milestones: tuple[int, ...] = (32_000, 48_000),
        gamma: float = 0.1,
        warmup_lr: float | None = None,
        warmup_until_err: float = 80.0,
        warmup_window: int = 391,
        eval_names: tuple[str, ...] = ("val", "test"),
        top5: bool = False,
        log_every: int = 50,
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        check_optim(lr, momentum, weight_decay, milestones, gamma, warmup_lr, warmup_until_err, warmup_window)
        self.save_hyperparameters(ignore=["model"], logger=False)  # HParams: the recipe's keys (training/hparams.py)
        self.model = model.to(memory_format=torch.channels_last) if channels_last else model
        # compile=true: the training iterations that are not measured; the measured ones (GradientNorms' tensor
        # hooks, every log_every) and evaluation (Fig. 7's forward hooks) run the network as it is. A callable, not
        # a submodule: a checkpoint holds the network once, as model.*, whether or not it was compiled
        if compile:
            torch.compiler.reset()  # a sweep's earlier runs must not use up dynamo's recompile limit (then: eager)
        self.train_forward = torch.compile(self.model).__call__ if compile else self.model.__call__
        self.eval_names = list(eval_names)
        self.train_err, self.train_loss = mean(), mean()
        # the run's training error: the mean over its final epoch (Fig. 6's curves), whatever log_every is
        self.final_err, self.final_loss = mean(), mean()
        self.final_from: int | None = None  # the first iteration of the final epoch, set when training starts
        # training error (%) of each of the last warmup_window iterations, a ring buffer kept on the device
        self.register_buffer("warmup_errors", torch.full((warmup_window,), float("nan")))
        names = dict.fromkeys([*self.eval_names, "test"])  # validation loaders, then the final test pass

        def per_loader() -> nn.ModuleDict:
            return nn.ModuleDict({name: mean() for name in names})

        self.eval_err, self.eval_loss = per_loader(), per_loader()
        self.eval_err5 = per_loader() if top5 else None
        self.register_buffer("first_bad_step", torch.tensor(-1), persistent=False)
        self.run_identity: dict | None = None  # the run's recipe, fingerprint and seed (recipe.py), in checkpoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.run_identity is not None:
            checkpoint["run_identity"] = self.run_identity
        checkpoint["final_epoch"] = {  # a resume inside (or after) the final epoch keeps what it had accumulated
            "from": self.final_from,
            **{
                name: {"mean_value": metric.mean_value, "weight": metric.weight}
                for name, metric in (("err", self.final_err), ("loss", self.final_loss))
            },
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        weights = checkpoint.get("state_dict", {})
        for key in [k for k in weights if k.startswith(FORMER_ALIASES)]:
            del weights[key]  # a second copy of model.*, in checkpoints of earlier versions
        placement = getattr(self.model, "stride_in_1x1", None)
        if isinstance(placement, torch.Tensor) and weights and "model.stride_in_1x1" not in weights:
            weights["model.stride_in_1x1"] = placement.clone()  # the run's own, from before it was recorded
        state = checkpoint.get("final_epoch", {})
        self.final_from = state.get("from")
        for name, metric in (("err", self.final_err), ("loss", self.final_loss)):
            if name in state:
                metric.mean_value = state[name]["mean_value"].to(self.device)
                metric.weight = state[name]["weight"].to(self.device)

    def on_train_start(self) -> None:
        window = min(self.trainer.num_training_batches, self.trainer.max_steps)  # an epoch, or the whole run
        self.final_from = self.trainer.max_steps - int(window)

    def final_train(self) -> dict[str, float | None]:
        """train_err and train_loss: the means over the final epoch of training (the last `train_window`
        iterations, augmented batches in train mode, as Fig. 6's training curves), independent of log_every.
        None when that epoch was not seen by this version (a checkpoint of an older one resumed at its end)."""
        if self.final_from is None or float(self.final_err.weight) == 0:
            return {"train_err": None, "train_loss": None, "train_window": None}
        return {
            "train_err": self.final_err.compute().item(),
            "train_loss": self.final_loss.compute().item(),
            "train_window": float(self.trainer.max_steps - self.final_from),
        }

    # --- optimization (Sec. 4.2 / 3.4) ---
    def configure_optimizers(self) -> dict:
        hp = self.hparams
        optimizer = torch.optim.SGD(
            self.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay, nesterov=hp.nesterov
        )
        warmup_factor = hp.warmup_lr / hp.lr if hp.warmup_lr is not None else None
        paper = PaperSchedule(list(hp.milestones), hp.gamma, warmup_factor, hp.warmup_until_err, hp.warmup_window)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, paper)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def schedule(self) -> PaperSchedule:
        return self.lr_schedulers().lr_lambdas[0]

    # --- training ---
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        measured = is_log_step(self.global_step + 1, self.hparams.log_every, self.trainer.max_steps)
        logits = self.model(x) if measured else self.train_forward(x)
        loss = F.cross_entropy(logits, y)
        wrong = (logits.argmax(1) != y).float() * 100  # percent error, the paper's unit
        self.train_err.update(wrong)
        self.train_loss.update(loss.detach())
        if self.final_from is not None and self.global_step >= self.final_from:
            self.final_err.update(wrong)
            self.final_loss.update(loss.detach())
        bad = ~torch.isfinite(loss.detach())
        self.first_bad_step = torch.where(bad & (self.first_bad_step < 0), self.global_step, self.first_bad_step)
        if self.schedule().warming_up:
            self.warmup_errors[self.global_step % len(self.warmup_errors)] = wrong.mean()
        return loss

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        step = self.global_step  # iterations done
        schedule = self.schedule()
        if schedule.due(step):  # the warm-up's window, over all processes (schedule.py)
            err = float(self.trainer.strategy.reduce(self.warmup_errors.mean(), reduce_op="mean"))
            if schedule.check(step, err, self.lr_schedulers()) and self.logger is not None:
                self.logger.log_metrics({"warmup/end_step": step, "warmup/window_err": err}, step=step)
        if is_log_step(step, self.hparams.log_every, self.trainer.max_steps):
            self._log_train(step)

    def _log_train(self, step: int) -> None:
        if int(self.first_bad_step) >= 0:
            raise DivergedError(int(self.first_bad_step))
        values = {
            "train/err": self.train_err.compute().item(),
            "train/loss": self.train_loss.compute().item(),
            "lr": self.optimizers().param_groups[0]["lr"],
        }
        self.train_err.reset()
        self.train_loss.reset()
        if self.logger is not None:
            self.logger.log_metrics(values, step=step)
        self.log_dict({"loss": values["train/loss"], BAR_ERR: values["train/err"]}, prog_bar=True, logger=False)

    # --- evaluation ---
    def _eval_step(self, name: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        x, y = batch
        if x.dim() == 5:  # (B, crops, C, H, W): the paper's 10-crop testing averages the softmax over crops
            probs = self(x.flatten(0, 1)).softmax(1).view(x.shape[0], x.shape[1], -1).mean(1)
            log_probs = probs.clamp_min(1e-12).log()
        else:
            log_probs = self(x).log_softmax(1)
        self.eval_loss[name].update(F.nll_loss(log_probs, y, reduction="none"))
        self.eval_err[name].update((log_probs.argmax(1) != y).float() * 100)
        self.log(f"{name}/loss", self.eval_loss[name], add_dataloader_idx=False)
        self.log(f"{name}/err", self.eval_err[name], add_dataloader_idx=False, prog_bar=name == "val")
        if self.eval_err5 is not None:
            top5 = log_probs.topk(min(5, log_probs.shape[1]), dim=1).indices
            self.eval_err5[name].update((top5 != y[:, None]).all(1).float() * 100)
            self.log(f"{name}/err5", self.eval_err5[name], add_dataloader_idx=False)

    def validation_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        name = self.eval_names[dataloader_idx]
        if name == "test" and self.trainer.max_steps > 0 and self.global_step >= self.trainer.max_steps:
            return  # the final weights are tested once, by the test pass that follows fit (train.fit_and_test)
        self._eval_step(name, batch)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step("test", batch)


def check_optim(
    lr: float,
    momentum: float,
    weight_decay: float,
    milestones: tuple[int, ...],
    gamma: float,
    warmup_lr: float | None,
    warmup_until_err: float,
    warmup_window: int,
) -> None:
    """Refuse values that make no sense before any training starts; each message names its key."""
    if not lr > 0:
        raise ConfigError("optim.lr", f"the learning rate must be > 0, got {lr}")
    if not 0 <= momentum < 1:
        raise ConfigError("optim.momentum", f"must be in [0, 1), got {momentum}")
    if not weight_decay >= 0:
        raise ConfigError("optim.weight_decay", f"must be >= 0, got {weight_decay}")
    if any(not isinstance(m, int) or m < 1 for m in milestones) or list(milestones) != sorted(milestones):
        raise ConfigError("optim.milestones", f"must be increasing positive iteration counts, got {list(milestones)}")
    if not 0 < gamma <= 1:
        raise ConfigError("optim.gamma", f"must be in (0, 1], got {gamma}")
    check_warmup(warmup_lr, warmup_until_err, warmup_window)
