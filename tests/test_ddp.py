"""DDP on two CPU processes (gloo): both ranks train on their own shards, metrics are reduced, rank 0 records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from resnet_repro.data import CifarDataModule
from resnet_repro.data.tensor_loader import TensorLoader
from resnet_repro.data.transforms import Normalize
from resnet_repro.models import CifarResNet
from tests.helpers import TINY, run_cli


def test_ranks_take_disjoint_shards() -> None:
    images = torch.arange(96, dtype=torch.uint8).view(96, 1, 1, 1).expand(96, 3, 32, 32).contiguous()
    labels = torch.arange(96)
    norm = Normalize(images)
    shards = [list(TensorLoader(images, labels, 8, norm, True, False, rank=r, world_size=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 6
    seen = [torch.cat([y for _, y in shard]) for shard in shards]
    assert not set(seen[0].tolist()) & set(seen[1].tolist())
    assert sorted(seen[0].tolist() + seen[1].tolist()) == list(range(96))
    single = torch.cat([y for _, y in TensorLoader(images, labels, 8, norm, True, False)])
    assert torch.equal(torch.stack([seen[0].view(6, 8), seen[1].view(6, 8)], 1).flatten(), single)


@pytest.mark.slow
def test_ddp_two_cpu_processes(tiny_cifar: Path, tmp_path: Path) -> None:
    """Both ranks train on their shards of the global batch of 128 (64 each); rank 0 alone records the run; eval
    metrics are reduced over both shards."""
    result = run_cli(
        [
            *TINY,
            f"data.root={tiny_cifar}",
            "model.depth=8",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.deterministic=true",
            "trainer.precision=32-true",
            f"output_root={tmp_path}",
            "name=ddp",
            "data.batch_size=128",  # the global batch: 64 per process
            "trainer.max_steps=6",
            "trainer.val_check_interval=6",
            "optim.milestones=[4,5]",
            "data.test_size=99",  # odd: 50 + 49 images over the two ranks
        ],
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in result.stdout + result.stderr
    runs = list(tmp_path.rglob("results.json"))
    assert len(runs) == 1  # only rank 0 records the run
    run_dir = runs[0].parent
    results = json.loads(runs[0].read_text())
    assert results["status"] == "completed" and results["step"] == 6
    assert results["batch"] == {"global": 128, "per_device": 64, "processes": 2}
    assert results["images_seen_per_process"] == 6 * 64  # what rank 0 really drew: 64 per iteration
    assert results["recipe"]["data.batch_size"] == 128
    events = list((run_dir / "tb").glob("events.out.tfevents.*"))  # events.out.tfevents.<time>.<host>.<pid>.<n>
    assert events and len({e.name.split(".")[-2] for e in events}) == 1  # one process wrote TensorBoard logs
    assert "last.ckpt" in {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert len(json.loads((run_dir / "layer_responses.json").read_text())) == 7

    # 99 test images, 50 and 49 per rank: an error strictly between 0 and 100% that is k/99 cannot be one rank's
    wrong = results["metrics"]["test_err"]
    assert 0 < wrong < 100 and wrong * 0.99 == pytest.approx(round(wrong * 0.99), abs=1e-3)

    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    model = CifarResNet(8)
    model.load_state_dict(
        {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    )
    dm = CifarDataModule(root=tiny_cifar, val_size=50, test_size=99)
    dm.prepare_data()
    dm.setup("test")
    model.eval()
    with torch.no_grad():
        single = torch.cat([(model(x).argmax(1) != y).float() for x, y in dm.test_dataloader()]).mean() * 100
    # rank 1 evaluates with its own BN running statistics (BN is not synchronized on CPU), so allow a few images
    assert wrong == pytest.approx(single.item(), abs=5)
