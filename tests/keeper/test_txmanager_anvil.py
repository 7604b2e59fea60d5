"""TxManager against a real Anvil: nonces, EIP-1559 cap, stuck-tx replacement, RPC
outage and recovery, simulation and reverts, all recorded in the store."""

from __future__ import annotations

import threading
import time

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from keeper.errors import (
    FeeCapExceededError,
    RpcUnavailableError,
    SimulationError,
    TxRevertedError,
    TxTimeoutError,
)
from keeper.gas import FeeHistoryStrategy, Fees, FixedFeeStrategy
from keeper.retry import RetryPolicy
from keeper.store import Store
from keeper.txmanager import TxManager, TxRequest

pytestmark = pytest.mark.anvil

GWEI = 10**9
SINK = "0x000000000000000000000000000000000000dEaD"
# Runtime code `PUSH1 0 PUSH1 0 REVERT` behind a minimal constructor that returns it.
REVERTING_INITCODE = bytes.fromhex("6460006000fd6000526005601bf3")


def rpc(w3: Web3, method: str, *params: object) -> object:
    resp = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in resp, resp
    return resp["result"]


def manager(w3: Web3, sender: LocalAccount, store: Store | None, **kw: object) -> TxManager:
    opts: dict[str, object] = {
        "gas": FeeHistoryStrategy(priority_fee_wei=GWEI),
        "fee_cap_wei": 100 * GWEI,
        "store": store,
        "poll_interval": 0.05,
        "stuck_after": 30.0,
        "receipt_timeout": 20.0,
    }
    opts.update(kw)
    return TxManager(w3, sender, **opts)  # type: ignore[arg-type]


def transfer(value: int = 1) -> TxRequest:
    return TxRequest(to=SINK, value=value, purpose="transfer")


def test_send_usesLocalNonces_andRecordsMinedTransactions(w3, sender, store):
    tm = manager(w3, sender, store)
    start = w3.eth.get_transaction_count(sender.address)
    p1 = tm.submit(transfer())
    p2 = tm.submit(transfer())  # no wait in between: the local nonce advances
    assert (p1.nonce, p2.nonce) == (start, start + 1)
    r1, r2 = tm.wait(p1), tm.wait(p2)
    assert r1.gas_used == r2.gas_used == 21_000
    assert w3.eth.get_transaction_count(sender.address) == start + 2
    rec = store.get_tx(r2.tx_hash)
    assert rec is not None and rec.status == "mined" and rec.nonce == start + 1
    assert rec.gas_used == 21_000 and rec.block_number == r2.block_number
    assert rec.max_fee_per_gas <= 100 * GWEI


def test_submit_resyncsNonce_whenKeyWasUsedElsewhere(w3, sender, store):
    tm = manager(w3, sender, store)
    tm.sync_nonce()
    # Another process sends with the same key: our local nonce is now stale.
    other = manager(w3, sender, None)
    other.send(transfer())
    result = tm.send(transfer())
    assert result.nonce == tm.next_nonce - 1 == 1
    dropped = [t for t in store.txs(sender=sender.address) if t.status == "dropped"]
    assert len(dropped) == 1 and dropped[0].nonce == 0  # the refused attempt is on record


