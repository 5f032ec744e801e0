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
Zero variance (identical values) gives no interval: it says nothing about the seed noise. A verdict needs the
whole interval on one side of zero (or of a bound, or inside a margin); otherwise it is inconclusive.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

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

    def text(self, unit: str = "pp") -> str:
        if self.low is None:
            interval = " [no interval]"
        else:
            interval = f" [{100 * self.level:.4g}% CI {self.low:+.2f}, {self.high:+.2f}]"
        sides = " vs ".join(map(str, self.n))
        return f"{self.estimate:+.2f} {unit}{interval}, n = {sides} ({self.method})"

    def as_dict(self) -> dict:
        return asdict(self)


def _no_spread(values: list[float]) -> bool:
    """All values equal, up to floating-point rounding (7.02 - 7.0 and 7.12 - 7.1 differ in the 15th digit)."""
    return max(values) - min(values) <= 1e-9 * max(1.0, max(abs(v) for v in values))


def _t(level: float, dof: float) -> float:
    """The two-sided t quantile of `level`."""
    return float(scipy_stats.t.ppf(0.5 + level / 2, dof))


def difference(a: list[float], b: list[float], floor: float | None = None, level: float = LEVEL) -> Interval:
    """mean(b) - mean(a) with an interval at `level` (see the module docstring for the test used)."""
    if not a or not b:
        raise ValueError("both sides need at least one run")
    diff = statistics.mean(b) - statistics.mean(a)
    n = (len(a), len(b))
    if len(a) >= 2 and len(b) >= 2:
        if _no_spread(a) and _no_spread(b):
            return Interval(diff, None, None, n, "zero variance: identical values, no interval", level)
        var_a, var_b = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
        se = math.sqrt(var_a + var_b)
        dof = (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
        half = _t(level, dof) * se
        return Interval(diff, diff - half, diff + half, n, "Welch t", level)
    if len(a) + len(b) >= 3:
        larger = a if len(a) >= 2 else b
        if _no_spread(larger):
            return Interval(diff, None, None, n, "zero variance: identical values, no interval", level)
        half = _t(level, len(larger) - 1) * statistics.stdev(larger) * math.sqrt(1 / len(a) + 1 / len(b))
        return Interval(diff, diff - half, diff + half, n, "Student t, variance of the larger side", level)
    if floor is None:
        return Interval(diff, None, None, n, "one run per side, no noise floor known", level)
    return Interval(diff, diff - floor, diff + floor, n, f"one run per side, noise floor ±{floor:.2f}", level)


def mean_interval(values: list[float], level: float = LEVEL) -> Interval:
    """The mean of `values` with its t interval (>= 2 values that are not all equal; else no interval)."""
    mean = statistics.mean(values)
    if len(values) < 2 or _no_spread(values):
        why = "one run" if len(values) < 2 else "zero variance: identical values"
        return Interval(mean, None, None, (len(values),), f"{why}, no interval", level)
    half = _t(level, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half, (len(values),), "t interval of the mean", level)


def paired_difference(a: dict[int, float], b: dict[int, float], level: float = LEVEL) -> Interval:
    """mean over the seeds both have of b[seed] - a[seed], with a paired t interval (>= 2 common seeds)."""
    seeds = sorted(a.keys() & b.keys())
    if len(seeds) < 2:
        raise ValueError("a paired interval needs at least 2 common seeds")
    diffs = [b[s] - a[s] for s in seeds]
    mean = statistics.mean(diffs)
    n = (len(diffs), len(diffs))
    if _no_spread(diffs):
        return Interval(mean, None, None, n, "paired, zero variance of the differences: no interval", level)
    half = _t(level, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return Interval(mean, mean - half, mean + half, n, "paired t over seeds", level)


def trend(depths: list[int], values: list[float], level: float = LEVEL) -> Interval | None:
    """Slope of `values` per doubling of depth (least squares on log2 depth), with its interval.

    None with fewer than 3 points or 2 depths: a slope needs a residual to have an interval.
    """
    if len(values) < 3 or len(set(depths)) < 2:
        return None
    x = [math.log2(d) for d in depths]
    fit = scipy_stats.linregress(x, values)
    if fit.stderr <= 1e-9 * max(1.0, abs(fit.slope)):
        return Interval(fit.slope, None, None, (len(values),), "least squares, a perfect fit: no interval", level)
    half = _t(level, len(values) - 2) * fit.stderr
    return Interval(fit.slope, fit.slope - half, fit.slope + half, (len(values),), "least squares on log2 depth", level)


def noise_floor(samples: list[list[float]], level: float = LEVEL) -> tuple[float, float, int] | None:
    """(floor, pooled seed std, its degrees of freedom) from groups with >= 2 seeds, or None (none, or all of
    them zero variance).

    The floor is the half-width at `level` of a difference of two single runs: t(dof) * sqrt(2) * pooled std.
    """
    samples = [s for s in samples if len(s) >= 2 and not _no_spread(s)]  # identical values: no seed noise seen
    dof = sum(len(s) - 1 for s in samples)
    if dof == 0:
        return None
    pooled = math.sqrt(sum((len(s) - 1) * statistics.variance(s) for s in samples) / dof)
    return floor_of(pooled, dof, level), pooled, dof


def floor_of(std: float, dof: int, level: float = LEVEL) -> float:
    """The half-width at `level` of a difference of two single runs whose seed std is `std` (with `dof`)."""
    return _t(level, dof) * math.sqrt(2) * std


def above(interval: Interval | None, bound: float = 0.0) -> str:
    """The verdict on "the estimate is > bound"."""
    if interval is None or interval.low is None:
        return INCONCLUSIVE
    if interval.low > bound:
        return HOLDS
    if interval.high < bound:
        return FAILS
    return INCONCLUSIVE


def below(interval: Interval | None, bound: float = 0.0) -> str:
    """The verdict on "the estimate is < bound"."""
    flipped = {HOLDS: FAILS, FAILS: HOLDS}
    return flipped.get(above(interval, bound), INCONCLUSIVE)


def within(interval: Interval | None, margin: float) -> str:
    """The verdict on "|estimate| < margin": holds when the whole interval is inside, fails when it is outside."""
    if interval is None or interval.low is None:
        return INCONCLUSIVE
    if -margin < interval.low and interval.high < margin:
        return HOLDS
    if interval.low >= margin or interval.high <= -margin:
        return FAILS
    return INCONCLUSIVE


def combine(verdicts: list[str]) -> str:
    """All parts hold: holds; any part fails: does not hold; else inconclusive."""
    if not verdicts:
        return NOT_RUN
    if FAILS in verdicts:
        return FAILS
    return HOLDS if all(v == HOLDS for v in verdicts) else INCONCLUSIVE
