"""Intraday windows: extraction on hand-made bars, worst excursion, margin scaling, Kupiec."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from risk_engine import load_params
from risk_engine.backtest.data import IntradayBars, load_intraday_bars, load_market_history
from risk_engine.backtest.intraday import (
    horizon_windows,
    intraday_series,
    remargin,
    summarize_intraday,
)
from risk_engine.backtest.kupiec import kupiec_pof
from risk_engine.backtest.replay import (
    BacktestConfig,
    build_calendar,
    day_market,
    open_books,
    run_backtest,
)
from risk_engine.backtest.report import coverage_table, intraday_crash_table
from risk_engine.backtest.results import summarize
from risk_engine.books import BOOKS

from ..conftest import write_data_dir

PARAMS = load_params()
H4 = 4 * 3600
DAY = 86_400


def _bars(
    start: str,
    closes: list[float],
    *,
    lows: dict[int, float] | None = None,
    highs: dict[int, float] | None = None,
    drop: tuple[int, ...] = (),
) -> IntradayBars:
    """4 h bars: open = previous close, high/low 1 % around unless overridden."""
    c = np.array(closes, dtype=np.float64)
    o = np.concatenate([[c[0]], c[:-1]])
    hi = np.maximum(o, c) * 1.01
    lo = np.minimum(o, c) * 0.99
    for i, v in (lows or {}).items():
        lo[i] = v
    for i, v in (highs or {}).items():
        hi[i] = v
    t = np.datetime64(start, "s") + np.arange(c.size) * np.timedelta64(H4, "s")
    keep = np.setdiff1d(np.arange(c.size), np.array(drop, dtype=np.int64))
    return IntradayBars("BTC", H4, t[keep], o[keep], hi[keep], lo[keep], c[keep])


def test_windows_find_the_extreme_low_inside_the_window() -> None:
    closes = [100.0] * 14
    bars = _bars("2021-01-01T00:00:00", closes, lows={3: 70.0}, highs={9: 130.0})
    w = horizon_windows(bars, DAY)
    assert w.start.size == 14 - 6 + 1
    # windows starting at bars 0..3 hold the 70 low; windows 4..8 hold the 130 high
    np.testing.assert_allclose(w.low[:4], 70.0)
    np.testing.assert_allclose(w.low[4:], 99.0)
    np.testing.assert_allclose(w.high[4:9], 130.0)
    np.testing.assert_allclose(w.end, 100.0)
    assert w.closes.shape == (9, 6)


def test_windows_with_a_missing_bar_are_dropped() -> None:
    bars = _bars("2021-01-01T00:00:00", [100.0] * 14, drop=(7,))
    w = horizon_windows(bars, DAY)
    starts = ((w.start - w.start[0]).astype(np.int64) // H4).tolist()
    # a window starting at bar i holds bars i..i+5: every start 2..7 holds bar 7
    assert starts == [0, 1, 8]


def test_horizon_that_is_not_a_whole_number_of_bars_is_refused() -> None:
    with pytest.raises(ValueError, match="multiple"):
        horizon_windows(_bars("2021-01-01T00:00:00", [100.0] * 10), DAY + 3600)


def test_intraday_file_is_read_with_its_bar_length(tmp_path: Path) -> None:
    path = tmp_path / "BTC_4h.csv"
    path.write_text(
        "time,open,high,low,close,volume\n"
        "2021-01-01T00:00:00Z,1,2,0.5,1.5,3\n2021-01-01T04:00:00Z,1.5,1.6,1.4,1.5,3\n"
    )
    bars = load_intraday_bars(path, "BTC")
    assert bars.bar_seconds == H4
    assert bars.low.tolist() == [0.5, 1.4]


def test_intraday_file_with_a_close_outside_the_bar_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "BTC_4h.csv"
    path.write_text("time,open,high,low,close,volume\n2021-01-01T00:00:00Z,1,2,0.5,2.5,3\n")
    with pytest.raises(ValueError, match="inconsistent bar"):
        load_intraday_bars(path, "BTC")


def _write_bars(root: Path, seed: int = 5) -> None:
    """4 h bars whose daily closes match daily/*.csv, with a -30 % spike on one bar."""
    history = load_market_history(root)
    rng = np.random.default_rng(seed)
    out = root / "intraday"
    out.mkdir(exist_ok=True)
    for u, series in history.closes.items():
        lines = ["time,open,high,low,close,volume"]
        prev = float(series.close[0])
        for d, close in zip(series.dates, series.close, strict=True):
            path = np.exp(np.linspace(np.log(prev), np.log(close), 7)[1:])
            path[:-1] *= np.exp(rng.normal(0.0, 0.005, 5))
            for k in range(6):
                o, c = (prev if k == 0 else path[k - 1]), path[k]
                hi, lo = max(o, c) * 1.003, min(o, c) * 0.997
                if str(d) == "2021-05-10" and k == 2:
                    lo = min(o, c) * 0.7
                t = np.datetime64(d, "s") + np.timedelta64(k * H4, "s")
                lines.append(f"{t}Z,{o:.6f},{hi:.6f},{lo:.6f},{c:.6f},1")
            prev = float(close)
        (out / f"{u}_4h.csv").write_text("\n".join(lines) + "\n")


def test_intraday_loss_is_at_least_the_close_to_close_loss_and_sees_the_spike(
    tmp_path: Path,
) -> None:
    root = write_data_dir(tmp_path / "data")
    _write_bars(root)
    history = load_market_history(root)
    result = run_backtest(history, PARAMS)
    windows = {(s.book, s.underlying): s for s in intraday_series(result, history.intraday, PARAMS)}
    daily = {(s.book, s.underlying): s for s in result.series}
    put = windows[("naked_short_put", "BTC")]
    spike = put.start.astype("datetime64[D]") == np.datetime64("2021-05-10")
    assert put.loss[spike].max() > 0.1 * put.gross_notional[spike].max()
    assert set(put.worst_at[spike].tolist()) <= {0, 1, 2}
    # the window that starts at a daily close runs to the next close: its loss bounds the
    # close-to-close loss from above (same book, same repricing, worse point allowed)
    d = daily[("naked_short_put", "BTC")]
    at_close = (put.start.astype(np.int64) % DAY) == 0
    idx = np.searchsorted(d.dates, put.opened[at_close])
    scale = put.scale[at_close]
    assert np.all(put.loss[at_close] >= d.loss[idx] * scale - 1e-6 * d.gross_notional[idx])
    # the pair is valued on the bar-close path
    assert ("pair", "BTC/ETH") in windows
    assert set(windows[("pair", "BTC/ETH")].worst_at.tolist()) == {3}


def test_margin_of_a_book_scales_with_its_opening_price(data_dir: Path) -> None:
    history = load_market_history(data_dir)
    cal = build_calendar(history, ("BTC", "ETH"), BacktestConfig().vol_rule)
    t = int(np.flatnonzero(cal.dates == np.datetime64("2021-05-01"))[0])
    for group in (("BTC",), ("BTC", "ETH")):
        market = day_market(cal, t, group, PARAMS, 250)
        specs = [s for s in BOOKS.values() if s.pair == (len(group) > 1)]
        _, base = open_books(market, specs, PARAMS)
        moved = replace(market, spot={u: 1.37 * v for u, v in market.spot.items()})
        _, scaled = open_books(moved, specs, PARAMS)
        np.testing.assert_allclose(scaled.im, 1.37 * base.im, rtol=1e-9)
        np.testing.assert_allclose(scaled.mm, 1.37 * base.mm, rtol=1e-9)


def test_remargin_with_the_same_replay_changes_nothing_and_drops_unsampled_days(
    tmp_path: Path,
) -> None:
    root = write_data_dir(tmp_path / "data")
    _write_bars(root)
    history = load_market_history(root)
    result = run_backtest(history, PARAMS)
    series = intraday_series(result, history.intraday, PARAMS)
    same = remargin(series, result.series)
    for a, b in zip(series, same, strict=True):
        np.testing.assert_allclose(a.im, b.im)
    sampled = run_backtest(history, PARAMS, BacktestConfig(every_days=3))
    fewer = remargin(series, sampled.series)
    assert all(np.all(s.opened.astype(np.int64) % 3 == 0) for s in fewer)
    assert sum(s.start.size for s in fewer) < sum(s.start.size for s in series)


def test_summary_counts_exceedances_and_runs_both_kupiec_readings(tmp_path: Path) -> None:
    root = write_data_dir(tmp_path / "data")
    _write_bars(root)
    history = load_market_history(root)
    result = run_backtest(history, PARAMS)
    series = intraday_series(result, history.intraday, PARAMS)
    for s in series:
        m = summarize_intraday(s)
        x = int(np.count_nonzero(s.loss > s.im))
        assert m.im_exceedances == x
        assert m.kupiec == kupiec_pof(x, s.start.size)
        hour = (s.start.astype(np.int64) % DAY) // 3600 == m.phase_hour
        assert m.kupiec_phase.n_days == int(hour.sum())
        assert m.kupiec_phase.n_exceedances == int(np.count_nonzero((s.loss > s.im)[hour]))
        assert m.im_coverage == pytest.approx(1.0 - x / s.start.size)


def test_coverage_and_crash_tables_show_both_readings_per_series(tmp_path: Path) -> None:
    root = write_data_dir(tmp_path / "data")
    _write_bars(root)
    history = load_market_history(root)
    result = run_backtest(history, PARAMS)
    daily = [summarize(s) for s in result.series]
    intraday = [summarize_intraday(s) for s in intraday_series(result, history.intraday, PARAMS)]
    rows = coverage_table(daily, intraday).splitlines()
    assert len(rows) == 2 + len(daily)
    assert len({r.count("|") for r in rows}) == 1
    assert all("(4 h)" in r for r in rows[2:])
    crash = intraday_crash_table(intraday).splitlines()
    # the synthetic history holds one crash day (2021-05-19), every series sees it
    assert len(crash) == 2 + len(intraday)
    assert all(r.startswith("| 2021-05-19 |") for r in crash[2:])
