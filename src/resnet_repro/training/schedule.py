"""The paper's learning-rate schedule, counted in iterations (Sec. 4.2, 3.4).

The base lr is divided by 10 at each milestone. An optional warm-up holds a smaller lr until the training error
falls below a threshold, then returns to the base lr (Sec. 4.2, ResNet-110: 0.01 "until the training error is
below 80% (about 400 iterations), and then go back to 0.1"). The common PyTorch reference never restores it.

The training error that ends the warm-up is the mean over the last `warmup_window` iterations, checked every
WARMUP_CHECK_EVERY iterations. The CIFAR default is one epoch, 391 iterations of 128 of the 50,000 images: the
training error as an epoch reports it, which is how the paper's "about 400 iterations" reads (one epoch is 391).
Shorter windows end it on noise or on the first minute of learning: a 10-iteration window (1,280 images, +-1.1 pp
of binomial noise at 80%) ended ResNet-110's at iteration 40 on one lucky window; a 100-iteration one ended it at
iteration 100, as soon as it could decide (experiments/results/warmup-trace/).
"""

from __future__ import annotations

from bisect import bisect_right

import torch

from resnet_repro.errors import ConfigError

WARMUP_CHECK_EVERY = 10  # iterations between checks of the warm-up window (one host sync each)


def check_warmup(warmup_lr: float | None, until_err: float, window: int) -> None:
    """Refuse warm-up options that make no sense; each message names its key."""
    if warmup_lr is not None and not warmup_lr > 0:
        raise ConfigError("optim.warmup_lr", f"must be > 0 or null, got {warmup_lr}")
    if not 0 < until_err <= 100:
        raise ConfigError("optim.warmup_until_err", f"must be a percent error in (0, 100], got {until_err}")
    if not isinstance(window, int) or window < 1:
        raise ConfigError("optim.warmup_window", f"must be a positive number of iterations, got {window!r}")


class PaperSchedule:
    """An lr factor per iteration, for torch.optim.lr_scheduler.LambdaLR stepped every iteration, and the warm-up's
    decision to end (its window of training errors is the module's `warmup_errors` buffer, in its checkpoints).

    LambdaLR saves this object's attributes in its state_dict, so the warm-up state survives a resume.
    """

    def __init__(
        self,
        milestones: list[int],
        gamma: float = 0.1,
        warmup_factor: float | None = None,
        until_err: float = 80.0,
        window: int = 391,
    ) -> None:
        self.milestones = sorted(milestones)
        self.gamma = gamma
        self.warmup_factor = warmup_factor
        self.until_err, self.window = until_err, window
        self.warming_up = warmup_factor is not None
        self.warmup_end_step: int | None = None  # the iteration after which the base lr applies

    def end_warmup(self, step: int) -> None:
        self.warming_up = False
        self.warmup_end_step = step

    def due(self, step: int) -> bool:
        """Whether the warm-up's window is checked after iteration `step` (iterations done)."""
        return self.warming_up and step % WARMUP_CHECK_EVERY == 0 and step >= self.window

    def check(self, step: int, window_err: float, scheduler: torch.optim.lr_scheduler.LambdaLR) -> bool:
        """Sec. 4.2: back to the base lr once the training error of the window (`window_err`, %, over all
        processes) is below `until_err`; the lr of the next iteration is set now (`scheduler` has stepped)."""
        if window_err >= self.until_err:
            return False
        self.end_warmup(step)
        for group, base_lr in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, strict=True):
            group["lr"] = base_lr * self(step)
        return True

    def __call__(self, step: int) -> float:
        if self.warming_up:
            return self.warmup_factor
        return self.gamma ** bisect_right(self.milestones, step)
