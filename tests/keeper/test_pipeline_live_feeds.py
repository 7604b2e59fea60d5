"""The keeper on a composite of three mock venues (Deribit, Binance and Coinbase formats on
local servers) against a real Anvil: one venue freezes, then one lies by 10 %; epochs keep
posting on what remains, the confidence add-on appears in the instrument leaves, and a
signer whose own feed disagrees refuses to sign (docs/security.md section 14)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from eth_account import Account

from keeper.attestation import InstrumentLeaf
from keeper.chain import ChainAdapter
from keeper.eip712 import Epoch, epoch_digest, recover_signer
from keeper.epoch_build import compute_epoch
from keeper.epoch_check import EpochRecomputer, MarketTolerances
from keeper.feeds.base import MarketState
from keeper.feeds.composite import CompositeFeed, CompositeSettings
from keeper.feeds.deribit import DeribitSource
from keeper.feeds.spot import BinanceSpotSource, CoinbaseSpotSource
from keeper.metrics import KeeperMetrics
from keeper.signers import RemoteSigners, SignerPolicy, SignerService
from keeper.store import Store
from risk_engine import load_params
from risk_engine.units import WAD
from scripts.anvil import AnvilNode, free_port
from scripts.pipeline_world import START_PRICES, World, make_pipeline
from scripts.toolchain.paths import REPO_ROOT

from .anvil_world import mined_epoch
from .feeds.mock_venue import LiveVenue, MockServer

pytestmark = pytest.mark.anvil

SETTINGS = CompositeSettings(
    symbols=("BTC", "ETH"),
    tokens={"WETH": "ETH", "WBTC": "BTC"},
    freeze_seconds=1,  # the test's market moves every epoch; a live one would use minutes
)


class Venues:
    def __init__(self, *, lie: float = 0.0) -> None:
        prices = {s: START_PRICES[s] for s in ("BTC", "ETH")}
        self.venue = {
            k: LiveVenue(k, dict(prices), lie=lie) for k in ("deribit", "binance", "coinbase")
        }
        self.server = {k: MockServer(v.route) for k, v in self.venue.items()}

    def composite(self, metrics: KeeperMetrics | None = None, *only: str) -> CompositeFeed:
        url = {k: s.url for k, s in self.server.items()}
        sources = {
            "deribit": DeribitSource("deribit", url["deribit"], {"BTC": "BTC", "ETH": "ETH"}),
            "binance": BinanceSpotSource(
                "binance", url["binance"], {"BTC": "BTCUSDT", "ETH": "ETHUSDT"}
            ),
            "coinbase": CoinbaseSpotSource(
                "coinbase", url["coinbase"], {"BTC": "BTC-USD", "ETH": "ETH-USD"}
            ),
        }
        chosen = [v for k, v in sources.items() if not only or k in only]
        return CompositeFeed(chosen, SETTINGS, metrics=metrics)

    def move(self, factor: float) -> None:
        for v in self.venue.values():
            v.prices = {s: p * factor for s, p in v.prices.items()}

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


def stored(store: Store, epoch: int) -> tuple[Epoch, str, MarketState]:
    rec = store.get_epoch(epoch)
    market = store.get_market_snapshot(epoch)
    assert rec is not None and rec.header is not None and market is not None
    return Epoch.from_json(rec.header), market, MarketState.from_json(market)


def eth_perp_loss(store: Store, world: World, epoch: int) -> int:
    """The ETH-PERP leaf's lossPerUnitLong of ``epoch`` (WAD)."""
    for r in store.get_leaves(epoch, "instrument"):
        leaf = InstrumentLeaf.from_json(r.fields)
        if leaf.instrument == world.instruments["ETH-PERP"]:
            return leaf.loss_per_unit_long
    raise AssertionError("no ETH-PERP leaf")


def signer_services(world: World, honest: Venues, liars: Venues) -> list[SignerService]:
    """Three signer services, each recomputing on its own node connection and reading the
    market itself: two from the honest venues, the third from venues quoting 10 % high."""
    params = load_params()
    out = []
    for key, venues in zip(world.signer_keys, (honest, honest, liars), strict=True):
        checker = EpochRecomputer(
            ChainAdapter(world.w3, world.vault.address),
            params,
            reference=venues.composite().tick,  # its own feed: a separate composite
            tolerances=MarketTolerances(),
        )
        s = SignerService(
            key,
            SignerPolicy(
                chain_id=world.w3.eth.chain_id,
                vault=world.vault.address,
                allowed_keepers=(world.sender.address,),
            ),
            checker=checker,
        )
        s.start()
        out.append(s)
    return out


