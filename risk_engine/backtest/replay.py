"""Replay daily history: margin the books each day, measure the next-horizon loss.

For each opening day t (a UTC daily close) and each book:

1. the market known at t: spot = close(t), vol = the vol rule at t (vol.py), daily log
   returns up to and including t (at most ``history_days``) for the engine's EWMA
   estimators; nothing dated after t enters the day's margin;
2. the book is opened afresh at t (strikes and expiries relative to t, books.py) and
   margined by ``compute_margin`` with the given parameters, every book of a group
   (one underlying, or the BTC/ETH pair) in one call;
3. its loss is ``value(t) - value(t + h)`` with ``h`` the liquidation horizon
   (``params.horizon_days``, whole days): tokens and perps at the close of t + h (perp
   mark = spot, no funding: the data have neither), options by Black-76 at the close
   of t + h, time to expiry shortened by h, and the vol the rule gives at t + h (flat
   smile, zero rate).

A day is skipped for an underlying when a close or a vol at t or t + h is missing, or
fewer than ``params.correlation.min_observations`` consecutive returns end at t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from risk_engine import MarginResult, RiskParams, black76
from risk_engine.backtest._typing import BoolArray, DateArray, Float64Array
from risk_engine.backtest.accounts import margin_books
from risk_engine.backtest.data import MarketHistory, align_to_calendar
from risk_engine.backtest.results import BookSeries
from risk_engine.backtest.vol import VolRule, vol_path
from risk_engine.books import BOOKS, PAIR_UNDERLYINGS, Book, BookSpec, LegKind, build_book
from risk_engine.correlation import ewma_covariance

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "Calendar",
    "DayMarket",
    "GroupDay",
    "book_groups",
    "build_calendar",
    "day_market",
    "margin_group_day",
    "open_books",
    "run_backtest",
    "horizon_whole_days",
    "usable_days",
]


@dataclass(frozen=True, kw_only=True)
class BacktestConfig:
    """What to replay.

    Attributes
    ----------
    books : tuple of str
        Names in ``books.BOOKS``.
    underlyings : tuple of str, optional
        Default: every underlying in the data.
    vol_rule : VolRule
    history_days : int
        Longest return history handed to the engine each day (250: the EWMA weight of
        older returns is below 0.94^250 ~ 2e-7).
    start, end : datetime64[D], optional
        First and last opening day.
    every_days : int
        Replay only the days whose number since 1970-01-01 is a multiple of it (1: all).
        For estimates of mean margin levels (the what-if reruns), not for exceedance counts.
    only_days : tuple of datetime64[D], optional
        Replay only these opening days (the crash-day reruns of the calibration).
    """

    books: tuple[str, ...] = tuple(BOOKS)
    underlyings: tuple[str, ...] | None = None
    vol_rule: VolRule = field(default_factory=VolRule)
    history_days: int = 250
    start: np.datetime64 | None = None
    end: np.datetime64 | None = None
    every_days: int = 1
    only_days: tuple[np.datetime64, ...] | None = None

    def __post_init__(self) -> None:
        unknown = [b for b in self.books if b not in BOOKS]
        if unknown:
            raise ValueError(f"books: unknown {unknown}; known {sorted(BOOKS)}")
        if self.history_days < 2:
            raise ValueError(f"history_days={self.history_days} must be >= 2")
        if self.every_days < 1:
            raise ValueError(f"every_days={self.every_days} must be >= 1")


@dataclass(frozen=True)
class Calendar:
    """All underlyings on one calendar of consecutive UTC days.

    Attributes
    ----------
    dates : DateArray, shape (n,)
    underlyings : tuple of str, length k
    close, log_return, vol : Float64Array, shape (n, k)
        NaN where unknown (``log_return[t]`` = ln close(t) / close(t - 1)).
    vol_source : ndarray of int8, shape (n, k)
    run : ndarray of int64, shape (n, k)
        Number of consecutive known returns ending at day t.
    """

    dates: DateArray
    underlyings: tuple[str, ...]
    close: Float64Array
    log_return: Float64Array
    vol: Float64Array
    vol_source: np.ndarray[tuple[int, int], np.dtype[np.int8]]
    run: np.ndarray[tuple[int, int], np.dtype[np.int64]]

    def column(self, underlying: str) -> int:
        return self.underlyings.index(underlying)


def build_calendar(history: MarketHistory, underlyings: tuple[str, ...], rule: VolRule) -> Calendar:
    """Align the closes and implied vols of ``underlyings`` and apply the vol rule."""
    missing = [u for u in underlyings if u not in history.closes]
    if missing:
        raise ValueError(f"underlyings {missing} not in the data ({sorted(history.closes)})")
    first = min(history.closes[u].dates[0] for u in underlyings)
    last = max(history.closes[u].dates[-1] for u in underlyings)
    dates: DateArray = np.arange(first, last + np.timedelta64(1, "D"), dtype="datetime64[D]")
    n, k = dates.size, len(underlyings)
    close = np.full((n, k), np.nan)
    vol = np.full((n, k), np.nan)
    source = np.zeros((n, k), dtype=np.int8)
    for j, u in enumerate(underlyings):
        series = history.closes[u]
        close[:, j] = align_to_calendar(series.dates, series.close, dates)
        iv = history.implied_vols.get(u)
        index_vol = None if iv is None else align_to_calendar(iv.dates, iv.vol, dates)
        path = vol_path(close[:, j], index_vol, rule)
        vol[:, j] = path.vol
        source[:, j] = path.source
    log_return = np.full((n, k), np.nan)
    log_return[1:] = np.diff(np.log(close), axis=0)
    known = ~np.isnan(log_return)
    run = np.zeros((n, k), dtype=np.int64)
    for t in range(n):  # run length of known returns; n ~ 2,500, cheap
        run[t] = np.where(known[t], (run[t - 1] if t else 0) + 1, 0)
    return Calendar(dates, underlyings, close, log_return, vol, source, run)


@dataclass(frozen=True)
class BacktestResult:
    series: tuple[BookSeries, ...]
    calendar: Calendar
    horizon_days: int
    config: BacktestConfig


@dataclass
class _Accumulator:
    dates: list[np.datetime64] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    im: list[float] = field(default_factory=list)
    mm: list[float] = field(default_factory=list)
    gross: list[float] = field(default_factory=list)
    source: list[int] = field(default_factory=list)


def horizon_whole_days(params: RiskParams) -> int:
    h = params.horizon_days
    if h < 1 or abs(h - round(h)) > 1e-9:
        raise ValueError(f"params.horizon_days={h}: the daily backtest needs whole days >= 1")
    return int(round(h))


def _value_after(
    book: Book, spot: dict[str, float], vol: dict[str, float], elapsed_years: float, floor: float
) -> float:
    """Value of the book's legs in the market at t + h (USD)."""
    total = 0.0
    options = [leg for leg in book.legs if leg.kind in (LegKind.CALL, LegKind.PUT)]
    for leg in book.legs:
        if leg.kind in (LegKind.TOKEN, LegKind.PERP):
            total += leg.quantity * spot[leg.underlying]
    if options:
        prices = black76(
            np.array([spot[leg.underlying] for leg in options]),
            np.array([leg.strike for leg in options]),
            np.array([leg.expiry_years - elapsed_years for leg in options]),
            np.array([max(vol[leg.underlying], floor) for leg in options]),
            0.0,
            np.array([leg.kind is LegKind.CALL for leg in options]),
        )
        total += float(np.dot([leg.quantity for leg in options], prices))
    return total


