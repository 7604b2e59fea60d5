"""What a parameter change would have bought: crash-day cover and range sensitivity.

Both rerun the same replay with a modified copy of the parameters (``dataclasses.replace``
on the frozen ``RiskParams``); nothing here changes the defaults.

- :func:`crash_covers`: for each crash day on which a book's loss broke its MM, the
  smallest change of one parameter that would have made MM cover every such book of
  that group that day (bisection; MM is monotone in the parameter), and the capital it
  costs: mean IM / gross notional of the group's books over the whole history, before
  and after (both on every ``COST_SAMPLE_DAYS``-th day, to keep the rerun short).
  Single underlying: ``underlying.<U>.scan_range`` (the floor of the price
  scan range). Pair: ``correlation.credit_factor`` (less offset credit).
- :func:`range_sensitivity`: every scan range (per-underlying floors and the vol
  multiple) scaled by a factor, to show what coverage costs per point of IM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np

from risk_engine import RiskParams
from risk_engine.backtest.data import MarketHistory
from risk_engine.backtest.replay import (
    BacktestConfig,
    BacktestResult,
    book_groups,
    margin_group_day,
    run_backtest,
)
from risk_engine.backtest.results import CRASH_DAYS, BookSeries
from risk_engine.books import BookSpec

__all__ = [
    "CrashCover",
    "bisect_cover",
    "Sensitivity",
    "crash_covers",
    "range_sensitivity",
    "with_credit_factor",
    "with_range_scale",
    "with_scan_range",
]

MAX_SCAN_RANGE = 0.95  # a scan range beyond the largest scenario fall the engine allows
TOLERANCE = 0.0025  # bisection stops when the bracket is this narrow (parameter units)
COST_SAMPLE_DAYS = 3  # the capital-cost rerun margins every 3rd day: a mean, not a count


def with_scan_range(params: RiskParams, underlyings: Sequence[str], value: float) -> RiskParams:
    """``underlying.<U>.scan_range = value`` for ``underlyings`` (cap raised if needed)."""
    unders = dict(params.underlyings)
    for u in underlyings:
        unders[u] = replace(params.underlying(u), scan_range=value)
    scan = replace(params.scan, max_range=max(params.scan.max_range, value))
    return replace(params, scan=scan, underlyings=MappingProxyType(unders))


def with_credit_factor(params: RiskParams, value: float) -> RiskParams:
    """``correlation.credit_factor = value``."""
    return replace(params, correlation=replace(params.correlation, credit_factor=value))


def with_range_scale(params: RiskParams, factor: float) -> RiskParams:
    """Every scan-range floor and ``scan.range_vol_multiple`` multiplied by ``factor``."""
    unders = {
        u: replace(p, scan_range=min(MAX_SCAN_RANGE, p.scan_range * factor))
        for u, p in params.underlyings.items()
    }
    scan = replace(params.scan, range_vol_multiple=params.scan.range_vol_multiple * factor)
    return replace(params, scan=scan, underlyings=MappingProxyType(unders))


@dataclass(frozen=True)
class CrashCover:
    """A crash day that broke MM in a group, and the parameter that would have covered it.

    Attributes
    ----------
    breaches : tuple of (book, loss, mm)
        USD per book, the books whose loss exceeded MM.
    parameter : str
        TOML key of the knob.
    default, needed : float
        ``needed`` is None when no value in the searched interval covers the day.
    cost_default, cost_needed : float
        Mean IM / gross notional of the group's books over all days, with the default and
        with the needed value.
    """

    date: np.datetime64
    group: str
    breaches: tuple[tuple[str, float, float], ...]
    parameter: str
    default: float
    needed: float | None
    searched_to: float
    cost_default: float
    cost_needed: float | None


def _mean_im_over_gross(series: Sequence[BookSeries], every_days: int) -> float:
    """Mean over books of the mean IM/gross on the days the replay with ``every_days`` keeps."""
    means = []
    for s in series:
        keep = s.dates.astype(np.int64) % every_days == 0
        means.append(np.mean(s.im[keep] / s.gross_notional[keep]))
    return float(np.mean(means))


def bisect_cover(covers: Callable[[float], bool], good: float, bad: float) -> float:
    """Smallest change from ``bad`` toward ``good`` that covers (``covers(good)`` holds)."""
    while abs(good - bad) > TOLERANCE:
        mid = 0.5 * (good + bad)
        if covers(mid):
            good = mid
        else:
            bad = mid
    return good


def _knob(
    params: RiskParams, group: tuple[str, ...]
) -> tuple[str, float, float, Callable[[float], RiskParams]]:
    """(TOML key, default, end of the search, params with the key set) for a group."""
    if len(group) == 1:

        def with_range(value: float) -> RiskParams:
            return with_scan_range(params, group, value)

        return (
            f"underlying.{group[0]}.scan_range",
            params.underlying(group[0]).scan_range,
            MAX_SCAN_RANGE,
            with_range,
        )

    def with_credit(value: float) -> RiskParams:
        return with_credit_factor(params, value)

    return "correlation.credit_factor", params.correlation.credit_factor, 0.0, with_credit


def _cover_day(
    history: MarketHistory,
    params: RiskParams,
    result: BacktestResult,
    group: tuple[str, ...],
    specs: tuple[BookSpec, ...],
    t: int,
) -> CrashCover | None:
    cal, h, config = result.calendar, result.horizon_days, result.config
    base = margin_group_day(cal, t, group, specs, params, h, config.history_days)
    broken = np.flatnonzero(base.loss > base.margin.mm)
    if not broken.size:
        return None
    loss = base.loss[broken]

    def covers(p: RiskParams) -> bool:
        day = margin_group_day(cal, t, group, specs, p, h, config.history_days)
        return bool(np.all(day.margin.mm[broken] >= loss))

    key, default, end, make = _knob(params, group)
    label = "/".join(group)
    needed: float | None = None
    cost_needed: float | None = None
    if covers(make(end)):
        needed = bisect_cover(lambda v: covers(make(v)), end, default)
        rerun = run_backtest(
            history,
            make(needed),
            replace(
                config,
                underlyings=group,
                books=tuple(s.name for s in specs),
                every_days=COST_SAMPLE_DAYS,
            ),
        )
        cost_needed = _mean_im_over_gross(
            [s for s in rerun.series if s.underlying == label], COST_SAMPLE_DAYS
        )
    return CrashCover(
        date=cal.dates[t] + np.timedelta64(h, "D"),
        group=label,
        breaches=tuple(
            (base.books[i].name, float(base.loss[i]), float(base.margin.mm[i]))
            for i in broken.tolist()
        ),
        parameter=key,
        default=default,
        needed=needed,
        searched_to=end,
        cost_default=_mean_im_over_gross(
            [s for s in result.series if s.underlying == label], COST_SAMPLE_DAYS
        ),
        cost_needed=cost_needed,
    )


def crash_covers(
    history: MarketHistory, params: RiskParams, result: BacktestResult
) -> list[CrashCover]:
    """See the module docstring. ``result`` must come from ``run_backtest(history, params)``."""
    cal, h = result.calendar, result.horizon_days
    out: list[CrashCover] = []
    for group, specs in book_groups(result.config, cal.underlyings):
        label = "/".join(group)
        group_series = [s for s in result.series if s.underlying == label]
        for day in CRASH_DAYS:
            opened = day - np.timedelta64(h, "D")
            # only days the replay itself margined (closes, vols and history present)
            if not group_series or not all(np.any(s.dates == opened) for s in group_series):
                continue
            t = int(np.flatnonzero(cal.dates == opened)[0])
            cover = _cover_day(history, params, result, group, specs, t)
            if cover is not None:
                out.append(cover)
    return out


@dataclass(frozen=True)
class Sensitivity:
    """The backtest rerun with every scan range scaled by ``factor``."""

    factor: float
    series: tuple[BookSeries, ...]


def range_sensitivity(
    history: MarketHistory,
    params: RiskParams,
    factors: Sequence[float],
    config: BacktestConfig | None = None,
) -> list[Sensitivity]:
    """Rerun the backtest once per factor (see :func:`with_range_scale`)."""
    return [
        Sensitivity(f, run_backtest(history, with_range_scale(params, f), config).series)
        for f in factors
    ]
