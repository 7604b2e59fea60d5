"""Every guard of the bot, tripped on Anvil after the crash: the view overrules the bound, the
capital its wallet holds against the deposit a takeover needs, a subaccount it owns or
operates, the expected profit, maxCashOut against a change before mining, a leaf source that
does not hold the vault's epoch, and dry runs. Where the bot refuses, the contract is shown
to refuse the same transaction."""

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
    seen: list[tuple[str, int]] = []

    def rescue(stage: str, account: int) -> None:
        seen.append((stage, account))
        if stage == "bound" and account == crash.id(crash.victim):
            # between the bot's read and its view call the victim tops up its account
            crash.deposit_cash(crash.victim, 5_000 * 10**6)

    bot = crash.bot(hook=rescue)
    nonce = crash.world.w3.eth.get_transaction_count(crash.liquidator.address)
    report = bot.tick()
    (c,) = report.candidates
    assert c.account == crash.id(crash.victim) and c.mm_surplus_hi < 0
    (o,) = report.outcomes
    assert o.status == "skipped" and o.reason is not None
    assert o.reason.startswith("view_healthy") and o.mm_surplus_hi >= 0
    # nothing was simulated past the view, nothing sent
    assert [s for s, _ in seen] == ["bound"]
    assert crash.liquidation_txs() == []
    assert crash.world.w3.eth.get_transaction_count(crash.liquidator.address) == nonce
    assert crash.positions(crash.victim) == [-10 * WAD]
    assert crash.bound(crash.victim, e) >= 0


def test_a_wallet_short_of_the_deposit_is_refused_with_the_figure(
    crash: Crash, caplog: pytest.LogCaptureFixture
) -> None:
    _crashed(crash)
    bot = crash.bot(crash.pauper)  # 100 USD in its wallet: cannot bring the victim to IM
    nonce = crash.world.w3.eth.get_transaction_count(crash.pauper.address)
    with caplog.at_level(logging.INFO, logger="keeper.liquidator"):
        report = bot.tick()
    (o,) = report.outcomes
    assert o.status == "skipped" and (o.reason or "").startswith("insufficient_capital")
    assert "the wallet holds 100.00 USD" in (o.reason or "")
    assert o.capital is not None and o.deposit6 is not None
    assert o.deposit6 >= o.capital.min_deposit6 > 100 * 10**6
    assert f"needs {o.deposit6 / 10**6:,.2f}" in (o.reason or "")
    # nothing sent, not even an approval
    assert crash.world.w3.eth.get_transaction_count(crash.pauper.address) == nonce
    assert crash.liquidation_txs() == [] and crash.owner(crash.victim) == crash.victim.address
    (rec,) = [r for r in caplog.records if r.getMessage() == "liquidation skipped"]
    assert rec.reason.startswith("insufficient_capital")  # type: ignore[attr-defined]
    assert rec.account == crash.id(crash.victim)  # type: ignore[attr-defined]
    assert rec.capital_need["min_deposit6"] == o.capital.min_deposit6  # type: ignore[attr-defined]
    # the contract agrees: what the pauper has does not bring the subaccount to IM
    w = crash.world
    leaf = crash.leaf(crash.victim, crash.pipeline.last_result.epoch)  # type: ignore[union-attr]
    w.tx(w.usdc.functions.approve(w.vault.address, 100 * 10**6), crash.pauper)
    fn = w.vault.functions.liquidate(crash.id(crash.victim), leaf.to_abi(), 100 * 10**6, 10**30)
    with pytest.raises(Exception, match="LiquidationDepositTooSmall"):
        w.tx(fn, crash.pauper)
    # a headroom on top that the rich liquidator's wallet cannot fund is also a skip
    rich = crash.bot(min_headroom_usd=10_000_000.0)
    (o,) = rich.tick().outcomes
    assert o.status == "skipped" and (o.reason or "").startswith("insufficient_capital")
    assert o.headroom is not None and o.headroom >= 10_000_000 * WAD


def test_the_deposit_is_the_capital_need_plus_the_slippage_allowed(crash: Crash) -> None:
    _crashed(crash)
    (o,) = crash.bot(slippage_usd=10.0, slippage_fraction=0.0).tick().outcomes
    assert o.status == "liquidated" and o.capital is not None and o.deposit6 is not None
    # minDeposit6 = ceil((netCashPaid - imSurplusLo) / 1e12); the bot adds maxCashOut's 10 USD
    assert o.capital.total - 10**12 < o.capital.im_deficit + o.capital.net_cash_paid
    assert o.capital.im_deficit + o.capital.net_cash_paid <= o.capital.total
    assert o.deposit6 - o.capital.min_deposit6 in (10 * 10**6, 10 * 10**6 + 1)
    assert o.headroom is not None and 0 <= o.headroom < 10**12


