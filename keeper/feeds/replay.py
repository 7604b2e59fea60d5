"""Replay of historical market data in the ../shared/data layout, one bar per tick.

Layout of the data directory (any directory in this layout works)::

    daily/<SYM>.csv              date,open,high,low,close,volume        (date = YYYY-MM-DD)
    intraday/<SYM>_<freq>.csv    time,open,high,low,close,volume        (ISO 8601, UTC)
    implied_vol/<SYM>_DVOL.csv   date,dvol                              (percentage points)

The first column may also be ``timestamp`` (unix seconds or milliseconds). Times are UTC
bar open times.

What each tick returns, and from what:

- the timeline is the first symbol's bars; the other symbols take their last close at or
  before that bar (an as-of join, so a 1 h SOL file replays under a 4 h BTC timeline);
- spot = the bar's close (USDT quotes taken as USD); the perp mark = spot (the data has no
  perp, so the basis is 0); forwards carry at ``rate``;
- ATM implied vol: the DVOL close of that day when a ``<SYM>_DVOL.csv`` has one no older
  than ``dvol_max_age_days`` (``iv_source = "dvol"``), else the annualised realised vol of
  the last ``rv_window`` bars times ``iv_premium`` (``iv_source = "realized"``); the
  smile's skew and curvature are the configured constants, flat in expiry;
- the return history is the last ``history_length`` log close-to-close returns;
- ``timestamp`` is the caller's clock (the epoch's time), ``source_time`` the bar's time.

When the data runs out, :meth:`ReplayFeed.tick` raises :class:`FeedError` (or wraps to the
start with ``loop=True``). A bar that fails validation is skipped: the next tick moves on.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from keeper.errors import FeedError
from keeper.feeds.base import (
    DEFAULT_BOUNDS,
    SECONDS_PER_YEAR,
    FeedBounds,
    Float64Array,
    MarketFeed,
    MarketState,
    Smile,
    UnderlyingState,
)
from keeper.feeds.sim import default_expiries

__all__ = ["ReplayConfig", "ReplayFeed", "load_bars", "load_dvol", "parse_time"]

_DAY = 86_400


@dataclass(frozen=True)
class ReplayConfig:
    """Replay parameters. ``start`` is a date (``"2022-06-01"``), ISO time or unix seconds;
    ``None`` starts at the first bar with a full history."""

    symbols: tuple[str, ...] = ("BTC", "ETH", "SOL")
    frequency: Literal["daily", "intraday"] = "daily"
    start: str | int | None = None
    history_length: int = 90
    rv_window: int = 30
    iv_premium: float = 1.0
    dvol_max_age_days: int = 3
    rate: float = 0.04
    skew: float = -0.15
    curvature: float = 0.30
    tokens: tuple[tuple[str, str | None], ...] = (
        ("WBTC", "BTC"),
        ("WETH", "ETH"),
        ("WSOL", "SOL"),
    )
    loop: bool = False


def parse_time(value: str) -> int:
    """Unix seconds of ``YYYY-MM-DD``, ISO 8601 (``Z`` or offset) or a unix number
    (seconds, or milliseconds when above 1e11)."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return int(number / 1000 if number > 1e11 else number)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FeedError(f"unparseable time {value!r}", field="time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


@dataclass(frozen=True)
class Bars:
    """Bars of one symbol: ``times`` unix seconds (int64, ascending), ``close`` USD."""

    symbol: str
    times: np.ndarray
    close: Float64Array


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="") as fh:
            rows = [r for r in csv.reader(fh) if r]
    except OSError as exc:
        raise FeedError(f"cannot read {path}: {exc}") from exc
    if len(rows) < 2:
        raise FeedError(f"{path} has no data rows")
    return [h.strip().lower() for h in rows[0]], rows[1:]


def load_bars(path: Path, symbol: str) -> Bars:
    """Read an OHLCV CSV; checks ascending unique times and positive finite closes."""
    header, rows = _read_csv(path)
    if header[0] not in ("date", "time", "timestamp") or "close" not in header:
        raise FeedError(f"{path}: expected a date/time/timestamp column and close, got {header}")
    ci = header.index("close")
    times = np.array([parse_time(r[0]) for r in rows], dtype=np.int64)
    try:
        close = np.array([float(r[ci]) for r in rows], dtype=np.float64)
    except (ValueError, IndexError) as exc:
        raise FeedError(f"{path}: bad close value: {exc}", field=f"{symbol}.close") from exc
    if np.any(np.diff(times) <= 0):
        raise FeedError(f"{path}: times not strictly ascending", field=f"{symbol}.time")
    return Bars(symbol, times, close)


def load_dvol(path: Path) -> tuple[np.ndarray, Float64Array]:
    """(day times in unix seconds, ATM vol as decimal) from a ``date,dvol`` CSV."""
    header, rows = _read_csv(path)
    if header[:2] != ["date", "dvol"]:
        raise FeedError(f"{path}: expected columns date,dvol, got {header}")
    times = np.array([parse_time(r[0]) for r in rows], dtype=np.int64)
    vols = np.array([float(r[1]) / 100.0 for r in rows], dtype=np.float64)  # points -> decimal
    return times, vols


