"""Floats to exact WAD ABI words, compiled: the leaf values of 100,000 accounts at once,
and every engine risk-vector row of an epoch.

An ACCOUNT leaf's equity is ``floor(x * 1e18)`` of the engine's float and its im and mm
``ceil(x * 1e18)`` (``risk_engine/leaves.py:wad_account_values``, docs/protocol.md §3); a
dispute's risk vector holds the nearest WAD integer, a tie rounded up
(``risk_engine.units.to_signed_wad_nearest``, ``keeper/dispute_encoding.py:vector_hashes``).
Done on Python ints, the conversion and then the ABI encoding of those ints are a third
of the epoch build at 100,000 accounts (docs/benchmarks.md, "Compute stage"). Here both
are one compiled pass from the floats to the 32-byte words, exact:

- ``x = M * 2**E`` with a 53-bit integer ``M`` (``frexp``), so ``x * 1e18 = M * 5**18 *
  2**(E + 18)``; ``|M| * 5**18 < 2**95`` is computed in 32-bit pieces into two 64-bit limbs;
- the shift by ``E + 18`` runs over four 64-bit limbs (256 bits): left exactly, right
  with the dropped bits kept as the first of them (half a unit) and whether any under it
  is set, so the floor of a negative value and the ceiling of a positive one add one when
  a bit was shifted out, and the nearest adds one past the half (at the half for ``x > 0``);
- the result is written as big-endian two's complement, as ``abi.encode`` of an int256
  (a uint256 below 2**255 has the same bytes).

The caller checks that every value is finite and ``|x| < 5e58`` (``x * 1e18`` inside
int256; :data:`NEAREST_INT256_LIMIT` is the exact bound of the nearest);
tests/keeper/test_wad_words.py checks it against the Python-int conversion.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["NEAREST_INT256_LIMIT", "nearest_wad_words", "wad_words", "words_to_ints"]

U8Array = npt.NDArray[np.uint8]
U64Array = npt.NDArray[np.uint64]

_MASK32 = 0xFFFF_FFFF
#: 1e18 = 2**18 * 5**18; 5**18 < 2**42 split in 32-bit halves.
_FIVE_18_HI = (5**18) >> 32
_FIVE_18_LO = (5**18) & _MASK32


#: Rounding modes of :func:`_fill`.
_FLOOR, _CEIL, _NEAREST = 0, 1, 2


@numba.njit(cache=True, nogil=True)
def _bit(lo: np.uint64, hi: np.uint64, k: int) -> bool:  # pragma: no cover - compiled
    """Bit ``k`` (0..127) of the 128-bit ``hi:lo``."""
    if k < 64:
        return bool((lo >> np.uint64(k)) & np.uint64(1))
    return bool((hi >> np.uint64(k - 64)) & np.uint64(1))


@numba.njit(cache=True, nogil=True)
def _any_below(lo: np.uint64, hi: np.uint64, k: int) -> bool:  # pragma: no cover - compiled
    """Whether a bit under bit ``k`` (0..128) of the 128-bit ``hi:lo`` is set (no shift by
    64 or more: LLVM leaves those undefined)."""
    if k == 0:
        return False
    if k < 64:
        return bool(lo & ((np.uint64(1) << np.uint64(k)) - np.uint64(1)))
    if k == 64:
        return bool(lo)
    if k == 128:
        return bool(lo | hi)
    return bool(lo) or bool(hi & ((np.uint64(1) << np.uint64(k - 64)) - np.uint64(1)))


@numba.njit(cache=True, nogil=True)
def _negate(limbs: U64Array) -> None:  # pragma: no cover - compiled
    """Two's complement of the 256-bit ``limbs`` in place: invert and add one."""
    c = np.uint64(1)
    for k in range(4):
        limbs[k] = ~limbs[k] + c
        c = np.uint64(1) if (c == 1 and limbs[k] == 0) else np.uint64(0)


