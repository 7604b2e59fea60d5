"""CSV loading on small synthetic directories in the shared-data layout."""

from pathlib import Path

import numpy as np
import pytest

from risk_engine.backtest.data import (
    DataError,
    align_to_calendar,
    load_market_history,
)
from scripts.toolchain.paths import REPO_ROOT


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _daily(rows: list[tuple[str, float]]) -> str:
    lines = ["date,open,high,low,close,volume"]
    lines += [f"{d},{c},{c * 1.01},{c * 0.99},{c},1.5" for d, c in rows]
    return "\n".join(lines) + "\n"


def test_load_market_history_readsLayout(tmp_path: Path) -> None:
    _write(tmp_path / "daily" / "BTC.csv", _daily([("2024-01-01", 100.0), ("2024-01-02", 110.0)]))
    _write(tmp_path / "daily" / "SOL.csv", _daily([("2024-01-02", 5.0)]))
    _write(tmp_path / "implied_vol" / "BTC_DVOL.csv", "date,dvol\n2024-01-02,55.3\n")
    history = load_market_history(tmp_path)
    assert sorted(history.closes) == ["BTC", "SOL"]
    btc = history.closes["BTC"]
    assert btc.dates.dtype == np.dtype("datetime64[D]")
    np.testing.assert_array_equal(btc.close, [100.0, 110.0])
    assert history.implied_vols["BTC"].vol[0] == pytest.approx(0.553)
    assert "SOL" not in history.implied_vols


def test_load_market_history_acceptsIntradayTimestampsInDateColumn(tmp_path: Path) -> None:
    _write(tmp_path / "daily" / "ETH.csv", "date,close\n2024-01-01T00:00:00Z,10\n")
    history = load_market_history(tmp_path)
    assert history.closes["ETH"].dates[0] == np.datetime64("2024-01-01")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("date,open\n2024-01-01,1\n", "no column 'close'"),
        ("date,close\n", "no data rows"),
        ("date,close\n2024-01-01,abc\n", "cannot parse"),
        ("date,close\n2024-01-01,0\n", "is not > 0"),
        ("date,close\n2024-01-01,nan\n", "is not > 0"),
        ("date,close\n2024-01-02,1\n2024-01-01,1\n", "not strictly ascending"),
        ("date,close\n2024-01-01,1\n2024-01-01,1\n", "not strictly ascending"),
    ],
)
def test_load_market_history_revertsWhenFileBad(tmp_path: Path, text: str, message: str) -> None:
    _write(tmp_path / "daily" / "BTC.csv", text)
    with pytest.raises(DataError, match=message):
        load_market_history(tmp_path)


def test_load_market_history_revertsWhenNoFiles(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no daily"):
        load_market_history(tmp_path)


def test_load_market_history_revertsWhenUnderlyingMissing(tmp_path: Path) -> None:
    _write(tmp_path / "daily" / "BTC.csv", _daily([("2024-01-01", 1.0)]))
    with pytest.raises(DataError, match="file not found"):
        load_market_history(tmp_path, ("BTC", "ETH"))


def test_load_market_history_readsSharedData() -> None:
    shared = REPO_ROOT.parent / "shared" / "data"
    history = load_market_history(shared)
    assert history.closes["BTC"].dates.size == 2510
    assert history.closes["SOL"].dates[0] == np.datetime64("2020-08-11")
    assert history.implied_vols["BTC"].dates.size == 1105


def test_align_to_calendar_leavesGapsNaN() -> None:
    calendar = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-05"))
    dates = np.array(["2024-01-02", "2024-01-04", "2024-01-09"], dtype="datetime64[D]")
    out = align_to_calendar(dates, np.array([1.0, 2.0, 3.0]), calendar)
    np.testing.assert_array_equal(np.isnan(out), [True, False, True, False])
    assert out[1] == 1.0 and out[3] == 2.0
