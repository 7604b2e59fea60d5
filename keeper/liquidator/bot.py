"""The liquidator bot: finds subaccounts below maintenance and takes them over by transfer,
never a healthy one.

Each :meth:`LiquidatorBot.tick` (a :class:`~keeper.lifecycle.Lifecycle` job):

1. **epoch**: the vault's current epoch and root (``currentEpoch``); nothing in safe mode.
2. **subaccounts**: the vault's subaccounts (the keeper's event indexer, incremental) and
   their state now (``accountStates`` at one block): positions, ``cumLo``, ``cumHi``,
   ``stateNonce``.
3. **leaves**: the ACCOUNT leaves of THAT root, from a :class:`LeafSource` (the keeper's
   proof API or its sqlite store). Every proof is checked locally against the on-chain root,
   and a leaf whose ``stateNonce`` is not the subaccount's is dropped (stale).
4. **bound**: for every subaccount with positions, the MM surplus upper bound exactly as
   the contract computes it (docs/protocol.md §5):
   ``mmSurplusHi = (leaf.equity - leaf.mm) + (cumHi_now - leaf.cumHi)``. Only subaccounts
   with ``mmSurplusHi < 0`` are candidates, most negative first.
5. **owner**: a subaccount the bot's key owns or operates is skipped (``own_subaccount``:
   the vault refuses ``SelfLiquidation``); it may be one the bot took over earlier. So is
   one whose last bound change was priced by an older epoch (``previous_prices``: the vault
   refuses ``BoundsFromPreviousPrices``, the IM check after the transfer needs current-price
   bounds; the next epoch's leaf has them).
6. **view**: ``checkLiquidation(account, leaf)`` at the latest block is authoritative: a
   subaccount it calls healthy is skipped (``view_healthy``), whatever the bound said. It
   gives ``pay``, ``fee``, ``covered`` and ``minDeposit6``.
7. **cost**: ``netCashPaid = pay + fee - covered``; the limit sent is
   ``maxCashOut = netCashPaid + max(slippage_usd, slippage_fraction * |netCashPaid|)``, so a
   state change between the decision and the mining cannot cost more (the contract reverts
   with ``LiquidationCostTooHigh``). Expected profit, at worst, = the equity taken (its
   lower bound ``eqLo = leaf.equity + (cumLo_now - leaf.cumLo)``) minus ``maxCashOut``;
   below ``min_profit_usd`` the subaccount is skipped (``unprofitable``).
8. **capital**: the liquidator's capital need is ``minDeposit6`` = IM deficit + pay + fee -
   covered (:mod:`keeper.liquidator.capital`). The bot deposits
   ``ceil((maxCashOut - imSurplusLo_now + min_headroom) / CASH_SCALE)``: the same slippage
   as ``maxCashOut`` (the subaccount stays at IM at the worst cost allowed) plus the IM
   surplus it wants to keep. A wallet holding less settlement token than that is refused
   with the figure (``insufficient_capital``): nothing is sent.
9. **send**: ``approve(vault, deposit)`` exactly (never an unlimited allowance), then
   ``liquidate(account, leaf, deposit6, maxCashOut)``: build -> simulate (``eth_call`` +
   ``estimateGas`` in :class:`~keeper.txmanager.TxManager`) -> send -> wait. The
   ``Liquidated`` event gives the amounts actually paid; the profit is logged and exported.
   The subaccount is the bot's key's from then on.

**Root moved**: the vault holds one root, so a proof read at the tick's block is dead once
the keeper posts the next epoch. If the view or the simulation reverts with a proof error
(``InvalidAccountProof``, ``InvalidInstrumentProof``, ``StaleStateNonce``) AND the vault's
epoch is now newer than the one the tick read, the bot re-reads steps 1-4 at the new head
(at most ``max_rereads`` times per tick, logged with ``reason=root_moved`` and counted in
``pm_liquidator_root_moved_total``) and goes on with the subaccounts not yet decided in this
tick. A leaf source that does not serve the new epoch yet is polled for up to
``reread_wait_seconds``; after that (or when the re-reads are spent) the subaccount is
skipped with ``root_moved: ...`` and the next tick takes it. The view and the simulation
stay at ``latest``: a view pinned to the tick's block would miss a deposit made since (the
view must see it to refuse a healthy subaccount) and the transaction is mined on top of
``latest`` anyway. Every guard runs again on the re-read state; ``maxCashOut`` still caps
the send.

What the caller must trust: the leaves come from the keeper's signed root, checked here by
Merkle proof; the contract re-checks everything. Between the view and the mining the
subaccount may change (a deposit): the transaction then reverts (``AccountHealthy`` or
``LiquidationCostTooHigh``) and costs gas only; the exact approval is then left unused.
``min_profit_usd = None`` turns the bot into a backstop that also takes subaccounts whose
equity is below what it pays (bad debt).

Units: WAD USD ints (docs/protocol.md §1) everywhere, settlement token units in ``*6``
names; USD floats only in settings, logs and metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, TypedDict, Unpack

from eth_utils.address import to_checksum_address
from web3.contract import Contract
from web3.logs import DISCARD

from keeper.abi import erc20_abi
from keeper.attestation import MerkleTree
from keeper.bounds import bounds_from_previous_prices, mm_surplus_hi
from keeper.chain import ChainAdapter, EpochOnChain
from keeper.errors import LeafSourceError, SimulationError, TxError, TxRevertedError, TxTimeoutError
from keeper.liquidator.capital import CapitalNeed, cash_scale, deposit6_up, im_surplus_lo_now
from keeper.liquidator.config import LiquidatorSettings, usd_to_wad_down, wad_to_usd
from keeper.liquidator.metrics import LiquidatorMetrics
from keeper.liquidator.outcome import Candidate, Outcome, TickReport
from keeper.liquidator.sources import LeafSource
from keeper.revert import as_vault_revert, decode_revert, decode_revert_data
from keeper.txmanager import PendingTx, TxManager, TxRequest, TxResult

__all__ = ["ROOT_ERRORS", "Hook", "LiquidatorBot", "Stage"]

# The logger operators and tests filter on (it predates the package split).
log = logging.getLogger("keeper.liquidator")

#: Vault errors a proof read against an older root gives once the keeper posts a new epoch.
ROOT_ERRORS = frozenset({"InvalidAccountProof", "InvalidInstrumentProof", "StaleStateNonce"})
#: How often a lagging leaf source is asked again for the new epoch after a root move.
_REREAD_POLL_SECONDS = 0.1

#: A test or a script may observe (and act at) these points of one liquidation attempt.
Stage = Literal["bound", "checked", "sent"]
Hook = Callable[[str, int], None]

_DEFAULT_SETTINGS = LiquidatorSettings()  # frozen: safe to share as a default


@dataclass
class _Inflight:
    pending: PendingTx
    outcome: Outcome


@dataclass(frozen=True)
class _Read:
    """One read of the vault at ``block``: its epoch and the candidates."""

    epoch: EpochOnChain
    block: int
    accounts_with_positions: int
    candidates: tuple[Candidate, ...]
    leaves_error: str | None = None  # the leaf source does not serve this epoch


class _RootMoved(Exception):
    """An attempt failed on a proof error and the vault's epoch is newer than the one read."""

    def __init__(
        self, candidate: Candidate, stage: str, error: str, epoch_read: int, epoch_now: int
    ) -> None:
        super().__init__(f"{stage}: {error}")
        self.candidate = candidate
        self.stage = stage
        self.error = error
        self.epoch_read = epoch_read
        self.epoch_now = epoch_now


