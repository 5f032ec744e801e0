"""A run's identity: its recipe (everything that changes what is trained) and a short fingerprint of it.

The recipe is the resolved config, flattened to dotted keys, without the keys in NOT_RECIPE (paths, device count,
launcher, workers, logging and display, evaluation cadence, memory and speed options that leave the numbers as
they are) and without the options of a feature that is off (INERT_WHEN_OFF: the warm-up's threshold and window
when there is no warm-up; flips without augmentation) and the keys added later at the value that does what was
done before them (ADDED_LATER; model arguments beyond FIRST_MODEL_KEYS at their config's value), plus what the data
actually was (its source kind and a fingerprint of the decoded arrays). The seed is the only thing that varies inside
a group of runs of one recipe. A run directory records its recipe in recipe.json before training starts; a later
command that would put another recipe (or seed) there is refused with the keys that differ, and nothing in the
directory is touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from resnet_repro.errors import UserError
from resnet_repro.files import CheckpointError, load_checkpoint, write_json
from resnet_repro.runs import records
from resnet_repro.runs.layout import CHECKPOINTS, LAST, RECIPE, RESULTS
from resnet_repro.runs.records import RecordError

log = logging.getLogger(__name__)

NOT_RECIPE = (  # dotted keys (and everything under them) that do not change what is trained
    "seed",  # varies inside a group; recorded beside the recipe
    "name",
    "output_root",
    "ckpt_path",
    "log_every",
    "progress_bar",
    "top5",  # an extra metric
    "compile",  # the same computation compiled: equal up to float rounding (experiments/results/compile-ab)
    "channels_last",  # a memory layout
    "callbacks",
    "logger",
    "data.title",  # how reports name the dataset
    "data.family",  # the kind of images (32x32 or ImageNet's): set by data._target_, checked against the net
    "data.official",  # the reader of its official release; what the data was enters as data.source and fingerprint
    "data.root",  # where the data is; what it is enters as data.source and data.fingerprint
    "data.download",
    "data.cache_dir",
    "data.num_workers",
    "data.loader",  # fast or torchvision: the same sampling and augmentation, from other random streams
    "data.eval_batch_size",
    "data.seed",  # = seed
    "data.channels_last",
    "model.checkpoint_stages",  # recomputes activations; gradients and BN statistics are the same
    "trainer.accelerator",
    "trainer.devices",  # data.batch_size is the global batch, split over the devices
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.val_check_interval",  # how often errors are measured, not what is trained
    "trainer.check_val_every_n_epoch",
    "trainer.num_sanity_val_steps",
    "trainer.log_every_n_steps",
    "trainer.enable_model_summary",
    "trainer.deterministic",
    "trainer.benchmark",
    "trainer.max_epochs",  # -1: the length is trainer.max_steps
)


# options of a feature that is off change nothing: {key: the keys it makes inert when its value is None or false}
INERT_WHEN_OFF = {
    "optim.warmup_lr": ("optim.warmup_until_err", "optim.warmup_window"),
    "data.augment": ("data.flip",),
}

# recipe keys added after recipes were first recorded, with the value that does what was done before them: a recipe
# holds such a key only when its value differs, so every recipe recorded before keeps its fingerprint
ADDED_LATER = {"data.flip": True}

# the model keys of the first recipes; a model argument added later is recorded only when its value differs from
# the one its model config declares (config.model_defaults), so a new argument is the model's and its config's
FIRST_MODEL_KEYS = ("_target_", "depth", "residual", "shortcut", "num_classes", "stride_in_1x1", "zero_init_residual")


# Lightning's short precision names and the ones they stand for: one recipe for what trains the same way
PRECISIONS = {"32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed", "64": "64-true"}


class RecipeMismatchError(UserError):
    """A run directory that holds another recipe (or seed) than the one asked for."""


def is_recipe_key(key: str) -> bool:
    return not any(key == skip or key.startswith(f"{skip}.") for skip in NOT_RECIPE)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def make_recipe(cfg: DictConfig, data_identity: dict[str, Any], added_later: dict[str, Any]) -> dict[str, Any]:
    """The run's recipe: flat, sorted, JSON values; `data_identity` adds what the data was (data.source, ...);
    keys of `added_later` (and ADDED_LATER) at its value are left out (config.recipe builds it for the model)."""
    added_later = {**ADDED_LATER, **added_later}
    flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    flat.update({f"data.{key}": value for key, value in data_identity.items()})
    if "trainer.precision" in flat:  # bf16 and bf16-mixed train alike: one recipe, under the canonical name
        flat["trainer.precision"] = PRECISIONS.get(str(flat["trainer.precision"]), flat["trainer.precision"])
    off = [switch for switch in INERT_WHEN_OFF if switch in flat and (flat[switch] is None or flat[switch] is False)]
    inert = {key for switch in off for key in INERT_WHEN_OFF[switch]}
    inert |= {key for key, before in added_later.items() if key in flat and flat[key] == before}
    recipe = {key: flat[key] for key in sorted(flat) if is_recipe_key(key) and key not in inert}
    return json.loads(json.dumps(recipe))  # tuples -> lists, as read back from recipe.json


def fingerprint(recipe: dict[str, Any]) -> str:
    """12 hex digits that change whenever any recipe value does."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def differences(recorded: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """'key (recorded X, asked Y)' for every key whose value differs or that only one side has."""
    missing = "(not set)"
    return [
        f"{key} (recorded {recorded.get(key, missing)!r}, asked {asked.get(key, missing)!r})"
        for key in sorted(recorded.keys() | asked.keys())
        if recorded.get(key, missing) != asked.get(key, missing)
    ]


def recorded_identity(run_dir: Path) -> dict[str, Any] | None:
    """The identity ({recipe, seed}) recorded in `run_dir`, None for a new directory.

    A directory with results or checkpoints but no recorded recipe (written by an older version) is refused.
    """
    for source, check in ((run_dir / RECIPE, records.identity), (run_dir / RESULTS, records.results)):
        record = records.read(source, check)  # RecordError (one line) when it holds what no run writes
        if record and "recipe" in record:
            return record
    if (run_dir / RESULTS).exists() or (run_dir / CHECKPOINTS).is_dir():
        raise RecipeMismatchError(
            f"{run_dir} holds a run without a recorded recipe (made by an older resnet-repro), so it cannot be "
            f"resumed or skipped safely; move it away or choose another output_root"
        )
    return None


def check_identity(where: Path, recorded: dict[str, Any] | None, identity: dict[str, Any]) -> None:
    """Refuse a directory or checkpoint whose recorded recipe and seed are not `identity`'s, naming the keys."""
    if not isinstance(recorded, dict) or not isinstance(recorded.get("recipe"), dict):
        raise RecipeMismatchError(
            f"{where} records no recipe (made by an older resnet-repro, or not by it); it cannot be resumed"
        )
    diff = differences(
        {**recorded["recipe"], "seed": recorded.get("seed")}, {**identity["recipe"], "seed": identity["seed"]}
    )
    if diff:
        raise RecipeMismatchError(
            f"{where} holds a run of another recipe; differing keys: {'; '.join(diff)}. Nothing was changed there: "
            f"choose another output_root or name, or move that run away"
        )


