"""The community's checkpoints: akamaster/pytorch_resnet_cifar10's published ResNet-20 and ResNet-56 read through
their convention (centred zero padding of option A, ImageNet mean/std inputs, DataParallel keys), exported, and
loaded again; option A's pad placement as a choice of the network; the one table of architectures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from resnet_repro import config, load_model
from resnet_repro.config import compose_config
from resnet_repro.models import CifarResNet, ImageNetResNet
from resnet_repro.models.registry import ARCHITECTURES, architecture
from resnet_repro.models.shortcuts import ZeroPadShortcut
from resnet_repro.report.collect import Group, Run
from resnet_repro.use.evaluate import main as evaluate_main
from resnet_repro.use.export import main as export_main
from resnet_repro.use.hub import cifar_resnet
from resnet_repro.use.weights import WeightsError, read_weights
from tests.helpers import REPO, TINY, run_cli

PUBLISHED = REPO.parent / "shared" / "reference" / "published"
RESNET20, RESNET56 = PUBLISHED / "resnet20-12fca82f.th", PUBLISHED / "resnet56-4bfd9763.th"


@pytest.fixture(scope="module")
def published() -> dict[str, dict]:
    """Their two files as loaded (legacy pickles of CUDA tensors: the CPU needs map_location)."""
    if not RESNET20.is_file():
        pytest.skip(f"the published checkpoints ({PUBLISHED}) are not on this machine")
    return {path.name: torch.load(path, map_location="cpu", weights_only=True) for path in (RESNET20, RESNET56)}


class TheirBlock(nn.Module):
    """Their BasicBlock with option A, written from their resnet.py as ../shared/reference/paper.md §3.3 describes
    it: an independent oracle for what their weights compute."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if stride != 1 or in_planes != planes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        short = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + short)


class TheirResNet(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        planes, layers = 16, []
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            layers.append(
                nn.Sequential(
                    *[TheirBlock(planes if i == 0 else width, width, stride if i == 0 else 1) for i in range(n)]
                )
            )
            planes = width
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(F.avg_pool2d(out, out.size(3)).flatten(1))


def their_logits(state: dict, n: int, x: torch.Tensor) -> torch.Tensor:
    net = TheirResNet(n)
    net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=False)
    return net.eval()(x)


def test_pad_placement_is_a_choice_of_the_network() -> None:
    x = torch.arange(2 * 16 * 4 * 4, dtype=torch.float32).view(2, 16, 4, 4)
    after, both = ZeroPadShortcut(16, 32, 2)(x), ZeroPadShortcut(16, 32, 2, pad="both")(x)
    assert torch.equal(after[:, :16], x[:, :, ::2, ::2]) and not after[:, 16:].any()  # fb.resnet.torch
    assert torch.equal(both[:, 8:24], x[:, :, ::2, ::2]) and not both[:, :8].any() and not both[:, 24:].any()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(CifarResNet(20, pad="both")) == count(CifarResNet(20)) == 269_722
    with pytest.raises(ValueError, match="pad must be one of after, both"):
        CifarResNet(20, pad="centre")
    # the default stays out of the recipe (every recorded recipe id stays); the other placement is recorded
    assert "model.pad" not in config.recipe(compose_config([]), {"source": "official"})
    assert config.recipe(compose_config(["model.pad=both"]), {"source": "official"})["model.pad"] == "both"


def test_their_weights_compute_what_their_code_computes_only_with_their_placement(published: dict) -> None:
    state = published[RESNET20.name]["state_dict"]
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs = their_logits(state, 3, x)
        ours = load_model(RESNET20, convention="akamaster")(x)
        appended = CifarResNet(20).eval()
        record = read_weights(RESNET20, convention="akamaster")
        appended.load_state_dict(record["state_dict"])  # loads strictly, no warning: the trap the convention avoids
        wrong = appended(x)
    assert torch.allclose(ours, theirs, atol=1e-4), (ours - theirs).abs().max()
    assert (wrong - theirs).abs().max() > 1.0


