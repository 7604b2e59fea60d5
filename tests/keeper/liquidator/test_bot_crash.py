"""After a crash the bot takes the under-margined subaccount over within 3 epochs, and never a
healthy one (a hedged book, a book just above maintenance). A takeover moves nothing: the
subaccount changes owner with its positions, and the bot deposits what brings it to IM."""

from __future__ import annotations

import logging

import pytest

from keeper.api import ProofApi
from keeper.liquidator.sources import ApiLeafSource
from risk_engine.units import WAD

from .conftest import Crash

pytestmark = pytest.mark.anvil


def test_bound_is_the_contracts_number_and_nothing_is_sent_before_the_crash(crash: Crash) -> None:
    bot = crash.bot()
    report = bot.tick()
    # 3 books + maker; the liquidator holds no subaccount
    assert report.skipped is None and report.accounts_with_positions == 4
    assert report.candidates == () and report.outcomes == ()
    # the bot's bound equals the vault's mmSurplusHi for every account with positions
    e = report.epoch
    for who in (crash.victim, crash.hedged, crash.edge, crash.maker):
        proof = crash.leaf(who, e)
        state = crash.world.state(who)
        mine = proof.leaf.equity - proof.leaf.mm + (state["cumHi"] - proof.leaf.cum_hi)
        assert mine == crash.bound(who, e) > 0
    assert crash.liquidation_txs() == []


def test_crash_liquidates_the_naked_short_put_only(
    crash: Crash, caplog: pytest.LogCaptureFixture
) -> None:
    with ProofApi(crash.store, port=0) as api:
        bot = crash.bot(source=ApiLeafSource(api.url))
        assert bot.tick().outcomes == ()
        wallet_before = crash.wallet6(crash.liquidator)
        victim_cash = crash.world.state(crash.victim)["cash"]
        crash.shock()
        liquidated_at = None
        with caplog.at_level(logging.INFO, logger="keeper.liquidator"):
            for n in range(1, 4):
                e = crash.epoch()
                if n == 1:
                    # the crash epoch: the edge book is below MM too; its owner tops it up
                    # to +5 USD above (by the contract's bound) before the bot looks
                    assert crash.bound(crash.edge, e) < 0
                    assert 5 * WAD <= crash.lift_edge(e) < 5 * WAD + 10**12
                    assert crash.bound(crash.hedged, e) > 1_000 * WAD
                report = bot.tick()
                assert set(report.liquidated) <= {crash.id(crash.victim)}
                if report.liquidated:
                    liquidated_at = n
                    break
        assert liquidated_at is not None and liquidated_at <= 3
        (o,) = [x for x in report.outcomes if x.status == "liquidated"]
        # the victim's subaccount changed owner with its book; the healthy ones kept theirs
        assert crash.owner(crash.victim) == crash.liquidator.address
        assert crash.positions(crash.victim) == [-10 * WAD]
        assert sorted(crash.positions(crash.hedged)) == [-10 * WAD, -5 * WAD]
        assert crash.positions(crash.edge) == [-10 * WAD]
        assert crash.owner(crash.edge) == crash.edge.address
        # profit = equity taken - cash paid
        assert o.profit is not None and o.equity_taken is not None and o.net_cash_paid is not None
        assert o.profit == o.equity_taken - o.net_cash_paid and o.profit > 0
        assert o.net_cash_paid <= (o.max_cash_out or 0)
        assert o.equity_taken > 0  # below maintenance, not bankrupt
        # the capital: the view's need, the deposit covering it, out of the wallet exactly
        assert o.capital is not None and o.deposit6 is not None
        assert o.capital.net_cash_paid == o.net_cash_paid
        assert o.capital.min_deposit6 <= o.deposit6
        assert crash.wallet6(crash.liquidator) == wallet_before - o.deposit6
        w = crash.world
        vault = w.vault.functions
        assert w.usdc.functions.allowance(crash.liquidator.address, w.vault.address).call() == 0
        # the subaccount's cash: + the deposit - what was paid out of it
        assert crash.world.state(crash.victim)["cash"] == (
            victim_cash + o.deposit6 * 10**12 - o.net_cash_paid
        )
        # at or above IM after, on the same leaf; the previous owner's payment claimable
        e_used = int(vault.currentEpoch().call()[0])
        leaf = crash.leaf(crash.victim, e_used)
        assert vault.imSurplusLo(crash.id(crash.victim), leaf.to_abi()).call() >= 0
        assert vault.payoutOf(crash.victim.address).call() == o.capital.pay > 0
        # one liquidation sent, for the victim only; the edge and hedged books never
        txs = crash.liquidation_txs()
        assert len(txs) == 1 and txs[0].status == "mined"
        # two more epochs and ticks: still nothing sent for the healthy books
        for _ in range(2):
            crash.epoch()
            r = bot.tick()
            assert r.outcomes == () and r.candidates == ()
        assert len(crash.liquidation_txs()) == 1
        assert crash.positions(crash.edge) == [-10 * WAD]
        # structured log and metrics
        mined = [r for r in caplog.records if r.getMessage() == "liquidation mined"]
        assert len(mined) == 1 and mined[0].account == crash.id(crash.victim)  # type: ignore[attr-defined]
        assert mined[0].profit_usd == pytest.approx(o.profit / WAD)  # type: ignore[attr-defined]
        m = bot.metrics
        assert m is not None
        assert m.liquidations._value.get() == 1
        assert m.profit_usd._value.get() == pytest.approx(o.profit / WAD)
        assert m.deposited_usd._value.get() == pytest.approx(o.deposit6 / 10**6)


