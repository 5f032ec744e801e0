"""The paper's claims that runs can test, each with a verdict (holds / does not hold / inconclusive / not run).

Every claim is checked within one setting (groups whose recipes differ only in the network, so that like is
compared with like) and reports the statistic behind its verdict (stats.py). Thresholds stated here:
- "similar" training error (ResNet-1202 vs 110) and "within a small margin" (shortcut options) mean the whole 95%
  interval of the difference lies inside +-SIMILAR_PP; the paper's own A-to-C spread on ImageNet is 0.84 pp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resnet_repro.report import stats
from resnet_repro.report.collect import Group
from resnet_repro.report.stats import Interval

SIMILAR_PP = 1.0  # percentage points
TRAIN = "python -m resnet_repro.train -m"


@dataclass
class ClaimResult:
    """One claim's verdict in one setting, with the statistics behind it."""

    id: int
    claim: str
    source: str
    verdict: str
    evidence: list[str] = field(default_factory=list)
    setting: str = ""
    command: str | None = None  # what runs it, when it was not run
    statistics: list[dict[str, Any]] = field(default_factory=list)

    def add(self, what: str, interval: Interval | None, verdict: str, unit: str = "pp") -> str:
        text = interval.text(unit) if interval is not None else "too few runs for an interval"
        self.evidence.append(f"{what}: {text} → {verdict}")
        self.statistics.append({"what": what, "verdict": verdict, **(interval.as_dict() if interval else {})})
        return verdict


@dataclass(frozen=True)
class Claim:
    id: int
    claim: str
    source: str
    dataset: str
    command: str
    check: Callable[[ClaimResult, dict[str, Group], dict[str, float | None]], list[str] | None]


def compare(
    result: ClaimResult, a: Group, b: Group, metric: str, floors: dict[str, float | None], verdict_of: Callable
) -> str:
    """Record and judge b - a of `metric` (percent error, or the Fig. 7 response std)."""
    if metric == "response":
        x, y, unit = a.responses(), b.responses(), "std"
    else:
        x, y, unit = a.values(metric), b.values(metric), "pp"
    if not x or not y:
        return result.add(f"{b.label} − {a.label} {metric}", None, stats.INCONCLUSIVE)
    interval = stats.difference(x, y, floors.get(metric))
    return result.add(f"{b.label} − {a.label} {metric}", interval, verdict_of(interval), unit)


def degradation(result: ClaimResult, g: dict[str, Group], floors: dict) -> list[str] | None:
    plain = sorted((x for x in g.values() if not x.residual and x.family == "cifar"), key=lambda x: x.depth)
    if len(plain) < 2:
        return None
    shallow, deep = plain[0], plain[-1]
    verdicts = [compare(result, shallow, deep, m, floors, stats.above) for m in ("train_err", "test_err")]
    if len(plain) >= 3:  # the ordering of the plain curves: training error grows with depth
        trend = depth_trend(plain, "train_err")
        verdicts.append(result.add("plain train_err per doubling of depth (trend test)", trend, stats.above(trend)))
    return verdicts


def depth_trend(groups: list[Group], metric: str) -> Interval | None:
    depths = [g.depth for g in groups for _ in g.values(metric)]
    return stats.trend(depths, [v for g in groups for v in g.values(metric)])


def residual_fixes_it(result: ClaimResult, g: dict[str, Group], floors: dict) -> list[str] | None:
    verdicts = []
    for plain in (x for x in g.values() if not x.residual and x.family == "cifar"):
        resnet = g.get(f"ResNet-{plain.depth}")
        if resnet is not None:
            verdicts += [compare(result, plain, resnet, m, floors, stats.below) for m in ("train_err", "test_err")]
    return verdicts or None


def depth_helps(result: ClaimResult, g: dict[str, Group], floors: dict) -> list[str] | None:
    resnets = sorted(
        (x for x in g.values() if x.residual and x.shortcut == "A" and x.depth <= 110 and x.family == "cifar"),
        key=lambda x: x.depth,
    )
    if len(resnets) < 2:
        return None
    pairs = [compare(result, a, b, "test_err", floors, stats.below) for a, b in zip(resnets, resnets[1:], strict=False)]
    trend = depth_trend(resnets, "test_err")
    if trend is None:  # too few runs for a slope: every adjacent pair decides
        return pairs
    return [result.add("ResNet test_err per doubling of depth (trend test)", trend, stats.below(trend))]


def overfits(result: ClaimResult, g: dict[str, Group], floors: dict) -> list[str] | None:
    r110, r1202 = g.get("ResNet-110"), g.get("ResNet-1202")
    if r110 is None or r1202 is None:
        return None
    test = compare(result, r110, r1202, "test_err", floors, stats.above)
    similar = compare(result, r110, r1202, "train_err", floors, lambda i: stats.within(i, SIMILAR_PP))
    return [test, similar]


