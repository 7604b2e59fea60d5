"""Every custom error of the vault, tripped by a real call on chain, decoded by
keeper.revert.decode_revert into its readable one-line message with its values.

One scenario per error: it sets the state up, sends the failing call (simulated by the node,
as every transaction is before sending) and returns the decoded revert plus the argument
values it must carry. A scenario named ``Error:case`` is a further way to the same error
(the subaccount cases: a transfer to the zero address, a quote for a subaccount the maker
does not own, a liquidation by the owner's operator).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak

from keeper import bounds
from keeper.attestation import AccountLeaf, InstrumentLeaf, InstrumentProof, MarginProof
from keeper.dispute_encoding import AggregationParamsWad, RiskVectorWad, hash_params
from keeper.dispute_encoding import hash_vector as hash_v
from keeper.eip712 import (
    Epoch,
    FundingUpdate,
    Leg,
    Quote,
    Settlement,
    TokenPrice,
    quote_typed_data,
    sign_epoch,
    sign_quote,
)
from keeper.errors import VaultRevert
from keeper.revert import ERROR_DESCRIPTIONS, decode_revert
from keeper.state_chain import CommittedState, StateDelta
from risk_engine.units import WAD
from scripts.deploy import deploy_contract
from scripts.toolchain.compile import CompileResult

from .conftest import USDC6, Market
from .scenario import (
    CALL_LEAF,
    PERP_LEAF,
    alice_quote,
    execute_args,
    fund_all,
    post_epoch_1,
    price_references,
    trade,
)

ZERO = "0x0000000000000000000000000000000000000000"
ETH = b"ETH".ljust(32, b"\0")
OUTSIDER = Account.from_key(keccak(text="portfolio-margin test key outsider"))

Result = tuple[VaultRevert, dict[str, Any]]
SCENARIOS: dict[str, Callable[[Market], Result]] = {}
#: Errors in the ABI that no call can raise, with the reason (none today: a declared but
#: unused error is a contract finding; tests/scripts/toolchain/test_compile.py flags it).
UNREACHABLE: dict[str, str] = {}


def scenario(name: str) -> Callable[[Callable[[Market], Result]], Callable[[Market], Result]]:
    def register(fn: Callable[[Market], Result]) -> Callable[[Market], Result]:
        SCENARIOS[name] = fn
        return fn

    return register


def _empty(account: int) -> Any:
    return MarginProof(AccountLeaf(account, 0, 0, 0, 0, 0, 0)).to_abi()


def _post_fn(m: Market, header: Epoch, keys: list[Any] | None = None) -> Any:
    m.ready(header)
    sigs = sign_epoch(header, keys if keys is not None else m.signers[:2], m.domain)
    return m.vault.functions.postEpoch(header.to_abi(), sigs)


def _epoch_ready(m: Market) -> Epoch:
    """Funded accounts and a header that would be accepted (epoch 1)."""
    fund_all(m)
    return m.header([PERP_LEAF, CALL_LEAF])


# ------------------------------------------------------------------------ configuration


@scenario("ZeroAddress")
def _(m: Market) -> Result:
    return m.revert_of(m.vault.functions.registerToken(ZERO), m.owner), {}


@scenario("InvalidQuorum")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.setSigners([m.signers[0].address], 2), m.owner)
    return r, {"quorum": 2, "signerCount": 1}


@scenario("TooManySigners")
def _(m: Market) -> Result:
    many = [Account.from_key(keccak(text=f"s{i}")).address for i in range(33)]
    return m.revert_of(m.vault.functions.setSigners(many, 1), m.owner), {"count": 33, "max": 32}


@scenario("InvalidSignerSet")
def _(m: Market) -> Result:
    s = m.signers[0].address
    return m.revert_of(m.vault.functions.setSigners([s, s], 1), m.owner), {"signer": s}


@scenario("InvalidRiskConfig")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.setRiskConfig(0, 60, 0, 0), m.owner)
    return r, {"maxAge": 0}


@scenario("InvalidFutureTolerance")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.setRiskConfig(3_600, 301, 0, 0), m.owner)
    return r, {"futureTolerance": 301, "max": 300}


@scenario("RenounceOwnershipDisabled")
def _(m: Market) -> Result:
    return m.revert_of(m.vault.functions.renounceOwnership(), m.owner), {}


@scenario("TokenAlreadyRegistered")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.registerToken(m.weth.address), m.owner)
    return r, {"token": m.weth.address}


@scenario("TooManyTokens")
def _(m: Market) -> Result:
    for i in range(15):  # WETH is token 1 of at most 16
        t = deploy_contract(m.w3, m.compiled, "MockERC20", [f"T{i}", f"T{i}", 18], m.owner)
        m.tx(m.vault.functions.registerToken(t.address), m.owner)
    extra = deploy_contract(m.w3, m.compiled, "MockERC20", ["X", "X", 18], m.owner)
    return m.revert_of(m.vault.functions.registerToken(extra.address), m.owner), {"max": 16}


@scenario("InvalidToken")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.registerToken(m.usdc.address), m.owner)
    return r, {"token": m.usdc.address}


@scenario("InvalidModule")
def _(m: Market) -> Result:
    art = m.compiled["MarginVault"]
    factory = m.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    em, xm = m.vault.functions.epochModule().call(), m.vault.functions.exchangeModule().call()
    assert m.w3.eth.get_code(xm)  # the vault's own modules deploy (scripts/protocol_deploy.py)
    # an exchange module is an address with code; the owner's wallet has none
    fm = m.vault.functions.finalityModule().call()
    fn = factory.constructor(m.owner, m.usdc.address, 3_600, 60, em, m.owner, fm)
    return m.revert_of(fn, m.owner), {"module": m.owner}


@scenario("InvalidInstrument")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.registerInstrument(0, ETH, 1, 0), m.owner)
    return r, {"kind": 0, "strike": 1, "expiry": 0}


@scenario("DuplicateInstrument")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.registerInstrument(0, ETH, 0, 0), m.owner)
    return r, {"existingId": m.perp}


@scenario("InvalidPriceReference")
def _(m: Market) -> Result:
    feed, refs = price_references(m)
    fn = refs.functions.setPriceReference(m.weth.address, feed.address, 0, 3_600)
    r = m.revert_of(fn, m.owner)
    expected = {"token": m.weth.address, "aggregator": feed.address, "maxDeviation": 0}
    return r, {**expected, "maxStaleness": 3_600}


@scenario("PriceReferencesForAnotherVault")
def _(m: Market) -> Result:
    foreign = deploy_contract(
        m.w3, m.compiled, "PriceReferences", [m.usdc.address, m.owner], m.owner
    )
    r = m.revert_of(m.vault.functions.setPriceReferences(foreign.address), m.owner)
    return r, {"references": foreign.address, "vault": m.usdc.address}


# ---------------------------------------------------------------------- lookups, amounts


@scenario("UnknownToken")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.deposit(m.acct(m.alice), m.carol.address, 1), m.alice)
    return r, {"token": m.carol.address}


@scenario("UnknownInstrument")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.settle(m.acct(m.alice), 99), m.bob)
    return r, {"instrument": 99}


@scenario("ZeroAmount")
def _(m: Market) -> Result:
    return m.revert_of(m.vault.functions.depositCash(m.acct(m.alice), 0), m.alice), {}


@scenario("InsufficientBalance")
def _(m: Market) -> Result:
    b = m.acct(m.bob)
    r = m.revert_of(m.vault.functions.withdraw(b, m.weth.address, 5, _empty(b)), m.bob)
    return r, {"account": b, "token": m.weth.address, "balance": 0, "amount": 5}


@scenario("InsufficientInsurance")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.withdrawInsurance(1, m.owner), m.owner)
    return r, {"fund": 0, "amount": 10**12}


# ------------------------------------------------------------------------------ margin


@scenario("SafeMode")
def _(m: Market) -> Result:
    a = m.acct(m.alice)
    return m.revert_of(m.vault.functions.liquidate(a, _empty(a), 0, 0), m.bob), {}


@scenario("InsufficientMargin")
def _(m: Market) -> Result:
    t = trade(m)
    assert m.tree is not None
    amount = 60_000 * WAD
    cum_lo_after = m.state(m.bob)["cumLo"] - amount
    expected = bounds.im_surplus_lo(
        t.bob_leaf.equity, t.bob_leaf.im, t.bob_leaf.cum_lo, cum_lo_after
    )
    fn = m.vault.functions.withdrawCash(
        m.acct(m.bob), 60_000 * USDC6, m.tree.margin_proof(t.bob_leaf).to_abi()
    )
    return m.revert_of(fn, m.bob), {"account": m.acct(m.bob), "imSurplusLo": expected}


@scenario("BoundsFromPreviousPrices")
def _(m: Market) -> Result:
    t = trade(m)
    # epoch 2's snapshot is taken now; bob deposits before it is posted (epoch 1's prices)
    bob = m.leaf(m.bob, equity=t.bob_leaf.equity, im=t.bob_leaf.im, mm=t.bob_leaf.mm)
    header = m.header([t.alice_leaf, bob, PERP_LEAF, CALL_LEAF])
    m.chain.advance(1)
    m.fund_usdc(m.bob, 1_000 * USDC6)
    m.post(header)
    assert m.tree is not None
    epoch, snapshot, _, _ = m.vault.functions.currentEpoch().call()
    last_block, last_epoch, tainted = m.vault.functions.boundChange(m.acct(m.bob)).call()
    assert (last_epoch, tainted) == (1, 0)  # the taint is set by bob's next change
    assert bounds.bounds_from_previous_prices(last_block, last_epoch, tainted, epoch, snapshot)
    a = m.vault.functions.boundChange(m.acct(m.alice)).call()
    assert not bounds.bounds_from_previous_prices(*a, epoch, snapshot)  # alice: no change since
    fn = m.vault.functions.withdrawCash(
        m.acct(m.bob), 1_000 * USDC6, m.tree.margin_proof(bob).to_abi()
    )
    return m.revert_of(fn, m.bob), {"account": m.acct(m.bob), "untilEpoch": 3}


@scenario("LeafAccountMismatch")
def _(m: Market) -> Result:
    t = trade(m)
    assert m.tree is not None
    proof = m.tree.margin_proof(t.bob_leaf).to_abi()
    fn = m.vault.functions.withdraw(m.acct(m.alice), m.weth.address, 1, proof)
    return m.revert_of(fn, m.alice), {"expected": m.acct(m.alice), "leafAccount": m.acct(m.bob)}


@scenario("InvalidAccountProof")
def _(m: Market) -> Result:
    t = trade(m)
    assert m.tree is not None
    proof = m.tree.margin_proof(t.alice_leaf)
    forged = MarginProof(dataclasses.replace(t.alice_leaf, equity=10**30), proof.proof)
    fn = m.vault.functions.withdraw(m.acct(m.alice), m.weth.address, 1, forged.to_abi())
    return m.revert_of(fn, m.alice), {"account": m.acct(m.alice)}


def _liquidate_alice(m: Market) -> tuple[AccountLeaf, AccountLeaf, Any]:
    """Alice's subaccount below MM in epoch 2 (2,000 equity, 7,200 MM, 9,000 IM)."""
    trade(m)
    m.chain.advance(60)
    alice = m.leaf(m.alice, equity=2_000 * WAD, im=9_000 * WAD, mm=7_200 * WAD)
    carol = m.leaf(m.carol, equity=100_000 * WAD, im=0, mm=0)
    m.post(m.header([alice, carol, PERP_LEAF, CALL_LEAF]))
    assert m.tree is not None
    return alice, carol, m.tree


