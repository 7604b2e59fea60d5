"""One epoch, end to end: index -> snapshot -> market -> build -> store -> sign -> post.

The build itself is pure and lives in ``keeper/epoch_build.py``
(:func:`~keeper.epoch_build.compute_epoch`: chain snapshot + market in, leaves, tree and
header out). :class:`EpochPipeline` does the I/O around it, idempotently across crashes
(see :meth:`EpochPipeline.run_epoch`): it reads the chain and the feed, stores the build,
has the quorum sign it and posts it, and on restart finishes an unfinished epoch with
its own header and signatures.

Input that cannot be priced (:class:`~keeper.errors.EpochRefusedError`) gives a
``refused`` result with the reason logged; nothing is stored and the last good epoch
stays. A value capped instead (a crash day: ``EpochBuild.capped``) is logged (``value
capped``, one line per value), counted (``pm_keeper_capped_values_total{name}``) and
stored with the epoch, and the epoch is posted (docs/operations.md, "Refuse or cap").
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from eth_typing import HexStr
from web3.types import TxReceipt

from keeper.chain import ChainAdapter, ChainSnapshot
from keeper.compute import MarginFn
from keeper.eip712 import Domain, Epoch
from keeper.epoch_build import (
    DEFAULT_FUNDING_RULE,
    DEFAULT_TOKEN_UNDERLYINGS,
    EpochBuild,
    FundingRule,
    compute_epoch,
)
from keeper.epoch_columns import ColumnCache
from keeper.errors import (
    EpochRefusedError,
    FeedError,
    RpcUnavailableError,
    SimulationError,
    TxError,
    TxRevertedError,
    TxTimeoutError,
)
from keeper.feeds.base import MarketFeed
from keeper.metrics import KeeperMetrics
from keeper.post_policy import PostPolicy, post_reason
from keeper.revert import decode_revert_data
from keeper.signers import EpochSigner
from keeper.store import EpochStatus, Store
from keeper.txmanager import PendingTx, TxManager, TxRequest
from risk_engine import RiskParams, compute_margin

__all__ = ["STAGES", "EpochPipeline", "EpochResult", "Hook"]

log = logging.getLogger("keeper.pipeline")

#: The default post policy: every epoch built is posted.
ALWAYS_POST = PostPolicy()

STAGES = ("index", "snapshot", "market", "compute", "tree", "store", "sign", "post")


# --------------------------------------------------------------------------- pipeline


@dataclass(frozen=True)
class EpochResult:
    """Outcome of one :meth:`EpochPipeline.run_epoch`.

    ``status``: ``mined`` (posted and mined), ``built`` (dry run: stored and signed, not
    sent), ``refused`` (bad input; nothing stored), ``skipped`` (built, but nothing moved
    enough to post it: keeper/post_policy.py; nothing stored), ``pending`` (sent or to be
    re-sent next tick), ``failed`` (the epoch number was abandoned; the next tick builds
    anew).
    ``timings``: seconds per stage (:data:`STAGES`).
    """

    status: str
    epoch: int | None = None
    root: str | None = None
    snapshot_block: int | None = None
    accounts: int = 0
    tx_hash: str | None = None
    gas_used: int | None = None
    reason: str | None = None
    resumed: bool = False
    timings: Mapping[str, float] = field(default_factory=dict)


#: Called with a stage name after it completes (``built``, ``signed``, ``sent``): tests
#: inject crashes here.
Hook = Callable[[str, int], None]


class EpochPipeline:
    """Runs epochs (see the module docstring and :meth:`run_epoch`).

    Parameters
    ----------
    chain : ChainAdapter
    feed : MarketFeed
    store : Store
    signer : EpochSigner
    params : RiskParams
    tx : TxManager, optional
        Sends ``postEpoch``; None = dry run (build, store and sign, never send).
    metrics : KeeperMetrics, optional
    clock : callable
        Wall clock (unix seconds); the header timestamp also follows the chain's clock.
    max_attempts : int
        Sends of one epoch number before it is abandoned for the next number.
    hook : callable, optional
        ``hook(stage, epoch)`` after ``built`` / ``signed`` / ``sent`` (fault injection).
    post_policy : PostPolicy
        When a built epoch is posted (``keeper/post_policy.py``; default: always).
    margin : MarginFn, optional
        Runs the risk engine (``keeper/compute.py``: this process by default, or
        :class:`~keeper.compute.DaskMargin` on a cluster, with the same bits).
    state_check_epochs : int
        Every this many epochs built, re-read every account with ``accountStates`` and
        compare it with the state the indexer keeps from events
        (:meth:`~keeper.chain.ChainAdapter.check_state`; timed as stage ``check``, counted in
        ``pm_keeper_state_mismatches_total``); 0 = never.
    """

    def __init__(
        self,
        chain: ChainAdapter,
        feed: MarketFeed,
        store: Store,
        signer: EpochSigner,
        params: RiskParams,
        *,
        tx: TxManager | None = None,
        metrics: KeeperMetrics | None = None,
        clock: Callable[[], float] = time.time,
        token_underlyings: Mapping[str, str] = DEFAULT_TOKEN_UNDERLYINGS,
        funding_rule: FundingRule = DEFAULT_FUNDING_RULE,
        max_attempts: int = 3,
        hook: Hook | None = None,
        margin: MarginFn = compute_margin,
        state_check_epochs: int = 0,
        post_policy: PostPolicy = ALWAYS_POST,
    ) -> None:
        self.chain = chain
        self.feed = feed
        self.store = store
        self.signer = signer
        self.params = params
        self.tx = tx
        self.metrics = metrics
        self.clock = clock
        self.token_underlyings = token_underlyings
        self.funding_rule = funding_rule
        self.max_attempts = max_attempts
        self.hook = hook
        self.margin = margin
        self.post_policy = post_policy
        #: the last build this process posted (what the post policy compares with)
        self._last_posted: EpochBuild | None = None
        #: the columns of unchanged subaccounts, kept across epochs (keeper/epoch_columns.py)
        self._columns = ColumnCache()
        #: CPU seconds of this process per stage, summed over every epoch (the benchmark)
        self.stage_cpu: dict[str, float] = {}
        self.state_check_epochs = state_check_epochs
        self._epochs_unchecked = 0
        self._attempts: dict[int, int] = {}
        #: postEpoch transactions still in flight, by epoch number (waited on, never re-sent
        #: under a new nonce while they may still be mined).
        self._pending: dict[int, PendingTx] = {}
        self.last_result: EpochResult | None = None
        self.last_refusal: str | None = None
        self._started = False

    @property
    def domain(self) -> Domain:
        return Domain(self.chain.chain_id, self.chain.address)

    # ---------------------------------------------------------------- helpers

    @contextmanager
    def _stage(self, name: str, timings: dict[str, float]) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            timings[name] = timings.get(name, 0.0) + elapsed
            # the process's own CPU in the stage: "post" is mostly waiting for the node
            self.stage_cpu[name] = self.stage_cpu.get(name, 0.0) + time.process_time() - cpu
            if self.metrics is not None:
                self.metrics.stage_seconds.labels(stage=name).observe(elapsed)

    def _fire(self, stage: str, epoch: int) -> None:
        if self.hook is not None:
            self.hook(stage, epoch)

    def startup(self) -> None:
        """Bind to the chain (refusing a reset chain) and rebuild the index from the
        deployment block. Called by the first :meth:`run_epoch` when not called before."""
        self.chain.connect()
        self.chain.rebuild()
        if self.tx is not None:
            for pending in self.tx.resume_pending():
                if pending.request.epoch is not None:
                    self._pending[pending.request.epoch] = pending
        self._started = True

    def _epoch_timestamp(self, latest_epoch_ts: int, future_tolerance: int) -> int:
        """The header timestamp: the head block's time, moved toward the wall clock by at
        most ``future_tolerance - 5`` s (an idle Anvil does not mine), never below the
        last posted timestamp (the vault requires it)."""
        head_ts = int(self.chain.block("latest")["timestamp"])
        ahead = max(0, future_tolerance - 5)
        ts = max(head_ts, min(int(self.clock()), head_ts + ahead))
        return max(ts, latest_epoch_ts)

    # ---------------------------------------------------------------- the epoch

    def run_epoch(self) -> EpochResult:
        """Run one epoch; idempotent across crashes.

        First an unfinished epoch in the store (built / signed / sent, or failed but not
        abandoned) is finished with its OWN header and signatures: the same root, never a
        new one for that number. It is abandoned (status ``failed``, reason
        ``abandoned: ...``) only once it cannot be posted any more (the vault moved past
        its number, its timestamp went stale, ``max_attempts`` sends failed, or the
        simulation reverts); the next epoch then takes the next number.

        Raises :class:`~keeper.chain.ChainResetError` (the chain is not the store's),
        :class:`RpcUnavailableError` (node down past the retry budget); bad market or
        chain input gives a ``refused`` result instead.
        """
        timings: dict[str, float] = {}
        if not self._started:
            self.startup()
        else:
            self.chain.check_binding()
        if self.metrics is not None:
            self.metrics.update_lag()
        resumed = self._resume(timings)
        if resumed is not None:
            self.last_result = resumed
            return resumed
        result = self._new_epoch(timings)
        self.last_result = result
        return result

    def _refuse(self, reason: str, message: str, timings: dict[str, float]) -> EpochResult:
        self.last_refusal = message
        log.warning("epoch refused", extra={"reason": reason, "why": message})
        if self.metrics is not None:
            self.metrics.failure(reason)
        return EpochResult("refused", reason=message, timings=dict(timings))

    def _new_epoch(self, timings: dict[str, float]) -> EpochResult:
        chain = self.chain
        with self._stage("index", timings):
            head = chain.head()
            snapshot_block = head - max(chain.confirmations, 1)
            if snapshot_block < 0:
                return self._refuse("chain", "chain has no history yet", timings)
            chain.index(to_block=snapshot_block)
            latest = chain.current_epoch("latest")
        self._maybe_check_state(snapshot_block, timings)
        with self._stage("snapshot", timings):
            # Who signs is checked when the epoch is POSTED: take the signer set, quorum and
            # configVersion of the latest block, not of the snapshot block.
            snap = chain.snapshot(snapshot_block, governance_block="latest")
        if snapshot_block < latest.snapshot_block:
            return self._refuse(
                "chain", f"snapshot block {snapshot_block} below {latest.snapshot_block}", timings
            )
        with self._stage("market", timings):
            ts = self._epoch_timestamp(latest.timestamp, snap.future_tolerance)
            self._quote_expiries(snap, ts)
            try:
                market = self.feed.tick(ts)
            except FeedError as exc:
                return self._refuse("feed", f"market feed refused: {exc}", timings)
        last_stored = self.store.latest_epoch()
        number = max(latest.epoch, last_stored.number if last_stored else 0) + 1
        try:
            build = compute_epoch(
                snap,
                market,
                self.params,
                epoch=number,
                token_underlyings=self.token_underlyings,
                funding_rule=self.funding_rule,
                margin=self.margin,
                columns_cache=self._columns,
            )
        except EpochRefusedError as exc:
            return self._refuse(exc.reason, str(exc), timings)
        for k, v in build.timings.items():
            timings[k] = v
            if self.metrics is not None:
                self.metrics.stage_seconds.labels(stage=k).observe(v)
        why = post_reason(
            self.post_policy,
            build,
            self._last_posted,
            onchain_timestamp=latest.timestamp,
            max_age=snap.max_age,
        )
        if why is None:
            if self.metrics is not None:
                self.metrics.epochs_skipped.inc()
            log.debug("epoch skipped: nothing moved beyond the tolerances")
            return EpochResult(
                "skipped",
                snapshot_block=snapshot_block,
                accounts=len(build.account_leaves),
                reason="nothing moved beyond the tolerances",
                timings=dict(timings),
            )
        if self.metrics is not None:
            self.metrics.posts.labels(reason=why).inc()
        header = build.header
        with self._stage("store", timings):
            self.store.reserve_epoch(
                number,
                "0x" + header.root.hex(),
                snapshot_block=header.snapshot_block,
                timestamp=header.timestamp,
            )
            self.store.set_epoch_status(number, "built", header=header.to_json())
            market_json = market.to_json()
            self.store.save_market_snapshot(number, market_json)
            inputs = build.published_inputs()
            if inputs is not None:
                self.store.save_dispute_inputs(number, json.dumps(inputs))
            self.store.save_capped(number, build.capped)  # before the epoch file is written
            self.store.save_tree(
                number,
                build.account_leaves,
                build.instrument_leaves,
                build.tree,
                encodings=(build.account_rows, None),
                hashes=build.hash_rows,
            )
        self._report_capped(number, build)
        log.info(
            "epoch built",
            extra={
                "epoch": number,
                "root": "0x" + header.root.hex(),
                "snapshot_block": snapshot_block,
                "accounts": len(build.account_leaves),
                "instruments": len(build.instrument_leaves),
            },
        )
        self._fire("built", number)
        result = self._sign_and_post(
            number,
            header,
            (),
            timings,
            snap.quorum,
            snap.signers,
            len(build.account_leaves),
            market=market_json,
        )
        if result.status == "mined":
            self._last_posted = build
        return result

    def _maybe_check_state(self, block: int, timings: dict[str, float]) -> None:
        """Every ``state_check_epochs``: the full re-read that audits the state from events
        (docs/operations.md, "Account state from events")."""
        if not self.state_check_epochs:
            return
        self._epochs_unchecked += 1
        # (the index ends above the snapshot block only right after startup)
        if self._epochs_unchecked < self.state_check_epochs or self.chain.indexed_block != block:
            return
        with self._stage("check", timings):
            differ = self.chain.check_state(block)
        self._epochs_unchecked = 0
        if self.metrics is not None:
            self.metrics.state_checks.inc()
            self.metrics.state_mismatches.inc(len(differ))

    def _report_capped(self, number: int, build: EpochBuild) -> None:
        """One log line and one count per capped value: the epoch is posted, but an
        operator sees that its margins cover moves only up to the caps."""
        for c in build.capped:
            log.warning(
                "value capped",
                extra={"epoch": number, "value": c.name, "raw": c.raw, "capped": c.capped},
            )
        if self.metrics is not None:
            self.metrics.epoch_capped([c.name for c in build.capped])

    def _quote_expiries(self, snap: ChainSnapshot, ts: int) -> None:
        """Make a simulator quote every live option expiry of the vault."""
        set_expiries = getattr(self.feed, "set_expiries", None)
        current = getattr(self.feed, "expiries", None)
        if set_expiries is None or current is None:
            return
        wanted = {i.expiry for i in snap.instruments if i.is_option and i.expiry > ts}
        if not wanted <= set(current):
            set_expiries(sorted(set(current) | wanted))

    def _sign_and_post(
        self,
        number: int,
        header: Epoch,
        signatures: Sequence[str],
        timings: dict[str, float],
        quorum: int,
        signers: Sequence[str],
        accounts: int,
        *,
        market: str | None = None,
        resumed: bool = False,
    ) -> EpochResult:
        """Sign (unless ``signatures`` are stored) and post. ``market`` is the stored
        market snapshot, sent to remote signers so that each recomputes the epoch."""
        root = "0x" + header.root.hex()
        if not signatures:
            with self._stage("sign", timings):
                sigs = self.signer.sign(
                    header, self.domain, quorum=quorum, signers=signers, market=market
                )
            signatures = ["0x" + s.hex() for s in sigs]
            self.store.set_epoch_status(number, "signed", signatures=signatures)
            self._fire("signed", number)
        result = functools.partial(
            EpochResult,
            epoch=number,
            root=root,
            snapshot_block=header.snapshot_block,
            accounts=accounts,
            resumed=resumed,
        )
        if self.tx is None:  # dry run: built, stored and signed; never sent, never resumed
            self.store.set_epoch_status(number, "failed", reason="abandoned: dry run, not sent")
            log.info("epoch built (dry run, not sent)", extra={"epoch": number, "root": root})
            return result("built", timings=dict(timings))
        self._attempts[number] = self._attempts.get(number, 0) + 1
        data = self.chain.vault.encode_abi(
            "postEpoch", [header.to_abi(), [bytes.fromhex(s[2:]) for s in signatures]]
        )
        request = TxRequest(
            to=self.chain.address,
            data=bytes.fromhex(data[2:]),
            purpose="postEpoch",
            epoch=number,
        )
        with self._stage("post", timings):
            try:
                pending = self.tx.submit(request)
            except SimulationError as exc:
                return self._refused_by_vault(number, exc, timings)
            except RpcUnavailableError:
                raise
            except TxError as exc:
                self.store.set_epoch_status(number, "failed", reason=str(exc))
                return result("pending", reason=str(exc), timings=dict(timings))
            self.store.set_epoch_status(number, "sent", tx_hash=pending.tx_hash)
            self._fire("sent", number)
            try:
                mined = self.tx.wait(pending)
            except TxRevertedError as exc:
                self._tx_outcome("reverted", exc.gas_used)
                return self._abandon(number, f"postEpoch reverted in {exc.tx_hash}", timings)
            except TxTimeoutError as exc:
                self._tx_outcome("timeout", 0)
                self._pending[number] = pending
                return result("pending", reason=str(exc), timings=dict(timings))
        with self._stage("store", timings):  # the epoch file is rewritten with its status
            self._mined(number, header, mined.tx_hash, accounts)
        self._tx_outcome("mined", mined.gas_used)
        for _ in mined.replaced:
            self._tx_outcome("replaced", 0)
        log.info(
            "epoch mined",
            extra={
                "epoch": number,
                "root": root,
                "tx": mined.tx_hash,
                "gas": mined.gas_used,
                "resumed": resumed,
                "seconds": {k: round(v, 4) for k, v in timings.items()},
            },
        )
        return result(
            "mined", tx_hash=mined.tx_hash, gas_used=mined.gas_used, timings=dict(timings)
        )

    def _tx_outcome(self, outcome: str, gas: int) -> None:
        if self.metrics is not None:
            self.metrics.tx_outcome("postEpoch", outcome, gas)

    def _mined(self, number: int, header: Epoch, tx_hash: str | None, accounts: int) -> None:
        rec = self.store.get_epoch(number)
        assert rec is not None
        # walk the allowed transitions up to mined
        path: dict[str, list[EpochStatus]] = {
            "built": ["signed", "sent"],
            "signed": ["sent"],
            "failed": ["sent"],
        }
        for status in path.get(rec.status, []):
            self.store.set_epoch_status(number, status)
        self.store.set_epoch_status(number, "mined", tx_hash=tx_hash)
        self.store.write_epoch_file(number)
        self._attempts.pop(number, None)
        if self.metrics is not None:
            self.metrics.epoch_mined(number, header.timestamp, accounts)

    def _refused_by_vault(
        self, number: int, exc: SimulationError, timings: dict[str, float]
    ) -> EpochResult:
        """The vault refused the post in simulation: the decoded reason is logged and counted
        by error name (``pm_keeper_post_refusals_total{error}``; a
        ``PriceDeviatesFromReference`` says the market feed and the on-chain reference
        disagree: docs/operations.md), then the epoch number is abandoned."""
        decoded = decode_revert_data(exc.data, self.chain.abi) if exc.data else None
        error = decoded.name if decoded is not None and decoded.name else "unknown"
        why = decoded.message if decoded is not None else str(exc)
        log.error(
            "postEpoch refused by the vault", extra={"epoch": number, "error": error, "why": why}
        )
        if self.metrics is not None:
            self.metrics.post_refusals.labels(error=error).inc()
        return self._abandon(number, f"postEpoch simulation reverted: {why}", timings)

    def _abandon(self, number: int, why: str, timings: dict[str, float]) -> EpochResult:
        reason = f"abandoned: {why}"
        self.store.set_epoch_status(number, "failed", reason=reason)
        self.store.write_epoch_file(number)
        self._attempts.pop(number, None)
        log.error("epoch abandoned", extra={"epoch": number, "why": why})
        if self.metrics is not None:
            self.metrics.failure("abandoned")
        return EpochResult("failed", epoch=number, reason=reason, timings=dict(timings))

    # ---------------------------------------------------------------- resume

    def _resume(self, timings: dict[str, float]) -> EpochResult | None:
        """Finish the newest stored epoch if it is not final (see :meth:`run_epoch`)."""
        rec = self.store.latest_epoch()
        if rec is None or rec.status == "mined":
            return None
        if rec.status == "failed" and (rec.reason or "").startswith("abandoned"):
            return None
        number = rec.number
        counts = self.store.leaf_counts(number)  # the index: no leaf file read
        accounts = counts[0] if counts is not None else 0
        if rec.header is None:
            return self._abandon(
                number, "stored without a header (crashed while building)", timings
            )
        header = Epoch.from_json(rec.header)
        latest = self.chain.current_epoch("latest")
        if latest.epoch >= number:
            onchain = self.chain.epoch_posted_root(number)
            self._pending.pop(number, None)
            if onchain == header.root:
                log.info("resumed epoch found on chain", extra={"epoch": number})
                mined_hash = self._reconcile_txs(number) or rec.tx_hash
                self._mined(number, header, mined_hash, accounts)
                return EpochResult(
                    "mined", epoch=number, root=rec.root, resumed=True, tx_hash=mined_hash
                )
            return self._abandon(
                number, f"the vault is at epoch {latest.epoch} with another root", timings
            )
        in_flight = self._pending.pop(number, None)
        if in_flight is not None and self.tx is not None:
            log.info("waiting for the epoch's transaction in flight", extra={"epoch": number})
            try:
                done = self.tx.wait(in_flight)
            except TxTimeoutError as exc:
                self._pending[number] = in_flight
                return EpochResult("pending", epoch=number, reason=str(exc), resumed=True)
            except TxRevertedError as exc:
                return self._abandon(number, f"postEpoch reverted in {exc.tx_hash}", timings)
            self._mined(number, header, done.tx_hash, accounts)
            self._tx_outcome("mined", done.gas_used)
            return EpochResult(
                "mined", epoch=number, root=rec.root, resumed=True, tx_hash=done.tx_hash
            )
        if rec.status == "sent":
            mined_hash = self._reconcile_txs(number)
            if mined_hash is not None:
                self._mined(number, header, mined_hash, accounts)
                return EpochResult(
                    "mined", epoch=number, root=rec.root, resumed=True, tx_hash=mined_hash
                )
        if counts is None or self.store.get_market_snapshot(number) is None:
            return self._abandon(number, "leaves or market snapshot missing", timings)
        head_ts = int(self.chain.block("latest")["timestamp"])
        max_age = int(self.chain.rpc(self.chain.vault.functions.maxAge().call, "maxAge"))
        if header.timestamp + max_age <= max(head_ts, int(self.clock())) + 5:
            return self._abandon(number, "its timestamp is stale now", timings)
        if self._attempts.get(number, 0) >= self.max_attempts:
            return self._abandon(number, f"{self.max_attempts} sends failed", timings)
        log.info("resuming epoch", extra={"epoch": number, "status": rec.status})
        if rec.status == "sent":
            self.store.set_epoch_status(number, "failed", reason="re-sending after restart")
        gov = self.chain.governance("latest")
        quorum, signers = gov["quorum"], gov["signers"]
        return self._sign_and_post(
            number,
            header,
            rec.signatures,
            timings,
            quorum,
            signers,
            accounts,
            market=self.store.get_market_snapshot(number),
            resumed=True,
        )

    def _reconcile_txs(self, number: int) -> str | None:
        """Record the outcome of the epoch's pending transactions (sent by a process that
        died before it saw the receipt); returns the hash of the one mined, if any."""
        mined: str | None = None
        for t in self.store.txs(epoch=number, status="pending"):
            receipt = self._receipt(t.hash)
            if receipt is None:
                continue
            ok = int(receipt["status"]) == 1
            self.store.update_tx(
                t.hash,
                "mined" if ok else "reverted",
                block_number=int(receipt["blockNumber"]),
                gas_used=int(receipt["gasUsed"]),
                effective_gas_price=int(receipt.get("effectiveGasPrice", 0)),
            )
            if ok:
                mined = t.hash
                self._tx_outcome("mined", int(receipt["gasUsed"]))
        return mined

    def _receipt(self, tx_hash: str) -> TxReceipt | None:
        try:
            return self.chain.rpc(
                lambda: self.chain.w3.eth.get_transaction_receipt(HexStr(tx_hash)),
                "get_transaction_receipt",
            )
        except Exception as exc:
            if type(exc).__name__ == "TransactionNotFound":
                return None
            raise
