"""Statistics and verdicts, pure functions: differences of means with 95% intervals over seeds, trends over depth.

Stated tests:
- two groups with >= 2 seeds each: Welch's t interval for the difference of means (unequal variances);
- one group with 1 seed, the other with >= 2: Student's t interval with the variance of the larger group;
- 1 seed per side: no interval from the data; the difference counts only beyond a noise floor (`noise_floor`);
- a trend over depth: least squares of error on log2(depth) over every run, t interval for the slope;
- two groups run with the same seeds that differ in one recipe key (report --compare): a paired t interval on the
  per-seed differences (the seed fixes the initialization and the data order, so pairs share that noise).
A verdict needs the whole 95% interval on one side of zero; otherwise it is inconclusive.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

from scipy import stats as scipy_stats

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"


@dataclass(frozen=True)
class Interval:
    """An estimate (a difference b - a, or a slope) with its 95% interval; low/high None when there is none."""

    estimate: float
    low: float | None
    high: float | None
    n: tuple[int, ...]  # runs per side (or points of a trend)
    method: str

    def text(self, unit: str = "pp") -> str:
        interval = f" [95% CI {self.low:+.2f}, {self.high:+.2f}]" if self.low is not None else " [no interval]"
        sides = " vs ".join(map(str, self.n))
        return f"{self.estimate:+.2f} {unit}{interval}, n = {sides} ({self.method})"

    def as_dict(self) -> dict:
        return asdict(self)


def difference(a: list[float], b: list[float], floor: float | None = None) -> Interval:
    """mean(b) - mean(a) with a 95% interval (see the module docstring for the test used)."""
    if not a or not b:
        raise ValueError("both sides need at least one run")
    diff = statistics.mean(b) - statistics.mean(a)
    n = (len(a), len(b))
    if len(a) >= 2 and len(b) >= 2:
        var_a, var_b = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
        se = math.sqrt(var_a + var_b)
        if se == 0:
            return Interval(diff, diff, diff, n, "Welch t, zero variance")
        dof = (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
        half = scipy_stats.t.ppf(0.975, dof) * se
        return Interval(diff, diff - half, diff + half, n, "Welch t")
    if len(a) + len(b) >= 3:
        larger = a if len(a) >= 2 else b
        se = statistics.stdev(larger) * math.sqrt(1 / len(a) + 1 / len(b))
        half = scipy_stats.t.ppf(0.975, len(larger) - 1) * se
        return Interval(diff, diff - half, diff + half, n, "Student t, variance of the larger side")
    if floor is None:
        return Interval(diff, None, None, n, "one run per side, no noise floor known")
    return Interval(diff, diff - floor, diff + floor, n, f"one run per side, noise floor ±{floor:.2f}")


def paired_difference(a: dict[int, float], b: dict[int, float]) -> Interval:
    """mean over the seeds both have of b[seed] - a[seed], with a paired t interval (>= 2 common seeds)."""
    seeds = sorted(a.keys() & b.keys())
    if len(seeds) < 2:
        raise ValueError("a paired interval needs at least 2 common seeds")
    diffs = [b[s] - a[s] for s in seeds]
    mean = statistics.mean(diffs)
    half = scipy_stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return Interval(mean, mean - half, mean + half, (len(diffs), len(diffs)), "paired t over seeds")


def trend(depths: list[int], values: list[float]) -> Interval | None:
    """Slope of `values` per doubling of depth (least squares on log2 depth), with its 95% interval.

    None with fewer than 3 points or 2 depths: a slope needs a residual to have an interval.
    """
    if len(values) < 3 or len(set(depths)) < 2:
        return None
    x = [math.log2(d) for d in depths]
    fit = scipy_stats.linregress(x, values)
    half = scipy_stats.t.ppf(0.975, len(values) - 2) * fit.stderr
    return Interval(fit.slope, fit.slope - half, fit.slope + half, (len(values),), "least squares on log2 depth")


def noise_floor(samples: list[list[float]]) -> tuple[float, float, int] | None:
    """(floor, pooled seed std, its degrees of freedom) from groups with >= 2 seeds, or None.

    The floor is the 95% half-width of a difference of two single runs: t(0.975, dof) * sqrt(2) * pooled std.
    """
    dof = sum(len(s) - 1 for s in samples if len(s) >= 2)
    if dof == 0:
        return None
    pooled = math.sqrt(sum((len(s) - 1) * statistics.variance(s) for s in samples if len(s) >= 2) / dof)
    return scipy_stats.t.ppf(0.975, dof) * math.sqrt(2) * pooled, pooled, dof


def above(interval: Interval | None) -> str:
    """The verdict on "the estimate is > 0"."""
    if interval is None or interval.low is None:
        return INCONCLUSIVE
    if interval.low > 0:
        return HOLDS
    if interval.high < 0:
        return FAILS
    return INCONCLUSIVE


def below(interval: Interval | None) -> str:
    """The verdict on "the estimate is < 0"."""
    flipped = {HOLDS: FAILS, FAILS: HOLDS}
    return flipped.get(above(interval), INCONCLUSIVE)


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
