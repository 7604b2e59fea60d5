"""Sending transactions: simulate, price (EIP-1559, capped), nonce, send, wait, replace.

One :class:`TxManager` per sending account. Every transaction goes

    simulate (eth_call + eth_estimateGas) -> fees (GasStrategy, capped) -> sign with the
    local nonce -> record in the store -> broadcast -> poll receipt -> if pending longer
    than ``stuck_after``: re-sign the SAME nonce with both fees raised by ``bump_pct``
    (>= 10 %, the EIP-1559 replacement rule) -> ... -> receipt or timeout.

Nonces are kept locally (so that back-to-back sends do not wait for the node) and
resynced from the node's pending count on start and after an error that leaves them in
doubt. RPC calls that fail with a connection error or a timeout are retried with
exponential backoff (:class:`~keeper.retry.RetryPolicy`) before
:class:`~keeper.errors.RpcUnavailableError`. The fees come from a
:class:`~keeper.gas.GasStrategy` (``keeper/gas.py``).

What the caller must trust: a :class:`TxTimeoutError` means the transaction may still
be mined later under one of the recorded hashes (the store has them all, with
``replaced_by`` links); the nonce stays taken.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import TxData, TxParams, TxReceipt, Wei

from keeper.config import Config
from keeper.errors import (
    FeeCapExceededError,
    NonceError,
    RpcUnavailableError,
    SimulationError,
    TxError,
    TxRevertedError,
    TxTimeoutError,
)
from keeper.gas import MIN_REPLACEMENT_BUMP_PCT, FeeHistoryStrategy, Fees, GasStrategy
from keeper.metrics import KeeperMetrics
from keeper.retry import RetryPolicy, call_with_retry, is_transient
from keeper.revert import revert_data_of
from keeper.store import Store, TxRecord, TxStatus

__all__ = [
    "PendingTx",
    "SentAttempt",
    "TxManager",
    "TxRequest",
    "TxResult",
]

log = logging.getLogger("keeper.tx")

T = TypeVar("T")

_DEFAULT_RETRY = RetryPolicy()  # frozen: safe to share as a default


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class TxRequest:
    """What to send. ``gas`` None = estimate x ``gas_margin``; ``purpose`` and ``epoch``
    are recorded in the store (``"postEpoch"``, ``"liquidate"``...)."""

    to: str
    data: bytes = b""
    value: int = 0
    gas: int | None = None
    purpose: str = "tx"
    epoch: int | None = None


@dataclass(frozen=True)
class SentAttempt:
    tx_hash: str
    fees: Fees
    sent_at: float


@dataclass
class PendingTx:
    """A transaction in flight: its nonce and every attempt (original, replacements)."""

    request: TxRequest
    nonce: int
    gas_limit: int
    attempts: list[SentAttempt] = field(default_factory=list)
    #: Highest fees tried, including a replacement the node refused.
    last_fees: Fees | None = None
    cap_reached: bool = False

    @property
    def tx_hash(self) -> str:
        """Hash of the latest attempt."""
        return self.attempts[-1].tx_hash


@dataclass(frozen=True)
class TxResult:
    """A mined transaction. ``replaced``: hashes of the attempts that did not get mined."""

    tx_hash: str
    nonce: int
    block_number: int
    gas_used: int
    effective_gas_price: int
    replaced: tuple[str, ...]
    receipt: TxReceipt = field(repr=False)


def _message(exc: BaseException) -> str:
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
        err = exc.rpc_response.get("error")
        if isinstance(err, dict):
            return str(err.get("message", exc))
    return str(exc)


def _hex(h: bytes | str) -> str:
    text = h.hex() if isinstance(h, bytes | bytearray) else str(h)
    return text if text.startswith("0x") else "0x" + text


# --------------------------------------------------------------------------- manager


class TxManager:
    """Sends transactions for one account (see the module docstring).

    Parameters
    ----------
    w3 : Web3
    account : LocalAccount
        The sender (``Account.from_key``).
    gas : GasStrategy
    fee_cap_wei : int
        Hard cap on ``maxFeePerGas``; a new transaction needing more raises
        :class:`FeeCapExceededError`, a replacement that would exceed it is not sent (the
        pending one keeps waiting).
    store : Store, optional
        Where every attempt and outcome is recorded.
    bump_pct : float
        Replacement fee increase, >= 10.
    stuck_after : float
        Seconds pending before a replacement.
    receipt_timeout : float
        Seconds :meth:`wait` waits before :class:`TxTimeoutError`.
    metrics : KeeperMetrics, optional
        Counts outcomes (``tx_total{purpose,outcome}``), gas and RPC retries.
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        gas: GasStrategy,
        fee_cap_wei: int,
        store: Store | None = None,
        chain_id: int | None = None,
        bump_pct: float = 12.5,
        stuck_after: float = 30.0,
        receipt_timeout: float = 180.0,
        poll_interval: float = 0.25,
        gas_margin: float = 1.2,
        retry: RetryPolicy = _DEFAULT_RETRY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        metrics: KeeperMetrics | None = None,
    ) -> None:
        if bump_pct < MIN_REPLACEMENT_BUMP_PCT:
            raise TxError(f"bump_pct {bump_pct} below the {MIN_REPLACEMENT_BUMP_PCT} % rule")
        self.w3 = w3
        self.account = account
        self.gas = gas
        self.fee_cap_wei = fee_cap_wei
        self.store = store
        self._chain_id = chain_id
        self.bump_pct = bump_pct
        self.stuck_after = stuck_after
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.gas_margin = gas_margin
        self.retry = retry
        self._clock = clock
        self._sleep = sleep
        self._nonce: int | None = None
        self._lock = threading.RLock()
        self.metrics = metrics
        #: Count of RPC retries (also in ``pm_keeper_rpc_retries_total``).
        self.rpc_retries = 0

    @classmethod
    def from_config(
        cls, w3: Web3, config: Config, *, store: Store | None = None, **overrides: Any
    ) -> TxManager:
        """A manager for ``config.sender_key`` with the ``[fees]`` policy:
        :class:`FeeHistoryStrategy` (tip ``priority_fee_gwei``), cap ``max_fee_gwei``,
        bump ``replacement_bump_pct``, ``stuck_after_seconds``, ``receipt_timeout_seconds``.
        Keyword ``overrides`` go to the constructor."""
        fees = config.fees
        opts: dict[str, Any] = {
            "gas": FeeHistoryStrategy(priority_fee_wei=fees.priority_fee_wei),
            "fee_cap_wei": fees.max_fee_wei,
            "store": store,
            "chain_id": config.chain.chain_id,
            "bump_pct": fees.replacement_bump_pct,
            "stuck_after": fees.stuck_after_seconds,
            "receipt_timeout": fees.receipt_timeout_seconds,
        }
        opts.update(overrides)
        return cls(w3, Account.from_key(config.sender_key), **opts)

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def next_nonce(self) -> int | None:
        """The nonce the next transaction will use (None until synced)."""
        return self._nonce

    def _rpc(self, fn: Callable[[], T], what: str) -> T:
        def count(_: BaseException, __: int) -> None:
            self.rpc_retries += 1
            if self.metrics is not None:
                self.metrics.rpc_retries.inc()

        return call_with_retry(
            fn, self.retry, what=what, clock=self._clock, sleep=self._sleep, on_retry=count
        )

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self._rpc(lambda: self.w3.eth.chain_id, "chain_id"))
        return self._chain_id

    # ---------------------------------------------------------------- nonce

    def sync_nonce(self) -> int:
        """Take the node's pending transaction count as the next nonce."""
        with self._lock:
            self._nonce = int(
                self._rpc(
                    lambda: self.w3.eth.get_transaction_count(self.account.address, "pending"),
                    "get_transaction_count",
                )
            )
            log.info("nonce synced", extra={"sender": self.address, "nonce": self._nonce})
            return self._nonce

    # ---------------------------------------------------------------- simulate

    def _call_params(self, req: TxRequest) -> TxParams:
        return {
            "from": self.account.address,
            "to": Web3.to_checksum_address(req.to),
            "data": HexStr(Web3.to_hex(req.data)),
            "value": Wei(req.value),
        }

    def simulate(self, req: TxRequest) -> int:
        """``eth_call`` then ``eth_estimateGas`` at the latest block; returns the estimate.

        Raises :class:`SimulationError` (with the revert data) if the call would revert.
        """
        params = self._call_params(req)
        try:
            self._rpc(lambda: self.w3.eth.call(params, "latest"), "eth_call")
            return int(
                self._rpc(lambda: self.w3.eth.estimate_gas(params, "latest"), "estimate_gas")
            )
        except (ContractLogicError, ContractCustomError, ContractPanicError, Web3RPCError) as exc:
            data = revert_data_of(exc)
            raise SimulationError(
                f"{req.purpose}: simulation reverted: {_message(exc)}",
                data=None if data is None else "0x" + data.hex(),
            ) from exc

    # ---------------------------------------------------------------- fees

    def _capped(self, fees: Fees) -> Fees:
        if fees.max_fee_per_gas <= self.fee_cap_wei:
            return fees
        # Only the headroom above the base fee is cut; below base + tip it cannot be mined.
        base_plus_tip = fees.max_fee_per_gas
        if isinstance(self.gas, FeeHistoryStrategy):
            base_plus_tip = (
                math.ceil(
                    (fees.max_fee_per_gas - fees.max_priority_fee_per_gas)
                    / self.gas.base_fee_multiplier
                )
                + fees.max_priority_fee_per_gas
            )
        if base_plus_tip > self.fee_cap_wei:
            raise FeeCapExceededError(base_plus_tip, self.fee_cap_wei)
        return Fees(self.fee_cap_wei, min(fees.max_priority_fee_per_gas, self.fee_cap_wei))

    def current_fees(self) -> Fees:
        """Fees a new transaction would get now, after the cap."""
        return self._capped(self._rpc(lambda: self.gas.fees(self.w3), "fee_history"))

    # ---------------------------------------------------------------- send

    def _sign(self, pending: PendingTx, fees: Fees) -> tuple[str, bytes]:
        tx: TransactionDictType = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": pending.nonce,
            "to": Web3.to_checksum_address(pending.request.to),
            "data": pending.request.data,
            "value": pending.request.value,
            "gas": pending.gas_limit,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        }
        signed = self.account.sign_transaction(tx)
        return _hex(signed.hash), bytes(signed.raw_transaction)

    def _record(self, pending: PendingTx, tx_hash: str, fees: Fees) -> None:
        if self.store is not None:
            self.store.record_tx(
                TxRecord(
                    hash=tx_hash,
                    sender=self.address,
                    nonce=pending.nonce,
                    purpose=pending.request.purpose,
                    epoch=pending.request.epoch,
                    max_fee_per_gas=fees.max_fee_per_gas,
                    max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
                    gas_limit=pending.gas_limit,
                )
            )

    def _update(self, tx_hash: str, status: TxStatus, **kw: Any) -> None:
        if self.store is not None:
            self.store.update_tx(tx_hash, status, **kw)

    def _count(self, purpose: str, outcome: str, gas_used: int = 0) -> None:
        if self.metrics is not None:
            self.metrics.tx_outcome(purpose, outcome, gas_used)

    def _broadcast(self, tx_hash: str, raw: bytes) -> None:
        """Send ``raw``; a retry after a lost response may find it already known: fine."""
        try:
            self._rpc(lambda: self.w3.eth.send_raw_transaction(raw), "send_raw_transaction")
        except Web3RPCError as exc:
            msg = _message(exc).lower()
            if "already known" in msg or "already imported" in msg or "already exists" in msg:
                return
            if "nonce too low" in msg and self._known(tx_hash):
                return  # ours, and already mined while we retried
            raise

    def _known(self, tx_hash: str) -> bool:
        try:
            self._rpc(lambda: self.w3.eth.get_transaction(HexStr(tx_hash)), "get_transaction")
            return True
        except TransactionNotFound:
            return False

    def submit(self, req: TxRequest, *, simulate: bool = True) -> PendingTx:
        """Simulate, price, sign with the next nonce, record and broadcast. Returns the
        :class:`PendingTx` to :meth:`poll` or :meth:`wait` on."""
        with self._lock:
            gas_limit = req.gas
            if simulate or gas_limit is None:
                estimate = self.simulate(req)
                gas_limit = gas_limit or math.ceil(estimate * self.gas_margin)
            fees = self.current_fees()
            if self._nonce is None:
                self.sync_nonce()
            for attempt in range(2):
                assert self._nonce is not None
                pending = PendingTx(req, self._nonce, gas_limit, last_fees=fees)
                tx_hash, raw = self._sign(pending, fees)
                self._record(pending, tx_hash, fees)
                try:
                    self._broadcast(tx_hash, raw)
                except Web3RPCError as exc:
                    msg = _message(exc).lower()
                    self._update(tx_hash, "dropped", error=_message(exc))
                    # Our local nonce disagrees with the node (another process used the
                    # key, or a tx was dropped): resync once and re-sign.
                    if attempt == 0 and ("nonce" in msg or "underpriced" in msg):
                        log.warning("nonce resync", extra={"error": _message(exc)})
                        self.sync_nonce()
                        continue
                    if "nonce" in msg:
                        raise NonceError(f"{req.purpose}: {_message(exc)}") from exc
                    raise TxError(
                        f"{req.purpose}: node refused the transaction: {_message(exc)}"
                    ) from exc
                except Exception as exc:
                    # Unknown whether it arrived (RPC gave up, provider error): record it
                    # and ask the node for the nonce next time.
                    self._update(tx_hash, "dropped", error=f"{type(exc).__name__}: {exc}")
                    self._nonce = None
                    raise
                pending.attempts.append(SentAttempt(tx_hash, fees, self._clock()))
                self._nonce += 1
                log.info(
                    "tx sent",
                    extra={
                        "purpose": req.purpose,
                        "hash": tx_hash,
                        "nonce": pending.nonce,
                        "max_fee": fees.max_fee_per_gas,
                        "tip": fees.max_priority_fee_per_gas,
                        "gas": gas_limit,
                    },
                )
                return pending
            raise NonceError(f"{req.purpose}: could not find a usable nonce")  # pragma: no cover

    def replace(self, pending: PendingTx) -> str | None:
        """Re-send ``pending``'s nonce with fees bumped by ``bump_pct``; returns the new
        hash, or None if the cap forbids it or the node refused (the old one stays)."""
        with self._lock:
            previous = pending.last_fees or pending.attempts[-1].fees
            try:
                fees = self.gas.replacement(previous, self.w3, self.bump_pct)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                fees = previous.bumped(self.bump_pct)
            if fees.max_fee_per_gas > self.fee_cap_wei:
                if not pending.cap_reached:
                    log.warning(
                        "replacement above fee cap; waiting",
                        extra={
                            "hash": pending.tx_hash,
                            "needed": fees.max_fee_per_gas,
                            "cap": self.fee_cap_wei,
                        },
                    )
                pending.cap_reached = True
                return None
            tx_hash, raw = self._sign(pending, fees)
            self._record(pending, tx_hash, fees)
            pending.last_fees = fees
            try:
                self._broadcast(tx_hash, raw)
            except Web3RPCError as exc:
                # e.g. "replacement transaction underpriced": next time bump from here.
                self._update(tx_hash, "dropped", error=_message(exc))
                log.warning("replacement refused", extra={"hash": tx_hash, "error": _message(exc)})
                return None
            except RpcUnavailableError:
                self._update(tx_hash, "dropped", error="rpc unavailable while replacing")
                return None
            except Exception as exc:
                self._update(tx_hash, "dropped", error=f"{type(exc).__name__}: {exc}")
                raise
            old = pending.tx_hash
            self._update(old, "replaced", replaced_by=tx_hash)
            self._count(pending.request.purpose, "replaced")
            pending.attempts.append(SentAttempt(tx_hash, fees, self._clock()))
            log.info(
                "tx replaced",
                extra={
                    "old": old,
                    "new": tx_hash,
                    "nonce": pending.nonce,
                    "max_fee": fees.max_fee_per_gas,
                    "tip": fees.max_priority_fee_per_gas,
                },
            )
            return tx_hash

    def _receipt(self, tx_hash: str) -> TxReceipt | None:
        try:
            return self.w3.eth.get_transaction_receipt(HexStr(tx_hash))
        except TransactionNotFound:
            return None

    def poll(self, pending: PendingTx) -> TxResult | None:
        """One check: the receipt of any attempt (newest first), else replace if stuck.

        Returns the :class:`TxResult` once mined; raises :class:`TxRevertedError` if the
        mined attempt reverted. A transient RPC error counts as "not yet".
        """
        try:
            for attempt in reversed(pending.attempts):
                receipt = self._receipt(attempt.tx_hash)
                if receipt is not None:
                    return self._finish(pending, attempt.tx_hash, receipt)
        except Exception as exc:
            if not is_transient(exc):
                raise
            return None
        if self._clock() - pending.attempts[-1].sent_at >= self.stuck_after:
            self.replace(pending)
        return None

    def _finish(self, pending: PendingTx, mined_hash: str, receipt: TxReceipt) -> TxResult:
        others = tuple(a.tx_hash for a in pending.attempts if a.tx_hash != mined_hash)
        gas_used = int(receipt["gasUsed"])
        egp = int(receipt.get("effectiveGasPrice", 0))
        block = int(receipt["blockNumber"])
        later = False
        for a in pending.attempts:
            if a.tx_hash == mined_hash:
                later = True
            elif later:
                # A later replacement lost to an earlier attempt that got mined.
                self._update(a.tx_hash, "dropped")
        if int(receipt["status"]) != 1:
            self._update(
                mined_hash,
                "reverted",
                block_number=block,
                gas_used=gas_used,
                effective_gas_price=egp,
            )
            self._count(pending.request.purpose, "reverted", gas_used)
            raise TxRevertedError(mined_hash, gas_used)
        self._update(
            mined_hash, "mined", block_number=block, gas_used=gas_used, effective_gas_price=egp
        )
        self._count(pending.request.purpose, "mined", gas_used)
        log.info(
            "tx mined",
            extra={
                "hash": mined_hash,
                "block": block,
                "gas_used": gas_used,
                "replaced": len(others),
            },
        )
        return TxResult(mined_hash, pending.nonce, block, gas_used, egp, others, receipt)

    def wait(self, pending: PendingTx, *, timeout: float | None = None) -> TxResult:
        """Poll until mined (replacing when stuck) or ``timeout`` (default
        ``receipt_timeout``) seconds, then :class:`TxTimeoutError`."""
        limit = self.receipt_timeout if timeout is None else timeout
        start = self._clock()
        while True:
            result = self.poll(pending)
            if result is not None:
                return result
            if self._clock() - start >= limit:
                self._count(pending.request.purpose, "timeout")
                raise TxTimeoutError(pending.tx_hash, pending.nonce, self._clock() - start)
            self._sleep(self.poll_interval)

    def resume_pending(self) -> list[PendingTx]:
        """After a restart, take back the transactions a previous run left in flight.

        For every nonce of this sender whose latest attempt the store holds as
        ``pending``: an attempt already mined is recorded (``mined`` / ``reverted``) and
        not returned; an attempt the node no longer knows is marked ``dropped``; the
        others become a :class:`PendingTx` (request rebuilt from the node's copy) that the
        caller should :meth:`wait` on (replacing when stuck) before sending anything new,
        since a stuck low nonce blocks every later one.
        """
        if self.store is None:
            return []
        nonces = sorted({r.nonce for r in self.store.txs(sender=self.address, status="pending")})
        resumed: list[PendingTx] = []
        for nonce in nonces:
            records = [
                r
                for r in self.store.txs(sender=self.address)
                if r.nonce == nonce and r.status in ("pending", "replaced")
            ]
            pending: PendingTx | None = None
            finished = False
            for rec in records:
                receipt = self._rpc(functools.partial(self._receipt, rec.hash), "get_receipt")
                try:
                    node_tx: TxData | None = self._rpc(
                        functools.partial(self.w3.eth.get_transaction, HexStr(rec.hash)), "get_tx"
                    )
                except TransactionNotFound:
                    node_tx = None
                if receipt is None and node_tx is None:
                    self._update(rec.hash, "dropped", error="unknown to the node after restart")
                    continue
                fees = Fees(rec.max_fee_per_gas, rec.max_priority_fee_per_gas)
                if pending is None:
                    src: TxData = node_tx if node_tx is not None else {}
                    request = TxRequest(
                        to=str(src.get("to") or "0x" + "00" * 20),
                        data=bytes(src.get("input", b"")),
                        value=int(src.get("value", 0)),
                        gas=rec.gas_limit,
                        purpose=rec.purpose,
                        epoch=rec.epoch,
                    )
                    pending = PendingTx(request, nonce, rec.gas_limit)
                pending.attempts.append(SentAttempt(rec.hash, fees, self._clock()))
                pending.last_fees = fees
                if receipt is not None:
                    try:
                        self._finish(pending, rec.hash, receipt)
                    except TxRevertedError:
                        pass  # recorded as reverted; nothing left to wait for
                    finished = True
                    break
            if pending is not None and not finished:
                resumed.append(pending)
                log.info(
                    "tx resumed",
                    extra={
                        "hash": pending.tx_hash,
                        "nonce": nonce,
                        "purpose": pending.request.purpose,
                    },
                )
        return resumed

    def send(self, req: TxRequest, *, simulate: bool = True) -> TxResult:
        """:meth:`submit` then :meth:`wait`."""
        return self.wait(self.submit(req, simulate=simulate))
