"""Load the market-data directory (see ../shared/data/README.md) into typed arrays.

This is the only module of the backtest that touches files. Layout::

    DIR/daily/<UNDERLYING>.csv            date,open,high,low,close,volume   (UTC days)
    DIR/implied_vol/<UNDERLYING>_DVOL.csv date,dvol                         (percent, optional)

Prices are USDT per coin; DVOL is annualised 30-day implied vol in percentage points and
is returned as a fraction (55.3 -> 0.553). Every series is checked on load: header,
strictly ascending dates, finite positive values. Gaps are kept, not filled: the caller
decides what a missing day means.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from risk_engine.backtest._typing import DateArray, Float64Array

__all__ = [
    "DailyCloses",
    "DataError",
    "ImpliedVolSeries",
    "MarketHistory",
    "load_daily_closes",
    "load_implied_vol",
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
class MarketHistory:
    """Everything the backtest reads from a data directory."""

    source: Path
    closes: dict[str, DailyCloses]
    implied_vols: dict[str, ImpliedVolSeries]


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
    return MarketHistory(source=directory, closes=closes, implied_vols=implied_vols)


def align_to_calendar(dates: DateArray, values: Float64Array, calendar: DateArray) -> Float64Array:
    """Values on ``calendar`` days (datetime64[D], ascending); NaN where ``dates`` lacks the day."""
    out = np.full(calendar.shape, np.nan, dtype=np.float64)
    index = (dates - calendar[0]).astype(np.int64)
    inside = (index >= 0) & (index < calendar.size)
    out[index[inside]] = values[inside]
    return out