def test_a_subaccount_the_bot_owns_or_operates_is_never_liquidated(crash: Crash) -> None:
    _crashed(crash)
    w = crash.world
    victim = crash.id(crash.victim)
    leaf = crash.leaf(crash.victim, crash.pipeline.last_result.epoch)  # type: ignore[union-attr]
    # the owner itself: the vault refuses
    fn = w.vault.functions.liquidate(victim, leaf.to_abi(), 10**12, 10**30)
    with pytest.raises(Exception, match="SelfLiquidation"):
        w.tx(fn, crash.victim)
    # the victim's owner approves the bot's key as its operator: the bot skips it
    w.tx(w.vault.functions.setOperator(crash.liquidator.address, True), crash.victim)
    nonce = w.w3.eth.get_transaction_count(crash.liquidator.address)
    (o,) = crash.bot().tick().outcomes
    assert o.status == "skipped" and (o.reason or "").startswith("own_subaccount")
    assert w.w3.eth.get_transaction_count(crash.liquidator.address) == nonce
    assert crash.owner(crash.victim) == crash.victim.address
    w.tx(w.usdc.functions.approve(w.vault.address, 10**12), crash.liquidator)
    with pytest.raises(Exception, match="SelfLiquidation"):
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
    victim = crash.id(crash.victim)

    def race(stage: str, account: int) -> None:
        if raced == ["sent"]:
            return  # once
        if stage == "checked":
            w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[attr-defined]
        elif stage == "sent":
            tx = crash.world.vault.functions.depositCash(victim, deposit6).transact(
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
    assert crash.owner(crash.victim) == crash.victim.address
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
    def account_leaves(self, epoch: int, root: bytes, accounts: Any) -> dict[int, MarginProof]:
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
        store_src.account_leaves(int(ep[0]), b"\x01" * 32, [crash.id(crash.victim)])


def test_tampered_leaf_is_ignored(crash: Crash) -> None:
    _crashed(crash)

    class Tampered(StoreLeafSource):
        def account_leaves(self, epoch: int, root: bytes, accounts: Any) -> dict[int, MarginProof]:
            out = super().account_leaves(epoch, root, accounts)
            k = crash.id(crash.hedged)
            p = out[k]
            from dataclasses import replace

            out[k] = MarginProof(replace(p.leaf, equity=0), p.proof)  # looks bankrupt
            return out

    report = crash.bot(source=Tampered(crash.store)).tick()
    assert crash.id(crash.hedged) not in [c.account for c in report.candidates]
    assert report.liquidated == (crash.id(crash.victim),)


def test_dry_run_simulates_and_sends_nothing(crash: Crash) -> None:
    _crashed(crash)
    w = crash.world
    nonce = w.w3.eth.get_transaction_count(crash.liquidator.address)
    # no allowance yet: a dry run does not approve, so it cannot simulate the pull
    (o,) = crash.bot(dry_run=True).tick().outcomes
    assert o.status == "simulated" and (o.reason or "").startswith("dry_run: needs approve")
    assert w.w3.eth.get_transaction_count(crash.liquidator.address) == nonce
    w.tx(w.usdc.functions.approve(w.vault.address, 2**256 - 1), crash.liquidator)
    (o,) = crash.bot(dry_run=True).tick().outcomes
    assert o.status == "simulated" and o.reason == "dry_run"
    assert crash.liquidation_txs() == [] and crash.owner(crash.victim) == crash.victim.address


def test_a_subaccount_changed_after_the_snapshot_waits_for_the_next_epoch(crash: Crash) -> None:
    e = _crashed(crash)
    # 1 USD deposited in the block the next epoch's snapshot misses: the leaf of e + 1 does
    # not carry it, and the vault takes the subaccount over only on current-price bounds
    crash.deposit_cash(crash.victim, 10**6)
    assert crash.epoch() == e + 1 and crash.bound(crash.victim, e + 1) < 0
    w = crash.world
    nonce = w.w3.eth.get_transaction_count(crash.liquidator.address)
    (o,) = crash.bot().tick().outcomes
    assert o.status == "skipped" and (o.reason or "").startswith("previous_prices")
    assert f"from epoch {e + 2}" in (o.reason or "") and o.capital is not None
    assert w.w3.eth.get_transaction_count(crash.liquidator.address) == nonce  # no approval
    # the contract agrees
    leaf = crash.leaf(crash.victim, e + 1)
    w.tx(w.usdc.functions.approve(w.vault.address, 10**12), crash.liquidator)
    fn = w.vault.functions.liquidate(crash.id(crash.victim), leaf.to_abi(), 10**12, 10**30)
    with pytest.raises(Exception, match="BoundsFromPreviousPrices"):
        w.tx(fn, crash.liquidator)
    # the next epoch's leaf carries the deposit: taken over
    crash.epoch()
    (o,) = crash.bot().tick().outcomes
    assert o.status == "liquidated" and crash.owner(crash.victim) == crash.liquidator.address
