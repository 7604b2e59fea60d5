"""The seeded simulator: determinism, shocks, correlation, regimes, faults, clock."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from keeper.errors import FeedError
from keeper.feeds import SimConfig, SimulatedFeed, default_expiries
from scripts.toolchain.paths import REPO_ROOT

T0 = 1_780_000_000
DAY = 86_400


def feed(seed: int = 1, **cfg: object) -> SimulatedFeed:
    return SimulatedFeed(SimConfig(**cfg), np.random.default_rng(seed), start_time=T0)  # type: ignore[arg-type]


def run(f: SimulatedFeed, ticks: int, step: int = 60) -> list[str]:
    return [f.tick(T0 + (i + 1) * step).to_json() for i in range(ticks)]


def test_sameSeed_sameStates_differentSeed_differentStates():
    a, b, c = feed(7), feed(7), feed(8)
    a.push_shock({"BTC": -0.1})
    b.push_shock({"BTC": -0.1})
    assert run(a, 30) == run(b, 30)
    assert run(feed(7), 5) != run(c, 5)


def test_shock_movesPricesAtNextTick_andSpikesVol():
    f = feed(3, time_scale=1.0)
    before = f.tick(T0 + 1)
    f.push_shock({"BTC": -0.30, "ETH": -0.30}, vol_spike=0.40)
    after = f.tick(T0 + 2)  # one market second: diffusion is negligible
    for sym in ("BTC", "ETH"):
        ratio = after.underlying(sym).spot / before.underlying(sym).spot
        assert ratio == pytest.approx(0.70, rel=1e-3)
        assert (
            after.underlying(sym).smiles[0].atm_vol > before.underlying(sym).smiles[0].atm_vol + 0.3
        )
    assert after.underlying("SOL").spot == pytest.approx(before.underlying("SOL").spot, rel=1e-3)
    assert after.token_price("WBTC") == after.underlying("BTC").spot
    assert f.stressed
    assert after.underlying("BTC").smiles[0].skew == SimConfig().skew_stressed
    # The spike decays: two weeks of market time later most of it is gone.
    later = f.tick(T0 + 2 + 14 * DAY)
    assert later.underlying("BTC").smiles[0].atm_vol < after.underlying("BTC").smiles[0].atm_vol


def test_shock_refusesUnknownSymbolAndImpossibleMove():
    f = feed()
    with pytest.raises(FeedError):
        f.push_shock({"XRP": -0.1})
    with pytest.raises(FeedError):
        f.push_shock({"BTC": -1.0})
    with pytest.raises(FeedError):
        f.push_shock({"BTC": math.nan})


def test_dailyReturns_correlationAsConfigured():
    # No jumps or regimes: the sample correlation of daily log returns matches the input.
    f = feed(
        11,
        time_scale=1.0,
        jump_per_year_calm=0.0,
        jump_per_year_stressed=0.0,
        calm_to_stress_per_year=0.0,
        history_length=3000,
        max_substep_seconds=DAY,
    )
    r = f.tick(T0 + 1).returns
    assert r.shape == (3000, 4)
    corr = np.corrcoef(r.T)
    np.testing.assert_allclose(corr, np.asarray(SimConfig().correlation), atol=0.06)
    ann_vol = r.std(axis=0) * math.sqrt(365)
    np.testing.assert_allclose(ann_vol, SimConfig().calm_vols, rtol=0.08)


def test_stressedRegime_raisesRealisedVolAndJumps():
    calm = feed(5, calm_to_stress_per_year=0.0, history_length=2000).tick(T0 + 1).returns
    stressed = (
        feed(5, calm_to_stress_per_year=1e6, stress_to_calm_per_year=0.0, history_length=2000)
        .tick(T0 + 1)
        .returns
    )
    assert stressed[:, 0].std() > 2 * calm[:, 0].std()


def test_historyGrowsAtReturnBoundaries_andIvFollowsRealisedVol():
    f = feed(2, time_scale=3600.0, history_length=50)  # one market hour per clock second
    s0 = f.tick(T0)
    last_row = s0.returns[-1].copy()
    s1 = f.tick(T0 + 24)  # exactly one market day later
    assert not np.array_equal(s1.returns[-1], last_row)
    assert s1.returns.shape == (50, 4)
    np.testing.assert_array_equal(s1.returns[-2], last_row)
    # IV of the shortest expiry is the premium over the EWMA realised vol, roughly.
    atm = s1.underlying("BTC").smiles[0].atm_vol
    assert 0.2 < atm < 1.5


def test_fault_injection_isRefused_thenNextTickIsGood():
    f = feed()
    good = f.tick(T0 + 1)
    t = T0 + 1
    for path, value in [
        ("BTC.spot", math.nan),
        ("ETH.atm_vol", -0.5),
        ("tokens.GOV", 0.0),
        ("SOL.perp_mark", 1e15),
        ("rate", math.inf),
    ]:
        f.inject_fault(path, value)
        t += 2
        with pytest.raises(FeedError) as exc:
            f.tick(t)
        assert exc.value.field is not None and exc.value.field.split(".")[0] in path
        ok = f.tick(t + 1)
        assert ok.underlying("BTC").spot == pytest.approx(good.underlying("BTC").spot, rel=0.01)
    assert f.latest() is ok


def test_clockBackwards_andHugeTick_areRefused():
    f = feed(time_scale=1e6)
    f.tick(T0 + 10)
    with pytest.raises(FeedError):
        f.tick(T0 + 5)
    with pytest.raises(FeedError):
        f.tick(T0 + 10 + 365 * DAY)


def test_expiries_defaultFridays_droppedWhenExpired_andSettable():
    ex = default_expiries(T0)
    assert all((e - 8 * 3600) % (7 * DAY) == DAY for e in ex)  # Fridays 08:00 UTC
    assert ex[0] > T0 and ex[0] - T0 <= 7 * DAY
    f = feed()
    f.set_expiries([T0 + 100, T0 + 30 * DAY])
    s = f.tick(T0 + 200)
    assert [sm.expiry for sm in s.underlying("BTC").smiles] == [T0 + 30 * DAY]
    assert s.underlying("BTC").smiles[0].forward > s.underlying("BTC").spot  # positive carry


def test_badConfig_refused():
    with pytest.raises(FeedError):
        SimConfig(calm_vols=(0.5,))
    bad = [list(r) for r in SimConfig().correlation]
    bad[0][1] = bad[1][0] = 1.5
    with pytest.raises(FeedError):
        SimConfig(correlation=tuple(tuple(r) for r in bad))
    with pytest.raises(FeedError):
        dataclasses.replace(SimConfig(), derivative_symbols=("XRP",))


def test_buildFeed_fromConfig(tmp_path):
    from keeper.config import FeedConfig
    from keeper.feeds import ReplayFeed, build_feed

    a = build_feed(FeedConfig(kind="sim", seed=3, time_scale=60.0), start_time=T0)
    b = build_feed(FeedConfig(kind="sim", seed=3, time_scale=60.0), start_time=T0)
    assert isinstance(a, SimulatedFeed) and a.config.time_scale == 60.0
    assert a.tick(T0 + 5).to_json() == b.tick(T0 + 5).to_json()
    with pytest.raises(FeedError):
        build_feed(FeedConfig(kind="replay", path=None), start_time=T0)
    with pytest.raises(FeedError):
        build_feed(FeedConfig(kind="replay", path=tmp_path), start_time=T0)  # no CSVs there
    data = REPO_ROOT.parent / "shared" / "data"
    assert isinstance(build_feed(FeedConfig(kind="replay", path=data), start_time=T0), ReplayFeed)