# --------------------------------------------------------------------------- the bot


class _ViewFigures(TypedDict, total=False):
    """What the liquidation view gave (WAD USD), carried by every :class:`Outcome` after it."""

    net_cash_paid: int
    max_cash_out: int
    equity_taken: int
    capital: CapitalNeed


class _CheckedFigures(_ViewFigures):
    """:class:`_ViewFigures` plus the deposit decided (settlement token units) and the IM
    surplus the subaccount keeps after it at the worst cost (WAD USD)."""

    deposit6: int
    headroom: int


class LiquidatorBot:
    """Liquidates what the bound allows (see the module docstring).

    Parameters
    ----------
    chain : ChainAdapter
        The vault and the account index (the bot indexes events itself).
    tx : TxManager
        Sends from the liquidator's key: its wallet funds the deposits, and it owns the
        subaccounts it takes over.
    source : LeafSource
    settings : LiquidatorSettings
    metrics : LiquidatorMetrics, optional
    hook : callable, optional
        ``hook(stage, account)`` at ``"bound"`` (bound < 0, before the view), ``"checked"``
        (view, cost and capital passed, the deposit approved, before the liquidation is
        simulated and sent) and ``"sent"``
        (broadcast, before the receipt): tests and benchmarks act there to race the bot.
    """

    def __init__(
        self,
        chain: ChainAdapter,
        tx: TxManager,
        source: LeafSource,
        *,
        settings: LiquidatorSettings = _DEFAULT_SETTINGS,
        metrics: LiquidatorMetrics | None = None,
        hook: Hook | None = None,
    ) -> None:
        self.chain = chain
        self.tx = tx
        self.source = source
        self.settings = settings
        self.metrics = metrics
        self.hook = hook
        self.address = to_checksum_address(tx.address)
        self._started = False
        self._inflight: dict[int | str, _Inflight] = {}
        self.last_report: TickReport | None = None
        self._token: Contract | None = None
        self._scale = 0

    # ---------------------------------------------------------------- lifecycle

    def startup(self) -> None:
        """Check the vault has code, index the accounts from the deployment block, sync the
        nonce and take back liquidations a previous run left in flight."""
        self.chain.check_deployed()
        self.chain.rebuild()
        self.tx.sync_nonce()
        for p in self.tx.resume_pending():
            if p.request.purpose != "liquidate":
                continue
            # liquidate(uint256 account, ...): the id is the first argument word
            data = bytes(p.request.data)
            account: int | str = int.from_bytes(data[4:36], "big") if len(data) >= 36 else p.tx_hash
            self._inflight[account] = _Inflight(p, Outcome(account, "pending", 0))
        token = self.chain.rpc(
            lambda: self.chain.vault.functions.settlementToken().call(), "settlementToken"
        )
        t = self.chain.w3.eth.contract(address=to_checksum_address(token), abi=erc20_abi())
        self._token = t
        decimals = int(self.chain.rpc(lambda: t.functions.decimals().call(), "decimals"))
        self._scale = cash_scale(decimals)
        self._started = True
        log.info(
            "liquidator started",
            extra={"liquidator": self.address, "inflight": len(self._inflight)},
        )

    def _fire(self, stage: Stage, account: int) -> None:
        if self.hook is not None:
            self.hook(stage, account)

    # ---------------------------------------------------------------- the tick

    def tick(self) -> TickReport:
        """One pass over the latest epoch's leaves (see the module docstring)."""
        start = time.perf_counter()
        if not self._started:
            self.startup()
        report = self._tick()
        report = replace(report, seconds=time.perf_counter() - start)
        self.last_report = report
        if self.metrics is not None:
            self.metrics.ticks.inc()
            self.metrics.tick_seconds.observe(report.seconds)
            self.metrics.last_epoch.set(report.epoch)
            self.metrics.candidates.set(len(report.candidates))
        if report.skipped:
            log.info("tick skipped", extra={"why": report.skipped, "epoch": report.epoch})
        return report

    def _tick(self) -> TickReport:
        block = self.chain.head()
        finished = self._poll_inflight()
        epoch = self.chain.current_epoch(block)
        if self._safe_mode(block):
            return TickReport(epoch.epoch, block, 0, outcomes=finished, skipped="safe_mode")
        if epoch.epoch == 0:
            return TickReport(0, block, 0, outcomes=finished, skipped="no_epoch")
        read = self._read(epoch, block)
        if read.leaves_error is not None:
            return TickReport(
                epoch.epoch,
                block,
                read.accounts_with_positions,
                outcomes=finished,
                skipped=f"leaves: {read.leaves_error}",
            )
        outcomes = list(finished)
        decided: set[int] = set()  # subaccounts with an outcome in this tick: not tried again
        rereads = 0
        while True:
            try:
                for c in read.candidates[: self.settings.max_per_tick]:
                    if len(decided) >= self.settings.max_per_tick:
                        break
                    if c.account in decided or c.account in self._inflight:
                        continue  # decided in this tick, or a liquidation of it is in flight
                    o = self._attempt(c, read.epoch.epoch)
                    decided.add(c.account)
                    outcomes.append(o)
                    self._record(o)
                break
            except _RootMoved as moved:
                if rereads < self.settings.max_rereads:
                    rereads += 1
                    self._log_root_moved(moved, rereads)
                    again = self._reread()
                    if isinstance(again, _Read):
                        read = again
                        continue
                    why = again
                else:
                    why = f"{rereads} re-read(s) spent in this tick; next tick"
                # the other candidates' proofs are as dead: the next tick reads afresh
                o = self._skip(
                    moved.candidate,
                    f"root_moved: epoch {moved.epoch_read} -> {moved.epoch_now} under the "
                    f"{moved.stage} ({moved.error}); {why}",
                )
                outcomes.append(o)
                self._record(o)
                break
        return TickReport(
            read.epoch.epoch,
            read.block,
            read.accounts_with_positions,
            candidates=read.candidates,
            outcomes=tuple(outcomes),
            rereads=rereads,
        )

    def _safe_mode(self, block: int) -> bool:
        v = self.chain.vault.functions
        return bool(
            self.chain.rpc(lambda: v.isSafeMode().call(block_identifier=block), "isSafeMode")
        )

    def _read(self, epoch: EpochOnChain, block: int) -> _Read:
        """Steps 2-4 at ``block``, whose epoch is ``epoch``: states, leaves, candidates."""
        chain = self.chain
        chain.index(to_block=block)
        states = chain.account_states(list(chain.accounts), block)
        with_positions = [s for s in states if s.has_positions]
        try:
            proofs = self.source.account_leaves(
                epoch.epoch, epoch.root, [s.account for s in with_positions]
            )
        except LeafSourceError as exc:
            return _Read(epoch, block, len(with_positions), (), str(exc))
        candidates: list[Candidate] = []
        for s in with_positions:
            proof = proofs.get(s.account)
            if proof is None:
                continue  # positions opened after the snapshot: no leaf, cannot be liquidated
            if proof.leaf.state_nonce != s.state_nonce or proof.leaf.account != s.account:
                continue  # its state moved since the snapshot: the leaf is stale
            if not MerkleTree.verify(epoch.root, proof.leaf, proof.proof):
                log.warning("leaf proof invalid; ignored", extra={"account": s.account})
                continue
            hi = mm_surplus_hi(proof.leaf.equity, proof.leaf.mm, proof.leaf.cum_hi, s.cum_hi)
            if hi < 0:
                candidates.append(Candidate(s.account, proof, s, hi))
        candidates.sort(key=lambda c: c.mm_surplus_hi)
        return _Read(epoch, block, len(with_positions), tuple(candidates))

    def _reread(self) -> _Read | str:
        """Read the new epoch at the new head; a leaf source that does not serve it yet is
        asked again for up to ``reread_wait_seconds``. A string says why not (the account is
        then left to the next tick)."""
        deadline = time.monotonic() + self.settings.reread_wait_seconds
        while True:
            block = self.chain.head()
            epoch = self.chain.current_epoch(block)
            if self._safe_mode(block):
                return "safe mode since; next tick"
            read = self._read(epoch, block)
            if read.leaves_error is None:
                return read
            if time.monotonic() >= deadline:
                log.info(
                    "root moved; leaves of the new epoch not served yet, next tick",
                    extra={
                        "reason": "root_moved",
                        "epoch_now": epoch.epoch,
                        "waited_s": self.settings.reread_wait_seconds,
                        "error": read.leaves_error,
                    },
                )
                return (
                    f"leaves of epoch {epoch.epoch} not served within "
                    f"{self.settings.reread_wait_seconds:g} s ({read.leaves_error}); next tick"
                )
            time.sleep(_REREAD_POLL_SECONDS)

    def _log_root_moved(self, moved: _RootMoved, reread: int) -> None:
        log.info(
            "root moved; re-reading epoch and leaves",
            extra={
                "reason": "root_moved",
                "stage": moved.stage,
                "account": moved.candidate.account,
                "error": moved.error,
                "epoch_read": moved.epoch_read,
                "epoch_now": moved.epoch_now,
                "reread": reread,
            },
        )
        if self.metrics is not None:
            self.metrics.root_moved.labels(stage=moved.stage).inc()

    def _check_root(self, c: Candidate, stage: str, error: str, name: str, epoch: int) -> None:
        """Raise :class:`_RootMoved` if ``error`` is a proof error and the vault's epoch is no
        longer the one read (the proof was against a dead root, not a wrong one)."""
        if name not in ROOT_ERRORS:
            return
        now = self.chain.current_epoch("latest").epoch
        if now > epoch:
            raise _RootMoved(c, stage, error, epoch, now)

    # ---------------------------------------------------------------- one account

    def _skip(
        self,
        c: Candidate,
        reason: str,
        *,
        profit: int | None = None,
        headroom: int | None = None,
        deposit6: int | None = None,
        **figures: Unpack[_ViewFigures],
    ) -> Outcome:
        return Outcome(
            c.account,
            "skipped",
            c.mm_surplus_hi,
            reason=reason,
            profit=profit,
            headroom=headroom,
            deposit6=deposit6,
            **figures,
        )

    def _acts_for(self, owner: str) -> bool:
        """Whether the bot's key owns or operates a subaccount of ``owner``."""
        if to_checksum_address(owner) == self.address:
            return True
        fn = self.chain.vault.functions.isOperator(to_checksum_address(owner), self.address)
        return bool(self.chain.rpc(fn.call, "isOperator"))

    def _attempt(self, c: Candidate, epoch: int) -> Outcome:
        """One subaccount, against the leaves of ``epoch``. Raises :class:`_RootMoved` when a
        proof error shows the vault moved past ``epoch`` (the caller re-reads)."""
        v = self.chain.vault.functions
        self._fire("bound", c.account)
        # -- the vault refuses a liquidation by the subaccount's owner or operator
        owner = str(self.chain.rpc(lambda: v.ownerOf(c.account).call(), "ownerOf"))
        if self._acts_for(owner):
            return self._skip(
                c, f"own_subaccount: owned by {to_checksum_address(owner)}, which the bot acts for"
            )
        # -- the view is authoritative
        try:
            liquidatable, view_hi, pay, fee, covered, _uncovered, min_deposit6 = self.chain.rpc(
                lambda: v.checkLiquidation(c.account, c.proof.to_abi()).call(), "checkLiquidation"
            )
        except Exception as exc:
            decoded = as_vault_revert(exc, self.chain.abi)
            if decoded is None:
                raise
            self._check_root(c, "view", str(decoded), decoded.name, epoch)
            return self._skip(c, f"view_reverted: {decoded}")
        if not liquidatable:
            return Outcome(
                c.account,
                "skipped",
                int(view_hi),
                reason="view_healthy: checkLiquidation says healthy",
            )
        net = int(pay) + int(fee) - int(covered)
        max_out = self.settings.max_cash_out(net)
        # -- equity taken and the subaccount's IM surplus, from its state now
        (now,) = self.chain.account_states([c.account], "latest")
        leaf = c.proof.leaf
        n_ins = len(now.positions)
        eq_lo = leaf.equity + (now.cum_lo - n_ins - leaf.cum_lo)
        im_lo = im_surplus_lo_now(leaf.equity, leaf.im, leaf.cum_lo, now.cum_lo, n_ins)
        need = CapitalNeed(
            im_deficit=-im_lo,
            pay=int(pay),
            fee=int(fee),
            covered=int(covered),
            min_deposit6=int(min_deposit6),
            scale=self._scale,
        )
        profit = eq_lo - max_out
        view: _ViewFigures = {
            "net_cash_paid": net,
            "max_cash_out": max_out,
            "equity_taken": eq_lo,
            "capital": need,
        }
        min_profit = self.settings.min_profit_usd
        if min_profit is not None and profit < usd_to_wad_down(min_profit):
            return self._skip(
                c,
                f"unprofitable: expected {wad_to_usd(profit):.2f} USD < {min_profit} USD",
                profit=profit,
                **view,
            )
        # -- the vault's IM check after the transfer reads this leaf: it refuses a subaccount
        # whose last bound change was priced by an older epoch (BoundsFromPreviousPrices)
        last_block, last_epoch, tainted = self.chain.rpc(
            lambda: v.boundChange(c.account).call(), "boundChange"
        )
        cur = self.chain.current_epoch("latest")
        if bounds_from_previous_prices(
            int(last_block), int(last_epoch), int(tainted), cur.epoch, cur.snapshot_block
        ):
            return self._skip(
                c,
                f"previous_prices: the subaccount changed between the snapshot and the post of "
                f"epoch {cur.epoch}; the vault takes it from epoch {cur.epoch + 1}",
                profit=profit,
                **view,
            )
        # -- the deposit: the subaccount at IM (+ headroom) after the worst cost allowed
        keep = usd_to_wad_down(self.settings.min_headroom_usd)
        deposit6 = max(int(min_deposit6), deposit6_up(max_out + keep, im_lo, self._scale))
        headroom = im_lo + deposit6 * self._scale - max_out
        token = self._token
        assert token is not None  # startup set it
        wallet6 = int(
            self.chain.rpc(lambda: token.functions.balanceOf(self.address).call(), "balanceOf")
        )
        if wallet6 < deposit6:
            return self._skip(
                c,
                f"insufficient_capital: the wallet holds "
                f"{wad_to_usd(wallet6 * self._scale):,.2f} USD of the settlement token, the "
                "liquidation needs "
                f"{wad_to_usd(deposit6 * self._scale):,.2f} (IM deficit "
                f"{wad_to_usd(need.im_deficit):,.2f} + pay {wad_to_usd(need.pay):,.2f} + fee "
                f"{wad_to_usd(need.fee):,.2f} - covered {wad_to_usd(need.covered):,.2f} + "
                f"slippage and headroom {wad_to_usd(deposit6 * self._scale - need.total):,.2f})",
                profit=profit,
                headroom=headroom,
                deposit6=deposit6,
                **view,
            )
        base: _CheckedFigures = {**view, "deposit6": deposit6, "headroom": headroom}
        # -- approve exactly the deposit (mined first: liquidate pulls it), then build ->
        # simulate -> send
        data = self.chain.vault.encode_abi(
            "liquidate", [c.account, c.proof.to_abi(), deposit6, max_out]
        )
        req = TxRequest(to=self.chain.address, data=bytes.fromhex(data[2:]), purpose="liquidate")
        try:
            if not self.settings.dry_run:
                self._approve(deposit6)
            self._fire("checked", c.account)
            if self.settings.dry_run:
                if self._allowance() < deposit6:
                    return Outcome(
                        c.account,
                        "simulated",
                        c.mm_surplus_hi,
                        "dry_run: needs approve first; liquidate not simulated",
                        profit=profit,
                        **base,
                    )
                self.tx.simulate(req)
                return Outcome(
                    c.account, "simulated", c.mm_surplus_hi, "dry_run", profit=profit, **base
                )
            pending = self.tx.submit(req)
        except SimulationError as exc:
            if exc.data:
                dec = decode_revert_data(exc.data, self.chain.abi)
                self._check_root(c, "simulation", dec.message, dec.name, epoch)
                why = dec.message
            else:
                why = str(exc)
            return self._skip(c, f"simulation_reverted: {why}", profit=profit, **base)
        except TxError as exc:
            return Outcome(c.account, "failed", c.mm_surplus_hi, f"send_failed: {exc}", **base)
        self._fire("sent", c.account)
        outcome = Outcome(
            c.account, "pending", c.mm_surplus_hi, tx_hash=pending.tx_hash, profit=profit, **base
        )
        return self._wait(pending, outcome)

    def _allowance(self) -> int:
        token = self._token
        assert token is not None
        fn = token.functions.allowance(self.address, self.chain.address)
        return int(self.chain.rpc(fn.call, "allowance"))

    def _approve(self, amount6: int) -> None:
        """Set the vault's allowance to exactly ``amount6`` (mined before the liquidation is
        simulated: ``liquidate`` pulls the deposit last)."""
        if self._allowance() == amount6:
            return
        token = self._token
        assert token is not None
        data = token.encode_abi("approve", [self.chain.address, amount6])
        self.tx.send(
            TxRequest(to=token.address, data=bytes.fromhex(data[2:]), purpose="approve_deposit")
        )

    def _wait(
        self, pending: PendingTx, outcome: Outcome, *, timeout: float | None = None
    ) -> Outcome:
        try:
            mined = self.tx.wait(pending, timeout=timeout)
        except TxRevertedError as exc:
            return replace(
                outcome,
                status="reverted",
                reason=f"reverted: {self._why_now(pending.request)}",
                tx_hash=exc.tx_hash,
                gas_used=exc.gas_used,
            )
        except TxTimeoutError as exc:
            self._inflight[outcome.account] = _Inflight(pending, outcome)
            return replace(outcome, status="pending", reason=f"timeout: {exc}")
        self._inflight.pop(outcome.account, None)
        return self._mined(outcome, mined)

    def _why_now(self, req: TxRequest) -> str:
        """The revert reason the same call gives now (a receipt carries none)."""
        try:
            self.tx.simulate(req)
        except SimulationError as exc:
            return decode_revert(exc.data, self.chain.abi) if exc.data else str(exc)
        return "state changed before mining (the call succeeds now)"

    def _mined(self, outcome: Outcome, mined: TxResult) -> Outcome:
        events = self.chain.vault.events.Liquidated().process_receipt(mined.receipt, errors=DISCARD)
        net = outcome.net_cash_paid
        deposit6 = outcome.deposit6
        for ev in events:
            a = ev["args"]
            net = int(a["pay"]) + int(a["fee"]) - int(a["covered"])
            deposit6 = int(a["deposit6"])
        eq = outcome.equity_taken
        return replace(
            outcome,
            status="liquidated",
            reason=None,
            net_cash_paid=net,
            deposit6=deposit6,
            profit=None if eq is None or net is None else eq - net,
            tx_hash=mined.tx_hash,
            block=mined.block_number,
            gas_used=mined.gas_used,
        )

    def _poll_inflight(self) -> tuple[Outcome, ...]:
        """Outcomes of liquidations sent by an earlier tick that were not mined then."""
        done: list[Outcome] = []
        for account, fl in list(self._inflight.items()):
            try:
                result = self.tx.poll(fl.pending)
            except TxRevertedError as exc:
                self._inflight.pop(account)
                o = replace(fl.outcome, status="reverted", reason="reverted", tx_hash=exc.tx_hash)
                done.append(o)
                self._record(o)
                continue
            if result is not None:
                self._inflight.pop(account)
                o = self._mined(fl.outcome, result)
                done.append(o)
                self._record(o)
        return tuple(done)

    def _record(self, o: Outcome) -> None:
        level = logging.INFO
        msg = {
            "liquidated": "liquidation mined",
            "skipped": "liquidation skipped",
            "reverted": "liquidation reverted",
            "pending": "liquidation pending",
            "failed": "liquidation failed",
            "simulated": "liquidation simulated (dry run)",
        }[o.status]
        if o.status in ("reverted", "failed"):
            level = logging.WARNING
        log.log(level, msg, extra=o.log_fields())
        if self.metrics is not None:
            self.metrics.outcome(o)
