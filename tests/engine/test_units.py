"""WAD conversion: exact, and rounding against the account."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk_engine import (
    InvalidInputError,
    compute_margin,
    load_params,
    to_signed_wad_down,
    to_signed_wad_up,
    to_wad_down,
    to_wad_up,
)
from risk_engine.leaves import wad_account_values, wad_account_values_many
from risk_engine.synthetic import random_portfolios, synthetic_instruments, synthetic_market
from risk_engine.units import UINT256_MAX, WAD, many_to_wad_up, to_signed_wad_nearest

finite = st.floats(min_value=-1e30, max_value=1e30, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(finite)
def test_signed_rounding_is_exact_floor_and_ceil(x: float) -> None:
    exact = Fraction(x) * WAD
    lo = to_signed_wad_down(x)
    hi = to_signed_wad_up(x)
    assert lo <= exact <= hi
    assert hi - lo <= 1
    assert (hi == lo) == (exact.denominator == 1)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=1e30, allow_nan=False))
def test_unsigned_up_never_below_and_down_never_above(x: float) -> None:
    exact = Fraction(x) * WAD
    assert to_wad_down(x) <= exact <= to_wad_up(x)


@settings(max_examples=300, deadline=None)
@given(finite)
def test_nearest_is_within_half_a_wei_and_one_of_floor_and_ceil(x: float) -> None:
    exact = Fraction(x) * WAD
    w = to_signed_wad_nearest(x)
    assert abs(w - exact) <= Fraction(1, 2)
    assert w in (to_signed_wad_down(x), to_signed_wad_up(x))


def test_nearest_rounds_a_tie_up() -> None:
    # 2**-19 WAD = 1907348632812.5 exactly: a tie on either sign goes toward +inf
    assert to_signed_wad_nearest(2.0**-19) == 1907348632813
    assert to_signed_wad_nearest(-(2.0**-19)) == -1907348632812
    assert to_signed_wad_nearest(0.1) == 100000000000000006  # 0.1000000000000000055511...
    with pytest.raises(InvalidInputError, match="int256"):
        to_signed_wad_nearest(float(UINT256_MAX), field="loss")


def test_examples() -> None:
    # the float 0.1 is 0.1000000000000000055511151231257827...
    assert to_wad_up(0.1) == 100000000000000006
    assert to_wad_down(0.1) == 100000000000000005
    assert to_wad_up(1.5) == to_wad_down(1.5) == 3 * WAD // 2
    assert to_signed_wad_down(-0.1) == -100000000000000006
    assert to_signed_wad_up(-0.1) == -100000000000000005


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_is_rejected(bad: float) -> None:
    with pytest.raises(InvalidInputError) as e:
        to_signed_wad_down(bad, field="equity")
    assert e.value.field == "equity"


def test_negative_unsigned_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="negative"):
        to_wad_up(-1e-30, field="im")


def test_overflow_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="uint256"):
        to_wad_up(float(UINT256_MAX))
    with pytest.raises(InvalidInputError, match="int256"):
        to_signed_wad_down(-float(UINT256_MAX))


def test_many_names_the_element() -> None:
    with pytest.raises(InvalidInputError) as e:
        many_to_wad_up([1.0, float("nan")], field="loss_long")
    assert e.value.field == "loss_long[1]"


ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
ROWS = st.lists(st.tuples(finite, finite, finite, st.floats(0, 1e6)), min_size=1, max_size=20)


def _scalar_or_error(rows: list[tuple[float, float, float, float]]) -> object:
    try:
        return [wad_account_values(*r) for r in rows]
    except InvalidInputError as exc:
        return type(exc), str(exc)


@settings(max_examples=300, deadline=None)
@given(st.one_of(ROWS, st.lists(st.tuples(ANY_FLOAT, ANY_FLOAT, ANY_FLOAT, finite), min_size=1)))
def test_account_values_of_many_equal_the_scalar_one_by_one(
    rows: list[tuple[float, float, float, float]],
) -> None:
    cols = [np.array(c, dtype=np.float64) for c in zip(*rows, strict=True)]
    want = _scalar_or_error(rows)
    try:
        got: object = [tuple(t) for t in zip(*wad_account_values_many(*cols), strict=True)]
    except InvalidInputError as exc:
        got = type(exc), str(exc)
    assert got == want


def test_margin_result_to_wad_all_is_to_wad_of_every_account() -> None:
    rng = np.random.default_rng(5)
    m = synthetic_market(rng)
    book = random_portfolios(rng, synthetic_instruments(m), m, 2_000, 10)
    result = compute_margin(book, m, load_params())
    equity, im, mm = result.to_wad_all()
    assert list(zip(equity, im, mm, strict=True)) == [result.to_wad(r) for r in range(2_000)]
