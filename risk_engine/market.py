"""Market snapshot: everything the engine knows about prices at one instant.

The engine has no clock: ``timestamp`` is an input, and every tenor is measured from it.
Collateral tokens are priced at their underlying's ``spot`` (WETH at ETH spot); an
underlying without a perp (a governance token, a stablecoin) passes ``perp_mark = spot``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._typing import Float64Array, Int64Array
from .errors import InvalidInputError
from .instruments import InstrumentKind, InstrumentTable, validate_instruments

SECONDS_PER_YEAR = 365.0 * 86400.0


@dataclass(frozen=True)
class VolSurface:
    """Forward and implied-vol smile per (underlying, expiry) slice.

    The smile of a slice in log-moneyness ``k = ln(K / F)`` is
    ``sigma(k) = max(floor, atm_vol + skew * k + curvature * k**2)`` with ``floor`` =
    ``RiskParams.vol.floor`` (annualised vols, 0.6 = 60 %).

    Attributes (all length n_slices)
    ----------
    underlying : tuple[str, ...]
    expiry : Int64Array, unix seconds
    forward : Float64Array, USD per unit
    atm_vol, skew, curvature : Float64Array
    """

    underlying: tuple[str, ...]
    expiry: Int64Array
    forward: Float64Array
    atm_vol: Float64Array
    skew: Float64Array
    curvature: Float64Array

    @property
    def n_slices(self) -> int:
        return int(self.expiry.shape[0])

    @staticmethod
    def empty() -> VolSurface:
        """A surface with no slices (a book without options)."""
        z = np.zeros(0)
        return VolSurface((), np.zeros(0, dtype=np.int64), z, z, z, z)


@dataclass(frozen=True)
class MarketSnapshot:
    """Market data at ``timestamp``.

    Attributes
    ----------
    timestamp : int
        Unix seconds of the snapshot (the engine's "now").
    underlyings : tuple[str, ...], length n_underlyings
    spot : Float64Array, shape (n_underlyings,)
        USD per unit; also the price of the collateral token on that underlying.
    perp_mark : Float64Array, shape (n_underlyings,)
        USD per unit.
    rate : float
        Continuously compounded USD rate (discounting of option premiums).
    surface : VolSurface
    returns : Float64Array, shape (n_observations, n_underlyings)
        Daily log returns, oldest first, for the EWMA correlation and volatilities.
    confidence : Float64Array, shape (n_underlyings,), optional
        The feed's confidence in each underlying's market, in [0, 1] (1 = every source
        agrees and is fresh). Below ``RiskParams.confidence.threshold`` it adds the
        confidence add-on (addons.py). None = full confidence.
    """

    timestamp: int
    underlyings: tuple[str, ...]
    spot: Float64Array
    perp_mark: Float64Array
    rate: float
    surface: VolSurface
    returns: Float64Array
    confidence: Float64Array | None = None

    def confidence_or_full(self) -> Float64Array:
        """``confidence``, or ones when the feed gave none; shape (n_underlyings,)."""
        if self.confidence is None:
            return np.ones(len(self.underlyings))
        return np.asarray(self.confidence, dtype=np.float64)

    @property
    def n_underlyings(self) -> int:
        return len(self.underlyings)


def smile_vol(
    atm_vol: Float64Array,
    skew: Float64Array,
    curvature: Float64Array,
    log_moneyness: Float64Array,
    floor: float,
) -> Float64Array:
    """``max(floor, atm + skew*k + curvature*k^2)`` elementwise."""
    k = log_moneyness
    out: Float64Array = np.maximum(floor, atm_vol + skew * k + curvature * k * k)
    return out


def _finite_positive(arr: Float64Array, field: str, shape: tuple[int, ...]) -> None:
    if not isinstance(arr, np.ndarray) or arr.shape != shape:
        got = getattr(arr, "shape", type(arr).__name__)
        raise InvalidInputError(field, f"shape {got} != {shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InvalidInputError(f"{field}[{bad[0]}]", "NaN or infinite")
    bad = np.flatnonzero(arr <= 0)
    if bad.size:
        raise InvalidInputError(f"{field}[{bad[0]}]", f"must be > 0, got {arr.flat[bad[0]]}")


def _finite(arr: Float64Array, field: str, shape: tuple[int, ...]) -> None:
    if not isinstance(arr, np.ndarray) or arr.shape != shape:
        got = getattr(arr, "shape", type(arr).__name__)
        raise InvalidInputError(field, f"shape {got} != {shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InvalidInputError(f"{field}[{bad[0]}]", "NaN or infinite")


@dataclass(frozen=True)
class Resolved:
    """Instruments matched to market data (output of :func:`validate_market`).

    Attributes
    ----------
    underlying_index : Int64Array, shape (n_instruments,)
        Index into ``market.underlyings``.
    slice_index : Int64Array, shape (n_instruments,)
        Index into ``market.surface`` for options, -1 otherwise.
    tenor_years : Float64Array, shape (n_instruments,)
        ``(expiry - timestamp) / year`` for options, 0 otherwise.
    """

    underlying_index: Int64Array
    slice_index: Int64Array
    tenor_years: Float64Array


def validate_market(
    market: MarketSnapshot, instruments: InstrumentTable, *, min_observations: int = 2
) -> Resolved:
    """Validate a snapshot against an instrument table; resolve indices.

    Raises
    ------
    InvalidInputError
        Naming the field: ``market.spot[i]`` (NaN, inf, <= 0), ``market.surface.atm_vol[j]``,
        ``market.returns`` (shape, NaN, too short), ``instruments.underlying[i]`` (unknown),
        ``instruments.expiry[i]`` (expired option), ``market.surface`` (no smile for an
        option), and so on. Nothing is computed before every check passed.
    """
    validate_instruments(instruments)
    ts = market.timestamp
    if isinstance(ts, bool) or not isinstance(ts, int | np.integer) or ts <= 0:
        raise InvalidInputError("market.timestamp", f"must be a positive integer, got {ts!r}")
    ts = int(ts)
    names = market.underlyings
    n_u = len(names)
    if n_u == 0:
        raise InvalidInputError("market.underlyings", "empty")
    if len(set(names)) != n_u:
        raise InvalidInputError("market.underlyings", "duplicate name")
    _finite_positive(market.spot, "market.spot", (n_u,))
    _finite_positive(market.perp_mark, "market.perp_mark", (n_u,))
    rate = market.rate
    if not isinstance(rate, float | int) or not np.isfinite(rate) or abs(rate) >= 1.0:
        raise InvalidInputError("market.rate", f"must be a finite number in (-1, 1), got {rate!r}")

    surf = market.surface
    n_s = len(surf.underlying)
    if not isinstance(surf.expiry, np.ndarray) or surf.expiry.shape != (n_s,):
        raise InvalidInputError("market.surface.expiry", f"shape != ({n_s},)")
    _finite_positive(surf.forward, "market.surface.forward", (n_s,))
    _finite_positive(surf.atm_vol, "market.surface.atm_vol", (n_s,))
    _finite(surf.skew, "market.surface.skew", (n_s,))
    _finite(surf.curvature, "market.surface.curvature", (n_s,))
    index = {name: i for i, name in enumerate(names)}
    slices: dict[tuple[int, int], int] = {}
    for j, (u, e) in enumerate(zip(surf.underlying, surf.expiry.tolist(), strict=True)):
        if u not in index:
            raise InvalidInputError(f"market.surface.underlying[{j}]", f"unknown underlying {u!r}")
        if e <= ts:
            raise InvalidInputError(f"market.surface.expiry[{j}]", "slice expired")
        if (index[u], e) in slices:
            raise InvalidInputError(f"market.surface.expiry[{j}]", "duplicate slice")
        slices[(index[u], e)] = j

    if market.confidence is not None:
        _finite(market.confidence, "market.confidence", (n_u,))
        bad = np.flatnonzero((market.confidence < 0.0) | (market.confidence > 1.0))
        if bad.size:
            raise InvalidInputError(
                f"market.confidence[{bad[0]}]",
                f"must be in [0, 1], got {market.confidence[bad[0]]}",
            )

    r = market.returns
    if not isinstance(r, np.ndarray) or r.ndim != 2 or r.shape[1] != n_u:
        got = getattr(r, "shape", type(r).__name__)
        raise InvalidInputError("market.returns", f"shape {got} != (n_observations, {n_u})")
    if r.shape[0] < min_observations:
        raise InvalidInputError(
            "market.returns", f"{r.shape[0]} observations < {min_observations} required"
        )
    if not np.all(np.isfinite(r)):
        raise InvalidInputError("market.returns", "NaN or infinite return")

    n = instruments.n_instruments
    und = np.empty(n, dtype=np.int64)
    for i, u in enumerate(instruments.underlying):
        if u not in index:
            raise InvalidInputError(f"instruments.underlying[{i}]", f"unknown underlying {u!r}")
        und[i] = index[u]
    kind = instruments.kind
    is_opt = (kind == InstrumentKind.CALL) | (kind == InstrumentKind.PUT)
    expired = np.flatnonzero(is_opt & (instruments.expiry <= ts))
    if expired.size:
        raise InvalidInputError(
            f"instruments.expiry[{expired[0]}]",
            "option expired at or before market.timestamp (settle it into cash first)",
        )
    slice_idx = np.full(n, -1, dtype=np.int64)
    for i in np.flatnonzero(is_opt).tolist():
        key = (int(und[i]), int(instruments.expiry[i]))
        if key not in slices:
            raise InvalidInputError(
                "market.surface", f"no forward/smile for instrument {i} ({instruments.label(i)})"
            )
        slice_idx[i] = slices[key]
    tenor = np.where(is_opt, (instruments.expiry - ts) / SECONDS_PER_YEAR, 0.0)
    return Resolved(und, slice_idx, tenor.astype(np.float64))


__all__ = [
    "SECONDS_PER_YEAR",
    "MarketSnapshot",
    "Resolved",
    "VolSurface",
    "smile_vol",
    "validate_market",
]
