"""Data-path benchmark: augmented CIFAR-10 training batches of 128 per second, fast path vs torchvision.

    python benchmarks/bench_data.py --data /path/to/cifar10     (make bench-data DATA=...)

(a) fast: the project's default loader (the split as one tensor, batched pad/crop/flip on the device);
(b) torchvision: the classic reference pipeline, a Dataset of PIL images with RandomCrop(32, 4),
    RandomHorizontalFlip, ToTensor, Normalize, through a DataLoader with 2 workers.
Each is timed over full passes after a warm-up pass; the median of the repeats is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from resnet_repro.data import CifarDataModule
from resnet_repro.runs.provenance import machine


class PilCifar(Dataset):
    """The reference layout: one PIL image per item, transformed on the fly."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: transforms.Compose) -> None:
        self.images = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]
        self.labels, self.transform = labels.tolist(), transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[i]), self.labels[i]


def reference_loader(
    images: torch.Tensor, labels: torch.Tensor, batch_size: int = 128, workers: int = 2, pin: bool = False
) -> DataLoader:
    """The common reference pipeline: PIL images, RandomCrop(32, 4), flip, ToTensor, Normalize; `workers`
    processes (2 on the 2-core CPU), pinned memory for a GPU."""
    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        ]
    )
    return DataLoader(
        PilCifar(images, labels, transform),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=pin,
    )


def batches_per_s(loader, max_batches: int, repeats: int) -> float:
    """Median batches/s over `repeats` timed passes of up to `max_batches`, after one warm-up pass."""
    rates = []
    for r in range(repeats + 1):
        start, n = time.perf_counter(), 0
        for x, _ in loader:
            x.sum()  # touch the data, as a training step would
            n += 1
            if n == max_batches:
                break
        if r:  # the first pass warms up workers and caches
            rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a CIFAR-10 root (official archive or image folders)")
    parser.add_argument("--batches", type=int, default=150, help="batches per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    dm = CifarDataModule(root=args.data, batch_size=128)
    dm.prepare_data()
    dm.setup("fit")
    fast = batches_per_s(dm.train_dataloader(), args.batches, args.repeats)

    loader = reference_loader(*dm.splits["train"])
    slow = batches_per_s(loader, args.batches, args.repeats)

    print(f"machine: {machine()}, {torch.get_num_threads()} torch threads")
    print(f"fast path (ours):                  {fast:8.1f} batches/s  ({fast * 128:,.0f} images/s)")
    print(f"torchvision DataLoader (PIL, 2 w): {slow:8.1f} batches/s  ({slow * 128:,.0f} images/s)")
    print(f"ratio fast / torchvision:          {fast / slow:8.1f}x")


if __name__ == "__main__":
    main()
