"""The state chain on a real node (docs/protocol.md §9): after every kind of action the chain
that keeper/state_chain.py rebuilds from the vault's events equals the vault's
``stateChain``, its state equals the vault's live state, and ``StateLens.proveStateAt``
accepts the true older state and refuses a tampered one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from web3.contract import Contract

from keeper.attestation import AccountLeaf, MarginProof
from keeper.eip712 import FundingUpdate, Settlement, sign_quote
from keeper.state_chain import (
    StateChainBook,
    StateDelta,
    books_from_logs,
    chain_of,
    hash_state,
    word_of,
)
from risk_engine.units import WAD
from scripts.deploy import deploy_contract

from .conftest import USDC6, Market
from .scenario import (
    CALL_LEAF,
    PERP_LEAF,
    alice_quote,
    execute_args,
    fund_all,
    post_crash_epoch,
    post_epoch_1,
    trade,
)

pytestmark = pytest.mark.anvil

CASH_SCALE = 10**12


def _logs(m: Market, to_block: int | str = "latest") -> list[Any]:
    return list(
        m.w3.eth.get_logs({"address": m.vault.address, "fromBlock": 0, "toBlock": to_block})
    )


def _live_state(m: Market, account: int) -> tuple[int, list[tuple[int, int, int]], list[Any]]:
    s = m.state(account)
    positions = sorted(zip(s["instruments"], s["sizes"], s["funding"], strict=True))
    tokens = m.vault.functions.tokens().call()
    coll = sorted(
        ((t.lower(), b) for t, b in zip(tokens, s["coll"], strict=True) if b),
        key=lambda x: int(x[0], 16),
    )
    return s["cash"], positions, coll


def _check_chains(m: Market) -> dict[int, StateChainBook]:
    """Every subaccount: the chain from the events is the vault's, and so is the state."""
    books = books_from_logs(_logs(m))
    for account in (m.acct(m.alice), m.acct(m.bob), m.acct(m.carol)):
        book = books.get(account, StateChainBook())
        assert book.word == bytes(m.vault.functions.stateChain(account).call()), account
        s = book.state()
        cash, positions, coll = _live_state(m, account)
        assert (s.cash, list(s.positions), list(s.collateral)) == (cash, positions, coll)
    return books


def test_chain_from_events_follows_every_action(anvil_market: Market) -> None:
    m = anvil_market
    fund_all(m)  # deposit (collateral), depositCash
    books = _check_chains(m)
    assert books[m.acct(m.alice)].seq == 4  # weth, bounds, cash, bounds
    alice, bob, carol = post_epoch_1(m)
    trade_receipt = trade_only(m, alice, bob)
    assert trade_receipt["status"] == 1
    books = _check_chains(m)  # executeQuote: both sides, two legs
    assert books[m.acct(m.bob)].seq == 2 + 2 * 3  # cash, bounds; per leg position, cash, bounds
    assert m.tree is not None
    proof = m.tree.margin_proof(alice).to_abi()
    m.tx(m.vault.functions.withdraw(m.acct(m.alice), m.weth.address, WAD, proof), m.alice)
    empty = MarginProof(AccountLeaf(m.acct(m.carol), 0, 0, 0, 0, 0, 0)).to_abi()
    m.tx(m.vault.functions.withdrawCash(m.acct(m.carol), 1_000 * USDC6, empty), m.carol)
    _check_chains(m)  # withdraw, withdrawCash
    m.chain.advance(60)
    alice2 = m.leaf(m.alice, equity=49_000 * WAD, im=4_500 * WAD, mm=3_600 * WAD)
    m.post(m.header([alice2, PERP_LEAF, CALL_LEAF], funding=(FundingUpdate(m.perp, 10 * WAD),)))
    m.tx(m.vault.functions.applyFunding(m.acct(m.alice)), m.bob)
    books = _check_chains(m)  # applyFunding: cash, then the position's index
    assert books[m.acct(m.alice)].positions[m.perp] == (2 * WAD, 10 * WAD)
    m.chain.mine_at(m.call_expiry + 1)
    m.post(m.header([alice2, PERP_LEAF], settlements=(Settlement(m.call, 3_200 * WAD),)))
    m.tx(m.vault.functions.settle(m.acct(m.bob), m.call), m.carol)
    m.tx(m.vault.functions.settle(m.acct(m.alice), m.call), m.carol)
    books = _check_chains(m)  # settle: the position closes, then cash
    assert m.call not in books[m.acct(m.bob)].positions


def trade_only(m: Market, alice: AccountLeaf, bob: AccountLeaf) -> Any:
    """alice's 2-leg quote (perp, call) filled by bob."""
    q = alice_quote(m)
    sig = sign_quote(q, m.alice, m.domain)
    return m.tx(m.vault.functions.executeQuote(*execute_args(m, q, sig, alice, bob)), m.bob)


