"""The few statistics the audit needs, on the standard library alone (no scipy).

- :func:`chi_square_sf`: the chi-square survival function, for the sample-ratio-mismatch test,
  via the regularized upper incomplete gamma function (series below ``a + 1``, Lentz's
  continued fraction above; ``erfc`` and ``exp`` closed forms for one and two degrees of
  freedom).
- :func:`wilson_interval` for rates of 0/1 metrics, :func:`mean_interval` (normal
  approximation) for means, and :func:`rate_difference` (Newcombe's hybrid score interval) /
  :func:`mean_difference` (Welch, normal approximation) for treatment minus control.

Everything here is a pure function of numbers; nothing knows about events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

__all__ = [
    "Interval",
    "chi_square_sf",
    "chi_square_statistic",
    "mean_difference",
    "mean_interval",
    "rate_difference",
    "two_sided_z",
    "wilson_interval",
]

_EPSILON = 1e-15
_TINY = 1e-300
_MAX_ITERATIONS = 10_000


@dataclass(frozen=True)
class Interval:
    """A confidence interval ``[low, high]``."""

    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def two_sided_z(confidence: float) -> float:
    """The normal quantile for a two-sided interval at ``confidence`` (1.96 for 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def chi_square_statistic(observed: Sequence[float], expected: Sequence[float]) -> float:
    """Pearson's statistic; an observed count where none is expected makes it infinite."""
    total = 0.0
    for seen, wanted in zip(observed, expected, strict=True):
        if wanted <= 0:
            if seen > 0:
                return math.inf
            continue
        total += (seen - wanted) ** 2 / wanted
    return total


def chi_square_sf(x: float, df: int) -> float:
    """P(X >= x) for a chi-square variable with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("degrees of freedom must be at least 1")
    if math.isnan(x):
        raise ValueError("x is NaN")
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    if df == 1:
        return math.erfc(math.sqrt(x / 2))
    if df == 2:
        return math.exp(-x / 2)
    return _upper_gamma_regularized(df / 2, x / 2)


def _upper_gamma_regularized(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a)."""
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        # Series for the lower function P(a, x); Q = 1 - P.
        term = total = 1 / a
        n = a
        for _ in range(_MAX_ITERATIONS):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * _EPSILON:
                break
        return max(0.0, 1 - total * math.exp(log_prefix))
    # Continued fraction for Q(a, x), modified Lentz.
    b = x + 1 - a
    c = 1 / _TINY
    d = 1 / b
    h = d
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = d if abs(d) > _TINY else _TINY
        c = b + an / c
        c = c if abs(c) > _TINY else _TINY
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < _EPSILON:
            break
    return min(1.0, math.exp(log_prefix) * h)


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> Interval | None:
    """Wilson's score interval for a proportion; None without observations."""
    if n <= 0:
        return None
    z = two_sided_z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes <= 0 else max(0.0, center - half)
    high = 1.0 if successes >= n else min(1.0, center + half)
    return Interval(low, high)


def mean_interval(mean: float, sd: float, n: int, confidence: float = 0.95) -> Interval | None:
    """Normal-approximation interval for a mean; None with fewer than two observations."""
    if n < 2:
        return None
    half = two_sided_z(confidence) * sd / math.sqrt(n)
    return Interval(mean - half, mean + half)


def rate_difference(
    treatment: tuple[float, int], control: tuple[float, int], confidence: float = 0.95
) -> Interval | None:
    """Newcombe's hybrid score interval for ``p_treatment - p_control``.

    Each argument is ``(successes, n)``. It builds on the two Wilson intervals, so it stays
    inside [-1, 1] and behaves at rates near 0 or 1, where the Wald interval does not.
    """
    (s1, n1), (s2, n2) = treatment, control
    w1 = wilson_interval(s1, n1, confidence)
    w2 = wilson_interval(s2, n2, confidence)
    if w1 is None or w2 is None:
        return None
    p1, p2 = s1 / n1, s2 / n2
    difference = p1 - p2
    low = difference - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    high = difference + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    return Interval(low, high)


def mean_difference(
    treatment: tuple[float, float, int],
    control: tuple[float, float, int],
    confidence: float = 0.95,
) -> Interval | None:
    """Welch-style normal interval for ``mean_treatment - mean_control``.

    Each argument is ``(mean, sd, n)``; None when either side has fewer than two observations.
    """
    (m1, sd1, n1), (m2, sd2, n2) = treatment, control
    if n1 < 2 or n2 < 2:
        return None
    half = two_sided_z(confidence) * math.sqrt(sd1 * sd1 / n1 + sd2 * sd2 / n2)
    difference = m1 - m2
    return Interval(difference - half, difference + half)
