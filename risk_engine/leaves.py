"""Numbers the chain checks: INSTRUMENT leaves and the epoch's token table.

Per instrument ``i`` (docs/protocol.md §3, §5):

* ``mark``: the value per unit the equity uses.
* ``loss_long`` = ``sub(+e_i) + slope_i`` and ``loss_short`` = ``sub(-e_i) + slope_i``,
  where ``sub`` is the subadditive part of the IM (scan over the continuous range, i.e.
  with a long unit's pads, + basis + short option minimum + minimum charge, see margin.py)
  of one unit alone and ``slope_i`` the concentration slope cap. Then for every book X and
  size q, with ``req`` = IM or MM (docs/margin-method.md §6, trade-leg bound):
  ``req(X + q e_i) <= req(X) + |q| loss(side of q)`` and
  ``req(X + q e_i) >= req(X) - |q| loss(opposite side)``.
  Both losses are padded by ``LOSS_PAD_REL`` (relative) and ``LOSS_PAD_SPOT`` x spot
  (absolute) to cover float rounding in the engine.

Per collateral token (a SPOT instrument): ``price``, and ``down_shock`` / ``up_shock`` as
fractions: ``max(min(max_range, vol_multiple * daily vol * sqrt(horizon)), liquidity
floor, loss_long / price)`` (down) and the same with ``loss_short`` (up), so a deposit or a
withdrawal of value v changes the requirement by at most ``v * down`` / ``v * up``. With
validated parameters every ``down < 1`` whatever the market (the vol term is capped by the
caller, scenarios.py; the loss term is bounded by params.py).

WAD conversion: losses and shocks round up; the mark rounds down (its rounding error,
at most 1 wei per unit, is inside the loss pad).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from ._typing import BoolArray, Float64Array, Int64Array
from .errors import UnsoundBoundError
from .units import Wad, many_to_wad_up, to_wad_down, to_wad_up

LOSS_PAD_REL = 1e-9
LOSS_PAD_SPOT = 1e-12


@dataclass(frozen=True)
class InstrumentLeaves:
    """Per-instrument leaf numbers (floats, USD per unit), all shape (n_instruments,).

    ``chain`` is True for PERP/CALL/PUT (the instruments that get an INSTRUMENT leaf);
    SPOT rows (tokens) are kept for completeness and are published in the token table.
    """

    mark: Float64Array
    loss_long: Float64Array
    loss_short: Float64Array
    chain: BoolArray

    def to_wad(self) -> WadInstrumentLeaves:
        """Fixed-point leaves for the chain instruments, in table order."""
        idx = np.flatnonzero(self.chain)
        return WadInstrumentLeaves(
            instrument_index=tuple(int(i) for i in idx),
            mark=tuple(to_wad_down(float(self.mark[i]), field=f"mark[{i}]") for i in idx),
            loss_long=tuple(many_to_wad_up(self.loss_long[idx], field="loss_long")),
            loss_short=tuple(many_to_wad_up(self.loss_short[idx], field="loss_short")),
        )


@dataclass(frozen=True)
class WadInstrumentLeaves:
    """INSTRUMENT leaf values in WAD (uint256), for ``instrument_index`` rows of the table."""

    instrument_index: tuple[int, ...]
    mark: tuple[Wad, ...]
    loss_long: tuple[Wad, ...]
    loss_short: tuple[Wad, ...]


@dataclass(frozen=True)
class TokenTable:
    """The epoch's token table (floats), one row per SPOT instrument, in table order.

    Attributes
    ----------
    instrument_index : Int64Array, shape (n_tokens,)
    underlying : tuple[str, ...]
    price : Float64Array, USD per whole token
    down_shock, up_shock : Float64Array, fractions in [0, 1] (down) / [0, inf) (up)
    """

    instrument_index: Int64Array
    underlying: tuple[str, ...]
    price: Float64Array
    down_shock: Float64Array
    up_shock: Float64Array

    def to_wad(self) -> WadTokenTable:
        """Token table in WAD: price rounded down, shocks rounded up."""
        return WadTokenTable(
            instrument_index=tuple(int(i) for i in self.instrument_index),
            price=tuple(to_wad_down(float(p), field="price") for p in self.price),
            down_shock=tuple(many_to_wad_up(self.down_shock, field="down_shock")),
            up_shock=tuple(many_to_wad_up(self.up_shock, field="up_shock")),
        )


@dataclass(frozen=True)
class WadTokenTable:
    """Token table in WAD (``TokenPrice(price, downShock, upShock)`` of protocol §4)."""

    instrument_index: tuple[int, ...]
    price: tuple[Wad, ...]
    down_shock: tuple[Wad, ...]
    up_shock: tuple[Wad, ...]


def pad_loss(loss: Float64Array, spot_of_instrument: Float64Array) -> Float64Array:
    """Loss per unit plus the float-rounding pad."""
    out: Float64Array = loss * (1.0 + LOSS_PAD_REL) + LOSS_PAD_SPOT * spot_of_instrument
    return out


def token_table(
    *,
    instrument_index: Int64Array,
    underlying: tuple[str, ...],
    price: Float64Array,
    loss_long: Float64Array,
    loss_short: Float64Array,
    vol_haircut: Float64Array,
    floor: Float64Array,
) -> TokenTable:
    """Build the token table (all arrays shape (n_tokens,)).

    Raises
    ------
    UnsoundBoundError
        A required ``down_shock`` exceeds 100 % (the contract rejects it and clipping it
        would break the deposit bound): only with parameters that skipped validation
        (``params_from_dict`` bounds every term below 1) or an uncapped ``vol_haircut``.
    """
    base = np.maximum(vol_haircut, floor)
    down = np.maximum(base, loss_long / price)
    up = np.maximum(base, loss_short / price)
    bad = np.flatnonzero(down > 1.0)
    if bad.size:
        raise UnsoundBoundError(
            f"token {underlying[bad[0]]}: downShock {down[bad[0]]:.4f} > 1 "
            "(scan range, extreme cover or concentration rate too large)"
        )
    return TokenTable(instrument_index, underlying, price, down, up)


def wad_account_values(equity: float, im: float, mm: float, pad: float) -> tuple[Wad, Wad, Wad]:
    """(equity rounded down, im up, mm up) in WAD after widening each by ``pad`` USD.

    Raises
    ------
    InvalidInputError
        A value is not finite or out of the int256/uint256 range.
    """
    from .units import to_signed_wad_down

    return (
        to_signed_wad_down(equity - pad, field="equity"),
        to_wad_up(max(im + pad, 0.0), field="im"),
        to_wad_up(max(mm + pad, 0.0), field="mm"),
    )


def wad_account_values_many(
    equity: Float64Array, im: Float64Array, mm: Float64Array, pad: Float64Array
) -> tuple[list[Wad], list[Wad], list[Wad]]:
    """:func:`wad_account_values` of every account at once, equal to it element by element.

    The widening is the same float arithmetic, done by numpy (IEEE-754 gives the same
    bits); the exact conversion reads each float's integer ratio as the scalar does, with
    the per-call checks and names done once for the arrays. Any value the checks would
    refuse sends the whole call through the scalar path, which raises with its name.
    """
    widened = widened_account_values(equity, im, mm, pad)
    if widened is None:
        rows = [
            wad_account_values(float(e), float(i), float(m), float(p))
            for e, i, m, p in zip(equity, im, mm, pad, strict=True)
        ]
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    eq, req_im, req_mm = widened
    return _wad_floor_many(eq), _wad_ceil_many(req_im), _wad_ceil_many(req_mm)


def widened_account_values(
    equity: Float64Array, im: Float64Array, mm: Float64Array, pad: Float64Array
) -> tuple[Float64Array, Float64Array, Float64Array] | None:
    """The floats :func:`wad_account_values_many` converts: ``equity - pad`` (to round
    down), ``max(im + pad, 0)`` and ``max(mm + pad, 0)`` (to round up); None when a value
    is not finite or ``|x| >= 5e58`` (``x * 1e18`` would leave int256 and uint256)."""
    eq = equity - pad
    req_im = np.maximum(im + pad, 0.0)
    req_mm = np.maximum(mm + pad, 0.0)
    # |x| < 5e58 keeps x * 1e18 inside int256 and uint256 (2**255 ~ 5.79e76)
    ok = all(bool(np.all(np.isfinite(a) & (np.abs(a) < 5e58))) for a in (eq, req_im, req_mm))
    return (eq, req_im, req_mm) if ok else None


#: 1e18 = 2**18 * 5**18: a float times 2**18 stays exact, 5**18 < 2**42 is the rest.
_FIVE_18 = 5**18


def _scaled_mantissa(x: Float64Array) -> tuple[npt.NDArray[np.object_], Int64Array]:
    """``x * 1e18 == m * 2**e`` exactly, ``m`` a Python int (object array), ``e`` int64:
    ``x = mant * 2**exp`` with a 53-bit integer ``mant`` (``np.frexp``), times ``5**18``
    on Python ints, times ``2**18`` in the exponent."""
    mant, exp = np.frexp(x)
    m = np.ldexp(mant, 53).astype(np.int64).astype(object) * _FIVE_18
    return m, exp.astype(np.int64) - 53 + 18


def _shift_floor(m: npt.NDArray[np.object_], e: Int64Array) -> npt.NDArray[np.object_]:
    """``floor(m * 2**e)`` of every element (Python's ``>>`` floors, also below zero)."""
    out = np.empty(len(m), dtype=object)
    left = e >= 0
    out[left] = m[left] << e[left].astype(object)
    out[~left] = m[~left] >> (-e[~left]).astype(object)
    return out


def _wad_floor_many(x: Float64Array) -> list[Wad]:
    """``floor(x * 1e18)`` of every (finite) float, exact: :func:`to_signed_wad_down`'s
    ``(n * WAD) // d`` of its integer ratio, on whole arrays."""
    return cast("list[Wad]", _shift_floor(*_scaled_mantissa(x)).tolist())


def _wad_ceil_many(x: Float64Array) -> list[Wad]:
    """``ceil(x * 1e18)`` of every (finite) float, exact: ``-floor(-x * 1e18)``."""
    return cast("list[Wad]", (-_shift_floor(*_scaled_mantissa(-x))).tolist())


__all__ = [
    "LOSS_PAD_REL",
    "LOSS_PAD_SPOT",
    "InstrumentLeaves",
    "TokenTable",
    "WadInstrumentLeaves",
    "WadTokenTable",
    "pad_loss",
    "token_table",
    "wad_account_values",
    "wad_account_values_many",
    "widened_account_values",
]
