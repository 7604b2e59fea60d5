"""End-to-end vault flow on a real node (Anvil) and in process (eth-tester / py-evm).

Leaves are written by hand here (plausible numbers, no engine): the point is the chain side —
subaccounts (ids with owners and operators), deposits, an attested epoch, a 2-leg RFQ, a
withdrawal with a proof, a liquidation by transfer — and that every number the vault stores
equals what keeper/bounds.py predicts.
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
    post_crash_epoch,
    post_epoch_1,
    trade,
)

CASH_SCALE = 10**12  # settlement token units (6 decimals) -> WAD

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


def test_subaccounts_change_owner_without_moving_anything_and_operators_act_for_owners(
    market: Market,
) -> None:
    m = market
    fund_all(m)
    a1 = m.acct(m.alice)
    a4 = m.new_account(m.alice)  # an owner may hold any number
    assert a4 == 4 and m.vault.functions.subaccountCount().call() == 4
    assert m.vault.functions.ownerOf(a4).call() == m.alice.address
    before = m.state(a1)
    receipt = m.tx(m.vault.functions.transferSubaccount(a1, m.bob.address), m.alice)
    assert m.state(a1) == before  # no balance, cash, bound or nonce moves
    assert m.vault.functions.ownerOf(a1).call() == m.bob.address
    ev = m.vault.events.SubaccountTransferred().process_receipt(receipt, errors=DISCARD)[0]
    assert (ev["args"]["from"], ev["args"]["to"]) == (m.alice.address, m.bob.address)
    # an operator acts for every subaccount of the owner that approved it; a withdrawal pays
    # the owner, never the operator
    m.tx(m.vault.functions.setOperator(m.carol.address, True), m.bob)
    assert m.vault.functions.isOperator(m.bob.address, m.carol.address).call()
    empty = MarginProof(AccountLeaf(a1, 0, 0, 0, 0, 0, 0)).to_abi()
    bob_usdc = m.usdc.functions.balanceOf(m.bob.address).call()
    m.tx(m.vault.functions.withdrawCash(a1, 1_000 * USDC6, empty), m.carol)
    assert m.usdc.functions.balanceOf(m.bob.address).call() == bob_usdc + 1_000 * USDC6
    assert m.state(a1)["cash"] == before["cash"] - 1_000 * WAD
    # two subaccounts of one owner trade with each other, margin-checked on both sides
    a5 = m.new_account(m.alice)
    for mine in (a4, a5):
        m.fund_usdc(mine, 20_000 * USDC6)
    m.post(m.header([PERP_LEAF, CALL_LEAF]))
    assert m.tree is not None
    q = Quote(
        maker=m.alice.address,
        maker_account=a4,
        taker=m.alice.address,
        legs=(Leg(m.perp, WAD, 3_000 * WAD),),
        nonce=1,
        deadline=m.chain.now() + 600,
    )
    ips = [m.tree.instrument_proof(PERP_LEAF).to_abi()]
    maker, taker = (MarginProof(AccountLeaf(i, 0, 0, 0, 0, 0, 0)).to_abi() for i in (a4, a5))
    m.tx(
        m.vault.functions.executeQuote(
            q.to_abi(), sign_quote(q, m.alice, m.domain), ips, maker, a5, taker
        ),
        m.alice,
    )
    assert (m.size(a4, m.perp), m.size(a5, m.perp)) == (WAD, -WAD)


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
    assert (executed[0]["args"]["makerAccount"], executed[0]["args"]["takerAccount"]) == (
        m.acct(m.alice),
        m.acct(m.bob),
    )


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
        maker, taker = (
            MarginProof(AccountLeaf(m.acct(w), 0, 0, 0, 0, 0, 0)).to_abi() for w in (m.alice, m.bob)
        )
        return [q.to_abi(), sig, ips, maker, m.acct(m.bob), taker]

    def on_chain(who: object) -> int:
        s = m.state(who)  # type: ignore[arg-type]
        return bounds.unattested_surplus_lo(s["cash"], [(s["coll"][0], 3_000 * WAD, 18, DOWN)])

    alice0, bob0 = m.state(m.alice), m.state(m.bob)
    # 50 times the covered call: over alice's on-chain capacity (20k cash + 10 WETH haircut)
    big = Quote(
        maker=m.alice.address,
        maker_account=m.acct(m.alice),
        taker=m.bob.address,
        legs=(Leg(m.perp, 50 * WAD, 3_010 * WAD), Leg(m.call, -50 * WAD, 155 * WAD)),
        nonce=1,
        deadline=m.chain.now() + 600,
    )
    want = bounds.first_trade_surplus_lo(on_chain(m.alice), leg_bounds(big, +1)[0])
    assert want < 0
    r = m.revert_of(m.vault.functions.executeQuote(*args(big)), m.bob)
    assert r.name == "InsufficientMargin"
    assert r.args_by_name == {"account": m.acct(m.alice), "imSurplusLo": want}
    # the 2-unit quote fits both sides, both with empty proofs
    q = alice_quote(m, nonce=2)
    m.tx(m.vault.functions.executeQuote(*args(q)), m.bob)
    alice, bob = m.state(m.alice), m.state(m.bob)
    assert alice["cumLo"] == alice0["cumLo"] + leg_bounds(q, +1)[0]
    assert bob["cumLo"] == bob0["cumLo"] + leg_bounds(q, -1)[0]
    assert m.size(m.bob, m.perp) == -2 * WAD
    # both now hold positions: the empty proofs no longer do (the maker is checked first)
    r = m.revert_of(m.vault.functions.executeQuote(*args(alice_quote(m, nonce=3))), m.bob)
    assert (r.name, r.args_by_name) == ("InvalidAccountProof", {"account": m.acct(m.alice)})


def test_withdraw_with_proof_checks_the_im_bound(market: Market) -> None:
    m = market
    t = trade(m)
    assert m.tree is not None
    proof = m.tree.margin_proof(t.alice_leaf)
    before = m.state(m.alice)
    surplus = m.vault.functions.imSurplusLo(m.acct(m.alice), proof.to_abi()).call()
    assert surplus == bounds.im_surplus_lo(
        t.alice_leaf.equity, t.alice_leaf.im, t.alice_leaf.cum_lo, before["cumLo"]
    )
    receipt = m.tx(
        m.vault.functions.withdraw(m.acct(m.alice), m.weth.address, WAD, proof.to_abi()),
        m.alice,
        "withdraw",
    )
    after = m.state(m.alice)
    w = bounds.withdraw_bound(WAD, 3_000 * WAD, 18, DOWN, UP)
    assert (after["cumLo"], after["cumHi"]) == (before["cumLo"] + w.lo, before["cumHi"] + w.hi)
    assert after["coll"] == [9 * WAD]
    assert m.weth.functions.balanceOf(m.alice.address).call() == WAD
    ev = m.vault.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
    assert ev[0]["args"]["account"] == m.acct(m.alice) and ev[0]["args"]["amount"] == WAD
    # a flat subaccount with cash >= 0 needs no proof (valued on chain)
    empty = MarginProof(AccountLeaf(m.acct(m.carol), 0, 0, 0, 0, 0, 0)).to_abi()
    m.tx(m.vault.functions.withdrawCash(m.acct(m.carol), 1_000 * USDC6, empty), m.carol)
    assert m.usdc.functions.balanceOf(m.carol.address).call() == 1_000 * USDC6


def test_liquidation_transfers_the_whole_subaccount(market: Market) -> None:
    m = market
    trade(m)
    # alice withdrew nothing; the market moves against her: epoch 2 shows MM below zero
    alice, bob, _ = post_crash_epoch(m)
    assert m.tree is not None
    target = m.tree.margin_proof(alice)
    a_id = m.acct(m.alice)
    s = m.state(m.alice)
    # pending funding is not applied: 1 wei of its rounding per open position is counted
    cum_lo_now = s["cumLo"] - len(s["instruments"])
    expected = bounds.liquidation(
        equity=alice.equity,
        mm=alice.mm,
        leaf_cum_lo=alice.cum_lo,
        leaf_cum_hi=alice.cum_hi,
        cum_lo_now=cum_lo_now,
        cum_hi_now=s["cumHi"],
        liquidation_penalty=PENALTY,
        insurance_share=SHARE,
        insurance_fund=1_000 * WAD,
    )
    im_lo = bounds.im_surplus_lo(alice.equity, alice.im, alice.cum_lo, cum_lo_now)
    deposit6 = bounds.min_deposit6(expected.net_cash_paid, im_lo, CASH_SCALE)
    view = m.vault.functions.checkLiquidation(a_id, target.to_abi()).call()
    assert view == [
        True,
        bounds.mm_surplus_hi(alice.equity, alice.mm, alice.cum_hi, s["cumHi"]),
        expected.pay,
        expected.fee,
        expected.covered,
        expected.uncovered,
        deposit6,
    ]
    # 2,000 USD of equity, 2,160 of penalty: nothing to pay alice, half the equity to the fund
    assert expected.pay == 0 and expected.fee == 1_000 * WAD - 1
    # the capital the liquidator needs: the IM deficit (7,000) plus the fee, nothing else
    assert deposit6 == 8_000 * USDC6 + 1
    # bob is healthy: the view says so
    assert not m.vault.functions.checkLiquidation(
        m.acct(m.bob), m.tree.margin_proof(bob).to_abi()
    ).call()[0]

    m.fund_usdc(m.carol, deposit6, deposit=False)  # in carol's wallet, not in the vault
    carol_before = m.state(m.carol)
    vault_usdc = m.usdc.functions.balanceOf(m.vault.address).call()
    receipt = m.tx(
        m.vault.functions.liquidate(a_id, target.to_abi(), deposit6, expected.net_cash_paid),
        m.carol,
        "liquidate",
    )
    # the whole subaccount is carol's now; nothing in it moved but the cash flows
    assert m.vault.functions.ownerOf(a_id).call() == m.carol.address
    a = m.state(a_id)
    delta = deposit6 * CASH_SCALE - expected.net_cash_paid
    assert a["instruments"] == s["instruments"] and a["sizes"] == s["sizes"]
    assert a["coll"] == [10 * WAD] and a["cash"] == s["cash"] + delta
    assert (a["cumLo"], a["cumHi"]) == (s["cumLo"] + delta, s["cumHi"] + delta)
    assert a["stateNonce"] == s["stateNonce"]  # the leaf still describes the portfolio
    # at or above IM after, on the same leaf
    assert m.vault.functions.imSurplusLo(a_id, target.to_abi()).call() >= 0
    assert m.state(m.carol) == carol_before  # carol's own subaccount is untouched
    for ins in (m.perp, m.call):
        assert m.size(a_id, ins) + m.size(m.bob, ins) == 0
    # cash + fund - bad debt is conserved: the deposit in, the fee from the cash to the fund
    assert m.vault.functions.insuranceFund().call() == 1_000 * WAD + expected.fee
    assert m.vault.functions.payoutOf(m.alice.address).call() == expected.pay
    assert m.vault.functions.badDebt().call() == 0
    assert m.usdc.functions.balanceOf(m.vault.address).call() == vault_usdc + deposit6
    ev = m.vault.events.Liquidated().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (
        ev["account"],
        ev["previousOwner"],
        ev["liquidator"],
        ev["fee"],
        ev["deposit6"],
    ) == (a_id, m.alice.address, m.carol.address, expected.fee, deposit6)
    moved = m.vault.events.SubaccountTransferred().process_receipt(receipt, errors=DISCARD)
    assert [(e["args"]["account"], e["args"]["from"], e["args"]["to"]) for e in moved] == [
        (a_id, m.alice.address, m.carol.address)
    ]


def test_liquidation_with_bad_debt_draws_the_fund_and_records_the_rest(market: Market) -> None:
    m = market
    trade(m)
    m.chain.advance(600)
    alice = m.leaf(m.alice, equity=-3_000 * WAD, im=9_000 * WAD, mm=7_200 * WAD)
    carol = m.leaf(m.carol, equity=100_000 * WAD, im=0, mm=0)
    m.post(m.header([alice, carol, PERP_LEAF, CALL_LEAF]))
    assert m.tree is not None
    a_id = m.acct(m.alice)
    s = m.state(m.alice)
    cum_lo_now = s["cumLo"] - len(s["instruments"])
    r = bounds.liquidation(
        equity=alice.equity,
        mm=alice.mm,
        leaf_cum_lo=alice.cum_lo,
        leaf_cum_hi=alice.cum_hi,
        cum_lo_now=cum_lo_now,
        cum_hi_now=s["cumHi"],
        liquidation_penalty=PENALTY,
        insurance_share=SHARE,
        insurance_fund=1_000 * WAD,
    )
    assert (r.pay, r.fee, r.covered, r.uncovered) == (0, 0, 1_000 * WAD, 2_000 * WAD)
    deposit6 = bounds.min_deposit6(
        r.net_cash_paid,
        bounds.im_surplus_lo(alice.equity, alice.im, alice.cum_lo, cum_lo_now),
        CASH_SCALE,
    )
    m.fund_usdc(m.carol, deposit6, deposit=False)
    receipt = m.tx(
        m.vault.functions.liquidate(
            a_id,
            m.tree.margin_proof(alice).to_abi(),
            deposit6,
            r.net_cash_paid,  # negative: the fund's coverage goes into the subaccount
        ),
        m.carol,
    )
    assert m.vault.functions.insuranceFund().call() == 0
    assert m.vault.functions.badDebt().call() == 2_000 * WAD
    assert m.state(a_id)["cash"] == s["cash"] + deposit6 * CASH_SCALE + 1_000 * WAD
    ev = m.vault.events.BadDebt().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (ev["account"], ev["uncovered"], ev["totalBadDebt"]) == (
        a_id,
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
    m.tx(m.vault.functions.applyFunding(m.acct(m.alice)), m.bob)  # open to anyone
    assert m.state(m.alice)["cash"] == cash - 20 * WAD
    assert m.state(m.alice)["cumLo"] == alice.cum_lo - 1  # 1 wei of rounding, protocol §5
    # after expiry the call settles at 3,200: bob (long 2 calls) gets 2 * 200
    m.chain.mine_at(m.call_expiry + 1)
    m.post(m.header([alice, PERP_LEAF], settlements=(Settlement(m.call, 3_200 * WAD),)))
    bob_cash = m.state(m.bob)["cash"]
    m.tx(m.vault.functions.settle(m.acct(m.bob), m.call), m.carol)
    m.tx(m.vault.functions.settle(m.acct(m.alice), m.call), m.carol)
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
