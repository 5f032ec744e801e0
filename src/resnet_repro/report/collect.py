"""Collection: run directories -> runs (what each recorded) -> groups of one recipe (seeds of one experiment)."""

from __future__ import annotations

import logging
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from resnet_repro.config import declared_dataset, net_keys
from resnet_repro.errors import escaped
from resnet_repro.runs import records
from resnet_repro.runs.layout import GRADIENT_NORMS, LAYER_RESPONSES, RECIPE, RESULTS
from resnet_repro.runs.lock import holder, holder_text
from resnet_repro.runs.recipe import ADDED_LATER, fingerprint, flatten, is_recipe_key
from resnet_repro.runs.records import RecordError, not_trained

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Net:
    """What a claim or a figure calls a network: its family, depth, plain or residual, and shortcut option."""

    family: str  # "cifar" (32x32, Sec. 4.2) or "imagenet" (Table 1)
    depth: int
    residual: bool
    shortcut: str

    @property
    def label(self) -> str:
        """plain-56, ResNet-56, ResNet-56-B (CIFAR's default is A), ResNet-34-A (ImageNet names every option)."""
        if not self.residual:
            return f"plain-{self.depth}"
        default = "A" if self.family == "cifar" else "B"
        named = self.shortcut != default or (self.family == "imagenet" and self.depth == 34)
        return f"ResNet-{self.depth}-{self.shortcut}" if named else f"ResNet-{self.depth}"


@dataclass
class Run:
    """One run directory and what it recorded."""

    path: Path
    status: str
    seed: int | None
    recipe: dict[str, Any]
    results: dict[str, Any]
    told_apart: dict[str, Any] = field(default_factory=dict)  # keys outside the recipe that split groups (--compare)
    where: str = ""  # its path below the sweep (the sweep's name first when a report reads several)

    def setting_value(self, key: str) -> Any:
        """The run's value of config key `key`: a told-apart key's as its config recorded it; a recipe key's from
        its recipe; a key the recipe leaves out (added later, at the value that does what was done before it) as
        the run's config recorded it, else recipe.ADDED_LATER's value."""
        if key in self.told_apart:
            return self.told_apart[key]
        if key in self.recipe:
            return self.recipe[key]
        return self.config.get(key, ADDED_LATER.get(key))

    @property
    def metrics(self) -> dict[str, Any]:
        metrics = self.results.get("metrics")
        return metrics if isinstance(metrics, dict) else {}

    @property
    def network(self) -> dict[str, Any]:
        """The network's class and family as the run recorded them (empty for runs recorded before)."""
        network = self.results.get("network")
        return network if isinstance(network, dict) else {}

    @property
    def error(self) -> str | None:
        return self.results.get("error")

    @cached_property
    def config(self) -> dict[str, Any]:
        """The run's resolved config as results.json recorded it, flat (data.title, compile, ...); empty if none."""
        config = self.results.get("config")
        return flatten(config) if isinstance(config, dict) else {}

    @property
    def segments(self) -> list[dict[str, Any]]:
        """Who trained which steps (results.json; one per process, more when resumed)."""
        return self.results.get("segments") or []

    def record(self) -> dict[str, Any]:
        """What the report reads of this run, as one JSON object (an entry of the report's runs.json, from which
        the report regenerates): results.json without the machine's paths (data.path and data.root; of the config
        only the dataset's declaration and the told-apart keys), the layer responses and the gradient norms."""
        results = {k: v for k, v in self.results.items() if k != "config"}
        if isinstance(results.get("data"), dict):
            results["data"] = {k: v for k, v in results["data"].items() if k not in ("path", "root")}
        kept = {k: v for k, v in self.config.items() if k in ("data.title", "data.family") or k in self.told_apart}
        config: dict[str, Any] = {}
        for key, value in kept.items():  # nested again, as results.json holds it
            *parents, last = key.split(".")
            node = config
            for parent in parents:
                node = node.setdefault(parent, {})
            node[last] = value
        return {
            "run": self.where,
            **results,
            "config": config,
            "gradient_norms": self.gradients,
            "layer_responses": self.responses,
        }

    @cached_property
    def responses(self) -> dict[str, float] | None:
        """Fig. 7: the response std of each 3x3 layer in network order (layer_responses.json), read once."""
        return self.layers(LAYER_RESPONSES)

    @cached_property
    def gradients(self) -> dict[str, float] | None:
        """Sec. 4.1: the mean gradient norm at each 3x3 layer's response in network order (gradient_norms.json)."""
        return self.layers(GRADIENT_NORMS)

    def layers(self, name: str) -> dict[str, float] | None:
        """A {layer: number} record of this run, None when missing or not one (warned)."""
        try:
            return records.read(self.path / name, records.layers)
        except RecordError as err:
            log.warning("%s", err)
            return None

    def value(self, metric: str) -> float | None:
        """A number of this run: a recorded metric (test_err, train_err, ...) or one derived from its layers:
        `response` (Fig. 7: the mean over layers of the response std) and `gradient_decay` (Sec. 4.1, our
        measure: log10 of the gradient size at the weakest 3x3 layer over that at the last; -1 is a tenfold loss).
        None when the run did not record it, recorded something that is not a finite number, or recorded
        train_err by an older definition (the last logging window, without `train_window`)."""
        if metric == "response":
            values = numbers(self.responses)
            return statistics.mean(values) if values else None
        if metric == "gradient_decay":
            norms = numbers(self.gradients)
            return math.log10(min(norms) / norms[-1]) if len(norms) >= 2 and min(norms) > 0 else None
        if metric in ("train_err", "train_loss") and "train_window" not in self.metrics:
            return None
        value = self.metrics.get(metric)
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def numbers(layers: Any) -> list[float]:
    """The values of a {layer: number} record in order; empty when it is not one (a file from elsewhere)."""
    if not isinstance(layers, dict):
        return []
    values = list(layers.values())
    ok = all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    return [float(v) for v in values] if ok else []


