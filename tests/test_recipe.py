"""Faithful defaults and run identity: the paper's protocol by default, one recipe per run directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import hydra
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from resnet_repro import config
from resnet_repro.config import CONFIG_DIR, DIRNAME_ALSO, compose_config
from resnet_repro.data import CifarDataModule
from resnet_repro.errors import ConfigError
from resnet_repro.runs.recipe import NOT_RECIPE, fingerprint, is_recipe_key
from tests.helpers import REPO, TINY, refused, run_cli

CONF = Path(CONFIG_DIR)
NETS = sorted(p.stem for p in (CONF / "net").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
PAPER_CIFAR_EXPERIMENTS = ["fig6", "fig7", "table6", "resnet1202", "shortcuts_cifar"]
TINY_FULL_TRAIN = [o for o in TINY if not o.startswith("data.val_size")]  # the default protocol: no val split


def snapshot(run_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `run_dir` with its bytes and modification time; `.lock` apart, which names the last process
    that held the run (lock.py)."""
    files = (p for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != ".lock")
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def sweep_params(name: str) -> dict[str, list[str]]:
    cfg = compose_config([f"experiment={name}"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    return {key: str(values).split(",") for key, values in params.items()}


@pytest.mark.parametrize("net", NETS)
def test_every_named_net_builds_its_own_family(net: str) -> None:
    cfg = compose_config([f"net={net}"])
    model = hydra.utils.instantiate(cfg.model)
    family = "ImageNetResNet" if net.startswith(("resnet34", "resnet50", "resnet101", "resnet152")) else "CifarResNet"
    assert type(model).__name__ == family
    assert model.depth == int(net.removeprefix("plain").removeprefix("resnet").split("_")[0])
    assert model.residual == net.startswith("resnet")
    if net.startswith("resnet34_"):
        assert model.shortcut == net[-1].upper()


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_builds_each_of_its_runs(
    name: str, tiny_cifar: Path, tiny_imagenet: Path
) -> None:
    """Each run of each experiment: its model is of the data's family, and its datamodule loads (faked) data."""
    params = sweep_params(name)
    runs = [[]]
    for key, values in params.items():
        runs = [[*run, f"{key}={value}"] for run in runs for value in values]
    for overrides in runs:
        cfg = compose_config([f"experiment={name}", *overrides])
        model = hydra.utils.instantiate(cfg.model)
        imagenet = cfg.data._target_.endswith("ImageNetDataModule")
        assert type(model).__name__ == ("ImageNetResNet" if imagenet else "CifarResNet"), overrides
        fake = {"data.root": str(tiny_imagenet), "data.num_classes": 3} if imagenet else {"data.root": str(tiny_cifar)}
        data_cfg = OmegaConf.merge(cfg.data, {k.removeprefix("data."): v for k, v in fake.items()})
        if not imagenet and data_cfg.get("test_size"):
            data_cfg.test_size = min(data_cfg.test_size, 100)  # the tiny folder has 100 test images
        if not imagenet and data_cfg.val_size:
            data_cfg.val_size = min(data_cfg.val_size, 50)
        datamodule = hydra.utils.instantiate(data_cfg)
        datamodule.prepare_data()
        assert datamodule.provenance["train_images"] > 0


@pytest.mark.parametrize("name", PAPER_CIFAR_EXPERIMENTS)
def test_paper_experiments_train_on_all_50k_in_fp32(name: str) -> None:
    cfg = compose_config([f"experiment={name}"])
    assert cfg.data.val_size == 0 and cfg.data.train_size is None and cfg.data.test_size is None
    assert cfg.trainer.precision == "32-true" and cfg.data.batch_size == 128
    assert cfg.trainer.max_steps == 64_000 and list(cfg.optim.milestones) == [32_000, 48_000]


def test_defaults_are_the_papers_protocol_and_fp32() -> None:
    for overrides in ([], ["trainer=gpu"], ["trainer=ddp"], ["net=resnet110"]):
        cfg = compose_config(overrides)
        assert cfg.trainer.precision == "32-true", overrides
        assert cfg.data.val_size == 0 and cfg.data.batch_size == 128, overrides


def test_directory_names_hold_exactly_the_recipe_overrides() -> None:
    """What is not recipe (recipe.NOT_RECIPE, and every key under it) never names a run directory, so one recipe
    has one folder; every recipe override does, so two recipes never share one."""
    not_recipe = ["seed=1", "data.root=/x", "callbacks.progress_bar.refresh_rate=5", "logger.default_hp_metric=true"]
    not_recipe += ["trainer.max_epochs=3", "data.loader=torchvision", "trainer=gpu", "experiment=fig6"]
    cfg = compose_config([*not_recipe, "optim.lr=0.05", "net=resnet56"], return_hydra_config=True)
    assert cfg.hydra.sweep.subdir == "net=resnet56,optim.lr=0.05/seed=1"
    assert cfg.hydra.run.dir == "outputs/cifar10/net=resnet56,optim.lr=0.05/seed=1"
    for override in not_recipe:
        key = override.split("=")[0]
        assert key in DIRNAME_ALSO or not is_recipe_key(key), key
    assert not is_recipe_key("seed") and is_recipe_key("trainer.precision") and is_recipe_key("data.batch_size")
    assert "data.root" in NOT_RECIPE and is_recipe_key("data.fingerprint") and is_recipe_key("optim.warmup_window")
    long = compose_config([f"optim.milestones=[{','.join(str(i) for i in range(1, 60))}]"], return_hydra_config=True)
    assert len(long.hydra.sweep.subdir.split("/")[0]) == 120  # cut, with a hash of the whole


def test_options_of_a_feature_that_is_off_are_not_recipe() -> None:
    """The warm-up's window and threshold change ResNet-110's recipe, not ResNet-20's (which has no warm-up)."""

    def recipe(overrides: list[str]) -> dict:
        return config.recipe(compose_config(overrides), {"source": "official", "fingerprint": "x"})

    assert "optim.warmup_window" not in recipe([]) and recipe([]) == recipe(["optim.warmup_window=100"])
    resnet110 = recipe(["net=resnet110"])
    assert resnet110["optim.warmup_lr"] == 0.01 and resnet110["optim.warmup_window"] == 391
    assert resnet110 != recipe(["net=resnet110", "optim.warmup_window=100"])


def test_recipes_recorded_before_keep_their_fingerprint() -> None:
    """Keys added later (data.flip) and declarations that are not recipe (data.title, family, official) leave the
    recipes of runs recorded before them as they were: the committed quick evidence recomposes to its recipe ids."""
    runs = json.loads((REPO / "experiments" / "results" / "cifar10-quick" / "runs.json").read_text())
    for run in runs:
        recorded = run["recipe"]
        name = f"{'resnet' if recorded['model.residual'] else 'plain'}{recorded['model.depth']}"
        data = {key: recorded[f"data.{key}"] for key in ("source", "fingerprint")}
        recipe = config.recipe(compose_config(["experiment=quick", f"net={name}"]), data)
        assert recipe == recorded and fingerprint(recipe) == run["recipe_id"], run["run"]
    no_flips = config.recipe(compose_config(["data.flip=false"]), {"source": "official"})
    assert no_flips["data.flip"] is False
    assert "data.flip" not in config.recipe(compose_config([]), {"source": "official"})
    assert "data.flip" not in config.recipe(compose_config(["data.augment=false", "data.flip=false"]), {})


@pytest.fixture(scope="module")
def default_run(tiny_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One completed run of the default recipe (no val split) through the command line, in <root>/single/..."""
    root = tmp_path_factory.mktemp("runs")
    result = run_cli([*TINY_FULL_TRAIN, f"data.root={tiny_cifar}", "model.depth=8", f"output_root={root}"])
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = [p.parent for p in root.rglob("results.json")]
    return run_dir


def test_results_say_how_the_number_was_made(default_run: Path, tiny_cifar: Path) -> None:
    results = json.loads((default_run / "results.json").read_text())
    recipe_file = json.loads((default_run / "recipe.json").read_text())
    assert results["status"] == "completed" and results["precision"] == "32-true"
    assert results["data"]["kind"] == "image-folder" and results["data"]["path"] == str(tiny_cifar)
    assert (results["data"]["train_images"], results["data"]["val_images"], results["data"]["test_images"]) == (
        400,
        0,
        100,
    )  # all training images, no val split, the whole test set
    assert len(results["data"]["fingerprint"]) == 16
    assert results["batch"] == {"global": 16, "per_device": 16, "processes": 1}
    assert results["warmup_end_step"] is None  # ResNet-8 has no warm-up
    assert "val_err" not in results["metrics"] and "test_err" in results["metrics"]
    assert recipe_file["recipe_id"] == results["recipe_id"] and len(results["recipe_id"]) == 12
    assert recipe_file["recipe"] == results["recipe"] and results["seed"] == recipe_file["seed"] == 0
    assert results["recipe"]["data.source"] == "image-folder"
    assert results["recipe"]["data.fingerprint"] == results["data"]["fingerprint"]
    assert not any(key.startswith(("data.root", "trainer.devices", "seed")) for key in results["recipe"])
    checkpoint = torch.load(default_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["run_identity"]["recipe_id"] == results["recipe_id"]
    assert checkpoint["run_identity"]["recipe"] == results["recipe"]


def test_another_precision_is_another_run(default_run: Path, tiny_cifar: Path) -> None:
    """trainer.precision=bf16-mixed neither skips nor resumes the fp32 run: it trains in a directory of its own."""
    root = default_run.parents[1]
    before = snapshot(default_run)
    args = [*TINY_FULL_TRAIN, f"data.root={tiny_cifar}", "model.depth=8", f"output_root={root.parent}"]
    result = run_cli([*args, "trainer.precision=bf16-mixed"])
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "skipping" not in log and "resuming" not in log
    runs = {p.parent for p in root.rglob("results.json")}
    assert len(runs) == 2 and default_run in runs
    (other,) = runs - {default_run}
    assert other.parent != default_run.parent  # a folder of its own (its override, shortened with a hash here)
    other_results = json.loads((other / "results.json").read_text())
    fp32_results = json.loads((default_run / "results.json").read_text())
    assert other_results["precision"] == "bf16-mixed" and other_results["recipe_id"] != fp32_results["recipe_id"]
    assert snapshot(default_run) == before


def test_a_directory_of_another_recipe_is_refused_untouched(default_run: Path, tiny_cifar: Path) -> None:
    before = snapshot(default_run)
    result = run_cli(
        [
            *TINY_FULL_TRAIN,
            f"data.root={tiny_cifar}",
            "model.depth=8",
            f"hydra.run.dir='{default_run}'",  # quoted: the folder name holds = , [ ]
            "optim.lr=0.05",
            "data.val_size=50",
            "trainer.val_check_interval=24",  # not part of the recipe: not named
        ]
    )
    refused(result, "optim.lr (recorded 0.1, asked 0.05)", "data.val_size (recorded 0, asked 50)")
    assert "val_check_interval" not in result.stderr
    assert snapshot(default_run) == before  # nothing overwritten, nothing added


def test_a_run_without_a_recorded_recipe_is_refused(tiny_cifar: Path, tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"status": "completed", "config": {"seed": 0}}))
    result = run_cli([*TINY, f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={tmp_path}"])
    assert result.returncode == 2 and "without a recorded recipe" in result.stderr
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "completed"


def test_net_family_mismatch_is_refused_unless_the_model_is_explicit(tiny_cifar: Path, tmp_path: Path) -> None:
    base = [*TINY, f"data.root={tiny_cifar}", f"hydra.run.dir={tmp_path}"]
    refused = run_cli([*base, "net=resnet50"])
    assert refused.returncode == 2
    assert "ImageNetResNet-50 is a network for 224x224 ImageNet-like images" in refused.stderr
    assert not tmp_path.joinpath("recipe.json").exists()
    explicit = compose_config([*base, "model=imagenet_resnet", "net=resnet50"])
    assert explicit.model._target_.endswith("ImageNetResNet")  # accepted by validate() when named explicitly
    from resnet_repro.training.checks import validate

    validate(explicit, explicit_model=True)
    with pytest.raises(ConfigError, match="model"):
        validate(compose_config(["data=imagenet"]))  # a CIFAR net on ImageNet


def test_a_declared_family_its_data_module_does_not_serve_is_refused_by_its_key() -> None:
    from resnet_repro.training.checks import validate

    with pytest.raises(ConfigError, match="data.family: resnet_repro.data.CifarDataModule serves 'cifar' datasets"):
        validate(compose_config(["data.family=imagenet"]))


def test_global_batch_is_split_over_processes(tiny_cifar: Path) -> None:
    """A DDP Trainer of 2 CPU processes (built, not launched): each process draws 64 of the global 128."""
    dm = CifarDataModule(root=tiny_cifar, batch_size=128)
    dm.trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    assert dm.trainer.world_size == 2
    dm.prepare_data()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert len(x) == len(y) == 64
    dm.batch_size = 100
    dm.trainer = pl.Trainer(accelerator="cpu", devices=3, strategy="ddp", logger=False)
    with pytest.raises(ConfigError, match="global batch of 100 does not split evenly over 3 processes"):
        dm.train_dataloader()


@pytest.mark.slow
def test_non_dividing_batch_is_refused_before_anything_is_written(tiny_cifar: Path, tmp_path: Path) -> None:
    result = run_cli(
        [
            *TINY,
            f"data.root={tiny_cifar}",
            "model.depth=8",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=3",
            f"hydra.run.dir={tmp_path}",
        ]
    )
    assert result.returncode == 2
    assert "data.batch_size: the global batch of 16 does not split evenly over 3 processes" in result.stderr
    assert not (tmp_path / "recipe.json").exists() and not (tmp_path / "checkpoints").exists()


def test_a_checkpoint_of_another_recipe_is_not_resumed(default_run: Path, tiny_cifar: Path, tmp_path: Path) -> None:
    """recipe.json agrees but last.ckpt was written by another recipe (copied in by hand): refused, untouched."""
    run_dir = tmp_path / "run"
    shutil.copytree(default_run, run_dir)
    (run_dir / "results.json").unlink()
    identity = json.loads((run_dir / "recipe.json").read_text())
    identity["recipe"]["optim.lr"] = 0.05
    (run_dir / "recipe.json").write_text(json.dumps(identity))
    before = snapshot(run_dir)
    args = [*TINY_FULL_TRAIN, f"data.root={tiny_cifar}", "model.depth=8", "optim.lr=0.05", f"hydra.run.dir={run_dir}"]
    result = run_cli(args)
    assert result.returncode == 2
    assert (
        "last.ckpt holds a run of another recipe; differing keys: optim.lr (recorded 0.1, asked 0.05)" in result.stderr
    )
    assert snapshot(run_dir) == before


def test_precision_names_are_canonical_in_the_recipe() -> None:
    """Lightning's short names train the same way as the long ones: one recipe (and one run directory) for both."""
    official = {"source": "official"}
    for short, canonical in (("bf16", "bf16-mixed"), ("32", "32-true"), ("16", "16-mixed")):
        recipe = config.recipe(compose_config([f"trainer.precision={short}"]), official)
        assert recipe["trainer.precision"] == canonical
        assert fingerprint(recipe) == fingerprint(
            config.recipe(compose_config([f"trainer.precision={canonical}"]), official)
        )


def test_one_override_shortens_a_run(tiny_cifar: Path, tmp_path: Path) -> None:
    """The paper's schedule is relative to the run's length (lr steps at 50% and 75%, Sec. 4.2's 32k and 48k of
    64k; an evaluation cadence that divides it), resolved to numbers in the recipe: the paper's recipe keeps its
    id, and trainer.max_steps alone shortens a run."""
    official = {"source": "official"}
    explicit = ["optim.milestones=[32000,48000]", "trainer.val_check_interval=1000"]
    assert config.recipe(compose_config([]), official) == config.recipe(compose_config(explicit), official)
    short = compose_config(["trainer.max_steps=20"])
    assert list(short.optim.milestones) == [10, 15] and short.trainer.val_check_interval == 20
    assert compose_config(["trainer.max_steps=1500"]).trainer.val_check_interval == 750
    keep = [
        o for o in TINY if not o.startswith(("optim.milestones", "trainer.val_check_interval", "trainer.max_steps"))
    ]
    result = run_cli(
        [*keep, "trainer.max_steps=8", f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={tmp_path}"]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Tip:" not in result.stdout + result.stderr and "LeafSpec" not in result.stdout + result.stderr  # quiet
    last = result.stdout.strip().splitlines()[-1]  # how the run ended, in one line
    assert last.startswith(f"{tmp_path}: completed at step 8 in ") and "test error" in last and "training error" in last
    recipe = json.loads((tmp_path / "recipe.json").read_text())["recipe"]
    assert recipe["optim.milestones"] == [4, 6] and json.loads((tmp_path / "results.json").read_text())["step"] == 8


def test_plain_log_lines_when_the_output_is_not_a_terminal(tiny_cifar: Path, tmp_path: Path) -> None:
    """progress_bar=auto (the default): a captured output (a log file, CI) gets one plain line per log interval,
    never a bar's control characters."""
    keep = [o for o in TINY if not o.startswith(("progress_bar", "trainer.max_steps", "optim.milestones"))]
    result = run_cli(
        [*keep, "trainer.max_steps=12", f"data.root={tiny_cifar}", "model.depth=8", f"hydra.run.dir={tmp_path}"]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "step 8 of 12" in output and "\x1b[" not in output and "\r" not in output