@scenario("StaleStateNonce")
def _(m: Market) -> Result:
    # A liquidation keeps the nonce (the portfolio stays), so a stale leaf is one whose
    # nonce the subaccount does not have: signed into a root, still refused.
    trade(m)
    m.chain.advance(60)
    alice = m.leaf(m.alice, equity=2_000 * WAD, im=9_000 * WAD, mm=7_200 * WAD)
    stale = dataclasses.replace(alice, state_nonce=alice.state_nonce + 1)
    m.post(m.header([stale, PERP_LEAF, CALL_LEAF]))
    assert m.tree is not None
    target = m.tree.margin_proof(stale).to_abi()
    r = m.revert_of_call(m.vault.functions.checkLiquidation(m.acct(m.alice), target))
    return r, {"account": m.acct(m.alice), "expected": 0, "leafNonce": 1}


def _prove_fn(m: Market, seq: int, state: CommittedState, deltas: list[StateDelta]) -> Any:
    lens = deploy_contract(m.w3, m.compiled, "StateLens", [m.vault.address], m.owner)
    return lens.functions.proveStateAt(
        m.acct(m.alice), seq, bytes(24), state.to_abi(), [d.to_abi() for d in deltas]
    )


@scenario("NonCanonicalState")
def _(m: Market) -> Result:
    zero = CommittedState(0, ((m.perp, 0, 0),))  # a position of size 0
    return m.revert_of_call(_prove_fn(m, 0, zero, [])), {"index": 0}


