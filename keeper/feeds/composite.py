"""The composite feed: several provider sources, one market, a confidence per value.

Each tick asks every source (``keeper/feeds/sources.py``) and, per value (a symbol's spot,
its perp mark, its vol smiles), keeps the sources that are:

1. **answering**: a source whose fetch raised (timeout, HTTP error, malformed JSON) is
   dropped for the tick (reason ``error``);
2. **fresh**: its observation's own time is at most ``max_age_seconds`` old (or the
   source's own limit, ``max_age``: an on-chain feed with a heartbeat) and at most
   ``max_future_seconds`` ahead of the keeper's clock (reason ``stale``). A stale source
   does not vote;
3. **agreeing**: within ``max_deviation`` (relative) of the median of the fresh sources
   (reason ``deviation``). With two fresh sources that disagree there is no majority:
   both are dropped;
4. **moving**: a source whose value has not changed for ``freeze_seconds`` while the
   median did is frozen (reason ``frozen``); it still votes in the median (its price was
   real a moment ago), but its value is not used.

The value is the median of the kept sources. Its confidence, in [0, 1], is::

    confidence = (kept / configured) * mean over kept of (1 - 0.5 * age / max_age)

``configured`` counts the sources set up to quote that value (three venues quoting a
spot: two agreeing fresh ones give 0.67, one gives 0.33). A symbol's confidence is the
lowest of its values'. It goes into the state (``MarketState.confidence``); the engine
adds IM below ``[confidence].threshold`` of the risk parameters (``risk_engine/addons.py``).
Below ``confidence_floor`` the tick is REFUSED (:class:`~keeper.errors.FeedError` naming
the symbol), logged and counted (``feed_refusals_total{reason="confidence"}``): the keeper
then posts no epoch and the last one ages toward the vault's ``maxAge``.

A symbol no source quotes a perp for has ``perp_mark = spot`` and one with no options
venue no smile (a collateral-only asset, as the simulator emits GOV). The return history
is the log return of the median close per bar over the sources kept for the symbol's
spot, on the bars common to all symbols (the longest run of consecutive ones, the newest
``max_bars``). The rate is a configured constant (no venue quotes it).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from keeper.errors import FeedError
from keeper.feeds.base import (
    DEFAULT_BOUNDS,
    FeedBounds,
    MarketFeed,
    MarketState,
    Smile,
    UnderlyingState,
)
from keeper.feeds.sources import MarketSource, Observation
from keeper.metrics import KeeperMetrics

__all__ = ["CompositeFeed", "CompositeSettings", "ValueQuote"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompositeSettings:
    """Rules of the composite feed (module docstring); seconds, relative fractions.

    ``tokens``: token symbol -> the symbol it is priced as, or None for a $1 stablecoin.
    """

    symbols: tuple[str, ...]
    tokens: Mapping[str, str | None]
    rate: float = 0.0
    max_age_seconds: int = 60
    max_future_seconds: int = 10
    max_deviation: float = 0.02
    freeze_seconds: int = 300
    confidence_floor: float = 0.25
    bar_seconds: int = 86_400
    min_bars: int = 30
    max_bars: int = 365
    bounds: FeedBounds = field(default=DEFAULT_BOUNDS, repr=False)

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("no symbol")
        for tok, sym in self.tokens.items():
            if sym is not None and sym not in self.symbols:
                raise ValueError(f"token {tok} priced as {sym}, which is not a symbol")
        if self.max_age_seconds <= 0 or not 0 < self.max_deviation < 1:
            raise ValueError("max_age_seconds must be > 0 and max_deviation in (0, 1)")
        if not 0 <= self.confidence_floor <= 1 or self.min_bars < 2:
            raise ValueError("confidence_floor must be in [0, 1] and min_bars >= 2")


@dataclass(frozen=True)
class ValueQuote:
    """One combined value: the median of ``kept`` sources and its confidence."""

    value: float
    confidence: float
    kept: tuple[str, ...]


@dataclass
class _Freeze:
    value: float
    since: int
    median_then: float


class CompositeFeed(MarketFeed):
    """A :class:`~keeper.feeds.base.MarketFeed` over ``sources`` (module docstring)."""

    def __init__(
        self,
        sources: Sequence[MarketSource],
        settings: CompositeSettings,
        *,
        metrics: KeeperMetrics | None = None,
        max_age: Mapping[str, int] | None = None,
    ) -> None:
        names = [s.name for s in sources]
        if not sources or len(set(names)) != len(names):
            raise ValueError(f"sources must be non-empty with distinct names, got {names}")
        self.sources = tuple(sources)
        self.settings = settings
        self.metrics = metrics
        #: Per-source staleness limits (seconds) overriding ``settings.max_age_seconds``:
        #: an on-chain feed that updates on a heartbeat is fresh for longer than a ticker.
        self.max_age = {n: settings.max_age_seconds for n in names} | dict(max_age or {})
        self._freeze: dict[tuple[str, str, str], _Freeze] = {}
        #: The last tick's combined values by (kind, symbol), for operators and tests.
        self.last_quotes: dict[tuple[str, str], ValueQuote] = {}

    # ---------------------------------------------------------------- bookkeeping

    def _drop(self, source: str, reason: str, why: str) -> None:
        log.warning("feed source dropped", extra={"source": source, "reason": reason, "why": why})
        if self.metrics is not None:
            self.metrics.feed_dropped.labels(source=source, reason=reason).inc()

    def _refuse(self, symbol: str, why: str, *, reason: str = "confidence") -> FeedError:
        """Log and count a refused tick; the error to raise (``field``: ``<symbol>.<reason>``).
        ``confidence``: too few agreeing sources (none is confidence 0); ``returns``: too
        few bars common to every symbol."""
        log.error("feed tick refused", extra={"symbol": symbol, "reason": reason, "why": why})
        if self.metrics is not None:
            self.metrics.feed_refusals.labels(reason=reason).inc()
        return FeedError(why, field=f"{symbol}.{reason}")

    def _freshness(self, source: str, age: int) -> float:
        """1 for data of age 0, 0.5 at the source's staleness limit."""
        limit = self.max_age[source]
        return 1.0 - 0.5 * min(age, limit) / limit

    def _configured(self, kind: str, symbol: str) -> int:
        return sum(1 for s in self.sources if kind in s.provides and symbol in s.symbols)

    # ---------------------------------------------------------------- combining

    def _combine(
        self, kind: str, symbol: str, values: Mapping[str, float], ages: Mapping[str, int], now: int
    ) -> ValueQuote | None:
        """The median of the agreeing, moving sources of one value, or None if none."""
        if not values:
            return None
        st = self.settings
        median = statistics.median(values.values())
        kept: list[str] = []
        for src, v in values.items():
            key = (src, kind, symbol)
            f = self._freeze.get(key)
            if f is None or f.value != v:
                f = self._freeze[key] = _Freeze(v, now, median)
            if abs(v - median) > st.max_deviation * median:
                self._drop(src, "deviation", f"{symbol} {kind} {v} vs median {median}")
                continue
            if now - f.since >= st.freeze_seconds and median != f.median_then:
                self._drop(src, "frozen", f"{symbol} {kind} {v} unchanged since {f.since}")
                continue
            kept.append(src)
        if not kept:
            return None
        fresh = [self._freshness(s, ages[s]) for s in kept]
        conf = len(kept) / max(self._configured(kind, symbol), len(kept)) * float(np.mean(fresh))
        return ValueQuote(float(statistics.median(values[s] for s in kept)), conf, tuple(kept))

    def _smiles(
        self, symbol: str, obs: Sequence[Observation], ages: Mapping[str, int]
    ) -> tuple[tuple[Smile, ...], float]:
        """Per expiry, the median of each smile parameter over the sources quoting it;
        the confidence as for a value (kept = sources with a smile)."""
        quoting = [o for o in obs if o.smiles.get(symbol)]
        if not quoting:
            return (), 0.0
        expiries = sorted({s.expiry for o in quoting for s in o.smiles[symbol]})
        out = []
        for e in expiries:
            at = [s for o in quoting for s in o.smiles[symbol] if s.expiry == e]
            out.append(
                Smile(
                    e,
                    statistics.median(s.forward for s in at),
                    statistics.median(s.atm_vol for s in at),
                    statistics.median(s.skew for s in at),
                    statistics.median(s.curvature for s in at),
                )
            )
        fresh = [self._freshness(o.source, ages[o.source]) for o in quoting]
        conf = len(quoting) / max(self._configured("vol", symbol), len(quoting))
        return tuple(out), conf * float(np.mean(fresh))

    def _returns(self, kept: Mapping[str, Sequence[Observation]]) -> np.ndarray:
        """Log returns of the median close per bar, shape (n_bars - 1, n_symbols)."""
        st = self.settings
        medians: list[dict[int, float]] = []
        for sym in st.symbols:
            bars: dict[int, list[float]] = {}
            for o in kept[sym]:
                if o.bar_seconds != st.bar_seconds:
                    continue
                for t, c in o.closes.get(sym, ()):
                    bars.setdefault(t, []).append(c)
            medians.append({t: statistics.median(cs) for t, cs in bars.items()})
        common = sorted(set.intersection(*(set(m) for m in medians)))
        run: list[int] = []
        for t in reversed(common):  # the newest run of consecutive bars
            if run and run[-1] - t != st.bar_seconds:
                break
            run.append(t)
        run = run[: st.max_bars + 1][::-1]
        if len(run) < st.min_bars + 1:
            raise FeedError(
                f"{len(run)} consecutive bars common to every symbol, need {st.min_bars + 1}",
                field="returns",
            )
        closes = np.array([[m[t] for m in medians] for t in run], dtype=np.float64)
        out: np.ndarray = np.diff(np.log(closes), axis=0)
        return out

    # ---------------------------------------------------------------- the tick

    def _next_state(self, now: int) -> MarketState:
        st = self.settings
        fresh: list[Observation] = []
        for src in self.sources:
            try:
                o = src.fetch(now)
            except FeedError as exc:
                self._drop(src.name, "error", str(exc))
                continue
            age = now - o.time
            if age > self.max_age[src.name] or -age > st.max_future_seconds:
                self._drop(src.name, "stale", f"data time {o.time}, keeper clock {now}")
                continue
            fresh.append(o)
        ages = {o.source: max(0, now - o.time) for o in fresh}
        quotes: dict[tuple[str, str], ValueQuote] = {}
        confidence: dict[str, float] = {}
        underlyings: list[UnderlyingState] = []
        kept_obs: dict[str, list[Observation]] = {}
        for sym in st.symbols:
            spot = self._combine(
                "spot", sym, {o.source: o.spots[sym] for o in fresh if sym in o.spots}, ages, now
            )
            if spot is None:
                raise self._refuse(sym, f"no source agrees on the {sym} spot")
            quotes[("spot", sym)] = spot
            conf = spot.confidence
            kept_obs[sym] = [o for o in fresh if o.source in spot.kept]
            perp_mark = spot.value
            if self._configured("perp", sym):
                perp = self._combine(
                    "perp",
                    sym,
                    {o.source: o.perp_marks[sym] for o in fresh if sym in o.perp_marks},
                    ages,
                    now,
                )
                if perp is None:
                    raise self._refuse(sym, f"no source agrees on the {sym} perp mark")
                quotes[("perp", sym)] = perp
                perp_mark, conf = perp.value, min(conf, perp.confidence)
            smiles: tuple[Smile, ...] = ()
            if self._configured("vol", sym):
                smiles, vol_conf = self._smiles(sym, kept_obs[sym], ages)
                conf = min(conf, vol_conf)
                if not smiles:
                    raise self._refuse(sym, f"no fresh agreeing source quotes {sym} vols")
            confidence[sym] = conf
            if self.metrics is not None:
                self.metrics.feed_confidence.labels(symbol=sym).set(conf)
            if conf < st.confidence_floor:
                raise self._refuse(
                    sym, f"{sym} confidence {conf:.3f} below the floor {st.confidence_floor}"
                )
            iv_source = ",".join(o.source for o in kept_obs[sym] if o.smiles.get(sym)) or "none"
            underlyings.append(UnderlyingState(sym, spot.value, perp_mark, smiles, iv_source))
        try:
            returns = self._returns(kept_obs)
        except FeedError as exc:
            raise self._refuse(",".join(st.symbols), str(exc), reason="returns") from None
        self.last_quotes = quotes
        spots = {u.symbol: u.spot for u in underlyings}
        return MarketState(
            timestamp=now,
            underlyings=tuple(underlyings),
            rate=st.rate,
            token_prices={t: 1.0 if s is None else spots[s] for t, s in st.tokens.items()},
            return_symbols=st.symbols,
            returns=returns,
            return_interval_seconds=st.bar_seconds,
            source_time=min(now - a for a in ages.values()) if ages else now,
            source="composite:" + ",".join(sorted(ages)),
            bounds=st.bounds,
            confidence=confidence,
        )

    def close(self) -> None:
        """Nothing held open: each request opens and closes its own connection."""
