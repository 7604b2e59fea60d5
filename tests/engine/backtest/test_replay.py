"""The replay on a small synthetic directory: end to end, no look-ahead, losses, margins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import vollib.black as vb

from risk_engine import (
    InstrumentTable,
    MarketSnapshot,
    Portfolios,
    VolSurface,
    compute_margin,
    load_params,
)
from risk_engine.backtest.__main__ import main
from risk_engine.backtest.data import load_market_history
from risk_engine.backtest.replay import BacktestConfig, build_calendar, run_backtest
from risk_engine.backtest.results import BookSeries
from risk_engine.backtest.vol import SOURCE_DVOL, VolRule

from ..conftest import CRASH, write_data_dir

PARAMS = load_params()


def _by_key(series: Sequence[BookSeries]) -> dict[tuple[str, str], BookSeries]:
    return {(s.book, s.underlying): s for s in series}


def test_run_backtest_coversEveryBookAndUnderlying(data_dir: Path) -> None:
    result = run_backtest(load_market_history(data_dir), PARAMS)
    keys = set(_by_key(result.series))
    singles = {
        "covered_call",
        "short_straddle_hedged",
        "calendar_spread",
        "cash_and_carry",
        "naked_short_put",
        "naked_long_call",
    }
    expected = {(b, u) for b in singles for u in ("BTC", "ETH", "SOL")} | {("pair", "BTC/ETH")}
    assert keys == expected
    for s in result.series:
        # first opening day: 30 returns for the realized vol, last: one day before the end
        assert s.dates[0] == np.datetime64("2021-03-31")
        assert s.dates[-1] == np.datetime64("2021-06-27")
        assert np.all(s.im > s.mm) and np.all(s.mm > 0)
    btc = _by_key(result.series)[("naked_short_put", "BTC")]
    assert np.any(btc.vol_source == SOURCE_DVOL)


def test_run_backtest_noLookAhead(tmp_path: Path) -> None:
    cut = np.datetime64("2021-05-01")
    base = run_backtest(load_market_history(write_data_dir(tmp_path / "a")), PARAMS)
    moved = run_backtest(
        load_market_history(write_data_dir(tmp_path / "b", perturb_from=cut)), PARAMS
    )
    a, b = _by_key(base.series), _by_key(moved.series)
    changed_future = False
    for key, s in a.items():
        o = b[key]
        past = s.dates < cut  # margined with data up to the day before the cut
        np.testing.assert_array_equal(s.im[past], o.im[past])
        np.testing.assert_array_equal(s.mm[past], o.mm[past])
        known_loss = s.dates + 1 < cut  # loss also needs the next close
        np.testing.assert_array_equal(s.loss[known_loss], o.loss[known_loss])
        changed_future |= not np.array_equal(s.im[~past], o.im[~past])
    assert changed_future  # the perturbation did reach the later days


def test_run_backtest_lossMatchesIndependentBlack(data_dir: Path) -> None:
    history = load_market_history(data_dir)
    result = run_backtest(history, PARAMS)
    cal = build_calendar(history, ("BTC", "ETH", "SOL"), VolRule())
    s = _by_key(result.series)[("naked_long_call", "ETH")]
    i = 20
    t = int(np.flatnonzero(cal.dates == s.dates[i])[0])
    j = cal.column("ETH")
    s0, s1 = cal.close[t, j], cal.close[t + 1, j]
    v0, v1 = cal.vol[t, j], cal.vol[t + 1, j]
    before = vb.black("c", s0, s0, 30 / 365, 0.0, v0)
    after = vb.black("c", s1, s0, 29 / 365, 0.0, v1)
    assert s.loss[i] == pytest.approx(before - after, rel=1e-9, abs=1e-9)
    carry = _by_key(result.series)[("cash_and_carry", "SOL")]
    assert np.all(carry.loss == 0.0)  # perp mark = spot: the hedge is exact in this data


def test_run_backtest_marginMatchesDirectEngineCall(data_dir: Path) -> None:
    history = load_market_history(data_dir)
    result = run_backtest(history, PARAMS)
    cal = result.calendar
    s = _by_key(result.series)[("naked_short_put", "SOL")]
    i = 10
    t = int(np.flatnonzero(cal.dates == s.dates[i])[0])
    j = cal.column("SOL")
    spot = cal.close[t, j]
    ts = int((cal.dates[t] + 1).astype("datetime64[s]").astype(np.int64))
    expiry = ts + 30 * 86400
    instruments = InstrumentTable.build([2], ["SOL"], [0.9 * spot], [expiry])
    surface = VolSurface(
        ("SOL",),
        np.array([expiry]),
        np.array([spot]),
        np.array([cal.vol[t, j]]),
        np.zeros(1),
        np.zeros(1),
    )
    returns = cal.log_return[t - min(250, cal.run[t, j]) + 1 : t + 1, [j]]
    market = MarketSnapshot(
        ts,
        ("SOL",),
        np.array([spot]),
        np.array([spot]),
        0.0,
        surface,
        np.ascontiguousarray(returns),
    )
    direct = compute_margin(Portfolios.from_dense(instruments, [[-1.0]], [0.0]), market, PARAMS)
    assert s.im[i] == pytest.approx(direct.im[0], rel=1e-12)
    assert s.mm[i] == pytest.approx(direct.mm[0], rel=1e-12)


def test_run_backtest_revertsWhenHorizonNotWholeDays(data_dir: Path) -> None:
    params = replace(PARAMS, horizon_days=1.5)
    with pytest.raises(ValueError, match="horizon_days"):
        run_backtest(load_market_history(data_dir), params)


def test_run_backtest_twoDayHorizon(data_dir: Path) -> None:
    params = replace(PARAMS, horizon_days=2.0)
    result = run_backtest(
        load_market_history(data_dir), params, BacktestConfig(books=("cash_and_carry",))
    )
    assert all(
        s.horizon_days == 2 and s.dates[-1] == np.datetime64("2021-06-26") for s in result.series
    )


def test_BacktestConfig_revertsWhenBadField() -> None:
    with pytest.raises(ValueError, match="books"):
        BacktestConfig(books=("iron_condor",))
    with pytest.raises(ValueError, match="history_days"):
        BacktestConfig(history_days=1)


def test_build_calendar_revertsWhenUnderlyingUnknown(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="DOGE"):
        build_calendar(load_market_history(data_dir), ("DOGE",), VolRule())


def test_main_writesReportAndPlots(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "out" / "backtest.md"
    img = tmp_path / "out" / "img"
    code = main(
        [
            "--data",
            str(data_dir),
            "--report",
            str(report),
            "--plots",
            str(img),
            "--sensitivity",
            "0.5",
        ]
    )
    assert code == 0
    text = report.read_text()
    assert text == capsys.readouterr().out
    assert "| BTC/ETH | pair |" in text and "| SOL | naked_long_call |" in text
    assert f"| {CRASH} | SOL | naked_short_put |" in text
    assert "ranges x0.5" in text
    # the synthetic -40 % day breaks MM somewhere, and the cover table says what fixes it
    assert "`underlying.SOL.scan_range`" in text
    assert sorted(p.name for p in img.iterdir()) == [
        "backtest-BTC-ETH.png",
        "backtest-BTC.png",
        "backtest-ETH.png",
        "backtest-SOL.png",
    ]


def test_run_backtest_everyDaysKeepsAFixedPhase(data_dir: Path) -> None:
    history = load_market_history(data_dir)
    full = _by_key(run_backtest(history, PARAMS).series)
    sampled = run_backtest(history, PARAMS, BacktestConfig(every_days=3, underlyings=("SOL",)))
    for s in sampled.series:
        assert np.all(s.dates.astype(np.int64) % 3 == 0)
        f = full[(s.book, s.underlying)]
        np.testing.assert_array_equal(s.im, f.im[np.isin(f.dates, s.dates)])
    with pytest.raises(ValueError, match="every_days"):
        BacktestConfig(every_days=0)