@dataclass
class Group:
    """The completed runs of one recipe: one row of a table, n = its number of seeds."""

    recipe_id: str
    recipe: dict[str, Any]
    runs: list[Run] = field(default_factory=list)
    told_apart: dict[str, Any] = field(default_factory=dict)  # its runs' values of keys outside the recipe

    @property
    def key(self) -> str:
        """What tells it from every other group: its recipe and its told-apart values."""
        return fingerprint({"recipe": self.recipe, "told_apart": self.told_apart})

    def setting_value(self, key: str) -> Any:
        return self.runs[0].setting_value(key) if self.runs else None

    @property
    def net_family(self) -> str:
        """The family of the network's class, as its runs recorded it (results.json `network`, from the table of
        architectures, models/registry.py); runs recorded before it: ImageNetResNet is "imagenet", else "cifar"."""
        recorded = [run.network.get("family") for run in self.runs if isinstance(run.network.get("family"), str)]
        if recorded and recorded[0]:
            return recorded[0]
        return "imagenet" if str(self.recipe.get("model._target_", "")).endswith("ImageNetResNet") else "cifar"

    @property
    def dataset(self) -> str:
        return str(self.recipe.get("data.name", "imagenet" if self.net_family == "imagenet" else "cifar10"))

    def declared(self, key: str) -> Any:
        """What the dataset's config declares for `key` (title, family), as its runs recorded it; for runs recorded
        before the key existed, the declaration in conf/data/ of the same name; None when neither has it."""
        recorded = [run.config[f"data.{key}"] for run in self.runs if run.config.get(f"data.{key}") is not None]
        return recorded[0] if recorded else declared_dataset(self.dataset).get(key)

    @property
    def title(self) -> str:
        """The dataset's title (data.title: "CIFAR-10"), its name when nothing declares one."""
        return str(self.declared("title") or self.dataset)

    @property
    def family(self) -> str:
        """The family of images the dataset declares (data.family): "cifar" (32x32, Sec. 4.2) or "imagenet"."""
        return str(self.declared("family") or self.net_family)

    @property
    def net(self) -> Net:
        recipe = self.recipe
        shortcut = str(recipe.get("model.shortcut", "A")).upper()
        depth, residual = int(recipe.get("model.depth", 0)), bool(recipe.get("model.residual", True))
        return Net(self.net_family, depth, residual, shortcut)

    @property
    def depth(self) -> int:
        return self.net.depth

    @property
    def residual(self) -> bool:
        return self.net.residual

    @property
    def shortcut(self) -> str:
        return self.net.shortcut

    @property
    def label(self) -> str:
        return self.net.label

    @property
    def setting(self) -> dict[str, Any]:
        """The recipe without the keys that name the network, and the told-apart values: groups that share it
        differ only in the net."""
        return {**{k: v for k, v in self.recipe.items() if k not in net_keys()}, **self.told_apart}

    def values(self, metric: str) -> list[float]:
        """`metric` of every run of the group that has it (Run.value)."""
        return [value for run in self.runs if (value := run.value(metric)) is not None]

    def by_seed(self, metric: str) -> dict[int, float]:
        return {run.seed: value for run in self.runs if (value := run.value(metric)) is not None}


