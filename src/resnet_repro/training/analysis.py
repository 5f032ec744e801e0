"""The paper's analyses of a network's layers: Fig. 7's response std of each 3x3 layer (Sec. 4.2, "Analysis of
Layer Responses") and the backward-propagated gradient norms of the same layers (Sec. 4.1).

The response is the layer's output after BN and before the ReLU or the addition, read by a forward hook on that
BN, so no second forward implementation exists. The paper leaves open what the std is taken over; here it is over
all elements of the tensor, accumulated over the whole test set, with the network in eval mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from resnet_repro.files import write_json
from resnet_repro.runs.layout import GRADIENT_NORMS, LAYER_RESPONSES
from resnet_repro.runs.lock import check_held
from resnet_repro.training.callbacks import find
from resnet_repro.training.module import is_log_step


@contextmanager
def record_responses(model: nn.Module) -> Iterator[dict[str, float]]:
    """While active, every forward pass adds to the statistics; on exit the dict holds {layer: std} in order."""
    stats = {name: torch.zeros(3, dtype=torch.float64) for name, _ in model.response_layers()}  # n, sum, sum sq

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
            out = output.detach().double()
            n = torch.tensor(float(out.numel()), dtype=torch.float64, device=out.device)
            stats[name] += torch.stack([n, out.sum(), out.square().sum()]).cpu()

        return record

    handles = [bn.register_forward_hook(hook(name)) for name, bn in model.response_layers()]
    result: dict[str, float] = {}
    try:
        yield result
    finally:
        for handle in handles:
            handle.remove()
    if torch.distributed.is_available() and torch.distributed.is_initialized():  # DDP: each rank saw a shard
        stacked = torch.stack(list(stats.values()))
        torch.distributed.all_reduce(stacked)
        stats = dict(zip(stats, stacked, strict=True))
    for name, (n, total, total_sq) in stats.items():
        if n > 0:
            mean = total / n
            result[name] = float((total_sq / n - mean.square()).clamp_min(0).sqrt())


def save_analyses(trainer: pl.Trainer, run_dir: Path, responses: dict[str, float]) -> None:
    """A completed run's analyses: layer_responses.json (Fig. 7) and gradient_norms.json (Sec. 4.1), written by
    the global rank 0 while it holds the run, and Fig. 7 in TensorBoard."""
    if trainer.is_global_zero:
        check_held(run_dir)
        write_json(run_dir / LAYER_RESPONSES, responses, root=run_dir)
        write_json(run_dir / GRADIENT_NORMS, find(trainer, GradientNorms).norms(), root=run_dir)
    log_responses(trainer.logger.experiment, responses)


def log_responses(experiment: Any, responses: dict[str, float]) -> None:
    """Fig. 7 in TensorBoard: each layer's response std in network order (a), and sorted in descending order (b)."""
    for i, std in enumerate(responses.values()):
        experiment.add_scalar("layer_responses/std", std, i)
    for i, std in enumerate(sorted(responses.values(), reverse=True)):
        experiment.add_scalar("layer_responses/std_sorted", std, i)


class GradientNorms(pl.Callback):
    """Sec. 4.1: "the backward propagated gradients exhibit healthy norms with BN", measured.

    Every `log_every` iterations, the size of the loss gradient with respect to each 3x3 layer's response (the
    tensor Fig. 7 measures, read by a tensor hook on that BN's output) is logged to TensorBoard as
    `gradients/<layer>`: its root mean square over the tensor's elements, so that layers of different sizes (16
    channels at 32x32, 64 at 8x8) compare; `norms()` is each layer's mean over the measured iterations, in
    network order.
    """

    def __init__(self, log_every: int) -> None:
        self.log_every = log_every
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self._active = False  # measuring this iteration
        self._step: dict[str, torch.Tensor] = {}  # this iteration's norms, on the device
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        layers = pl_module.model.response_layers()
        self.sums = self.sums or {name: torch.zeros((), dtype=torch.float64) for name, _ in layers}
        self._handles = [bn.register_forward_hook(self._hook(name)) for name, bn in layers]

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _measuring(self, trainer: pl.Trainer) -> bool:
        return is_log_step(trainer.global_step + 1, self.log_every, trainer.max_steps)  # the iteration now starting

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
            if not self._active or name in self._step or not output.requires_grad:
                return  # once per layer and measured iteration (a recomputed stage runs its forward again)
            norm = self._step[name] = torch.zeros((), dtype=torch.float64, device=output.device)

            def measure(grad: torch.Tensor) -> None:
                norm.add_(grad.detach().double().norm() / grad.numel() ** 0.5)  # RMS: layers of any size compare

            output.register_hook(measure)

        return hook

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        self._active, self._step = self._measuring(trainer), {}

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        if not self._active or not self._step:
            return
        self._active = False
        norms = torch.stack([self._step[name] for name in self.sums if name in self._step])
        if torch.distributed.is_available() and torch.distributed.is_initialized():  # DDP: each rank saw a shard
            torch.distributed.all_reduce(norms)
            norms /= torch.distributed.get_world_size()
        values = dict(zip([n for n in self.sums if n in self._step], norms.cpu(), strict=True))
        for name, value in values.items():
            self.sums[name] += value
        self.count += 1
        if trainer.logger is not None:
            step = trainer.global_step + 1
            trainer.logger.log_metrics({f"gradients/{name}": float(v) for name, v in values.items()}, step=step)

    def norms(self) -> dict[str, float]:
        """{layer: mean gradient norm over the measured iterations}, in network order; empty if none was measured."""
        return {name: float(total) / self.count for name, total in self.sums.items()} if self.count else {}

    def state_dict(self) -> dict[str, Any]:
        return {"sums": self.sums, "count": self.count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.sums, self.count = state_dict["sums"], state_dict["count"]
