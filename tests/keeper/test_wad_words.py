"""keeper/wad_words.py: the compiled float -> WAD word conversion equals the exact
Python-int conversion of risk_engine/units.py, word for word."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from keeper.merkle import abi_words
from keeper.wad_words import wad_words, words_to_ints

LIMIT = 5e58  # |x| < 5e58: x * 1e18 inside int256 (the caller's check)

finite = st.floats(min_value=-LIMIT, max_value=LIMIT, allow_nan=False, allow_infinity=False)
# values near the WAD grid: a multiple of 1e-18 plus or minus the float's last bits
near_grid = st.builds(
    lambda k, e: float(k) * 10.0**e, st.integers(-(10**20), 10**20), st.integers(-40, 30)
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
