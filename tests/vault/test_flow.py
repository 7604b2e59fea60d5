"""End-to-end vault flow on a real node (Anvil) and in process (eth-tester / py-evm).

Leaves are written by hand here (plausible numbers, no engine): the point is the chain side —
deposits, an attested epoch, a 2-leg RFQ, a withdrawal with a proof, a liquidation — and
that every number the vault stores equals what keeper/bounds.py predicts.
"""

from __future__ import annotations

from web3.logs import DISCARD

from keeper import bounds
from keeper.attestation import AccountLeaf, MarginProof
from keeper.eip712 import (
    FundingUpdate,
    Leg,
    Quote,
    Settlement,
    epoch_digest,
    quote_digest,
    sign_epoch,
    sign_quote,
)
from risk_engine.units import WAD

from .conftest import USDC6, Market
from .scenario import (
    CALL_LEAF,
    DOWN,
    PENALTY,
    PERP_LEAF,
    SHARE,
    UP,
    alice_quote,
    execute_args,
    fund_all,
    leg_bounds,
    post_epoch_1,
    trade,
)

# ------------------------------------------------------------------------------ tests


def test_deposits_in_safe_mode_then_epoch_and_domain(market: Market) -> None:
    m = market
    assert m.vault.functions.isSafeMode().call()
    fund_all(m)
    s = m.state(m.alice)
    # Before the first epoch there is no price: a deposit adds (0, UNBOUNDED) (protocol §5).
    assert (s["cumLo"], s["cumHi"]) == (20_000 * WAD, 20_000 * WAD + bounds.UNBOUNDED)
    assert s["coll"] == [10 * WAD] and s["cash"] == 20_000 * WAD
    assert m.vault.functions.insuranceFund().call() == 1_000 * WAD
    assert m.vault.functions.domainSeparator().call() == m.domain.separator()

    alice, bob, carol = post_epoch_1(m)
    assert not m.vault.functions.isSafeMode().call()
    epoch, snap, ts, root = m.vault.functions.currentEpoch().call()
    assert m.tree is not None and (epoch, root) == (1, m.tree.root)
    logs = m.vault.events.EpochPosted().get_logs(from_block=m.w3.eth.block_number)
    assert len(logs) == 1 and logs[0]["args"]["root"] == m.tree.root
    assert logs[0]["args"]["configVersion"] == 1
    price = m.vault.functions.tokenPrices().call()
    assert price == [(m.weth.address, 3_000 * WAD, DOWN, UP)]


def test_hash_epoch_and_hash_quote_match_python(market: Market) -> None:
    m = market
    fund_all(m)
    header = m.header([PERP_LEAF])
    assert m.vault.functions.hashEpoch(header.to_abi()).call() == epoch_digest(header, m.domain)
    q = alice_quote(m)
    assert m.vault.functions.hashQuote(q.to_abi()).call() == quote_digest(q, m.domain)


def test_rfq_two_legs_moves_positions_cash_and_bounds(market: Market) -> None:
    m = market
    t = trade(m)
    q = t.quote
    # positions: maker gets +size, taker -size; each instrument sums to zero
    assert m.size(m.alice, m.perp) == 2 * WAD and m.size(m.alice, m.call) == -2 * WAD
    assert m.size(m.bob, m.perp) == -2 * WAD and m.size(m.bob, m.call) == 2 * WAD
    # cash: alice pays 2 * 3,010 for the perps and receives 2 * 155 for the calls
    alice, bob = m.state(m.alice), m.state(m.bob)
    assert alice["cash"] == (20_000 - 6_020 + 310) * WAD
    assert bob["cash"] == (50_000 + 6_020 - 310) * WAD
    assert alice["cash"] + bob["cash"] == 70_000 * WAD  # no cash created
    # running bounds: exactly the leg bounds of protocol §5
    lo, hi = leg_bounds(q, +1)
    assert (alice["cumLo"], alice["cumHi"]) == (t.alice_leaf.cum_lo + lo, t.alice_leaf.cum_hi + hi)
    lo, hi = leg_bounds(q, -1)
    assert (bob["cumLo"], bob["cumHi"]) == (t.bob_leaf.cum_lo + lo, t.bob_leaf.cum_hi + hi)
    assert m.vault.functions.nonceUsed(m.alice.address, 1).call()
    # events
    trades = m.vault.events.Trade().process_receipt(t.receipt, errors=DISCARD)
    assert [(e["args"]["instrument"], e["args"]["size"]) for e in trades] == [
        (m.perp, 2 * WAD),
        (m.call, -2 * WAD),
    ]
    executed = m.vault.events.QuoteExecuted().process_receipt(t.receipt, errors=DISCARD)
    assert len(executed) == 1 and executed[0]["args"]["quoteHash"] == quote_digest(q, m.domain)
    assert executed[0]["args"]["taker"] == m.bob.address


