"""A crash scenario on a private Anvil for the liquidator bot.

Subaccounts (one per key, cash in USD, trades against a well-funded maker at the start
prices):

- ``victim``: 10 naked short ETH puts (strike 3,000) on 8,000 cash: healthy before the crash,
  below maintenance (with positive equity) after ETH -30 % with a vol spike;
- ``hedged``: the same puts plus 5 short ETH perps on 9,000 cash: the perps' gain covers
  the puts' loss, so the crash leaves it well above maintenance;
- ``edge``: the same book as the victim; after the crash epoch it deposits just enough cash
  that its MM surplus upper bound (the contract's number) is +5 USD: just above.

Liquidators hold no subaccount, only USDC in their wallet (what they deposit into the
subaccount they take over): ``liquidator`` 200,000, ``pauper`` 100.

The simulator runs at ``time_scale=1e-6`` (market seconds per clock second): between two
epochs the market moves only by the shocks the test pushes, so "just above" stays above.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from keeper.attestation import MarginProof
from keeper.feeds import SimulatedFeed
from keeper.liquidator.bot import LiquidatorBot
from keeper.liquidator.config import LiquidatorSettings
from keeper.liquidator.metrics import LiquidatorMetrics
from keeper.liquidator.sources import LeafSource
from keeper.pipeline import EpochPipeline
from keeper.store import Store
from scripts.anvil import AnvilNode
from scripts.pipeline_world import (
    USDC6,
    World,
    build_world,
    leaves_from_store,
    make_feed,
    make_pipeline,
)
from tests.keeper.anvil_world import account_leaf, liquidator_bot, mined_epoch, mm_surplus_hi


@dataclass
class Crash:
    world: World
    store: Store
    pipeline: EpochPipeline
    feed: SimulatedFeed
    maker: LocalAccount
    victim: LocalAccount
    hedged: LocalAccount
    edge: LocalAccount
    liquidator: LocalAccount
    pauper: LocalAccount
    tmp: Path

    def epoch(self) -> int:
        return mined_epoch(self.pipeline)

    def shock(self) -> None:
        self.feed.push_shock({"BTC": -0.30, "ETH": -0.30}, vol_spike=0.4)

    def id(self, who: LocalAccount) -> int:
        """``who``'s subaccount."""
        return self.world.account(who)

    def positions(self, who: LocalAccount) -> list[int]:
        return list(self.world.state(who)["sizes"])

    def owner(self, who: LocalAccount) -> str:
        """The owner of ``who``'s subaccount now (the liquidator's after a takeover)."""
        return self.world.owner_of(self.id(who))

    def wallet6(self, who: LocalAccount) -> int:
        """USDC in ``who``'s wallet (6 decimals)."""
        return int(self.world.usdc.functions.balanceOf(who.address).call())

    def leaf(self, who: LocalAccount, epoch: int) -> MarginProof:
        return account_leaf(self.store, self.id(who), epoch)

    def bound(self, who: LocalAccount, epoch: int) -> int:
        """The contract's MM surplus upper bound of ``who`` now, from its leaf in ``epoch``."""
        return mm_surplus_hi(self.world, self.store, who, epoch)

    def lift_edge(self, epoch: int, above_usd: int = 5) -> int:
        """Deposit into ``edge`` so that its bound is ``above_usd`` (+ < 1e-6) USD."""
        hi = self.bound(self.edge, epoch)
        if hi < 0:
            amount6 = -(hi // 10**12) + above_usd * USDC6  # ceil(-hi / 1e12) + above
            self.deposit_cash(self.edge, amount6)
        return self.bound(self.edge, epoch)

    def bot(
        self,
        who: LocalAccount | None = None,
        *,
        source: LeafSource | None = None,
        hook: Any = None,
        **settings: Any,
    ) -> LiquidatorBot:
        return liquidator_bot(
            self.world,
            self.store,
            who or self.liquidator,
            source=source,
            settings=LiquidatorSettings(**settings),
            metrics=LiquidatorMetrics(),
            hook=hook,
        )

    def deposit_cash(self, who: LocalAccount, amount6: int) -> None:
        """Mint and deposit ``amount6`` USDC (6 decimals) as cash (approval done at setup)."""
        self.world.tx(self.world.usdc.functions.mint(who.address, amount6), who)
        self.world.tx(self.world.vault.functions.depositCash(self.id(who), amount6), who)

    def liquidation_txs(self) -> list[Any]:
        return [t for t in self.store.txs() if t.purpose == "liquidate"]


@pytest.fixture
def crash(anvil: AnvilNode, tmp_path: Path) -> Iterator[Crash]:
    world = build_world(anvil.web3())
    store = Store(tmp_path / "keeper.sqlite", epochs_dir=tmp_path / "epochs")
    feed = make_feed(world, time_scale=1e-6)
    pipeline = make_pipeline(world, store, feed=feed)
    names = ("maker", "victim", "hedged", "edge", "liquidator", "pauper")
    maker, victim, hedged, edge, liquidator, pauper = (world.actor(n) for n in names)
    for who, usd in ((maker, 1_000_000), (victim, 8_000), (hedged, 9_000), (edge, 8_000)):
        world.fund_cash(who, usd)
    world.fund_wallet(liquidator, 200_000)
    world.fund_wallet(pauper, 100)
    c = Crash(
        world, store, pipeline, feed, maker, victim, hedged, edge, liquidator, pauper, tmp_path
    )
    e = c.epoch()
    leaves = leaves_from_store(store, e)
    for n, (who, legs) in enumerate(
        (
            (victim, [("ETH-P-3000", 10, 100)]),
            (hedged, [("ETH-P-3000", 10, 100), ("ETH-PERP", 5, 3_500)]),
            (edge, [("ETH-P-3000", 10, 100)]),
        ),
        start=1,
    ):
        q, sig = world.quote(maker, who, legs, nonce=n)
        world.execute(q, sig, who, leaves)
    c.epoch()
    c.epoch()  # the leaves now carry the books
    try:
        yield c
    finally:
        store.close()
