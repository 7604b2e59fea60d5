"""Black-76 against an independent library (py_vollib) and parity."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from vollib.black import black

from risk_engine import black76, black76_delta, black76_spot_delta
from risk_engine._reference import black76_scalar
from risk_engine.books import hedge_size

HOUR = 1.0 / (365.0 * 24.0)
FORWARDS = (100.0, 3000.0, 60000.0)
MONEYNESS = (0.3, 0.7, 0.9, 1.0, 1.1, 1.5, 3.0)  # K / F: deep ITM to deep OTM both ways
TENORS = (HOUR, 6 * HOUR, 1 / 365, 7 / 365, 0.25, 1.0, 3.0)
VOLS = (0.05, 0.3, 0.8, 1.5)
RATES = (0.0, 0.05)


def _grid() -> list[tuple[float, float, float, float, float, bool]]:
    return [
        (f, f * m, t, v, r, c)
        for f, m, t, v, r, c in itertools.product(
            FORWARDS, MONEYNESS, TENORS, VOLS, RATES, (True, False)
        )
    ]


def test_black76_matches_vollib_to_1e9_relative() -> None:
    grid = _grid()
    f, k, t, v, r, c = (np.array(x) for x in zip(*grid, strict=True))
    ours = np.array([black76(f[i], k[i], t[i], v[i], r[i], c[i]) for i in range(len(grid))])
    vec = black76(f, k, t, v, 0.0, c)  # vectorised call, rate 0 column below
    theirs = np.array(
        [black("c" if gc else "p", gf, gk, gt, gr, gv) for gf, gk, gt, gv, gr, gc in grid]
    )
    # compare only where the premium is representable (> 1e-300): vollib returns 0 below
    mask = theirs > 1e-250
    assert mask.sum() > 0.8 * len(grid)
    rel = np.abs(ours[mask] - theirs[mask]) / theirs[mask]
    assert rel.max() < 1e-9, rel.max()
    zero_rate = r == 0.0
    assert np.allclose(vec[zero_rate], ours[zero_rate], rtol=1e-15, atol=0.0)


def test_black76_deep_itm_one_hour_is_discounted_intrinsic() -> None:
    f, k, t = 60000.0, 30000.0, HOUR
    assert black76(f, k, t, 0.6, 0.05, True) == pytest.approx(
        math.exp(-0.05 * t) * (f - k), rel=1e-12
    )


@pytest.mark.parametrize("tenor", [HOUR, 0.1, 2.0])
def test_put_call_parity(tenor: float) -> None:
    f = 3000.0
    k = np.array([1000.0, 2500.0, 3000.0, 3300.0, 9000.0])
    r = 0.04
    c = black76(f, k, tenor, 0.7, r, True)
    p = black76(f, k, tenor, 0.7, r, False)
    np.testing.assert_allclose(c - p, math.exp(-r * tenor) * (f - k), rtol=1e-12, atol=1e-9)


def test_expired_option_is_intrinsic_undiscounted() -> None:
    out = black76(np.array([90.0, 110.0]), 100.0, 0.0, 0.5, 0.05, np.array([True, False]))
    np.testing.assert_array_equal(out, [0.0, 0.0])
    out = black76(np.array([110.0, 90.0]), 100.0, -1.0, 0.5, 0.05, np.array([True, False]))
    np.testing.assert_array_equal(out, [10.0, 10.0])


def test_delta_matches_finite_difference() -> None:
    f = np.array([50.0, 100.0, 150.0])
    for call in (True, False):
        h = 1e-4
        fd = (
            black76(f + h, 100.0, 0.5, 0.6, 0.02, call)
            - black76(f - h, 100.0, 0.5, 0.6, 0.02, call)
        ) / (2 * h)
        np.testing.assert_allclose(black76_delta(f, 100.0, 0.5, 0.6, 0.02, call), fd, rtol=1e-6)


def test_scalar_reference_pricer_agrees() -> None:
    for f, k, t, v, r, c in _grid()[::7]:
        a = black76_scalar(f, k, t, v, r, c)
        b = float(black76(f, k, t, v, r, c))
        assert a == pytest.approx(b, rel=1e-9, abs=1e-200)


@given(
    spot=st.floats(100.0, 100_000.0),
    basis=st.floats(0.9, 1.1),
    moneyness=st.floats(0.5, 2.0),
    tenor=st.floats(1 / 365, 2.0),
    vol=st.floats(0.1, 1.5),
    is_call=st.booleans(),
)
def test_spot_delta_is_the_derivative_in_spot_at_a_fixed_basis(
    spot: float, basis: float, moneyness: float, tenor: float, vol: float, is_call: bool
) -> None:
    strike = spot * moneyness
    h = spot * 1e-5

    def value(s: float) -> float:
        return float(black76(s * basis, strike, tenor, vol, 0.01, is_call))

    fd = (value(spot + h) - value(spot - h)) / (2 * h)
    got = float(black76_spot_delta(spot, spot * basis, strike, tenor, vol, 0.01, is_call))
    assert got == pytest.approx(fd, abs=1e-5)


@given(
    qty=st.lists(st.floats(-50.0, 50.0), min_size=1, max_size=6),
    spot=st.floats(100.0, 100_000.0),
    moneyness=st.lists(st.floats(0.5, 2.0), min_size=6, max_size=6),
)
def test_a_book_plus_its_hedge_size_of_perp_has_no_delta(
    qty: list[float], spot: float, moneyness: list[float]
) -> None:
    deltas = [
        float(black76_spot_delta(spot, spot, spot * m, 0.1, 0.6, 0.0, i % 2 == 0))
        for i, m in enumerate(moneyness[: len(qty)])
    ]
    legs = list(zip(qty, deltas, strict=True))
    hedge = hedge_size(legs)
    assert sum(q * d for q, d in legs) + hedge * 1.0 == pytest.approx(0.0, abs=1e-9)
