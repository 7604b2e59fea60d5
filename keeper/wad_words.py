"""Floats to exact WAD ABI words, compiled: the leaf values of 100,000 accounts at once.

An ACCOUNT leaf's equity is ``floor(x * 1e18)`` of the engine's float and its im and mm
``ceil(x * 1e18)`` (``risk_engine/leaves.py:wad_account_values``, docs/protocol.md §3).
Done on Python ints, the conversion and then the ABI encoding of those ints are a third
of the epoch build at 100,000 accounts (docs/benchmarks.md, "Compute stage"). Here both
are one compiled pass from the floats to the 32-byte words, exact:

- ``x = M * 2**E`` with a 53-bit integer ``M`` (``frexp``), so ``x * 1e18 = M * 5**18 *
  2**(E + 18)``; ``|M| * 5**18 < 2**95`` is computed in 32-bit pieces into two 64-bit limbs;
- the shift by ``E + 18`` runs over four 64-bit limbs (256 bits): left exactly, right
  with the remainder's bits kept, so the floor of a negative value and the ceiling of a
  positive one add one when a bit was shifted out;
- the result is written as big-endian two's complement, as ``abi.encode`` of an int256
  (a uint256 below 2**255 has the same bytes).

The caller checks that every value is finite and ``|x| < 5e58`` (``x * 1e18`` inside
int256); tests/keeper/test_wad_words.py checks it against the Python-int conversion.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["wad_words", "words_to_ints"]

U8Array = npt.NDArray[np.uint8]

_MASK32 = 0xFFFF_FFFF
#: 1e18 = 2**18 * 5**18; 5**18 < 2**42 split in 32-bit halves.
_FIVE_18_HI = (5**18) >> 32
_FIVE_18_LO = (5**18) & _MASK32


@numba.njit(cache=True, nogil=True)
def _fill(x: npt.NDArray[np.float64], up: bool, out: U8Array) -> None:  # pragma: no cover
    for i in range(x.shape[0]):
        v = -x[i] if up else x[i]  # ceil(x) = -floor(-x)
        mant, exp = math.frexp(v)
        m = np.int64(math.ldexp(mant, 53))
        neg = m < 0
        a = np.uint64(-m if neg else m)
        e = np.int64(exp) - 53 + 18
        # |M| * 5**18 in 32-bit pieces: every partial product is below 2**64.
        ah = a >> np.uint64(32)
        al = a & np.uint64(_MASK32)
        p0 = al * np.uint64(_FIVE_18_LO)
        p1 = ah * np.uint64(_FIVE_18_LO) + al * np.uint64(_FIVE_18_HI)  # < 2**54
        p2 = ah * np.uint64(_FIVE_18_HI)  # < 2**31
        lo = p0 + (p1 << np.uint64(32))
        carry = np.uint64(1) if lo < p0 else np.uint64(0)
        hi = p2 + (p1 >> np.uint64(32)) + carry
        limbs = np.zeros(4, np.uint64)  # little-endian 64-bit limbs of the magnitude
        inexact = False
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
                inexact = (lo | hi) != 0
            elif s >= 64:
                t = s - 64
                limbs[0] = hi >> np.uint64(t)
                dropped = np.uint64(0)
                if t > 0:
                    dropped = hi & ((np.uint64(1) << np.uint64(t)) - np.uint64(1))
                inexact = lo != 0 or dropped != 0
            else:
                if s == 0:
                    limbs[0], limbs[1] = lo, hi
                else:
                    limbs[0] = (lo >> np.uint64(s)) | (hi << np.uint64(64 - s))
                    limbs[1] = hi >> np.uint64(s)
                    inexact = (lo & ((np.uint64(1) << np.uint64(s)) - np.uint64(1))) != 0
        if neg:
            # floor(-|v|) = -(trunc(|v|) + 1 if a bit was dropped): add one, then negate.
            if inexact:
                for k in range(4):
                    limbs[k] += np.uint64(1)
                    if limbs[k] != 0:
                        break
            # two's complement: invert and add one
            c = np.uint64(1)
            for k in range(4):
                limbs[k] = ~limbs[k] + c
                c = np.uint64(1) if (c == 1 and limbs[k] == 0) else np.uint64(0)
        if up:
            # the result so far is floor(-x); ceil(x) is its negation
            c = np.uint64(1)
            for k in range(4):
                limbs[k] = ~limbs[k] + c
                c = np.uint64(1) if (c == 1 and limbs[k] == 0) else np.uint64(0)
        for k in range(4):
            w = limbs[3 - k]
            for b in range(8):
                out[i, 8 * k + b] = np.uint8((w >> np.uint64(56 - 8 * b)) & np.uint64(0xFF))


def wad_words(x: npt.NDArray[np.float64], *, up: bool) -> U8Array:
    """``floor(x * 1e18)`` (``up`` False) or ``ceil(x * 1e18)`` (``up`` True) of every
    float as a 32-byte big-endian two's complement word, shape ``(n, 32)``. Every value
    must be finite with ``|x| < 5e58`` (the caller checks)."""
    values = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty((values.shape[0], 32), dtype=np.uint8)
    _fill(values, up, out)
    return out


def words_to_ints(words: U8Array) -> list[int]:
    """The signed integers of 32-byte big-endian words (rows of ``words``)."""
    blob = words.tobytes()
    return [int.from_bytes(blob[i : i + 32], "big", signed=True) for i in range(0, len(blob), 32)]
