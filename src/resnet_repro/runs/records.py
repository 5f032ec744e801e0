"""The reading gate: what a run directory, a sweep, an export or a checkpoint says is checked here before anything
uses it. Files are opened by files.read_json and files.load_checkpoint (no links, regular files only, bounded size,
never blocking on a FIFO, data only); the records they hold are checked against their types: names from a small
alphabet, numbers as numbers, counters as non-negative integers, bounded nesting, text that is valid UTF-8, and a
checkpoint's step counters against the segments it records. A record that does not fit is refused with one
RecordError naming the file and the field; nothing of it is used. No string of a record becomes a path or an
import target here or anywhere else: file names come from `file_name`-checked or hex fields only (the one path a
record gives is the data folder of `evaluate RUN` without --data, which the user asks for)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, TypedDict

import torch

from resnet_repro.errors import UserError, escaped
from resnet_repro.files import load_checkpoint, read_json

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")  # config keys, parameter, layer and metric names
HEX_ID = re.compile(r"[0-9a-f]{8,64}")  # recipe ids
MAX_DEPTH = 24  # nesting of any record; the deepest this project writes is the resolved config's, about 6
INTEGER, NUMBER, TEXT, FLAG, MAPPING = "an integer", "a number", "text", "true or false", "a mapping"
# the keys whose values are used as numbers, names or switches, and what they must hold (None allowed where True):
# what a recipe records and what a config sets (training/checks.py checks a composed config with this table)
KEY_TYPES: dict[str, tuple[str, bool]] = {
    "seed": (INTEGER, False),
    "log_every": (INTEGER, False),
    "trainer.max_steps": (INTEGER, False),
    "data.batch_size": (INTEGER, False),
    "data.eval_batch_size": (INTEGER, False),
    "data.num_workers": (INTEGER, False),
    "data.val_size": (INTEGER, True),
    "data.train_size": (INTEGER, True),
    "data.test_size": (INTEGER, True),
    "data.split_seed": (INTEGER, False),
    "data.num_classes": (INTEGER, False),
    "data.augment": (FLAG, False),
    "data.flip": (FLAG, False),
    "data.name": (TEXT, False),
    "data.normalize": (TEXT, False),
    "model.depth": (INTEGER, False),
    "model.num_classes": (INTEGER, False),
    "model.residual": (FLAG, False),
    "model.shortcut": (TEXT, False),
    "model.pad": (TEXT, False),
    "model.zero_init_residual": (FLAG, False),
    "model.stride_in_1x1": (FLAG, False),
    "optim.lr": (NUMBER, False),
    "optim.momentum": (NUMBER, False),
    "optim.weight_decay": (NUMBER, False),
    "optim.gamma": (NUMBER, False),
    "optim.nesterov": (FLAG, False),
    "optim.warmup_lr": (NUMBER, True),
    "optim.warmup_until_err": (NUMBER, False),
    "optim.warmup_window": (INTEGER, False),
}


def holds(value: Any, kind: str) -> bool:
    """Whether `value` is of `kind` (INTEGER, NUMBER, TEXT, FLAG, MAPPING); a bool is no number."""
    if kind == FLAG:
        return isinstance(value, bool)
    if kind == TEXT:
        return isinstance(value, str)
    if kind == MAPPING:
        return isinstance(value, dict)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind == INTEGER else isinstance(value, int | float) and math.isfinite(value)


def typed(key: str, value: Any) -> str | None:
    """What is wrong with `value` for `key` (KEY_TYPES; optim.milestones a list of integers), None when nothing."""
    if key == "optim.milestones":
        ok = isinstance(value, list | tuple) and all(holds(m, INTEGER) for m in value)
        return None if ok else f"must be a list of iteration counts, got {shown(value)}"
    if key not in KEY_TYPES:
        return None
    kind, optional = KEY_TYPES[key]
    if (value is None and optional) or holds(value, kind):
        return None
    return f"must be {kind}, got {shown(value)}"


STATUSES = ("running", "completed", "diverged", "stopped", "interrupted", "failed")
COUNTERS = ("ready", "started", "processed", "completed")  # Lightning's loop progress counters


class RecordError(UserError):
    """A record that does not have the types this project writes: refused, naming the file and the field."""

    def __init__(self, where: str | Path, field: str, problem: str) -> None:
        where, field = escaped(str(where)), escaped(field)
        super().__init__(f"{where}: {field} {problem}; it is not a record this project wrote, so it is not used")


def shown(value: Any) -> str:
    """A short, printable description of a hostile value."""
    text = ascii(value) if not isinstance(value, dict | list) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def text(value: Any, where: str | Path, field: str) -> str:
    if not isinstance(value, str):
        raise RecordError(where, field, f"is {shown(value)}, not text")
    try:  # a path's bytes that are not UTF-8 are kept as Python keeps them (surrogate escapes), and shown escaped
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise RecordError(where, field, "is not valid UTF-8 text") from None
    return value


def name(value: Any, where: str | Path, field: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise RecordError(where, field, f"is {shown(value)}, not a name (letters, digits, _ . -)")
    return value


def integer(value: Any, where: str | Path, field: str, low: int = 0) -> int:
    if type(value) is not int or value < low or value > 2**53:
        raise RecordError(where, field, f"is {shown(value)}, not an integer >= {low}")
    return value


def plain(value: Any, where: str | Path, field: str, depth: int = 0) -> Any:
    """JSON-like data (None, bool, numbers, text, lists, dicts with text keys) of bounded nesting."""
    if depth > MAX_DEPTH:
        raise RecordError(where, field, f"is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return text(value, where, field)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [plain(v, where, f"{field}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {
            text(k, where, f"a key of {field}"): plain(v, where, f"{field}.{k}", depth + 1) for k, v in value.items()
        }
    raise RecordError(where, field, f"holds a {type(value).__name__}")


def mapping(value: Any, where: str | Path, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(where, field, f"is {shown(value)}, not a mapping")
    return plain(value, where, field)


def recipe(value: Any, where: str | Path, field: str = "recipe") -> dict[str, Any]:
    """{dotted key: a value or a list of values} (what runs/recipe.make_recipe writes)."""
    value = mapping(value, where, field)
    for key, item in value.items():
        name(key, where, f"a key of {field}")
        items = item if isinstance(item, list) else [item]
        if any(isinstance(v, dict | list) for v in items):
            raise RecordError(where, f"{field}.{key}", "holds nested data, not a value or a list of values")
        problem = typed(key, item)
        if problem:
            raise RecordError(where, f"{field}.{key}", problem)
    return value


class Identity(TypedDict):
    """recipe.json, and a checkpoint's run_identity (runs/recipe.py writes it), as `identity` checks it."""

    recipe_id: str
    seed: int
    recipe: dict[str, Any]  # {dotted key: a value or a list of values}, typed by KEY_TYPES


