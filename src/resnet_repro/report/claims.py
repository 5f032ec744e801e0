"""The paper's claims that runs can test, each with its design declared as data, and their verdicts (holds / does
not hold / inconclusive / not run).

A claim declares the paper's words (quote and section), the networks it covers, and its comparisons: each one a
hypothesis about named networks with its test, its expected direction, and its margin or bound with the source of
that number on the metric's own scale. A claim is judged within one setting (groups whose recipes differ only in
the network, so like is compared with like) that holds every network it covers and every metric its comparisons
need; a setting that holds only some of them gets "inconclusive" naming what is missing, never a verdict on the
rest. The p-values of every comparison of every claim in every setting of a report form one family, corrected by
Holm's method (stats.holm), so that the probability of any false verdict on the whole scorecard stays at most 5%.
On a dataset other than the paper's, a claim is reported as our extension. Adding a claim is one `Claim(...)` below.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations
from typing import Any

from resnet_repro.report import stats
from resnet_repro.report.collect import Group
from resnet_repro.report.paper import paper_numbers, paper_value
from resnet_repro.report.stats import FAILS, HOLDS, INCONCLUSIVE, NOT_RUN, Interval
from resnet_repro.runs.recipe import fingerprint

TRAIN = "python -m resnet_repro.train -m"
CIFAR = "data.root=/path/to/cifar10"  # the Not-run commands run as printed once the path is the user's
HIGHER, LOWER, SIMILAR, ABOVE = "higher", "lower", "similar", "above"
UNITS = {"test_err": "pp", "train_err": "pp", "response": "std", "gradient_decay": "decades"}
METRIC_WORDS = {
    "test_err": "test error",
    "train_err": "training error",
    "response": "layer response",
    "gradient_decay": "gradient decay",
}
POWER = 0.8  # the power that `seeds_needed` asks for


@cache
def shortcut_spread() -> float:
    """Table 3's largest difference between the shortcut options A, B and C of ResNet-34 (top-1, pp): 0.84."""
    table3 = paper_numbers()["imagenet"]["table3"]
    top1 = [table3[f"resnet34_{option}"][0] for option in "abc"]
    return round(max(abs(x - y) for x, y in combinations(top1, 2)), 2)


@cache
def shortcut_margin() -> float:
    """What 'small' means for the options on ImageNet (pp of top-1): half of what residual learning gains at depth
    34 (Table 2: plain-34 28.54 − ResNet-34 25.03 = 3.51, so 1.75). The paper calls Table 3's spread (0.84) small
    next to that gain; a margin of the spread itself would leave a reproduction of Table 3 on the boundary."""
    table2 = paper_numbers()["imagenet"]["table2_top1"]
    return round((table2["plain34"] - table2["resnet34"]) / 2, 2)


@cache
def shortcut_margin_relative() -> float:
    """The same margin on another dataset's scale: as a fraction of option A's error (1.75 / 25.03 = 7.0%)."""
    return round(shortcut_margin() / paper_numbers()["imagenet"]["table3"]["resnet34_a"][0], 3)


@dataclass(frozen=True)
class Margin:
    """An equivalence margin on the metric's own scale: `pp` absolute, or `relative` to the reference side's
    mean; `one_sided`: only "b is not above a by the margin or more" is asked."""

    why: str
    pp: float | None = None
    relative: float | None = None
    one_sided: bool = False

    def of(self, reference: list[float]) -> float:
        if self.pp is not None:
            return self.pp
        return self.relative * abs(sum(reference) / len(reference))

    @property
    def text(self) -> str:
        size = f"{self.pp:.2f} pp" if self.pp is not None else f"{100 * self.relative:.1f}% of the first side's mean"
        return f"+{size}, one-sided" if self.one_sided else f"±{size}"