def _find_file(data_dir: Path, frequency: str, symbol: str) -> Path:
    if frequency == "daily":
        path = data_dir / "daily" / f"{symbol}.csv"
        if path.is_file():
            return path
    else:
        matches = sorted((data_dir / "intraday").glob(f"{symbol}_*.csv"))
        if matches:
            return matches[0]
    raise FeedError(f"no {frequency} file for {symbol} under {data_dir}", field=symbol)


class ReplayFeed(MarketFeed):
    """Historical replay as a :class:`MarketFeed` (see the module docstring)."""

    def __init__(
        self,
        data_dir: Path | str,
        config: ReplayConfig = ReplayConfig(),
        *,
        expiries: Sequence[int] | None = None,
        bounds: FeedBounds = DEFAULT_BOUNDS,
    ) -> None:
        self.config = config
        self._bounds = bounds
        self._expiries = tuple(sorted(expiries)) if expiries is not None else None
        data_dir = Path(data_dir)
        if config.rv_window < 2 or config.history_length < max(2, config.rv_window):
            raise FeedError("need history_length >= rv_window >= 2", field="replay.history_length")
        bars = [load_bars(_find_file(data_dir, config.frequency, s), s) for s in config.symbols]
        self._times = bars[0].times
        # As-of join onto the first symbol's timeline; -1 = no bar yet.
        idx = [np.searchsorted(b.times, self._times, side="right") - 1 for b in bars]
        first_ok = max(int(np.argmax(i >= 0)) if (i >= 0).any() else len(self._times) for i in idx)
        self._close = np.column_stack(
            [
                np.where(i >= 0, b.close[np.maximum(i, 0)], np.nan)
                for b, i in zip(bars, idx, strict=True)
            ]
        )
        diffs = np.diff(self._times)
        self.interval_seconds = int(np.median(diffs)) if len(diffs) else _DAY
        self._first_index = first_ok + config.history_length
        if self._first_index >= len(self._times):
            raise FeedError(
                f"not enough aligned bars for a history of {config.history_length}",
                field="replay.history_length",
            )
        if config.start is not None:
            start = config.start if isinstance(config.start, int) else parse_time(config.start)
            i = int(np.searchsorted(self._times, start, side="left"))
            if i >= len(self._times):
                raise FeedError(f"start {config.start} is after the data", field="replay.start")
            if i < self._first_index:
                raise FeedError(
                    f"start {config.start} leaves less than {config.history_length} bars of "
                    "history",
                    field="replay.start",
                )
            self._first_index = i
        self._cursor = self._first_index
        self._dvol: dict[str, tuple[np.ndarray, Float64Array]] = {}
        for s in config.symbols:
            path = data_dir / "implied_vol" / f"{s}_DVOL.csv"
            if path.is_file():
                self._dvol[s] = load_dvol(path)

    @property
    def bar_time(self) -> int:
        """Open time (unix seconds) of the bar the next tick will return."""
        return int(self._times[self._cursor])

    @property
    def remaining(self) -> int:
        """Bars left before the data runs out."""
        return len(self._times) - self._cursor

    def _iv(self, symbol: str, col: int, i: int) -> tuple[float, str]:
        if symbol in self._dvol:
            times, vols = self._dvol[symbol]
            j = int(np.searchsorted(times, self._times[i], side="right")) - 1
            if j >= 0 and self._times[i] - times[j] <= self.config.dvol_max_age_days * _DAY:
                return float(vols[j]), "dvol"
        closes = self._close[i - self.config.rv_window : i + 1, col]
        with np.errstate(invalid="ignore", divide="ignore"):  # bad closes -> NaN -> refused
            rets = np.diff(np.log(closes))
        rv = float(np.std(rets, ddof=1)) * math.sqrt(SECONDS_PER_YEAR / self.interval_seconds)
        return rv * self.config.iv_premium, "realized"

    def _next_state(self, now: int) -> MarketState:
        cfg = self.config
        if self._cursor >= len(self._times):
            if not cfg.loop:
                raise FeedError(f"replay exhausted after {len(self._times)} bars")
            self._cursor = self._first_index
        i = self._cursor
        self._cursor += 1  # a bad bar is skipped, not retried for ever
        with np.errstate(invalid="ignore", divide="ignore"):
            window = self._close[i - cfg.history_length : i + 1]
            returns = np.diff(np.log(window), axis=0)
        expiries = self._expiries if self._expiries is not None else default_expiries(now)
        expiries = tuple(e for e in expiries if e > now)
        underlyings = []
        spots: dict[str, float] = {}
        for col, sym in enumerate(cfg.symbols):
            spot = float(self._close[i, col])
            spots[sym] = spot
            atm, source = self._iv(sym, col, i)
            smiles = tuple(
                Smile(
                    e,
                    spot * math.exp(cfg.rate * (e - now) / SECONDS_PER_YEAR),
                    atm,
                    cfg.skew,
                    cfg.curvature,
                )
                for e in expiries
            )
            underlyings.append(UnderlyingState(sym, spot, spot, smiles, source))
        tokens = {t: 1.0 if u is None else spots[u] for t, u in cfg.tokens}
        return MarketState(
            timestamp=now,
            underlyings=tuple(underlyings),
            rate=cfg.rate,
            token_prices=tokens,
            return_symbols=cfg.symbols,
            returns=returns,
            return_interval_seconds=self.interval_seconds,
            source_time=int(self._times[i]),
            source="replay",
            bounds=self._bounds,
        )