@scenario("StateChainMismatch")
def _(m: Market) -> Result:
    # alice never changed: her word is 0, not the word at sequence number 1
    r = m.revert_of_call(_prove_fn(m, 1, CommittedState(0), []))
    return r, {"stored": bytes(32)}


@scenario("StateDeltaMismatch")
def _(m: Market) -> Result:
    m.fund_usdc(m.alice, 100 * USDC6)  # two deltas: cash 0 -> 100, bounds (0, 0) -> (100, 100)
    real = [StateDelta(1, 0, 0, 0, 100 * WAD, 0), StateDelta(4, 0, 0, 0, 100 * WAD, 100 * WAD)]
    return m.revert_of_call(_prove_fn(m, 0, CommittedState(5), real)), {"index": 0}


@scenario("StateMismatch")
def _(m: Market) -> Result:
    held = CommittedState(0, (), ((m.weth.address.lower(), WAD),))  # alice holds no weth
    return m.revert_of_call(_prove_fn(m, 0, held, [])), {}


def _min_deposit6(m: Market, leaf: AccountLeaf, tree: Any) -> int:
    view = m.vault.functions.checkLiquidation(leaf.account, tree.margin_proof(leaf).to_abi())
    return int(view.call()[6])


@scenario("LiquidationCostTooHigh")
def _(m: Market) -> Result:
    alice, _, tree = _liquidate_alice(m)
    # pay 0 + fee min(penalty, eqLo) * 50 % - covered 0; eqLo counts 1 wei of pending
    # funding rounding per open position (2)
    net = 1_000 * WAD - 1
    fn = m.vault.functions.liquidate(
        m.acct(m.alice), tree.margin_proof(alice).to_abi(), 10**12, net - 1
    )
    return m.revert_of(fn, m.carol), {"netCashPaid": net, "maxCashOut": net - 1}


@scenario("LiquidationDepositTooSmall")
def _(m: Market) -> Result:
    alice, _, tree = _liquidate_alice(m)
    need = _min_deposit6(m, alice, tree)
    assert need == 8_000 * USDC6 + 1  # the IM deficit (7,000) + the fee (1,000), rounded up
    m.fund_usdc(m.carol, need, deposit=False)
    fn = m.vault.functions.liquidate(
        m.acct(m.alice), tree.margin_proof(alice).to_abi(), need - 1, 10**30
    )
    return m.revert_of(fn, m.carol), {"deposit6": need - 1, "minDeposit6": need}


@scenario("AccountHealthy")
def _(m: Market) -> Result:
    t = trade(m)
    assert m.tree is not None
    expected = bounds.mm_surplus_hi(
        t.bob_leaf.equity, t.bob_leaf.mm, t.bob_leaf.cum_hi, m.state(m.bob)["cumHi"]
    )
    fn = m.vault.functions.liquidate(
        m.acct(m.bob), m.tree.margin_proof(t.bob_leaf).to_abi(), 0, 10**30
    )
    return m.revert_of(fn, m.carol), {"account": m.acct(m.bob), "mmSurplusHi": expected}


@scenario("NothingToLiquidate")
def _(m: Market) -> Result:
    fund_all(m)  # alice: 10 WETH and 20k cash, no position
    # a lying leaf: alice holds no position and owes nothing, yet mm is huge
    alice = m.leaf(m.alice, equity=0, im=10**30, mm=10**30)
    carol = m.leaf(m.carol, equity=100_000 * WAD, im=0, mm=0)
    m.post(m.header([alice, carol, PERP_LEAF, CALL_LEAF]))
    assert m.tree is not None
    fn = m.vault.functions.liquidate(
        m.acct(m.alice), m.tree.margin_proof(alice).to_abi(), 0, 10**30
    )
    return m.revert_of(fn, m.carol), {"account": m.acct(m.alice)}


@scenario("SelfLiquidation")
def _(m: Market) -> Result:
    a = m.acct(m.alice)
    return m.revert_of(m.vault.functions.liquidate(a, _empty(a), 0, 0), m.alice), {"account": a}


@scenario("SelfLiquidation:operator")
def _(m: Market) -> Result:
    a = m.acct(m.alice)
    m.tx(m.vault.functions.setOperator(m.bob.address, True), m.alice)
    return m.revert_of(m.vault.functions.liquidate(a, _empty(a), 0, 0), m.bob), {"account": a}


@scenario("NothingToClaim")
def _(m: Market) -> Result:
    return m.revert_of(m.vault.functions.claimPayout(), m.bob), {}


# --------------------------------------------------------------------------- subaccounts


@scenario("UnknownSubaccount")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.depositCash(99, USDC6), m.alice)
    return r, {"account": 99}


@scenario("NotAuthorized")
def _(m: Market) -> Result:
    fund_all(m)
    b = m.acct(m.bob)
    r = m.revert_of(m.vault.functions.withdrawCash(b, USDC6, _empty(b)), m.alice)
    return r, {"account": b, "sender": m.alice.address}


@scenario("NotAuthorized:makerAccount")
def _(m: Market) -> Result:
    # alice signs a quote for carol's subaccount: the signature is hers, the subaccount not
    q, args = _quote_ready(m, maker_account=m.acct(m.carol), taker=m.bob.address)
    return m.revert_of(m.vault.functions.executeQuote(*args), m.bob), {
        "account": m.acct(m.carol),
        "sender": m.alice.address,
    }


@scenario("ZeroAddress:transferSubaccount")
def _(m: Market) -> Result:
    fn = m.vault.functions.transferSubaccount(m.acct(m.alice), ZERO)
    return m.revert_of(fn, m.alice), {}