@dataclass(frozen=True)
class Comparison:
    """One hypothesis about named networks (labels as collect.Net.label writes them).

    kind: "difference" (b − a in the direction `expect`), "trend" (the slope per doubling of depth over `nets`),
    "reversal" (b − a is not significantly against `expect`: a step of a trend), "bound" (the mean of the one net
    against `bound`), "similar" (b − a within `margin`).
    """

    kind: str
    metric: str
    expect: str
    nets: tuple[str, ...]
    margin: Margin | None = None
    bound: float | None = None

    @property
    def what(self) -> str:
        words = METRIC_WORDS.get(self.metric, self.metric)
        if self.kind == "trend":
            return f"{words} per doubling of depth ({', '.join(self.nets)})"
        if self.kind == "bound":
            return f"{self.nets[0]} {words}"
        return f"{self.nets[1]} − {self.nets[0]} {words}"

    @property
    def log_depths(self) -> list[float]:
        """log2 of each network's depth (plain-56, ResNet-34-B: the number after the first dash)."""
        return [math.log2(int(net.split("-")[1])) for net in self.nets]

    def estimate(self, values: list[float]) -> float:
        """What the comparison estimates from one value per network: the least-squares slope per doubling of
        depth (trend), the mean (bound), or b − a."""
        if self.kind == "trend":
            x = self.log_depths
            mean_x, mean_y = sum(x) / len(x), sum(values) / len(values)
            sxx = sum((a - mean_x) ** 2 for a in x)
            return sum((a - mean_x) * (b - mean_y) for a, b in zip(x, values, strict=True)) / sxx
        return values[0] if self.kind == "bound" else values[1] - values[0]

    @property
    def hypothesis(self) -> str:
        """What a verdict of "holds" on this comparison says, in words."""
        if self.kind == "trend":
            return f"{self.what}: {'rises' if self.expect == HIGHER else 'falls'}"
        if self.kind == "reversal":
            return f"{self.what}: not significantly {'lower' if self.expect == HIGHER else 'higher'}"
        if self.kind == "bound":
            return f"{self.what}: above {self.bound:+g}"
        if self.kind == "similar":
            return f"{self.what}: within {self.margin.text}"
        return f"{self.what}: {'above' if self.expect == HIGHER else 'below'} 0"


def grows(metric: str, nets: tuple[str, ...], expect: str) -> tuple[Comparison, ...]:
    """ "`metric` rises (falls) with depth": a significant trend, and no adjacent step significantly reversed."""
    steps = tuple(Comparison("reversal", metric, expect, pair) for pair in zip(nets, nets[1:], strict=False))
    return (Comparison("trend", metric, expect, nets), *steps)


def every_pair(nets: tuple[str, ...], margin: Margin) -> tuple[Comparison, ...]:
    return tuple(Comparison("similar", "test_err", SIMILAR, pair, margin) for pair in combinations(nets, 2))


@dataclass(frozen=True)
class Claim:
    """A claim of the paper and how it is tested: `statement` is exactly what the comparisons test."""

    id: int
    statement: str
    quote: str  # the paper's words
    source: str  # where they stand
    family: str  # the dataset family it is declared for: "cifar" or "imagenet"
    paper_dataset: str | None  # where the paper makes it; None: our extension everywhere
    command: str
    comparisons: tuple[Comparison, ...]
    ours: str = ""  # what the test adds that the paper does not give (a norm, a bound, a summary)

    @property
    def nets(self) -> tuple[str, ...]:
        """The networks it covers, in the order its comparisons name them."""
        return tuple(dict.fromkeys(net for c in self.comparisons for net in c.nets))


CIFAR10_PAPER = "cifar10"
TRAIN_SIMILAR = Margin(
    "the paper calls ResNet-1202's training error (<0.1%, Table 6) and ResNet-110's (~0.1%, Fig. 6) similar: "
    "a resolution of 0.1 pp of CIFAR-10 training error; one-sided, since the argument is that the test gap is not "
    "underfitting",
    pp=0.1,
    one_sided=True,
)
OPTIONS_IMAGENET = Margin(
    "half of what residual learning gains at depth 34 on ImageNet (Table 2: 28.54 − 25.03 = 3.51 pp top-1), next "
    "to which the paper calls Table 3's spread (0.84 pp) small",
    pp=shortcut_margin(),
)
OPTIONS_OTHER = Margin(
    f"ImageNet's margin ({shortcut_margin():.2f} pp of 25.03% top-1 error, Tables 2-3) on this dataset's scale: "
    f"{100 * shortcut_margin_relative():.1f}% of option A's error (0.6 pp at CIFAR-10's 8.75%)",
    relative=shortcut_margin_relative(),
)
GRADIENT_OURS = (
    "the paper gives no number: the measure (the gradient of the loss at each 3x3 layer's BN output, root mean "
    "square over the tensor, averaged over training; log10 of the weakest layer's over the last layer's) and the "
    "bound (−1: no layer receives less than a tenth) are ours"
)

