"""A -90 % day on a collateral token (GOV) never stops the keeper: every epoch is posted,
GOV is margined at the capped range and haircut, and a book whose collateral is mostly GOV
is liquidated by the bot, which takes the subaccount over by transfer (docs/operations.md,
"Refuse or cap"; docs/protocol.md §6).

The simulator runs at ``time_scale=86_400`` (one market day per clock second), so the
crash enters the daily return history at the next day boundary: the EWMA vol of GOV then
jumps and the engine caps the vol-scaled range and haircut at ``scan.max_range``. Each
epoch here first moves the chain's clock 2 s on (two market days): the day boundaries then
fall where the test expects them however fast the machine runs the epochs (on a fast one,
six epochs took under a second of wall clock and crossed no boundary).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from keeper.chain import ChainAdapter
from keeper.eip712 import Epoch
from keeper.feeds import SimulatedFeed
from keeper.liquidator.bot import LiquidatorBot
from keeper.metrics import KeeperMetrics
from keeper.pipeline import EpochPipeline
from keeper.store import Store
from keeper.verify import verify_epoch
from risk_engine import load_params
from risk_engine.units import WAD
from scripts.anvil import AnvilNode
from scripts.pipeline_world import (
    World,
    build_world,
    leaves_from_store,
    make_feed,
    make_pipeline,
)
from tests.keeper.anvil_world import liquidator_bot, mined_epoch, mm_surplus_hi

pytestmark = pytest.mark.anvil

GOV_COLLATERAL = (("WETH", 18, "ETH"), ("WBTC", 8, "BTC"), ("GOV", 18, "GOV"))


@dataclass
class GovCrash:
    world: World
    store: Store
    pipeline: EpochPipeline
    feed: SimulatedFeed
    metrics: KeeperMetrics
    victim: LocalAccount
    hedged: LocalAccount
    liquidator: LocalAccount

    def epoch(self) -> int:
        """Move the chain's clock 2 s (two market days) on, then run one epoch."""
        self.world.w3.provider.make_request("evm_increaseTime", [2])  # type: ignore[arg-type]
        self.world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        return mined_epoch(self.pipeline)

    def positions(self, who: LocalAccount) -> list[int]:
        return list(self.world.state(who)["sizes"])

    def bound(self, who: LocalAccount, epoch: int) -> int:
        """The vault's MM surplus upper bound of ``who`` now, from its leaf in ``epoch``."""
        return mm_surplus_hi(self.world, self.store, who, epoch)

    def bot(self) -> LiquidatorBot:
        """The liquidator bot (its own code path: leaf source, checks, simulate, send)."""
        return liquidator_bot(self.world, self.store, self.liquidator)


@pytest.fixture
def gov_crash(anvil: AnvilNode, tmp_path: Path) -> Iterator[GovCrash]:
    world = build_world(anvil.web3(), collateral=GOV_COLLATERAL)
    store = Store(tmp_path / "keeper.sqlite", epochs_dir=tmp_path / "epochs")
    feed = make_feed(world, time_scale=86_400)
    metrics = KeeperMetrics()
    pipeline = make_pipeline(world, store, feed=feed, metrics=metrics)
    maker, victim, hedged, liquidator = (
        world.actor(n) for n in ("maker", "victim", "hedged", "liquidator")
    )
    world.fund_cash(maker, 1_000_000)
    # the liquidator's capital is USDC in its wallet: it deposits into what it takes over
    world.tx(world.usdc.functions.mint(liquidator.address, 200_000 * 10**6), liquidator)
    # the victim's collateral is GOV only (10,000 GOV = 20,000 USD at the start price);
    # the healthy book holds the same GOV and short puts, but 20,000 USD cash besides
    world.fund_token(victim, "GOV", 10_000 * WAD)
    world.fund_token(hedged, "GOV", 10_000 * WAD)
    world.fund_cash(hedged, 20_000)
    c = GovCrash(world, store, pipeline, feed, metrics, victim, hedged, liquidator)
    e = c.epoch()
    leaves = leaves_from_store(store, e)
    for n, who in enumerate((victim, hedged), start=1):
        q, sig = world.quote(maker, who, [("ETH-P-3000", 10, 100)], nonce=n)
        world.execute(q, sig, who, leaves)
    c.epoch()
    c.epoch()  # the leaves now carry the books
    try:
        yield c
    finally:
        store.close()


def test_a_minus_90_percent_day_on_a_collateral_token_is_capped_posted_and_liquidated(
    gov_crash: GovCrash, caplog: pytest.LogCaptureFixture
) -> None:
    c = gov_crash
    max_range = load_params().scan.max_range
    metrics = c.metrics
    before = c.pipeline.last_result.epoch  # type: ignore[union-attr]
    assert c.bound(c.victim, before) > 0  # healthy before the crash
    assert c.store.get_capped(before) == []
    c.feed.push_shock({"GOV": -0.90}, stress=False)
    bot = c.bot()
    epochs, liquidated_at = [], None
    with caplog.at_level(logging.INFO, logger="keeper.pipeline"):
        for n in range(6):  # the crash epoch and five after: none refused
            epochs.append(c.epoch())
            if liquidated_at is None and bot.tick().liquidated:
                liquidated_at = n
    assert epochs == list(range(before + 1, before + 7))
    assert c.world.vault.functions.currentEpoch().call()[0] == epochs[-1]
    assert not [r for r in caplog.records if r.getMessage() == "epoch refused"]
    # from the first day boundary after the crash (the sim runs a day a second, so on a
    # loaded machine that can be a few epochs later), GOV's range and haircut are capped
    capped = {e: {v.name: v for v in c.store.get_capped(e)} for e in epochs}
    hit = [e for e in epochs if "token_vol_haircut[GOV]" in capped[e]]
    assert hit
    e = hit[0]
    for name in ("token_vol_haircut[GOV]", "scan_range[GOV]"):
        v = capped[e][name]
        assert v.capped == max_range < v.raw
    # the token table margins GOV at (at least) the capped haircut, below 100 %
    gov = c.world.tokens["GOV"].address.lower()
    header = Epoch.from_json(c.store.get_epoch(e).header)  # type: ignore[union-attr, arg-type]
    (row,) = [t for t in header.tokens if t.token.lower() == gov]
    assert max_range * WAD <= row.down_shock < WAD
    # one log line per capped value, the metric counted, the epoch file lists them
    lines = [r for r in caplog.records if r.getMessage() == "value capped"]
    assert {(r.epoch, r.value) for r in lines} >= {(e, n) for n in capped[e]}  # type: ignore[attr-defined]
    total = metrics.capped_values.labels(name="token_vol_haircut[GOV]")._value.get()
    assert total == len(hit)
    assert '"token_vol_haircut[GOV]"' in c.store.epoch_file_path(e).read_text()
    # keeper verify recomputes the same root from the stored market, and the same caps
    chain = ChainAdapter(c.world.w3, c.world.vault.address)
    v = verify_epoch(chain, c.store, e, load_params())
    assert v.match and set(v.capped) == set(capped[e].values())
    assert "capped token_vol_haircut[GOV]" in v.render()
    # the GOV-collateralised book was liquidated: its subaccount, positions and all, now
    # belongs to the liquidator; the one with cash besides was not
    assert liquidated_at is not None
    victim = c.world.account(c.victim)
    assert c.world.owner_of(victim) == c.liquidator.address
    assert c.positions(c.victim) == [-10 * WAD]
    assert c.world.owner_of(c.world.account(c.hedged)) == c.hedged.address
    assert c.positions(c.hedged) == [-10 * WAD]
    assert c.bound(c.hedged, epochs[-1]) > 0
