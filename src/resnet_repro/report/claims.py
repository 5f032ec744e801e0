"""The paper's claims that runs can test, declared as data, and their verdicts (holds / does not hold /
inconclusive / not run).

A claim declares, per dataset family, the comparisons it stands for: which networks (by what they are, `Nets`),
which metric, and the expected direction or equivalence margin. It is judged within one setting (groups whose
recipes differ only in the network, so like is compared with like); its m comparisons are tested each at
1 - 0.05/m (Bonferroni), so that the claim's intervals hold together with 95% probability; it holds when every
comparison does, does not hold when any comparison shows the opposite, and is inconclusive otherwise. On a dataset
other than the paper's, a claim is reported as our extension. Adding a claim is one `Claim(...)` below.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations
from typing import Any

from resnet_repro.report import stats
from resnet_repro.report.collect import Group
from resnet_repro.report.paper import paper_numbers
from resnet_repro.report.stats import Interval
from resnet_repro.runs.recipe import fingerprint

TRAIN = "python -m resnet_repro.train -m"
HIGHER, LOWER, SIMILAR, ABOVE = "higher", "lower", "similar", "above"
UNITS = {"test_err": "pp", "train_err": "pp", "response": "std", "gradient_decay": "decades"}


@cache
def shortcut_spread() -> float:
    """Table 3's largest difference between the shortcut options A, B and C of ResNet-34 (top-1, pp): 0.84."""
    table3 = paper_numbers()["imagenet"]["table3"]
    top1 = [table3[f"resnet34_{option}"][0] for option in "abc"]
    return round(max(abs(x - y) for x, y in combinations(top1, 2)), 2)


@cache
def shortcut_margin() -> float:
    """What 'small' means for the options (pp): half of what residual learning gains at depth 34 (Table 2: plain-34
    28.54 − ResNet-34 25.03 = 3.51, so 1.75). The paper calls Table 3's spread (0.84) small next to that gain; a
    margin of the spread itself would leave a reproduction of Table 3 on the boundary."""
    table2 = paper_numbers()["imagenet"]["table2_top1"]
    return round((table2["plain34"] - table2["resnet34"]) / 2, 2)


@dataclass(frozen=True)
class Margin:
    """An equivalence margin: `pp` absolute, or `relative` to the first side's mean (at least `at_least`)."""

    why: str
    pp: float | None = None
    relative: float | None = None
    at_least: float = 0.0

    def of(self, reference: list[float]) -> float:
        if self.pp is not None:
            return self.pp
        return max(self.relative * sum(reference) / len(reference), self.at_least)


TRAIN_SIMILAR = Margin(
    "half of ResNet-110's training error, at least 0.05 pp: the paper calls <0.1% (ResNet-1202) and ~0.1% "
    "(ResNet-110) similar",
    relative=0.5,
    at_least=0.05,
)


@dataclass(frozen=True)
class Nets:
    """The networks of a setting that a comparison takes: plain or residual, one shortcut option, some depths."""

    residual: bool | None = None
    shortcut: str | None = None
    depths: tuple[int, ...] | None = None
    max_depth: int | None = None

    def select(self, groups: list[Group]) -> list[Group]:
        """The matching groups, shallow to deep."""
        return sorted(
            (
                g
                for g in groups
                if (self.residual is None or g.net.residual == self.residual)
                and (self.shortcut is None or not g.net.residual or g.net.shortcut == self.shortcut)
                and (self.depths is None or g.net.depth in self.depths)
                and (self.max_depth is None or g.net.depth <= self.max_depth)
            ),
            key=lambda g: (g.net.depth, g.net.shortcut),
        )


@dataclass(frozen=True)
class Comparison:
    """One tested statement: b − a (or a trend, or a mean against a bound) in `metric`, and what is expected."""

    kind: str  # "difference", "trend" or "bound"
    what: str
    metric: str
    expect: str
    a: list[Group]
    b: list[Group] = field(default_factory=list)
    margin: Margin | None = None
    bound: float | None = None