def responses(result: ClaimResult, g: dict[str, Group], floors: dict) -> list[str] | None:
    verdicts = []
    for plain in (x for x in g.values() if not x.residual and x.family == "cifar"):
        resnet = g.get(f"ResNet-{plain.depth}")
        if resnet is not None and plain.responses() and resnet.responses():
            verdicts.append(compare(result, plain, resnet, "response", {}, stats.below))
    resnets = sorted(
        (x for x in g.values() if x.residual and x.shortcut == "A" and x.responses()), key=lambda x: x.depth
    )
    for a, b in zip(resnets, resnets[1:], strict=False):
        verdicts.append(compare(result, a, b, "response", {}, stats.below))
    return verdicts or None


def shortcuts(result: ClaimResult, g: dict[str, Group], floors: dict) -> list[str] | None:
    verdicts = []
    for a in (x for x in g.values() if x.residual and x.shortcut == "A"):
        for option in "BC":
            other = next((x for x in g.values() if x.residual and x.depth == a.depth and x.shortcut == option), None)
            if other is not None:
                verdicts.append(compare(result, a, other, "test_err", floors, lambda i: stats.within(i, SIMILAR_PP)))
    return verdicts or None


def imagenet_depth(result: ClaimResult, g: dict[str, Group], floors: dict) -> list[str] | None:
    p18, p34, r18, r34 = (g.get(name) for name in ("plain-18", "plain-34", "ResNet-18-A", "ResNet-34-A"))
    verdicts = []
    if p18 and p34:
        verdicts.append(compare(result, p18, p34, "test_err", floors, stats.above))
    if r18 and r34:
        verdicts.append(compare(result, r18, r34, "test_err", floors, stats.below))
    if p34 and r34:
        verdicts.append(compare(result, p34, r34, "test_err", floors, stats.below))
    return verdicts or None


CLAIMS = [
    Claim(
        1,
        "Degradation: the deeper plain net has higher training and test error (plain-56 vs plain-20), and "
        "plain training error grows with depth",
        "Fig. 1, Fig. 6 left",
        "cifar10",
        f"{TRAIN} experiment=fig6 seed=0,1,2",
        degradation,
    ),
    Claim(
        2,
        "Residual learning removes it: each ResNet has lower training and test error than the plain net of its depth",
        "Fig. 6, Sec. 4.2",
        "cifar10",
        f"{TRAIN} experiment=fig6 seed=0,1,2",
        residual_fixes_it,
    ),
    Claim(
        3,
        "Depth helps residual nets: test error falls from ResNet-20 to 32, 44, 56, 110",
        "Table 6",
        "cifar10",
        f"{TRAIN} experiment=table6 seed=0,1,2,3,4",
        depth_helps,
    ),
    Claim(
        4,
        "ResNet-1202 overfits: higher test error than ResNet-110 with a similar training error",
        "Table 6, Sec. 4.2",
        "cifar10",
        f"{TRAIN} experiment=resnet1202 seed=0 (and experiment=table6)",
        overfits,
    ),
    Claim(
        5,
        "Layer responses: residual nets respond less than plain nets of the same depth, and deeper ResNets "
        "less than shallower ones (mean std over the 3x3 layers)",
        "Fig. 7",
        "cifar10",
        f"{TRAIN} experiment=fig7 seed=0,1,2",
        responses,
    ),
    Claim(
        6,
        "Shortcut options A, B, C give test errors within a small margin (CIFAR: our extension)",
        "Table 3",
        "cifar10",
        f"{TRAIN} experiment=shortcuts_cifar seed=0,1,2",
        shortcuts,
    ),
    Claim(
        6,
        "Shortcut options A, B, C of ResNet-34 give top-1 errors within a small margin",
        "Table 3",
        "imagenet",
        f"{TRAIN} experiment=imagenet_table3 data.root=/data/imagenet",
        shortcuts,
    ),
    Claim(
        7,
        "ImageNet: plain-34 is worse than plain-18; ResNet-34 is better than ResNet-18 and than plain-34",
        "Table 2",
        "imagenet",
        f"{TRAIN} experiment=imagenet_table2 data.root=/data/imagenet",
        imagenet_depth,
    ),
]


def evaluate(
    settings: dict[str, list[list[Group]]], floors: dict[str, dict[str, float | None]], describe: Callable
) -> list[ClaimResult]:
    """Every claim in every setting of its dataset that has its runs; "not run" (with the command) otherwise.

    `settings`: {dataset: [groups of one setting, ...]}; `floors`: {dataset: {metric: noise floor or None}};
    `describe(groups)`: the setting in words (how it departs from the paper's recipe).
    """
    results = []
    for claim in CLAIMS:
        tested = False
        for groups in settings.get(claim.dataset, []):
            result = ClaimResult(claim.id, claim.claim, claim.source, stats.NOT_RUN, setting=describe(groups))
            verdicts = claim.check(result, {g.label: g for g in groups}, floors.get(claim.dataset, {}))
            if verdicts is not None:
                result.verdict = stats.combine(verdicts)
                results.append(result)
                tested = True
        if not tested:
            results.append(ClaimResult(claim.id, claim.claim, claim.source, stats.NOT_RUN, command=claim.command))
    return results
