"""Training-speed benchmark on the real CIFAR-10 images: ours against the common reference loop, same machine.

    python benchmarks/bench_train.py --data /path/to/cifar10 [--depths 20 56 110]      (make bench DATA=...)

For each CIFAR ResNet depth, images per second of training steps at batch 128:
  (a) ours: the real `python -m resnet_repro.train` path (Lightning, fast data path, the project's defaults but
      for the precision: bf16 autocast where the hardware has native bf16, an opt-in), read from the run's
      `train/images_per_s` log;
  (b) reference: a bare loop over the same model fed by a torchvision DataLoader with PIL transforms
      (RandomCrop(32, 4), RandomHorizontalFlip, ToTensor, Normalize; 2 workers), SGD as in the paper, with the
      per-step `loss.item()` such loops log;
  (c) the same bare loop fed by our fast data path, with channels_last and the precision of (a), so that (a)/(c)
      is Lightning's overhead alone;
  (d) the machine's matmul ceiling in the precision (a) trains in (fp32, or bf16 where the hardware has it) and
      each model's training FLOPs per image (torch.utils.flop_counter), giving
      utilization = images/s x FLOPs/image / ceiling.
Each variant runs in its own process (peak RSS is that process's, data loader workers included). Throughput is
the median over windows of `--window` steps with the first window (warm-up) left out.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from resnet_repro.provenance import machine

BATCH = 128


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024  # kilobytes on Linux


def timed_windows(batches, step, steps: int, window: int) -> float:
    """Median images/s over windows of `window` steps, the first window excluded."""
    rates, start, n = [], time.perf_counter(), 0
    for i, (x, y) in enumerate(batches):
        if i == steps:
            break
        step(x, y)
        n += len(y)
        if (i + 1) % window == 0:
            now = time.perf_counter()
            rates.append(n / (now - start))
            start, n = now, 0
    return statistics.median(rates[1:])


def sgd_step(model: torch.nn.Module, sync: bool, bf16: bool = False):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if sync:
            loss.item()  # what a reference loop logs every step

    return step


def endless(loader):
    while True:
        yield from loader


def worker_reference(data: str, depth: int, steps: int, window: int) -> float:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_data import reference_loader

    from resnet_repro.data import CifarDataModule
    from resnet_repro.models import CifarResNet

    dm = CifarDataModule(root=data)
    dm.prepare_data()
    dm.setup("fit")
    loader = reference_loader(*dm.splits["train"], batch_size=BATCH)
    model = CifarResNet(depth).train()
    return timed_windows(endless(loader), sgd_step(model, sync=True), steps, window)


def worker_fast_loop(data: str, depth: int, steps: int, window: int) -> float:
    from resnet_repro.data import CifarDataModule
    from resnet_repro.models import CifarResNet

    dm = CifarDataModule(root=data, channels_last=True)
    dm.prepare_data()
    dm.setup("fit")
    model = CifarResNet(depth).train().to(memory_format=torch.channels_last)
    step = sgd_step(model, sync=False, bf16=bench_precision() == "bf16-mixed")
    return timed_windows(endless(dm.train_dataloader()), step, steps, window)


def worker_ours(data: str, depth: int, steps: int, window: int) -> float:
    from resnet_repro import train
    from resnet_repro.tb_events import read_scalars

    with tempfile.TemporaryDirectory() as out:
        sys.argv = [
            "train",
            f"data.root={data}",
            f"model.depth={depth}",
            f"trainer.max_steps={steps}",
            f"trainer.val_check_interval={steps}",
            "optim.milestones=[]",
            f"log_every={window}",
            "data.val_size=1000",
            f"trainer.precision={bench_precision()}",
            "data.test_size=1000",
            "progress_bar=false",
            f"hydra.run.dir={out}",
            "trainer.enable_model_summary=false",
        ]
        train.main()
        rates = read_scalars(Path(out), ["train/images_per_s"])["train/images_per_s"]
        return statistics.median(v for _, v in rates[1:])


def bench_precision() -> str:
    """bf16 autocast where the hardware computes bf16 natively, else fp32: the fastest faithful-enough setting."""
    from resnet_repro.provenance import native_bf16

    return "bf16-mixed" if native_bf16() else "32-true"


def matmul_ceiling(dtype: torch.dtype, n: int = 4096, repeats: int = 5) -> float:
    """FLOP/s of an n x n matmul in `dtype`, the median of `repeats` after one warm-up."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def train_flops_per_image(depth: int) -> float:
    from resnet_repro.models import CifarResNet

    model = CifarResNet(depth)
    x, y = torch.randn(BATCH, 3, 32, 32), torch.randint(0, 10, (BATCH,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / BATCH


WORKERS = {"ours": worker_ours, "reference": worker_reference, "fast_loop": worker_fast_loop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a CIFAR-10 root (official archive or image folders)")
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 56, 110])
    parser.add_argument("--steps", type=int, default=60, help="training steps per variant")
    parser.add_argument("--window", type=int, default=10, help="steps per timing window")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--depth", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:  # one variant in this process; print its result as JSON
        rate = WORKERS[args.worker](args.data, args.depth, args.steps, args.window)
        print("RESULT " + json.dumps({"images_per_s": rate, "peak_rss_mb": peak_rss_mb()}))
        return

    precision = bench_precision()
    fp32, bf16 = matmul_ceiling(torch.float32), matmul_ceiling(torch.bfloat16)
    ceiling = bf16 if precision == "bf16-mixed" else fp32
    print(f"machine: {machine()}, {torch.get_num_threads()} torch threads, our precision: {precision}")
    print(
        f"(d) matmul ceiling (4096x4096): fp32 {fp32 / 1e9:.1f} GFLOP/s, bf16 {bf16 / 1e9:.1f} GFLOP/s; "
        f"utilization of (a) against the {'bf16' if ceiling == bf16 else 'fp32'} one"
    )
    header = (
        f"{'net':>10} | {'(a) ours':>9} | {'(b) ref':>9} | {'(c) loop':>9} | {'a/b':>5} | {'a/c':>5} | "
        f"{'GFLOP/img':>9} | {'util a':>6} | peak RSS MB a / b / c"
    )
    print(header)
    for depth in args.depths:
        results = {}
        for name in ("ours", "reference", "fast_loop"):
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--depth",
                str(depth),
                "--data",
                args.data,
                "--steps",
                str(args.steps),
                "--window",
                str(args.window),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            line = next((s for s in out.stdout.splitlines() if s.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"variant {name} failed for depth {depth}:\n{out.stderr[-3000:]}")
            results[name] = json.loads(line[len("RESULT ") :])
        a, b, c = (results[k]["images_per_s"] for k in ("ours", "reference", "fast_loop"))
        flops = train_flops_per_image(depth)
        rss = " / ".join(f"{results[k]['peak_rss_mb']:,.0f}" for k in ("ours", "reference", "fast_loop"))
        print(
            f"{'ResNet-' + str(depth):>10} | {a:9.1f} | {b:9.1f} | {c:9.1f} | {a / b:5.2f} | {a / c:5.2f} | "
            f"{flops / 1e9:9.3f} | {a * flops / ceiling:6.1%} | {rss}",
            flush=True,
        )


if __name__ == "__main__":
    main()
