"""keeper/wad_words.py: the compiled float -> WAD word conversion equals the exact
Python-int conversion of risk_engine/units.py, word for word: floor, ceiling, and the
nearest with ties up (``to_signed_wad_nearest``) up to the edge of int256."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keeper.merkle import abi_words
from keeper.wad_words import NEAREST_INT256_LIMIT, nearest_wad_words, wad_words, words_to_ints
from risk_engine.errors import InvalidInputError
from risk_engine.units import to_signed_wad_nearest

LIMIT = 5e58  # |x| < 5e58: x * 1e18 inside int256 (the caller's check)

finite = st.floats(min_value=-LIMIT, max_value=LIMIT, allow_nan=False, allow_infinity=False)
# values near the WAD grid: a multiple of 1e-18 plus or minus the float's last bits
near_grid = st.builds(
    lambda k, e: float(k) * 10.0**e, st.integers(-(10**20), 10**20), st.integers(-40, 30)
)

# x * 1e18 = k + 1/2 exactly: x = q / 2**19 for an odd q (1e18 = 2**18 * 5**18); and the
# floats either side of such a tie
ties = st.builds(lambda q: q / 2**19, st.integers(-(2**52), 2**52).map(lambda q: 2 * q + 1))
near_ties = st.builds(
    lambda x, up: math.nextafter(x, math.inf if up else -math.inf), ties, st.booleans()
)


def _floor_wad(x: float) -> int:
    return math.floor(Fraction(x) * 10**18)


def _ceil_wad(x: float) -> int:
    return math.ceil(Fraction(x) * 10**18)


@given(st.lists(st.one_of(finite, near_grid).filter(lambda v: abs(v) < LIMIT), max_size=40))
def test_floor_and_ceil_words_are_the_exact_integers(xs: list[float]) -> None:
    x = np.array(xs, dtype=np.float64)
    down, up = wad_words(x, up=False), wad_words(x, up=True)
    assert words_to_ints(down) == [_floor_wad(v) for v in xs]
    assert words_to_ints(up) == [_ceil_wad(v) for v in xs]
    # and the bytes are abi.encode's int256 words of those integers
    if xs:
        assert np.array_equal(down, abi_words([[_floor_wad(v) for v in xs]]))


def test_edges() -> None:
    tiny = math.ldexp(1.0, -1074)  # the smallest subnormal
    xs = [0.0, -0.0, 1.0, -1.0, 1e-18, -1e-18, 3e-19, -3e-19, tiny, -tiny, 4.99e58, -4.99e58]
    xs += [math.ldexp(1.0, k) for k in range(-130, 196, 7)]
    xs += [-math.ldexp(1.0, k) - math.ldexp(1.0, k - 52) for k in range(-130, 196, 7)]
    x = np.array(xs)
    assert words_to_ints(wad_words(x, up=False)) == [_floor_wad(v) for v in xs]
    assert words_to_ints(wad_words(x, up=True)) == [_ceil_wad(v) for v in xs]
    # a value with bits below 1e-18 rounds apart; one on the grid does not
    assert words_to_ints(wad_words(np.array([3e-19]), up=True)) == [1]
    assert words_to_ints(wad_words(np.array([-3e-19]), up=False)) == [-1]
    assert words_to_ints(wad_words(np.array([-3e-19]), up=True)) == [0]
    assert words_to_ints(wad_words(np.array([2.0]), up=True)) == [2 * 10**18]


def test_empty() -> None:
    assert wad_words(np.array([], dtype=np.float64), up=False).shape == (0, 32)


@given(
    st.lists(
        st.one_of(finite, near_grid, ties, near_ties).filter(lambda v: abs(v) < LIMIT),
        max_size=40,
    )
)
def test_nearest_words_are_to_signed_wad_nearest(xs: list[float]) -> None:
    words = nearest_wad_words(np.array(xs, dtype=np.float64))
    assert words_to_ints(words) == [to_signed_wad_nearest(v) for v in xs]


def test_nearest_edges() -> None:
    tiny = math.ldexp(1.0, -1074)
    tie = math.ldexp(3.0, -19)  # x * 1e18 = 3 * 5**18 / 2 = 5722045898437.5
    xs = [0.0, -0.0, tiny, -tiny, 5e-19, -5e-19, 1.5e-18, -1.5e-18, tie, -tie]
    xs += [math.nextafter(tie, 0.0), math.nextafter(-tie, 0.0)]
    xs += [math.ldexp(s, k) for k in range(-1074, 190, 3) for s in (1.0, -1.0, 1.5, -1.75)]
    assert words_to_ints(nearest_wad_words(np.array(xs))) == [to_signed_wad_nearest(v) for v in xs]
    # a tie goes up, on either side of zero
    assert words_to_ints(nearest_wad_words(np.array([tie, -tie]))) == [
        5722045898438,
        -5722045898437,
    ]


def test_nearest_limit_is_the_edge_of_int256() -> None:
    inside = math.nextafter(NEAREST_INT256_LIMIT, 0.0)
    words = nearest_wad_words(np.array([inside, -inside]))
    assert words_to_ints(words) == [to_signed_wad_nearest(inside), to_signed_wad_nearest(-inside)]
    for x in (NEAREST_INT256_LIMIT, -NEAREST_INT256_LIMIT):
        with pytest.raises(InvalidInputError, match="exceeds int256"):
            to_signed_wad_nearest(x)


def test_nearest_keeps_the_c_order_of_a_matrix() -> None:
    x = np.arange(6, dtype=np.float64).reshape(2, 3) - 2.5
    assert words_to_ints(nearest_wad_words(x)) == [to_signed_wad_nearest(v) for v in x.ravel()]
