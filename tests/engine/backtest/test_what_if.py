"""Crash-day cover search and parameter variants."""

from pathlib import Path

import numpy as np
import pytest

from risk_engine import load_params
from risk_engine.backtest.data import load_market_history
from risk_engine.backtest.replay import book_groups, margin_group_day, run_backtest
from risk_engine.backtest.what_if import (
    TOLERANCE,
    crash_covers,
    with_credit_factor,
    with_range_scale,
    with_scan_range,
)

PARAMS = load_params()


def test_with_scan_range_setsFloorAndRaisesCap() -> None:
    before = PARAMS.underlying("SOL").scan_range
    p = with_scan_range(PARAMS, ("SOL",), 0.9)
    assert p.underlying("SOL").scan_range == 0.9
    assert p.scan.max_range == 0.9
    assert p.underlying("BTC") == PARAMS.underlying("BTC")
    assert PARAMS.underlying("SOL").scan_range == before < 0.9  # the default is untouched


def test_with_range_scale_scalesFloorsAndVolMultiple() -> None:
    p = with_range_scale(PARAMS, 0.5)
    floor = PARAMS.underlying("BTC").scan_range
    assert p.underlying("BTC").scan_range == pytest.approx(0.5 * floor)
    assert p.scan.range_vol_multiple == pytest.approx(0.5 * PARAMS.scan.range_vol_multiple)
    assert with_credit_factor(PARAMS, 0.1).correlation.credit_factor == 0.1


def test_crash_covers_neededValueIsTheSmallestThatCovers(data_dir: Path) -> None:
    history = load_market_history(data_dir)
    result = run_backtest(history, PARAMS)
    covers = crash_covers(history, PARAMS, result)
    assert covers, "the synthetic -40 % day must break MM somewhere"
    cal, h, cfg = result.calendar, result.horizon_days, result.config
    groups = dict(book_groups(cfg, cal.underlyings))
    seen_needed = False
    for cover in covers:
        assert cover.date == np.datetime64("2021-05-19")
        group = tuple(cover.group.split("/"))
        t = int(np.flatnonzero(cal.dates == cover.date - 1)[0])
        names = [b for b, _, _ in cover.breaches]
        make = (
            (lambda v, g=group: with_scan_range(PARAMS, g, v))
            if len(group) == 1
            else (lambda v: with_credit_factor(PARAMS, v))
        )
        step = 2 * TOLERANCE if len(group) == 1 else -2 * TOLERANCE

        def mm_covers(
            value: float,
            group: tuple[str, ...] = group,
            names: list[str] = names,
            make=make,
            t: int = t,
        ) -> bool:
            day = margin_group_day(cal, t, group, groups[group], make(value), h, cfg.history_days)
            idx = [i for i, b in enumerate(day.books) if b.name in names]
            return bool(np.all(day.margin.mm[idx] >= day.loss[idx]))

        assert not mm_covers(cover.default)
        if cover.needed is None:
            assert cover.cost_needed is None
            assert not mm_covers(cover.searched_to)  # not even at the end of the search
            continue
        assert mm_covers(cover.needed)
        assert not mm_covers(cover.needed - step)
        assert cover.cost_needed is not None and cover.cost_needed > cover.cost_default
        seen_needed = True
    assert seen_needed
