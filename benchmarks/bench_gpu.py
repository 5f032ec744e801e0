"""GPU benchmark: bench_train.py's like-with-like table on a CUDA GPU, and the projected `make reproduce-cifar` time.

    python benchmarks/bench_gpu.py --data /path/to/cifar10 [--workers 8]        (make bench-gpu DATA=...)

On the GPU, in fp32 (the project's default; convolutions in TF32 where cuDNN allows it, PyTorch's default, which
the output states) and in bf16 autocast: (a) ours (`python -m resnet_repro.train`, compile off and on), (b) the
common reference loop (torchvision DataLoader + PIL transforms, `--workers` processes, pinned memory), (c) the bare
loop on our data path (eager, torch.compile, and CUDA graphs through torch.compile's "reduce-overhead" mode, which
captures forward and backward; the optimizer step stays eager), all with cuDNN's defaults (no autotuning), the
conv3x3 and matmul limits measured in the same run, for ResNet-20/32/44/56/110. Then the projection of the whole
Fig. 6 sweep (`make reproduce-cifar`, one seed, runs in sequence on this GPU): 64k iterations of each of its nine
nets at (a)'s measured rate in the default precision (a plain net at the rate of the ResNet of its depth: the same
convolutions, without the additions), plus 64 evaluations of the 10k test images at a measured inference rate.
Without a GPU it says so and exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_train import like_with_like, median_seconds, parser  # noqa: E402

from resnet_repro.models import CifarResNet  # noqa: E402
from resnet_repro.runs.provenance import machine  # noqa: E402

FIG6 = [("plain", d) for d in (20, 32, 44, 56)] + [("resnet", d) for d in (20, 32, 44, 56, 110)]  # experiment=fig6
MAX_STEPS, EVALS, TEST_IMAGES, BATCH = 64_000, 64, 10_000, 128  # Sec. 4.2; val_check_interval 1000; the test set


def eval_images_per_s(depth: int, precision: str, device: torch.device, batch: int = 1000, repeats: int = 10) -> float:
    """Inference images/s of ResNet-`depth` at the evaluation batch (1000), channels_last, in `precision`."""
    model = CifarResNet(depth).eval().to(device, memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 32, 32, device=device).to(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
        return batch / median_seconds(lambda: model(x), device, repeats, warmups=2)


def main() -> None:
    cli = parser()
    cli.set_defaults(accelerator="gpu", workers=8, depths=[20, 32, 44, 56, 110])
    args = cli.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU on this machine: nothing to measure (this benchmark needs one)")
        return
    missing = sorted({depth for _, depth in FIG6} - set(args.depths))
    if missing:
        sys.exit(f"the projection of the Fig. 6 sweep needs --depths to include {missing}")
    print(
        f"machine: {machine()}, GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}; fp32 convolutions "
        f"in TF32: {torch.backends.cudnn.allow_tf32}, fp32 matmuls: {torch.get_float32_matmul_precision()}"
    )
    ours = like_with_like(args)
    device = torch.device("cuda")
    for precision, rates in ours.items():
        total_h = 0.0
        print(f"\nprojected `make reproduce-cifar` in {precision} (compile off), one seed, nets in sequence:")
        for kind, depth in FIG6:
            train_s = MAX_STEPS * BATCH / rates[depth]
            eval_s = EVALS * TEST_IMAGES / eval_images_per_s(depth, precision, device)
            total_h += (train_s + eval_s) / 3600
            print(f"  {kind}-{depth}: {train_s / 3600:.2f} h training + {eval_s / 60:.1f} min evaluation", flush=True)
        print(f"  the whole sweep: {total_h:.2f} h")


if __name__ == "__main__":
    main()
