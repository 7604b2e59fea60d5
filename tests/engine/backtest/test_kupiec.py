"""Kupiec POF statistic against hand-computed values, and its guards."""

import math

import pytest

from risk_engine.backtest.kupiec import kupiec_pof


def test_kupiec_pof_matchesHandComputedCase() -> None:
    # n = 250, x = 5, p = 0.01: rate = 0.02
    # LR = -2[245 ln 0.99 + 5 ln 0.01] + 2[245 ln 0.98 + 5 ln 0.02]
    n, x, p = 250, 5, 0.01
    expected = -2 * (245 * math.log(0.99) + 5 * math.log(0.01)) + 2 * (
        245 * math.log(0.98) + 5 * math.log(0.02)
    )
    assert expected == pytest.approx(1.9568, abs=1e-4)  # written out by hand once
    result = kupiec_pof(x, n, coverage=1 - p)
    assert result.lr == pytest.approx(expected, rel=1e-12)
    # P(chi2_1 >= 1.9568) = erfc(sqrt(LR/2))
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(expected / 2)), rel=1e-9)
    assert not result.rejected
    assert result.verdict == "not rejected"


def test_kupiec_pof_zeroExceedancesUsesLimit() -> None:
    # x = 0: LR = -2 n ln(1 - p)
    result = kupiec_pof(0, 1000)
    assert result.lr == pytest.approx(-2 * 1000 * math.log(0.99), rel=1e-12)
    assert result.rejected and not result.too_many
    assert result.verdict == "rejected: too few"


def test_kupiec_pof_allExceedances() -> None:
    result = kupiec_pof(10, 10)
    assert result.lr == pytest.approx(-2 * 10 * math.log(0.01), rel=1e-12)
    assert result.too_many
    assert result.verdict == "REJECTED: too many"


def test_kupiec_pof_expectedCountIsNotRejected() -> None:
    result = kupiec_pof(25, 2500)
    assert result.lr == pytest.approx(0.0, abs=1e-9)
    assert result.p_value == pytest.approx(1.0)


def test_kupiec_pof_tooManyAt99() -> None:
    result = kupiec_pof(40, 2500)
    assert result.rejected and result.too_many


@pytest.mark.parametrize(
    ("x", "n", "kwargs", "field"),
    [
        (0, 0, {}, "n_days"),
        (-1, 10, {}, "n_exceedances"),
        (11, 10, {}, "n_exceedances"),
        (1, 10, {"coverage": 1.0}, "coverage"),
        (1, 10, {"alpha": 0.0}, "alpha"),
    ],
)
def test_kupiec_pof_revertsWhenBadInput(
    x: int, n: int, kwargs: dict[str, float], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        kupiec_pof(x, n, **kwargs)
