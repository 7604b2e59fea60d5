"""WAD conversion: exact, and rounding against the account."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk_engine import (
    InvalidInputError,
    to_signed_wad_down,
    to_signed_wad_up,
    to_wad_down,
    to_wad_up,
)
from risk_engine.units import UINT256_MAX, WAD, many_to_wad_up

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
