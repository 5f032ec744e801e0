"""A trained network out of a run: rebuilt from the run's recorded recipe, loaded strictly, exported as plain
weights (a state_dict and the constructor's arguments) that load with torch alone.

    net = resnet_repro.load_model("outputs/cifar10/net=resnet56/seed=0")        # eval mode, on the CPU
    python -m resnet_repro.export outputs/cifar10/net=resnet56/seed=0           # -> .../resnet56-<recipe_id>-seed0.pt

Four kinds of weights are understood: a run directory (or a checkpoint inside one), an exported file, a
torchvision ResNet state_dict (`torchvision.models.resnet50().state_dict()`), which our ImageNetResNet loads with
torchvision's stride placement (`stride_in_1x1=False`), and a published checkpoint of another project read through
its convention (`convention="akamaster"`, conventions.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_repro.errors import UserError
from resnet_repro.files import atomic_write, load_checkpoint
from resnet_repro.models.imagenet import IMAGENET_LAYOUTS
from resnet_repro.models.registry import ARCHITECTURES, architecture
from resnet_repro.runs import records
from resnet_repro.runs.layout import CHECKPOINTS, EXPORT, LAST, RECIPE, RESULTS, refuse_links
from resnet_repro.use import conventions

EXPORT_FORMAT = "resnet-repro-weights/1"


class WeightsError(UserError):
    """Weights that cannot be used as asked: not a run, another architecture, a class count that does not fit."""


def model_spec(recipe: dict[str, Any]) -> dict[str, Any]:
    """{"arch": class name, "kwargs": constructor arguments} of a run's network, from its recorded recipe."""
    arch = architecture(str(recipe.get("model._target_", "")))
    if arch is None:
        raise WeightsError(f"the recipe's model {recipe.get('model._target_')!r} is not one of this project's networks")
    missing = [f"model.{key}" for key in ("depth", "num_classes") if f"model.{key}" not in recipe]
    if missing:
        raise WeightsError(f"the recorded recipe lacks {', '.join(missing)}, so its network cannot be rebuilt")
    kwargs = {key: recipe[f"model.{key}"] for key in arch.arguments if f"model.{key}" in recipe}
    return {"arch": arch.name, "kwargs": kwargs}


def build(spec: dict[str, Any]) -> nn.Module:
    """The network of a spec, freshly initialized."""
    arch = ARCHITECTURES.get(spec["arch"]) if isinstance(spec.get("arch"), str) else None
    if arch is None or not isinstance(spec.get("kwargs"), dict):
        raise ValueError(f"{spec.get('arch')!r} with {spec.get('kwargs')!r} is not a network of this project")
    unknown = arch.unknown(spec["kwargs"])
    if unknown:
        raise ValueError(f"{arch.name} takes no argument {', '.join(map(repr, unknown))}")
    return arch.cls(**spec["kwargs"])


def run_dir_of(path: Path) -> Path | None:
    """The run directory holding `path` (itself, or a checkpoint in its checkpoints/), if it is one."""
    for candidate in (path, path.parent, path.parent.parent):
        if (candidate / RECIPE).is_file():
            return candidate
    return None


def find_checkpoint(run_dir: Path, which: str) -> Path:
    """The checkpoint of `run_dir` that `which` names: "last" (the final weights of a completed run: the paper's
    protocol), or "best" (best by val error; a run without a val split has none, so its final weights)."""
    if which not in ("best", "last"):
        raise WeightsError(f"which must be 'best' or 'last', got {which!r}")
    recipe = (records.read(run_dir / RECIPE, records.identity) or {}).get("recipe", {})
    folder = run_dir / CHECKPOINTS
    if which == "best" and recipe.get("data.val_size", 0):
        return best_checkpoint(folder)
    if not (folder / LAST).is_file():
        raise WeightsError(f"{run_dir} has no checkpoint yet (checkpoints/last.ckpt): has it trained?")
    return folder / LAST


BEST = re.compile(r"best-step=(\d+)(?:-v(\d+))?\.ckpt")  # conf/callbacks/default.yaml; -vN: a later attempt


def best_checkpoint(folder: Path) -> Path:
    """The best-by-val checkpoint of the run's current attempt: the one its last checkpoint's ModelCheckpoint
    state names, else the highest step (and version) compared as numbers."""
    last = folder / LAST
    if last.is_file():
        states = load_checkpoint(last).get("callbacks")
        states = states if isinstance(states, dict) else {}
        named = [
            Path(str(v.get("best_model_path") or "")).name
            for v in states.values()
            if isinstance(v, dict) and "best_model_path" in v  # ModelCheckpoint's (RunCheckpoint's) state
        ]
        if named and named[0] and BEST.fullmatch(named[0]) and (folder / named[0]).is_file():
            return folder / named[0]
    found = [(int(m[1]), int(m[2] or 0), p) for p in folder.glob("best-step=*.ckpt") if (m := BEST.fullmatch(p.name))]
    if not found:
        raise WeightsError(f"{folder.parent} has no best-by-val checkpoint yet (checkpoints/best-step=*.ckpt)")
    return max(found, key=lambda f: f[:2])[2]