def test_first_trade_without_positions_needs_no_leaf(market: Market) -> None:
    """protocol §5: a side with no positions before the fill is valued on chain before it,
    plus its legs' lower bounds; no leaf. Its next trade needs one."""
    m = market
    fund_all(m)
    m.post(m.header([PERP_LEAF, CALL_LEAF]))  # no ACCOUNT leaf at all in this epoch
    m.fund_weth(m.bob, WAD)  # after the snapshot
    assert m.tree is not None
    tree = m.tree

    def args(q: Quote) -> list[object]:
        sig = sign_quote(q, m.alice, m.domain)
        leaves = {m.perp: PERP_LEAF, m.call: CALL_LEAF}
        ips = [tree.instrument_proof(leaves[leg.instrument]).to_abi() for leg in q.legs]
        empty = [
            MarginProof(AccountLeaf(w.address, 0, 0, 0, 0, 0, 0)).to_abi() for w in (m.alice, m.bob)
        ]
        return [q.to_abi(), sig, ips, *empty]

    def on_chain(who: object) -> int:
        s = m.state(who)  # type: ignore[arg-type]
        return bounds.unattested_surplus_lo(s["cash"], [(s["coll"][0], 3_000 * WAD, 18, DOWN)])

    alice0, bob0 = m.state(m.alice), m.state(m.bob)
    # 50 times the covered call: over alice's on-chain capacity (20k cash + 10 WETH haircut)
    big = Quote(
        maker=m.alice.address,
        taker=m.bob.address,
        legs=(Leg(m.perp, 50 * WAD, 3_010 * WAD), Leg(m.call, -50 * WAD, 155 * WAD)),
        nonce=1,
        deadline=m.chain.now() + 600,
    )
    want = bounds.first_trade_surplus_lo(on_chain(m.alice), leg_bounds(big, +1)[0])
    assert want < 0
    r = m.revert_of(m.vault.functions.executeQuote(*args(big)), m.bob)
    assert r.name == "InsufficientMargin"
    assert r.args_by_name == {"account": m.alice.address, "imSurplusLo": want}
    # the 2-unit quote fits both sides, both with empty proofs
    q = alice_quote(m, nonce=2)
    m.tx(m.vault.functions.executeQuote(*args(q)), m.bob)
    alice, bob = m.state(m.alice), m.state(m.bob)
    assert alice["cumLo"] == alice0["cumLo"] + leg_bounds(q, +1)[0]
    assert bob["cumLo"] == bob0["cumLo"] + leg_bounds(q, -1)[0]
    assert m.size(m.bob, m.perp) == -2 * WAD
    # both now hold positions: the empty proofs no longer do (the maker is checked first)
    r = m.revert_of(m.vault.functions.executeQuote(*args(alice_quote(m, nonce=3))), m.bob)
    assert (r.name, r.args_by_name) == ("InvalidAccountProof", {"account": m.alice.address})


def test_withdraw_with_proof_checks_the_im_bound(market: Market) -> None:
    m = market
    t = trade(m)
    assert m.tree is not None
    proof = m.tree.margin_proof(t.alice_leaf)
    before = m.state(m.alice)
    surplus = m.vault.functions.imSurplusLo(m.alice.address, proof.to_abi()).call()
    assert surplus == bounds.im_surplus_lo(
        t.alice_leaf.equity, t.alice_leaf.im, t.alice_leaf.cum_lo, before["cumLo"]
    )
    receipt = m.tx(
        m.vault.functions.withdraw(m.weth.address, WAD, proof.to_abi()), m.alice, "withdraw"
    )
    after = m.state(m.alice)
    w = bounds.withdraw_bound(WAD, 3_000 * WAD, 18, DOWN, UP)
    assert (after["cumLo"], after["cumHi"]) == (before["cumLo"] + w.lo, before["cumHi"] + w.hi)
    assert after["coll"] == [9 * WAD]
    assert m.weth.functions.balanceOf(m.alice.address).call() == WAD
    ev = m.vault.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
    assert ev[0]["args"]["account"] == m.alice.address and ev[0]["args"]["amount"] == WAD
    # a flat account with cash >= 0 needs no proof (valued on chain)
    empty = MarginProof(AccountLeaf(m.carol.address, 0, 0, 0, 0, 0, 0)).to_abi()
    m.tx(m.vault.functions.withdrawCash(1_000 * USDC6, empty), m.carol)
    assert m.usdc.functions.balanceOf(m.carol.address).call() == 1_000 * USDC6


