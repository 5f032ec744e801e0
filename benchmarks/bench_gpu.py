"""GPU benchmark: iterations per second of the paper's CIFAR nets, and the projected `make reproduce-cifar` time.

    python benchmarks/bench_gpu.py [--data /path/to/cifar10] [--compile]

Where a CUDA GPU exists: the project's GPU path (bf16 autocast, channels_last, the data resident on the GPU, our
batched augmentation) trains ResNet-20/32/44/56/110 and plain-20/32/44/56 (Fig. 6, one seed) for a few hundred
iterations each; their iterations/s and eval images/s project the wall time of the whole sweep (64k iterations
and 64 evaluations of 15k images per net). Without a GPU it says so and exits cleanly.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch.nn import functional as F

from resnet_repro.data.tensor_loader import TensorLoader
from resnet_repro.data.transforms import Normalize
from resnet_repro.models import CifarResNet

NETS = [("plain", d) for d in (20, 32, 44, 56)] + [("resnet", d) for d in (20, 32, 44, 56, 110)]
MAX_STEPS, EVALS, EVAL_IMAGES = 64_000, 64, 15_000  # Sec. 4.2; our default val_check_interval of 1000


def images(data: str | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if data is None:  # random pixels: the speed of a training step does not depend on them
        return torch.randint(0, 256, (45_000, 3, 32, 32), dtype=torch.uint8, device=device), torch.randint(
            0, 10, (45_000,), device=device
        )
    from resnet_repro.data.cifar_sources import load_cifar

    arrays = load_cifar("cifar10", data)
    return arrays.train_images[:45_000].to(device), arrays.train_labels[:45_000].to(device)


def measure(kind: str, depth: int, x: torch.Tensor, y: torch.Tensor, compile: bool) -> tuple[float, float]:
    """(training iterations/s, evaluation images/s) after a warm-up."""
    model = CifarResNet(depth, residual=kind == "resnet").cuda().to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    loader = TensorLoader(x, y, 128, Normalize(x.cpu()).to(x.device), True, True, channels_last=True)
    steps, warmup = 300, 50
    for i, (xb, yb) in enumerate(loader):
        if i == warmup:
            torch.cuda.synchronize()
            start = time.perf_counter()
        if i == warmup + steps:
            break
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(forward(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    torch.cuda.synchronize()
    its = steps / (time.perf_counter() - start)
    model.eval()
    batch = loader.normalize(x[:1000]).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        forward(batch)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(10):
            forward(batch)
        torch.cuda.synchronize()
    return its, 10_000 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="a CIFAR-10 root; random pixels when omitted")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU on this machine: nothing to measure (this benchmark needs one)")
        return
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    x, y = images(args.data, device)
    print(
        f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, bf16 autocast, channels_last, "
        f"compile={args.compile}"
    )
    total = 0.0
    for kind, depth in NETS:
        its, eval_rate = measure(kind, depth, x, y, args.compile)
        hours = (MAX_STEPS / its + EVALS * EVAL_IMAGES / eval_rate) / 3600
        total += hours
        print(
            f"{kind}-{depth:<4} {its:8.1f} it/s  {its * 128:10,.0f} img/s  eval {eval_rate:10,.0f} img/s  "
            f"64k iterations: {hours:5.2f} h",
            flush=True,
        )
    print(f"projected `make reproduce-cifar` (Fig. 6 sweep, one seed, one GPU, runs in sequence): {total:.2f} h")
    sys.exit(0)


if __name__ == "__main__":
    main()
