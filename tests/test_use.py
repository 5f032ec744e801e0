"""Using a trained run: load_model, export, torch.hub and evaluate, on a run trained for real on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from resnet_repro import load_model
from resnet_repro.data import CifarDataModule
from resnet_repro.models import CifarResNet, ImageNetResNet
from resnet_repro.use.evaluate import main as evaluate_main
from resnet_repro.use.export import main as export_main
from tests.helpers import REPO, TINY, refused, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_run(tiny_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ResNet-14, option B, trained for 24 iterations on the tiny CIFAR folder (with a 50-image val split)."""
    run_dir = tmp_path_factory.mktemp("use") / "run"
    args = [*TINY, f"data.root={tiny_cifar}", "model.depth=14", "model.shortcut=B", f"hydra.run.dir={run_dir}"]
    result = run_cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def plain_test_error(model: torch.nn.Module, root: Path, val_size: int) -> float:
    """Percent top-1 error on the test set, by a plain loop (not the project's evaluation code)."""
    data = CifarDataModule(root=root, val_size=val_size)
    data.prepare_data()
    data.setup()
    wrong = total = 0
    with torch.no_grad():
        for x, y in data.test_dataloader():
            wrong += int((model(x).argmax(1) != y).sum())
            total += len(y)
    return 100 * wrong / total


def test_load_model_gives_the_recorded_test_error(trained_run: Path, tiny_cifar: Path) -> None:
    results = json.loads((trained_run / "results.json").read_text())
    model = load_model(trained_run, which="last")
    assert isinstance(model, CifarResNet) and not model.training
    assert (model.depth, model.shortcut) == (14, "B")
    assert next(model.parameters()).device == torch.device("cpu")
    assert plain_test_error(model, tiny_cifar, 50) == pytest.approx(results["metrics"]["test_err"], abs=1e-4)
    best = load_model(trained_run)  # best by val error: the checkpoint ModelCheckpoint kept
    best_step = int(next((trained_run / "checkpoints").glob("best-step=*.ckpt")).stem.split("=")[1])
    assert best_step == results["metrics"]["best_val_step"]
    assert isinstance(best, CifarResNet)


def test_export_loads_with_torch_alone(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "resnet14.pt"
    export_main([str(trained_run), "--which", "last", "--out", str(out)])
    x = torch.randn(4, 3, 32, 32)
    torch.save(x, tmp_path / "x.pt")
    script = f"""
import sys, torch
from resnet_repro.models import CifarResNet
data = torch.load({str(out)!r}, weights_only=True)
net = CifarResNet(**data["kwargs"]); net.load_state_dict(data["state_dict"]); net.eval()
torch.save(net(torch.load({str(tmp_path / "x.pt")!r})), {str(tmp_path / "out.pt")!r})
assert "pytorch_lightning" not in sys.modules and "hydra" not in sys.modules, sorted(sys.modules)
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    assert torch.equal(torch.load(tmp_path / "out.pt"), load_model(trained_run, which="last")(x))
    data = torch.load(out, weights_only=True)
    assert data["kwargs"] == {
        "depth": 14,
        "residual": True,
        "shortcut": "B",
        "num_classes": 10,
        "zero_init_residual": False,
    }
    assert data["recipe_id"] == json.loads((trained_run / "results.json").read_text())["recipe_id"]


def test_torch_hub_builds_every_family_and_loads_a_run(trained_run: Path) -> None:
    for depth in (20, 56, 110):
        for residual, shortcut in ((True, "A"), (True, "B"), (True, "C"), (False, "A")):
            net = torch.hub.load(
                str(REPO), "cifar_resnet", source="local", depth=depth, residual=residual, shortcut=shortcut
            )
            assert isinstance(net, CifarResNet) and (net.depth, net.residual, net.shortcut) == (
                depth,
                residual,
                shortcut,
            )
    for depth in (18, 34, 50, 101, 152):
        net = torch.hub.load(str(REPO), "imagenet_resnet", source="local", depth=depth)
        reference = getattr(torchvision.models, f"resnet{depth}")()
        assert isinstance(net, ImageNetResNet)
        assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in reference.parameters())
    trained = torch.hub.load(str(REPO), "cifar_resnet", source="local", weights=str(trained_run), which="last")
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(trained(x), load_model(trained_run, which="last")(x))
    with pytest.raises(Exception, match="not what was asked"):
        torch.hub.load(str(REPO), "cifar_resnet", source="local", depth=56, weights=str(trained_run))


def test_evaluate_a_run_and_its_export(
    trained_run: Path, tiny_cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recorded = json.loads((trained_run / "results.json").read_text())["metrics"]["test_err"]
    evaluate_main([str(trained_run), "--data", str(tiny_cifar), "--which", "last"])
    assert f"top-1 error {recorded:.2f}%" in capsys.readouterr().out
    evaluations = json.loads((trained_run / "eval.json").read_text())
    (result,) = evaluations.values()
    assert result["top1_err"] == pytest.approx(recorded, abs=1e-4) and result["images"] == 100
    assert (result["dataset"], result["split"], result["views"]) == ("cifar10", "test", "single")

    exported = tmp_path / "net.pt"
    export_main([str(trained_run), "--which", "last", "--out", str(exported)])
    evaluate_main([str(exported), "--data", str(tiny_cifar), "--split", "val"])
    (val,) = json.loads((tmp_path / "eval.json").read_text()).values()
    assert val["split"] == "val" and val["images"] == 50  # the run's own 50-image val split
    # the run's eval.json keeps its first evaluation when another protocol is added
    evaluate_main([str(trained_run), "--data", str(tiny_cifar), "--which", "last", "--split", "val"])
    assert len(json.loads((trained_run / "eval.json").read_text())) == 2


def torchvision_error(net: torch.nn.Module, root: Path, ten_crop: bool) -> float:
    """torchvision's own network on the same views: the reference for ours."""
    from resnet_repro.data.imagenet import eval_transform

    folder = torchvision.datasets.ImageFolder(str(root / "val"), transform=eval_transform("channel_mean_std", ten_crop))
    wrong = 0
    with torch.no_grad():
        for x, y in folder:
            logits = net(x if ten_crop else x[None])
            wrong += int(logits.softmax(1).mean(0).argmax() != y)
    return 100 * wrong / len(folder)


def test_evaluate_torchvision_weights_through_our_network(
    tiny_imagenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(num_classes=3).eval()
    weights = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), weights)
    x = torch.randn(2, 3, 224, 224)
    assert torch.allclose(load_model(weights)(x), reference(x), atol=1e-5)
    for views, ten_crop in (("center-crop", False), ("10-crop", True)):
        evaluate_main([str(weights), "--data", str(tiny_imagenet), "--views", views, "--batch-size", "20"])
        result = json.loads((tmp_path / "eval.json").read_text())[f"resnet18.pth | imagenet val | {views}"]
        assert result["images"] == 6 and result["network"].startswith("ImageNetResNet(depth=18")
        assert result["top1_err"] == pytest.approx(torchvision_error(reference, tiny_imagenet, ten_crop), abs=1e-4)