@dataclass(frozen=True)
class Part:
    """A kind of comparison over the networks of a setting.

    kind: "extremes" (the shallowest against the deepest of `a`), "steps" (each depth of `a` against the next),
    "trend" (the slope over log2 depth of `a`, 3 depths or more), "matched" (each net of `a` against the net of `b`
    with its depth), "pair" (the one net of `a` against the one of `b`), "options" (every two shortcut options of
    `a` at one depth), "bound" (each net of `a` against `bound`).
    """

    kind: str
    metric: str
    expect: str
    a: Nets
    b: Nets | None = None
    margin: Margin | None = None
    bound: float | None = None

    def comparisons(self, groups: list[Group]) -> Iterator[Comparison]:
        recorded = [g for g in groups if g.values(self.metric)]  # a metric no run recorded is not tested
        a = self.a.select(recorded)
        b = self.b.select(recorded) if self.b is not None else []
        pairs: list[tuple[Group, Group]] = []
        if self.kind == "extremes" and len({g.net.depth for g in a}) >= 2:
            pairs = [(a[0], a[-1])]
        elif self.kind == "steps":
            pairs = list(zip(a, a[1:], strict=False))
        elif self.kind == "matched":
            pairs = [(x, y) for x in a for y in b if y.net.depth == x.net.depth]
        elif self.kind == "pair" and len(a) == 1 and len(b) == 1:
            pairs = [(a[0], b[0])]
        elif self.kind == "options":
            pairs = [(x, y) for x, y in combinations(a, 2) if x.net.depth == y.net.depth]
        elif self.kind == "trend" and len({g.net.depth for g in a}) >= 3:
            names = ", ".join(g.label for g in a)
            yield Comparison("trend", f"{self.metric} per doubling of depth ({names})", self.metric, self.expect, a)
        elif self.kind == "bound":
            for g in a:
                yield Comparison("bound", f"{g.label} {self.metric}", self.metric, self.expect, [g], bound=self.bound)
        for x, y in pairs:
            if x.net == y.net:  # one network twice in a setting (two warm-ups, say): no comparison of the two
                continue
            what = f"{y.label} − {x.label} {self.metric}"
            yield Comparison("difference", what, self.metric, self.expect, [x], [y], self.margin)


@dataclass(frozen=True)
class Claim:
    id: int
    claim: str
    source: str
    family: str  # the dataset family it is declared for: "cifar" or "imagenet"
    paper_dataset: str | None  # where the paper makes it; None: our extension everywhere
    command: str
    parts: tuple[Part, ...]


PLAIN, RESNETS = Nets(residual=False), Nets(residual=True, shortcut="A")

