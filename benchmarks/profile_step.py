"""Where a training step's time goes: torch.profiler over real training steps of `python -m resnet_repro.train`.

    python benchmarks/profile_step.py --data /path/to/cifar10 [--depths 20 110] [--precision 32-true] [--compile]

For each depth, the project's own training path (Lightning, the fast data path, the project's defaults) runs
`--warmup` steps, then `--steps` steps under torch.profiler; the profiled wall time is split by the operators'
self CPU time into: conv forward, conv backward, BN (forward and backward), the optimizer (SGD.step, all of its
operators), other operators (ReLU, additions, option A's padding, the loss, the augmentation on the compute
thread, copies), and the rest: time in no operator (Python, Lightning's hooks and loops, the autograd engine).
Printed as a markdown table, one row per depth, in percent of the step and ms per step. `--compile`: the same
with compile=true (the run is one step longer, so that its last step, which logs and so runs eager, is not
profiled); the kernels inductor writes (fused BN, ReLU, additions) are the self time of its compiled graphs, in
their own column; the convolutions it leaves to oneDNN stay in theirs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.profiler import ProfilerActivity, profile

from resnet_repro.runs.provenance import machine

CATEGORIES = {  # operator name fragments, in order: the first that matches takes the operator
    "conv forward": ("mkldnn_convolution", "_convolution", "conv2d", "convolution"),
    "conv backward": ("convolution_backward",),
    "BN": ("batch_norm",),
}
OPTIMIZER = "Optimizer.step#SGD.step"
UPDATES = {"aten::add_", "aten::mul_", "aten::add", "aten::mul", "aten::clone", "aten::detach", "aten::copy_"}


class Profiled(pl.Callback):
    """Profiles training steps [warmup, warmup + steps) and writes their split (ms per step) to `out` as JSON.
    Added to the real entry point by config alone: +callbacks.profile._target_=__main__.Profiled ..."""

    def __init__(self, warmup: int, steps: int, out: str) -> None:
        self.warmup, self.steps, self.out = warmup, steps, Path(out)
        self.prof: profile | None = None
        self.started = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        if trainer.global_step == self.warmup:
            self.prof = profile(activities=[ProfilerActivity.CPU])
            self.prof.__enter__()
            self.started = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if self.prof is not None and trainer.global_step == self.warmup + self.steps:
            wall_s = time.perf_counter() - self.started
            self.prof.__exit__(None, None, None)
            self.out.write_text(json.dumps(split(self.prof, wall_s, self.steps)))


def split(prof: profile, wall_s: float, steps: int) -> dict[str, float]:
    """ms per step of each category (see the module docstring)."""
    out = {name: 0.0 for name in (*CATEGORIES, "optimizer", "other operators", "fused kernels (compile)")}
    for event in prof.events():
        if "CompiledFxGraph" in event.name or event.name.startswith("CompiledFunction"):
            out["fused kernels (compile)"] += event.self_cpu_time_total  # inductor's own kernels run in these
            continue
        if not event.name.startswith("aten::"):
            continue
        name = event.name.lower()
        category = next((c for c, parts in CATEGORIES.items() if any(p in name for p in parts)), "other operators")
        if category == "conv forward" and "backward" in name:
            category = "conv backward"
        out[category] += event.self_cpu_time_total
        # Lightning runs forward and backward inside optimizer.step(closure): the optimizer's own work is the
        # parameter updates called directly in it
        if event.name in UPDATES and event.cpu_parent is not None and event.cpu_parent.name == OPTIMIZER:
            out["other operators"] -= event.cpu_time_total
            out["optimizer"] += event.cpu_time_total
    per_step = {k: v / 1000 / steps for k, v in out.items()}  # microseconds -> ms per step
    per_step["no operator (Python, Lightning, autograd)"] = wall_s * 1000 / steps - sum(per_step.values())
    return per_step


def profile_depth(data: str, depth: int, precision: str, warmup: int, steps: int, compile: bool) -> dict[str, float]:
    from hydra import compose, initialize_config_dir

    from resnet_repro.config import CONFIG_DIR, VERSION_BASE
    from resnet_repro.train import train

    with tempfile.TemporaryDirectory() as out, initialize_config_dir(config_dir=CONFIG_DIR, version_base=VERSION_BASE):
        total = warmup + steps + 1  # the last step logs (eager under compile=true): not profiled
        split_file = Path(out) / "split.json"
        cfg = compose(
            config_name="train",
            overrides=[
                f"data.root={data}",
                f"model.depth={depth}",
                f"trainer.precision={precision}",
                f"trainer.max_steps={total}",
                f"trainer.val_check_interval={total}",
                "data.eval_batch_size=100",
                "optim.milestones=[]",
                "data.test_size=1000",
                "progress_bar=false",
                "trainer.enable_model_summary=false",
                f"compile={compile}",
                f"log_every={total}",  # no logging step inside the profiled ones
                "+callbacks.profile._target_=__main__.Profiled",  # the real entry point, with one more callback
                f"+callbacks.profile.warmup={warmup}",
                f"+callbacks.profile.steps={steps}",
                f"+callbacks.profile.out={split_file}",
            ],
        )
        train(cfg, Path(out) / "run")
        return json.loads(split_file.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 110])
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="profile with compile=true")
    args = parser.parse_args()
    where = f"{torch.get_num_threads()} torch threads, precision {args.precision}, compile={args.compile}"
    print(f"machine: {machine()}, {where}", flush=True)
    rows = {
        depth: profile_depth(args.data, depth, args.precision, args.warmup, args.steps, args.compile)
        for depth in args.depths
    }
    names = list(next(iter(rows.values())))
    print("| net | ms per step | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for depth, row in rows.items():
        total = sum(row.values())
        cells = " | ".join(f"{100 * v / total:.1f}% ({v:.1f})" for v in row.values())
        print(f"| ResNet-{depth} | {total:.1f} | {cells} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