CLAIMS = [
    Claim(
        1,
        "Degradation: plain-56 has higher training error and higher test error than plain-20",
        "The deeper network has higher training error, and thus test error.",
        "Fig. 1 (Sec. 1)",
        "cifar",
        CIFAR10_PAPER,
        f"{TRAIN} experiment=fig6 seed=0,1,2 {CIFAR}",
        (
            Comparison("difference", "train_err", HIGHER, ("plain-20", "plain-56")),
            Comparison("difference", "test_err", HIGHER, ("plain-20", "plain-56")),
        ),
    ),
    Claim(
        2,
        "Residual learning overcomes the degradation: ResNet-56 has lower training error and lower test error than "
        "plain-56",
        "our ResNets manage to overcome the optimization difficulty",
        "Sec. 4.2, Fig. 6",
        "cifar",
        CIFAR10_PAPER,
        f"{TRAIN} experiment=fig6 seed=0,1,2 {CIFAR}",
        (
            Comparison("difference", "train_err", LOWER, ("plain-56", "ResNet-56")),
            Comparison("difference", "test_err", LOWER, ("plain-56", "ResNet-56")),
        ),
    ),
    Claim(
        3,
        "Depth helps residual nets: test error falls with depth over ResNet-20, 32, 44, 56 and 110 (a significant "
        "trend per doubling of depth, and no step between adjacent depths significantly upward)",
        "demonstrate accuracy gains when the depth increases",
        "Sec. 4.2, Table 6",
        "cifar",
        CIFAR10_PAPER,
        f"{TRAIN} experiment=table6 seed=0,1,2,3,4 {CIFAR}",
        grows("test_err", ("ResNet-20", "ResNet-32", "ResNet-44", "ResNet-56", "ResNet-110"), LOWER),
    ),
    Claim(
        4,
        "ResNet-1202 overfits: higher test error than ResNet-110, and a training error not higher than ResNet-110's "
        "by 0.1 pp or more",
        "The testing result of this 10^3-layer network is worse than that of our 110-layer network, although both "
        "have similar training error. We argue that this is because of overfitting.",
        "Sec. 4.2, Table 6",
        "cifar",
        CIFAR10_PAPER,
        f"{TRAIN} experiment=table6 seed=0 {CIFAR} && {TRAIN} experiment=resnet1202 seed=0 {CIFAR}",
        (
            Comparison("difference", "test_err", HIGHER, ("ResNet-110", "ResNet-1202")),
            Comparison("similar", "train_err", SIMILAR, ("ResNet-110", "ResNet-1202"), TRAIN_SIMILAR),
        ),
    ),
    Claim(
        5,
        "Layer responses (Fig. 7's networks): ResNet-20 responds less than plain-20 and ResNet-56 less than "
        "plain-56, and ResNet-20 > ResNet-56 > ResNet-110",
        "ResNets have generally smaller responses than their plain counterparts. [...] When there are more layers, "
        "an individual layer of ResNets tends to modify the signal less.",
        "Sec. 4.2, Fig. 7",
        "cifar",
        CIFAR10_PAPER,
        f"{TRAIN} experiment=fig7 seed=0,1,2 {CIFAR}",
        (
            Comparison("difference", "response", LOWER, ("plain-20", "ResNet-20")),
            Comparison("difference", "response", LOWER, ("plain-56", "ResNet-56")),
            Comparison("difference", "response", LOWER, ("ResNet-20", "ResNet-56")),
            Comparison("difference", "response", LOWER, ("ResNet-56", "ResNet-110")),
        ),
        ours="the paper draws curves: a network's response is our summary of them, the mean over its 3x3 layers "
        "of each layer's std",
    ),
    Claim(
        6,
        "Shortcut options A, B and C of ResNet-20 and of ResNet-56 give test errors within a small margin of each "
        "other (every two options at one depth)",
        "the small differences among A/B/C indicate that projection shortcuts are not essential for addressing "
        "the degradation problem",
        "Sec. 4.1, Table 3 (ImageNet)",
        "cifar",
        None,
        f"{TRAIN} experiment=fig6 seed=0,1,2 {CIFAR} && {TRAIN} experiment=shortcuts_cifar seed=0,1,2 {CIFAR}",
        (
            *every_pair(("ResNet-20", "ResNet-20-B", "ResNet-20-C"), OPTIONS_OTHER),
            *every_pair(("ResNet-56", "ResNet-56-B", "ResNet-56-C"), OPTIONS_OTHER),
        ),
        ours="the paper compares the options on ImageNet only; the margin is ImageNet's, scaled to the error here",
    ),
    Claim(
        7,
        "ImageNet: plain-34 has higher top-1 error than plain-18; ResNet-34 lower than ResNet-18 and than plain-34",
        "the deeper 34-layer plain net has higher validation error than the shallower 18-layer plain net. [...] the "
        "34-layer ResNet is better than the 18-layer ResNet (by 2.8%). [...] compared to its plain counterpart, "
        "the 34-layer ResNet reduces the top-1 error by 3.5%",
        "Sec. 4.1, Table 2",
        "imagenet",
        "imagenet",
        f"{TRAIN} experiment=imagenet_table2 data.root=/data/imagenet",
        (
            Comparison("difference", "test_err", HIGHER, ("plain-18", "plain-34")),
            Comparison("difference", "test_err", LOWER, ("ResNet-18-A", "ResNet-34-A")),
            Comparison("difference", "test_err", LOWER, ("plain-34", "ResNet-34-A")),
        ),
    ),
    Claim(
        8,
        "ImageNet: no vanishing gradients in plain-18 and plain-34: the weakest 3x3 layer's gradient norm is above a "
        "tenth of the last 3x3 layer's (the mean over seeds of log10 of their ratio is above −1)",
        "We also verify that the backward propagated gradients exhibit healthy norms with BN.",
        "Sec. 4.1",
        "imagenet",
        "imagenet",
        f"{TRAIN} experiment=imagenet_table2 data.root=/data/imagenet",
        (
            Comparison("bound", "gradient_decay", ABOVE, ("plain-18",), bound=-1.0),
            Comparison("bound", "gradient_decay", ABOVE, ("plain-34",), bound=-1.0),
        ),
        ours=GRADIENT_OURS,
    ),
    Claim(
        9,
        "ImageNet: shortcut options A, B, C of ResNet-34 give top-1 errors within a small margin of each other",
        "the small differences among A/B/C indicate that projection shortcuts are not essential for addressing "
        "the degradation problem",
        "Sec. 4.1, Table 3",
        "imagenet",
        "imagenet",
        f"{TRAIN} experiment=imagenet_table3 data.root=/data/imagenet",
        every_pair(("ResNet-34-A", "ResNet-34-B", "ResNet-34-C"), OPTIONS_IMAGENET),
    ),
    Claim(
        10,
        "Plain training error grows with depth over plain-20, 32, 44 and 56 (a significant trend per doubling of "
        "depth, and no step between adjacent depths significantly downward)",
        "The deep plain nets suffer from increased depth, and exhibit higher training error when going deeper.",
        "Sec. 4.2, Fig. 6 left",
        "cifar",
        CIFAR10_PAPER,
        f"{TRAIN} experiment=fig6 seed=0,1,2 {CIFAR}",
        grows("train_err", ("plain-20", "plain-32", "plain-44", "plain-56"), HIGHER),
    ),
    Claim(
        11,
        "No vanishing gradients in plain-20 and plain-56: the weakest 3x3 layer's gradient norm is above a tenth of "
        "the last 3x3 layer's (the mean over seeds of log10 of their ratio is above −1)",
        "We also verify that the backward propagated gradients exhibit healthy norms with BN. (said of ImageNet's "
        "plain-18/34)",
        "Sec. 4.1",
        "cifar",
        None,
        f"{TRAIN} experiment=fig6 seed=0,1,2 {CIFAR}",
        (
            Comparison("bound", "gradient_decay", ABOVE, ("plain-20",), bound=-1.0),
            Comparison("bound", "gradient_decay", ABOVE, ("plain-56",), bound=-1.0),
        ),
        ours=GRADIENT_OURS,
    ),
]


