"""The fast data path: a whole split as one uint8 tensor on the training device, batched by index.

Batches come from a seeded permutation per epoch and the augmentation is a batched tensor op, so there is no PIL,
no worker process and no host-to-device copy per step (airbench, hlb-CIFAR10 do the same). All randomness of an
epoch is a function of (seed, epoch), and a training loader starts at the position the trainer's iteration count
gives, so a run resumed from any checkpoint sees exactly the batches of an uninterrupted one. The loader follows
Lightning's stateful-loader protocol (state_dict / load_state_dict): checkpoints record its position and what
its order depends on, and a resume checks them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from resnet_repro.data.transforms import Normalize, crop_flip, sample_crop_flip
from resnet_repro.errors import DataError


class TensorLoader:
    """Yields (images float32 (B, 3, H, W), labels int64 (B,)) from tensors already on the device.

    `shuffle=True` is the training mode: a new permutation per epoch, the last partial batch dropped so every
    step has the full batch size, and the start position taken from `step_fn()` (iterations already done).
    Under DDP each of `world_size` processes takes every `world_size`-th batch, starting at its `rank`.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        normalize: Normalize,
        shuffle: bool,
        augment: bool,
        flip: bool = True,
        seed: int = 0,
        channels_last: bool = False,
        step_fn: Callable[[], int] | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.normalize, self.shuffle, self.augment = batch_size, normalize, shuffle, augment
        self.flip = flip
        self.seed, self.channels_last = seed, channels_last
        self.step_fn = step_fn or (lambda: 0)
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        """Batches this process yields per epoch."""
        if self.shuffle:
            return len(self.labels) // (self.batch_size * self.world_size)
        return -(-len(range(self.rank, len(self.labels), self.world_size)) // self.batch_size)

    def batch_positions(self, device: torch.device) -> list[torch.Tensor]:
        """For each batch of this process, the positions in the epoch's order of the samples it takes.

        Training: step i of all processes covers positions [i*B*W, (i+1)*B*W), rank r the r-th block of B.
        Evaluation: rank r takes every W-th sample from r, so each rank has at least one batch.
        """
        if self.shuffle:
            per_step = self.batch_size * self.world_size
            grid = torch.arange(len(self) * per_step, device=device).view(len(self), self.world_size, -1)
            return list(grid[:, self.rank])  # each (B,)
        return list(torch.arange(self.rank, len(self.labels), self.world_size, device=device).split(self.batch_size))

    def epoch_plan(self, epoch: int) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """The epoch's sample order and, when augmenting, its per-sample crop offsets and flips."""
        n, device = len(self.labels), self.images.device
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        params = sample_crop_flip(n, 4, generator, self.flip) if self.augment else None
        return order.to(device), None if params is None else tuple(p.to(device) for p in params)

    def order_key(self) -> dict[str, int]:
        """What the sample order depends on, besides the position."""
        return {
            "seed": self.seed,
            "samples": len(self.labels),
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "rank": self.rank,
        }

    def state_dict(self) -> dict[str, int]:
        """The position (training iterations done: the next batch is that one) and what the order depends on."""
        return {"position": self.step_fn(), **self.order_key()}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume at the recorded position; refuse (one line: DataError) a state whose order would not be this
        loader's, or a damaged one."""
        state = state if isinstance(state, dict) else {}
        changed = {k: (v, state.get(k)) for k, v in self.order_key().items() if state.get(k) != v}
        if changed:
            raise DataError(f"the checkpoint's data order differs from this run's (now, recorded): {changed}")
        if state.get("position") != self.step_fn():
            position = ascii(state.get("position"))[:40]
            raise DataError(f"the checkpoint's loader position {position} is not its step {self.step_fn()}")

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, start = divmod(self.step_fn(), len(self)) if self.shuffle else (0, 0)
        order, params = self.epoch_plan(epoch)
        for positions in self.batch_positions(order.device)[start:]:
            idx = order[positions]
            x = self.normalize(self.images[idx])
            if params is not None:
                x = crop_flip(x, *(p[positions] for p in params), padding=4)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]
