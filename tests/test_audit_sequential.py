"""The always-valid interval: the confidence sequence's width against its formula, its shape
(tightest where tuned, wider than a fixed-horizon interval at the same level, slowly growing
past the tuning point), and alpha split over the comparisons that decide together."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from featbit_experiments.audit.sequential import (
    always_valid_difference,
    half_width_factor,
    mixing_rho,
    split_alpha,
)


def test_the_factor_follows_the_normal_mixture_boundary() -> None:
    alpha, tuning, n = 0.05, 1000, 400
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    assert mixing_rho(alpha, tuning) ** 2 == pytest.approx(rho2)
    expected = math.sqrt(
        2 * (n * rho2 + 1) / (n * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha)
    )
    assert half_width_factor(n, alpha, tuning) == pytest.approx(expected)


@pytest.mark.parametrize("n", [10, 100, 1_000, 100_000, 10_000_000])
def test_it_is_wider_than_a_fixed_horizon_interval_at_the_same_level(n: int) -> None:
    assert half_width_factor(n, 0.05, 1000) > NormalDist().inv_cdf(0.975)


def test_it_is_tightest_near_the_tuning_point_and_grows_slowly_past_it() -> None:
    factors = {n: half_width_factor(n, 0.05, 1000) for n in (100, 1_000, 10_000, 1_000_000)}
    assert factors[1_000] < factors[100] and factors[1_000] < factors[10_000]
    assert factors[1_000_000] < 1.5 * factors[1_000]


def test_the_interval_is_centred_on_the_difference() -> None:
    interval = always_valid_difference(0.1, 0.02, 500, 0.05, 1000)
    assert (interval.low + interval.high) / 2 == pytest.approx(0.1)
    assert interval.high - interval.low == pytest.approx(
        2 * 0.02 * half_width_factor(500, 0.05, 1000)
    )


def test_alpha_is_split_evenly_over_the_comparisons() -> None:
    assert split_alpha(0.95, 3) == pytest.approx(0.05 / 3)
    assert split_alpha(0.95, 0) == pytest.approx(0.05)
