"""MarketState -> risk_engine.MarketSnapshot: same fields and units, engine accepts it."""

from __future__ import annotations

import numpy as np
import pytest

from keeper.errors import FeedError
from keeper.feeds import SimConfig, SimulatedFeed
from risk_engine import InstrumentKind, InstrumentTable, Portfolios, compute_margin, load_params
from risk_engine.market import validate_market

T0 = 1_780_000_000
DAY = 86_400


def test_simState_convertsToSnapshot_andEngineMarginsABook():
    feed = SimulatedFeed(SimConfig(), np.random.default_rng(4), start_time=T0)
    state = feed.tick(T0 + 1)
    assert state.symbols == ("BTC", "ETH", "SOL", "GOV")
    assert state.underlying("GOV").perp_mark == state.underlying("GOV").spot
    odd_expiry = feed.expiries[0] + 3 * DAY  # not quoted: interpolated
    snap = state.to_snapshot(expiries={"BTC": [odd_expiry, feed.expiries[1]]})
    assert snap.underlyings == state.symbols
    np.testing.assert_array_equal(snap.spot, state.spots())
    np.testing.assert_array_equal(snap.returns, state.returns)
    assert snap.surface.underlying == ("BTC", "BTC")
    assert list(snap.surface.expiry) == sorted([odd_expiry, feed.expiries[1]])
    table = InstrumentTable.build(
        [InstrumentKind.PERP, InstrumentKind.CALL, InstrumentKind.SPOT],
        ["BTC", "BTC", "GOV"],
        [0.0, 70_000.0, 0.0],
        [0, odd_expiry, 0],
    )
    validate_market(snap, table)
    book = Portfolios.from_dense(table, [[1.0, -1.0, 1000.0]], [50_000.0])
    result = compute_margin(book, snap, load_params())
    assert np.all(np.isfinite(result.im)) and result.im[0] > 0
    assert result.mm[0] < result.im[0]


def test_intradayReturns_aggregateToDays():
    feed = SimulatedFeed(
        SimConfig(return_interval_seconds=4 * 3600, history_length=60),
        np.random.default_rng(1),
        start_time=T0,
    )
    state = feed.tick(T0)
    daily = state.daily_returns()
    assert daily.shape == (10, 4)
    np.testing.assert_allclose(daily[-1], state.returns[-6:].sum(axis=0))
    odd = SimulatedFeed(
        SimConfig(return_interval_seconds=7 * 3600), np.random.default_rng(1), start_time=T0
    ).tick(T0)
    with pytest.raises(FeedError):
        odd.daily_returns()
