"""Capital-efficiency table: hedged books save, naked books do not, guards."""

from pathlib import Path

import numpy as np
import pytest

from risk_engine import load_params
from risk_engine.backtest.data import load_market_history
from risk_engine.efficiency import efficiency_table, format_table, main

PARAMS = load_params()


def test_efficiency_table_hedgedBooksSaveNakedBooksDoNot(data_dir: Path) -> None:
    rows = efficiency_table(load_market_history(data_dir), PARAMS)
    assert len(rows) == 19
    assert {r.date for r in rows} == {np.datetime64("2021-06-28")}  # last day of the data
    for r in rows:
        assert r.portfolio_im <= r.isolated_im * (1 + 1e-12)  # subadditive across legs
        assert r.gross_rule == pytest.approx(0.10 * r.gross_notional)
        if r.hedged:
            assert r.saving_vs_isolated > 0.25, r
        else:
            assert r.saving_vs_isolated == pytest.approx(0.0, abs=1e-12)
    carry = [r for r in rows if r.book == "cash_and_carry"]
    assert all(r.saving_vs_isolated > 0.9 and r.saving_vs_gross_rule > 0.9 for r in carry)


def test_efficiency_table_onAGivenDate(data_dir: Path) -> None:
    day = np.datetime64("2021-05-18")
    rows = efficiency_table(load_market_history(data_dir), PARAMS, date=day)
    assert {r.date for r in rows} == {day}


def test_efficiency_table_revertsWhenDateUnusable(data_dir: Path) -> None:
    # 2021-03-05: fewer returns than the engine's min_observations
    with pytest.raises(ValueError, match="2021-03-05"):
        efficiency_table(load_market_history(data_dir), PARAMS, date=np.datetime64("2021-03-05"))


def test_efficiency_table_revertsWhenGrossRateBad(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="gross_rate"):
        efficiency_table(load_market_history(data_dir), PARAMS, gross_rate=0.0)


def test_main_printsTable(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "| BTC/ETH | pair | yes |" in out and "| SOL | naked_short_put | no |" in out
    rows = efficiency_table(load_market_history(data_dir), PARAMS)
    assert format_table(rows) in out