@dataclass
class Evidence:
    """One comparison as tested: its interval (95%, for reading), p-value, Holm-adjusted p-value and verdict."""

    what: str
    hypothesis: str
    kind: str
    metric: str
    interval: Interval | None
    p: float | None  # the p-value of the decision this comparison can make (None: no test possible)
    decides: str  # the verdict if p survives Holm: holds or does not hold
    p_holm: float | None = None
    verdict: str = INCONCLUSIVE
    margin: float | None = None
    bound: float | None = None
    why: str = ""  # why there is no test


@dataclass
class ClaimResult:
    """One claim's verdict in one setting, with the evidence behind it."""

    id: int
    statement: str
    source: str
    verdict: str
    dataset: str | None = None
    setting_id: str = ""  # the fingerprint of the setting's shared recipe keys (8 hex)
    extension: bool = False  # tested on a dataset where the paper does not make it
    command: str | None = None  # what runs it, when it was not run or not fully
    missing: list[str] = field(default_factory=list)  # what the setting lacks for a verdict
    evidence: list[Evidence] = field(default_factory=list)
    seeds_needed: dict[str, Any] | None = None  # for an inconclusive claim (seeds_needed)


def setting_id(groups: list[Group]) -> str:
    """A setting's short name: the fingerprint of the recipe keys its groups share."""
    return fingerprint(groups[0].setting)[:8]