def test_liquidation_moves_the_whole_account(market: Market) -> None:
    m = market
    trade(m)
    # alice withdrew nothing; the market moves against her: epoch 2 shows MM below zero
    m.chain.advance(600)
    alice = m.leaf(m.alice, equity=2_000 * WAD, im=9_000 * WAD, mm=7_200 * WAD)
    bob = m.leaf(m.bob, equity=52_000 * WAD, im=8_000 * WAD, mm=6_400 * WAD)
    carol = m.leaf(m.carol, equity=100_000 * WAD, im=0, mm=0)
    m.post(m.header([alice, bob, carol, PERP_LEAF, CALL_LEAF], weth_price=2_500 * WAD))
    assert m.tree is not None
    target = m.tree.margin_proof(alice)
    s = m.state(m.alice)
    expected = bounds.liquidation(
        equity=alice.equity,
        mm=alice.mm,
        leaf_cum_lo=alice.cum_lo,
        leaf_cum_hi=alice.cum_hi,
        cum_lo_now=s["cumLo"],
        cum_hi_now=s["cumHi"],
        liquidation_penalty=PENALTY,
        insurance_share=SHARE,
        insurance_fund=1_000 * WAD,
    )
    view = m.vault.functions.checkLiquidation(m.alice.address, target.to_abi()).call()
    assert view == [
        True,
        bounds.mm_surplus_hi(alice.equity, alice.mm, alice.cum_hi, s["cumHi"]),
        expected.pay,
        expected.fee,
        expected.covered,
        expected.uncovered,
    ]
    assert (
        expected.pay == 0 and expected.fee == 1_000 * WAD and expected.net_cash_paid == 1_000 * WAD
    )
    # bob is healthy: the view says so
    assert not m.vault.functions.checkLiquidation(
        m.bob.address, m.tree.margin_proof(bob).to_abi()
    ).call()[0]

    buffer = 12_345 * WAD  # the liquidator carries it on top of alice's IM (protocol §6)
    m.tx(m.vault.functions.setTakeoverBuffer(buffer), m.owner)
    carol_before = m.state(m.carol)
    liq_proof = m.tree.margin_proof(carol).to_abi()
    receipt = m.tx(
        m.vault.functions.liquidate(
            m.alice.address, target.to_abi(), liq_proof, expected.net_cash_paid
        ),
        m.carol,
        "liquidate",
    )
    a, c = m.state(m.alice), m.state(m.carol)
    assert a["instruments"] == [] and a["coll"] == [0] and a["cash"] == expected.pay
    assert a["stateNonce"] == 1 and (a["cumLo"], a["cumHi"]) == (s["cumLo"], s["cumHi"])
    assert m.size(m.carol, m.perp) == 2 * WAD and m.size(m.carol, m.call) == -2 * WAD
    assert c["coll"] == [10 * WAD]
    assert c["cash"] == carol_before["cash"] + s["cash"] - expected.net_cash_paid
    im_lo_a = bounds.im_surplus_lo(alice.equity, alice.im, alice.cum_lo, s["cumLo"])
    takeover = bounds.takeover_lo(im_lo_a, expected.net_cash_paid, buffer)
    assert takeover == im_lo_a - expected.net_cash_paid - buffer
    assert c["cumLo"] == carol_before["cumLo"] + takeover
    assert c["cumHi"] == carol_before["cumHi"] + bounds.UNBOUNDED
    for ins in (m.perp, m.call):
        assert sum(m.size(x, ins) for x in (m.alice, m.bob, m.carol)) == 0
    assert m.vault.functions.insuranceFund().call() == 1_000 * WAD + expected.fee
    ev = m.vault.events.Liquidated().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (ev["account"], ev["liquidator"], ev["fee"]) == (
        m.alice.address,
        m.carol.address,
        expected.fee,
    )
    assert m.vault.functions.badDebt().call() == 0