class RecipeFile(Identity, total=False):
    """recipe.json: the identity, and the command line's overrides that made the run (text, as given)."""

    overrides: list[str]


def is_recipe_id(value: Any) -> bool:
    """Whether `value` is a recipe id as runs/recipe.fingerprint writes it (hex digits)."""
    return isinstance(value, str) and HEX_ID.fullmatch(value) is not None


def identity(value: Any, where: str | Path) -> Identity:
    """A run's identity (recipe.json, a checkpoint's run_identity): {recipe_id, seed, recipe, ...}."""
    value = mapping(value, where, "the record")
    if not is_recipe_id(value.get("recipe_id")):
        raise RecordError(where, "recipe_id", f"is {shown(value.get('recipe_id'))}, not a recipe id (hex digits)")
    integer(value.get("seed"), where, "seed", low=-(2**31))
    overrides = value.get("overrides", [])
    if not (isinstance(overrides, list) and all(isinstance(o, str) for o in overrides)):
        raise RecordError(where, "overrides", f"is {shown(overrides)}, not a list of text")
    return {**value, "recipe": recipe(value.get("recipe"), where)}


def numbers(value: Any, where: str | Path, field: str) -> dict[str, float | int | None]:
    """{name: a number or None} (metrics)."""
    value = mapping(value, where, field)
    for key, item in value.items():
        if item is not None and (isinstance(item, bool) or not isinstance(item, int | float)):
            raise RecordError(where, f"{field}.{key}", f"is {shown(item)}, not a number")
    return value


def layers(value: Any, where: str | Path) -> dict[str, float]:
    """{layer: a finite number}, in network order (layer_responses.json, gradient_norms.json)."""
    value = numbers(value, where, "the record")
    for key, item in value.items():
        name(key, where, "a layer name")
        if item is None or not math.isfinite(item):
            raise RecordError(where, key, f"is {shown(item)}, not a finite number")
    return value