def network_state(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's own state_dict out of a Lightning checkpoint of ResNetModule (its `model.` entries)."""
    return {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}


def read_run(path: Path, which: str = "best") -> dict[str, Any]:
    """A run's weights as an export record: spec, state_dict, identity, the checkpoint's step and the metrics."""
    run_dir = run_dir_of(path)
    if run_dir is None:
        raise WeightsError(f"{path} is not a run directory (one with {RECIPE}) nor a checkpoint inside one")
    checkpoint_path = path if path.is_file() else find_checkpoint(run_dir, which)
    checkpoint = load_checkpoint(checkpoint_path)  # data only: a pickle payload is refused, never run
    if "run_identity" in checkpoint:
        identity = records.identity(checkpoint["run_identity"], checkpoint_path)
    else:
        identity = records.read(run_dir / RECIPE, records.identity)
    if identity is None or not isinstance(checkpoint.get("state_dict"), dict):
        raise WeightsError(f"{checkpoint_path} is not a checkpoint of a resnet-repro run (no recipe or state_dict)")
    records.state_dict(checkpoint["state_dict"], checkpoint_path)
    results = records.read(run_dir / RESULTS, records.results) or {}
    return {
        "format": EXPORT_FORMAT,
        **model_spec(identity["recipe"]),
        "state_dict": network_state(checkpoint),
        "recipe_id": identity.get("recipe_id"),
        "seed": identity.get("seed"),
        "recipe": identity["recipe"],
        "step": checkpoint.get("global_step"),
        "metrics": results.get("metrics", {}) if results.get("step") == checkpoint.get("global_step") else {},
        "source": str(checkpoint_path),
    }


def torchvision_spec(state: dict[str, torch.Tensor], path: Path) -> dict[str, Any]:
    """The ImageNetResNet that loads a torchvision ResNet state_dict (depth from its blocks per stage)."""
    counts = tuple(len({m.group(1) for k in state if (m := re.match(rf"layer{i}\.(\d+)\.", k))}) for i in range(1, 5))
    bottleneck = any(k.endswith("conv3.weight") for k in state)
    depth = next(
        (
            d
            for d, (block, layout) in IMAGENET_LAYOUTS.items()
            if layout == counts and (block.expansion > 1) == bottleneck
        ),
        None,
    )
    if depth is None or "fc.weight" not in state:
        raise WeightsError(foreign(path, state))
    kwargs = {"depth": depth, "shortcut": "B", "num_classes": state["fc.weight"].shape[0], "stride_in_1x1": False}
    return {"arch": "ImageNetResNet", "kwargs": kwargs}


def read_weights(path: str | Path, which: str = "best", convention: str | None = None) -> dict[str, Any]:
    """Any weights this project understands, as an export record (spec, state_dict and what is known of them).

    `convention`: read a published checkpoint of another project as its authors' code builds and feeds it
    (conventions.CONVENTIONS)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError(f"{path} does not exist")
    if convention is not None:
        return read_foreign(path, convention)
    if path.is_dir() or (path.suffix == ".ckpt" and run_dir_of(path) is not None):
        return read_run(path, which)
    data = load_checkpoint(path)  # data only: a pickle payload is refused, never run; on the CPU
    if data.get("format") == EXPORT_FORMAT:
        return {**records.export(data, path), "source": str(path)}
    tensors = data and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items())
    if tensors and not conventions.matching(data, path):
        return {"format": "torchvision", **torchvision_spec(data, path), "state_dict": data, "source": str(path)}
    raise WeightsError(foreign(path, data))


def read_foreign(path: Path, name: str) -> dict[str, Any]:
    """A published checkpoint read through the convention `name`."""
    if name not in conventions.CONVENTIONS:
        raise WeightsError(f"--from {name}: no such convention (known: {', '.join(conventions.CONVENTIONS)})")
    data = load_checkpoint(path)
    record = conventions.read(data, conventions.CONVENTIONS[name], path)
    if record is None:
        raise WeightsError(f"{foreign(path, data).split('; ', 1)[0]}; the {name} convention does not read it")
    return {"format": EXPORT_FORMAT, "recipe_id": None, "seed": None, "step": None, "metrics": {}, **record}


def foreign(path: Path, data: dict[str, Any]) -> str:
    """One line on a file this project does not read as it is: what it holds and what reads it."""
    keys = list(data)
    state = next(
        (
            v
            for v in (data, *data.values())
            if isinstance(v, dict) and v and all(isinstance(t, torch.Tensor) for t in v.values())
        ),
        {},
    )
    names = f"parameters named {', '.join(map(str, list(state)[:3]))} ..."
    if state is data:
        holds = f"{path} holds a state_dict with {names}"
    else:
        holds = f"{path} holds top-level keys {', '.join(map(str, keys[:6]))}{' ...' if len(keys) > 6 else ''}"
        holds += f" and {names}" if state else ""
    readers = conventions.matching(data, path)
    if readers:
        return f"{holds}; read it with --from {readers[0]} (weights=..., convention='{readers[0]}' in Python)"
    known = ", ".join(conventions.CONVENTIONS)
    return (
        f"{holds}; not a run, an export or a torchvision ResNet state_dict, and no convention reads it (known: "
        f"{known}; a new one is a declaration in resnet_repro/use/conventions.py)"
    )


def load_record(record: dict[str, Any], map_location: str | torch.device = "cpu") -> nn.Module:
    """The network of an export record, weights loaded with strict=True, in eval mode."""
    state = records.state_dict(record["state_dict"], record["source"])
    largest = {"depth": len(state), "num_classes": max(t.numel() for t in state.values())}  # every layer has weights
    for key, most in largest.items():
        value = record["kwargs"].get(key)
        if isinstance(value, int) and value > most:  # never build a network far larger than its weights
            raise WeightsError(f"{record['source']}: {key}={value} cannot fit weights of {len(state)} tensors")
    try:
        model = build(record)
    except (TypeError, ValueError) as err:  # constructor arguments that no network of its class takes
        raise WeightsError(f"{record['source']}: cannot build {network_name(record)}: {err}") from None
    state = dict(state)
    if "stride_in_1x1" in model.state_dict() and "stride_in_1x1" not in state and record["format"] != "torchvision":
        state["stride_in_1x1"] = model.stride_in_1x1.clone()  # ours, written before the placement was recorded
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise WeightsError(f"{record['source']}: the weights do not fit {network_name(record)}: {first}") from None
    return model.to(map_location).eval()


def load_model(
    path: str | Path, which: str = "best", map_location: str | torch.device = "cpu", convention: str | None = None
) -> nn.Module:
    """The trained network of a run directory (or a checkpoint in one), an exported file, a torchvision ResNet
    state_dict or a published checkpoint of another project (`convention`, conventions.py): rebuilt from the
    recorded recipe, loaded with strict=True, in eval mode, on `map_location`.

    `which` (run directories): "best" (by val error; without a val split, the final weights) or "last".
    """
    return load_record(read_weights(path, which, convention), map_location)


def network_name(record: dict[str, Any]) -> str:
    """'CifarResNet(depth=56, residual=True, shortcut='A', num_classes=10)'."""
    return f"{record['arch']}({', '.join(f'{k}={v!r}' for k, v in record['kwargs'].items())})"


def export(run: str | Path, out: str | Path | None = None, which: str = "best", convention: str | None = None) -> Path:
    """Write a run's network (or a published checkpoint read through its `convention`) as plain weights, loadable
    with torch alone:

        data = torch.load(path, weights_only=True)
        net = CifarResNet(**data["kwargs"]); net.load_state_dict(data["state_dict"])

    Default `out` (runs only): <run>/export/<arch>-<depth>-<recipe_id>-seed<seed>.pt. Written atomically.
    """
    record = read_weights(run, which, convention)
    if record["format"] != EXPORT_FORMAT:
        raise WeightsError(f"{run} is not a run of this project (a published checkpoint: --from NAME)")
    load_record(record)  # weights that do not fit their network are refused here, not written
    kwargs = record["kwargs"]
    name = f"{'resnet' if kwargs.get('residual', True) else 'plain'}{kwargs['depth']}"
    run_dir = run_dir_of(Path(run)) if convention is None else None
    default = out is None
    if out is None:
        if run_dir is None:
            raise WeightsError(f"{run} is not inside a run directory: give the file to write (--out)")
        refuse_links(run_dir)  # a stranger's export/ may be a link to elsewhere
        recipe_id, seed = record.get("recipe_id"), record.get("seed")
        if not records.is_recipe_id(recipe_id) or type(seed) is not int:
            raise WeightsError(f"{run}: its recorded recipe_id or seed is not one a run writes: give the file (--out)")
        out = run_dir / EXPORT / f"{name}-{recipe_id}-seed{seed}.pt"
    out = Path(out)
    record = {**record, "source": str(Path(record["source"]).resolve())}
    atomic_write(out, lambda file: torch.save(record, file), run_dir if default else None)
    return out