def test_liquidation_with_bad_debt_draws_the_fund_and_records_the_rest(market: Market) -> None:
    m = market
    trade(m)
    m.chain.advance(600)
    alice = m.leaf(m.alice, equity=-3_000 * WAD, im=9_000 * WAD, mm=7_200 * WAD)
    carol = m.leaf(m.carol, equity=100_000 * WAD, im=0, mm=0)
    m.post(m.header([alice, carol, PERP_LEAF, CALL_LEAF]))
    assert m.tree is not None
    s = m.state(m.alice)
    r = bounds.liquidation(
        equity=alice.equity,
        mm=alice.mm,
        leaf_cum_lo=alice.cum_lo,
        leaf_cum_hi=alice.cum_hi,
        cum_lo_now=s["cumLo"],
        cum_hi_now=s["cumHi"],
        liquidation_penalty=PENALTY,
        insurance_share=SHARE,
        insurance_fund=1_000 * WAD,
    )
    assert (r.pay, r.fee, r.covered, r.uncovered) == (0, 0, 1_000 * WAD, 2_000 * WAD)
    carol_cash = m.state(m.carol)["cash"]
    receipt = m.tx(
        m.vault.functions.liquidate(
            m.alice.address,
            m.tree.margin_proof(alice).to_abi(),
            m.tree.margin_proof(carol).to_abi(),
            r.net_cash_paid,  # negative: carol receives the covered part
        ),
        m.carol,
    )
    assert m.vault.functions.insuranceFund().call() == 0
    assert m.vault.functions.badDebt().call() == 2_000 * WAD
    assert m.state(m.carol)["cash"] == carol_cash + s["cash"] + 1_000 * WAD
    ev = m.vault.events.BadDebt().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (ev["account"], ev["uncovered"], ev["totalBadDebt"]) == (
        m.alice.address,
        2_000 * WAD,
        2_000 * WAD,
    )


def test_funding_and_settlement_flow(market: Market) -> None:
    m = market
    t = trade(m)
    # epoch 2 posts a funding index: longs pay 10 USD per unit
    m.chain.advance(60)
    alice = m.leaf(m.alice, equity=49_000 * WAD, im=4_500 * WAD, mm=3_600 * WAD)
    m.post(m.header([alice, PERP_LEAF, CALL_LEAF], funding=(FundingUpdate(m.perp, 10 * WAD),)))
    cash = m.state(m.alice)["cash"]
    m.tx(m.vault.functions.applyFunding(m.alice.address), m.bob)
    assert m.state(m.alice)["cash"] == cash - 20 * WAD
    assert m.state(m.alice)["cumLo"] == alice.cum_lo - 1  # 1 wei of rounding, protocol §5
    # after expiry the call settles at 3,200: bob (long 2 calls) gets 2 * 200
    m.chain.mine_at(m.call_expiry + 1)
    m.post(m.header([alice, PERP_LEAF], settlements=(Settlement(m.call, 3_200 * WAD),)))
    bob_cash = m.state(m.bob)["cash"]
    m.tx(m.vault.functions.settle(m.bob.address, m.call), m.carol)
    m.tx(m.vault.functions.settle(m.alice.address, m.call), m.carol)
    assert m.state(m.bob)["cash"] == bob_cash + 400 * WAD
    assert m.size(m.bob, m.call) == 0 and m.size(m.alice, m.call) == 0
    assert m.vault.functions.settlementPrice(m.call).call() == [3_200 * WAD, True]
    assert t.quote.nonce == 1


def test_cancelled_quote_cannot_be_filled(market: Market) -> None:
    m = market
    fund_all(m)
    alice, bob, _ = post_epoch_1(m)
    q = alice_quote(m, nonce=9)
    args = execute_args(m, q, sign_quote(q, m.alice, m.domain), alice, bob)
    receipt = m.tx(m.vault.functions.cancelQuote(9), m.alice)
    ev = m.vault.events.QuoteCancelled().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (ev["maker"], ev["nonce"]) == (m.alice.address, 9)
    r = m.revert_of(m.vault.functions.executeQuote(*args), m.bob)
    assert r.name == "NonceUsed" and r.args_by_name == {"maker": m.alice.address, "nonce": 9}
    assert m.size(m.bob, m.perp) == 0


def test_rotated_signer_set_kills_old_signatures(market: Market) -> None:
    m = market
    fund_all(m)
    post_epoch_1(m)
    new_set = sorted(m.signers[1:], key=lambda a: int(a.address, 16))
    m.tx(m.vault.functions.setSigners([a.address for a in new_set], 2), m.owner)
    assert m.vault.functions.configVersion().call() == 2
    assert not m.vault.functions.isSigner(m.signers[0].address).call()
    # a header of the old version, even signed by signers still in the set, is dead
    old = m.header([PERP_LEAF], config_version=1)
    m.ready(old)
    sigs = sign_epoch(old, new_set, m.domain)
    r = m.revert_of(m.vault.functions.postEpoch(old.to_abi(), sigs), m.owner)
    assert r.name == "WrongConfigVersion"
    # the new version signed with the removed signer among the two: unknown signer
    header = m.header([PERP_LEAF])
    m.ready(header)
    sigs = sign_epoch(header, [m.signers[0], new_set[0]], m.domain)
    r = m.revert_of(m.vault.functions.postEpoch(header.to_abi(), sigs), m.owner)
    assert r.name == "UnknownSigner" and r.args_by_name["signer"] == m.signers[0].address
    m.post(header, new_set)
    assert m.vault.functions.currentEpoch().call()[0] == 2
