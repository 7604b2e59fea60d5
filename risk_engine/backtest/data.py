"""Load the market-data directory (see ../shared/data/README.md) into typed arrays.

This is the only module of the backtest that touches files. Layout::

    DIR/daily/<UNDERLYING>.csv            date,open,high,low,close,volume   (UTC days)
    DIR/implied_vol/<UNDERLYING>_DVOL.csv date,dvol                         (percent, optional)
    DIR/intraday/<UNDERLYING>_<N>h.csv    time,open,high,low,close,volume   (bar open, UTC)

Prices are USDT per coin; DVOL is annualised 30-day implied vol in percentage points and
is returned as a fraction (55.3 -> 0.553). Every series is checked on load: header,
strictly ascending dates, finite positive values. Gaps are kept, not filled: the caller
decides what a missing day means.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from risk_engine.backtest._typing import DateArray, Float64Array

__all__ = [
    "DailyCloses",
    "DataError",
    "IntradayBars",
    "ImpliedVolSeries",
    "MarketHistory",
    "load_daily_closes",
    "load_implied_vol",
    "load_intraday_bars",
    "align_to_calendar",
    "load_market_history",
]


class DataError(ValueError):
    """A data file is missing, malformed or inconsistent; the message names file and row."""


@dataclass(frozen=True)
class DailyCloses:
    """Daily closing prices of one underlying.

    Attributes
    ----------
    underlying : str
    dates : DateArray, shape (n,)
        UTC day of the bar (datetime64[D]), strictly ascending.
    close : Float64Array, shape (n,)
        Close of the UTC day, USDT per coin, > 0.
    """

    underlying: str
    dates: DateArray
    close: Float64Array


@dataclass(frozen=True)
class ImpliedVolSeries:
    """Daily implied-volatility index (e.g. Deribit DVOL) of one underlying.

    Attributes
    ----------
    underlying : str
    dates : DateArray, shape (n,)
        UTC day of the candle whose close is given, strictly ascending (gaps allowed).
    vol : Float64Array, shape (n,)
        Annualised implied vol as a fraction (0.553 = 55.3 %), > 0.
    """

    underlying: str
    dates: DateArray
    vol: Float64Array


@dataclass(frozen=True)
class IntradayBars:
    """Intraday OHLC bars of one underlying (``intraday/<U>_<N>h.csv``).

    Attributes
    ----------
    underlying : str
    bar_seconds : int
        Bar length (from the file name: ``_4h`` -> 14,400).
    start : ndarray of datetime64[s], shape (n,)
        Bar open time (UTC), strictly ascending; gaps (missing bars) are kept.
    open, high, low, close : Float64Array, shape (n,)
        USDT per coin, > 0, ``low <= open, close <= high``.
    """

    underlying: str
    bar_seconds: int
    start: np.ndarray[tuple[int], np.dtype[np.datetime64]]
    open: Float64Array
    high: Float64Array
    low: Float64Array
    close: Float64Array


@dataclass(frozen=True)
class MarketHistory:
    """Everything the backtest reads from a data directory."""

    source: Path
    closes: dict[str, DailyCloses]
    implied_vols: dict[str, ImpliedVolSeries]
    intraday: dict[str, IntradayBars] = field(default_factory=dict)


def _read_columns(
    path: Path, date_column: str, value_column: str
) -> tuple[DateArray, Float64Array]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for column in (date_column, value_column):
            if column not in header:
                raise DataError(f"{path}: header {header} has no column {column!r}")
        days: list[np.datetime64] = []
        values: list[float] = []
        for row_number, row in enumerate(reader, start=2):
            try:
                day = np.datetime64(row[date_column][:10], "D")
                value = float(row[value_column])
            except (TypeError, ValueError) as exc:
                raise DataError(f"{path}:{row_number}: cannot parse row {row}: {exc}") from exc
            # a non-positive or non-finite price or vol would poison every estimate after it
            if not np.isfinite(value) or value <= 0.0:
                raise DataError(f"{path}:{row_number}: {value_column}={value} is not > 0")
            days.append(day)
            values.append(value)
    if not days:
        raise DataError(f"{path}: no data rows")
    dates: DateArray = np.array(days, dtype="datetime64[D]")
    steps = np.diff(dates).astype(np.int64)
    if steps.size and steps.min() <= 0:
        bad = int(np.argmin(steps))
        raise DataError(f"{path}: dates not strictly ascending at {dates[bad]} -> {dates[bad + 1]}")
    return dates, np.asarray(values, dtype=np.float64)


def load_daily_closes(path: Path, underlying: str) -> DailyCloses:
    """Read one ``daily/<U>.csv`` file (columns ``date`` and ``close`` are used)."""
    dates, close = _read_columns(path, "date", "close")
    return DailyCloses(underlying=underlying, dates=dates, close=close)


def load_implied_vol(path: Path, underlying: str) -> ImpliedVolSeries:
    """Read one ``implied_vol/<U>_DVOL.csv`` file; percent points become a fraction."""
    dates, dvol = _read_columns(path, "date", "dvol")
    return ImpliedVolSeries(underlying=underlying, dates=dates, vol=dvol / 100.0)


def load_intraday_bars(path: Path, underlying: str) -> IntradayBars:
    """Read one ``intraday/<U>_<N>h.csv`` file; the bar length comes from ``<N>h``."""
    stem = path.stem.rsplit("_", 1)
    if len(stem) != 2 or not stem[1].endswith("h") or not stem[1][:-1].isdigit():
        raise DataError(f"{path}: name must end in _<hours>h.csv")
    bar_seconds = 3600 * int(stem[1][:-1])
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    columns = ("open", "high", "low", "close")
    starts: list[np.datetime64] = []
    rows: list[tuple[float, float, float, float]] = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for column in ("time", *columns):
            if column not in header:
                raise DataError(f"{path}: header {header} has no column {column!r}")
        for row_number, row in enumerate(reader, start=2):
            try:
                start = np.datetime64(row["time"].rstrip("Z"), "s")
                o, h, lo, c = (float(row[k]) for k in columns)
            except (TypeError, ValueError) as exc:
                raise DataError(f"{path}:{row_number}: cannot parse row {row}: {exc}") from exc
            # a bar whose open or close lies outside its range would fake an extreme
            if not all(np.isfinite(x) and x > 0.0 for x in (o, h, lo, c)) or not (
                lo <= min(o, c) and max(o, c) <= h
            ):
                raise DataError(f"{path}:{row_number}: inconsistent bar o={o} h={h} l={lo} c={c}")
            starts.append(start)
            rows.append((o, h, lo, c))
    if not starts:
        raise DataError(f"{path}: no data rows")
    start_arr = np.array(starts, dtype="datetime64[s]")
    steps = np.diff(start_arr).astype(np.int64)
    if steps.size and steps.min() <= 0:
        bad = int(np.argmin(steps))
        raise DataError(f"{path}: times not strictly ascending at {start_arr[bad + 1]}")
    ohlc = np.asarray(rows, dtype=np.float64)
    return IntradayBars(
        underlying=underlying,
        bar_seconds=bar_seconds,
        start=start_arr,
        open=ohlc[:, 0],
        high=ohlc[:, 1],
        low=ohlc[:, 2],
        close=ohlc[:, 3],
    )


def load_market_history(
    directory: Path, underlyings: tuple[str, ...] | None = None
) -> MarketHistory:
    """Load ``daily/*.csv`` and any ``implied_vol/*_DVOL.csv`` under ``directory``.

    Parameters
    ----------
    directory : Path
        A directory in the layout of ../shared/data.
    underlyings : tuple of str, optional
        Which underlyings to load; default every ``daily/*.csv`` found, sorted.
    """
    daily_dir = directory / "daily"
    if underlyings is None:
        underlyings = tuple(sorted(p.stem for p in daily_dir.glob("*.csv")))
    if not underlyings:
        raise DataError(f"{daily_dir}: no daily/<UNDERLYING>.csv files")
    closes = {u: load_daily_closes(daily_dir / f"{u}.csv", u) for u in underlyings}
    implied_vols: dict[str, ImpliedVolSeries] = {}
    for u in underlyings:
        dvol_path = directory / "implied_vol" / f"{u}_DVOL.csv"
        if dvol_path.exists():
            implied_vols[u] = load_implied_vol(dvol_path, u)
    intraday: dict[str, IntradayBars] = {}
    for u in underlyings:
        files = sorted((directory / "intraday").glob(f"{u}_*h.csv"))
        if len(files) > 1:
            raise DataError(f"{directory / 'intraday'}: several bar files for {u}: {files}")
        if files:
            intraday[u] = load_intraday_bars(files[0], u)
    return MarketHistory(
        source=directory, closes=closes, implied_vols=implied_vols, intraday=intraday
    )


def align_to_calendar(dates: DateArray, values: Float64Array, calendar: DateArray) -> Float64Array:
    """Values on ``calendar`` days (datetime64[D], ascending); NaN where ``dates`` lacks the day."""
    out = np.full(calendar.shape, np.nan, dtype=np.float64)
    index = (dates - calendar[0]).astype(np.int64)
    inside = (index >= 0) & (index < calendar.size)
    out[index[inside]] = values[inside]
    return out
