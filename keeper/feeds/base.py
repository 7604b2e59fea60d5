"""The market feed interface and the validated market-state record it produces.

Every feed (the seeded simulator, the CSV replay, a real provider) returns a
:class:`MarketState`. Its constructor validates every number and raises
:class:`~keeper.errors.FeedError` naming the field (``BTC.spot``,
``ETH.smiles[1].atm_vol``, ``tokens.GOV``, ``returns``) on what cannot be priced: NaN,
infinity, a non-positive price or vol, a price above ``FeedBounds.max_price``, a rate
outside its bounds, a malformed shape. So such a tick never reaches the engine: the keeper
refuses the epoch, logs the reason and keeps the last good state.

A large but valid value (a crash-day return, a vol spike, a wide basis, a steep smile) is
NOT refused: it is stored as the feed gave it, and ``keeper/engine_input.py`` caps it at
the :class:`FeedBounds` limit when it builds the engine's input, listing it as a
:class:`~risk_engine.CappedValue` (docs/operations.md, "Refuse or cap").

Units (the engine's, see ``risk_engine``):

- prices (spot, perp mark, forwards, token prices): USD per whole unit, float;
- implied vols: annualised, decimal (0.55 = 55 %);
- smile: ``vol(k) = atm_vol + skew * k + curvature * k**2`` with ``k = ln(strike / forward)``,
  floored at ``FeedBounds.min_vol``;
- rate: continuously compounded, annual, decimal;
- time: unix seconds (int); year fractions use :data:`SECONDS_PER_YEAR` (365 days);
- returns: log returns of close prices over ``return_interval_seconds``, oldest first,
  one column per symbol of ``return_symbols``.
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from keeper.errors import FeedError

if TYPE_CHECKING:
    from risk_engine import MarketSnapshot

__all__ = [
    "SECONDS_PER_YEAR",
    "FeedBounds",
    "Float64Array",
    "MarketFeed",
    "MarketState",
    "Smile",
    "UnderlyingState",
]

Float64Array = npt.NDArray[np.float64]
SECONDS_PER_YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class FeedBounds:
    """Limits of the market input.

    ``max_price`` and the rate bounds refuse (a price above 1e9 USD per unit is no real
    asset's; the rate is a quoted constant, not a market move). The others cap: a value
    beyond them is still a market (a crash, a vol spike) and the engine input uses the
    limit instead, reported as capped (``keeper/engine_input.py``). Defaults are wide on
    purpose; a deployment may tighten them.
    """

    max_price: float = 1e9  # USD per unit (refuse above)
    min_vol: float = 0.01  # 1 % annualised
    max_vol: float = 5.0  # 500 % annualised
    max_abs_skew: float = 5.0
    max_abs_curvature: float = 50.0
    max_abs_basis: float = 0.5  # perp mark / spot - 1, and forward / spot - 1
    min_rate: float = -0.5
    max_rate: float = 1.0
    max_abs_return: float = 3.0  # log return per interval (e^3 = 20x)


DEFAULT_BOUNDS = FeedBounds()


def _finite(value: float, name: str) -> float:
    if not isinstance(value, int | float | np.floating | np.integer) or isinstance(value, bool):
        raise FeedError(f"expected a number, got {value!r}", field=name)
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise FeedError(f"not finite ({v})", field=name)
    return v


def _positive_price(value: float, name: str, bounds: FeedBounds) -> float:
    v = _finite(value, name)
    if v <= 0.0:
        raise FeedError(f"price must be > 0, got {v}", field=name)
    if v > bounds.max_price:
        raise FeedError(f"price {v} above the bound {bounds.max_price}", field=name)
    return v


def _in_range(value: float, name: str, lo: float, hi: float) -> float:
    v = _finite(value, name)
    if not lo <= v <= hi:
        raise FeedError(f"{v} outside [{lo}, {hi}]", field=name)
    return v


@dataclass(frozen=True)
class Smile:
    """Implied-vol smile of one expiry.

    ``expiry`` unix seconds; ``forward`` USD; ``atm_vol`` annualised decimal; ``skew`` and
    ``curvature`` per unit of log-moneyness ``k = ln(K/F)`` (see module docstring).
    """

    expiry: int
    forward: float
    atm_vol: float
    skew: float
    curvature: float

    def vol(self, strike: float, *, min_vol: float = DEFAULT_BOUNDS.min_vol) -> float:
        """Implied vol (annualised decimal) at ``strike`` (USD), floored at ``min_vol``."""
        k = math.log(strike / self.forward)
        return max(min_vol, self.atm_vol + self.skew * k + self.curvature * k * k)

    def vols(
        self, strikes: Float64Array, *, min_vol: float = DEFAULT_BOUNDS.min_vol
    ) -> Float64Array:
        """Vectorised :meth:`vol`; ``strikes`` shape (n,), returns shape (n,)."""
        k = np.log(np.asarray(strikes, dtype=np.float64) / self.forward)
        return np.maximum(min_vol, self.atm_vol + self.skew * k + self.curvature * k * k)


@dataclass(frozen=True)
class UnderlyingState:
    """One underlying: spot and perp mark (USD), smiles sorted by expiry, and where its
    implied vol came from (``iv_source``: ``"sim"``, ``"dvol"``, ``"realized"``...)."""

    symbol: str
    spot: float
    perp_mark: float
    smiles: tuple[Smile, ...]
    iv_source: str = "sim"

    @property
    def perp_basis(self) -> float:
        """``perp_mark / spot - 1`` (decimal)."""
        return self.perp_mark / self.spot - 1.0

    def smile_at(self, expiry: int, now: int) -> Smile:
        """Smile at any ``expiry`` > ``now`` (unix seconds).

        An expiry listed in ``smiles`` is returned as is. Between two listed expiries the
        ATM total variance ``atm_vol**2 * T`` and the log-forward are interpolated linearly
        in ``T`` and skew / curvature linearly; outside the listed range the nearest
        smile's vol parameters are kept (flat extrapolation) and the forward carries at
        the nearest smile's annualised log-basis.
        """
        if expiry <= now:
            raise FeedError(f"expiry {expiry} is not after {now}", field=f"{self.symbol}.expiry")
        if not self.smiles:
            raise FeedError("no smile quoted", field=f"{self.symbol}.smiles")
        t = (expiry - now) / SECONDS_PER_YEAR
        times = [(s.expiry - now) / SECONDS_PER_YEAR for s in self.smiles]
        for s in self.smiles:
            if s.expiry == expiry:
                return s
        if t <= times[0] or t >= times[-1]:
            s = self.smiles[0] if t <= times[0] else self.smiles[-1]
            ts = times[0] if t <= times[0] else times[-1]
            carry = math.log(s.forward / self.spot) / ts if ts > 0 else 0.0
            return Smile(expiry, self.spot * math.exp(carry * t), s.atm_vol, s.skew, s.curvature)
        i = next(j for j in range(1, len(times)) if times[j] > t)
        a, b, ta, tb = self.smiles[i - 1], self.smiles[i], times[i - 1], times[i]
        w = (t - ta) / (tb - ta)
        var = (1 - w) * a.atm_vol**2 * ta + w * b.atm_vol**2 * tb
        log_fwd = (1 - w) * math.log(a.forward) + w * math.log(b.forward)
        return Smile(
            expiry,
            math.exp(log_fwd),
            math.sqrt(var / t),
            (1 - w) * a.skew + w * b.skew,
            (1 - w) * a.curvature + w * b.curvature,
        )


@dataclass(frozen=True)
class MarketState:
    """One validated market observation. Construction validates (see module docstring).

    Parameters
    ----------
    timestamp : int
        Unix seconds of the caller's clock at which the state is valid (the epoch's
        ``timestamp``).
    underlyings : tuple of UnderlyingState
        Derivative underlyings (BTC, ETH, SOL), each with spot, perp mark and smiles.
    rate : float
        Risk-free rate, continuously compounded, annual decimal.
    token_prices : Mapping[str, float]
        USD price per whole token by token symbol (``WBTC``, ``WETH``, ``GOV``...).
    return_symbols : tuple of str
        Column names of ``returns`` (underlyings and token-only assets such as ``GOV``).
    returns : Float64Array, shape (n_obs, n_symbols)
        Log returns over ``return_interval_seconds``, oldest first (read-only copy).
    return_interval_seconds : int
        Length of one return observation.
    source_time : int
        The data's own time (the replayed bar's open time; equal to ``timestamp`` for
        the simulator and a live provider).
    source : str
        Which feed produced the state (``"sim"``, ``"replay"``, provider name).
    confidence : Mapping[str, float]
        The composite feed's confidence in each symbol's market, in [0, 1]
        (``keeper/feeds/composite.py``); a symbol not listed has full confidence. The
        engine adds IM below its threshold (``risk_engine/addons.py``). Empty for the
        simulator and the replay.
    """

    timestamp: int
    underlyings: tuple[UnderlyingState, ...]
    rate: float
    token_prices: Mapping[str, float]
    return_symbols: tuple[str, ...]
    returns: Float64Array = field(repr=False)
    return_interval_seconds: int
    source_time: int = 0
    source: str = "sim"
    bounds: FeedBounds = field(default=DEFAULT_BOUNDS, repr=False, compare=False)
    confidence: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)
        returns = np.array(self.returns, dtype=np.float64, copy=True)
        returns.setflags(write=False)
        object.__setattr__(self, "returns", returns)
        object.__setattr__(self, "token_prices", MappingProxyType(dict(self.token_prices)))
        object.__setattr__(self, "confidence", MappingProxyType(dict(self.confidence)))
        if self.source_time == 0:
            object.__setattr__(self, "source_time", self.timestamp)

    # ---------------------------------------------------------------- accessors

    @property
    def symbols(self) -> tuple[str, ...]:
        """Underlying symbols in order."""
        return tuple(u.symbol for u in self.underlyings)

    def underlying(self, symbol: str) -> UnderlyingState:
        for u in self.underlyings:
            if u.symbol == symbol:
                return u
        raise FeedError(f"unknown underlying (have {', '.join(self.symbols)})", field=symbol)

    def spots(self) -> Float64Array:
        """Spot per underlying, shape (n_underlyings,), USD."""
        return np.array([u.spot for u in self.underlyings], dtype=np.float64)

    def perp_marks(self) -> Float64Array:
        """Perp mark per underlying, shape (n_underlyings,), USD."""
        return np.array([u.perp_mark for u in self.underlyings], dtype=np.float64)

    def token_price(self, symbol: str) -> float:
        try:
            return self.token_prices[symbol]
        except KeyError:
            raise FeedError("no price for token", field=f"tokens.{symbol}") from None

    def returns_of(self, symbol: str) -> Float64Array:
        """Return history column of ``symbol``, shape (n_obs,)."""
        try:
            return self.returns[:, self.return_symbols.index(symbol)]
        except ValueError:
            raise FeedError("no return history", field=f"returns.{symbol}") from None

    # ---------------------------------------------------------------- engine

    def daily_returns(self, symbols: Sequence[str] | None = None) -> Float64Array:
        """Log returns per UTC-day-length interval, shape (n_days, len(symbols)).

        The engine's correlation and haircuts expect daily returns. Returns over a shorter
        interval that divides a day (4 h, 1 h) are summed in consecutive groups, newest
        group last, an incomplete oldest group dropped; a longer or non-dividing interval
        raises :class:`FeedError`.
        """
        cols = [self.return_symbols.index(s) for s in (symbols or self.return_symbols)]
        r = self.returns[:, cols]
        day = 86_400
        if self.return_interval_seconds == day:
            return np.array(r, dtype=np.float64)
        if day % self.return_interval_seconds:
            raise FeedError(
                f"cannot aggregate {self.return_interval_seconds} s returns into days",
                field="return_interval_seconds",
            )
        k = day // self.return_interval_seconds
        n = (r.shape[0] // k) * k
        if n < 2 * k:
            raise FeedError("fewer than 2 days of returns", field="returns")
        out: Float64Array = r[r.shape[0] - n :].reshape(n // k, k, -1).sum(axis=1)
        return out

    def to_snapshot(
        self,
        symbols: Sequence[str] | None = None,
        *,
        expiries: Mapping[str, Sequence[int]] | None = None,
    ) -> MarketSnapshot:
        """The risk engine's :class:`risk_engine.MarketSnapshot` of this state.

        ``symbols``: the engine's underlyings in order (default: all of this state's,
        which for the simulator includes collateral-only GOV with ``perp_mark = spot``).
        ``expiries``: per underlying, the exact option expiries the instruments need; each
        slice comes from :meth:`UnderlyingState.smile_at` (interpolated when the feed did
        not quote that expiry). Without it, the quoted smiles are passed as they are.
        Units are the same on both sides (USD, annual decimal vols, unix seconds).
        """
        from risk_engine import MarketSnapshot, VolSurface

        names = tuple(symbols or self.symbols)
        unds = [self.underlying(s) for s in names]
        slices: list[tuple[str, Smile]] = []
        for u in unds:
            if expiries is not None:
                wanted = sorted(set(int(e) for e in expiries.get(u.symbol, ())))
                slices += [(u.symbol, u.smile_at(e, self.timestamp)) for e in wanted]
            else:
                slices += [(u.symbol, sm) for sm in u.smiles]
        surface = VolSurface(
            underlying=tuple(s for s, _ in slices),
            expiry=np.array([sm.expiry for _, sm in slices], dtype=np.int64),
            forward=np.array([sm.forward for _, sm in slices], dtype=np.float64),
            atm_vol=np.array([sm.atm_vol for _, sm in slices], dtype=np.float64),
            skew=np.array([sm.skew for _, sm in slices], dtype=np.float64),
            curvature=np.array([sm.curvature for _, sm in slices], dtype=np.float64),
        )
        return MarketSnapshot(
            timestamp=int(self.timestamp),
            underlyings=names,
            spot=np.array([u.spot for u in unds], dtype=np.float64),
            perp_mark=np.array([u.perp_mark for u in unds], dtype=np.float64),
            rate=float(self.rate),
            surface=surface,
            returns=self.daily_returns(names),
        )

    # ---------------------------------------------------------------- JSON

    def to_json(self) -> str:
        """Exact JSON (floats round-trip through ``repr``), for the store and ``verify``."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    def to_dict(self) -> dict[str, Any]:
        out = self._dict()
        if self.confidence:  # absent when full: older stored snapshots keep their bytes
            out["confidence"] = dict(sorted(self.confidence.items()))
        return out

    def _dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "source_time": self.source_time,
            "source": self.source,
            "rate": self.rate,
            "underlyings": [
                {
                    "symbol": u.symbol,
                    "spot": u.spot,
                    "perp_mark": u.perp_mark,
                    "iv_source": u.iv_source,
                    "smiles": [
                        {
                            "expiry": s.expiry,
                            "forward": s.forward,
                            "atm_vol": s.atm_vol,
                            "skew": s.skew,
                            "curvature": s.curvature,
                        }
                        for s in u.smiles
                    ],
                }
                for u in self.underlyings
            ],
            "token_prices": dict(sorted(self.token_prices.items())),
            "return_symbols": list(self.return_symbols),
            "return_interval_seconds": self.return_interval_seconds,
            "returns": self.returns.tolist(),
        }

    @classmethod
    def from_json(cls, text: str | bytes, *, bounds: FeedBounds = DEFAULT_BOUNDS) -> MarketState:
        """Inverse of :meth:`to_json` (validates again)."""
        try:
            d = json.loads(text)
            n_sym = len(d["return_symbols"])
            returns = np.array(d["returns"], dtype=np.float64).reshape(-1, n_sym)
            return cls(
                timestamp=int(d["timestamp"]),
                underlyings=tuple(
                    UnderlyingState(
                        symbol=u["symbol"],
                        spot=u["spot"],
                        perp_mark=u["perp_mark"],
                        iv_source=u["iv_source"],
                        smiles=tuple(
                            Smile(
                                int(s["expiry"]),
                                s["forward"],
                                s["atm_vol"],
                                s["skew"],
                                s["curvature"],
                            )
                            for s in u["smiles"]
                        ),
                    )
                    for u in d["underlyings"]
                ),
                rate=d["rate"],
                token_prices=d["token_prices"],
                return_symbols=tuple(d["return_symbols"]),
                returns=returns,
                return_interval_seconds=int(d["return_interval_seconds"]),
                source_time=int(d["source_time"]),
                source=d["source"],
                bounds=bounds,
                confidence=d.get("confidence", {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FeedError(f"malformed market-state JSON: {exc}") from exc


def _validate(state: MarketState) -> None:
    """Raise FeedError naming the first bad field of ``state``."""
    b = state.bounds
    if isinstance(state.timestamp, bool) or not isinstance(state.timestamp, int | np.integer):
        raise FeedError(f"expected int unix seconds, got {state.timestamp!r}", field="timestamp")
    if not 0 < state.timestamp < 2**63:
        raise FeedError(f"out of range: {state.timestamp}", field="timestamp")
    _in_range(state.rate, "rate", b.min_rate, b.max_rate)
    if not state.underlyings:
        raise FeedError("no underlying", field="underlyings")
    seen: set[str] = set()
    for u in state.underlyings:
        p = u.symbol
        if not p or p in seen:
            raise FeedError("empty or duplicate symbol", field=f"underlyings.{p}")
        seen.add(p)
        _positive_price(u.spot, f"{p}.spot", b)
        _positive_price(u.perp_mark, f"{p}.perp_mark", b)  # a wide basis is capped
        last_expiry = state.timestamp
        for i, s in enumerate(u.smiles):
            q = f"{p}.smiles[{i}]"
            if not isinstance(s.expiry, int | np.integer) or s.expiry <= last_expiry:
                raise FeedError(
                    f"expiry {s.expiry} must be after the timestamp and strictly increasing",
                    field=f"{q}.expiry",
                )
            last_expiry = int(s.expiry)
            _positive_price(s.forward, f"{q}.forward", b)  # a wide basis is capped
            # vol, skew and curvature beyond the bounds are capped by the engine input
            atm = _finite(s.atm_vol, f"{q}.atm_vol")
            if atm <= 0:
                raise FeedError(f"vol must be > 0, got {atm}", field=f"{q}.atm_vol")
            _finite(s.skew, f"{q}.skew")
            _finite(s.curvature, f"{q}.curvature")
    if not state.token_prices:
        raise FeedError("no token price", field="tokens")
    for sym, price in state.token_prices.items():
        _positive_price(price, f"tokens.{sym}", b)
    if state.return_interval_seconds <= 0:
        raise FeedError("must be > 0", field="return_interval_seconds")
    r = np.asarray(state.returns)
    if r.dtype.kind not in "fiu":
        raise FeedError(f"expected a numeric array, got dtype {r.dtype}", field="returns")
    if r.ndim != 2 or r.shape[1] != len(state.return_symbols):
        raise FeedError(
            f"shape {r.shape} does not match {len(state.return_symbols)} return symbols",
            field="returns",
        )
    if r.shape[0] < 2:
        raise FeedError("need at least 2 observations", field="returns")
    bad = ~np.isfinite(r)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise FeedError(f"not finite at row {row}", field=f"returns.{state.return_symbols[col]}")
    for sym, c in state.confidence.items():
        v = _finite(c, f"confidence.{sym}")
        if not 0.0 <= v <= 1.0:
            raise FeedError(f"{v} outside [0, 1]", field=f"confidence.{sym}")
    # A return beyond max_abs_return is a real crash (or a squeeze): it stays in the
    # history as it is and the engine input caps it; refusing it would stop every epoch
    # for as long as it stays in the return window.


class MarketFeed(abc.ABC):
    """A source of :class:`MarketState`, one per keeper tick.

    Contract for an implementation (simulator, replay, a real provider):

    - :meth:`tick` is called by the epoch job with the keeper's clock ``now`` (unix
      seconds, non-decreasing). It returns the market valid at ``now`` whose ``timestamp``
      is ``now``. A real provider fetches its quotes here (spot and perp mark per
      underlying from the exchange index, the vol surface fitted to the listed options as
      ``Smile`` per expiry, the rate, the token prices, and the rolling return history
      kept by the adapter) and must not return quotes older than its own staleness
      limit: it raises :class:`~keeper.errors.FeedError` instead.
    - It raises :class:`~keeper.errors.FeedError` (and never another exception type)
      when the data is unavailable, stale, exhausted or invalid; ``MarketState``'s own
      validation raises it for NaN, non-positive or out-of-bound prices. The keeper then skips
      the epoch and keeps the last good one.
    - A failed tick leaves the feed usable: the next tick may succeed.
    - :meth:`latest` is the last state successfully returned (``None`` before the first).
    - :meth:`close` releases connections or files; idempotent.
    """

    _latest: MarketState | None = None

    @abc.abstractmethod
    def _next_state(self, now: int) -> MarketState:
        """Produce the state at ``now``; see the class docstring."""

    def tick(self, now: int) -> MarketState:
        """Advance the feed to ``now`` (unix seconds) and return the validated state."""
        if isinstance(now, float) and not math.isfinite(now):
            raise FeedError("clock value is not finite", field="now")
        now = int(now)
        if self._latest is not None and now < self._latest.timestamp:
            raise FeedError(f"clock went backwards: {now} < {self._latest.timestamp}", field="now")
        state = self._next_state(now)
        self._latest = state
        return state

    def latest(self) -> MarketState | None:
        return self._latest

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release resources (idempotent)."""


def token_prices_from(
    spots: Mapping[str, float], tokens: Sequence[tuple[str, str | None]]
) -> dict[str, float]:
    """Token symbol -> USD price, from ``(token, underlying or None for a $1 stable)`` pairs."""
    return {tok: (1.0 if und is None else float(spots[und])) for tok, und in tokens}
