"""Summaries of a hand-made series: exceedances, worst day, crash days, guards."""

import numpy as np
import pytest

from risk_engine.backtest.report import (
    crash_table,
    exceedance_table,
    summary_table,
    target_failures,
)
from risk_engine.backtest.results import BookSeries, summarize
from risk_engine.backtest.vol import SOURCE_DVOL, SOURCE_REALIZED


def _series(loss: list[float], im: list[float] | None = None) -> BookSeries:
    n = len(loss)
    dates = np.arange(np.datetime64("2021-05-15"), np.datetime64("2021-05-15") + n)
    im_arr = np.array(im if im is not None else [10.0] * n)
    return BookSeries(
        book="b",
        underlying="BTC",
        horizon_days=1,
        dates=dates,
        loss=np.array(loss),
        im=im_arr,
        mm=0.8 * im_arr,
        gross_notional=np.full(n, 100.0),
        vol_source=np.array([SOURCE_DVOL] * (n - 1) + [SOURCE_REALIZED], dtype=np.int8),
    )


def test_summarize_countsExceedancesAndCrashDay() -> None:
    # opened 2021-05-18 (index 3): its loss is the 2021-05-19 crash day
    s = summarize(_series([1.0, 9.0, -5.0, 30.0, 8.5, 2.0]))
    assert s.n_days == 6
    assert [str(e.date) for e in s.im_exceedances] == ["2021-05-18"]
    assert s.im_exceedances[0].excess == pytest.approx(20.0)
    assert [str(e.date) for e in s.mm_exceedances] == ["2021-05-16", "2021-05-18", "2021-05-19"]
    assert s.worst.multiple == pytest.approx(3.0)
    assert s.im_coverage == pytest.approx(5 / 6)
    assert s.mean_im_over_gross == pytest.approx(0.1)
    assert (s.days_dvol, s.days_realized) == (5, 1)
    (crash,) = s.crash_days
    assert str(crash.date) == "2021-05-19" and crash.loss == 30.0 and crash.mm == 8.0
    assert s.kupiec.n_exceedances == 1


def test_report_tablesNameEveryBreach() -> None:
    s = summarize(_series([1.0, 9.0, -5.0, 30.0, 8.5, 2.0]))
    assert "| BTC | b | 6 (2021-05-15..2021-05-20)" in summary_table([s])
    assert "2021-05-18 | 30.00 | 10.00 | 20.00 | 3.00" in exceedance_table([s])
    assert "| 2021-05-19 | BTC | b | 30.00 | 10.00 | 8.00 | 3.00 | 3.75 | 22.00 |" in crash_table(
        [s]
    )
    failures = target_failures([s])
    assert failures and "coverage" in failures[0]


def test_target_failures_emptyWhenCovered() -> None:
    s = summarize(_series([1.0] * 200))
    assert target_failures([s]) == []
    assert "(none)" in exceedance_table([s])


def test_summarize_revertsWhenImNotPositive() -> None:
    with pytest.raises(ValueError, match="IM <= 0"):
        summarize(_series([1.0, 2.0], im=[1.0, 0.0]))


def test_summarize_revertsWhenEmpty() -> None:
    with pytest.raises(ValueError, match="no backtest days"):
        summarize(_series([]))