def spread(groups: list[Group], metric: str) -> tuple[float, int] | None:
    """The seed std of `metric` pooled over the groups of one setting, with its degrees of freedom: the noise floor
    of a comparison of single runs, and the spread that `seeds_needed` plans with. Only from this setting."""
    return stats.pooled_std([g.values(metric) for g in groups])


def judge(c: Comparison, by_label: dict[str, Group], floor: tuple[float, int] | None) -> Evidence:
    """The interval and p-value of one comparison whose networks are all in `by_label`."""
    values = [by_label[net].values(c.metric) for net in c.nets]
    if c.kind == "trend":
        depths = [by_label[net].depth for net, vs in zip(c.nets, values, strict=True) for _ in vs]
        interval = stats.trend(depths, [v for vs in values for v in vs])
    elif c.kind == "bound":
        interval = stats.mean_interval(values[0])
    else:
        interval = stats.difference(values[0], values[1], floor)
    zero = c.bound if c.kind == "bound" else 0.0
    up, down = stats.p_above(interval, zero), stats.p_below(interval, zero)
    evidence = Evidence(c.what, c.hypothesis, c.kind, c.metric, interval, None, HOLDS, bound=c.bound)
    if up is None:
        evidence.why = interval.method if interval is not None else "too few runs for an interval"
        return evidence
    wanted = up if c.expect in (HIGHER, ABOVE) else down
    if c.kind == "reversal":  # only the step against the trend can be decided
        evidence.p, evidence.decides = 1.0 - wanted, FAILS
    elif c.kind == "similar":
        margin = c.margin.of(values[0])
        evidence.margin = margin
        if c.margin.one_sided:
            inside, outside = stats.p_below(interval, margin), stats.p_above(interval, margin)
        else:
            inside, outside = stats.p_within(interval, -margin, margin), stats.p_outside(interval, -margin, margin)
        # inside and outside cannot both be true (but on the margin itself): the smaller p-value decides
        evidence.p, evidence.decides = (inside, HOLDS) if inside <= outside else (outside, FAILS)
    else:  # two-sided: a significant difference either way decides
        evidence.p = min(1.0, 2 * min(up, down))
        evidence.decides = HOLDS if wanted <= 0.5 else FAILS
    return evidence


