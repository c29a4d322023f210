"""The audit's statistics against reference values: chi-square critical values (standard
tables), closed forms of the chi-square survival function, and the worked examples of
Newcombe (1998) for Wilson intervals and differences of proportions."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from featbit_experiments.audit.stats import (
    chi_square_sf,
    chi_square_statistic,
    mean_difference,
    mean_interval,
    rate_difference,
    two_sided_z,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("x", "df", "p"),
    [
        (3.841458820694124, 1, 0.05),
        (6.634896601021214, 1, 0.01),
        (10.827566170662733, 1, 0.001),
        (5.991464547107979, 2, 0.05),
        (7.814727903251178, 3, 0.05),
        (11.344866730144373, 3, 0.01),
        (9.487729036781154, 4, 0.05),
        (18.307038053275146, 10, 0.05),
        (124.34211340400407, 100, 0.05),
        (1.0, 3, 0.8012519569012008),
        (0.454936423119572, 1, 0.5),
    ],
)
def test_chi_square_sf_matches_table_values(x: float, df: int, p: float) -> None:
    assert chi_square_sf(x, df) == pytest.approx(p, rel=1e-9)


@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 2.9, 3.1, 7.5, 20.0, 60.0, 150.0])
def test_chi_square_sf_matches_closed_forms_on_both_branches(x: float) -> None:
    h = x / 2
    assert chi_square_sf(x, 3) == pytest.approx(
        math.erfc(math.sqrt(h)) + math.sqrt(2 * x / math.pi) * math.exp(-h), rel=1e-10
    )
    assert chi_square_sf(x, 4) == pytest.approx(math.exp(-h) * (1 + h), rel=1e-10)
    assert chi_square_sf(x, 6) == pytest.approx(math.exp(-h) * (1 + h + h * h / 2), rel=1e-10)


@pytest.mark.parametrize("z", [0.1, 1.0, 1.96, 3.0, 5.0])
def test_chi_square_sf_with_one_df_is_the_two_sided_normal_tail(z: float) -> None:
    assert chi_square_sf(z * z, 1) == pytest.approx(2 * (1 - NormalDist().cdf(z)), rel=1e-9)


def test_chi_square_sf_edges() -> None:
    assert chi_square_sf(0.0, 5) == 1.0
    assert chi_square_sf(math.inf, 5) == 0.0
    assert 0 < chi_square_sf(400.0, 3) < 1e-80
    with pytest.raises(ValueError):
        chi_square_sf(1.0, 0)


def test_pearson_statistic_and_an_observed_count_where_none_is_expected() -> None:
    assert chi_square_statistic([60, 40], [50, 50]) == pytest.approx(4.0)
    assert chi_square_statistic([10, 5], [15, 0]) == math.inf
    assert chi_square_statistic([15, 0], [15, 0]) == 0.0


def test_two_sided_z_for_95_percent() -> None:
    assert two_sided_z(0.95) == pytest.approx(1.959963984540054)


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_newcombe_1998(
    successes: int, n: int, low: float, high: float
) -> None:
    interval = wilson_interval(successes, n)
    assert interval is not None
    assert (interval.low, interval.high) == (
        pytest.approx(low, abs=1e-4),
        pytest.approx(high, abs=1e-4),
    )


def test_wilson_interval_of_all_successes_ends_at_one_and_none_without_data() -> None:
    interval = wilson_interval(20, 20)
    assert interval is not None and interval.high == 1.0
    assert wilson_interval(0, 0) is None


@pytest.mark.parametrize(
    ("treatment", "control", "low", "high"),
    [
        ((56, 70), (48, 80), 0.0524, 0.3339),
        ((9, 10), (3, 10), 0.1705, 0.8090),
        ((6, 7), (2, 7), 0.0582, 0.8062),
        ((5, 56), (0, 29), -0.0381, 0.1926),
    ],
)
def test_rate_difference_matches_newcombe_method_10(
    treatment: tuple[int, int], control: tuple[int, int], low: float, high: float
) -> None:
    interval = rate_difference(treatment, control)
    assert interval is not None
    assert (interval.low, interval.high) == (
        pytest.approx(low, abs=1e-4),
        pytest.approx(high, abs=1e-4),
    )


def test_mean_interval_and_difference_use_the_normal_approximation() -> None:
    interval = mean_interval(10.0, 2.0, 100)
    assert interval is not None
    assert interval.low == pytest.approx(10 - 1.959963984540054 * 0.2)
    difference = mean_difference((12.0, 3.0, 50), (10.0, 4.0, 80))
    assert difference is not None
    half = 1.959963984540054 * math.sqrt(9 / 50 + 16 / 80)
    assert (difference.low, difference.high) == (pytest.approx(2 - half), pytest.approx(2 + half))
    assert mean_interval(1.0, 0.0, 1) is None
    assert mean_difference((1.0, 0.0, 1), (1.0, 0.0, 5)) is None