# --------------------------------------------------------------------------- attestation


@scenario("InvalidSignature")
def _(m: Market) -> Result:
    header = _epoch_ready(m)
    m.ready(header)
    fn = m.vault.functions.postEpoch(header.to_abi(), [bytes(65), bytes(65)])
    return m.revert_of(fn, m.owner), {"index": 0}


@scenario("UnknownSigner")
def _(m: Market) -> Result:
    header = _epoch_ready(m)
    r = m.revert_of(_post_fn(m, header, [m.signers[0], OUTSIDER]), m.owner)
    return r, {"signer": OUTSIDER.address}


@scenario("DuplicateSigner")
def _(m: Market) -> Result:
    header = _epoch_ready(m)
    m.ready(header)
    sig = sign_epoch(header, [m.signers[0]], m.domain)[0]
    fn = m.vault.functions.postEpoch(header.to_abi(), [sig, sig])
    return m.revert_of(fn, m.owner), {"signer": m.signers[0].address}


@scenario("SignersNotSorted")
def _(m: Market) -> Result:
    header = _epoch_ready(m)
    m.ready(header)
    sigs = sign_epoch(header, m.signers[:2], m.domain)
    fn = m.vault.functions.postEpoch(header.to_abi(), list(reversed(sigs)))
    r = m.revert_of(fn, m.owner)
    return r, {"previous": m.signers[1].address, "signer": m.signers[0].address}


@scenario("BelowQuorum")
def _(m: Market) -> Result:
    header = _epoch_ready(m)
    r = m.revert_of(_post_fn(m, header, m.signers[:1]), m.owner)
    return r, {"signatures": 1, "quorum": 2}


@scenario("WrongConfigVersion")
def _(m: Market) -> Result:
    fund_all(m)
    header = m.header([PERP_LEAF], config_version=7)
    return m.revert_of(_post_fn(m, header), m.owner), {"expected": 1, "got": 7}


@scenario("EpochNotIncreasing")
def _(m: Market) -> Result:
    fund_all(m)
    post_epoch_1(m)
    header = m.header([PERP_LEAF], epoch=1)
    return m.revert_of(_post_fn(m, header), m.owner), {"last": 1, "got": 1}


@scenario("InvalidSnapshotBlock")
def _(m: Market) -> Result:
    header = dataclasses.replace(_epoch_ready(m), snapshot_block=m.w3.eth.block_number + 10)
    r = m.revert_of(_post_fn(m, header), m.owner)
    return r, {"snapshotBlock": header.snapshot_block, "lastSnapshotBlock": 0}


@scenario("TimestampBeforeLast")
def _(m: Market) -> Result:
    fund_all(m)
    post_epoch_1(m)
    last = int(m.vault.functions.currentEpoch().call()[2])
    header = m.header([PERP_LEAF], timestamp=last - 1)
    r = m.revert_of(_post_fn(m, header), m.owner)
    return r, {"lastTimestamp": last, "timestamp": last - 1}


@scenario("TimestampInFuture")
def _(m: Market) -> Result:
    fund_all(m)
    header = m.header([PERP_LEAF], timestamp=m.chain.now() + 3_600)
    return m.revert_of(_post_fn(m, header), m.owner), {"timestamp": header.timestamp}


@scenario("StaleTimestamp")
def _(m: Market) -> Result:
    fund_all(m)
    header = m.header([PERP_LEAF], timestamp=m.chain.now() - 4_000)  # maxAge is 3,600
    return m.revert_of(_post_fn(m, header), m.owner), {"timestamp": header.timestamp}


@scenario("EmptyRoot")
def _(m: Market) -> Result:
    header = dataclasses.replace(_epoch_ready(m), root=bytes(32))
    return m.revert_of(_post_fn(m, header), m.owner), {}


@scenario("TokenCountMismatch")
def _(m: Market) -> Result:
    header = dataclasses.replace(_epoch_ready(m), tokens=())
    return m.revert_of(_post_fn(m, header), m.owner), {"expected": 1, "got": 0}


@scenario("TokenTableMismatch")
def _(m: Market) -> Result:
    wrong = (TokenPrice(m.usdc.address, WAD, 0, 0),)
    header = dataclasses.replace(_epoch_ready(m), tokens=wrong)
    r = m.revert_of(_post_fn(m, header), m.owner)
    return r, {"index": 0, "expected": m.weth.address, "got": m.usdc.address}


@scenario("InvalidTokenPrice")
def _(m: Market) -> Result:
    fund_all(m)
    header = m.header([PERP_LEAF], down=WAD + 1)
    r = m.revert_of(_post_fn(m, header), m.owner)
    return r, {"token": m.weth.address, "price": 3_000 * WAD, "downShock": WAD + 1}