def segments(value: Any, where: str | Path) -> list[dict[str, Any]]:
    """Who trained which steps: [{"steps": [from, to], ...}, ...], each continuing the one before (the first may
    start past 0: a run resumed from a checkpoint written before segments were recorded)."""
    if not isinstance(value, list):
        raise RecordError(where, "segments", f"is {shown(value)}, not a list")
    value = plain(value, where, "segments")
    end = None
    for i, segment in enumerate(value):
        steps = segment.get("steps") if isinstance(segment, dict) else None
        if not isinstance(steps, list) or len(steps) != 2:
            raise RecordError(where, f"segments[{i}].steps", f"is {shown(steps)}, not [from, to]")
        start, stop = (integer(s, where, f"segments[{i}].steps") for s in steps)
        end = start if end is None else end
        if start > end or stop < start:
            raise RecordError(where, f"segments[{i}].steps", f"[{start}, {stop}] does not continue from step {end}")
        end = stop
    return value


class Results(TypedDict, total=False):
    """results.json (training/record.py writes it), as `results` checks it: every field a run writes is declared
    here (a test compares a real run's file with this list) and checked, by RESULT_FIELDS or by its own check."""

    status: str  # one of STATUSES
    step: int | None
    metrics: dict[str, float | int | None]
    segments: list[dict[str, Any]]  # who trained which steps: `segments`
    recipe_id: str
    seed: int
    recipe: dict[str, Any]
    error: str | None
    wall_time_s: float | None
    images_per_s: float | None
    compile_s: float | None
    params: int | None
    images_seen_per_process: int | None
    warmup_end_step: int | None
    precision: str | None
    git_commit: str | None
    data: dict[str, Any] | None  # provenance of the data (source, fingerprint, sizes, root)
    batch: dict[str, Any] | None
    network: dict[str, Any] | None  # {arch, family}
    machine: dict[str, Any] | None
    config: dict[str, Any] | None  # the resolved config


# results.json's fields beyond status, step, metrics, segments and the identity, and what each holds (or None)
RESULT_FIELDS: dict[str, str] = {
    "error": TEXT,
    "wall_time_s": NUMBER,
    "images_per_s": NUMBER,
    "compile_s": NUMBER,
    "params": INTEGER,
    "images_seen_per_process": INTEGER,
    "warmup_end_step": INTEGER,
    "precision": TEXT,
    "git_commit": TEXT,
    "data": MAPPING,
    "batch": MAPPING,
    "network": MAPPING,
    "machine": MAPPING,
    "config": MAPPING,
}


def results(value: Any, where: str | Path) -> Results:
    """A run's results.json: its status, step, metrics, segments, identity and provenance (Results)."""
    value = mapping(value, where, "the record")
    status = value.get("status")
    if status not in STATUSES:
        raise RecordError(where, "status", f"is {shown(status)}, not one of {', '.join(STATUSES)}")
    if value.get("step") is not None:
        integer(value["step"], where, "step")
    for field, kind in RESULT_FIELDS.items():
        item = value.get(field)
        if item is not None and not holds(item, kind):
            raise RecordError(where, field, f"is {shown(item)}, not {kind}")
    if "metrics" in value:
        numbers(value["metrics"] or {}, where, "metrics")
    if "segments" in value:
        segments(value["segments"] or [], where)
    if "recipe" in value:
        value = {**value, **identity(value, where)}
    return value


def not_trained(results: dict[str, Any], recipe: Any, segments: bool = True) -> str | None:
    """Why a run recorded "completed" was not trained to its recipe's length, or None: its step must be the
    recipe's trainer.max_steps, and (`segments`) its segments, when recorded, must cover 0 to that step without a
    gap (a run resumed from a checkpoint older than segments cannot show that: the report leaves it out)."""
    if results.get("status") != "completed":
        return None
    if type(results.get("step")) is not int:  # every run this project completed records its step
        return "it records no step"
    if not isinstance(recipe, dict):
        return None
    length = recipe.get("trainer.max_steps")
    if isinstance(length, int) and results.get("step") != length:
        return f"its step is {results.get('step')} of trainer.max_steps {length}"
    spans = sorted(tuple(s["steps"]) for s in results.get("segments") or []) if segments else []
    if spans and isinstance(length, int):
        reached = 0
        for start, end in spans:
            if not (isinstance(start, int) and isinstance(end, int)) or start > reached:
                return f"its segments {[list(s) for s in spans]} do not cover steps 0 to {length}"
            reached = max(reached, end)
        if reached < length:
            return f"its segments reach step {reached} of {length}"
    return None