def _pair_beta(returns: Float64Array, lam: float) -> float:
    """Variance-minimising hedge ratio of the first underlying on the second (EWMA)."""
    cov = ewma_covariance(returns, lam)
    return float(cov[0, 1] / cov[1, 1])


@dataclass(frozen=True)
class GroupDay:
    """The books of one group opened at day t, their margin and their loss to t + h."""

    books: tuple[Book, ...]
    margin: MarginResult
    loss: Float64Array  # shape (n_books,), USD, positive = loss


@dataclass(frozen=True)
class DayMarket:
    """What is known at the close of day t for one group of underlyings.

    Attributes
    ----------
    timestamp : int
        Unix seconds of the close (00:00 UTC of the next day).
    spot, vol : dict[str, float]
        Close (USD per unit) and the vol rule's value (annualised fraction).
    returns : Float64Array, shape (n_observations, len(group))
        Daily log returns ending at t, at most ``history_days``.
    beta : float
        Pair hedge ratio of the first underlying on the second (1.0 for one underlying).
    """

    group: tuple[str, ...]
    timestamp: int
    spot: dict[str, float]
    vol: dict[str, float]
    returns: Float64Array
    beta: float


def day_market(
    cal: Calendar, t: int, group: tuple[str, ...], params: RiskParams, history_days: int
) -> DayMarket:
    """The market of ``group`` at the close of day ``t``: only rows ``<= t`` are read."""
    cols = [cal.column(u) for u in group]
    timestamp = int(
        (cal.dates[t] + np.timedelta64(1, "D")).astype("datetime64[s]").astype(np.int64)
    )
    length = int(min(history_days, cal.run[t, cols].min()))
    returns = np.ascontiguousarray(cal.log_return[t - length + 1 : t + 1][:, cols])
    spot = {u: float(cal.close[t, c]) for u, c in zip(group, cols, strict=True)}
    vol = {u: float(cal.vol[t, c]) for u, c in zip(group, cols, strict=True)}
    beta = _pair_beta(returns, params.correlation.ewma_lambda) if len(group) > 1 else 1.0
    return DayMarket(group, timestamp, spot, vol, returns, beta)


def open_books(
    market: DayMarket, specs: Sequence[BookSpec], params: RiskParams
) -> tuple[tuple[Book, ...], MarginResult]:
    """Open ``specs`` in ``market`` and margin them as one account each (one call)."""
    books = tuple(
        build_book(s, market.group[0], spot=market.spot, vol=market.vol, beta=market.beta)
        for s in specs
    )
    margin = margin_books(
        books,
        params,
        timestamp=market.timestamp,
        spot=market.spot,
        vol=market.vol,
        returns=market.returns,
        underlyings=market.group,
    )
    return books, margin