@scenario("PriceDeviatesFromReference")
def _(m: Market) -> Result:
    price_references(m)  # WETH's feed answers 3,000; at most 5 % off
    fund_all(m)
    header = m.header([PERP_LEAF, CALL_LEAF], weth_price=3_300 * WAD)
    r = m.revert_of(_post_fn(m, header), m.owner)
    expected = {"token": m.weth.address, "price": 3_300 * WAD, "referencePrice": 3_000 * WAD}
    return r, {**expected, "deviation": WAD // 10, "maxDeviation": 5 * WAD // 100}


@scenario("NotAPerp")
def _(m: Market) -> Result:
    fund_all(m)
    header = m.header([PERP_LEAF], funding=(FundingUpdate(m.call, 1),))
    return m.revert_of(_post_fn(m, header), m.owner), {"instrument": m.call}


@scenario("NotAnOption")
def _(m: Market) -> Result:
    fund_all(m)
    header = m.header([PERP_LEAF], settlements=(Settlement(m.perp, 1),))
    return m.revert_of(_post_fn(m, header), m.owner), {"instrument": m.perp}


@scenario("NotExpired")
def _(m: Market) -> Result:
    fund_all(m)
    header = m.header([PERP_LEAF], settlements=(Settlement(m.call, 1),))
    r = m.revert_of(_post_fn(m, header), m.owner)
    return r, {"instrument": m.call, "expiry": m.call_expiry, "timestamp": header.timestamp}


def _settle_call(m: Market) -> None:
    fund_all(m)
    m.chain.mine_at(m.call_expiry + 1)
    m.post(m.header([PERP_LEAF], settlements=(Settlement(m.call, 3_100 * WAD),)))


@scenario("SettlementAlreadySet")
def _(m: Market) -> Result:
    _settle_call(m)
    header = m.header([PERP_LEAF], settlements=(Settlement(m.call, 3_200 * WAD),))
    return m.revert_of(_post_fn(m, header), m.owner), {"instrument": m.call}


# -------------------------------------------------------------------------------- quotes


def _quote_ready(m: Market, **changes: Any) -> tuple[Quote, list[Any]]:
    fund_all(m)
    alice, bob, _ = post_epoch_1(m)
    q = dataclasses.replace(alice_quote(m), **changes)
    return q, execute_args(m, q, sign_quote(q, m.alice, m.domain), alice, bob)


@scenario("QuoteExpired")
def _(m: Market) -> Result:
    fund_all(m)
    alice, bob, _ = post_epoch_1(m)
    q = dataclasses.replace(alice_quote(m), deadline=m.chain.now() - 1)
    args = execute_args(m, q, sign_quote(q, m.alice, m.domain), alice, bob)
    r = m.revert_of(m.vault.functions.executeQuote(*args), m.bob)
    return r, {"deadline": q.deadline}


@scenario("WrongTaker")
def _(m: Market) -> Result:
    q, args = _quote_ready(m, taker=m.carol.address)
    r = m.revert_of(m.vault.functions.executeQuote(*args), m.bob)
    return r, {"expected": m.carol.address, "sender": m.bob.address}


@scenario("SelfTrade")
def _(m: Market) -> Result:
    q, args = _quote_ready(m, taker=ZERO)
    args[4], args[5] = m.acct(m.alice), args[3]  # filled into the maker's own subaccount
    r = m.revert_of(m.vault.functions.executeQuote(*args), m.alice)
    return r, {"account": m.acct(m.alice)}


@scenario("NonceUsed")
def _(m: Market) -> Result:
    t = trade(m)  # the same signed quote, sent again: a replay
    sig = sign_quote(t.quote, m.alice, m.domain)
    args = execute_args(m, t.quote, sig, t.alice_leaf, t.bob_leaf)
    r = m.revert_of(m.vault.functions.executeQuote(*args), m.bob)
    return r, {"maker": m.alice.address, "nonce": 1}


@scenario("InvalidQuoteSignature")
def _(m: Market) -> Result:
    q, args = _quote_ready(m)
    args[1] = bytes(m.bob.sign_message(quote_typed_data(q, m.domain)).signature)
    r = m.revert_of(m.vault.functions.executeQuote(*args), m.bob)
    return r, {"maker": m.alice.address, "recovered": m.bob.address}


@scenario("InvalidLegs")
def _(m: Market) -> Result:
    q, args = _quote_ready(m)
    args[2] = args[2][:1]
    return m.revert_of(m.vault.functions.executeQuote(*args), m.bob), {"legs": 2, "proofs": 1}


@scenario("ZeroSize")
def _(m: Market) -> Result:
    q, args = _quote_ready(m)
    q = dataclasses.replace(q, legs=(Leg(m.perp, 0, 3_000 * WAD), q.legs[1]))
    args[0], args[1] = q.to_abi(), sign_quote(q, m.alice, m.domain)
    return m.revert_of(m.vault.functions.executeQuote(*args), m.bob), {"instrument": m.perp}


@scenario("InvalidInstrumentProof")
def _(m: Market) -> Result:
    q, args = _quote_ready(m)
    assert m.tree is not None
    forged = InstrumentLeaf(m.perp, 1, 0, 0)  # a mark and zero losses the signers never posted
    args[2][0] = InstrumentProof(forged, m.tree.proof(PERP_LEAF)).to_abi()
    return m.revert_of(m.vault.functions.executeQuote(*args), m.bob), {"instrument": m.perp}


@scenario("InstrumentLeafMismatch")
def _(m: Market) -> Result:
    q, args = _quote_ready(m)
    args[2] = [args[2][1], args[2][0]]
    r = m.revert_of(m.vault.functions.executeQuote(*args), m.bob)
    return r, {"expected": m.perp, "leafInstrument": m.call}


@scenario("InstrumentExpired")
def _(m: Market) -> Result:
    fund_all(m)
    m.chain.mine_at(m.call_expiry + 1)
    alice = m.leaf(m.alice, equity=50_000 * WAD, im=4_500 * WAD, mm=3_600 * WAD)
    bob = m.leaf(m.bob, equity=50_000 * WAD, im=0, mm=0)
    m.post(m.header([alice, bob, PERP_LEAF, CALL_LEAF]))
    q = alice_quote(m)
    args = execute_args(m, q, sign_quote(q, m.alice, m.domain), alice, bob)
    r = m.revert_of(m.vault.functions.executeQuote(*args), m.bob)
    return r, {"instrument": m.call, "expiry": m.call_expiry}


@scenario("TooManyPositions")
def _(m: Market) -> Result:
    fund_all(m)
    for i in range(63):  # 65 instruments: one more than an account may hold
        perp_on = f"X{i}".encode().ljust(32, b"\0")  # one perp per underlying
        m.tx(m.vault.functions.registerInstrument(0, perp_on, 0, 0), m.owner)
    ids = list(range(1, 66))
    inst = {i: InstrumentLeaf(i, 10 * WAD, WAD, WAD) for i in ids}
    alice = m.leaf(m.alice, equity=50_000 * WAD, im=0, mm=0)
    bob = m.leaf(m.bob, equity=50_000 * WAD, im=0, mm=0)
    m.post(m.header([alice, bob, *inst.values()]))
    assert m.tree is not None
    tree = m.tree
    for n, start in enumerate(range(0, 65, 8)):
        chunk = ids[start : start + 8]
        q = Quote(
            m.alice.address,
            m.acct(m.alice),
            ZERO,
            tuple(Leg(i, WAD, 10 * WAD) for i in chunk),
            100 + n,
            m.chain.now() + 600,
        )
        fn = m.vault.functions.executeQuote(
            q.to_abi(),
            sign_quote(q, m.alice, m.domain),
            [tree.instrument_proof(inst[i]).to_abi() for i in chunk],
            tree.margin_proof(alice).to_abi(),
            m.acct(m.bob),
            tree.margin_proof(bob).to_abi(),
        )
        if 65 in chunk:
            return m.revert_of(fn, m.bob), {"account": m.acct(m.alice), "max": 64}
        m.tx(fn, m.bob)
    raise AssertionError("unreachable")


# ----------------------------------------------------------------- settlement, modules


@scenario("SettlementPriceNotSet")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.settle(m.acct(m.alice), m.call), m.bob)
    return r, {"instrument": m.call}


