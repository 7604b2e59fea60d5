"""Backtest results per book and underlying, and their summary statistics (pure numpy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from risk_engine.backtest._typing import DateArray, Float64Array
from risk_engine.backtest.kupiec import KupiecResult, kupiec_pof
from risk_engine.backtest.vol import SOURCE_DVOL, SOURCE_REALIZED

__all__ = [
    "CRASH_DAYS",
    "BookSeries",
    "BookSummary",
    "CrashDay",
    "Exceedance",
    "summarize",
]

CRASH_DAYS: tuple[np.datetime64, ...] = tuple(
    np.datetime64(d, "D") for d in ("2020-03-12", "2021-05-19", "2022-06-13", "2022-11-09")
)


@dataclass(frozen=True)
class BookSeries:
    """One book on one underlying, day by day.

    Day ``dates[i]`` is the close at which the book is opened and margined; ``loss[i]``
    is its loss from that close to the close ``horizon_days`` later (positive = loss).

    Attributes
    ----------
    book, underlying : str
    horizon_days : int
    dates : DateArray, shape (n,)
    loss, im, mm, gross_notional : Float64Array, shape (n,)
        USD per book.
    vol_source : ndarray of int8, shape (n,)
        The vol rule's source on the opening day (``vol.SOURCE_*``); for a pair, the
        first underlying's.
    """

    book: str
    underlying: str
    horizon_days: int
    dates: DateArray
    loss: Float64Array
    im: Float64Array
    mm: Float64Array
    gross_notional: Float64Array
    vol_source: np.ndarray[tuple[int], np.dtype[np.int8]]


@dataclass(frozen=True)
class Exceedance:
    """A day whose loss exceeded the requirement (USD per book)."""

    date: np.datetime64
    loss: float
    requirement: float

    @property
    def excess(self) -> float:
        return self.loss - self.requirement

    @property
    def multiple(self) -> float:
        return self.loss / self.requirement if self.requirement > 0 else float("inf")


@dataclass(frozen=True)
class CrashDay:
    """Loss on a crash day, with the IM and MM of the book opened the close before.

    The crash day ``d`` is the day of the fall: the book is opened at the close of
    ``d - 1`` and the loss runs to the close of ``d``.
    """

    date: np.datetime64
    loss: float
    im: float
    mm: float


@dataclass(frozen=True)
class BookSummary:
    book: str
    underlying: str
    n_days: int
    first_date: np.datetime64
    last_date: np.datetime64
    im_exceedances: tuple[Exceedance, ...]
    mm_exceedances: tuple[Exceedance, ...]
    worst: Exceedance  # the day of the largest loss / IM
    kupiec: KupiecResult
    mean_im_over_gross: float
    mean_mm_over_gross: float
    days_dvol: int
    days_realized: int
    crash_days: tuple[CrashDay, ...]

    @property
    def im_coverage(self) -> float:
        return 1.0 - len(self.im_exceedances) / self.n_days

    @property
    def mm_coverage(self) -> float:
        return 1.0 - len(self.mm_exceedances) / self.n_days


def _exceedances(
    dates: DateArray, loss: Float64Array, requirement: Float64Array
) -> tuple[Exceedance, ...]:
    hit = np.flatnonzero(loss > requirement)
    return tuple(
        Exceedance(date=dates[i], loss=float(loss[i]), requirement=float(requirement[i]))
        for i in hit
    )


def summarize(series: BookSeries, *, coverage: float = 0.99, alpha: float = 0.05) -> BookSummary:
    """Exceedances, Kupiec POF at ``coverage``, worst day, crash days, cost of the margin."""
    n = int(series.dates.size)
    if n == 0:
        raise ValueError(f"{series.book}/{series.underlying}: no backtest days")
    if np.any(series.im <= 0.0):
        bad = series.dates[int(np.argmax(series.im <= 0.0))]
        raise ValueError(f"{series.book}/{series.underlying}: IM <= 0 on {bad}")
    im_exc = _exceedances(series.dates, series.loss, series.im)
    mm_exc = _exceedances(series.dates, series.loss, series.mm)
    ratio = series.loss / series.im
    w = int(np.argmax(ratio))
    worst = Exceedance(
        date=series.dates[w], loss=float(series.loss[w]), requirement=float(series.im[w])
    )
    crash: list[CrashDay] = []
    for day in CRASH_DAYS:
        opened = day - np.timedelta64(series.horizon_days, "D")
        idx = np.flatnonzero(series.dates == opened)
        if idx.size:
            i = int(idx[0])
            crash.append(
                CrashDay(
                    date=day,
                    loss=float(series.loss[i]),
                    im=float(series.im[i]),
                    mm=float(series.mm[i]),
                )
            )
    return BookSummary(
        book=series.book,
        underlying=series.underlying,
        n_days=n,
        first_date=series.dates[0],
        last_date=series.dates[-1],
        im_exceedances=im_exc,
        mm_exceedances=mm_exc,
        worst=worst,
        kupiec=kupiec_pof(len(im_exc), n, coverage=coverage, alpha=alpha),
        mean_im_over_gross=float(np.mean(series.im / series.gross_notional)),
        mean_mm_over_gross=float(np.mean(series.mm / series.gross_notional)),
        days_dvol=int(np.count_nonzero(series.vol_source == SOURCE_DVOL)),
        days_realized=int(np.count_nonzero(series.vol_source == SOURCE_REALIZED)),
        crash_days=tuple(crash),
    )
