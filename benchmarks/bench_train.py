"""Training-speed benchmark on the real CIFAR-10 images: ours against the common reference loop, like with like.

    python benchmarks/bench_train.py --data /path/to/cifar10 [--depths 20 56 110]      (make bench DATA=...)
    python benchmarks/bench_train.py --data /path/to/cifar10 --accelerator gpu --workers 8   (bench_gpu.py)

For each precision (fp32, the project's default; and bf16 autocast where the hardware computes bf16 natively) and
each CIFAR ResNet depth, images per second of training steps at batch 128, all in one run on one machine:
  (a) ours: the real `python -m resnet_repro.train` path (Lightning, fast data path, the project's defaults) in
      that precision, read from the run's `train/images_per_s` log;
  (b) reference: the common loop in the same precision: the model fed by a torchvision DataLoader with PIL
      transforms (RandomCrop(32, 4), RandomHorizontalFlip, ToTensor, Normalize; `--workers`, 2 by default), SGD
      as in the paper, the per-step `loss.item()` such loops log; for bf16, autocast with channels_last;
  (c) the same bare loop fed by our fast data path, channels_last, same precision: (a)/(c) is Lightning's cost;
  (d) the limits, measured in the same run and precision: a CIFAR-shaped 3x3 convolution forward + backward at
      batch 128, channels_last (16 channels at 32x32, 32 at 16x16, 64 at 8x8; a ResNet spends equal FLOPs in
      the three, so the limit is their harmonic mean), and a 4096x4096 matmul. Utilization = images/s x training
      FLOPs per image (torch.utils.flop_counter) / the conv limit.
Each variant runs in its own process (peak RSS is that process's, and apart that of its largest child). Throughput is
the median over windows of `--window` steps with the first window (warm-up, and compilation) left out. `--compile`
adds (a) and (c) with torch.compile (its default mode), and (a)'s compile time (results.json `compile_s`; cold
when TORCHINDUCTOR_CACHE_DIR is a new folder); in (a) the iterations that log, one per `--window`, run eager, as
in training. On a GPU (`--accelerator gpu`) the same table is measured there, always with the compiled columns
and CUDA graphs (torch.compile's "reduce-overhead" mode) for (c); bf16 on a GPU is always native.
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
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from resnet_repro.runs.provenance import machine

BATCH = 128


def peak_rss_mb() -> dict[str, float]:
    """Peak RSS of this process and of its largest child (data loader workers; a forked `git`, whose RSS counts
    the pages it shares with this process), kept apart: their sum would count shared pages twice."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"peak_rss_mb": own / 1024, "child_peak_rss_mb": children / 1024}  # kilobytes on Linux


def device_of(accelerator: str) -> torch.device:
    return torch.device("cuda" if accelerator == "gpu" else "cpu")


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_windows(batches, step, steps: int, window: int, device: torch.device) -> float:
    """Median images/s over windows of `window` steps, the first window excluded."""
    rates, start, n = [], time.perf_counter(), 0
    for i, (x, y) in enumerate(batches):
        if i == steps:
            break
        step(x, y)
        n += len(y)
        if (i + 1) % window == 0:
            synchronize(device)
            now = time.perf_counter()
            rates.append(n / (now - start))
            start, n = now, 0
    return statistics.median(rates[1:])


def sgd_step(model: torch.nn.Module, sync: bool, bf16: bool, device: torch.device, compile_mode: str):
    """One training step of `model` (SGD as in the paper); `compile_mode`: "off", "default" or "reduce-overhead"
    (torch.compile with CUDA graphs)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    forward = model if compile_mode == "off" else torch.compile(model, mode=compile_mode)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if sync:
            loss.item()  # what a reference loop logs every step

    return step


def endless(loader):
    while True:
        yield from loader


def cifar_splits(data: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images (uint8, N x 3 x 32 x 32) and labels of the CIFAR-10 copy at `data`."""
    from resnet_repro.data import CifarDataModule

    dm = CifarDataModule(root=data)
    dm.prepare_data()
    dm.setup("fit")
    return dm.splits["train"]


def worker_reference(args: argparse.Namespace, depth: int, precision: str, compile_mode: str) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_data import reference_loader

    from resnet_repro.models import CifarResNet

    device = device_of(args.accelerator)
    bf16 = precision == "bf16-mixed"
    loader = reference_loader(
        *cifar_splits(args.data), batch_size=BATCH, workers=args.workers, pin=device.type == "cuda"
    )
    model = CifarResNet(depth).train().to(device)
    if bf16:  # how such loops opt into bf16: autocast, with channels_last
        model = model.to(memory_format=torch.channels_last)
    layout = torch.channels_last if bf16 else torch.contiguous_format
    batches = ((x.to(device, non_blocking=True, memory_format=layout), y.to(device)) for x, y in endless(loader))
    step = sgd_step(model, sync=True, bf16=bf16, device=device, compile_mode=compile_mode)
    return {"images_per_s": timed_windows(batches, step, args.steps, args.window, device)}