@scenario("NoPosition")
def _(m: Market) -> Result:
    _settle_call(m)
    r = m.revert_of(m.vault.functions.settle(m.acct(m.carol), m.call), m.bob)
    return r, {"account": m.acct(m.carol), "instrument": m.call}


@scenario("NotDelegated")
def _(m: Market) -> Result:
    header = _epoch_ready(m)
    module = m.w3.eth.contract(address=m.vault.functions.epochModule().call(), abi=m.abi)
    m.ready(header)
    fn = module.functions.postEpoch(header.to_abi(), sign_epoch(header, m.signers[:2], m.domain))
    return m.revert_of(fn, m.owner), {}


# ------------------------------------------------------------- finality (protocol.md §10)

WINDOW = 3_600


def _disputes_on(m: Market, *, window: int = WINDOW, min_bond6: int = 0) -> None:
    m.tx(m.vault.functions.setDisputeConfig(window, min_bond6), m.owner)


def _post_duplicate(m: Market) -> tuple[int, Any]:
    """Epoch 1 (disputes on, no bond needed) whose root holds two leaves of alice; returns
    the epoch and the ``disputeDuplicateLeaf`` call."""
    fund_all(m)
    _disputes_on(m)
    a = m.leaf(m.alice, equity=50_000 * WAD, im=4_500 * WAD, mm=3_600 * WAD)
    b = m.leaf(m.alice, equity=5_000_000 * WAD, im=4_500 * WAD, mm=3_600 * WAD)
    m.post(m.header([a, b, PERP_LEAF, CALL_LEAF]))
    tree = m.tree
    assert tree is not None
    fn = m.vault.functions.disputeDuplicateLeaf(
        m.epoch, a.to_abi(), list(tree.proof(a)), b.to_abi(), list(tree.proof(b))
    )
    return m.epoch, fn


def _alice_borrows(m: Market) -> None:
    """alice (10 WETH, no cash after) borrows 1,000 USDC: queued while disputes are on."""
    fund_all(m)
    _disputes_on(m)
    post_epoch_1(m)
    cash6 = m.state(m.alice)["cash"] // 10**12
    fn = m.vault.functions.withdrawCash(m.acct(m.alice), cash6 + 1_000 * USDC6, _empty(1))
    m.tx(fn, m.alice)
    assert int(m.vault.functions.pendingWithdrawalCount().call()) == 1


@scenario("InvalidChallengeWindow")
def _(m: Market) -> Result:
    r = m.revert_of(m.vault.functions.setDisputeConfig(7 * 86_400 + 1, 0), m.owner)
    return r, {"window": 7 * 86_400 + 1, "max": 7 * 86_400}


@scenario("BondTooLow")
def _(m: Market) -> Result:
    header = _epoch_ready(m)
    _disputes_on(m, min_bond6=1_000 * USDC6)
    return m.revert_of(_post_fn(m, header), m.owner), {"bond": 0, "minBond": 1_000 * WAD}


@scenario("OwnableUnauthorizedAccount")
def _(m: Market) -> Result:
    fn = m.vault.functions.setDisputeConfig(60, 0)  # an owner function, sent by alice
    return m.revert_of(fn, m.alice), {"account": m.alice.address}


@scenario("BondLocked")
def _(m: Market) -> Result:
    fn = m.vault.functions.withdrawBond(1, m.owner)
    return m.revert_of(fn, m.owner), {"amount": 10**12, "withdrawable": 0}


@scenario("EpochHistoryFull")
def _(m: Market) -> Result:
    fund_all(m)
    _disputes_on(m)
    post_epoch_1(m)
    header = m.header([PERP_LEAF, CALL_LEAF], epoch=1 + 8_192)
    return m.revert_of(_post_fn(m, header), m.owner), {"epochInSlot": 1}


@scenario("SignersNotRotated")
def _(m: Market) -> Result:
    _, dispute = _post_duplicate(m)
    m.tx(dispute, m.bob)
    header = m.header([PERP_LEAF, CALL_LEAF])
    return m.revert_of(_post_fn(m, header), m.owner), {"oldSignersInSet": 3, "quorum": 2}


@scenario("EpochNotDisputable")
def _(m: Market) -> Result:
    leaf = AccountLeaf(1, 0, 0, 0, 0, 0, 0).to_abi()
    fn = m.vault.functions.disputeDuplicateLeaf(5, leaf, [], leaf, [])
    return m.revert_of(fn, m.bob), {"epoch": 5}


@scenario("EpochAlreadyJudged")
def _(m: Market) -> Result:
    epoch, dispute = _post_duplicate(m)
    m.tx(dispute, m.bob)
    return m.revert_of(dispute, m.carol), {"epoch": epoch, "judgedThrough": epoch}


@scenario("ChallengeWindowOver")
def _(m: Market) -> Result:
    epoch, dispute = _post_duplicate(m)
    m.chain.advance(WINDOW + 60)
    return m.revert_of(dispute, m.bob), {"epoch": epoch}


@scenario("NotADuplicate")
def _(m: Market) -> Result:
    fund_all(m)
    _disputes_on(m)
    alice, _, _ = post_epoch_1(m)
    assert m.tree is not None
    proof = list(m.tree.proof(alice))
    fn = m.vault.functions.disputeDuplicateLeaf(1, alice.to_abi(), proof, alice.to_abi(), proof)
    return m.revert_of(fn, m.bob), {"account": m.acct(m.alice)}


# ---------------------------------------------------- account disputes (protocol.md §11)


