"""Training: short real runs through the composed configs, results.json, logs, warm-up, determinism, resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import hydra
import pytest
import torch
from PIL import Image
from pytorch_lightning.callbacks import ModelCheckpoint

from resnet_repro.config import compose_config
from resnet_repro.errors import ConfigError
from resnet_repro.models import CifarResNet
from resnet_repro.report.tb_events import read_scalars
from resnet_repro.train import train
from resnet_repro.training.module import ResNetModule
from resnet_repro.use.evaluate import main as evaluate_main
from tests.helpers import REPO, TINY, run_cli


def test_cifar_run_records_everything(tiny_cifar: Path, tmp_path: Path) -> None:
    result = run_cli([*TINY, f"data.root={tiny_cifar}", f"hydra.run.dir={tmp_path}", "model.depth=8"])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "completed" and results["step"] == 24
    for key in (
        "train_err",
        "train_loss",
        "val_err",
        "val_loss",
        "test_err",
        "test_loss",
        "best_val_err",
        "best_val_step",
    ):
        assert key in results["metrics"], key
    assert 0 <= results["metrics"]["test_err"] <= 100
    assert results["params"] == 75_290  # ResNet-8 (n=1), counted by hand: 464 + 4,672 + 13,952 + 55,552 + 650
    assert results["wall_time_s"] > 0 and results["images_per_s"] > 0
    assert results["config"]["model"]["depth"] == 8 and results["config"]["optim"]["lr"] == 0.1
    assert len(results["git_commit"]) == 40
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert any(p.name.startswith("best-step=") for p in (tmp_path / "checkpoints").iterdir())
    responses = json.loads((tmp_path / "layer_responses.json").read_text())
    assert list(responses)[:2] == ["bn1", "layer1.0.bn1"] and len(responses) == 7
    assert all(v > 0 for v in responses.values())
    logged = read_scalars(tmp_path)
    for tag in ("train/err", "train/loss", "lr", "val/err", "test/err", "train/images_per_s", "layer_responses/std"):
        assert tag in logged, tag
    assert [s for s, _ in logged["train/err"]] == [4, 8, 12, 16, 20, 24]  # against the iteration number
    # the test set is evaluated once per evaluation step: the final weights by the test pass alone
    # (Lightning writes a validation at the step before the one it follows: 11 and 23; the test pass at 24)
    assert [s for s, _ in logged["test/err"]] == [11, 24] and [s for s, _ in logged["val/err"]] == [11, 23]
    assert dict(logged["test/err"])[24] == pytest.approx(results["metrics"]["test_err"])
    assert (tmp_path / "tb" / "hparams.yaml").is_file()
    # train_err is the mean over the final epoch (350 images / 16 = 21 iterations: 4..24), not the last log_every
    # window: the logged windows of iterations 5..24 plus iteration 4 alone, a 16-image batch's error
    assert results["metrics"]["train_window"] == 21
    windows = dict(logged["train/err"])
    iteration_4 = 21 * results["metrics"]["train_err"] - 4 * sum(windows[s] for s in (8, 12, 16, 20, 24))
    assert 0 <= iteration_4 <= 100 and iteration_4 / 6.25 == pytest.approx(round(iteration_4 / 6.25), abs=1e-3)
    # Sec. 4.1: gradient norms of every 3x3 layer's response, in TensorBoard every log_every iterations and averaged
    gradients = json.loads((tmp_path / "gradient_norms.json").read_text())
    assert list(gradients) == list(responses) and all(v > 0 for v in gradients.values())
    assert [s for s, _ in logged["gradients/layer1.0.bn1"]] == [4, 8, 12, 16, 20, 24]
    mean = sum(v for _, v in logged["gradients/layer1.0.bn1"]) / 6
    assert gradients["layer1.0.bn1"] == pytest.approx(mean, rel=1e-5)


def test_imagenet_family_trains(tiny_imagenet: Path, tmp_path: Path) -> None:
    cfg = compose_config(
        [
            "model=imagenet_resnet",
            "model.depth=18",
            "data=imagenet",
            "optim=sgd_imagenet",
            f"data.root={tiny_imagenet}",
            "data.num_classes=3",
            "data.batch_size=4",
            "data.eval_batch_size=6",
            "data.num_workers=0",
            "top5=true",
            "trainer.max_steps=2",
            "trainer.val_check_interval=2",
            "optim.milestones=[1]",
            "log_every=1",
            "progress_bar=false",
        ]
    )
    results = train(cfg, tmp_path)
    assert results["status"] == "completed" and results["step"] == 2
    metrics = results["metrics"]
    assert {"val_err", "val_err5", "test_err", "test_err5"} <= set(metrics)  # test = 10-crop
    assert metrics["test_err5"] == 0.0  # 3 classes: the true one is always among the top 5
    assert results["params"] == 11_689_512 - 512 * 997 - 997


def lr_points(run_dir: Path) -> dict[int, float]:
    return dict(read_scalars(run_dir)["lr"])


def test_warmup_returns_to_base_lr_then_follows_milestones(tiny_cifar: Path, tmp_path: Path) -> None:
    cfg = compose_config(
        [
            *TINY,
            f"data.root={tiny_cifar}",
            "net=resnet110",
            "model.depth=8",
            "trainer.max_steps=60",
            "trainer.val_check_interval=60",
            "optim.milestones=[40,50]",
            "optim.warmup_window=20",
            "log_every=1",
        ]
    )
    assert cfg.optim.warmup_lr == 0.01 and cfg.optim.warmup_until_err == 80
    results = train(cfg, tmp_path)
    assert results["status"] == "completed"
    lr = lr_points(tmp_path)
    assert lr[1] == pytest.approx(0.01)  # the lr in effect after each iteration
    warm = [s for s in sorted(lr) if s < 40 and lr[s] == pytest.approx(0.01)]
    assert warm and warm == list(range(1, len(warm) + 1))  # warm-up is one stretch at the start
    back = len(warm) + 1
    # checked every 10 iterations once a whole window of 20 iterations exists; ended when its mean fell below 80%
    assert back % 10 == 0 and 20 <= back < 40
    assert results["warmup_end_step"] == back and dict(read_scalars(tmp_path)["warmup/end_step"]) == {back: back}
    assert read_scalars(tmp_path)["warmup/window_err"][0][1] < 80
    assert all(lr[s] == pytest.approx(0.1) for s in range(back, 40))  # the base lr really returns
    assert all(lr[s] == pytest.approx(0.01) for s in range(40, 50))
    assert all(lr[s] == pytest.approx(0.001) for s in range(50, 61))


def test_no_warmup_by_default_and_lr_at_milestones(tiny_cifar: Path, tmp_path: Path) -> None:
    cfg = compose_config([*TINY, f"data.root={tiny_cifar}", "model.depth=8", "log_every=1"])
    train(cfg, tmp_path)
    lr = lr_points(tmp_path)
    assert [lr[s] for s in (1, 15, 16, 19, 20, 24)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_deterministic_runs_are_identical(tiny_cifar: Path, tmp_path: Path) -> None:
    overrides = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", "trainer.deterministic=true", "seed=3"]
    a = train(compose_config(overrides), tmp_path / "a")
    b = train(compose_config(overrides), tmp_path / "b")
    assert a["metrics"] == b["metrics"]
    c = train(compose_config([*overrides[:-1], "seed=4"]), tmp_path / "c")
    assert c["metrics"] != a["metrics"]


def test_compiled_run_matches_the_eager_one_and_measures_its_gradients(tiny_cifar: Path, tmp_path: Path) -> None:
    """compile=true: the unmeasured iterations compiled, the measured ones (gradient norms) and evaluation eager; the
    same seed gives the eager run's numbers up to float rounding (a compiled graph reorders and fuses operations)."""
    overrides = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", "trainer.max_steps=8", "optim.milestones=[4,6]"]
    overrides += ["trainer.val_check_interval=8", "log_every=4"]
    eager = train(compose_config(overrides), tmp_path / "eager")
    compiled = train(compose_config([*overrides, "compile=true"]), tmp_path / "compiled")
    assert compiled["status"] == "completed" and compiled["recipe_id"] == eager["recipe_id"]
    assert compiled["compile_s"] > 0 and eager["compile_s"] is None  # what compiling cost, in results.json
    # a sweep's next run in the same process compiles its own network (dynamo's caches start over for each run)
    again = train(compose_config([*overrides, "compile=true", "seed=1"]), tmp_path / "again")
    assert again["status"] == "completed" and again["compile_s"] > 0
    for key in ("train_loss", "test_loss", "val_loss"):
        assert compiled["metrics"][key] == pytest.approx(eager["metrics"][key], rel=1e-2), key  # 8 steps move them 13%
    norms = [json.loads((tmp_path / run / "gradient_norms.json").read_text()) for run in ("eager", "compiled")]
    assert list(norms[1]) == list(norms[0]) and all(v > 0 for v in norms[1].values())
    assert list(norms[1].values()) == pytest.approx(list(norms[0].values()), rel=1e-2)
    assert len(json.loads((tmp_path / "compiled" / "layer_responses.json").read_text())) == 7


