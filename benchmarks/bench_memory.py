"""Memory benchmark: one ResNet-1202 training step at batch 128, with and without per-stage checkpointing.

    python benchmarks/bench_memory.py [--depth 1202] [--batch 128]

Each setting runs in its own process; the reported number is that process's peak resident memory during the step
minus its resident memory just before it (model, optimizer and batch already built), so it is the step's own peak.
On CUDA the same is measured with torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from torch.nn import functional as F

from resnet_repro.models import CifarResNet


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def one_step(depth: int, batch: int, checkpointed: bool) -> dict[str, float]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = CifarResNet(depth, checkpoint_stages=checkpointed).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(batch, 3, 32, 32, device=device), torch.randint(0, 10, (batch,), device=device)
    before = rss_mb()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    seconds = time.perf_counter() - start
    if device == "cuda":
        return {"peak_mb": (torch.cuda.max_memory_allocated() - base) / 2**20, "seconds": seconds}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_mb": peak - before, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=1202)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--worker", choices=["plain", "checkpointed"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(one_step(args.depth, args.batch, args.worker == "checkpointed")))
        return
    results = {}
    for mode in ("plain", "checkpointed"):
        cmd = [sys.executable, __file__, "--worker", mode, "--depth", str(args.depth), "--batch", str(args.batch)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[mode] = json.loads(next(s for s in out.stdout.splitlines() if s.startswith("RESULT "))[7:])
        print(
            f"ResNet-{args.depth}, batch {args.batch}, {mode:>12}: step peak {results[mode]['peak_mb']:,.0f} MB, "
            f"{results[mode]['seconds']:.1f} s",
            flush=True,
        )
    ratio = results["checkpointed"]["peak_mb"] / results["plain"]["peak_mb"]
    print(f"checkpointed / plain peak memory: {ratio:.2f}")


if __name__ == "__main__":
    main()