def _claim_world(m: Market, *, committed: bool = True, equity_delta: int = 0) -> tuple[Any, ...]:
    """alice (collateral only) in epoch 1 with disputes on; one flat vector for every token
    (price 3,000, no loss) and one underlying, committed in the header unless not
    ``committed``; her leaf holds the numbers those give (plus ``equity_delta``). Returns
    ``disputeAccount``'s claim tuple."""
    fund_all(m)
    _disputes_on(m)
    vec = RiskVectorWad(0, 3_000 * WAD, (0, 0, 0), (), 0, 0, 3_000 * WAD, 0, 0, 3_000 * WAD)
    params = AggregationParamsWad(1, (), WAD, (0,), (0,), (WAD,), (), ())
    tokens = list(m.vault.functions.tokens().call())
    token_hashes = [hash_v(vec)] * len(tokens)
    market = keccak(text="market")
    inputs = keccak(hash_params(params) + keccak(b"".join(token_hashes)) + market)
    s = m.state(m.alice)
    assert not s["instruments"]
    held = sorted(
        ((t.lower(), int(b)) for t, b in zip(tokens, s["coll"], strict=True) if b),
        key=lambda x: int(x[0], 16),
    )
    decimals = {t.lower(): 18 for t in tokens}  # the test tokens of Market
    sizes = [b * 10 ** (18 - decimals[t]) for t, b in held]
    equity = s["cash"] + sum(z * 3_000 for z in sizes) + equity_delta
    alice = m.leaf(m.alice, equity=equity, im=0, mm=0)
    header = m.header([alice, PERP_LEAF, CALL_LEAF])
    if committed:
        header = dataclasses.replace(header, inputs_hash=inputs)
    m.post(header)
    assert m.tree is not None
    state = CommittedState(s["cash"], (), tuple(held), s["cumLo"], s["cumHi"])
    return (
        m.epoch,
        alice.to_abi(),
        list(m.tree.proof(alice)),
        state.to_abi(),
        [],
        [],
        [],
        s["cash"],
        sizes,
        [vec.to_abi()] * len(sizes),
        params.to_abi(),
        token_hashes,
        market,
    )