def test_epochs_keep_posting_as_a_venue_freezes_then_one_lies_with_the_add_on_in_the_leaves(
    world: World, store: Store, venues: Venues
) -> None:
    alice = world.actor("alice")
    world.fund_cash(alice, 20_000)
    world.fund_token(alice, "WETH", 2 * 10**18)
    liars = Venues(lie=0.10)
    services = signer_services(world, venues, liars)
    try:
        agg = RemoteSigners([s.url for s in services], auth_key=world.sender.key)
        metrics = KeeperMetrics()
        pipeline = make_pipeline(
            world,
            store,
            feed=venues.composite(metrics),  # type: ignore[arg-type]
            signer=agg,
            metrics=metrics,
        )
        first = mined_epoch(pipeline)
        assert stored(store, first)[2].confidence == {"BTC": 1.0, "ETH": 1.0}
        refused = agg.last_errors[services[2].url]
        assert re.search(r"BTC spot .* deviates 9\.\d+% .*max 2\.00%", refused), refused
        assert first not in services[2].signed and first in services[0].signed

        venues.venue["binance"].freeze()
        time.sleep(1.1)
        venues.move(1.002)
        frozen = mined_epoch(pipeline)
        assert stored(store, frozen)[2].confidence["ETH"] == pytest.approx(2 / 3, abs=0.02)
        assert metrics.feed_dropped.labels(source="binance", reason="frozen")._value.get() >= 2

        venues.venue["coinbase"].lie = 0.10
        venues.move(1.002)
        lied = mined_epoch(pipeline)
    finally:
        for s in services:
            s.stop()
        liars.stop()
    assert world.vault.functions.currentEpoch().call()[0] == lied
    assert services[0].signed.keys() == services[1].signed.keys() == {first, frozen, lied}
    assert not services[2].signed, "the signer whose own feed disagrees signed nothing"
    header, _, market = stored(store, lied)
    conf = market.confidence["ETH"]
    params = load_params()
    assert conf == pytest.approx(1 / 3, abs=0.02) and conf < params.confidence.threshold
    assert market.underlying("ETH").spot == pytest.approx(
        venues.venue["deribit"].prices["ETH"], abs=0.01
    )
    assert metrics.feed_dropped.labels(source="coinbase", reason="deviation")._value.get() >= 2

    # the add-on is in the posted leaf: the same epoch without the confidence has a
    # lossPerUnitLong lower by rate * (1 - confidence) * spot per unit
    chain = ChainAdapter(world.w3, world.vault.address)
    chain.index(to_block=header.snapshot_block, record=False)
    snap = dataclasses.replace(
        chain.snapshot(header.snapshot_block), config_version=header.config_version
    )
    posted_loss = eth_perp_loss(store, world, lied)
    build = compute_epoch(
        snap, dataclasses.replace(market, confidence={}), params, epoch=header.epoch
    )
    assert build.header.root != header.root
    without = next(
        leaf.loss_per_unit_long
        for leaf in build.instrument_leaves
        if leaf.instrument == world.instruments["ETH-PERP"]
    )
    add_on = params.confidence.rate * (1 - conf) * market.underlying("ETH").spot
    assert (posted_loss - without) / WAD == pytest.approx(add_on, rel=1e-6)


def feed_toml(venues: Venues) -> str:
    url = {k: s.url for k, s in venues.server.items()}
    return f"""
[feed]
kind = "composite"

[feed.composite]
symbols = ["BTC", "ETH"]
tokens = {{ WETH = "ETH", WBTC = "BTC" }}
max_future_seconds = 120          # covers the keeper's read to this service's (process start)

[[feed.sources]]
name = "deribit"
kind = "deribit"
url = "{url["deribit"]}"
symbols = {{ BTC = "BTC", ETH = "ETH" }}

[[feed.sources]]
name = "binance"
kind = "binance"
url = "{url["binance"]}"
symbols = {{ BTC = "BTCUSDT", ETH = "ETHUSDT" }}

[[feed.sources]]
name = "coinbase"
kind = "coinbase"
url = "{url["coinbase"]}"
symbols = {{ BTC = "BTC-USD", ETH = "ETH-USD" }}

[feed.check]
max_price_deviation = 0.02
max_vol_deviation = 0.05
max_return_deviation = 0.01
"""


def start_signer_process(
    world: World, anvil_url: str, key: str, feed_file: Path, tmp: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keeper.cli",
            "signer",
            "--port",
            str(port),
            "--rpc-url",
            anvil_url,
            "--chain-id",
            str(world.w3.eth.chain_id),
            "--vault",
            world.vault.address,
            "--allow-keeper",
            world.sender.address,
            "--state",
            str(tmp / f"signed-{port}.json"),
            "--feed-config",
            str(feed_file),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PM_SIGNER_KEYS": key, "PM_KEYSTORE": "", "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(proc.communicate()[1].decode()[-2000:])


def test_keeper_signer_with_feed_config_signs_what_its_venues_confirm_and_refuses_a_lie(
    world: World, anvil: AnvilNode, store: Store, venues: Venues, tmp_path: Path
) -> None:
    world.fund_cash(world.actor("alice"), 1_000)
    pipeline = make_pipeline(
        world,
        store,
        feed=venues.composite(),
        send_tx=False,  # type: ignore[arg-type]
    )
    r = pipeline.run_epoch()
    assert r.status == "built", r
    header, market_json, _ = stored(store, 1)
    liars = Venues(lie=0.10)
    honest_file, lying_file = tmp_path / "honest.toml", tmp_path / "lying.toml"
    honest_file.write_text(feed_toml(venues))
    lying_file.write_text(feed_toml(liars))
    procs = []
    try:
        honest, honest_url = start_signer_process(
            world, anvil.url, world.signer_keys[0], honest_file, tmp_path
        )
        procs.append(honest)
        lying, lying_url = start_signer_process(
            world, anvil.url, world.signer_keys[1], lying_file, tmp_path
        )
        procs.append(lying)
        addresses = [Account.from_key(k).address for k in world.signer_keys[:2]]
        agg = RemoteSigners([honest_url, lying_url], auth_key=world.sender.key)
        sigs = agg.sign(header, pipeline.domain, quorum=1, signers=addresses, market=market_json)
        assert [recover_signer(epoch_digest(header, pipeline.domain), s) for s in sigs] == [
            addresses[0]
        ]
        assert re.search(
            r"market snapshot refused: BTC spot .* deviates", agg.last_errors[lying_url]
        )
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        liars.stop()