def test_evaluate_refuses_bad_input(trained_run: Path, tiny_cifar: Path, tiny_imagenet: Path, tmp_path: Path) -> None:
    torch.save(torchvision.models.squeezenet1_0().state_dict(), tmp_path / "squeezenet.pth")
    torch.save(torchvision.models.resnet18(num_classes=5).state_dict(), tmp_path / "resnet18-5.pth")
    (tmp_path / "not-a-run").mkdir()
    cases = [
        ([str(tmp_path / "not-a-run"), "--data", str(tiny_cifar)], "is not a run directory"),
        ([str(tmp_path / "squeezenet.pth"), "--data", str(tiny_imagenet)], "squeezenet.pth holds a state_dict with"),
        ([str(tmp_path / "resnet18-5.pth"), "--data", str(tiny_imagenet)], "has 5 outputs, but imagenet val has 3"),
        ([str(trained_run), "--data", str(tiny_imagenet), "--dataset", "imagenet"], "is a CIFAR network"),
        ([str(trained_run), "--data", str(tiny_cifar), "--dataset", "cifar100"], "has 10 outputs, but cifar100"),
        ([str(trained_run), "--data", str(tiny_cifar), "--views", "10-crop"], "CIFAR nets are tested with single"),
    ]
    for args, message in cases:
        result = subprocess.run(
            [sys.executable, "-m", "resnet_repro.evaluate", *args], capture_output=True, text=True, cwd=tmp_path
        )
        refused(result, message)


def test_torch_hub_runs_its_own_checkouts_code(tmp_path: Path) -> None:
    """Another resnet_repro first on the path (an installed copy, say) does not replace the checkout's code."""
    fake = tmp_path / "elsewhere" / "resnet_repro"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise RuntimeError('the wrong copy ran')\n")
    code = (
        "import inspect, torch; "
        f"net = torch.hub.load({str(REPO)!r}, 'cifar_resnet', source='local', depth=20); "
        "print(inspect.getfile(type(net)))"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(fake.parent)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert Path(result.stdout.strip()).is_relative_to(REPO / "src")


def test_evaluate_reads_the_runs_own_image_cache(tmp_path: Path) -> None:
    """A run trained with data.cache_dir is evaluated from that cache: nothing is decoded into the data root."""
    from tests.conftest import write_cifar_folder

    data = write_cifar_folder(tmp_path / "data", 40, 10)
    cache, run_dir = tmp_path / "cache", tmp_path / "run"
    args = [*TINY, f"data.root={data}", f"data.cache_dir={cache}", "model.depth=8", f"hydra.run.dir={run_dir}"]
    result = run_cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list(cache.glob("*.pt"))) == 1 and not (data / ".resnet_repro_cache").exists()
    evaluate_main([str(run_dir), "--which", "last"])
    assert not (data / ".resnet_repro_cache").exists() and len(list(cache.glob("*.pt"))) == 1
