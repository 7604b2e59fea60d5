"""A liquidator holding 5,000 USD takes a naked book over in a crash.

Before liquidation by transfer this was impossible below the takeover buffer (202,500 USD on
the default deployment) plus the book's IM: the liquidator merged the book into its own
account. Now it receives the subaccount as it is and deposits only what brings it to IM
(docs/protocol.md §6): IM deficit + pay + fee - covered.

The naked book is the liquidator crash scenario's victim (tests/keeper/liquidator/conftest.py):
10 short ETH puts (strike 3,000) on 8,000 USD. After ETH -30 % with a vol spike its capital
need is about 4,050 USD (IM deficit ~1,400 + pay ~2,070 + fee ~575 on seed 7), below the
5,000 USD the liquidator holds (asserted from the vault's view before the bot acts).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from keeper.pipeline import EpochPipeline
from keeper.store import Store
from risk_engine.units import WAD
from scripts.anvil import AnvilNode
from scripts.pipeline_world import World, build_world, leaves_from_store, make_feed, make_pipeline
from tests.keeper.anvil_world import account_leaf, liquidator_bot, mined_epoch

pytestmark = pytest.mark.anvil

WALLET_USD = 5_000
USDC6 = 10**6


@dataclass
class Small:
    world: World
    store: Store
    pipeline: EpochPipeline
    naked: LocalAccount
    liquidator: LocalAccount


@pytest.fixture
def small(anvil: AnvilNode, tmp_path: Path) -> Iterator[Small]:
    world = build_world(anvil.web3())
    store = Store(tmp_path / "keeper.sqlite", epochs_dir=tmp_path / "epochs")
    feed = make_feed(world, time_scale=1e-6)
    pipeline = make_pipeline(world, store, feed=feed)
    maker, naked, liquidator = (world.actor(n) for n in ("maker", "naked", "small liquidator"))
    world.fund_cash(maker, 1_000_000)
    world.fund_cash(naked, 8_000)
    world.fund_wallet(liquidator, WALLET_USD)
    e = mined_epoch(pipeline)
    q, sig = world.quote(maker, naked, [("ETH-P-3000", 10, 100)], nonce=1)
    world.execute(q, sig, naked, leaves_from_store(store, e))
    mined_epoch(pipeline)
    mined_epoch(pipeline)  # the leaves now carry the book
    feed.push_shock({"BTC": -0.30, "ETH": -0.30}, vol_spike=0.4)
    try:
        yield Small(world, store, pipeline, naked, liquidator)
    finally:
        store.close()


def test_a_liquidator_holding_5000_usd_takes_a_naked_book_over_in_a_crash(small: Small) -> None:
    w, vault = small.world, small.world.vault.functions
    account = w.account(small.naked)
    e = mined_epoch(small.pipeline)  # the crash epoch
    leaf = account_leaf(small.store, account, e)
    ok, mm_hi, pay, fee, covered, _uncovered, need6 = vault.checkLiquidation(
        account, leaf.to_abi()
    ).call()
    assert ok and mm_hi < 0
    assert 0 < need6 < WALLET_USD * USDC6, f"capital need {need6 / USDC6:,.2f} USD"
    im_lo = int(vault.imSurplusLo(account, leaf.to_abi()).call())
    assert im_lo < 0  # below IM: the deposit covers a deficit, not only the payments
    cash_before = int(vault.accountState(account).call()[0])
    positions = list(vault.accountState(account).call()[5])

    report = liquidator_bot(w, small.store, small.liquidator).tick()

    (o,) = report.outcomes
    assert o.status == "liquidated", o
    assert o.capital is not None and o.capital.min_deposit6 == need6 and o.deposit6 is not None
    # the subaccount changed owner with its book
    assert vault.ownerOf(account).call() == small.liquidator.address
    assert list(vault.accountState(account).call()[5]) == positions == [-10 * WAD]
    # at or above IM after, on the same leaf (the liquidation leaves stateNonce as it was)
    assert int(vault.imSurplusLo(account, leaf.to_abi()).call()) >= 0
    # the old owner's payout is claimable, and claiming it pays the owner's wallet
    (ev,) = w.vault.events.Liquidated().get_logs(from_block=w.deployment.block)
    assert ev["args"]["previousOwner"] == small.naked.address and ev["args"]["pay"] == pay > 0
    assert vault.payoutOf(small.naked.address).call() == pay
    wallet = int(w.usdc.functions.balanceOf(small.naked.address).call())
    w.tx(vault.claimPayout(), small.naked)
    assert int(w.usdc.functions.balanceOf(small.naked.address).call()) == wallet + pay // 10**12
    assert vault.payoutOf(small.naked.address).call() == pay % 10**12  # the sub-unit dust stays
    # the liquidator spent what it deposited, no more than its 5,000 USD
    spent6 = WALLET_USD * USDC6 - int(w.usdc.functions.balanceOf(small.liquidator.address).call())
    assert spent6 == o.deposit6 == int(ev["args"]["deposit6"]) <= WALLET_USD * USDC6
    # the subaccount's cash: + the deposit - (pay + fee - covered)
    assert int(vault.accountState(account).call()[0]) == (
        cash_before + o.deposit6 * 10**12 - (pay + fee - covered)
    )