def worker_fast_loop(args: argparse.Namespace, depth: int, precision: str, compile_mode: str) -> dict[str, float]:
    from resnet_repro.data.tensor_loader import TensorLoader
    from resnet_repro.data.transforms import Normalize
    from resnet_repro.models import CifarResNet

    device = device_of(args.accelerator)
    images, labels = cifar_splits(args.data)
    normalize = Normalize(images).to(device)
    loader = TensorLoader(images.to(device), labels.to(device), BATCH, normalize, True, True, channels_last=True)
    model = CifarResNet(depth).train().to(device, memory_format=torch.channels_last)
    step = sgd_step(model, sync=False, bf16=precision == "bf16-mixed", device=device, compile_mode=compile_mode)
    return {"images_per_s": timed_windows(endless(loader), step, args.steps, args.window, device)}


def worker_ours(args: argparse.Namespace, depth: int, precision: str, compile_mode: str) -> dict[str, float | None]:
    from resnet_repro import train
    from resnet_repro.report.tb_events import read_scalars

    with tempfile.TemporaryDirectory() as out:
        sys.argv = [
            "train",
            f"data.root={args.data}",
            f"model.depth={depth}",
            f"trainer.max_steps={args.steps}",
            f"trainer.val_check_interval={args.steps}",
            "optim.milestones=[]",
            f"log_every={args.window}",
            "data.val_size=1000",
            f"trainer.precision={precision}",
            f"trainer.accelerator={args.accelerator}",  # like with like: every variant and limit on one device
            f"compile={compile_mode != 'off'}",  # the project's switch: torch.compile's default mode
            "data.test_size=1000",
            "progress_bar=false",
            f"hydra.run.dir={out}",
            "trainer.enable_model_summary=false",
        ]
        train.main()
        rates = read_scalars(Path(out), ["train/images_per_s"])["train/images_per_s"]
        compile_s = json.loads((Path(out) / "results.json").read_text()).get("compile_s")
        return {"images_per_s": statistics.median(v for _, v in rates[1:]), "compile_s": compile_s}


def precisions(accelerator: str) -> list[str]:
    """fp32 (the project's default), and bf16 autocast where the device computes bf16 natively (a CUDA GPU of
    compute capability 8 or more; a CPU with AVX512-BF16 or AMX)."""
    if accelerator == "gpu":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        native = any(
            getattr(torch.cpu, name, lambda: False)()
            for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        )
    return ["32-true", "bf16-mixed"] if native else ["32-true"]


def median_seconds(work: Callable[[], object], device: torch.device, repeats: int, warmups: int) -> float:
    """The median wall time of `work()` over `repeats` calls after `warmups` untimed ones, the device's queued work
    waited for around each timed call."""
    for _ in range(warmups):
        work()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        work()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conv_forward_backward(conv: torch.nn.Conv2d, x: torch.Tensor, grad: torch.Tensor, bf16: bool) -> None:
    """`conv` forward (in bf16 autocast or not) and its two gradients, of the input and the weight (not accumulated)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        y = conv(x)
    torch.autograd.grad(y, (x, conv.weight), grad.to(y.dtype))


def conv_limit(precision: str, device: torch.device, repeats: int = 5) -> float:
    """FLOP/s of a CIFAR-shaped 3x3 convolution forward + backward (input and weight gradients) at batch 128,
    channels_last, in `precision`: the harmonic mean over the three stage shapes (equal FLOPs in each)."""
    rates = []
    for channels, size in ((16, 32), (32, 16), (64, 8)):
        conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(
            device, memory_format=torch.channels_last
        )
        x = torch.randn(BATCH, channels, size, size, device=device).to(memory_format=torch.channels_last)
        x.requires_grad_()
        grad = torch.randn(BATCH, channels, size, size, device=device).to(memory_format=torch.channels_last)
        flops = 3 * 2 * BATCH * channels * channels * 9 * size * size  # forward, input grad, weight grad
        work = partial(conv_forward_backward, conv, x, grad, precision == "bf16-mixed")
        rates.append(flops / median_seconds(work, device, repeats, warmups=2))
    return len(rates) / sum(1 / r for r in rates)


def matmul_ceiling(dtype: torch.dtype, device: torch.device, n: int = 4096, repeats: int = 5) -> float:
    """FLOP/s of an n x n matmul in `dtype`, the median of `repeats` after one warm-up."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    return 2 * n**3 / median_seconds(lambda: a @ b, device, repeats, warmups=1)


