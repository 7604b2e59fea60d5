"""Provider adapters on recorded payloads (a local server replays tests/keeper/feeds/fixtures)
and on each failure a provider produces: timeout, HTTP error, malformed JSON, stale time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keeper.errors import FeedError
from keeper.feeds.chainlink import ChainlinkSource
from keeper.feeds.deribit import DeribitSource, parse_option_name
from keeper.feeds.sources import MarketSource
from keeper.feeds.spot import BinanceSpotSource, CoinbaseSpotSource

from . import payloads as P
from .mock_venue import MockServer, replay_route

NOW = P.RECORDED_AT


@pytest.fixture
def server() -> Iterator[MockServer]:
    s = MockServer(replay_route)
    try:
        yield s
    finally:
        s.stop()


def make(kind: str, url: str, timeout: float = 2.0) -> MarketSource:
    if kind == "deribit":
        return DeribitSource("deribit", url, {"BTC": "BTC", "ETH": "ETH"}, timeout=timeout)
    if kind == "binance":
        return BinanceSpotSource(
            "binance", url, {"BTC": "BTCUSDT", "ETH": "ETHUSDT"}, timeout=timeout
        )
    if kind == "coinbase":
        return CoinbaseSpotSource(
            "coinbase", url, {"BTC": "BTC-USD", "ETH": "ETH-USD"}, timeout=timeout
        )
    return ChainlinkSource("chainlink", url, P.AGGREGATORS, timeout=timeout)


KINDS = ("deribit", "binance", "coinbase", "chainlink")


def test_an_option_name_gives_underlying_expiry_at_eight_utc_strike_and_side() -> None:
    assert parse_option_name("BTC-27DEC24-60000-C") == (
        "BTC",
        P.expiry_at("2024-12-27"),
        60000.0,
        True,
    )
    assert parse_option_name("XRP_USDC-5JUL24-0d625-P")[2] == 0.625


def test_deribit_recorded_payloads_give_index_perp_mark_smiles_and_bars(
    server: MockServer,
) -> None:
    obs = make("deribit", server.url).fetch(NOW)
    assert obs.spots["BTC"] == pytest.approx(P.SPOTS["BTC"] * 1.0002, abs=0.01)
    assert obs.perp_marks["ETH"] == pytest.approx(P.SPOTS["ETH"] * 1.0006, abs=0.01)
    assert NOW - obs.time <= 1  # usOut and the ticker's ms timestamp, rounded down
    for sym in ("BTC", "ETH"):
        fitted = obs.smiles[sym]
        assert [s.expiry for s in fitted] == [e for e, *_ in P.SMILES[sym]]
        for s, (_, _, atm, skew, curv) in zip(fitted, P.SMILES[sym], strict=True):
            # mark IVs are quoted to 0.01 vol point: the fit recovers the smile closely
            assert s.atm_vol == pytest.approx(atm, abs=2e-4)
            assert s.skew == pytest.approx(skew, abs=5e-3)
            assert s.curvature == pytest.approx(curv, abs=0.05)
    closes = obs.closes["BTC"]
    assert len(closes) == 120 and closes[-1][0] + P.DAY <= NOW  # the open bar is left out
    assert closes[-1][1] == pytest.approx(
        dict(P.shared_closes("BTC"))[closes[-1][0]] * 1.0004, abs=0.1
    )


def test_binance_recorded_ticker_and_klines_leave_out_the_open_bar(server: MockServer) -> None:
    obs = make("binance", server.url).fetch(NOW)
    assert obs.spots == {"BTC": P.SPOTS["BTC"], "ETH": P.SPOTS["ETH"]}
    recorded = P.shared_closes("ETH")
    assert list(obs.closes["ETH"]) == recorded[:-1]
    assert obs.bar_seconds == P.DAY


def test_coinbase_recorded_candles_come_newest_first_and_are_sorted(server: MockServer) -> None:
    obs = make("coinbase", server.url).fetch(NOW)
    assert obs.spots["BTC"] == pytest.approx(P.SPOTS["BTC"] * 1.00031, abs=0.01)
    times = [t for t, _ in obs.closes["BTC"]]
    assert times == sorted(times) and len(times) == 120
    assert NOW - obs.time <= 1  # ISO time with microseconds


def test_chainlink_recorded_round_gives_the_answer_and_its_update_time(
    server: MockServer,
) -> None:
    obs = make("chainlink", server.url).fetch(NOW)
    assert obs.spots["ETH"] == pytest.approx(P.SPOTS["ETH"] * 1.0001, abs=1e-6)
    assert obs.time == NOW - 1_740  # updatedAt: the age the composite judges


@pytest.mark.parametrize("kind", KINDS)
def test_a_timeout_is_a_feed_error(server: MockServer, kind: str) -> None:
    server.fault = "timeout"
    with pytest.raises(FeedError, match="timeout"):
        make(kind, server.url, timeout=0.3).fetch(NOW)


@pytest.mark.parametrize("kind", KINDS)
def test_an_http_error_is_a_feed_error(server: MockServer, kind: str) -> None:
    server.fault = "http_error"
    with pytest.raises(FeedError, match="HTTP 502"):
        make(kind, server.url).fetch(NOW)


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_json_is_a_feed_error(server: MockServer, kind: str) -> None:
    server.fault = "malformed"
    with pytest.raises(FeedError, match="malformed JSON"):
        make(kind, server.url).fetch(NOW)


@pytest.mark.parametrize("kind", KINDS)
def test_an_unreachable_provider_is_a_feed_error(kind: str) -> None:
    s = MockServer(replay_route)
    url = s.url
    s.stop()
    with pytest.raises(FeedError, match="cannot reach"):
        make(kind, url, timeout=0.5).fetch(NOW)


@pytest.mark.parametrize("kind", KINDS)
def test_recorded_times_read_an_hour_later_are_an_hour_old(server: MockServer, kind: str) -> None:
    """A stale payload is parsed with its own time, so the composite can judge its age."""
    obs = make(kind, server.url).fetch(NOW + 3600)
    assert obs.time <= NOW


def test_a_deribit_error_envelope_is_a_feed_error(server: MockServer) -> None:
    server.route = lambda *_: {"jsonrpc": "2.0", "error": {"code": 10001, "message": "x"}}
    with pytest.raises(FeedError, match="error"):
        make("deribit", server.url).fetch(NOW)


def test_a_chainlink_round_carried_from_an_older_round_is_refused(server: MockServer) -> None:
    def route(method, path, query, body):  # type: ignore[no-untyped-def]
        if body["params"][0]["data"] == "0x313ce567":
            return P.rpc_result(P.chainlink_decimals(), body["id"])
        from eth_abi.abi import encode

        data = encode(["uint80", "int256", "uint256", "uint256", "uint80"], [9, 10**12, 1, 1, 8])
        return P.rpc_result("0x" + data.hex(), body["id"])

    server.route = route
    with pytest.raises(FeedError, match="carried from round 8"):
        make("chainlink", server.url).fetch(NOW)


def test_a_price_quoted_as_a_non_number_string_is_a_feed_error(server: MockServer) -> None:
    server.route = lambda *_: {**P.binance_ticker("BTCUSDT", 1.0, NOW), "lastPrice": "n/a"}
    with pytest.raises(FeedError, match="not a number"):
        make("binance", server.url).fetch(NOW)
