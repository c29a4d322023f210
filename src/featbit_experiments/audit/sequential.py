"""Always-valid intervals for the decision hint, so a team may look at a running experiment
every day (or every hour) without the look itself making a false "ship" likely.

The interval is an asymptotic confidence sequence (Waudby-Smith, Arnold, Wu, McAuliffe and
Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences", 2023; the
normal-mixture boundary of Howard et al., 2021) around the same difference of means and
standard error a fixed-horizon interval uses: at ``n`` units its half-width is::

    se * sqrt( 2 (n rho^2 + 1) / (n rho^2) * ln( sqrt(n rho^2 + 1) / alpha ) )

where ``rho`` is chosen so that the sequence is tightest at ``tuning`` units. GrowthBook and
Eppo use this boundary (GrowthBook's "sequential testing tuning parameter" is ``tuning``);
Statsig and Optimizely use a mixture sequential probability ratio test, a close relative
whose intervals have the same shape. The price of looking at will is width: about 1.5 times
the fixed-horizon interval at ``tuning`` units, growing like sqrt(log n) past it.

Several comparisons decide together (each deciding metric, each treatment), so ``alpha`` is
split evenly over them (Bonferroni): the chance that any of them ever crosses zero when no
effect exists stays below the level asked for. Pure functions of numbers.
"""

from __future__ import annotations

import math

from .stats import Interval

__all__ = ["always_valid_difference", "half_width_factor", "mixing_rho", "split_alpha"]


def mixing_rho(alpha: float, tuning: float) -> float:
    """The mixture's scale that makes the sequence tightest at ``tuning`` observations."""
    if not 0 < alpha < 1 or tuning <= 0:
        raise ValueError("alpha must be in (0, 1) and tuning positive")
    log_term = -2 * math.log(alpha)
    return math.sqrt((log_term + math.log(log_term + 1)) / tuning)


def half_width_factor(n: int, alpha: float, tuning: float) -> float:
    """The half-width in standard errors at ``n`` observations (``z`` of a fixed interval)."""
    if n <= 0:
        return math.inf
    x = n * mixing_rho(alpha, tuning) ** 2
    return math.sqrt(2 * (x + 1) / x * math.log(math.sqrt(x + 1) / alpha))


def always_valid_difference(
    difference: float, standard_error: float, n: int, alpha: float, tuning: float
) -> Interval:
    """The confidence sequence's interval for a difference estimated from ``n`` units."""
    half = standard_error * half_width_factor(n, alpha, tuning)
    return Interval(difference - half, difference + half)


def split_alpha(confidence: float, comparisons: int) -> float:
    """Each comparison's alpha when ``comparisons`` decide together (Bonferroni)."""
    return (1 - confidence) / max(1, comparisons)
