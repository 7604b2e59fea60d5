"""Calibrate the scan-range floors and the anti-procyclicality buffer: cost vs coverage.

The grid scales the per-underlying scan-range floors of the replayed underlyings by
``range_scale`` (relative to ``REFERENCE_FLOORS``, the floors before the buffer existed)
and sets ``apc.buffer``; every other parameter is the file's. Each point replays the
days (every ``SAMPLE_DAYS``-th, to keep the scan to minutes) and rescales the intraday
windows of those days (the losses do not depend on the parameters, ``intraday.remargin``).

A point is acceptable when

- the intraday IM coverage is at least ``TARGET_COVERAGE`` in every series,
- no series has a higher mean IM / gross notional than at the reference point (the
  reference floors, no buffer: the margin before this rule),
- ``apc.buffer >= EMIR_MIN_BUFFER`` (EMIR RTS 153/2013 art. 28(1)(a): at least 25 %),

and the chosen point (:func:`choose`) is the acceptable one with the HIGHEST lowest
intraday coverage, the cheaper on a tie: the most coverage the reference's cost buys. The
cheapest acceptable point is not chosen because it sits on the 99 % boundary by
construction (the next cheaper point fails), so sampling noise in the every-4th-day replay
flips it, and its smaller ranges leave MM below the 2022 crash moves close-to-close
(docs/calibration.md). The table prints every point, so an operator may still pick a
cheaper acceptable one. :func:`crash_explanations` then names, for every crash day
whose worst window broke IM at the chosen point, the range that day (floor, vol term,
buffer) and the floor that would have covered it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from types import MappingProxyType

import numpy as np

from risk_engine import RiskParams
from risk_engine.backtest.data import MarketHistory
from risk_engine.backtest.intraday import (
    IntradaySeries,
    IntradaySummary,
    remargin,
)
from risk_engine.backtest.replay import (
    BacktestConfig,
    BacktestResult,
    book_groups,
    day_market,
    margin_group_day,
    run_backtest,
)
from risk_engine.backtest.what_if import MAX_SCAN_RANGE, bisect_cover, with_scan_range
from risk_engine.books import BookSpec
from risk_engine.correlation import ewma_volatility
from risk_engine.params import AntiProcyclicalityParams
from risk_engine.scenarios import apc_buffer_factor

__all__ = [
    "Calibration",
    "CrashExplanation",
    "GridPoint",
    "calibrate",
    "choose",
    "crash_explanations",
    "with_ranges_and_buffer",
]

# the ranges before the buffer (docs/backtest.md): the grid and the cost anchor scale these
REFERENCE_FLOORS: dict[str, float] = {"BTC": 0.17, "ETH": 0.18, "SOL": 0.24}
REFERENCE_VOL_MULTIPLE = 4.5
RANGE_SCALES: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 1.0)
BUFFERS: tuple[float, ...] = (0.0, 0.25, 0.5)
SAMPLE_DAYS = 4
TARGET_COVERAGE = 0.99
EMIR_MIN_BUFFER = 0.25


def with_ranges_and_buffer(params: RiskParams, range_scale: float, buffer: float) -> RiskParams:
    """``REFERENCE_FLOORS`` and ``REFERENCE_VOL_MULTIPLE`` x ``range_scale``, and
    ``apc.buffer = buffer`` (every other key as in ``params``)."""
    unders = dict(params.underlyings)
    for u, floor in REFERENCE_FLOORS.items():
        if u in unders:
            unders[u] = replace(unders[u], scan_range=min(MAX_SCAN_RANGE, floor * range_scale))
    scan = replace(params.scan, range_vol_multiple=REFERENCE_VOL_MULTIPLE * range_scale)
    apc = AntiProcyclicalityParams(buffer=buffer, stress_ratio=params.apc.stress_ratio)
    return replace(params, scan=scan, underlyings=MappingProxyType(unders), apc=apc)


@dataclass(frozen=True)
class GridPoint:
    """One point of the scan.

    Attributes
    ----------
    range_scale, buffer : float
    coverage : tuple of (series label, intraday IM coverage)
    close_coverage : tuple of (series label, close-to-close IM coverage)
    cost : tuple of (series label, mean IM / gross notional)
    cost_ratio : float
        Mean over series of IM/gross relative to the reference point.
    max_cost_ratio : float
        The largest such ratio over series.
    """

    range_scale: float
    buffer: float
    coverage: tuple[tuple[str, float], ...]
    close_coverage: tuple[tuple[str, float], ...]
    cost: tuple[tuple[str, float], ...]
    cost_ratio: float
    max_cost_ratio: float

    @property
    def min_coverage(self) -> tuple[str, float]:
        return min(self.coverage, key=lambda kv: kv[1])

    @property
    def min_close_coverage(self) -> tuple[str, float]:
        return min(self.close_coverage, key=lambda kv: kv[1])

    def acceptable(self) -> bool:
        return (
            self.min_coverage[1] >= TARGET_COVERAGE
            and self.max_cost_ratio <= 1.0 + 1e-9
            and self.buffer >= EMIR_MIN_BUFFER
        )


def choose(points: Sequence[GridPoint]) -> GridPoint | None:
    """The acceptable point with the highest lowest intraday coverage; on a tie the lower
    mean cost ratio. None when no point is acceptable.

    Not the cheapest acceptable point: that one sits on the coverage boundary (a cheaper
    point fails), so it flips with the sampled days; every acceptable point costs no more
    than the reference in any series, so the extra coverage comes at no extra cost.
    """
    ok = [p for p in points if p.acceptable()]
    if not ok:
        return None
    return min(ok, key=lambda p: (-p.min_coverage[1], p.cost_ratio))


@dataclass(frozen=True)
class Calibration:
    points: tuple[GridPoint, ...]
    reference: GridPoint
    chosen: GridPoint | None
    sample_days: int


def _label(book: str, underlying: str) -> str:
    return f"{underlying} {book}"


def _point(
    range_scale: float,
    buffer: float,
    result: BacktestResult,
    windows: Sequence[IntradaySeries],
    reference_cost: dict[str, float] | None,
) -> GridPoint:
    rescaled = remargin(windows, result.series)
    coverage = tuple(
        (_label(s.book, s.underlying), 1.0 - float(np.mean(s.loss > s.im))) for s in rescaled
    )
    close = tuple(
        (_label(s.book, s.underlying), 1.0 - float(np.mean(s.loss > s.im))) for s in result.series
    )
    cost = tuple(
        (_label(s.book, s.underlying), float(np.mean(s.im / s.gross_notional)))
        for s in result.series
    )
    ref = reference_cost or dict(cost)
    ratios = [c / ref[k] for k, c in cost]
    return GridPoint(
        range_scale=range_scale,
        buffer=buffer,
        coverage=coverage,
        close_coverage=close,
        cost=cost,
        cost_ratio=float(np.mean(ratios)),
        max_cost_ratio=float(np.max(ratios)),
    )


def calibrate(
    history: MarketHistory,
    params: RiskParams,
    windows: Sequence[IntradaySeries],
    *,
    range_scales: Sequence[float] = RANGE_SCALES,
    buffers: Sequence[float] = BUFFERS,
    sample_days: int = SAMPLE_DAYS,
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """Scan ``range_scales`` x ``buffers``; ``windows`` from :func:`intraday.intraday_series`."""
    config = BacktestConfig(every_days=sample_days)

    def run(scale: float, buffer: float, ref: dict[str, float] | None) -> GridPoint:
        result = run_backtest(history, with_ranges_and_buffer(params, scale, buffer), config)
        if progress is not None:
            progress(f"ranges x{scale:g}, buffer {buffer:g}")
        return _point(scale, buffer, result, windows, ref)

    reference = run(1.0, 0.0, None)
    ref_cost = dict(reference.cost)
    points = [
        reference if (s, b) == (1.0, 0.0) else run(s, b, ref_cost)
        for b in buffers
        for s in range_scales
    ]
    return Calibration(tuple(points), reference, choose(points), sample_days)


@dataclass(frozen=True)
class CrashExplanation:
    """A crash day whose worst intraday window broke IM, and what set the range.

    Attributes
    ----------
    date : datetime64[D]
    series : str
    loss, im : float
        USD per book, the worst window holding part of the day.
    floor, vol_term, buffer_factor, range : float
        The range of the opening day: ``min(max_range, max(floor, vol_term) * buffer_factor)``.
    parameter : str
        The TOML key that would cover it.
    needed : float or None
        Its smallest value (bisection) for which IM covers the loss; None if none in range.
    """

    date: np.datetime64
    series: str
    loss: float
    im: float
    floor: float
    vol_term: float
    buffer_factor: float
    range: float
    parameter: str
    needed: float | None


def _im_with_floor(
    params: RiskParams,
    result: BacktestResult,
    t: int,
    underlying: str,
    specs: tuple[BookSpec, ...],
    floor: float,
) -> float:
    """IM (USD) of the one book in ``specs`` opened at day ``t`` with the floor set."""
    p = with_scan_range(params, (underlying,), floor)
    day = margin_group_day(
        result.calendar,
        t,
        (underlying,),
        specs,
        p,
        result.horizon_days,
        result.config.history_days,
    )
    return float(day.margin.im[0])


def crash_explanations(
    params: RiskParams, result: BacktestResult, summaries: Sequence[IntradaySummary]
) -> list[CrashExplanation]:
    """For each single-underlying crash-day IM break at ``params``: the range of the day
    and the floor ``underlying.<U>.scan_range`` that would have covered it (bisection)."""
    cal = result.calendar
    specs_of = {g[0]: s for g, s in book_groups(result.config, cal.underlyings) if len(g) == 1}
    out: list[CrashExplanation] = []
    for summary in summaries:
        u = summary.underlying
        if u not in specs_of:
            continue
        specs = tuple(s for s in specs_of[u] if s.name == summary.book)
        for crash in summary.crash_days:
            if crash.loss <= crash.im:
                continue
            opened = crash.start.astype("datetime64[D]") - np.timedelta64(1, "D")
            t = int(np.flatnonzero(cal.dates == opened)[0])
            market = day_market(cal, t, (u,), params, result.config.history_days)
            vol = ewma_volatility(market.returns, params.correlation.ewma_lambda)
            long_vol = np.sqrt(np.mean(market.returns * market.returns, axis=0))
            factor = float(apc_buffer_factor(vol, long_vol, params.apc)[0])
            vol_term = float(params.scan.range_vol_multiple * vol[0] * np.sqrt(params.horizon_days))
            floor = params.underlying(u).scan_range
            # the window's IM is the day's IM scaled to the window's start price
            scale = crash.im / _im_with_floor(params, result, t, u, specs, floor)
            im_at = partial(_im_with_floor, params, result, t, u, specs)
            loss = crash.loss

            def covers(
                value: float,
                im_at: Callable[[float], float] = im_at,
                scale: float = scale,
                loss: float = loss,
            ) -> bool:
                return im_at(value) * scale >= loss

            needed = bisect_cover(covers, MAX_SCAN_RANGE, floor) if covers(MAX_SCAN_RANGE) else None
            out.append(
                CrashExplanation(
                    date=crash.date,
                    series=_label(summary.book, u),
                    loss=crash.loss,
                    im=crash.im,
                    floor=floor,
                    vol_term=vol_term,
                    buffer_factor=factor,
                    range=min(params.scan.max_range, max(floor, vol_term) * factor),
                    parameter=f"underlying.{u}.scan_range",
                    needed=needed,
                )
            )
    return out