def test_two_books_below_maintenance_in_one_tick_or_one_per_tick(crash: Crash) -> None:
    crash.shock()
    e = crash.epoch()  # the edge book is not topped up: it is below MM like the victim
    assert crash.bound(crash.victim, e) < 0 and crash.bound(crash.edge, e) < 0
    bot = crash.bot(max_per_tick=1)
    r1 = bot.tick()
    assert len(r1.candidates) == 2 and len(r1.liquidated) == 1
    # the most under-margined first
    assert r1.liquidated[0] == min(r1.candidates, key=lambda c: c.mm_surplus_hi).account
    # the second one in the next tick, same epoch: each takeover stands alone (its own
    # subaccount, its own deposit), so the first one does not weigh on the second
    r2 = bot.tick()
    assert r2.epoch == r1.epoch and len(r2.liquidated) == 1
    ids = {crash.id(crash.victim), crash.id(crash.edge)}
    assert {r1.liquidated[0], r2.liquidated[0]} == ids
    for who in (crash.victim, crash.edge):
        assert crash.owner(who) == crash.liquidator.address
        assert crash.positions(who) == [-10 * WAD]
    assert sorted(crash.positions(crash.hedged)) == [-10 * WAD, -5 * WAD]
    # a third tick: both are the bot's own now, and above IM: no candidate
    assert crash.bot().tick().candidates == ()


def test_bankrupt_book_skipped_as_unprofitable_but_taken_by_a_backstop(crash: Crash) -> None:
    w = crash.world
    e = crash.pipeline.last_result.epoch  # type: ignore[union-attr]
    leaf = crash.leaf(crash.victim, e)
    # the victim takes out what its IM surplus allows: the crash then leaves it bankrupt
    w.tx(
        w.vault.functions.withdrawCash(crash.id(crash.victim), 4_500 * 10**6, leaf.to_abi()),
        crash.victim,
    )
    w.tx(w.usdc.functions.mint(crash.maker.address, 300 * 10**6), crash.maker)
    w.tx(w.vault.functions.depositInsurance(300 * 10**6), crash.maker)
    crash.shock()
    e = crash.epoch()
    crash.lift_edge(e)
    assert crash.leaf(crash.victim, e).leaf.equity < 0
    (o,) = crash.bot().tick().outcomes
    assert o.status == "skipped" and (o.reason or "").startswith("unprofitable")
    assert crash.liquidation_txs() == []
    (o,) = crash.bot(min_profit_usd=None).tick().outcomes
    assert o.status == "liquidated" and o.equity_taken is not None and o.equity_taken < 0
    # nothing paid to the bankrupt owner, the fund covered what it held, the rest recorded
    assert o.net_cash_paid == -300 * WAD
    assert w.vault.functions.payoutOf(crash.victim.address).call() == 0
    assert crash.owner(crash.victim) == crash.liquidator.address
    assert o.profit == o.equity_taken + 300 * WAD
    assert w.vault.functions.insuranceFund().call() == 0
    assert w.vault.functions.badDebt().call() > 0
    assert crash.positions(crash.edge) == [-10 * WAD]