def utf8(path: Path) -> bool:
    """Whether a path is valid UTF-8 text (a folder name from another file system may not be)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def find_runs(sweeps: list[Path], told_apart: tuple[str, ...] = ()) -> list[Run]:
    """Every run directory (one with recipe.json or results.json) under the sweeps, with what it recorded.

    `told_apart`: keys that are not recipe keys (compile, data.loader: how a run computed its numbers) whose value,
    as the run's config recorded it, is kept beside its recipe (Run.told_apart), so that runs which differ there
    fall in groups of their own (report --compare); a run that did not record the key gets None.
    """
    runs, several = [], len(sweeps) > 1
    for sweep in sweeps:
        run_dirs = {p.parent for name in (RECIPE, RESULTS) for p in sweep.rglob(name)}
        for run_dir in sorted(run_dirs):
            where = run_dir.relative_to(sweep).as_posix()
            if not utf8(run_dir):  # listed among the runs left out, its name's other bytes as escapes
                error = "its folder name is not UTF-8 (rename it to report it); left out"
                where = escaped(f"{sweep.name}/{where}" if several else where)
                runs.append(Run(run_dir, "unreadable", None, {}, {"status": "unreadable", "error": error}, where=where))
                continue
            try:  # a file from elsewhere may hold anything: read through the gate (records.py)
                identity = records.read(run_dir / RECIPE, records.identity) or {}
                results = records.read(run_dir / RESULTS, records.results) or {"status": "unfinished"}
            except RecordError as err:
                identity, results = {}, {"status": "unreadable", "error": f"{err}; left out"}
            held = holder(run_dir) if results["status"] != "completed" else None
            if held is not None:  # being trained right now (lock.py)
                results = {**results, "status": "held by another process", "error": holder_text(held)}
            recipe = results.get("recipe") or identity.get("recipe")
            untrained = not_trained(results, recipe)
            if untrained:  # the report recounts: a status alone does not make a run completed
                results = {"status": "not completed", "error": f"recorded completed, but {untrained}; left out"}
            config = as_dict(results.get("config"))
            if not isinstance(recipe, dict):  # recorded by a version without run identities: its config's keys
                recipe = {k: v for k, v in flatten(config).items() if is_recipe_key(k)}
            seed = results.get("seed", identity.get("seed", config.get("seed")))
            run = Run(
                run_dir, results["status"], seed, recipe, results, where=f"{sweep.name}/{where}" if several else where
            )
            run.told_apart = {key: run.config.get(key) for key in told_apart}
            runs.append(run)
    return runs


def keep_splitting_keys(runs: list[Run]) -> None:
    """Drop from every run's told-apart values a key that has one value across all the runs: it splits no group,
    and the settings (and their ids) stay those of a report without it."""
    keys = {key for run in runs for key in run.told_apart}
    uniform = [key for key in keys if len({fingerprint({"v": run.told_apart.get(key)}) for run in runs}) == 1]
    for run in runs:
        for key in uniform:
            run.told_apart.pop(key, None)


def group_runs(runs: list[Run]) -> list[Group]:
    """The completed runs grouped by recipe (seed apart), ordered by dataset, setting, plain before ResNet, depth.

    Runs of one recipe whose told-apart values differ (find_runs) form groups of their own. A seed counts once in
    its group: a second completed run of one recipe and seed (the same run copied, or run again under another
    folder) is marked "not counted", naming the run that is."""
    groups: dict[str, Group] = {}
    for run in runs:
        if run.status == "completed":
            candidate = Group(fingerprint(run.recipe), run.recipe, told_apart=run.told_apart)
            group = groups.setdefault(candidate.key, candidate)
            twin = next((other for other in group.runs if other.seed == run.seed), None)
            if twin is not None:
                run.status = "not counted"
                run.results = {**run.results, "error": f"the recipe and seed of {twin.where}, which is counted"}
                continue
            group.runs.append(run)
    return sorted(groups.values(), key=lambda g: (g.dataset, fingerprint(g.setting), g.residual, g.shortcut, g.depth))


def by_dataset(groups: list[Group]) -> dict[str, list[Group]]:
    out: dict[str, list[Group]] = defaultdict(list)
    for group in groups:
        out[group.dataset].append(group)
    return dict(out)


def by_setting(groups: list[Group]) -> list[list[Group]]:
    """Groups that share everything but the network, together (the runs a claim may compare)."""
    out: dict[str, list[Group]] = defaultdict(list)
    for group in groups:
        out[fingerprint(group.setting)].append(group)
    return list(out.values())
