"""Conversion of engine floats to the chain's WAD fixed point (docs/protocol.md §1).

The direction is in the name and always goes against the account: requirements, losses
and shocks round UP, equity rounds DOWN. Conversions are exact: a float is a dyadic
rational, so ``x * 10**18`` is computed in integers from ``float.as_integer_ratio`` and
then floored or ceiled; no decimal or binary rounding is hidden in between.

One conversion has no side: :func:`to_signed_wad_nearest`, for the risk vectors and
aggregation parameters a dispute recomputes from (docs/margin-method.md §10). The chain
compares what it computes from them with a tolerance, not with a bound, so they are
rounded to the nearest WAD integer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NewType

from .errors import InvalidInputError

WAD = 10**18
UINT256_MAX = 2**256 - 1
INT256_MAX = 2**255 - 1
INT256_MIN = -(2**255)

Wad = NewType("Wad", int)
"""An integer scaled by 1e18 (USD, USD per unit, or a fraction)."""


def _ratio(x: float, field: str) -> tuple[int, int]:
    if not math.isfinite(x):
        raise InvalidInputError(field, f"not finite: {x!r}")
    return float(x).as_integer_ratio()


def _floor_wad(x: float, field: str) -> int:
    n, d = _ratio(x, field)
    return (n * WAD) // d


def _ceil_wad(x: float, field: str) -> int:
    n, d = _ratio(x, field)
    return -((-n * WAD) // d)


def to_wad_up(x: float, *, field: str = "value") -> Wad:
    """Smallest uint256 WAD integer ``>= x * 1e18`` (requirements, losses, shocks).

    Raises
    ------
    InvalidInputError
        ``x`` is not finite, negative, or does not fit uint256.
    """
    if x < 0:
        raise InvalidInputError(field, f"negative value {x!r} for an unsigned WAD")
    w = _ceil_wad(x, field)
    if w > UINT256_MAX:
        raise InvalidInputError(field, "exceeds uint256")
    return Wad(w)


def to_wad_down(x: float, *, field: str = "value") -> Wad:
    """Largest uint256 WAD integer ``<= x * 1e18`` (amounts an account receives)."""
    if x < 0:
        raise InvalidInputError(field, f"negative value {x!r} for an unsigned WAD")
    w = _floor_wad(x, field)
    if w > UINT256_MAX:
        raise InvalidInputError(field, "exceeds uint256")
    return Wad(w)


def to_signed_wad_up(x: float, *, field: str = "value") -> Wad:
    """Smallest int256 WAD integer ``>= x * 1e18`` (upper bounds)."""
    w = _ceil_wad(x, field)
    if not INT256_MIN <= w <= INT256_MAX:
        raise InvalidInputError(field, "exceeds int256")
    return Wad(w)


def to_signed_wad_down(x: float, *, field: str = "value") -> Wad:
    """Largest int256 WAD integer ``<= x * 1e18`` (equity, lower bounds)."""
    w = _floor_wad(x, field)
    if not INT256_MIN <= w <= INT256_MAX:
        raise InvalidInputError(field, "exceeds int256")
    return Wad(w)


def to_signed_wad_nearest(x: float, *, field: str = "value") -> Wad:
    """The int256 WAD integer nearest to ``x * 1e18``, a tie rounded up (risk vectors,
    aggregation parameters: compared with a tolerance, not a bound)."""
    n, d = _ratio(x, field)
    q, r = divmod(n * WAD, d)
    w = q + (1 if 2 * r >= d else 0)
    if not INT256_MIN <= w <= INT256_MAX:
        raise InvalidInputError(field, "exceeds int256")
    return Wad(w)


def many_to_wad_up(xs: Iterable[float], *, field: str = "value") -> list[Wad]:
    """:func:`to_wad_up` of each element (``field[i]`` names a bad element)."""
    return [to_wad_up(float(x), field=f"{field}[{i}]") for i, x in enumerate(xs)]


def many_to_signed_wad_down(xs: Iterable[float], *, field: str = "value") -> list[Wad]:
    """:func:`to_signed_wad_down` of each element."""
    return [to_signed_wad_down(float(x), field=f"{field}[{i}]") for i, x in enumerate(xs)]


def from_wad(w: int) -> float:
    """WAD integer to float (for display and tests; not exact beyond 2**53)."""
    return w / WAD


__all__ = [
    "INT256_MAX",
    "INT256_MIN",
    "UINT256_MAX",
    "WAD",
    "Wad",
    "from_wad",
    "many_to_signed_wad_down",
    "many_to_wad_up",
    "to_signed_wad_down",
    "to_signed_wad_nearest",
    "to_signed_wad_up",
    "to_wad_down",
    "to_wad_up",
]