def test_feeHistoryStrategy_capsMaxFee_andRefusesWhenBaseFeeAboveCap(w3, sender, store):
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    # Cap between base + tip and 2 x base + tip: the max fee is cut down to the cap.
    cap = base + GWEI + base // 2
    tm = manager(w3, sender, store, fee_cap_wei=cap)
    fees = tm.current_fees()
    assert fees.max_fee_per_gas == cap
    assert fees.max_priority_fee_per_gas == GWEI
    assert tm.send(transfer()).effective_gas_price <= cap

    nonce_before = w3.eth.get_transaction_count(sender.address)
    tight = manager(w3, sender, store, fee_cap_wei=base // 2)
    with pytest.raises(FeeCapExceededError) as exc:
        tight.submit(transfer())
    assert exc.value.cap_wei == base // 2
    assert w3.eth.get_transaction_count(sender.address, "pending") == nonce_before


def test_stuckTransaction_underTooLowFee_isReplacedWithSameNonce(w3, sender, store):
    rpc(w3, "evm_setAutomine", False)
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    low = Fees(max_fee_per_gas=base, max_priority_fee_per_gas=GWEI // 10)
    tm = manager(w3, sender, store, gas=FixedFeeStrategy(low), stuck_after=0.3, bump_pct=12.5)
    pending = tm.submit(transfer())
    first = pending.tx_hash
    # The next block's base fee is above the tx's max fee: mined blocks leave it out.
    rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(base * 105 // 100))
    rpc(w3, "evm_mine")
    assert tm.poll(pending) is None
    assert w3.eth.get_transaction_count(sender.address) == pending.nonce  # still not mined
    time.sleep(0.35)
    assert tm.poll(pending) is None  # stuck -> replaced
    assert pending.tx_hash != first
    old = store.get_tx(first)
    assert old is not None and old.status == "replaced" and old.replaced_by == pending.tx_hash
    new = store.get_tx(pending.tx_hash)
    assert new is not None and new.nonce == old.nonce
    assert new.max_fee_per_gas >= old.max_fee_per_gas * 110 // 100
    assert new.max_priority_fee_per_gas >= old.max_priority_fee_per_gas * 110 // 100
    rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(base * 105 // 100))
    rpc(w3, "evm_mine")
    result = tm.wait(pending)
    assert result.tx_hash == pending.tx_hash and result.replaced == (first,)
    assert store.get_tx(result.tx_hash).status == "mined"  # type: ignore[union-attr]
    assert w3.eth.get_transaction_count(sender.address) == pending.nonce + 1


def test_replacement_aboveFeeCap_isNotSent_andWaitTimesOut(w3, sender, store):
    rpc(w3, "evm_setAutomine", False)
    fees = Fees(10 * GWEI, GWEI)
    tm = manager(
        w3, sender, store, gas=FixedFeeStrategy(fees), fee_cap_wei=10 * GWEI, stuck_after=0.1
    )
    pending = tm.submit(transfer())
    with pytest.raises(TxTimeoutError) as exc:
        tm.wait(pending, timeout=0.6)
    assert exc.value.tx_hash == pending.tx_hash and exc.value.nonce == pending.nonce
    assert len(pending.attempts) == 1 and pending.cap_reached
    assert [t.status for t in store.txs(sender=sender.address)] == ["pending"]


def test_rpcUnreachable_thenRecovering_sendSucceeds(w3, sender, store, restartable_anvil):
    tm = manager(
        w3,
        sender,
        store,
        retry=RetryPolicy(max_attempts=50, base_delay=0.1, max_delay=0.5, deadline_seconds=30.0),
    )
    first = tm.send(transfer())
    restartable_anvil.stop()  # state dumped on exit
    restarter = threading.Timer(2.0, restartable_anvil.start)
    restarter.start()
    try:
        t0 = time.monotonic()
        second = tm.send(transfer())
        waited = time.monotonic() - t0
    finally:
        restarter.join()
    assert waited >= 1.5  # it really waited for the node
    assert tm.rpc_retries > 0
    assert second.nonce == first.nonce + 1
    assert w3.eth.get_transaction_count(sender.address) == first.nonce + 2


def test_rpcUnreachable_pastDeadline_raisesRpcUnavailable(w3, sender, store, restartable_anvil):
    tm = manager(w3, sender, store, retry=RetryPolicy(base_delay=0.05, deadline_seconds=0.5))
    tm.sync_nonce()
    restartable_anvil.stop()
    with pytest.raises(RpcUnavailableError):
        tm.send(transfer())
    assert store.txs() == []  # nothing was signed: the simulation could not run


def _deploy_reverter(w3: Web3, sender: LocalAccount) -> str:
    tx = {
        "from": sender.address,
        "data": REVERTING_INITCODE,
        "nonce": w3.eth.get_transaction_count(sender.address),
        "gas": 100_000,
        "maxFeePerGas": 100 * GWEI,
        "maxPriorityFeePerGas": GWEI,
        "chainId": w3.eth.chain_id,
    }
    signed = sender.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    return str(receipt["contractAddress"])


def test_simulationRevert_sendsNothing(w3, sender, store):
    target = _deploy_reverter(w3, sender)
    tm = manager(w3, sender, store)
    nonce = w3.eth.get_transaction_count(sender.address)
    with pytest.raises(SimulationError):
        tm.submit(TxRequest(to=target, data=b"\x01", purpose="bad"))
    assert w3.eth.get_transaction_count(sender.address, "pending") == nonce
    assert store.txs() == []


def test_minedRevert_raises_andIsRecorded(w3, sender, store):
    target = _deploy_reverter(w3, sender)
    tm = manager(w3, sender, store)
    with pytest.raises(TxRevertedError) as exc:
        tm.send(TxRequest(to=target, data=b"\x01", gas=60_000, purpose="bad"), simulate=False)
    rec = store.get_tx(exc.value.tx_hash)
    assert rec is not None and rec.status == "reverted" and rec.gas_used == exc.value.gas_used


def test_unfundedSender_isRefusedByNode(w3, store):
    poor: LocalAccount = Account.create()
    tm = manager(w3, poor, store)
    with pytest.raises(Exception) as exc:  # simulation or node: insufficient funds
        tm.send(transfer(value=10**18))
    assert "fund" in str(exc.value).lower()


def test_afterRestart_pendingTxIsResumedAndMined_unknownOneDropped(w3, sender, store):
    from keeper.store import TxRecord

    rpc(w3, "evm_setAutomine", False)
    first = manager(w3, sender, store)
    pending = first.submit(TxRequest(to=SINK, value=7, purpose="postEpoch", epoch=3))
    # A record whose transaction the node never saw (e.g. lost in a crash).
    ghost = "0x" + "77" * 32
    store.record_tx(
        TxRecord(ghost, sender.address, pending.nonce + 1, "postEpoch", 4, 10, 1, 21_000)
    )
    # "Restart": a fresh manager over the same store.
    second = manager(w3, sender, store)
    resumed = second.resume_pending()
    assert [p.tx_hash for p in resumed] == [pending.tx_hash]
    again = resumed[0]
    assert again.nonce == pending.nonce and again.request.value == 7
    assert again.request.purpose == "postEpoch" and again.request.epoch == 3
    assert store.get_tx(ghost).status == "dropped"  # type: ignore[union-attr]
    rpc(w3, "evm_mine")
    result = second.wait(again)
    assert result.tx_hash == pending.tx_hash
    assert store.get_tx(pending.tx_hash).status == "mined"  # type: ignore[union-attr]
    assert second.resume_pending() == []  # nothing left in flight


def test_metrics_countOutcomesGasAndRetries(w3, sender, store, restartable_anvil):
    from keeper.metrics import KeeperMetrics

    m = KeeperMetrics()
    tm = manager(
        w3, sender, store, metrics=m, retry=RetryPolicy(base_delay=0.05, deadline_seconds=0.3)
    )
    tm.send(transfer())
    text = m.render().decode()
    assert 'pm_keeper_tx_total{outcome="mined",purpose="transfer"} 1.0' in text
    assert 'pm_keeper_gas_used_total{purpose="transfer"} 21000.0' in text
    restartable_anvil.stop()
    with pytest.raises(RpcUnavailableError):
        tm.send(transfer())
    assert "pm_keeper_rpc_retries_total 0.0" not in m.render().decode()
