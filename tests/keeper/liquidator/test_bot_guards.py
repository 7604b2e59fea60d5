"""Every guard of the bot, tripped on Anvil after the crash: the view overrules the bound, the
bot's own IM headroom, the expected profit, maxCashOut against a change before mining, a
leaf source that does not hold the vault's epoch, and dry runs."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from web3 import Web3

from keeper.attestation import MarginProof
from keeper.errors import LeafSourceError
from keeper.liquidator.sources import LeafSource, StoreLeafSource
from risk_engine.units import WAD

from .conftest import Crash

pytestmark = pytest.mark.anvil

GWEI = 10**9


def _crashed(crash: Crash) -> int:
    crash.shock()
    e = crash.epoch()
    crash.lift_edge(e)
    assert crash.bound(crash.victim, e) < 0
    return e


def test_bound_negative_but_view_healthy_is_not_sent(crash: Crash) -> None:
    e = _crashed(crash)
    seen: list[tuple[str, str]] = []

    def rescue(stage: str, account: str) -> None:
        seen.append((stage, account))
        if stage == "bound" and account == crash.victim.address:
            # between the bot's read and its view call the victim tops up its account
            crash.deposit_cash(crash.victim, 5_000 * 10**6)

    bot = crash.bot(hook=rescue)
    nonce = crash.world.w3.eth.get_transaction_count(crash.liquidator.address)
    report = bot.tick()
    (c,) = report.candidates
    assert c.account == crash.victim.address and c.mm_surplus_hi < 0
    (o,) = report.outcomes
    assert o.status == "skipped" and o.reason is not None
    assert o.reason.startswith("view_healthy") and o.mm_surplus_hi >= 0
    # nothing was simulated past the view, nothing sent
    assert [s for s, _ in seen] == ["bound"]
    assert crash.liquidation_txs() == []
    assert crash.world.w3.eth.get_transaction_count(crash.liquidator.address) == nonce
    assert crash.positions(crash.victim) == [-10 * WAD]
    assert crash.bound(crash.victim, e) >= 0


def test_not_enough_im_headroom_is_skipped_with_a_logged_reason(
    crash: Crash, caplog: pytest.LogCaptureFixture
) -> None:
    _crashed(crash)
    bot = crash.bot(crash.pauper)  # 100 USD of cash: cannot carry the victim's IM
    with caplog.at_level(logging.INFO, logger="keeper.liquidator"):
        report = bot.tick()
    (o,) = report.outcomes
    assert o.status == "skipped" and (o.reason or "").startswith("insufficient_headroom")
    assert o.headroom is not None and o.headroom < 0
    assert crash.liquidation_txs() == [] and crash.positions(crash.victim) == [-10 * WAD]
    (rec,) = [r for r in caplog.records if r.getMessage() == "liquidation skipped"]
    assert rec.reason.startswith("insufficient_headroom")  # type: ignore[attr-defined]
    assert rec.account == crash.victim.address  # type: ignore[attr-defined]
    # the contract agrees: the same liquidation sent anyway reverts on the IM check
    leaf = crash.leaf(crash.victim, crash.pipeline.last_result.epoch)  # type: ignore[union-attr]
    from keeper.liquidator.sources import empty_proof

    fn = crash.world.vault.functions.liquidate(
        crash.victim.address, leaf.to_abi(), empty_proof(crash.pauper.address).to_abi(), 10**30
    )
    with pytest.raises(Exception, match="InsufficientMargin"):
        crash.world.tx(fn, crash.pauper)
    # a minimum headroom the rich liquidator cannot keep is also a skip
    rich = crash.bot(min_headroom_usd=10_000_000.0)
    (o,) = rich.tick().outcomes
    assert o.status == "skipped" and (o.reason or "").startswith("insufficient_headroom")
    assert o.headroom is not None and o.headroom > 0


def test_takeover_buffer_read_from_the_vault_counts_against_the_headroom(crash: Crash) -> None:
    _crashed(crash)
    (o,) = crash.bot(dry_run=True).tick().outcomes  # buffer 0: the takeover fits
    assert o.status == "simulated" and o.headroom is not None and o.headroom > 0
    assert o.max_cash_out is not None and o.net_cash_paid is not None
    # 1 USD more than the contract's margin (which counts netCashPaid, not maxCashOut)
    buffer = o.headroom + (o.max_cash_out - o.net_cash_paid) + WAD
    w = crash.world
    w.tx(w.vault.functions.setTakeoverBuffer(buffer), w.owner)
    (o2,) = crash.bot().tick().outcomes
    assert o2.status == "skipped" and (o2.reason or "").startswith("insufficient_headroom")
    assert "takeover buffer" in (o2.reason or "")
    assert o2.headroom == o.headroom - buffer  # the same sum, less the buffer
    assert crash.liquidation_txs() == [] and crash.positions(crash.victim) == [-10 * WAD]
    # the contract agrees: sent anyway (at the bot's own limit), it reverts on the IM check
    from keeper.liquidator.sources import empty_proof

    leaf = crash.leaf(crash.victim, crash.pipeline.last_result.epoch)  # type: ignore[union-attr]
    fn = w.vault.functions.liquidate(
        crash.victim.address,
        leaf.to_abi(),
        empty_proof(crash.liquidator.address).to_abi(),
        o2.max_cash_out,
    )
    with pytest.raises(Exception, match="InsufficientMargin"):
        w.tx(fn, crash.liquidator)


def test_state_change_between_decision_and_mining_is_capped_by_max_cash_out(
    crash: Crash,
) -> None:
    e = _crashed(crash)
    w3: Web3 = crash.world.w3
    hi = crash.bound(crash.victim, e)
    deposit6 = 500 * 10**6  # raises the payment by 500 USD, keeps the bound < 0
    assert hi + 500 * WAD < 0

    raced: list[str] = []
    deposit_block: list[int] = []

    def race(stage: str, account: str) -> None:
        if raced == ["sent"]:
            return  # once
        if stage == "checked":
            w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[attr-defined]
        elif stage == "sent":
            tx = crash.world.vault.functions.depositCash(deposit6).transact(
                {
                    "from": crash.victim.address,
                    "maxPriorityFeePerGas": 50 * GWEI,
                    "maxFeePerGas": 200 * GWEI,
                    "gas": 300_000,
                }
            )
            w3.provider.make_request("evm_mine", [])  # type: ignore[attr-defined]
            w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[attr-defined]
            r = w3.eth.get_transaction_receipt(tx)
            raced.append("sent")
            deposit_block.append(int(r["blockNumber"]))
            assert r["status"] == 1

    crash.world.tx(crash.world.usdc.functions.mint(crash.victim.address, deposit6), crash.victim)
    bot = crash.bot(hook=race, slippage_usd=10.0, slippage_fraction=0.0)
    (o,) = bot.tick().outcomes
    assert o.status == "reverted", o
    assert "LiquidationCostTooHigh" in (o.reason or "")
    assert o.max_cash_out == (o.net_cash_paid or 0) + 10 * WAD
    # the victim's deposit and the liquidation were mined in the same block, deposit first
    (tx,) = crash.liquidation_txs()
    assert tx.status == "reverted" and raced == ["sent"]
    assert tx.block_number == deposit_block[0]
    assert crash.positions(crash.victim) == [-10 * WAD]
    assert crash.world.state(crash.liquidator)["sizes"] == []
    # the next tick prices the new state and liquidates
    (o2,) = bot.tick().outcomes
    assert o2.status == "liquidated"
    assert (o2.net_cash_paid or 0) >= (o.net_cash_paid or 0) + 500 * WAD


def test_unprofitable_is_skipped_unless_the_bot_is_a_backstop(crash: Crash) -> None:
    e = _crashed(crash)
    # an expected profit above what the penalty leaves: skipped
    (o,) = crash.bot(min_profit_usd=1_000_000.0).tick().outcomes
    assert o.status == "skipped" and (o.reason or "").startswith("unprofitable")
    assert crash.liquidation_txs() == []
    # with no profit floor it liquidates
    (o,) = crash.bot(min_profit_usd=None).tick().outcomes
    assert o.status == "liquidated"
    assert crash.bound(crash.edge, e) > 0


class _Lagging(LeafSource):
    def account_leaves(self, epoch: int, root: bytes, accounts: Any) -> dict[str, MarginProof]:
        raise LeafSourceError(f"no epoch {epoch}")


def test_leaf_source_without_the_vaults_epoch_skips_the_tick(crash: Crash) -> None:
    _crashed(crash)
    report = crash.bot(source=_Lagging()).tick()
    assert report.skipped is not None and report.skipped.startswith("leaves")
    assert report.outcomes == () and crash.liquidation_txs() == []
    # a store that holds another root for that epoch is refused the same way
    store_src = StoreLeafSource(crash.store)
    ep = crash.world.vault.functions.currentEpoch().call()
    with pytest.raises(LeafSourceError):
        store_src.account_leaves(int(ep[0]), b"\x01" * 32, [crash.victim.address])


def test_tampered_leaf_is_ignored(crash: Crash) -> None:
    _crashed(crash)

    class Tampered(StoreLeafSource):
        def account_leaves(self, epoch: int, root: bytes, accounts: Any) -> dict[str, MarginProof]:
            out = super().account_leaves(epoch, root, accounts)
            k = crash.hedged.address.lower()
            p = out[k]
            from dataclasses import replace

            out[k] = MarginProof(replace(p.leaf, equity=0), p.proof)  # looks bankrupt
            return out

    report = crash.bot(source=Tampered(crash.store)).tick()
    assert crash.hedged.address not in [c.account for c in report.candidates]
    assert report.liquidated == (crash.victim.address,)


def test_dry_run_simulates_and_sends_nothing(crash: Crash) -> None:
    _crashed(crash)
    (o,) = crash.bot(dry_run=True).tick().outcomes
    assert o.status == "simulated"
    assert crash.liquidation_txs() == [] and crash.positions(crash.victim) == [-10 * WAD]