def missing_for(claim: Claim, by_label: dict[str, list[Group]]) -> list[str]:
    """What a setting lacks for a verdict on `claim`: networks, a network present twice, a metric not recorded."""
    missing = [f"{net} not run" for net in claim.nets if net not in by_label]
    missing += [
        f"{net} twice, in groups whose net keys differ (which to compare is unclear)"
        for net in claim.nets
        if len(by_label.get(net, [])) > 1
    ]
    for c in claim.comparisons:
        for net in c.nets:
            groups = by_label.get(net, [])
            if len(groups) == 1 and not groups[0].values(c.metric):
                missing.append(f"no {METRIC_WORDS.get(c.metric, c.metric)} recorded for {net}")
    return list(dict.fromkeys(missing))


def evaluate(settings: list[tuple[str, list[Group]]], plan: bool = True) -> list[ClaimResult]:
    """Every claim in every setting of its dataset family that holds two of its networks, or all those of one of
    its comparisons; "not run" (with the command) where no setting does.

    `settings`: (dataset, the groups of one setting). All the p-values of the scorecard are corrected together
    (Holm); a claim holds when every comparison decides for it, does not hold when any decides against it, and is
    inconclusive otherwise. `plan`: say for each inconclusive claim how many seeds it needs (seeds_needed).
    """
    results: list[ClaimResult] = []
    plans: list[tuple[ClaimResult, Claim, list[Group]]] = []
    for claim in CLAIMS:
        tested = False
        for dataset, groups in settings:
            if groups[0].family != claim.family:
                continue
            by_label: dict[str, list[Group]] = defaultdict(list)
            for group in groups:
                by_label[group.label].append(group)
            present = [net for net in claim.nets if net in by_label]
            if len(present) < 2 and not any(all(net in by_label for net in c.nets) for c in claim.comparisons):
                continue  # nothing of the claim to compare here
            tested = True
            result = ClaimResult(claim.id, claim.statement, claim.source, INCONCLUSIVE, dataset, setting_id(groups))
            result.extension = claim.paper_dataset != dataset
            result.missing = missing_for(claim, by_label)
            if result.missing:
                result.command = claim.command
            else:
                one = {net: found[0] for net, found in by_label.items()}
                floors = {metric: spread(groups, metric) for metric in {c.metric for c in claim.comparisons}}
                result.evidence = [judge(c, one, floors[c.metric]) for c in claim.comparisons]
            results.append(result)
            plans.append((result, claim, groups))
        if not tested:
            results.append(ClaimResult(claim.id, claim.statement, claim.source, NOT_RUN, command=claim.command))
    tested_evidence = [e for r in results for e in r.evidence if e.p is not None]
    for evidence, adjusted in zip(tested_evidence, stats.holm([e.p for e in tested_evidence]), strict=True):
        evidence.p_holm = adjusted
    for result in results:
        if result.evidence:
            for e in result.evidence:
                decided = e.p_holm is not None and e.p_holm < 1 - stats.LEVEL
                e.verdict = (
                    e.decides if decided else (HOLDS if e.kind == "reversal" and e.p is not None else INCONCLUSIVE)
                )
            result.verdict = stats.combine([e.verdict for e in result.evidence])
    for result, claim, groups in plans if plan else ():
        if result.verdict == INCONCLUSIVE:  # m: the scorecard's tests, with this claim's once it is run in full
            m = len(tested_evidence) + (0 if any(e.p is not None for e in result.evidence) else len(claim.comparisons))
            result.seeds_needed = seeds_needed(claim, result.dataset, groups, max(1, m))
    return results


def paper_effect(c: Comparison, family: str) -> float | None:
    """The paper's value of a comparison's estimate (b − a, a slope, a mean), None where it gives no number."""
    values = [paper_value(family, net, c.metric) for net in c.nets]
    return None if any(v is None for v in values) else c.estimate(values)


