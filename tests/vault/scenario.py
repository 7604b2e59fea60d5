"""Shared scenario of the integration tests: funded subaccounts (one per trader), epoch 1, and
alice's 2-leg quote filled by bob. Leaves are plausible hand-written numbers (no engine)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keeper import bounds
from keeper.attestation import AccountLeaf, InstrumentLeaf
from keeper.eip712 import Leg, Quote, sign_quote
from risk_engine.units import WAD
from scripts.deploy import deploy_contract
from scripts.protocol_deploy import PriceReferenceSpec, deploy_price_references

from .conftest import USDC6, Market

DOWN = 15 * WAD // 100
UP = 20 * WAD // 100
PENALTY = 3 * WAD // 10  # vault default: 30 % of MM
SHARE = WAD // 2  # vault default: 50 % of the penalty
PERP_LEAF = InstrumentLeaf(1, 3_000 * WAD, 450 * WAD, 480 * WAD)
CALL_LEAF = InstrumentLeaf(2, 150 * WAD, 150 * WAD, 700 * WAD)


@dataclass
class Traded:
    """State after deposits, epoch 1 and alice's 2-leg quote filled by bob."""

    alice_leaf: AccountLeaf
    bob_leaf: AccountLeaf
    carol_leaf: AccountLeaf
    quote: Quote
    receipt: Any


def fund_all(m: Market) -> None:
    m.fund_weth(m.alice, 10 * WAD)
    m.fund_usdc(m.alice, 20_000 * USDC6)
    m.fund_usdc(m.bob, 50_000 * USDC6)
    m.fund_usdc(m.carol, 100_000 * USDC6)
    m.tx(m.usdc.functions.mint(m.owner, 1_000 * USDC6), m.owner)
    m.tx(m.usdc.functions.approve(m.vault.address, 2**256 - 1), m.owner)
    m.tx(m.vault.functions.depositInsurance(1_000 * USDC6), m.owner)
    assert [m.acct(w) for w in (m.alice, m.bob, m.carol)] == [1, 2, 3]


def post_epoch_1(m: Market) -> tuple[AccountLeaf, AccountLeaf, AccountLeaf]:
    alice = m.leaf(m.alice, equity=50_000 * WAD, im=4_500 * WAD, mm=3_600 * WAD)
    bob = m.leaf(m.bob, equity=50_000 * WAD, im=0, mm=0)
    carol = m.leaf(m.carol, equity=100_000 * WAD, im=0, mm=0)
    m.post(m.header([alice, bob, carol, PERP_LEAF, CALL_LEAF]))
    return alice, bob, carol


def alice_quote(m: Market, *, nonce: int = 1, taker: str | None = None) -> Quote:
    """Alice (maker, for her subaccount) buys 2 perps at 3,010 and sells 2 calls at 155: a
    covered call."""
    return Quote(
        maker=m.alice.address,
        maker_account=m.acct(m.alice),
        taker=taker or m.bob.address,
        legs=(Leg(m.perp, 2 * WAD, 3_010 * WAD), Leg(m.call, -2 * WAD, 155 * WAD)),
        nonce=nonce,
        deadline=m.chain.now() + 600,
    )


def execute_args(
    m: Market, q: Quote, sig: bytes, maker: AccountLeaf, taker: AccountLeaf
) -> list[Any]:
    assert m.tree is not None
    leaves = {m.perp: PERP_LEAF, m.call: CALL_LEAF}
    proofs = [m.tree.instrument_proof(leaves[leg.instrument]).to_abi() for leg in q.legs]
    return [
        q.to_abi(),
        sig,
        proofs,
        m.tree.margin_proof(maker).to_abi(),
        taker.account,
        m.tree.margin_proof(taker).to_abi(),
    ]


def trade(m: Market) -> Traded:
    fund_all(m)
    alice, bob, carol = post_epoch_1(m)
    q = alice_quote(m)
    sig = sign_quote(q, m.alice, m.domain)
    receipt = m.tx(
        m.vault.functions.executeQuote(*execute_args(m, q, sig, alice, bob)), m.bob, "executeQuote"
    )
    return Traded(alice, bob, carol, q, receipt)


def post_crash_epoch(m: Market) -> tuple[AccountLeaf, AccountLeaf, AccountLeaf]:
    """After :func:`trade`: ten minutes on, WETH at 2,500, epoch 2 shows alice's MM above her
    equity (she is liquidatable). Returns the leaves of alice, bob and carol; the tree is
    ``m.tree``."""
    m.chain.advance(600)
    alice = m.leaf(m.alice, equity=2_000 * WAD, im=9_000 * WAD, mm=7_200 * WAD)
    bob = m.leaf(m.bob, equity=52_000 * WAD, im=8_000 * WAD, mm=6_400 * WAD)
    carol = m.leaf(m.carol, equity=100_000 * WAD, im=0, mm=0)
    m.post(m.header([alice, bob, carol, PERP_LEAF, CALL_LEAF], weth_price=2_500 * WAD))
    assert m.tree is not None
    return alice, bob, carol


def leg_bounds(q: Quote, sign: int) -> tuple[int, int]:
    """Sum of the leg bounds for the maker (sign=+1) or the taker (sign=-1)."""
    leaves = {1: PERP_LEAF, 2: CALL_LEAF}
    lo = hi = 0
    for leg in q.legs:
        leaf = leaves[leg.instrument]
        b = bounds.trade_bound(
            sign * leg.size, leg.price, leaf.mark, leaf.loss_per_unit_long, leaf.loss_per_unit_short
        )
        lo, hi = lo + b.lo, hi + b.hi
    return lo, hi


#: The reference of WETH in the price-reference scenarios: 5 %, 1 hour.
REFERENCE_MAX_DEVIATION = 5 * WAD // 100
REFERENCE_MAX_STALENESS = 3_600


def price_references(m: Market, *, answer: int = 3_000 * 10**8) -> tuple[Any, Any]:
    """A ``MockAggregatorV3`` (8 decimals, as Chainlink's USD feeds) answering ``answer``
    and a ``PriceReferences`` contract for the vault, with WETH referenced to the mock
    (5 %, 1 hour) and set on the vault, as ``pm deploy --reference`` does. Returns
    (feed, references) as web3 contracts."""
    feed = deploy_contract(m.w3, m.compiled, "MockAggregatorV3", [8, answer], m.owner)
    spec = PriceReferenceSpec(
        "WETH", feed.address, REFERENCE_MAX_DEVIATION, REFERENCE_MAX_STALENESS
    )
    address = deploy_price_references(
        m.w3,
        m.compiled,
        vault=m.vault,
        owner=m.owner,
        references=[spec],
        tokens={"WETH": m.weth.address},
    )
    refs = m.w3.eth.contract(address=address, abi=m.compiled["PriceReferences"].abi)
    return feed, refs
