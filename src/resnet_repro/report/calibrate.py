"""Calibration of the scorecard by simulation: how often it gives a false verdict, and how often each claim holds
when the paper's effects are real, at 2, 3 and 5 seeds per network.

A simulated sweep draws every network's metrics from a world (a mean and a seed std per network and metric, each
seed independent and normal) and goes through the same claim code as a real report (claims.evaluate). A verdict
is false when the world makes it untrue: "holds" where the claim is not true in the world's means, "does not hold"
where it is not false there (claims.truth). Two worlds come with the project: the paper's (its numbers for
CIFAR-10 and ImageNet, `paper_world`) and a null world (every network of a family alike in every metric, and the
gradient measure on its bound); `--world FILE` brings another (a JSON {"family", "dataset", "nets": {label:
{metric: [mean, std]}}}), such as a short budget's measured errors, with its null.

    python -m resnet_repro.report --calibrate --json [--world FILE] [--sims N]
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_repro.errors import UserError
from resnet_repro.files import read_json
from resnet_repro.report import claims
from resnet_repro.report.collect import Group, Run
from resnet_repro.report.paper import paper_value
from resnet_repro.report.stats import FAILS, HOLDS
from resnet_repro.runs.recipe import fingerprint

SEEDS = (2, 3, 5)
TEST_STD = 0.2  # pp: the seed std of CIFAR-10 test error (Table 6's ResNet-110: 0.16; reproductions: about 0.2)
METRICS = ("test_err", "train_err", "response", "gradient_decay")
TITLES = {"cifar10": "CIFAR-10", "imagenet": "ImageNet"}


@dataclass(frozen=True)
class World:
    """The true mean and seed std of each metric of each network of one dataset (family: "cifar" or "imagenet")."""

    name: str
    family: str
    dataset: str
    nets: dict[str, dict[str, tuple[float, float]]]
    assumptions: str

    def null(self) -> World:
        """The same networks alike: each metric at its mean over the networks (the gradient measure on the claims'
        bound), with the same seed stds."""
        metrics = {m for values in self.nets.values() for m in values}
        alike = {}
        for metric in metrics:
            means = [values[metric][0] for values in self.nets.values() if metric in values]
            alike[metric] = -1.0 if metric == "gradient_decay" else sum(means) / len(means)
        nets = {net: {m: (alike[m], std) for m, (_, std) in values.items()} for net, values in self.nets.items()}
        return World(
            f"null of {self.name}", self.family, self.dataset, nets, "every network alike: " + self.assumptions
        )


def paper_world() -> list[World]:
    """The paper's networks at the paper's numbers: CIFAR-10 (Fig. 6, Table 6: plain-20..56, ResNet-20..110 and
    1202, and options B and C of ResNet-20/56 at option A's error, as Table 3 finds them alike) and ImageNet
    (Tables 2 and 3). Seed stds: TEST_STD for test error; training error with the same relative spread as the
    test error of its network; ResNet-1202's training error at 0.05% (Table 6: below 0.1%)."""
    cifar: dict[str, dict[str, tuple[float, float]]] = {}
    labels = [f"plain-{d}" for d in (20, 32, 44, 56)] + [f"ResNet-{d}" for d in (20, 32, 44, 56, 110, 1202)]
    for label in labels:
        test = paper_value("cifar", label, "test_err")
        train = paper_value("cifar", label, "train_err")
        train = 0.05 if train is None else train
        cifar[label] = {"test_err": (test, TEST_STD), "train_err": (train, TEST_STD * train / test)}
    for depth in (20, 56):
        for option in "BC":
            cifar[f"ResNet-{depth}-{option}"] = dict(cifar[f"ResNet-{depth}"])
    imagenet = {}
    for label in ("plain-18", "plain-34", "ResNet-18-A", "ResNet-34-A", "ResNet-34-B", "ResNet-34-C"):
        imagenet[label] = {"test_err": (paper_value("imagenet", label, "test_err"), TEST_STD)}
    std = f"seed std {TEST_STD} pp of test error (an assumption: the paper gives Table 6's 0.16 for ResNet-110 only)"
    return [
        World("the paper's CIFAR-10", "cifar", "cifar10", cifar, std),
        World("the paper's ImageNet", "imagenet", "imagenet", imagenet, std),
    ]


def null_world() -> list[World]:
    """The paper's networks, alike: every metric Fig. 7 and Sec. 4.1 test too (response std 1.0 ± 0.05, gradient
    measure −1 ± 0.1 decades on the plain nets)."""
    worlds = []
    for world in paper_world():
        nets = {}
        for label, values in world.nets.items():
            nets[label] = {**values, "response": (1.0, 0.05)}
            if label.startswith("plain"):
                nets[label]["gradient_decay"] = (-1.0, 0.1)
        worlds.append(World(world.name, world.family, world.dataset, nets, world.assumptions).null())
    return worlds


LABEL = re.compile(r"(plain|ResNet)-[1-9][0-9]{0,3}(-[ABC])?")  # plain-56, ResNet-20, ResNet-34-B


def read_world(path: Path) -> list[World]:
    """A world from a JSON file: {"family", "dataset", "nets": {label: {metric: [mean, std]}}, "assumptions"};
    UserError naming what is wrong otherwise."""
    data = read_json(path)  # never through a link, never blocking on a FIFO, bounded
    if data is None:
        raise UserError(f"--world {path}: not a regular JSON file (missing, a link, a FIFO or not valid JSON)")
    try:
        nets = {
            str(label): {str(m): (float(v[0]), float(v[1])) for m, v in metrics.items() if m in METRICS}
            for label, metrics in data["nets"].items()
        }
        family, dataset = str(data["family"]), str(data["dataset"])
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
        raise UserError(f"--world {path}: not a world file ({err}); see python -m resnet_repro.report --help") from err
    if family not in ("cifar", "imagenet") or not nets:
        raise UserError(f"--world {path}: family must be cifar or imagenet and nets must name networks")
    for label, metrics in nets.items():
        if not LABEL.fullmatch(label):
            raise UserError(f"--world {path}: {label!r} is no network label (plain-56, ResNet-20, ResNet-34-B)")
        for metric, (mean, std) in metrics.items():
            if not (math.isfinite(mean) and math.isfinite(std) and std >= 0):
                raise UserError(f"--world {path}: {label} {metric} needs a finite mean and a std >= 0")
    return [World(path.stem, family, dataset, nets, str(data.get("assumptions", "")))]


class SimulatedRun(Run):
    """A run whose metrics were drawn from a world rather than trained: the claim code reads it as any run."""

    def __init__(self, label: str, world: World, seed: int, drawn: dict[str, float]) -> None:
        kind, depth, *option = label.split("-")
        target = "ImageNetResNet" if world.family == "imagenet" else "CifarResNet"
        recipe = {
            "model._target_": f"resnet_repro.models.{target}",
            "model.depth": int(depth),
            "model.residual": kind == "ResNet",
            "model.shortcut": option[0] if option else ("B" if world.family == "imagenet" else "A"),
            "data.name": world.dataset,
        }
        config = {"data": {"family": world.family, "title": TITLES.get(world.dataset, world.dataset)}}
        super().__init__(Path(label, f"seed={seed}"), "completed", seed, recipe, {"config": config})
        self.drawn = drawn

    def value(self, metric: str) -> float | None:
        return self.drawn.get(metric)


def sweep(worlds: list[World], seeds: int, rng: random.Random) -> list[tuple[str, list[Group]]]:
    """One simulated sweep: `seeds` runs of every network of every world, each world one setting."""
    settings = []
    for world in worlds:
        groups = []
        for label, metrics in world.nets.items():
            runs = []
            for seed in range(seeds):
                drawn = {m: rng.gauss(mean, std) for m, (mean, std) in metrics.items()}
                drawn = {m: max(0.0, v) if m.endswith("_err") else v for m, v in drawn.items()}
                runs.append(SimulatedRun(label, world, seed, drawn))
            recipe = runs[0].recipe
            groups.append(Group(fingerprint(recipe), recipe, runs))
        settings.append((world.dataset, groups))
    return settings


def truth(claim: claims.Claim, world: World) -> frozenset[str] | None:
    """The decisive verdicts on `claim` that the world's means make correct: "holds" when every comparison is
    true there (a depth series' steps aside: "holds" asserts its trend and that no step is shown reversed, not
    that every step falls), "does not hold" when any comparison, a step included, is false there; empty when
    neither is (an effect of exactly zero, a value on the bound); None when the world lacks a network or metric
    the claim needs."""
    means = {net: {m: mean for m, (mean, _) in metrics.items()} for net, metrics in world.nets.items()}
    if any(net not in means or c.metric not in means[net] for c in claim.comparisons for net in c.nets):
        return None
    holds, fails = True, False
    for c in claim.comparisons:
        values = [means[net][c.metric] for net in c.nets]
        if c.kind == "similar":
            margin, gap = c.margin.of(values[:1]), values[1] - values[0]
            inside = gap < margin if c.margin.one_sided else abs(gap) < margin
            holds, fails = holds and inside, fails or not inside
            continue
        effect = c.estimate(values) - (c.bound if c.kind == "bound" else 0.0)
        effect *= 1 if c.expect in (claims.HIGHER, claims.ABOVE) else -1  # > 0: the way the claim says
        fails = fails or effect < 0
        if c.kind != "reversal":
            holds = holds and effect > 0
    return frozenset({HOLDS} if holds else set()) | frozenset({FAILS} if fails else set())


def false_verdict(verdict: str, correct: frozenset[str] | None) -> bool:
    return verdict in (HOLDS, FAILS) and verdict not in (correct or frozenset())


def simulate(worlds: list[World], seeds: int, sims: int, rng: random.Random) -> dict[str, Any]:
    """The rate of sweeps with any false verdict, and each claim's rate of "holds" (its power where it is true)."""
    by_dataset = {w.dataset: w for w in worlds}
    truths = {(c.id, w.dataset): truth(c, w) for c in claims.CLAIMS for w in worlds}
    any_false, holds, wrong = 0, {c.id: 0 for c in claims.CLAIMS}, {c.id: 0 for c in claims.CLAIMS}
    for _ in range(sims):
        results = claims.evaluate(sweep(worlds, seeds, rng), plan=False)
        found = False
        for r in results:
            if r.dataset is None:
                continue
            holds[r.id] += r.verdict == HOLDS
            if false_verdict(r.verdict, truths[(r.id, r.dataset)]):
                wrong[r.id] += 1
                found = True
        any_false += found
    true_claims = {c.id for c in claims.CLAIMS if any(HOLDS in (truths[(c.id, d)] or ()) for d in by_dataset)}
    return {
        "any_false": any_false / sims,
        "power": {str(i): (holds[i] / sims if i in true_claims else None) for i in holds},
        "wrong_by_claim": {str(i): n / sims for i, n in wrong.items() if n},
    }


def calibrate(worlds: list[World] | None = None, sims: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The calibration table: for 2, 3 and 5 seeds per network, the rate of any false verdict over the whole
    scorecard in the null world and in the effect world, and each claim's power in the effect world."""
    effect = worlds or paper_world()
    null = [w.null() for w in worlds] if worlds else null_world()
    rng = random.Random(seed)
    out: dict[str, Any] = {
        "sims": sims,
        "worlds": {w.name: w.assumptions for w in (*effect, *null)},
        "target": "any false verdict at most 0.05 at every seed count; power at least 0.8 where the claim is true",
    }
    for n in SEEDS:
        at_null, at_effect = simulate(null, n, sims, rng), simulate(effect, n, sims, rng)
        out[str(n)] = {
            "any_false_verdict_null": at_null["any_false"],
            "any_false_verdict_effects": at_effect["any_false"],
            "power": at_effect["power"],
            "wrong_verdicts_by_claim": {"null": at_null["wrong_by_claim"], "effects": at_effect["wrong_by_claim"]},
        }
    return out


def table(result: dict[str, Any]) -> str:
    """The calibration as a markdown table (the form experiments/README.md quotes)."""
    ids = [str(c.id) for c in claims.CLAIMS]
    lines = [
        "| seeds per network | any false verdict, null | any false verdict, effects | "
        + " | ".join(f"power {i}" for i in ids)
        + " |",
        "|---:|---:|---:|" + "---:|" * len(ids),
    ]
    for n in SEEDS:
        row = result[str(n)]
        powers = ["–" if row["power"][i] is None else f"{row['power'][i]:.3f}" for i in ids]
        lines.append(
            f"| {n} | {row['any_false_verdict_null']:.3f} | {row['any_false_verdict_effects']:.3f} | "
            + " | ".join(powers)
            + " |"
        )
    return "\n".join(lines)