@numba.njit(cache=True, nogil=True)
def _fill(x: npt.NDArray[np.float64], mode: int, out: U8Array) -> None:  # pragma: no cover
    limbs = np.zeros(4, np.uint64)  # little-endian 64-bit limbs of the magnitude
    for i in range(x.shape[0]):
        v = -x[i] if mode == _CEIL else x[i]  # ceil(x) = -floor(-x)
        mant, exp = math.frexp(v)
        m = np.int64(math.ldexp(mant, 53))
        neg = bool(m < 0)
        a = np.uint64(-m if neg else m)
        e = exp - 53 + 18
        # |M| * 5**18 in 32-bit pieces: every partial product is below 2**64.
        ah = a >> np.uint64(32)
        al = a & np.uint64(_MASK32)
        p0 = al * np.uint64(_FIVE_18_LO)
        p1 = ah * np.uint64(_FIVE_18_LO) + al * np.uint64(_FIVE_18_HI)  # < 2**54
        p2 = ah * np.uint64(_FIVE_18_HI)  # < 2**31
        lo = p0 + (p1 << np.uint64(32))
        carry = np.uint64(1) if lo < p0 else np.uint64(0)
        hi = p2 + (p1 >> np.uint64(32)) + carry
        limbs[:] = 0
        # The bits a right shift drops: ``half`` the first (worth half a unit of the
        # result), ``below`` any under it.
        half = False
        below = False
        if e >= 0:
            q, r = e // 64, e % 64
            src = (lo, hi)
            for k in range(2):
                if q + k < 4:
                    limbs[q + k] |= src[k] << np.uint64(r)
                if r > 0 and q + k + 1 < 4:
                    limbs[q + k + 1] |= src[k] >> np.uint64(64 - r)
        else:
            s = -e
            if s >= 128:
                # |M| * 5**18 < 2**95: nothing is left, and the first dropped bit is 0
                below = _any_below(lo, hi, 128)
            else:
                if s >= 64:
                    limbs[0] = hi >> np.uint64(s - 64)
                else:
                    limbs[0] = (lo >> np.uint64(s)) | (hi << np.uint64(64 - s))
                    limbs[1] = hi >> np.uint64(s)
                half = _bit(lo, hi, s - 1)
                below = _any_below(lo, hi, s - 1)
        if mode == _NEAREST:
            # floor(|v| + 1/2) for v >= 0; for v < 0, -floor(|v| + 1/2) except that a tie
            # goes up (towards zero): round the magnitude up only past the half.
            bump = half and (below or not neg)
        else:
            # floor(-|v|) = -(trunc(|v|) + 1 if a bit was dropped)
            bump = neg and (half or below)
        if bump:
            for k in range(4):
                limbs[k] += np.uint64(1)
                if limbs[k] != 0:
                    break
        if neg:
            _negate(limbs)
        if mode == _CEIL:
            _negate(limbs)  # the result so far is floor(-x); ceil(x) is its negation
        for k in range(4):
            w = limbs[3 - k]
            for b in range(8):
                out[i, 8 * k + b] = np.uint8((w >> np.uint64(56 - 8 * b)) & np.uint64(0xFF))


def _words(x: npt.NDArray[np.float64], mode: int) -> U8Array:
    values = np.ascontiguousarray(x, dtype=np.float64).ravel()
    out = np.empty((values.shape[0], 32), dtype=np.uint8)
    _fill(values, mode, out)
    return out


def wad_words(x: npt.NDArray[np.float64], *, up: bool) -> U8Array:
    """``floor(x * 1e18)`` (``up`` False) or ``ceil(x * 1e18)`` (``up`` True) of every
    float as a 32-byte big-endian two's complement word, shape ``(n, 32)``. Every value
    must be finite with ``|x| < 5e58`` (the caller checks)."""
    return _words(x, _CEIL if up else _FLOOR)


def nearest_wad_words(x: npt.NDArray[np.float64]) -> U8Array:
    """``floor(x * 1e18 + 1/2)``, the WAD integer nearest to each float with a tie rounded
    up (``risk_engine.units.to_signed_wad_nearest``), as 32-byte big-endian two's
    complement words, shape ``(x.size, 32)`` in ``x``'s C order. Every value must be
    finite with ``|x| <`` :data:`NEAREST_INT256_LIMIT` (the caller checks)."""
    return _words(x, _NEAREST)


def _nearest_int256_limit() -> float:
    # The first float whose nearest WAD integer is past int256: x * 1e18 >= 2**255. Up
    # there x * 1e18 is an integer with the factor 5**18 (never -2**255 exactly), so a
    # negative value overflows at the same magnitude.
    bound = Fraction(2**255, 10**18)
    x = float(bound)
    while Fraction(x) < bound:
        x = math.nextafter(x, math.inf)
    while Fraction(math.nextafter(x, 0.0)) >= bound:
        x = math.nextafter(x, 0.0)
    return x


#: The smallest ``|x|`` whose nearest WAD integer does not fit int256 (about 5.79e58 USD).
NEAREST_INT256_LIMIT = _nearest_int256_limit()


def words_to_ints(words: U8Array) -> list[int]:
    """The signed integers of 32-byte big-endian words (rows of ``words``)."""
    blob = words.tobytes()
    return [int.from_bytes(blob[i : i + 32], "big", signed=True) for i in range(0, len(blob), 32)]
