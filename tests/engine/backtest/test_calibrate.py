"""Calibration grid: parameter variants, acceptance, and the printed tables' structure."""

from __future__ import annotations

import numpy as np
import pytest

from risk_engine import load_params
from risk_engine.backtest.calibrate import (
    EMIR_MIN_BUFFER,
    REFERENCE_FLOORS,
    REFERENCE_VOL_MULTIPLE,
    Calibration,
    CrashExplanation,
    GridPoint,
    choose,
    with_ranges_and_buffer,
)
from risk_engine.backtest.report import (
    calibration_series_table,
    calibration_table,
    crash_explanation_table,
)

PARAMS = load_params()


def _point(scale: float, buffer: float, coverage: float, cost: float) -> GridPoint:
    series = ("BTC covered_call", "SOL naked_short_put")
    return GridPoint(
        range_scale=scale,
        buffer=buffer,
        coverage=tuple((s, coverage) for s in series),
        close_coverage=tuple((s, 1.0) for s in series),
        cost=tuple((s, 0.1 * cost) for s in series),
        cost_ratio=cost,
        max_cost_ratio=cost,
    )


def _columns(row: str) -> int:
    return row.count("|") - 1


def test_with_ranges_and_buffer_scales_reference_floors_and_vol_multiple() -> None:
    p = with_ranges_and_buffer(PARAMS, 0.6, 0.25)
    for u, floor in REFERENCE_FLOORS.items():
        assert p.underlying(u).scan_range == pytest.approx(0.6 * floor)
    assert p.scan.range_vol_multiple == pytest.approx(0.6 * REFERENCE_VOL_MULTIPLE)
    assert p.apc.buffer == 0.25
    assert p.apc.stress_ratio == PARAMS.apc.stress_ratio
    assert p.underlying("GOV") == PARAMS.underlying("GOV")


@pytest.mark.parametrize(
    ("coverage", "cost", "buffer", "ok"),
    [
        (0.995, 0.9, 0.25, True),
        (0.989, 0.9, 0.25, False),  # coverage below 99 %
        (0.995, 1.01, 0.25, False),  # dearer than the reference
        (0.995, 0.9, 0.0, False),  # below the EMIR minimum buffer
    ],
)
def test_a_point_is_acceptable_only_with_coverage_cost_and_buffer(
    coverage: float, cost: float, buffer: float, ok: bool
) -> None:
    assert _point(0.7, buffer, coverage, cost).acceptable() is ok
    assert EMIR_MIN_BUFFER == 0.25


def test_choose_takes_the_most_coverage_not_the_cheapest_acceptable_point() -> None:
    # the cheapest acceptable point sits on the 99 % boundary; the dearer one still costs
    # no more than the reference in any series, and covers more
    boundary = _point(0.5, 0.25, 0.9900, 0.78)
    most = _point(0.8, 0.25, 0.9935, 0.99)
    dearer_than_reference = _point(1.0, 0.25, 0.9961, 1.13)
    no_buffer = _point(1.0, 0.0, 0.9970, 1.0)
    assert choose([boundary, most, dearer_than_reference, no_buffer]) is most


def test_choose_breaks_a_coverage_tie_by_the_lower_cost() -> None:
    dear = _point(0.8, 0.5, 0.994, 0.98)
    cheap = _point(0.6, 0.25, 0.994, 0.85)
    assert choose([dear, cheap]) is cheap


def test_choose_returns_none_without_an_acceptable_point() -> None:
    assert choose([_point(0.5, 0.0, 0.995, 0.7), _point(0.5, 0.25, 0.98, 0.8)]) is None


def test_calibration_tables_have_a_row_per_point_and_consistent_columns() -> None:
    ref = _point(1.0, 0.0, 0.995, 1.0)
    chosen = _point(0.6, 0.25, 0.993, 0.9)
    cal = Calibration((ref, _point(0.6, 0.0, 0.99, 0.8), chosen), ref, chosen, 4)
    table = calibration_table(cal).splitlines()
    assert len(table) == 2 + 3
    assert len({_columns(r) for r in table}) == 1
    assert sum("**chosen**" in r for r in table) == 1
    assert sum("(reference)" in r for r in table) == 1
    series = calibration_series_table(cal).splitlines()
    assert len(series) == 2 + 2
    assert "10.00% -> 9.00% (-10.0%)" in series[2]
    assert len({_columns(r) for r in series}) == 1


def test_crash_explanation_table_names_the_parameter_and_the_value_needed() -> None:
    e = CrashExplanation(
        date=np.datetime64("2022-11-09"),
        series="SOL naked_short_put",
        loss=9.0,
        im=6.0,
        floor=0.144,
        vol_term=0.2,
        buffer_factor=1.0,
        range=0.2,
        parameter="underlying.SOL.scan_range",
        needed=0.31,
    )
    rows = crash_explanation_table([e]).splitlines()
    assert len(rows) == 3
    assert "`underlying.SOL.scan_range` | 0.310" in rows[2]
    assert "= 1.50" in rows[2]
    assert len({_columns(r) for r in rows}) == 1
    assert "(none)" in crash_explanation_table([])
