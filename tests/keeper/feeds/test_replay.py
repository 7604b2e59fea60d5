"""Replay of a small synthetic directory in the ../shared/data layout."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from keeper.errors import FeedError
from keeper.feeds import ReplayConfig, ReplayFeed
from keeper.feeds.base import SECONDS_PER_YEAR
from scripts.toolchain.paths import REPO_ROOT

NOW = 1_780_000_000
D0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_dir(tmp_path: Path, n: int = 40, dvol_days: range | None = None) -> Path:
    (tmp_path / "daily").mkdir()
    (tmp_path / "implied_vol").mkdir()
    rng = np.random.default_rng(0)
    for sym, p0 in (("BTC", 40_000.0), ("ETH", 2_000.0)):
        closes = p0 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
        lines = ["date,open,high,low,close,volume"]
        for i, c in enumerate(closes):
            day = (D0 + timedelta(days=i)).date().isoformat()
            lines.append(f"{day},{c},{c * 1.01},{c * 0.99},{c},100")
        (tmp_path / "daily" / f"{sym}.csv").write_text("\n".join(lines) + "\n")
    rows = ["date,dvol"] + [
        f"{(D0 + timedelta(days=i)).date().isoformat()},{50 + i}" for i in (dvol_days or range(n))
    ]
    (tmp_path / "implied_vol" / "BTC_DVOL.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def cfg(**kw: object) -> ReplayConfig:
    base: dict[str, object] = {
        "symbols": ("BTC", "ETH"),
        "history_length": 10,
        "rv_window": 5,
        "tokens": (("WBTC", "BTC"), ("USDC", None)),
    }
    base.update(kw)
    return ReplayConfig(**base)  # type: ignore[arg-type]


def test_oneBarPerTick_withDvolForBtc_andRealisedForEth(tmp_path):
    f = ReplayFeed(make_dir(tmp_path), cfg())
    assert f.interval_seconds == 86_400
    s1, s2 = f.tick(NOW), f.tick(NOW + 1)
    assert s2.source_time - s1.source_time == 86_400
    assert s1.source_time == int((D0 + timedelta(days=10)).timestamp())
    assert s1.timestamp == NOW and s1.source == "replay"
    btc, eth = s1.underlying("BTC"), s1.underlying("ETH")
    assert btc.iv_source == "dvol" and btc.smiles[0].atm_vol == pytest.approx(0.60)  # day 10: 60
    assert eth.iv_source == "realized"
    closes = np.loadtxt(tmp_path / "daily" / "ETH.csv", delimiter=",", skiprows=1, usecols=4)
    rv = np.diff(np.log(closes[5:11])).std(ddof=1) * math.sqrt(SECONDS_PER_YEAR / 86_400)
    assert eth.smiles[0].atm_vol == pytest.approx(rv)
    assert eth.spot == pytest.approx(closes[10]) and eth.perp_mark == eth.spot
    assert s1.returns.shape == (10, 2)
    np.testing.assert_allclose(s1.returns[:, 1], np.diff(np.log(closes[0:11])))
    assert s1.token_prices == {"WBTC": btc.spot, "USDC": 1.0}
    sm = btc.smiles[0]
    assert sm.forward == pytest.approx(
        btc.spot * math.exp(0.04 * (sm.expiry - NOW) / SECONDS_PER_YEAR)
    )


def test_dvolGap_fallsBackToRealised(tmp_path):
    f = ReplayFeed(make_dir(tmp_path, dvol_days=range(0, 5)), cfg(dvol_max_age_days=2))
    assert f.tick(NOW).underlying("BTC").iv_source == "realized"


def test_start_andExhaustion_andLoop(tmp_path):
    d = make_dir(tmp_path, n=15)
    f = ReplayFeed(d, cfg(start="2024-01-14"))
    assert f.remaining == 2
    f.tick(NOW)
    f.tick(NOW + 1)
    with pytest.raises(FeedError, match="exhausted"):
        f.tick(NOW + 2)
    g = ReplayFeed(d, cfg(loop=True))
    times = [g.tick(NOW + i).source_time for i in range(7)]
    assert times[5] == times[0]
    with pytest.raises(FeedError):
        ReplayFeed(d, cfg(start="2024-01-02"))  # not enough history before it
    with pytest.raises(FeedError):
        ReplayFeed(d, cfg(history_length=20))


def test_badBar_isRefusedAndSkipped(tmp_path):
    d = make_dir(tmp_path, n=15)
    path = d / "daily" / "ETH.csv"
    lines = path.read_text().splitlines()
    parts = lines[12].split(",")  # data row 11 = the second replayed bar
    parts[4] = "-5"
    lines[12] = ",".join(parts)
    path.write_text("\n".join(lines) + "\n")
    f = ReplayFeed(d, cfg())
    f.tick(NOW)
    with pytest.raises(FeedError) as exc:
        f.tick(NOW + 1)
    assert exc.value.field is not None and exc.value.field.startswith(("ETH", "returns.ETH"))
    # A later bar whose history still holds the bad close is refused too; none is served.
    for i in range(2, 4):
        with pytest.raises(FeedError):
            f.tick(NOW + i)


def test_missingFiles_andBadHeaders(tmp_path):
    with pytest.raises(FeedError):
        ReplayFeed(tmp_path, cfg())
    d = make_dir(tmp_path)
    (d / "daily" / "ETH.csv").write_text("when,price\n2024-01-01,5\n2024-01-02,6\n")
    with pytest.raises(FeedError):
        ReplayFeed(d, cfg())


def test_realData_ifPresent_isReplayable():
    data = REPO_ROOT.parent / "shared" / "data"
    assert (data / "daily" / "BTC.csv").is_file(), "the shared data directory is part of the setup"
    f = ReplayFeed(data, ReplayConfig(start="2022-06-13"))
    s = f.tick(NOW)
    assert s.source_time == int(datetime(2022, 6, 13, tzinfo=UTC).timestamp())
    assert s.underlying("BTC").iv_source == "dvol"
    assert s.returns_of("BTC")[-1] == pytest.approx(math.log(1 - 0.1538), abs=0.01)  # crash day