def claim_run_dir(run_dir: Path, identity: dict[str, Any], record: dict[str, Any], write: bool) -> None:
    """Check that `run_dir` is new or holds `identity` ({recipe_id, seed, recipe}); record it in recipe.json (with
    `record`) when new and `write`. Raises RecipeMismatchError naming the keys that differ; nothing is written then.
    """
    recorded = recorded_identity(run_dir)
    if recorded is not None:
        check_identity(run_dir, recorded, identity)
    elif write:
        write_json(run_dir / RECIPE, {**identity, **record}, root=run_dir)


def resume_checkpoint(run_dir: Path, ckpt_path: str | None, identity: dict[str, Any]) -> Path | None:
    """The checkpoint to resume from, checked: it loads as data only (files.load_checkpoint: a pickle payload is
    refused, never run) and holds this run's recipe and seed (RecipeMismatchError naming the keys otherwise).

    `ckpt_path` None or "last": this run's checkpoints/last.ckpt when there is one; a truncated or corrupt one is
    renamed aside (never deleted) and the run starts over. Any other `ckpt_path` is the user's file: missing,
    unreadable or of another recipe, it is refused with one line and nothing is renamed.
    """
    explicit = ckpt_path not in (None, "last")
    path = Path(ckpt_path).expanduser() if explicit else run_dir / CHECKPOINTS / LAST
    if not explicit and not path.is_file():
        return None
    try:
        checkpoint = records.checkpoint(path)  # counters, segments and identity checked (RecordError otherwise)
    except CheckpointError as err:
        if explicit or "could run code" in str(err):
            raise
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        path.rename(aside)
        log.warning("%s; moved to %s, training this run from the start", err, aside)
        return None
    check_identity(path, checkpoint.get("run_identity"), identity)
    length = identity["recipe"].get("trainer.max_steps")
    if isinstance(length, int) and checkpoint["global_step"] > length:
        raise RecordError(path, "global_step", f"is {checkpoint['global_step']}, past trainer.max_steps {length}")
    log.info("resuming from step %s (%s in %s)", checkpoint_step(run_dir, ckpt_path), path.name, run_dir)
    return path


def checkpoint_step(run_dir: Path, ckpt_path: str | None) -> int | None:
    """The step a run would resume from (its last.ckpt, or the user's `ckpt_path`), None when there is none or it
    cannot be read (resume_checkpoint decides what then happens)."""
    path = Path(ckpt_path).expanduser() if ckpt_path not in (None, "last") else run_dir / CHECKPOINTS / LAST
    try:
        step = load_checkpoint(path).get("global_step") if path.is_file() else None
    except CheckpointError:
        return None
    return step if type(step) is int and step > 0 else None
