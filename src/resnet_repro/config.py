"""Where the Hydra configs are, Hydra's version base, the resolvers the configs use, the recipe keys that name a
network (conf/net/), a composed config's recipe (its model's later arguments from conf/model/) and what a dataset
declares (conf/data/)."""

from __future__ import annotations

import copy
import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.singleton import Singleton
from hydra.core.utils import JobRuntime
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from resnet_repro.errors import ConfigError, one_line
from resnet_repro.runs.recipe import FIRST_MODEL_KEYS, INERT_WHEN_OFF, flatten, is_recipe_key, make_recipe

VERSION_BASE = "1.3"  # Hydra's version_base, in this one place
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")  # a link to the repository's conf/; a copy when installed
DATASET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")  # a dataset config's file name: one plain name to Hydra


@cache
def net_keys() -> tuple[str, ...]:
    """The recipe keys that name a network: the model's class and every key a named net (conf/net/*.yaml) sets,
    its warm-up included (Sec. 4.2: ResNet-110's warm-up is part of its recipe), with the options of those keys'
    features (recipe.INERT_WHEN_OFF). Grouping, labels, figures and claims take "the net" from here."""
    keys = {"model._target_"}
    for path in sorted(Path(CONFIG_DIR, "net").glob("*.yaml")):
        tree = {k: v for k, v in (yaml.safe_load(path.read_text()) or {}).items() if k != "defaults"}
        keys.update(flatten(tree))
    keys.update(option for switch in list(keys) for option in INERT_WHEN_OFF.get(switch, ()))
    return tuple(sorted(keys))


def compose_config(
    overrides: list[str], config_name: str | None = "train", return_hydra_config: bool = False
) -> DictConfig:
    """The config Hydra composes from conf/ with these overrides (config_name None: only the groups the overrides
    add; its `hydra` node when asked), as `python -m resnet_repro.train` would; usable inside a running Hydra app
    (a sweep's callback): its Hydra, job name and singletons are the same objects afterwards."""
    saved = dict(Singleton._instances)  # Hydra's global state: its GlobalHydra, JobRuntime, ... as they are now
    state = saved.get(GlobalHydra)
    outer = state.hydra if state is not None else None  # None: no app (a GlobalHydra may exist uninitialized)
    job = copy.deepcopy(saved[JobRuntime].conf) if JobRuntime in saved else None  # `initialize` renames the job
    if state is not None:
        state.clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base=VERSION_BASE):
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)
    finally:
        Singleton._instances.update(saved)  # singletons made meanwhile (Hydra's config store) stay
        if state is not None:
            state.hydra = outer
        if job is not None:
            saved[JobRuntime].conf = job


def declared_datasets() -> list[str]:
    """The names of the datasets conf/data/ declares (files whose name Hydra reads as one plain name)."""
    paths = Path(CONFIG_DIR, "data").glob("*.yaml")
    return sorted(path.stem for path in paths if DATASET_NAME.fullmatch(path.stem) and path.is_file())


@cache
def declared_dataset(name: str) -> dict[str, Any]:
    """What conf/data/`name`.yaml declares (title, family, num_classes, official, ...), composed by Hydra with the
    declarations its `defaults` name; empty when there is none. Values as written: interpolations not resolved."""
    if name not in declared_datasets():  # found by its name among the declared: never a path, never an override
        return {}
    where = f"conf/data/{name}.yaml"
    try:
        composed = compose_config([f"+data='{name}'"], config_name=None)  # quoted: `10` or `null` stays a name
    except (HydraException, OmegaConfBaseException, yaml.YAMLError, ValueError) as error:  # not UTF-8: ValueError
        raise ConfigError(where, f"does not compose: {one_line(error)}") from None
    except RecursionError:  # Hydra's own, on a defaults list that names itself
        raise ConfigError(where, "does not compose: its defaults name it again (a loop)") from None
    declared = composed.get("data")
    if not isinstance(declared, DictConfig):
        raise ConfigError(where, "declares no mapping of data settings (name, family, num_classes, ...)")
    return OmegaConf.to_container(declared, resolve=False)  # type: ignore[return-value]


@cache
def model_defaults(target: str) -> dict[str, Any]:
    """{"model.pad": "after", ...}: the plain values the model config of `target` (conf/model/*.yaml) declares for
    the arguments added after the first recipes (recipe.FIRST_MODEL_KEYS); a recipe records them only when they
    differ, so adding an argument to a network and its config changes no recorded recipe id."""
    for path in sorted(Path(CONFIG_DIR, "model").glob("*.yaml")):
        declared = yaml.safe_load(path.read_text()) or {}
        if declared.get("_target_") == target:
            return {
                f"model.{key}": value
                for key, value in declared.items()
                if key not in FIRST_MODEL_KEYS and not (isinstance(value, str) and "${" in value)
            }
    return {}


def recipe(cfg: DictConfig, data_identity: dict[str, Any]) -> dict[str, Any]:
    """The recipe of a composed config (recipe.make_recipe), its model's later arguments left out at their
    config's values."""
    return make_recipe(cfg, data_identity, model_defaults(str(cfg.model.get("_target_", ""))))


def short_name(name: str, limit: int = 120) -> str:
    """A run directory name from its overrides: as is when short, else cut with a hash of the whole (Linux allows
    255 bytes per file name)."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - 11]}...{hashlib.sha1(name.encode()).hexdigest()[:8]}"


# group choices left out of run directory names besides what is not recipe: what they select is part of the recipe
# and shows in it (the trainer group only picks device and strategy; an experiment sets keys that name themselves)
DIRNAME_ALSO = ("experiment", "trainer", "hydra/launcher", "hydra.launcher.n_jobs")


def run_dirname(overrides: list[str]) -> str:
    """A run directory's name from the command line's overrides: those that change the recipe, sorted, joined by
    "," (Hydra's override_dirname, but leaving out every key under recipe.NOT_RECIPE, `callbacks.*` included, and
    the group choices DIRNAME_ALSO), shortened by `short_name`."""
    kept = []
    for override in overrides:
        key = str(override).split("=", 1)[0].lstrip("+~")
        if key not in DIRNAME_ALSO and is_recipe_key(key):
            kept.append(str(override))
    return short_name(",".join(sorted(kept)))


def at_fractions(steps: int, fractions: list[float]) -> ListConfig:
    """Iterations at fractions of a run's length: ${at_fractions:${trainer.max_steps},[0.5,0.75]} is the paper's
    32k and 48k of 64k (Sec. 4.2), and scales with trainer.max_steps; the recipe records the numbers."""
    return OmegaConf.create([round(steps * fraction) for fraction in fractions])


def eval_every(steps: int, most: int) -> int:
    """The evaluation cadence that fits a run: the largest divisor of `steps` up to `most` iterations, so the
    final weights are evaluated (1000 for the paper's 64k; 20 for a run of 20)."""
    return max(d for d in range(1, min(steps, most) + 1) if steps % d == 0) if steps >= 1 else most


def run_subdir(overrides: list[str], seed: int) -> str:
    """A run's directory below its sweep: `<run_dirname>/seed=<seed>`, or `seed=<seed>` when no override names it.
    The config resolver ${run_subdir:${hydra.overrides.task},${seed}}."""
    name = run_dirname(overrides)
    return f"{name}/seed={seed}" if name else f"seed={seed}"


OmegaConf.register_new_resolver("run_subdir", run_subdir, replace=True)
OmegaConf.register_new_resolver("at_fractions", at_fractions, replace=True)
OmegaConf.register_new_resolver("eval_every", eval_every, replace=True)