CLAIMS = [
    Claim(
        1,
        "Degradation: the deepest plain net has higher training and test error than the shallowest, and plain "
        "training error grows with depth",
        "Fig. 1, Fig. 6 left",
        "cifar",
        "cifar10",
        f"{TRAIN} experiment=fig6 seed=0,1,2",
        (
            Part("extremes", "train_err", HIGHER, PLAIN),
            Part("extremes", "test_err", HIGHER, PLAIN),
            Part("trend", "train_err", HIGHER, PLAIN),
        ),
    ),
    Claim(
        2,
        "Residual learning removes it: each ResNet has lower training and test error than the plain net of its depth",
        "Fig. 6, Sec. 4.2",
        "cifar",
        "cifar10",
        f"{TRAIN} experiment=fig6 seed=0,1,2",
        (Part("matched", "train_err", LOWER, PLAIN, RESNETS), Part("matched", "test_err", LOWER, PLAIN, RESNETS)),
    ),
    Claim(
        3,
        "Depth helps residual nets: test error falls at each step from ResNet-20 to 32, 44, 56 and 110, and "
        "per doubling of depth",
        "Table 6",
        "cifar",
        "cifar10",
        f"{TRAIN} experiment=table6 seed=0,1,2,3,4",
        (
            Part("steps", "test_err", LOWER, Nets(residual=True, shortcut="A", max_depth=110)),
            Part("trend", "test_err", LOWER, Nets(residual=True, shortcut="A", max_depth=110)),
        ),
    ),
    Claim(
        4,
        "ResNet-1202 overfits: higher test error than ResNet-110 with a similar training error",
        "Table 6, Sec. 4.2",
        "cifar",
        "cifar10",
        f"{TRAIN} experiment=resnet1202 seed=0 (and experiment=table6)",
        (
            Part("pair", "test_err", HIGHER, Nets(True, "A", (110,)), Nets(True, "A", (1202,))),
            Part("pair", "train_err", SIMILAR, Nets(True, "A", (110,)), Nets(True, "A", (1202,)), TRAIN_SIMILAR),
        ),
    ),
    Claim(
        5,
        "Layer responses: residual nets respond less than plain nets of the same depth, and deeper ResNets "
        "less than shallower ones (mean std over the 3x3 layers)",
        "Fig. 7",
        "cifar",
        "cifar10",
        f"{TRAIN} experiment=fig7 seed=0,1,2",
        (Part("matched", "response", LOWER, PLAIN, RESNETS), Part("steps", "response", LOWER, RESNETS)),
    ),
    Claim(
        6,
        "Shortcut options A, B, C give test errors within a small margin of each other (every two options at one "
        "depth)",
        "Table 3",
        "cifar",
        None,
        f"{TRAIN} experiment=shortcuts_cifar seed=0,1,2",
        (
            Part(
                "options",
                "test_err",
                SIMILAR,
                Nets(residual=True),
                margin=Margin("half of residual learning's gain at depth 34, Table 2", pp=shortcut_margin()),
            ),
        ),
    ),
    Claim(
        7,
        "ImageNet: plain-34 is worse than plain-18; ResNet-34 is better than ResNet-18 and than plain-34",
        "Table 2",
        "imagenet",
        "imagenet",
        f"{TRAIN} experiment=imagenet_table2 data.root=/data/imagenet",
        (
            Part("pair", "test_err", HIGHER, Nets(False, None, (18,)), Nets(False, None, (34,))),
            Part("pair", "test_err", LOWER, Nets(True, "A", (18,)), Nets(True, "A", (34,))),
            Part("pair", "test_err", LOWER, Nets(False, None, (34,)), Nets(True, "A", (34,))),
        ),
    ),
    Claim(
        8,
        "Not vanishing gradients: in each plain net the gradient norm at the first 3x3 layer's response is more "
        "than a tenth of that at the last (log10 ratio above -1), averaged over training",
        "Sec. 4.1",
        "cifar",
        "cifar10",
        f"{TRAIN} experiment=fig6 seed=0,1,2",
        (Part("bound", "gradient_decay", ABOVE, PLAIN, bound=-1.0),),
    ),
    Claim(
        9,
        "ImageNet: shortcut options A, B, C of ResNet-34 give top-1 errors within a small margin of each other",
        "Table 3",
        "imagenet",
        "imagenet",
        f"{TRAIN} experiment=imagenet_table3 data.root=/data/imagenet",
        (
            Part(
                "options",
                "test_err",
                SIMILAR,
                Nets(residual=True, depths=(34,)),
                margin=Margin("half of residual learning's gain at depth 34, Table 2", pp=shortcut_margin()),
            ),
        ),
    ),
]


@dataclass
class ClaimResult:
    """One claim's verdict in one setting, with the statistics behind it."""

    id: int
    claim: str
    source: str
    verdict: str
    dataset: str | None = None
    setting: str = ""  # in words (how it departs from the paper's recipe)
    setting_id: str = ""  # the fingerprint of the setting's shared recipe keys (8 hex)
    extension: bool = False  # tested on a dataset where the paper does not make it
    level: float | None = None  # the confidence of each comparison's interval (Bonferroni over the claim's parts)
    command: str | None = None  # what runs it, when it was not run
    evidence: list[str] = field(default_factory=list)
    statistics: list[dict[str, Any]] = field(default_factory=list)

    def add(self, what: str, interval: Interval | None, verdict: str, unit: str, note: str = "") -> str:
        if interval is None:
            text, note = (note.strip(" ()") or "too few runs for an interval"), ""
        else:
            text = interval.text(unit)
        self.evidence.append(f"{what}: {text}{note} → {verdict}")
        self.statistics.append({"what": what, "verdict": verdict, **(interval.as_dict() if interval else {})})
        return verdict