def margin_group_day(
    cal: Calendar,
    t: int,
    group: tuple[str, ...],
    specs: Sequence[BookSpec],
    params: RiskParams,
    horizon_days: int,
    history_days: int,
) -> GroupDay:
    """Open ``specs`` on ``group`` at day ``t``, margin them, and measure the loss to t + h.

    Only rows ``<= t`` of the calendar enter the margin; row ``t + h`` enters the loss.
    The caller checks that the day is usable (closes, vols and history present).
    """
    cols = [cal.column(u) for u in group]
    books, margin = open_books(day_market(cal, t, group, params, history_days), specs, params)
    h = horizon_days
    spot_after = {u: float(cal.close[t + h, c]) for u, c in zip(group, cols, strict=True)}
    vol_after = {u: float(cal.vol[t + h, c]) for u, c in zip(group, cols, strict=True)}
    after = np.array(
        [_value_after(b, spot_after, vol_after, h / 365.0, params.vol.floor) for b in books]
    )
    return GroupDay(books=books, margin=margin, loss=margin.equity - after)


def usable_days(
    cal: Calendar, params: RiskParams, horizon_days: int, config: BacktestConfig
) -> BoolArray:
    """``ok[t, j]``: underlying j can be margined at t and its loss to t + h measured."""
    h = horizon_days
    n = cal.dates.size
    ok: BoolArray = np.zeros((n, len(cal.underlyings)), dtype=np.bool_)
    ok[: n - h] = (
        np.isfinite(cal.close[: n - h])
        & np.isfinite(cal.close[h:])
        & np.isfinite(cal.vol[: n - h])
        & np.isfinite(cal.vol[h:])
        & (cal.run[: n - h] >= params.correlation.min_observations)
    )
    in_range = np.ones(n, dtype=np.bool_)
    if config.start is not None:
        in_range &= cal.dates >= config.start
    if config.end is not None:
        in_range &= cal.dates <= config.end
    # phase fixed to the unix epoch, so that runs over different calendars pick the same days
    in_range[cal.dates.astype(np.int64) % config.every_days != 0] = False
    if config.only_days is not None:
        in_range &= np.isin(cal.dates, np.array(config.only_days, dtype="datetime64[D]"))
    ok &= in_range[:, None]
    return ok


def book_groups(
    config: BacktestConfig, underlyings: tuple[str, ...]
) -> list[tuple[tuple[str, ...], tuple[BookSpec, ...]]]:
    """Groups margined together: each underlying with the single-underlying books, and
    the BTC/ETH pair with the pair books (when both underlyings are replayed)."""
    specs = [BOOKS[name] for name in config.books]
    singles = tuple(s for s in specs if not s.pair)
    pairs = tuple(s for s in specs if s.pair)
    groups: list[tuple[tuple[str, ...], tuple[BookSpec, ...]]] = (
        [((u,), singles) for u in underlyings] if singles else []
    )
    if pairs and all(u in underlyings for u in PAIR_UNDERLYINGS):
        groups.append((PAIR_UNDERLYINGS, pairs))
    return groups


def run_backtest(
    history: MarketHistory, params: RiskParams, config: BacktestConfig | None = None
) -> BacktestResult:
    """Replay ``history`` with ``params``; one :class:`BookSeries` per book and underlying."""
    config = config or BacktestConfig()
    h = horizon_whole_days(params)
    underlyings = config.underlyings or tuple(sorted(history.closes))
    cal = build_calendar(history, underlyings, config.vol_rule)
    ok = usable_days(cal, params, h, config)
    groups = book_groups(config, underlyings)
    acc: dict[tuple[str, str], _Accumulator] = {}
    for t in np.flatnonzero(ok.any(axis=1)).tolist():
        for group, group_specs in groups:
            cols = [cal.column(u) for u in group]
            if not group_specs or not ok[t, cols].all():
                continue
            day = margin_group_day(cal, t, group, group_specs, params, h, config.history_days)
            for i, book in enumerate(day.books):
                a = acc.setdefault((book.name, book.underlying), _Accumulator())
                a.dates.append(cal.dates[t])
                a.loss.append(float(day.loss[i]))
                a.im.append(float(day.margin.im[i]))
                a.mm.append(float(day.margin.mm[i]))
                a.gross.append(float(day.margin.gross_notional[i]))
                a.source.append(int(cal.vol_source[t, cols[0]]))
    series = tuple(
        BookSeries(
            book=name,
            underlying=underlying,
            horizon_days=h,
            dates=np.array(a.dates, dtype="datetime64[D]"),
            loss=np.array(a.loss),
            im=np.array(a.im),
            mm=np.array(a.mm),
            gross_notional=np.array(a.gross),
            vol_source=np.array(a.source, dtype=np.int8),
        )
        for (name, underlying), a in sorted(
            acc.items(), key=lambda kv: (kv[0][1], config.books.index(kv[0][0]))
        )
    )
    return BacktestResult(series=series, calendar=cal, horizon_days=h, config=config)