def train_flops_per_image(depth: int) -> float:
    from resnet_repro.models import CifarResNet

    model = CifarResNet(depth)
    x, y = torch.randn(BATCH, 3, 32, 32), torch.randint(0, 10, (BATCH,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / BATCH


WORKERS = {"ours": worker_ours, "reference": worker_reference, "fast_loop": worker_fast_loop}


def run_worker(name: str, depth: int, precision: str, args: argparse.Namespace, compile_mode: str = "off") -> dict:
    """One variant in its own process: {"images_per_s", "peak_rss_mb", "child_peak_rss_mb"}."""
    cmd = [sys.executable, __file__, "--worker", name, "--depth", str(depth), "--precision", precision]
    cmd += ["--data", args.data, "--steps", str(args.steps), "--window", str(args.window)]
    cmd += ["--accelerator", args.accelerator, "--workers", str(args.workers), "--compile-mode", compile_mode]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((s for s in out.stdout.splitlines() if s.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"variant {name} ({compile_mode}) failed for depth {depth} in {precision}:\n{out.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a CIFAR-10 root (official archive or image folders)")
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 56, 110])
    parser.add_argument("--steps", type=int, default=60, help="training steps per variant")
    parser.add_argument("--window", type=int, default=10, help="steps per timing window")
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--workers", type=int, default=2, help="data loader workers of the reference loop")
    parser.add_argument("--compile", action="store_true", help="also (a) and (c) with torch.compile (always on a GPU)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--depth", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--compile-mode", default="off", help=argparse.SUPPRESS)
    return parser


def like_with_like(args: argparse.Namespace) -> dict[str, dict[int, float]]:
    """Print the table of each precision (limits, ours, reference, bare loop); return ours' images/s by precision
    and depth (compile off)."""
    device = device_of(args.accelerator)
    gpu = args.accelerator == "gpu"
    compiled = gpu or args.compile  # also with torch.compile (on a GPU, CUDA graphs for the bare loop too)
    flops = {depth: train_flops_per_image(depth) for depth in args.depths}
    ours: dict[str, dict[int, float]] = {}
    for precision in precisions(args.accelerator):
        dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float32
        conv, matmul = conv_limit(precision, device), matmul_ceiling(dtype, device)
        print(
            f"\n{precision}: limits measured now: conv3x3 fwd+bwd {conv / 1e9:.1f} GFLOP/s, "
            f"matmul {matmul / 1e9:.1f} GFLOP/s"
        )
        extra = " (a) compiled | compile s | (c) compiled |" if compiled else ""
        extra += " (c) CUDA graphs, forward + backward |" if gpu else ""
        print(
            "| net | (a) ours | (b) reference | a/b | (c) bare loop, our data | a/c | ours GFLOP/s | of conv limit "
            f"| peak RSS MB a / b / c (+ largest child) |{extra}"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|" + "---:|" * (3 * compiled + gpu))
        ours[precision] = {}
        for depth in args.depths:
            results = {name: run_worker(name, depth, precision, args) for name in ("ours", "reference", "fast_loop")}
            a, b, c = (results[k]["images_per_s"] for k in ("ours", "reference", "fast_loop"))
            ours[precision][depth] = a
            rss = " / ".join(
                f"{results[k]['peak_rss_mb']:,.0f} (+{results[k]['child_peak_rss_mb']:,.0f})"
                for k in ("ours", "reference", "fast_loop")
            )
            achieved = a * flops[depth]
            row = (
                f"| ResNet-{depth} | {a:.1f} | {b:.1f} | {a / b:.2f} | {c:.1f} | {a / c:.2f} | "
                f"{achieved / 1e9:.1f} | {achieved / conv:.1%} | {rss} |"
            )
            if compiled:  # ours: the iterations that log (one per --window) run eager, as in training (module.py)
                ours_compiled = run_worker("ours", depth, precision, args, "default")
                row += f" {ours_compiled['images_per_s']:.1f} | {ours_compiled['compile_s']:.1f} |"
                row += f" {run_worker('fast_loop', depth, precision, args, 'default')['images_per_s']:.1f} |"
            if gpu:
                row += f" {run_worker('fast_loop', depth, precision, args, 'reduce-overhead')['images_per_s']:.1f} |"
            print(row, flush=True)
    return ours


def main() -> None:
    args = parser().parse_args()
    if args.worker:  # one variant in this process; print its result as JSON
        result = WORKERS[args.worker](args, args.depth, args.precision, args.compile_mode)
        print("RESULT " + json.dumps({**result, **peak_rss_mb()}))
        return
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        sys.exit("--accelerator gpu: no CUDA GPU on this machine")
    where = torch.cuda.get_device_name() if args.accelerator == "gpu" else f"{torch.get_num_threads()} torch threads"
    print(f"machine: {machine()}, {where}")
    like_with_like(args)


if __name__ == "__main__":
    main()
