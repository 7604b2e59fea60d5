"""An options venue's public API in Deribit's format (JSON-RPC over HTTP GET, ``/api/v2``).

Per underlying currency (``BTC``, ``ETH``), four public calls:

- ``public/get_index_price?index_name=btc_usd`` -> ``result.index_price``: the spot;
- ``public/ticker?instrument_name=BTC-PERPETUAL`` -> ``result.mark_price`` (the perp mark),
  ``result.timestamp`` (ms);
- ``public/get_book_summary_by_currency?currency=BTC&kind=option`` -> one row per listed
  option: ``instrument_name`` (``BTC-27DEC24-60000-C``), ``mark_iv`` (percent),
  ``underlying_price`` (the forward of its expiry), ``creation_timestamp`` (ms). Each
  expiry's smile is fitted to ``vol(k) = atm + skew k + curvature k^2``, ``k = ln(K/F)``, by
  least squares over the strikes with ``|k| <= max_abs_log_moneyness``;
- ``public/get_tradingview_chart_data`` on the perpetual -> completed bars' closes (the
  return history; optional).

Deribit options expire at 08:00 UTC on the date in their name. Every answer's own time
(``usOut`` of the JSON-RPC envelope, the ticker's and the summaries' timestamps) is kept;
the observation's time is the oldest.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keeper.errors import FeedError
from keeper.feeds.base import Smile
from keeper.feeds.http import JsonHttp
from keeper.feeds.sources import MarketSource, Observation, field_of, number

__all__ = ["DeribitSource", "fit_smile", "parse_option_name"]

_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
EXPIRY_HOUR_UTC = 8


def parse_option_name(name: str) -> tuple[str, int, float, bool]:
    """``BTC-27DEC24-60000-C`` -> (``BTC``, expiry unix seconds at 08:00 UTC, strike, is
    call). Raises ValueError on another shape."""
    parts = name.split("-")
    if len(parts) != 4 or parts[3] not in ("C", "P"):
        raise ValueError(f"not an option name: {name!r}")
    day = parts[1]
    d, mon, yy = int(day[:-5]), _MONTHS[day[-5:-2]], int(day[-2:])
    expiry = calendar.timegm((2000 + yy, mon, d, EXPIRY_HOUR_UTC, 0, 0))
    strike = float(parts[2].replace("d", "."))  # Deribit writes 0.625 as 0d625
    return parts[0].split("_")[0], expiry, strike, parts[3] == "C"


def fit_smile(
    expiry: int, forward: float, strikes: Sequence[float], vols: Sequence[float]
) -> Smile:
    """Least-squares ``atm + skew k + curvature k^2`` through ``(ln(K/F), vol)`` points
    (vols annualised decimal); needs 3 distinct strikes."""
    k = np.log(np.asarray(strikes, dtype=np.float64) / forward)
    if np.unique(k).size < 3:
        raise FeedError(f"{len(set(strikes))} strikes at expiry {expiry}: need 3 for a smile")
    curvature, skew, atm = np.polyfit(k, np.asarray(vols, dtype=np.float64), 2)
    return Smile(int(expiry), float(forward), float(atm), float(skew), float(curvature))


class DeribitSource(MarketSource):
    """Deribit-format options venue at ``url`` (``https://www.deribit.com``).

    Parameters
    ----------
    name : str
        The source's name in logs and metrics.
    currencies : Mapping[str, str]
        Underlying symbol -> the venue's currency (``{"BTC": "BTC", "ETH": "ETH"}``).
    bar_seconds : int
        Bar length of the return history; 0 = do not fetch bars.
    bars : int
        How many completed bars to ask for.
    min_tenor_seconds : int
        Expiries closer than this are not fitted (a few hours of an expiring option's
        vol say nothing about the surface).
    """

    def __init__(
        self,
        name: str,
        url: str,
        currencies: Mapping[str, str],
        *,
        timeout: float = 5.0,
        bar_seconds: int = 86_400,
        bars: int = 120,
        min_tenor_seconds: int = 6 * 3600,
        max_abs_log_moneyness: float = 1.0,
    ) -> None:
        self.name = name
        self.http = JsonHttp(url, source=name, timeout=timeout)
        self.currencies = dict(currencies)
        self.bar_seconds = bar_seconds
        self.bars = bars
        self.min_tenor_seconds = min_tenor_seconds
        self.max_abs_log_moneyness = max_abs_log_moneyness

    @property
    def provides(self) -> frozenset[str]:
        return frozenset({"spot", "perp", "vol"} | ({"bars"} if self.bar_seconds else set()))

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.currencies)

    def _call(self, method: str, params: Mapping[str, str | int]) -> tuple[Any, int]:
        """``result`` of a public method and the answer's time (unix s, from ``usOut``)."""
        body = self.http.get(f"/api/v2/public/{method}", params)
        if isinstance(body, dict) and "error" in body:
            raise FeedError(f"{self.name}: {method} error {body['error']}")
        result = field_of(body, "result", source=self.name)
        us_out = number(field_of(body, "usOut", source=self.name), "usOut", source=self.name)
        return result, int(us_out // 1_000_000)

    def fetch(self, now: int) -> Observation:
        spots: dict[str, float] = {}
        perps: dict[str, float] = {}
        smiles: dict[str, tuple[Smile, ...]] = {}
        closes: dict[str, tuple[tuple[int, float], ...]] = {}
        times: list[int] = []
        for sym, cur in self.currencies.items():
            index, t = self._call("get_index_price", {"index_name": f"{cur.lower()}_usd"})
            spots[sym] = number(
                field_of(index, "index_price", source=self.name), f"{sym} index", source=self.name
            )
            times.append(t)
            perp = f"{cur}-PERPETUAL"
            ticker, _ = self._call("ticker", {"instrument_name": perp})
            perps[sym] = number(
                field_of(ticker, "mark_price", source=self.name), f"{perp} mark", source=self.name
            )
            times.append(
                int(number(ticker.get("timestamp"), "ticker timestamp", source=self.name) // 1000)
            )
            summary, _ = self._call(
                "get_book_summary_by_currency", {"currency": cur, "kind": "option"}
            )
            smile_set, t_opt = self._smiles(summary, now)
            smiles[sym] = smile_set
            times.append(t_opt)
            if self.bar_seconds:
                closes[sym] = self._bars(perp, now)
        return Observation(
            source=self.name,
            time=min(times),
            spots=spots,
            perp_marks=perps,
            smiles=smiles,
            closes=closes,
            bar_seconds=self.bar_seconds,
        )

    def _smiles(self, rows: Any, now: int) -> tuple[tuple[Smile, ...], int]:
        if not isinstance(rows, list) or not rows:
            raise FeedError(f"{self.name}: no option in the book summary")
        by_expiry: dict[int, list[tuple[float, float, float]]] = {}
        oldest = math.inf
        for row in rows:
            try:
                _, expiry, strike, _ = parse_option_name(str(row["instrument_name"]))
            except (KeyError, ValueError, TypeError):
                raise FeedError(f"{self.name}: bad option row {str(row)[:80]}") from None
            iv = number(row.get("mark_iv"), "mark_iv", source=self.name, positive=False)
            fwd = number(row.get("underlying_price"), "underlying_price", source=self.name)
            created = number(row.get("creation_timestamp"), "creation_timestamp", source=self.name)
            oldest = min(oldest, created / 1000)
            if iv > 0 and expiry > now + self.min_tenor_seconds:
                by_expiry.setdefault(expiry, []).append((strike, iv / 100.0, fwd))
        out: list[Smile] = []
        for expiry in sorted(by_expiry):
            pts = by_expiry[expiry]
            fwd = float(np.median([p[2] for p in pts]))
            pts = [p for p in pts if abs(math.log(p[0] / fwd)) <= self.max_abs_log_moneyness]
            if len({p[0] for p in pts}) < 3:
                continue  # too few strikes to fit: this expiry is left to interpolation
            out.append(fit_smile(expiry, fwd, [p[0] for p in pts], [p[1] for p in pts]))
        if not out:
            raise FeedError(f"{self.name}: no expiry with 3 strikes to fit a smile")
        return tuple(out), int(oldest)

    def _bars(self, instrument: str, now: int) -> tuple[tuple[int, float], ...]:
        bar = self.bar_seconds
        resolution = "1D" if bar == 86_400 else str(bar // 60)
        start = (now // bar - self.bars - 1) * bar
        chart, _ = self._call(
            "get_tradingview_chart_data",
            {
                "instrument_name": instrument,
                "start_timestamp": start * 1000,
                "end_timestamp": now * 1000,
                "resolution": resolution,
            },
        )
        ticks = field_of(chart, "ticks", source=self.name)
        close = field_of(chart, "close", source=self.name)
        if not isinstance(ticks, list) or not isinstance(close, list) or len(ticks) != len(close):
            raise FeedError(f"{self.name}: chart data ticks and closes do not match")
        out = []
        for t_ms, c in zip(ticks, close, strict=True):
            t = int(number(t_ms, "tick", source=self.name) // 1000)
            if t + bar <= now:  # the bar still open is not a close yet
                out.append((t, number(c, f"{instrument} close", source=self.name)))
        return tuple(out)
