"""The paper's learning-rate schedule, counted in iterations (Sec. 4.2, 3.4).

The base lr is divided by 10 at each milestone. An optional warm-up holds a smaller lr until the training error
falls below a threshold, then returns to the base lr (Sec. 4.2, ResNet-110: 0.01 "until the training error is
below 80% (about 400 iterations), and then go back to 0.1"). The common PyTorch reference never restores it.
"""

from __future__ import annotations

from bisect import bisect_right


class PaperSchedule:
    """An lr factor per iteration, for torch.optim.lr_scheduler.LambdaLR stepped every iteration.

    LambdaLR saves this object's attributes in its state_dict, so the warm-up state survives a resume.
    """

    def __init__(self, milestones: list[int], gamma: float = 0.1, warmup_factor: float | None = None) -> None:
        self.milestones = sorted(milestones)
        self.gamma = gamma
        self.warmup_factor = warmup_factor
        self.warming_up = warmup_factor is not None

    def end_warmup(self) -> None:
        self.warming_up = False

    def __call__(self, step: int) -> float:
        if self.warming_up:
            return self.warmup_factor
        return self.gamma ** bisect_right(self.milestones, step)