def _with(claim: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return (*claim[:index], value, *claim[index + 1 :])


@scenario("InputsMismatch")
def _(m: Market) -> Result:
    claim = _claim_world(m, committed=False)
    r = m.revert_of(m.vault.functions.disputeAccount(claim), m.bob)
    return r, {"epoch": 1, "committed": bytes(32)}


@scenario("LeafIsHonest")
def _(m: Market) -> Result:
    claim = _claim_world(m)
    r = m.revert_of(m.vault.functions.disputeAccount(claim), m.bob)
    return r, {"account": m.acct(m.alice), "equity": claim[1][4], "im": 0, "mm": 0}


@scenario("ClaimShapeMismatch")
def _(m: Market) -> Result:
    claim = _claim_world(m)
    n = len(claim[8])
    r = m.revert_of(m.vault.functions.disputeAccount(_with(claim, 9, claim[9][:-1])), m.bob)
    return r, {"count": n, "expected": n - 1}


@scenario("VectorMismatch")
def _(m: Market) -> Result:
    claim = _claim_world(m)
    other = (claim[9][0][0], claim[9][0][1] + 1, *claim[9][0][2:])  # another mark
    r = m.revert_of(m.vault.functions.disputeAccount(_with(claim, 9, [other])), m.bob)
    return r, {"index": 0}


@scenario("SizeMismatch")
def _(m: Market) -> Result:
    claim = _claim_world(m)
    size = claim[8][0]
    r = m.revert_of(m.vault.functions.disputeAccount(_with(claim, 8, [size + 1])), m.bob)
    return r, {"index": 0, "expected": size, "given": size + 1}


@scenario("EngineCashMismatch")
def _(m: Market) -> Result:
    claim = _claim_world(m)
    r = m.revert_of(m.vault.functions.disputeAccount(_with(claim, 7, claim[7] + 1)), m.bob)
    return r, {"expected": claim[7], "given": claim[7] + 1}


def _perp_world(m: Market) -> dict[str, Any]:
    """Disputes on; the perp's leaf and vector are the engine's for a committed one-underlying
    market (250 seeded daily returns): posted in an epoch whose inputs hash commits them."""
    import numpy as np

    from keeper.dispute_encoding import (
        MarketInputsWad,
        RangeParamsWad,
        VectorParamsWad,
        inputs_hash_from,
        market_hash_of,
    )
    from risk_engine import build_risk_arrays, load_params
    from risk_engine.instruments import InstrumentKind, InstrumentTable
    from risk_engine.market import MarketSnapshot, VolSurface

    fund_all(m)
    _disputes_on(m)
    empty = np.array([], dtype=np.float64)
    market = MarketSnapshot(
        int(m.w3.eth.get_block("latest")["timestamp"]),
        ("ETH",),
        np.array([3_000.0]),
        np.array([3_001.5]),
        0.03,
        VolSurface((), np.array([], dtype=np.int64), empty, empty, empty, empty),
        np.random.default_rng(7).normal(0.0, 0.03, (250, 1)),
    )
    perp = InstrumentTable(
        np.array([int(InstrumentKind.PERP)], dtype=np.int8), ("ETH",), np.zeros(1), np.zeros(1)
    )
    params = load_params()
    arrays = build_risk_arrays(perp, market, params)
    vec = RiskVectorWad.from_arrays(arrays, 0)
    w = arrays.leaves.to_wad()
    leaf = InstrumentLeaf(1, w.mark[0], w.loss_long[0], w.loss_short[0], 0, hash_v(vec))
    mkt, vparams = MarketInputsWad.from_engine(market, arrays), VectorParamsWad.from_arrays(arrays)
    rparams = RangeParamsWad.from_params(params)
    agg = AggregationParamsWad.from_arrays(arrays)
    snapshot, tokens = keccak(text="market"), keccak(text="token vectors")
    mh = market_hash_of(snapshot, mkt, vparams, rparams)
    header = m.header(
        [m.leaf(m.alice, equity=0, im=0, mm=0), leaf, CALL_LEAF], funding=(FundingUpdate(1, 0),)
    )
    m.post(dataclasses.replace(header, inputs_hash=inputs_hash_from(hash_params(agg), tokens, mh)))
    assert m.tree is not None
    return {
        "leaf": leaf,
        "vec": vec,
        "market": mkt,
        "vparams": vparams,
        "rparams": rparams,
        "agg": agg,
        "snapshot": snapshot,
        "tokens": tokens,
    }


def _instrument_claim(
    m: Market, p: dict[str, Any], funding: list[tuple[int, int]]
) -> tuple[Any, ...]:
    """``disputeInstrument``'s claim for the perp's leaf of :func:`_perp_world`'s epoch, with
    ``funding`` as the header's funding updates."""
    assert m.tree is not None
    return (
        m.epoch,
        p["leaf"].to_abi(),
        list(m.tree.proof(p["leaf"])),
        p["vec"].to_abi(),
        p["market"].to_abi(),
        p["vparams"].to_abi(),
        p["snapshot"],
        p["agg"].to_abi(),
        p["tokens"],
        keccak(p["rparams"].encode()),
        funding,
    )


@scenario("InstrumentLeafIsHonest")
def _(m: Market) -> Result:
    """The chain's recomputation of the perp's vector agrees with the engine's."""
    claim = _instrument_claim(m, _perp_world(m), [(1, 0)])
    r = m.revert_of(m.vault.functions.disputeInstrument(claim), m.bob)
    return r, {"instrument": 1}


@scenario("FundingListMismatch")
def _(m: Market) -> Result:
    """The claim's funding updates are not the header's (it posted the perp's index 0)."""
    claim = _instrument_claim(m, _perp_world(m), [(1, 7)])
    r = m.revert_of(m.vault.functions.disputeInstrument(claim), m.bob)
    return r, {"epoch": m.epoch}


def _range_claim(m: Market, p: dict[str, Any], returns: list[int]) -> tuple[Any, ...]:
    return (
        m.epoch,
        0,
        returns,
        p["market"].to_abi(),
        keccak(p["vparams"].encode()),
        p["rparams"].to_abi(),
        p["snapshot"],
        hash_params(p["agg"]),
        p["tokens"],
    )


@scenario("ScanRangeIsHonest")
def _(m: Market) -> Result:
    """ETH's committed scan range is what its committed returns give."""
    p = _perp_world(m)
    claim = _range_claim(m, p, list(p["market"].returns[0]))
    r = m.revert_of(m.vault.functions.disputeRange(claim), m.bob)
    return r, {"underlying": 0}


@scenario("ReturnsMismatch")
def _(m: Market) -> Result:
    p = _perp_world(m)
    returns = list(p["market"].returns[0])
    returns[0] += 1
    r = m.revert_of(m.vault.functions.disputeRange(_range_claim(m, p, returns)), m.bob)
    return r, {"underlying": 0}


@scenario("StateWordIsReal")
def _(m: Market) -> Result:
    claim = _claim_world(m)
    leaf = claim[1]
    fn = m.vault.functions.disputeAccountState(1, leaf, claim[2], leaf[7][:24], claim[3], [])
    return m.revert_of(fn, m.bob), {"account": m.acct(m.alice), "stateWord": leaf[7]}


@scenario("UnknownWithdrawal")
def _(m: Market) -> Result:
    return m.revert_of(m.vault.functions.claimWithdrawal(7), m.bob), {"id": 7}


@scenario("WithdrawalNotReady")
def _(m: Market) -> Result:
    _alice_borrows(m)
    return m.revert_of(m.vault.functions.claimWithdrawal(1), m.bob), {"id": 1}


@scenario("WithdrawalVoid")
def _(m: Market) -> Result:
    _alice_borrows(m)
    a = m.leaf(m.bob, equity=50_000 * WAD, im=0, mm=0)
    b = m.leaf(m.bob, equity=60_000 * WAD, im=0, mm=0)
    m.post(m.header([a, b, PERP_LEAF, CALL_LEAF]))
    assert m.tree is not None
    dispute = m.vault.functions.disputeDuplicateLeaf(
        m.epoch, a.to_abi(), list(m.tree.proof(a)), b.to_abi(), list(m.tree.proof(b))
    )
    m.tx(dispute, m.carol)
    m.chain.advance(WINDOW)
    return m.revert_of(m.vault.functions.claimWithdrawal(1), m.bob), {"id": 1}


@scenario("WithdrawalNotVoid")
def _(m: Market) -> Result:
    _alice_borrows(m)
    return m.revert_of(m.vault.functions.returnWithdrawal(1), m.bob), {"id": 1}


# --------------------------------------------------------------------------------- tests


def _check(m: Market, scenario_name: str) -> None:
    revert, expected = SCENARIOS[scenario_name](m)
    name = scenario_name.split(":")[0]
    assert revert.name == name, str(revert)
    message = str(revert)
    assert message == decode_revert(revert.data, m.abi)
    assert message.startswith(f"{name}(") and message.endswith(
        ERROR_DESCRIPTIONS[name].format(**revert.args_by_name)
    )
    assert "\n" not in message
    for key, value in expected.items():
        assert revert.args_by_name[key] == value, f"{key}: {message}"


@pytest.mark.anvil
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_custom_error_reverts_with_readable_message(anvil_market: Market, name: str) -> None:
    _check(anvil_market, name)


# eth-tester reports reverts through another exception path (TransactionFailed wrapping the
# bytes): a few errors of each kind (no argument, addresses, signed WAD, view call) on it too.
TESTER_SUBSET = [
    "SafeMode",
    "InvalidQuorum",
    "InsufficientMargin",
    "NonceUsed",
    "StaleStateNonce",
    "NotAuthorized",
]


@pytest.mark.parametrize("name", TESTER_SUBSET)
def test_custom_error_is_readable_on_eth_tester(tester_market: Market, name: str) -> None:
    _check(tester_market, name)


def test_every_vault_error_has_an_on_chain_scenario(compiled: CompileResult) -> None:
    in_abi = {e["name"] for e in compiled["MarginVault"].errors()}
    # only the vault's own errors (Errors.sol); OpenZeppelin's are not reachable through it
    ours = in_abi & set(ERROR_DESCRIPTIONS)
    tripped = {name.split(":")[0] for name in SCENARIOS}
    missing = ours - tripped - set(UNREACHABLE)
    assert not missing, f"custom errors without an on-chain scenario: {sorted(missing)}"
    assert tripped <= ours and set(UNREACHABLE) <= in_abi
