"""Statistics and verdicts, pure functions: differences of means with confidence intervals over seeds, trends over
depth, a mean against a bound.

Stated tests (each at a confidence `level`; a claim of m parts uses 1 - 0.05/m for each, Bonferroni, so that all
its intervals hold together with 95% probability):
- two groups with >= 2 seeds each: Welch's t interval for the difference of means (unequal variances);
- one group with 1 seed, the other with >= 2: Student's t interval with the variance of the larger group;
- 1 seed per side: no interval from the data; the difference counts only beyond a noise floor (`noise_floor`)
  measured from replicates of the same setting;
- a trend over depth: least squares of the metric on log2(depth) over every run, t interval for the slope;
- one group against a bound: t interval of its mean;
- two groups run with the same seeds that differ in one recipe key (report --compare): a paired t interval on the
  per-seed differences (the seed fixes the initialization and the data order, so pairs share that noise).
Zero variance (identical values) gives no interval: it says nothing about the seed noise.

Every interval carries its standard error and degrees of freedom, so a test of any hypothesis about it is a p-value
(`p_above`, `p_within`, `p_outside`); the claims correct those p-values for multiplicity over the whole scorecard
(Holm, `holm`). `power` gives the probability that a test decides at a given number of seeds per network.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy import special
from scipy import stats as scipy_stats

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
LEVEL = 0.95  # the confidence of a claim's intervals taken together


@dataclass(frozen=True)
class Interval:
    """An estimate (a difference b - a, a slope or a mean) with its interval; low/high None when there is none."""

    estimate: float
    low: float | None
    high: float | None
    n: tuple[int, ...]  # runs per side (or points of a trend)
    method: str
    level: float = LEVEL
    se: float | None = None  # the standard error of the estimate (None: no test is possible)
    dof: float | None = None  # its degrees of freedom

    def text(self, unit: str = "pp") -> str:
        if self.low is None:
            interval = " [no interval]"
        else:
            interval = f" [{100 * self.level:.4g}% CI {self.low:+.2f}, {self.high:+.2f}]"
        sides = " vs ".join(map(str, self.n))
        return f"{self.estimate:+.2f} {unit}{interval}, n = {sides} ({self.method})"

    def as_dict(self) -> dict:
        return asdict(self)


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _variance(values: list[float]) -> float:
    """The sample variance, in floating point (statistics.variance is exact, and slow for the calibration)."""
    mean = _mean(values)
    return math.fsum((x - mean) ** 2 for x in values) / (len(values) - 1)


def _no_spread(values: list[float]) -> bool:
    """All values equal, up to floating-point rounding (7.02 - 7.0 and 7.12 - 7.1 differ in the 15th digit)."""
    return max(values) - min(values) <= 1e-9 * max(1.0, max(abs(v) for v in values))


def _t(level: float, dof: float) -> float:
    """The two-sided t quantile of `level`."""
    return float(special.stdtrit(dof, 0.5 + level / 2))


def difference(
    a: list[float], b: list[float], floor: tuple[float, int] | None = None, level: float = LEVEL
) -> Interval:
    """mean(b) - mean(a) with an interval at `level` (see the module docstring for the test used); `floor`: the
    setting's pooled seed std and its degrees of freedom, for one run per side."""
    if not a or not b:
        raise ValueError("both sides need at least one run")
    diff = _mean(b) - _mean(a)
    n = (len(a), len(b))
    if len(a) >= 2 and len(b) >= 2:
        if _no_spread(a) and _no_spread(b):
            return Interval(diff, None, None, n, "zero variance: identical values, no interval", level)
        var_a, var_b = _variance(a) / len(a), _variance(b) / len(b)
        se = math.sqrt(var_a + var_b)
        dof = (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
        half = _t(level, dof) * se
        return Interval(diff, diff - half, diff + half, n, "Welch t", level, se, dof)
    if len(a) + len(b) >= 3:
        larger = a if len(a) >= 2 else b
        if _no_spread(larger):
            return Interval(diff, None, None, n, "zero variance: identical values, no interval", level)
        se = math.sqrt(_variance(larger)) * math.sqrt(1 / len(a) + 1 / len(b))
        half = _t(level, len(larger) - 1) * se
        return Interval(
            diff, diff - half, diff + half, n, "Student t, variance of the larger side", level, se, len(larger) - 1
        )
    if floor is None:
        return Interval(diff, None, None, n, "one run per side, no noise floor known", level)
    std, dof = floor
    half = floor_of(std, dof, level)
    method = f"one run per side, noise floor ±{half:.2f} (seed std {std:.2f} of this setting, {dof} dof)"
    return Interval(diff, diff - half, diff + half, n, method, level, math.sqrt(2) * std, dof)


def mean_interval(values: list[float], level: float = LEVEL) -> Interval:
    """The mean of `values` with its t interval (>= 2 values that are not all equal; else no interval)."""
    mean = _mean(values)
    if len(values) < 2 or _no_spread(values):
        why = "one run" if len(values) < 2 else "zero variance: identical values"
        return Interval(mean, None, None, (len(values),), f"{why}, no interval", level)
    se = math.sqrt(_variance(values)) / math.sqrt(len(values))
    half = _t(level, len(values) - 1) * se
    return Interval(
        mean, mean - half, mean + half, (len(values),), "t interval of the mean", level, se, len(values) - 1
    )


def paired_difference(a: dict[int, float], b: dict[int, float], level: float = LEVEL) -> Interval:
    """mean over the seeds both have of b[seed] - a[seed], with a paired t interval (>= 2 common seeds)."""
    seeds = sorted(a.keys() & b.keys())
    if len(seeds) < 2:
        raise ValueError("a paired interval needs at least 2 common seeds")
    diffs = [b[s] - a[s] for s in seeds]
    mean = _mean(diffs)
    n = (len(diffs), len(diffs))
    if _no_spread(diffs):
        return Interval(mean, None, None, n, "paired, zero variance of the differences: no interval", level)
    se = math.sqrt(_variance(diffs)) / math.sqrt(len(diffs))
    half = _t(level, len(diffs) - 1) * se
    return Interval(mean, mean - half, mean + half, n, "paired t over seeds", level, se, len(diffs) - 1)


def trend(depths: list[int], values: list[float], level: float = LEVEL) -> Interval | None:
    """Slope of `values` per doubling of depth (least squares on log2 depth), with its interval.

    None with fewer than 3 points or 2 depths: a slope needs a residual to have an interval.
    """
    if len(values) < 3 or len(set(depths)) < 2:
        return None
    x = [math.log2(d) for d in depths]
    fit = scipy_stats.linregress(x, values)
    if not math.isfinite(fit.stderr) or fit.stderr <= 1e-9 * max(1.0, abs(fit.slope)):  # identical values: nan
        slope = fit.slope if math.isfinite(fit.slope) else 0.0
        return Interval(slope, None, None, (len(values),), "least squares, a perfect fit: no interval", level)
    half = _t(level, len(values) - 2) * fit.stderr
    return Interval(
        fit.slope,
        fit.slope - half,
        fit.slope + half,
        (len(values),),
        "least squares on log2 depth",
        level,
        fit.stderr,
        len(values) - 2,
    )


def pooled_std(samples: list[list[float]]) -> tuple[float, int] | None:
    """(pooled seed std, its degrees of freedom) over groups with >= 2 seeds that are not all equal, or None."""
    samples = [s for s in samples if len(s) >= 2 and not _no_spread(s)]  # identical values: no seed noise seen
    dof = sum(len(s) - 1 for s in samples)
    if dof == 0:
        return None
    return math.sqrt(sum((len(s) - 1) * _variance(s) for s in samples) / dof), dof


def floor_of(std: float, dof: int, level: float = LEVEL) -> float:
    """The half-width at `level` of a difference of two single runs whose seed std is `std` (with `dof`)."""
    return _t(level, dof) * math.sqrt(2) * std


def p_above(interval: Interval | None, bound: float = 0.0) -> float | None:
    """The one-sided p-value of "the estimate is > bound" (small: it is); None when the interval has no test."""
    if interval is None or interval.se is None or interval.dof is None:
        return None
    return float(special.stdtr(interval.dof, -(interval.estimate - bound) / interval.se))


def p_below(interval: Interval | None, bound: float = 0.0) -> float | None:
    """The one-sided p-value of "the estimate is < bound"."""
    above = p_above(interval, bound)
    return None if above is None else 1.0 - above


def p_within(interval: Interval | None, low: float, high: float) -> float | None:
    """TOST: the p-value of "low < estimate < high" (both one-sided tests must reject)."""
    a, b = p_above(interval, low), p_below(interval, high)
    return None if a is None or b is None else max(a, b)


def p_outside(interval: Interval | None, low: float, high: float) -> float | None:
    """The p-value of "the estimate is below `low` or above `high`" (the smaller side, Bonferroni over the two)."""
    a, b = p_below(interval, low), p_above(interval, high)
    return None if a is None or b is None else min(1.0, 2 * min(a, b))


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979): the i-th smallest p times (m - i + 1), made monotone and
    capped at 1. Rejecting where the adjusted value is below alpha keeps the family-wise error rate at most alpha
    whatever the dependence between the tests."""
    order = sorted(range(len(pvalues)), key=pvalues.__getitem__)
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def power(ncp: float, dof: float, alpha: float, sided: int = 2) -> float:
    """The probability that a t test at `alpha` (two- or one-sided) decides in the direction of a true effect
    whose noncentrality is `ncp` (effect / standard error), with `dof` degrees of freedom."""
    if dof <= 0:
        return 0.0
    critical = float(special.stdtrit(dof, 1 - alpha / sided))
    return float(1 - special.nctdtr(dof, abs(ncp), critical))


def combine(verdicts: list[str]) -> str:
    """All parts hold: holds; any part fails: does not hold; else inconclusive."""
    if not verdicts:
        return NOT_RUN
    if FAILS in verdicts:
        return FAILS
    return HOLDS if all(v == HOLDS for v in verdicts) else INCONCLUSIVE