def read(path: Path, check: Any) -> dict[str, Any] | None:
    """The record in `path` checked by `check` (results, identity, layers), None when the file is missing or is not
    a regular file of valid JSON (files.read_json). Raises RecordError when it holds the wrong types."""
    data = read_json(path)
    return None if data is None else check(data, path)


def state_dict(value: Any, where: str | Path, field: str = "state_dict") -> dict[str, torch.Tensor]:
    """{parameter name: tensor}."""
    if not isinstance(value, dict) or not value:
        raise RecordError(where, field, f"is {shown(value)}, not a mapping of parameter names to tensors")
    for key, item in value.items():
        name(key, where, f"a parameter name of {field}")
        if not isinstance(item, torch.Tensor):
            raise RecordError(where, f"{field}.{key}", f"is {shown(item)}, not a tensor")
    return value


def export(value: dict[str, Any], where: str | Path) -> dict[str, Any]:
    """An exported file (use/weights.export): format, arch, kwargs, state_dict and what is known of the run."""
    name(value.get("arch"), where, "arch")
    kwargs = mapping(value.get("kwargs"), where, "kwargs")
    for key, item in kwargs.items():
        if not key.isidentifier():
            raise RecordError(where, "a key of kwargs", f"is {shown(key)}, not an argument name")
        if isinstance(item, dict | list):
            raise RecordError(where, f"kwargs.{key}", f"is {shown(item)}, not a value")
    checked = {**value, "kwargs": kwargs, "state_dict": state_dict(value.get("state_dict"), where)}
    checked["recipe"] = recipe(value.get("recipe") or {}, where)
    checked["metrics"] = numbers(value.get("metrics") or {}, where, "metrics")
    for field in ("seed", "step"):
        if value.get(field) is not None:
            integer(value[field], where, field, low=-(2**31) if field == "seed" else 0)
    if value.get("recipe_id") is not None and not is_recipe_id(value["recipe_id"]):
        raise RecordError(where, "recipe_id", f"is {shown(value['recipe_id'])}, not a recipe id (hex digits)")
    return checked


def checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint of a run (files.load_checkpoint: data only), its counters checked: global_step, the loops'
    progress counters and the segments it records agree (the last segment ends at its step), its state_dict holds
    tensors under names and its run_identity is an identity."""
    data = load_checkpoint(path)
    step = integer(data.get("global_step"), path, "global_step")
    state_dict(data.get("state_dict"), path)
    if "run_identity" in data:
        identity(data["run_identity"], path)
    loops = data.get("loops", {})
    counters(mapping(loops, path, "loops"), path, "loops")
    stepped = dig(loops, "fit_loop", "epoch_loop.automatic_optimization.optim_progress", "optimizer", "step", "total")
    stepped = stepped.get("completed", step) if isinstance(stepped, dict) else step  # Lightning's optimizer steps
    if stepped != step:
        raise RecordError(path, "global_step", f"is {step} but its loops record {stepped} optimizer steps")
    callbacks = data.get("callbacks", {})
    if not isinstance(callbacks, dict):
        raise RecordError(path, "callbacks", f"is {shown(callbacks)}, not a mapping")
    recorded = callbacks.get("Segments", {}).get("segments") if isinstance(callbacks.get("Segments"), dict) else None
    if recorded is not None:
        ends = segments(recorded, path)
        if ends and ends[-1]["steps"][1] != step:
            raise RecordError(path, "global_step", f"is {step} but its segments end at step {ends[-1]['steps'][1]}")
    return data


def dig(tree: Any, *keys: str) -> Any:
    """tree[k1][k2]..., None where a level is missing or not a mapping."""
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def counters(tree: dict[str, Any], where: str | Path, field: str) -> None:
    """Every progress counter under `tree` is a non-negative integer."""
    for key, value in tree.items():
        if isinstance(value, dict):
            counters(value, where, f"{field}.{key}")
        elif key in COUNTERS:
            integer(value, where, f"{field}.{key}")