# a setting's noise floor for one run per side: (metric, level) -> (floor, how it was found), or None
Floors = Callable[[str, float], tuple[float, str] | None]


def judge(result: ClaimResult, c: Comparison, level: float, floor: Floors) -> str:
    """Test one comparison at `level` and record it in `result`."""
    unit = UNITS.get(c.metric, "")
    if c.kind == "bound":
        values = c.a[0].values(c.metric)
        interval = stats.mean_interval(values, level) if values else None
        verdict = stats.above(interval, c.bound) if c.expect == ABOVE else stats.below(interval, c.bound)
        return result.add(c.what, interval, verdict, unit, f" (bound {c.bound:+g})")
    if c.kind == "trend":  # over the depths of the groups of `a`
        depths = [g.net.depth for g in c.a for _ in g.values(c.metric)]
        interval = stats.trend(depths, [v for g in c.a for v in g.values(c.metric)], level)
        verdict = stats.above(interval) if c.expect == HIGHER else stats.below(interval)
        return result.add(c.what, interval, verdict, f"{unit} per doubling")
    x, y = c.a[0].values(c.metric), c.b[0].values(c.metric)
    if not x or not y:
        return result.add(c.what, None, stats.INCONCLUSIVE, unit, f" (no {c.metric} recorded)")
    found = floor(c.metric, level)
    interval = stats.difference(x, y, found[0] if found else None, level)
    if c.expect == SIMILAR:
        margin = c.margin.of(x)
        note = f" (margin ±{margin:.2f}: {c.margin.why})"
        return result.add(c.what, interval, stats.within(interval, margin), unit, note)
    return result.add(c.what, interval, stats.above(interval) if c.expect == HIGHER else stats.below(interval), unit)


def setting_id(groups: list[Group]) -> str:
    """A setting's short name: the fingerprint of the recipe keys its groups share."""
    return fingerprint(groups[0].setting)[:8]


def duplicated_nets(groups: list[Group]) -> list[str]:
    """Networks that appear as two different groups among `groups` (their warm-ups differ, say)."""
    counts = Counter(g.net for g in {g.key: g for g in groups}.values())
    return [net.label for net, n in counts.items() if n > 1]


def evaluate(
    settings: dict[str, list[list[Group]]], floors: Callable[[list[Group]], Floors], describe: Callable
) -> list[ClaimResult]:
    """Every claim in every setting of its dataset family that has its networks; "not run" (with the command)
    otherwise.

    `settings`: {dataset: [groups of one setting, ...]}; `floors(groups)`: the setting's noise floor for a
    metric at a level ((floor, how it was found) or None); `describe(groups)`: the setting in words.
    """
    results = []
    for claim in CLAIMS:
        tested = False
        for dataset, dataset_settings in settings.items():
            for groups in dataset_settings:
                if groups[0].family != claim.family:
                    continue
                comparisons = [c for part in claim.parts for c in part.comparisons(groups)]
                if not comparisons:
                    continue
                tested = True
                level = 1 - (1 - stats.LEVEL) / len(comparisons)
                extension = claim.paper_dataset != dataset
                result = ClaimResult(claim.id, claim.claim, claim.source, stats.NOT_RUN, dataset, describe(groups))
                result.setting_id, result.extension, result.level = setting_id(groups), extension, level
                twice = duplicated_nets([g for c in comparisons for g in (*c.a, *c.b)])
                if twice:  # which of the two to compare is not the report's to choose
                    why = (
                        "two groups in this setting whose net keys differ (a warm-up, say): which to compare is unclear"
                    )
                    result.verdict = result.add(", ".join(twice), None, stats.INCONCLUSIVE, "", why)
                else:
                    floor = floors(groups)
                    result.verdict = stats.combine([judge(result, c, level, floor) for c in comparisons])
                results.append(result)
        if not tested:
            results.append(ClaimResult(claim.id, claim.claim, claim.source, stats.NOT_RUN, command=claim.command))
    return results
