"""Intraday backtest: the worst loss over the liquidation horizon starting at ANY bar.

The vault liquidates within seconds of a breach, so IM must cover the worst loss over
the horizon from whatever moment the book is looked at, not only from one daily close to
the next. For every bar of the intraday files (4 h for BTC and ETH, 1 h for SOL) a window
of the liquidation horizon starts at the bar's open; the book is opened there and its
loss is taken at the worst point of the window:

- one-underlying books are repriced at the window's extreme low, its extreme high and
  its end (bar lows and highs). At a fixed repricing time and vol the value of every
  such book replayed is monotone in the price (covered call, naked put, long call, cash
  and carry) or has a single peak (the delta-hedged straddle is concave; the calendar
  spread's value peaks near the strike), so its minimum over the window's price range
  lies at the low or the high; the end is taken as well;
- the BTC/ETH pair (two underlyings whose highs and lows need not coincide) is valued
  at every bar close of the window and at its end.

Margin at a window start: the margin of the book opened at the last daily close before
the start, scaled to the start price. This is exact for these books: every book is
defined relative to its opening price (strikes as a fraction of spot, sizes of one unit,
pair notionals in proportion), the engine's ranges, shocks and add-ons are fractions of
price, and one unit is far below every USD concentration threshold, so IM and MM are
homogeneous of degree one in the opening price for a given vol and return history
(``tests/engine/backtest/test_intraday.py`` checks it against ``compute_margin``). The vol
and return history are those of the last daily close; the repricing uses the vol
rule of the next close (the one at or before the window's end), time advanced by the
whole horizon (as the engine's scenarios do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from risk_engine import RiskParams, black76
from risk_engine.backtest._typing import DateArray, Float64Array
from risk_engine.backtest.data import IntradayBars
from risk_engine.backtest.kupiec import KupiecResult, kupiec_pof
from risk_engine.backtest.replay import BacktestResult, day_market
from risk_engine.backtest.results import CRASH_DAYS, BookSeries
from risk_engine.books import BOOKS, Book, LegKind, build_book

__all__ = [
    "IntradayCrash",
    "IntradaySeries",
    "IntradaySummary",
    "Windows",
    "horizon_windows",
    "intraday_series",
    "remargin",
    "summarize_intraday",
]

SECONDS_PER_DAY = 86_400
EXTREME_NAMES = ("low", "high", "end", "path")


@dataclass(frozen=True)
class Windows:
    """Rolling windows of ``n_bars`` consecutive bars, one starting at every bar.

    Windows that contain a missing bar are dropped (the data's gaps are few, README).

    Attributes
    ----------
    start : ndarray of datetime64[s], shape (n,)
        Window start = open time of its first bar.
    open : Float64Array, shape (n,)
        Price at the start (the first bar's open).
    low, high : Float64Array, shape (n,)
        Lowest low and highest high of the window's bars.
    end : Float64Array, shape (n,)
        Close of the window's last bar (the price one horizon after the start).
    closes : Float64Array, shape (n, n_bars)
        Close of every bar of the window.
    """

    start: np.ndarray[tuple[int], np.dtype[np.datetime64]]
    open: Float64Array
    low: Float64Array
    high: Float64Array
    end: Float64Array
    closes: Float64Array


def horizon_windows(bars: IntradayBars, horizon_seconds: int) -> Windows:
    """Every complete window of ``horizon_seconds`` (a whole number of bars) in ``bars``."""
    if horizon_seconds <= 0 or horizon_seconds % bars.bar_seconds:
        raise ValueError(
            f"horizon {horizon_seconds} s is not a positive multiple of the"
            f" {bars.bar_seconds} s bars of {bars.underlying}"
        )
    k = horizon_seconds // bars.bar_seconds
    offset = (bars.start - bars.start[0]).astype(np.int64)
    if np.any(offset % bars.bar_seconds):
        raise ValueError(f"{bars.underlying}: bar times off the {bars.bar_seconds} s grid")
    slot = offset // bars.bar_seconds
    n_slots = int(slot[-1]) + 1
    grid = np.full((4, n_slots), np.nan)  # open, high, low, close on a gap-free grid
    for row, values in enumerate((bars.open, bars.high, bars.low, bars.close)):
        grid[row, slot] = values
    if n_slots < k:
        empty = np.zeros(0)
        return Windows(
            np.zeros(0, dtype="datetime64[s]"), empty, empty, empty, empty, np.zeros((0, k))
        )
    high = sliding_window_view(grid[1], k)
    low = sliding_window_view(grid[2], k)
    close = sliding_window_view(grid[3], k)
    complete = ~np.isnan(close).any(axis=1)  # a NaN close marks a missing bar
    first = np.flatnonzero(complete)
    start = bars.start[0] + (first * bars.bar_seconds).astype("timedelta64[s]")
    return Windows(
        start=start.astype("datetime64[s]"),
        open=grid[0, first],
        low=low[first].min(axis=1),
        high=high[first].max(axis=1),
        end=close[first, -1],
        closes=np.ascontiguousarray(close[first]),
    )


@dataclass(frozen=True)
class IntradaySeries:
    """One book on one underlying, window by window (USD per book opened at the start).

    Attributes
    ----------
    book, underlying : str
    horizon_days : int
    bar_hours : int
    start : ndarray of datetime64[s], shape (n,)
    opened : DateArray, shape (n,)
        The daily close whose margin (scaled to the start price) applies.
    loss, im, mm, gross_notional : Float64Array, shape (n,)
    scale : Float64Array, shape (n,)
        Start price over the close of ``opened`` (first underlying): the factor from the
        daily margin to the window's.
    worst_at : ndarray of int8, shape (n,)
        Where the loss was taken: index into ``EXTREME_NAMES``.
    """

    book: str
    underlying: str
    horizon_days: int
    bar_hours: int
    start: np.ndarray[tuple[int], np.dtype[np.datetime64]]
    opened: DateArray
    loss: Float64Array
    im: Float64Array
    mm: Float64Array
    gross_notional: Float64Array
    scale: Float64Array
    worst_at: np.ndarray[tuple[int], np.dtype[np.int8]]


def _relative_values(
    book: Book, prices: dict[str, Float64Array], vol: float, elapsed_years: float, floor: float
) -> Float64Array:
    """Value of ``book`` (opened at spot 1) at relative ``prices`` (each shape (m,))."""
    shape = next(iter(prices.values())).shape
    total = np.zeros(shape)
    for leg in book.legs:
        x = prices[leg.underlying]
        if leg.kind in (LegKind.TOKEN, LegKind.PERP):
            total += leg.quantity * x
        else:
            total += leg.quantity * black76(
                x,
                np.full(shape, leg.strike),
                np.full(shape, leg.expiry_years - elapsed_years),
                np.full(shape, max(vol, floor)),
                0.0,
                np.full(shape, leg.kind is LegKind.CALL),
            )
    return total


def _worst_relative_loss(
    book: Book,
    group: tuple[str, ...],
    wins: Sequence[Windows],
    idx: Sequence[npt.NDArray[np.int64]],
    chunk: npt.NDArray[np.int64],
    vol_t: float,
    vol_after: float,
    horizon_days: int,
    floor: float,
) -> tuple[Float64Array, npt.NDArray[np.int64]]:
    """Worst loss per unit of opening price over the windows ``chunk``, and where it was.

    One underlying: at the window's low, high and end. Several: at every bar close.
    """
    start = _relative_values(book, dict.fromkeys(group, np.ones(chunk.size)), vol_t, 0.0, floor)
    elapsed = horizon_days / 365.0
    if len(group) == 1:
        w, j = wins[0], idx[0][chunk]
        s0 = w.open[j]
        points = [w.low[j] / s0, w.high[j] / s0, w.end[j] / s0]
        after = np.stack(
            [_relative_values(book, {group[0]: x}, vol_after, elapsed, floor) for x in points]
        )
        worst = np.argmin(after, axis=0)
        loss: Float64Array = start - after.min(axis=0)
        return loss, worst
    rel = {
        u: (w.closes[j[chunk]] / w.open[j[chunk]][:, None])
        for u, w, j in zip(group, wins, idx, strict=True)
    }
    after = _relative_values(book, rel, vol_after, elapsed, floor)  # shape (m, n_bars)
    path_loss: Float64Array = start - after.min(axis=1)
    return path_loss, np.full(chunk.size, EXTREME_NAMES.index("path"), dtype=np.int64)


def _group_windows(
    windows: dict[str, Windows], group: tuple[str, ...]
) -> tuple[
    np.ndarray[tuple[int], np.dtype[np.datetime64]], list[Windows], list[npt.NDArray[np.int64]]
]:
    """Start times common to every member, and each member's windows at them."""
    common = windows[group[0]].start
    for u in group[1:]:
        common = np.intersect1d(common, windows[u].start)
    picked: list[Windows] = []
    index: list[npt.NDArray[np.int64]] = []
    for u in group:
        idx = np.searchsorted(windows[u].start, common)
        picked.append(windows[u])
        index.append(idx)
    return common, picked, index


def intraday_series(
    result: BacktestResult,
    bars: dict[str, IntradayBars],
    params: RiskParams,
) -> tuple[IntradaySeries, ...]:
    """Intraday windows for every daily series of ``result`` whose underlyings have bars.

    Parameters
    ----------
    result : BacktestResult
        The daily replay: its IM, MM and gross notional at each close are scaled to the
        window start price; its calendar gives the vol rule at t and t + h.
    bars : dict of IntradayBars
        Per underlying; series without bars for every member are skipped.
    params : RiskParams
        The replay's parameters (pair beta's EWMA decay, the repricing vol floor).
    """
    cal, h = result.calendar, result.horizon_days
    horizon_seconds = h * SECONDS_PER_DAY
    windows = {u: horizon_windows(bars[u], horizon_seconds) for u in bars}
    hist = result.config.history_days
    out: list[IntradaySeries] = []
    by_group: dict[str, list[BookSeries]] = {}
    for s in result.series:
        by_group.setdefault(s.underlying, []).append(s)
    for label, series in by_group.items():
        group = tuple(label.split("/"))
        if not all(u in windows for u in group):
            continue
        starts, wins, idx = _group_windows(windows, group)
        opened_all = starts.astype("datetime64[D]") - np.timedelta64(1, "D")
        cols = [cal.column(u) for u in group]
        # every series of a group shares its days (one compute_margin call per day)
        dates = series[0].dates
        pos = np.searchsorted(dates, opened_all)
        pos_ok = np.minimum(pos, dates.size - 1)
        keep = (pos < dates.size) & (dates[pos_ok] == opened_all)
        acc: dict[str, dict[str, list[Float64Array]]] = {
            s.book: {k: [] for k in ("start", "loss", "im", "mm", "gross", "scale", "at", "opened")}
            for s in series
        }
        kept = np.flatnonzero(keep)
        day_of = pos[kept]
        boundaries = np.flatnonzero(np.diff(day_of)) + 1
        for chunk in np.split(kept, boundaries):
            if not chunk.size:
                continue
            i = int(pos[chunk[0]])
            t = int(np.flatnonzero(cal.dates == dates[i])[0])
            beta = day_market(cal, t, group, params, hist).beta if len(group) > 1 else 1.0
            vol_t = {u: float(cal.vol[t, c]) for u, c in zip(group, cols, strict=True)}
            vol_after = float(cal.vol[t + h, cols[0]])
            s0 = wins[0].open[idx[0][chunk]]
            close_t = float(cal.close[t, cols[0]])
            for s in series:
                book = build_book(
                    BOOKS[s.book],
                    group[0],
                    spot=dict.fromkeys(group, 1.0),
                    vol=vol_t,
                    beta=beta,
                )
                loss, at = _worst_relative_loss(
                    book, group, wins, idx, chunk, vol_t[group[0]], vol_after, h, params.vol.floor
                )
                a = acc[s.book]
                scale = s0 / close_t
                a["start"].append(starts[chunk].astype(np.int64).astype(np.float64))
                a["opened"].append(np.full(chunk.size, float(i)))
                a["loss"].append(loss * s0)
                a["im"].append(s.im[i] * scale)
                a["mm"].append(s.mm[i] * scale)
                a["gross"].append(s.gross_notional[i] * scale)
                a["scale"].append(scale)
                a["at"].append(at.astype(np.float64))
        for s in series:
            a = acc[s.book]
            if not a["loss"]:
                continue
            opened_idx = np.concatenate(a["opened"]).astype(np.int64)
            out.append(
                IntradaySeries(
                    book=s.book,
                    underlying=s.underlying,
                    horizon_days=h,
                    bar_hours=bars[group[0]].bar_seconds // 3600,
                    start=np.concatenate(a["start"]).astype(np.int64).astype("datetime64[s]"),
                    opened=dates[opened_idx],
                    loss=np.concatenate(a["loss"]),
                    im=np.concatenate(a["im"]),
                    mm=np.concatenate(a["mm"]),
                    gross_notional=np.concatenate(a["gross"]),
                    scale=np.concatenate(a["scale"]),
                    worst_at=np.concatenate(a["at"]).astype(np.int8),
                )
            )
    return tuple(out)


def remargin(
    series: Sequence[IntradaySeries], daily: Sequence[BookSeries]
) -> tuple[IntradaySeries, ...]:
    """The same windows and losses with the margin of another daily replay.

    The losses do not depend on the risk parameters, so a parameter scan replays the
    days and rescales; windows whose opening day ``daily`` lacks (a subsampled replay)
    are dropped.
    """
    by_key = {(d.book, d.underlying): d for d in daily}
    out: list[IntradaySeries] = []
    for s in series:
        d = by_key.get((s.book, s.underlying))
        if d is None:
            continue
        pos = np.searchsorted(d.dates, s.opened)
        pos_ok = np.minimum(pos, d.dates.size - 1)
        keep = (pos < d.dates.size) & (d.dates[pos_ok] == s.opened)
        i = pos[keep]
        out.append(
            replace(
                s,
                start=s.start[keep],
                opened=s.opened[keep],
                loss=s.loss[keep],
                im=d.im[i] * s.scale[keep],
                mm=d.mm[i] * s.scale[keep],
                gross_notional=d.gross_notional[i] * s.scale[keep],
                scale=s.scale[keep],
                worst_at=s.worst_at[keep],
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class IntradayCrash:
    """The worst window that holds part of a crash day (UTC), against its IM and MM (USD)."""

    date: np.datetime64
    start: np.datetime64
    loss: float
    im: float
    mm: float
    worst_at: str


@dataclass(frozen=True)
class IntradaySummary:
    """Coverage of one intraday series.

    ``kupiec`` counts every window; consecutive windows overlap (a 1-day window every
    4 h shares 20 h with the next), so exceedances cluster and its p-value overstates
    the evidence. ``kupiec_phase`` is the test on the windows that start at one hour of
    the day (24 h apart, so they do not overlap), for the start hour with the most
    exceedances: the strictest reading that keeps the test's independence assumption.
    """

    book: str
    underlying: str
    bar_hours: int
    n_windows: int
    first: np.datetime64
    last: np.datetime64
    im_exceedances: int
    mm_exceedances: int
    kupiec: KupiecResult
    kupiec_phase: KupiecResult
    phase_hour: int
    worst_start: np.datetime64
    worst_multiple: float
    mean_im_over_gross: float
    crash_days: tuple[IntradayCrash, ...]

    @property
    def im_coverage(self) -> float:
        return 1.0 - self.im_exceedances / self.n_windows

    @property
    def mm_coverage(self) -> float:
        return 1.0 - self.mm_exceedances / self.n_windows


def summarize_intraday(
    series: IntradaySeries, *, coverage: float = 0.99, alpha: float = 0.05
) -> IntradaySummary:
    """Exceedances, both Kupiec readings, worst window, crash days, mean IM/gross."""
    n = int(series.start.size)
    if n == 0:
        raise ValueError(f"{series.book}/{series.underlying}: no intraday windows")
    hit = series.loss > series.im
    hour = (series.start.astype(np.int64) % SECONDS_PER_DAY) // 3600
    phases = np.unique(hour)
    counts = np.array([int(np.count_nonzero(hit[hour == p])) for p in phases])
    sizes = np.array([int(np.count_nonzero(hour == p)) for p in phases])
    worst_phase = int(np.argmax(counts / sizes))
    ratio = series.loss / series.im
    w = int(np.argmax(ratio))
    crash: list[IntradayCrash] = []
    for d in CRASH_DAYS:
        # every window that holds part of day d: from the first bar after the close of
        # d - 2 (that window ends inside d) to the last start inside d
        lo = (d - np.timedelta64(1, "D")).astype("datetime64[s]")
        hi = (d + np.timedelta64(1, "D")).astype("datetime64[s]")
        on = np.flatnonzero((series.start > lo) & (series.start < hi))
        if on.size:
            i = int(on[np.argmax(ratio[on])])
            crash.append(
                IntradayCrash(
                    date=d,
                    start=series.start[i],
                    loss=float(series.loss[i]),
                    im=float(series.im[i]),
                    mm=float(series.mm[i]),
                    worst_at=EXTREME_NAMES[int(series.worst_at[i])],
                )
            )
    return IntradaySummary(
        book=series.book,
        underlying=series.underlying,
        bar_hours=series.bar_hours,
        n_windows=n,
        first=series.start[0],
        last=series.start[-1],
        im_exceedances=int(np.count_nonzero(hit)),
        mm_exceedances=int(np.count_nonzero(series.loss > series.mm)),
        kupiec=kupiec_pof(int(np.count_nonzero(hit)), n, coverage=coverage, alpha=alpha),
        kupiec_phase=kupiec_pof(
            int(counts[worst_phase]), int(sizes[worst_phase]), coverage=coverage, alpha=alpha
        ),
        phase_hour=int(phases[worst_phase]),
        worst_start=series.start[w],
        worst_multiple=float(ratio[w]),
        mean_im_over_gross=float(np.mean(series.im / series.gross_notional)),
        crash_days=tuple(crash),
    )