def comparison_power(c: Comparison, effect: float, std: float, n: int, alpha: float, reference: float) -> float:
    """The probability that `c` decides for the claim with n seeds per network, a true `effect` and seed `std`."""
    if c.kind == "reversal":
        return 1.0  # a step decides only against the claim
    if c.kind == "trend":
        if (effect > 0) != (c.expect == HIGHER):
            return 0.0  # a trend the other way never decides for the claim
        depths = c.log_depths
        mean_x = sum(depths) / len(depths)
        se = std / math.sqrt(n * sum((x - mean_x) ** 2 for x in depths))
        return stats.power(effect / se, n * len(depths) - 2, alpha)
    if c.kind == "bound":
        if effect <= c.bound:
            return 0.0
        return stats.power((effect - c.bound) / (std / math.sqrt(n)), n - 1, alpha)
    # Welch's degrees of freedom lie between n - 1 and 2n - 2: planning with the smaller errs toward more seeds
    se, dof = std * math.sqrt(2 / n), n - 1
    if c.kind == "similar":
        margin = c.margin.of([reference])
        upper = stats.power((margin - effect) / se, dof, alpha, sided=1)
        if c.margin.one_sided:
            return upper
        return max(0.0, upper + stats.power((margin + effect) / se, dof, alpha, sided=1) - 1)
    right_way = (effect > 0) == (c.expect == HIGHER)
    return stats.power(effect / se, dof, alpha) if right_way else 0.0


def seeds_needed(claim: Claim, dataset: str | None, groups: list[Group], m: int) -> dict[str, Any]:
    """The seeds per network at which every comparison of `claim` decides for it with probability >= 80%
    together (the product of their powers, as if independent), at the paper's effect (on the paper's dataset,
    where it gives a number; the observed effect otherwise) and the spread observed in this setting, each test at
    alpha / m (Holm's first, strictest step over the scorecard's m comparisons)."""
    by_label = {g.label: g for g in groups}
    alpha = (1 - stats.LEVEL) / m
    plan = []
    for c in claim.comparisons:
        if c.kind == "reversal":
            continue
        std = spread(groups, c.metric)
        if std is None:
            return {
                "seeds_needed": None,
                "why": f"no spread of {METRIC_WORDS.get(c.metric, c.metric)} seen in this "
                "setting: run 2 seeds of one network to measure it",
            }
        effect, source = (
            (paper_effect(c, claim.family), "the paper's") if dataset == claim.paper_dataset else (None, "")
        )
        reference = paper_value(claim.family, c.nets[0], c.metric) if effect is not None else None
        if effect is None:
            observed = [by_label[net].values(c.metric) for net in c.nets if net in by_label]
            if len(observed) < len(c.nets) or not all(observed):
                return {
                    "seeds_needed": None,
                    "why": f"the paper gives no number for {c.what} and this setting has not measured it",
                }
            interval = judge(c, {net: by_label[net] for net in c.nets}, None).interval
            effect, source, reference = interval.estimate, "the observed", sum(observed[0]) / len(observed[0])
        plan.append((c, effect, std[0], reference, source))
    against = [c.what for c, e, s, ref, _ in plan if comparison_power(c, e, s, 50, alpha, ref) == 0.0]
    if against:
        return {
            "seeds_needed": None,
            "why": f"the effect seen goes against the claim ({', '.join(against)}): no "
            "number of seeds would decide for it",
        }
    for n in range(2, 51):
        total = math.prod(comparison_power(c, e, s, n, alpha, ref) for c, e, s, ref, _ in plan)
        if total >= POWER:
            sources = sorted({source for *_, source in plan})
            return {
                "seeds_needed": n,
                "power": round(total, 3),
                "why": f"{n} seeds per network give {100 * total:.0f}% power at {' and '.join(sources)} effect "
                f"and this setting's spread, each test at {alpha:.4f} (0.05 / {m})",
            }
    return {"seeds_needed": None, "why": "more than 50 seeds per network: the effect is small next to the spread"}