DIGITS = """\
# Digits as image folders: 32x32, four classes, where a mirrored digit is no digit, so no flips.
defaults:
  - cifar10          # the 32x32 protocol of Sec. 4.2
  - _self_
name: digits
title: Digits
num_classes: 4
official: null       # image folders only
flip: false
"""


def test_a_new_dataset_is_one_config_file(tmp_path: Path) -> None:
    """A 32x32 image-folder dataset without flips: conf/data/digits.yaml on Hydra's search path, nothing else."""
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "digits.yaml").write_text(DIGITS)
    root = tmp_path / "digits"
    for split, count in (("train", 8), ("test", 2)):
        for digit in range(4):
            (root / split / str(digit)).mkdir(parents=True)
            for i in range(count):
                pixels = torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(root / split / str(digit) / f"{i}.png")
    overrides = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "data=digits", f"data.root={root}"]
    overrides += ["model.depth=8", "data.batch_size=8", "trainer.max_steps=2", "trainer.val_check_interval=2"]
    overrides += ["optim.milestones=[1]", "log_every=1", "progress_bar=false", f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_cli(overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "completed" and results["step"] == 2
    assert results["recipe"]["data.name"] == "digits" and results["recipe"]["data.flip"] is False
    assert results["recipe"]["model.num_classes"] == 4 and results["data"]["train_images"] == 32
    assert results["config"]["data"]["title"] == "Digits"
    # the training batches of this dataset are cropped, never mirrored
    cfg = compose_config([o for o in overrides if not o.startswith("hydra.run")])
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    _, (dy, dx, flips) = datamodule.train_dataloader().epoch_plan(0)
    assert not flips.any() and (dy != 4).any() and (dx != 4).any()


def test_config_values_are_checked_before_training(tiny_cifar: Path, tmp_path: Path) -> None:
    for override, key in [
        ("optim.lr=-0.1", "optim.lr"),
        ("optim.milestones=[10,30]", "optim.milestones"),
        ("trainer.max_steps=0", "trainer.max_steps"),
        ("optim.momentum=1.5", "optim.momentum"),
    ]:
        with pytest.raises(ConfigError, match=key):
            train(compose_config([*TINY, f"data.root={tiny_cifar}", override]), tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_resume_after_kill_gives_the_same_metrics(tiny_cifar: Path, tmp_path: Path) -> None:
    """SIGKILL a run after its first checkpoint; the same command resumes it and ends where a full run ends."""
    args = [
        *TINY,
        f"data.root={tiny_cifar}",
        "model.depth=8",
        "trainer.deterministic=true",
        "trainer.max_steps=48",
        "optim.milestones=[30,40]",
    ]
    through = run_cli([*args, f"hydra.run.dir={tmp_path / 'through'}"])
    assert through.returncode == 0, through.stderr[-3000:]

    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "resnet_repro.train", *args, f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (run_dir / "checkpoints" / "last.ckpt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (run_dir / "checkpoints" / "last.ckpt").exists() and not (run_dir / "results.json").exists()

    resumed = run_cli([*args, f"hydra.run.dir={run_dir}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout + resumed.stderr
    # mid-epoch (21 batches per epoch): the fast loader is resumable by Lightning's contract, so no warning
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["position"] == 48
    assert "not resumable" not in resumed.stdout + resumed.stderr
    a = json.loads((tmp_path / "through" / "results.json").read_text())
    b = json.loads((run_dir / "results.json").read_text())
    assert b["step"] == a["step"] == 48
    for key in ("test_err", "test_loss", "val_err", "val_loss", "train_err", "train_loss"):
        assert b["metrics"][key] == pytest.approx(a["metrics"][key], abs=1e-6), key
    # the resumed run continues the same TensorBoard run: one point per logged iteration
    assert [s for s, _ in read_scalars(run_dir)["train/err"]] == [
        s for s, _ in read_scalars(tmp_path / "through")["train/err"]
    ]

    again = run_cli([*args, f"hydra.run.dir={run_dir}"])  # a completed run is not trained again
    assert again.returncode == 0 and "is completed; skipping it" in again.stdout + again.stderr


def test_checkpoints_of_earlier_commits_resume_with_their_checkpoint_state() -> None:
    """Before RunCheckpoint existed, last.ckpt held Lightning's ModelCheckpoint state (best score and path) under
    ModelCheckpoint's key: RunCheckpoint takes it from there, and keeps a key of its own, so that a ModelCheckpoint
    the user adds by config never shares its state."""
    node = compose_config([]).callbacks.checkpoint
    ours = hydra.utils.instantiate(node)
    lightnings = ModelCheckpoint(**{key: value for key, value in node.items() if key != "_target_"})
    assert ours.state_key != lightnings.state_key
    ours.dirpath = lightnings.dirpath = "/run/checkpoints"
    best = "/run/checkpoints/best-step=900.ckpt"
    earlier = {**lightnings.state_dict(), "best_model_score": torch.tensor(7.5), "best_model_path": best}
    checkpoint = {"callbacks": {lightnings.state_key: earlier}}
    ours.on_load_checkpoint(None, None, checkpoint)  # Lightning calls it before load_state_dict
    ours.load_state_dict(checkpoint["callbacks"][ours.state_key])
    assert float(ours.best_model_score) == 7.5 and ours.best_model_path == best


def test_checkpoints_hold_the_network_once_and_earlier_aliases_load() -> None:
    """The compiled callable is not a submodule, so compile on or off writes the same keys; checkpoints of earlier
    versions held the network a second time (forward_fn.*, train_forward.*) and still load strictly."""
    eager, compiled = (ResNetModule(CifarResNet(8), compile=c) for c in (False, True))
    assert eager.state_dict().keys() == compiled.state_dict().keys()
    assert all(k.startswith("model.") or k == "warmup_errors" for k in eager.state_dict())
    earlier = dict(eager.state_dict())
    for alias in ("forward_fn.", "train_forward._orig_mod."):
        earlier.update({alias + k[len("model.") :]: v for k, v in eager.state_dict().items() if k.startswith("model.")})
    checkpoint = {"state_dict": earlier}
    compiled.on_load_checkpoint(checkpoint)  # Lightning calls it before loading the state dict, strictly
    compiled.load_state_dict(checkpoint["state_dict"], strict=True)
    assert torch.equal(compiled.model.conv1.weight, eager.model.conv1.weight)


def test_last_ckpt_holds_the_final_weights_when_the_best_came_earlier(tiny_cifar: Path, tmp_path: Path) -> None:
    """Lightning 2.6 writes last.ckpt only when it writes a best: with a val split whose best came earlier, the
    final weights were nowhere on disk and `--which last` took the best's again. Monitoring the step (mode min)
    makes the first evaluation the best for sure; last.ckpt must still hold the final step."""
    args = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={tmp_path}"]
    result = run_cli([*args, "callbacks.checkpoint.monitor=step", "callbacks.checkpoint.mode=min"])
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best-step=12.ckpt", "last.ckpt"]
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 24
    recorded = json.loads((tmp_path / "results.json").read_text())["metrics"]["test_err"]  # the final weights'
    evaluate_main([str(tmp_path), "--data", str(tiny_cifar), "--which", "last"])
    (evaluation,) = json.loads((tmp_path / "eval.json").read_text()).values()
    assert evaluation["top1_err"] == pytest.approx(recorded, abs=1e-4)


def test_truncated_leftovers_are_not_trusted(tiny_cifar: Path, tmp_path: Path) -> None:
    """A kill during a write elsewhere left a truncated checkpoint and results.json: the run is redone."""
    args = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={tmp_path}"]
    assert run_cli(args).returncode == 0
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "results.json").write_text('{"status": "compl')
    result = run_cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" not in result.stdout + result.stderr
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "completed"
    aside = list((tmp_path / "checkpoints").glob("last.ckpt.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"PK\x03\x04 truncated"  # kept, never deleted


def test_nan_loss_stops_with_diverged_status(tiny_cifar: Path, tmp_path: Path) -> None:
    result = run_cli([*TINY, f"data.root={tiny_cifar}", "model.depth=8", "optim.lr=1e30", f"hydra.run.dir={tmp_path}"])
    assert result.returncode == 1
    assert "training diverged: the loss is NaN or infinite at step" in result.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "diverged" and 0 <= results["step"] < 24


def test_classic_loader_order_is_a_function_of_seed_and_epoch(tiny_cifar: Path, tmp_path: Path) -> None:
    """The torchvision loader resumes at epoch granularity: a run resumed at an epoch boundary sees the epoch
    order of an uninterrupted one; resumed inside an epoch, it says what that means."""
    from resnet_repro.data.dataloader import EpochShuffle

    first, resumed = EpochShuffle(400, seed=3), EpochShuffle(400, seed=3)
    first.set_epoch(0), list(first), first.set_epoch(1), list(first), first.set_epoch(2)
    resumed.set_epoch(2)  # a fresh process at the start of epoch 2
    assert list(first) == list(resumed) and sorted(resumed) == list(range(400))
    first.set_epoch(3)
    assert list(first) != list(resumed)

    args = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", "data.loader=torchvision", "data.num_workers=0"]
    run_dir = tmp_path / "run"
    # a callback added by config alone stops the run at its first validation (iteration 12 of 24): not completed
    stop = ["+callbacks.stop._target_=pytorch_lightning.callbacks.EarlyStopping", "+callbacks.stop.monitor=val/err"]
    stop += ["+callbacks.stop.stopping_threshold=101", "+callbacks.stop.check_on_train_epoch_end=false"]
    stopped = run_cli([*args, *stop, f"hydra.run.dir={run_dir}"])
    assert stopped.returncode == 1 and "training stopped at step 12 of 24" in stopped.stderr, stopped.stderr[-3000:]
    # the same recipe, from that run's checkpoint at iteration 12 (21 batches per epoch), in another directory
    resumed = run_cli([*args, f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={tmp_path / 'b'}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    out = resumed.stdout + resumed.stderr
    assert "resuming at iteration 12, 12 iterations into epoch 0: the classic (torchvision) loader resumes at " in out
    assert json.loads((tmp_path / "b" / "results.json").read_text())["step"] == 24


@pytest.mark.slow
def test_resnet20_learns_real_cifar10(real_cifar: Path, tmp_path: Path) -> None:
    """ResNet-20 for 300 iterations on the real CIFAR-10 images reaches a test error far below chance (90%)."""
    cfg = compose_config(
        [
            f"data.root={real_cifar}",
            "trainer.max_steps=300",
            "trainer.val_check_interval=150",
            "optim.milestones=[200,250]",
            "progress_bar=false",
            "data.eval_batch_size=500",
        ]
    )
    results = train(cfg, tmp_path)
    assert results["status"] == "completed"
    assert results["metrics"]["test_err"] < 60
    assert results["metrics"]["train_err"] < 70
