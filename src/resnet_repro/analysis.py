"""Fig. 7: the standard deviation of each 3x3 layer's response (Sec. 4.2, "Analysis of Layer Responses").

The response is the layer's output after BN and before the ReLU or the addition, read by a forward hook on that
BN, so no second forward implementation exists. The paper leaves open what the std is taken over; here it is over
all elements of the tensor, accumulated over the whole test set, with the network in eval mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


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