def test_chain_from_events_follows_a_liquidation(anvil_market: Market) -> None:
    m = anvil_market
    trade(m)
    alice, _, _ = post_crash_epoch(m)
    assert m.tree is not None
    target = m.tree.margin_proof(alice).to_abi()
    a_id = m.acct(m.alice)
    view = m.vault.functions.checkLiquidation(a_id, target).call()
    deposit6 = view[6]
    m.fund_usdc(m.carol, deposit6, deposit=False)
    before = m.state(a_id)["cash"]
    seq_before = _check_chains(m)[a_id].seq
    m.tx(m.vault.functions.liquidate(a_id, target, deposit6, 2**255 - 1), m.carol)
    books = _check_chains(m)
    # the transfer changes no state; the liquidator's deposit net of the payments is a cash
    # delta, and the same move of both bounds
    after = m.state(a_id)
    moved = after["cash"] - before
    assert books[a_id].seq == seq_before + 2
    assert books[a_id].deltas[-2] == StateDelta(1, 0, before, 0, after["cash"], 0)
    assert books[a_id].deltas[-1] == StateDelta(
        4, 0, after["cumLo"] - moved, after["cumHi"] - moved, after["cumLo"], after["cumHi"]
    )


def _lens(m: Market) -> Contract:
    return deploy_contract(m.w3, m.compiled, "StateLens", [m.vault.address], m.owner)


def test_prove_state_at_accepts_the_true_older_state_and_refuses_tampering(
    anvil_market: Market,
) -> None:
    m = anvil_market
    lens = _lens(m)
    a = m.acct(m.alice)
    fund_all(m)
    mark_block = m.w3.eth.block_number
    alice, bob, carol = post_epoch_1(m)
    trade_only(m, alice, bob)
    m.chain.advance(60)
    alice2 = m.leaf(m.alice, equity=49_000 * WAD, im=4_500 * WAD, mm=3_600 * WAD)
    m.post(m.header([alice2, PERP_LEAF, CALL_LEAF], funding=(FundingUpdate(m.perp, 10 * WAD),)))
    m.tx(m.vault.functions.applyFunding(a), m.bob)

    logs = _logs(m)
    book = books_from_logs(e for e in logs if e["blockNumber"] <= mark_block)[a]
    seq, chain, older = book.mark()
    for e in logs:
        if e["blockNumber"] > mark_block and int(e["topics"][1].hex(), 16) == a:
            book.apply_event(
                ["0x" + bytes(t).hex() for t in e["topics"]], "0x" + bytes(e["data"]).hex()
            )
    deltas = list(book.deltas)
    # 2 legs x (position, cash, bounds); funding: cash, bounds, position
    assert seq == 4 and len(deltas) == 9
    assert book.word == bytes(m.vault.functions.stateChain(a).call())

    def prove(s: Any = older, d: list[StateDelta] = deltas, q: int = seq) -> Any:
        return lens.functions.proveStateAt(a, q, chain, s.to_abi(), [x.to_abi() for x in d])

    assert bytes(prove().call()) == hash_state(older)
    # the state now proves with no deltas, and it is another hash
    now = book.state()
    now_fn = lens.functions.proveStateAt(a, book.seq, chain_of(book.word), now.to_abi(), [])
    assert bytes(now_fn.call()) == hash_state(now) != hash_state(older)
    assert word_of(chain, seq)[24:] == seq.to_bytes(8, "big")

    wrong_old = [replace(deltas[0], old_a=1), *deltas[1:]]
    assert m.revert_of_call(prove(d=wrong_old)).name == "StateChainMismatch"
    assert m.revert_of_call(prove(d=deltas[:-1])).name == "StateChainMismatch"
    wrong_cash = replace(older, cash=older.cash + 1)
    r = m.revert_of_call(prove(s=wrong_cash))
    assert r.name == "StateDeltaMismatch" and r.args_by_name["index"] == 1  # the first cash delta
    extra = replace(older, positions=((m.call, WAD, 0),))  # opened only after the mark
    r = m.revert_of_call(prove(s=extra))
    assert r.name == "StateDeltaMismatch" and r.args_by_name["index"] == 3  # the call's delta
    wrong_bounds = replace(older, cum_lo=older.cum_lo - 1)
    r = m.revert_of_call(prove(s=wrong_bounds))
    assert r.name == "StateDeltaMismatch" and r.args_by_name["index"] == 2  # the first bounds
    more_coll = replace(older, collateral=((m.weth.address.lower(), 10 * WAD + 1),))
    assert m.revert_of_call(prove(s=more_coll)).name == "StateMismatch"  # untouched: live tells
    never = replace(older, positions=((99, WAD, 0),))  # an extra position no delta touches
    assert m.revert_of_call(prove(s=never)).name == "StateMismatch"
