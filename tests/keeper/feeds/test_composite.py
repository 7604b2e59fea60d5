"""The composite feed over three mock venues (Deribit, Binance and Coinbase formats) on a
local server: medians, the drops (error, stale, deviation, frozen), confidence, the
engine's add-on below the threshold and the refusal below the hard floor."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from keeper.errors import FeedError
from keeper.feeds.base import MarketState
from keeper.feeds.composite import CompositeFeed, CompositeSettings
from keeper.feeds.deribit import DeribitSource
from keeper.feeds.spot import BinanceSpotSource, CoinbaseSpotSource
from keeper.metrics import KeeperMetrics
from risk_engine import load_params

from . import payloads as P
from .mock_venue import LiveVenue, MockServer

T0 = P.RECORDED_AT


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


class Venues:
    """Three live venues on local servers, on one test clock, and the composite over them."""

    def __init__(self, **settings: object) -> None:
        self.clock = Clock()
        prices = {"BTC": 61_000.0, "ETH": 3_400.0}
        self.venue = {
            k: LiveVenue(k, dict(prices), clock=self.clock)
            for k in ("deribit", "binance", "coinbase")
        }
        self.server = {k: MockServer(v.route) for k, v in self.venue.items()}
        self.metrics = KeeperMetrics()
        self.feed = CompositeFeed(
            [
                DeribitSource("deribit", self.server["deribit"].url, {"BTC": "BTC", "ETH": "ETH"}),
                BinanceSpotSource(
                    "binance", self.server["binance"].url, {"BTC": "BTCUSDT", "ETH": "ETHUSDT"}
                ),
                CoinbaseSpotSource(
                    "coinbase", self.server["coinbase"].url, {"BTC": "BTC-USD", "ETH": "ETH-USD"}
                ),
            ],
            CompositeSettings(
                symbols=("BTC", "ETH"),
                tokens={"WBTC": "BTC", "WETH": "ETH", "USDC": None},
                **settings,  # type: ignore[arg-type]
            ),
            metrics=self.metrics,
        )

    def move(self, factor: float, seconds: float = 60.0) -> None:
        self.clock.now += seconds
        for v in self.venue.values():
            v.prices = {s: p * factor for s, p in v.prices.items()}

    def tick(self) -> MarketState:
        return self.feed.tick(int(self.clock.now))

    def dropped(self, source: str, reason: str) -> float:
        return self.metrics.feed_dropped.labels(source=source, reason=reason)._value.get()

    def stop(self) -> None:
        for s in self.server.values():
            s.stop()


@pytest.fixture
def venues() -> Iterator[Venues]:
    v = Venues()
    try:
        yield v
    finally:
        v.stop()


def test_three_agreeing_fresh_venues_give_the_median_at_full_confidence(venues: Venues) -> None:
    state = venues.tick()
    assert state.underlying("BTC").spot == pytest.approx(61_000.0)
    assert state.underlying("ETH").perp_mark == pytest.approx(3_400.0 * 1.0005)
    assert state.confidence == {"BTC": 1.0, "ETH": 1.0}
    assert state.token_prices == {
        "WBTC": state.underlying("BTC").spot,
        "WETH": 3_400.0,
        "USDC": 1.0,
    }
    assert state.returns.shape == (119, 2) and state.return_interval_seconds == P.DAY
    assert [s.expiry for s in state.underlying("BTC").smiles][0] > T0
    assert MarketState.from_json(state.to_json()).confidence == state.confidence


def test_a_venue_that_lies_by_ten_percent_is_dropped_and_confidence_falls_to_two_thirds(
    venues: Venues,
) -> None:
    venues.venue["coinbase"].lie = 0.10
    state = venues.tick()
    assert state.underlying("BTC").spot == pytest.approx(61_000.0)
    assert state.confidence["BTC"] == pytest.approx(2 / 3)
    assert venues.dropped("coinbase", "deviation") == 2  # BTC and ETH


def test_a_stale_venue_does_not_vote(venues: Venues) -> None:
    venues.venue["binance"].stale_by = 120.0
    state = venues.tick()
    assert state.confidence["ETH"] == pytest.approx(2 / 3)
    assert venues.dropped("binance", "stale") == 1


@pytest.mark.parametrize("fault", ["timeout", "http_error", "malformed"])
def test_a_failing_venue_is_dropped_for_the_tick_and_back_at_the_next(
    fault: str,
) -> None:
    v = Venues()
    try:
        for src in v.feed.sources:  # healthy answers stay well inside 1 s on a busy machine
            src.http.timeout = 1.0  # type: ignore[attr-defined]
        for server in v.server.values():
            server.delay = 3.0
        v.server["deribit"].fault = fault
        with pytest.raises(FeedError, match="BTC.confidence"):
            v.tick()  # the only perp and vol source is gone: nothing to price a perp with
        assert v.dropped("deribit", "error") == 1
        v.server["binance"].fault, v.server["deribit"].fault = fault, None
        v.move(1.001)
        assert v.tick().confidence["BTC"] == pytest.approx(2 / 3)
        assert v.metrics.feed_refusals.labels(reason="confidence")._value.get() == 1
    finally:
        v.stop()


def test_a_frozen_venue_is_dropped_once_the_others_move(venues: Venues) -> None:
    venues.venue["binance"].freeze()
    venues.tick()
    for _ in range(5):  # 5 minutes of a moving market
        venues.move(1.001)
        state = venues.tick()
    assert venues.dropped("binance", "frozen") >= 2
    assert state.confidence["BTC"] == pytest.approx(2 / 3)


def test_freeze_then_a_lie_leaves_one_source_and_the_engine_adds_im(venues: Venues) -> None:
    venues.venue["binance"].freeze()
    venues.tick()
    for _ in range(5):
        venues.move(1.0005)
        venues.tick()
    venues.venue["coinbase"].lie = 0.10
    venues.move(1.0005)
    state = venues.tick()
    assert state.underlying("BTC").spot == pytest.approx(venues.venue["deribit"].prices["BTC"])
    conf = state.confidence["BTC"]
    params = load_params()
    assert conf == pytest.approx(1 / 3) and conf < params.confidence.threshold
    snap = state.to_snapshot(("BTC", "ETH"))
    snap_c = type(snap)(**{**snap.__dict__, "confidence": np.array([conf, conf])})
    from risk_engine import InstrumentKind, InstrumentTable, build_risk_arrays

    ins = InstrumentTable.build([InstrumentKind.PERP], ["BTC"], [0.0], [0])
    plain = build_risk_arrays(ins, snap, params).leaves.loss_long[0]
    added = build_risk_arrays(ins, snap_c, params).leaves.loss_long[0]
    spot = state.underlying("BTC").spot
    assert added - plain == pytest.approx(params.confidence.rate * (1 - conf) * spot, rel=1e-6)


def test_two_disagreeing_sources_have_no_majority_and_the_tick_is_refused(
    venues: Venues,
) -> None:
    venues.server["coinbase"].fault = "http_error"
    venues.venue["binance"].lie = 0.10
    with pytest.raises(FeedError, match="no source agrees on the BTC spot"):
        venues.tick()


def test_confidence_below_the_hard_floor_refuses_the_tick_and_counts_it() -> None:
    v = Venues(confidence_floor=0.7)
    try:
        v.venue["binance"].lie = -0.10
        with pytest.raises(FeedError, match="BTC confidence 0.667 below the floor 0.7"):
            v.tick()
        assert v.metrics.feed_refusals.labels(reason="confidence")._value.get() == 1
        assert v.feed.latest() is None  # nothing half-built is kept
    finally:
        v.stop()


def test_an_older_quote_lowers_confidence(venues: Venues) -> None:
    for v in venues.venue.values():
        v.stale_by = 30.0  # half the 60 s limit: each counts 0.75
    assert venues.tick().confidence["BTC"] == pytest.approx(0.75)
