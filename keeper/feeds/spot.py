"""Spot exchanges' public tickers and klines: Binance's format and Coinbase Exchange's.

Each gives, per symbol, the last trade price (the spot) with the exchange's own time,
and completed bars' closes for the return history.

- :class:`BinanceSpotSource` (``https://api.binance.com``):
  ``/api/v3/ticker/24hr?symbol=BTCUSDT`` -> ``lastPrice`` (string), ``closeTime`` (ms);
  ``/api/v3/klines?symbol=BTCUSDT&interval=1d&limit=N`` -> rows ``[openTime ms, open,
  high, low, close, volume, closeTime ms, ...]``, oldest first, the last one still open.
  A pair quoted in a stablecoin (``BTCUSDT``) is taken as USD: pick a USD or USDC pair
  where the venue lists one.
- :class:`CoinbaseSpotSource` (``https://api.exchange.coinbase.com``):
  ``/products/BTC-USD/ticker`` -> ``price`` (string), ``time`` (ISO 8601 UTC);
  ``/products/BTC-USD/candles?granularity=86400&start=..&end=..`` -> rows ``[time s, low,
  high, open, close, volume]``, NEWEST first (at most 300).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from keeper.errors import FeedError
from keeper.feeds.http import JsonHttp
from keeper.feeds.sources import MarketSource, Observation, field_of, number

__all__ = ["BinanceSpotSource", "CoinbaseSpotSource", "parse_iso_time"]

_BINANCE_INTERVALS = {60: "1m", 300: "5m", 900: "15m", 3600: "1h", 14_400: "4h", 86_400: "1d"}
_COINBASE_GRANULARITIES = {60, 300, 900, 3600, 21_600, 86_400}
_COINBASE_MAX_CANDLES = 300


def parse_iso_time(text: Any, *, source: str) -> int:
    """``2024-12-04T10:00:00.123456Z`` -> unix seconds (int, rounded down)."""
    try:
        dt = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise FeedError(f"{source}: bad time {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


class _SpotSource(MarketSource):
    def __init__(
        self,
        name: str,
        url: str,
        pairs: Mapping[str, str],
        *,
        timeout: float = 5.0,
        bar_seconds: int = 86_400,
        bars: int = 120,
    ) -> None:
        self.name = name
        self.http = JsonHttp(url, source=name, timeout=timeout)
        self.pairs = dict(pairs)
        self.bar_seconds = bar_seconds
        self.bars = bars

    @property
    def provides(self) -> frozenset[str]:
        return frozenset({"spot"} | ({"bars"} if self.bar_seconds else set()))

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.pairs)

    def _ticker(self, pair: str) -> tuple[float, int]:
        raise NotImplementedError

    def _closes(self, pair: str, now: int) -> tuple[tuple[int, float], ...]:
        raise NotImplementedError

    def fetch(self, now: int) -> Observation:
        spots: dict[str, float] = {}
        closes: dict[str, tuple[tuple[int, float], ...]] = {}
        times: list[int] = []
        for sym, pair in self.pairs.items():
            spots[sym], t = self._ticker(pair)
            times.append(t)
            if self.bar_seconds:
                closes[sym] = self._closes(pair, now)
        return Observation(
            source=self.name,
            time=min(times),
            spots=spots,
            closes=closes,
            bar_seconds=self.bar_seconds,
        )


class BinanceSpotSource(_SpotSource):
    """Binance-format spot exchange; ``pairs``: symbol -> pair (``{"BTC": "BTCUSDT"}``)."""

    def __init__(
        self,
        name: str,
        url: str,
        pairs: Mapping[str, str],
        *,
        timeout: float = 5.0,
        bar_seconds: int = 86_400,
        bars: int = 120,
    ) -> None:
        if bar_seconds and bar_seconds not in _BINANCE_INTERVALS:
            raise ValueError(f"bar_seconds {bar_seconds} not in {sorted(_BINANCE_INTERVALS)}")
        super().__init__(name, url, pairs, timeout=timeout, bar_seconds=bar_seconds, bars=bars)

    def _ticker(self, pair: str) -> tuple[float, int]:
        body = self.http.get("/api/v3/ticker/24hr", {"symbol": pair})
        price = number(field_of(body, "lastPrice", source=self.name), f"{pair}", source=self.name)
        t = number(field_of(body, "closeTime", source=self.name), "closeTime", source=self.name)
        return price, int(t // 1000)

    def _closes(self, pair: str, now: int) -> tuple[tuple[int, float], ...]:
        rows = self.http.get(
            "/api/v3/klines",
            {
                "symbol": pair,
                "interval": _BINANCE_INTERVALS[self.bar_seconds],
                "limit": min(self.bars + 1, 1000),
            },
        )
        if not isinstance(rows, list):
            raise FeedError(f"{self.name}: klines of {pair} is not a list")
        out = []
        for row in rows:
            start = int(number(field_of(row, 0, source=self.name), "openTime", source=self.name))
            close = number(field_of(row, 4, source=self.name), f"{pair} close", source=self.name)
            if start // 1000 + self.bar_seconds <= now:  # the open bar is not a close yet
                out.append((start // 1000, close))
        return tuple(out)


class CoinbaseSpotSource(_SpotSource):
    """Coinbase-Exchange-format spot exchange; ``pairs``: symbol -> product (``BTC-USD``)."""

    def __init__(
        self,
        name: str,
        url: str,
        pairs: Mapping[str, str],
        *,
        timeout: float = 5.0,
        bar_seconds: int = 86_400,
        bars: int = 120,
    ) -> None:
        if bar_seconds and bar_seconds not in _COINBASE_GRANULARITIES:
            raise ValueError(f"bar_seconds {bar_seconds} not in {sorted(_COINBASE_GRANULARITIES)}")
        super().__init__(
            name,
            url,
            pairs,
            timeout=timeout,
            bar_seconds=bar_seconds,
            bars=min(bars, _COINBASE_MAX_CANDLES - 1),
        )

    def _ticker(self, pair: str) -> tuple[float, int]:
        body = self.http.get(f"/products/{pair}/ticker")
        price = number(field_of(body, "price", source=self.name), pair, source=self.name)
        return price, parse_iso_time(field_of(body, "time", source=self.name), source=self.name)

    def _closes(self, pair: str, now: int) -> tuple[tuple[int, float], ...]:
        bar = self.bar_seconds
        end = (now // bar) * bar
        start = end - (self.bars + 1) * bar

        def iso(t: int) -> str:
            return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        rows = self.http.get(
            f"/products/{pair}/candles",
            {"granularity": bar, "start": iso(start), "end": iso(end)},
        )
        if not isinstance(rows, list):
            raise FeedError(f"{self.name}: candles of {pair} is not a list")
        out = []
        for row in rows:
            t = int(number(field_of(row, 0, source=self.name), "time", source=self.name))
            close = number(field_of(row, 4, source=self.name), f"{pair} close", source=self.name)
            if t + bar <= now:
                out.append((t, close))
        return tuple(sorted(out))  # Coinbase answers newest first