def test_a_published_file_without_its_convention_is_one_line_naming_what_reads_it(
    published: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = tmp_path / "bare.pt"
    torch.save(published[RESNET20.name]["state_dict"], bare)
    other = tmp_path / "other.pt"
    torch.save({"epoch": 3, "weights": {"a.weight": torch.zeros(2)}}, other)
    for path, words in (
        (RESNET20, ["top-level keys best_prec1, state_dict", "module.conv1.weight", "--from akamaster"]),
        (bare, ["module.conv1.weight", "--from akamaster"]),
        (other, ["top-level keys epoch, weights", "a.weight", "no convention reads it"]),
    ):
        with pytest.raises(SystemExit) as exit_info:
            evaluate_main([str(path), "--data", str(tmp_path)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count("\n") == 1 and str(path) in err, err
        assert all(w in err for w in words), err
        with pytest.raises(WeightsError, match="--from akamaster" if path != other else "no convention"):
            load_model(path)
    with pytest.raises(WeightsError, match="the akamaster convention does not read it"):
        load_model(other, convention="akamaster")
    with pytest.raises(WeightsError, match="takes no argument 'width'"):
        cifar_resnet(depth=20, width=2)


def test_export_then_load_model_hub_and_evaluate_give_the_same_predictions(
    published: dict, tiny_cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "resnet56.pt"
    export_main([str(RESNET56), "--from", "akamaster", "--out", str(out)])
    exported = torch.load(out, weights_only=True)
    assert exported["convention"] == "akamaster" and exported["kwargs"]["pad"] == "both"
    assert exported["recipe"]["data.normalize"] == "imagenet_mean_std"
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        original = load_model(RESNET56, convention="akamaster")(x)
        for model in (load_model(out), cifar_resnet(weights=out), cifar_resnet(depth=56, pad="both", weights=out)):
            assert torch.equal(model(x), original)
    with pytest.raises(WeightsError, match="not what was asked"):
        cifar_resnet(pad="after", weights=out)
    errors = []
    for args in ([str(RESNET56), "--from", "akamaster"], [str(out)]):
        evaluate_main([*args, "--data", str(tiny_cifar), "--out", str(tmp_path / "eval.json")])
        errors.append(capsys.readouterr().out.split("top-1 error ")[1].split("%")[0])
    assert errors[0] == errors[1]
    evaluations = json.loads((tmp_path / "eval.json").read_text())
    assert {e["normalize"] for e in evaluations.values()} == {"imagenet_mean_std"}


@pytest.mark.slow
def test_published_checkpoints_evaluate_as_their_authors_code_does(real_cifar: Path, published: dict) -> None:
    """On the JPEG copy's 10,000 test images: 18.97% (ResNet-20) and 16.80% (ResNet-56), as their own code gives
    (../shared/reference/published/README.md: about 19.0% and 16.8%)."""
    for path, expected in ((RESNET20, 18.97), (RESNET56, 16.80)):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "resnet_repro.evaluate",
                str(path),
                "--from",
                "akamaster",
                "--data",
                str(real_cifar),
                "--out",
                str(real_cifar / "eval.json"),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"top-1 error {expected:.2f}%" in result.stdout, result.stdout


def test_a_torchvision_state_dict_is_refused_by_the_papers_stride_placement() -> None:
    torchvision_like = ImageNetResNet(50, stride_in_1x1=False).state_dict()
    del torchvision_like["stride_in_1x1"]  # torchvision's files say nothing of where the stride sits
    with pytest.raises(ValueError, match=r"build ImageNetResNet\(50, stride_in_1x1=False\)"):
        ImageNetResNet(50).load_state_dict(torchvision_like)
    ImageNetResNet(50, stride_in_1x1=False).load_state_dict(torchvision_like)  # the placement they were trained in
    with pytest.raises(ValueError, match="trained with stride_in_1x1=True"):
        ImageNetResNet(50, stride_in_1x1=False).load_state_dict(ImageNetResNet(50).state_dict())


def test_one_table_of_architectures_and_a_new_argument_reaches_recipe_load_model_and_hub(
    tiny_cifar: Path, tmp_path: Path
) -> None:
    """The arguments come from the constructors' signatures: pad, added to CifarResNet and its config only, is
    recorded by the run, rebuilt by load_model and taken by hub."""
    assert architecture("resnet_repro.models.CifarResNet").family == "cifar"
    assert architecture("ImageNetResNet").family == "imagenet" and architecture("os.system") is None
    assert (
        "pad" in ARCHITECTURES["CifarResNet"].arguments
        and "checkpoint_stages" not in ARCHITECTURES["CifarResNet"].arguments
    )
    run_dir = tmp_path / "run"
    result = run_cli([*TINY, f"data.root={tiny_cifar}", "model.depth=8", "model.pad=both", f"hydra.run.dir={run_dir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run_dir / "recipe.json").read_text())["recipe"]["model.pad"] == "both"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["network"] == {"arch": "CifarResNet", "family": "cifar"}  # what the report reads
    group = Group("x", results["recipe"], [Run(run_dir, "completed", 0, results["recipe"], results)])
    assert group.net_family == "cifar"
    results["network"]["family"] = "imagenet"  # the recorded family decides, not the class name
    assert Group("x", results["recipe"], [Run(run_dir, "completed", 0, results["recipe"], results)]).net_family == (
        "imagenet"
    )
    model = load_model(run_dir, which="last")
    assert model.pad == "both" and model.layer2[0].downsample.pad == "both"
    assert cifar_resnet(weights=run_dir, which="last", pad="both").pad == "both"


def test_audit_findings_on_the_checkpoints(published: dict, tmp_path: Path) -> None:
    """Our own bare CIFAR state_dicts are not read as akamaster's (their classifier is `linear`); this project's
    ImageNet exports written before the stride placement was recorded still load; hub refuses an argument the
    weights hold at its default; an export's default file name takes no path from a record."""
    ours = tmp_path / "ours.pt"
    torch.save(CifarResNet(20, residual=False).state_dict(), ours)
    with pytest.raises(WeightsError, match="no convention reads it"):
        load_model(ours)
    export = {
        "format": "resnet-repro-weights/1",
        "arch": "ImageNetResNet",
        "source": "x",
        "recipe": {},
        "kwargs": {"depth": 50, "num_classes": 10},
        "state_dict": ImageNetResNet(50, num_classes=10).state_dict(),
    }
    del export["state_dict"]["stride_in_1x1"]  # as written before this commit
    torch.save(export, tmp_path / "old.pt")
    assert bool(load_model(tmp_path / "old.pt").stride_in_1x1)
    appended = tmp_path / "appended.pt"
    torch.save(
        {
            **export,
            "arch": "CifarResNet",
            "kwargs": {"depth": 20, "num_classes": 10},
            "state_dict": CifarResNet(20).state_dict(),
        },
        appended,
    )
    with pytest.raises(WeightsError, match="not what was asked"):
        cifar_resnet(pad="both", weights=appended)
    assert cifar_resnet(checkpoint_stages=True, weights=appended).checkpoint_stages


NEW_ARGUMENT = """
import json, sys
from pathlib import Path
from resnet_repro import load_model
from resnet_repro.use.hub import cifar_resnet
default, changed = Path(sys.argv[1]), Path(sys.argv[2])
recipe = json.loads((changed / "recipe.json").read_text())["recipe"]
net = load_model(changed, which="last")
hub = cifar_resnet(weights=changed, which="last")
print(json.dumps({
    "default_recipe": json.loads((default / "recipe.json").read_text())["recipe"],
    "changed": recipe.get("model.stem_bias"),
    "load_model": net.conv1.bias is not None,
    "hub": hub.conv1.bias is not None,
}))
"""


def test_a_new_constructor_argument_needs_only_the_model_and_its_config(tiny_cifar: Path, tmp_path: Path) -> None:
    """A copy of the package whose CifarResNet takes a new argument (a bias in its first convolution), added to the
    constructor and conf/model/cifar_resnet.yaml only: a run at its config value keeps the recipe of today's code
    (recipe ids unchanged); a run that sets it records it, and load_model and hub rebuild the network with it."""
    package = tmp_path / "src" / "resnet_repro"
    shutil.copytree(REPO / "src" / "resnet_repro", package, symlinks=False)  # conf/ and paper numbers as copies
    model = package / "models" / "cifar.py"
    source = model.read_text()
    for old, new in (
        ('pad: str = "after",\n', 'pad: str = "after",\n        stem_bias: bool = False,\n'),
        ("kernel_size=3, padding=1, bias=False)", "kernel_size=3, padding=1, bias=stem_bias)"),
    ):
        assert old in source
        source = source.replace(old, new)
    model.write_text(source)
    declared = package / "conf" / "model" / "cifar_resnet.yaml"
    declared.write_text(declared.read_text() + "stem_bias: false\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    runs = {}
    for name, extra in (("default", []), ("changed", ["model.stem_bias=true"])):
        runs[name] = tmp_path / name
        args = [*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={runs[name]}", *extra]
        result = run_cli(args, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
    found = subprocess.run(
        [sys.executable, "-c", NEW_ARGUMENT, str(runs["default"]), str(runs["changed"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert found.returncode == 0, found.stderr[-3000:]
    seen = json.loads(found.stdout.strip().splitlines()[-1])
    recorded = seen["default_recipe"]
    data = {key: recorded[f"data.{key}"] for key in ("source", "fingerprint")}
    today = config.recipe(compose_config([*TINY, f"data.root={tiny_cifar}", "model.depth=8"]), data)
    assert recorded == today  # today's code gives the same recipe (and id): the new argument at its value is left out
    assert seen == {"default_recipe": recorded, "changed": True, "load_model": True, "hub": True}
