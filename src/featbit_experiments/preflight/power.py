"""Power arithmetic for planning: the smallest effect a two-arm comparison can detect, and the
units it needs to detect a given one.

Normal approximation, two-sided test at ``alpha`` (0.05) with ``power`` (0.8), the same model as
statsmodels' ``NormalIndPower``: a standardized effect ``d`` is detected with probability
``Phi(d*sqrt(m) - z) + Phi(-d*sqrt(m) - z)`` where ``m = 1 / (1/n1 + 1/n2)`` and ``z`` is the
normal quantile at ``1 - alpha/2``. Proportions use Cohen's ``h`` (the arcsine transform,
statsmodels' ``proportion_effectsize``); means use ``d = difference / sd``. The equation is
solved numerically (both tails), so results match the reference to rounding. Planning only:
nothing here reads events or decides an experiment.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

__all__ = [
    "ALPHA",
    "POWER",
    "detection_power",
    "mean_mde",
    "proportion_effect",
    "proportion_mde",
    "standardized_mde",
    "units_for_effect",
]

ALPHA = 0.05
POWER = 0.8

_NORMAL = NormalDist()
_TOLERANCE = 1e-12


def detection_power(effect: float, n1: float, n2: float, alpha: float = ALPHA) -> float:
    """The probability of detecting a standardized ``effect`` with ``n1`` and ``n2`` units."""
    crit = _NORMAL.inv_cdf(1 - alpha / 2)
    shift = abs(effect) * math.sqrt(1 / (1 / n1 + 1 / n2))
    return _NORMAL.cdf(shift - crit) + _NORMAL.cdf(-shift - crit)


def standardized_mde(n1: float, n2: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest standardized effect detected with probability ``power``."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("each arm needs at least some units")
    low, high = 0.0, 1.0
    while detection_power(high, n1, n2, alpha) < power:
        high *= 2
    return _bisect(lambda d: detection_power(d, n1, n2, alpha) - power, low, high)


def units_for_effect(
    effect: float, ratio: float = 1.0, alpha: float = ALPHA, power: float = POWER
) -> float:
    """Units in the first arm (the second has ``ratio`` times as many) to detect a
    standardized ``effect`` with probability ``power``."""
    if effect == 0:
        return math.inf
    low, high = 1e-9, 1.0
    while detection_power(effect, high, high * ratio, alpha) < power:
        high *= 2
    return _bisect(lambda n: detection_power(effect, n, n * ratio, alpha) - power, low, high)


def proportion_mde(
    baseline: float,
    n1: float,
    n2: float,
    *,
    higher_is_better: bool = True,
    alpha: float = ALPHA,
    power: float = POWER,
) -> float | None:
    """The smallest change from ``baseline`` (a rate in (0, 1)) detected with probability
    ``power``, as the rate it takes minus the baseline, in the better direction; None when no
    rate within [0, 1] is far enough away."""
    if not 0 < baseline < 1:
        raise ValueError(f"a baseline rate must be between 0 and 1, got {baseline!r}")
    h = standardized_mde(n1, n2, alpha, power)
    angle = math.asin(math.sqrt(baseline)) + (h / 2 if higher_is_better else -h / 2)
    if not 0 <= angle <= math.pi / 2:
        return None
    return math.sin(angle) ** 2 - baseline


def mean_mde(sd: float, n1: float, n2: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest difference of means detected with probability ``power``, for a metric
    with standard deviation ``sd`` per unit."""
    if sd <= 0:
        raise ValueError(f"a standard deviation must be positive, got {sd!r}")
    return standardized_mde(n1, n2, alpha, power) * sd


def proportion_effect(baseline: float, changed: float) -> float:
    """Cohen's ``h`` between two rates, as statsmodels'
    ``proportion_effectsize(changed, baseline)``."""
    return 2 * math.asin(math.sqrt(changed)) - 2 * math.asin(math.sqrt(baseline))


def _bisect(f: Callable[[float], float], low: float, high: float) -> float:
    """The root of an increasing ``f`` between ``low`` and ``high``."""
    for _ in range(200):
        middle = (low + high) / 2
        if f(middle) < 0:
            low = middle
        else:
            high = middle
        if high - low <= _TOLERANCE * max(1.0, high):
            break
    return (low + high) / 2
