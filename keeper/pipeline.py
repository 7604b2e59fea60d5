"""One epoch, end to end: index -> snapshot -> market -> engine -> tree -> sign -> post -> store.

Two layers:

- :func:`compute_epoch` is the pure part: a :class:`~keeper.chain.ChainSnapshot` and a
  validated :class:`~keeper.feeds.MarketState` in, an :class:`EpochBuild` (header without
  signatures, tree, leaves) out. ``keeper verify`` calls the same function on the stored
  market snapshot, so a posted root can be recomputed by anyone from public data.
- :class:`EpochPipeline` does the I/O around it, idempotently (see :meth:`run_epoch`).

From chain state to engine portfolios (docs/protocol.md §3):

- positions: one engine column per live (not expired) chain instrument; sizes WAD -> float;
- collateral: one SPOT column per registered token (its underlying from
  ``token_underlyings``, ``WETH -> ETH``), balance in whole tokens, so spot collateral nets
  against derivatives on the same underlying;
- cash: the vault's cash, plus the pending funding of every perp position up to the index
  this epoch posts (``-mulWadCeil(size, F_new - F_last)``, rounded against the account as
  the vault will charge it), plus every expired option at its payoff from the settlement
  price (already on chain, or posted by this epoch), ``mulWadFloor(size, payoff)`` as
  ``settle`` will pay it. Those options leave the risk computation (no risk left);
- an ACCOUNT leaf for EVERY indexed account, also those without positions: the vault
  values a flat account on chain for a withdrawal, but a trade checks the account after
  the fill, when it holds positions, against its leaf; so an account's first trade needs
  a leaf that exists already (an empty account's leaf is all zeros, which with the
  running bounds is exact);
- an INSTRUMENT leaf for every live instrument; the token table for every token.

Funding rule (simple, documented in docs/operations.md): per perp,
``F_new = F_prev + clamp(perp_mark - spot, +-cap * spot) * dt / period`` with ``dt`` the
seconds since the previous epoch's timestamp (capped at ``max_elapsed_seconds``, 0 for the
first epoch): longs pay shorts when the perp trades above its index.

Settlement rule: an option with ``expiry <= header.timestamp`` and no settlement price yet
gets the underlying's spot of this epoch's market (rounded down to WAD).

Bad input (NaN, non-positive or absurd prices and vols, an unknown instrument underlying or
token) raises :class:`EpochRefusedError`; :meth:`EpochPipeline.run_epoch` turns it into a
``refused`` result with the reason logged, stores nothing, and the last good epoch stays.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from keeper.attestation import (
    AccountLeaf,
    Domain,
    Epoch,
    FundingUpdate,
    InstrumentLeaf,
    InstrumentProof,
    MarginProof,
    MerkleTree,
    Settlement,
    TokenPrice,
)
from keeper.bounds import mul_wad_down, mul_wad_up
from keeper.chain import AccountState, ChainAdapter, ChainSnapshot, InstrumentInfo
from keeper.errors import (
    EpochRefusedError,
    FeedError,
    RpcUnavailableError,
    SimulationError,
    TxError,
    TxRevertedError,
    TxTimeoutError,
)
from keeper.feeds.base import MarketFeed, MarketState
from keeper.metrics import KeeperMetrics
from keeper.revert import decode_revert
from keeper.signers import EpochSigner, header_from_json, header_to_json
from keeper.store import LeafRecord, Store
from keeper.txmanager import PendingTx, TxManager, TxRequest
from risk_engine import (
    InstrumentKind,
    InstrumentTable,
    MarketSnapshot,
    Portfolios,
    RiskEngineError,
    RiskParams,
    VolSurface,
    compute_margin,
    to_signed_wad_down,
    to_wad_down,
)

__all__ = [
    "DEFAULT_FUNDING_RULE",
    "DEFAULT_TOKEN_UNDERLYINGS",
    "STAGES",
    "EpochBuild",
    "EpochPipeline",
    "EpochResult",
    "FundingRule",
    "compute_epoch",
    "instrument_proof_from_json",
    "margin_proof_from_json",
]

log = logging.getLogger("keeper.pipeline")

WAD = 10**18
STAGES = ("index", "snapshot", "market", "compute", "tree", "store", "sign", "post")

#: Collateral token symbol -> the underlying it is priced and shocked as.
DEFAULT_TOKEN_UNDERLYINGS: Mapping[str, str] = {
    "WETH": "ETH",
    "WBTC": "BTC",
    "WSOL": "SOL",
    "GOV": "GOV",
}


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class FundingRule:
    """``F_new = F_prev + clamp(mark - spot, +-cap*spot) * min(dt, max_elapsed) / period``.

    ``period_seconds``: the premium is paid in full over this period (8 h, as most venues);
    ``cap``: the largest premium counted, fraction of spot per period (0.5 %);
    ``max_elapsed_seconds``: an outage does not charge more than this many seconds at once.
    """

    period_seconds: int = 8 * 3600
    cap: float = 0.005
    max_elapsed_seconds: int = 3600

    def next_index(self, previous: int, perp_mark: float, spot: float, elapsed: int) -> int:
        """The new cumulative index (WAD USD per unit), rounded down (deterministic)."""
        dt = max(0, min(int(elapsed), self.max_elapsed_seconds))
        if dt == 0:
            return previous
        premium = max(-self.cap * spot, min(self.cap * spot, perp_mark - spot))
        return previous + int(to_signed_wad_down(premium * dt / self.period_seconds))


DEFAULT_FUNDING_RULE = FundingRule()

# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class EpochBuild:
    """Everything of one epoch except the signatures."""

    header: Epoch
    tree: MerkleTree
    account_leaves: tuple[AccountLeaf, ...]
    instrument_leaves: tuple[InstrumentLeaf, ...]
    market: MarketState
    timings: Mapping[str, float] = field(default_factory=dict)
    #: Leaf hashes, account leaves then instrument leaves (computed once: ABI-encoding
    #: 10,000 leaves is most of the tree's cost).
    hashes: tuple[bytes, ...] = ()

    def _hashes(self) -> list[bytes]:
        if self.hashes:
            return list(self.hashes)
        return [leaf.hash() for leaf in (*self.account_leaves, *self.instrument_leaves)]

    def leaf_records(self) -> list[LeafRecord]:
        """Every leaf with its proof, in the store's format."""
        hashes = self._hashes()
        n = len(self.account_leaves)
        out = [
            LeafRecord(
                kind="account",
                key=leaf.account.lower(),
                fields={
                    "account": leaf.account,
                    "stateNonce": leaf.state_nonce,
                    "cumLo": leaf.cum_lo,
                    "cumHi": leaf.cum_hi,
                    "equity": leaf.equity,
                    "im": leaf.im,
                    "mm": leaf.mm,
                },
                leaf_hash="0x" + h.hex(),
                proof=tuple("0x" + p.hex() for p in self.tree.proof(h)),
            )
            for leaf, h in zip(self.account_leaves, hashes[:n], strict=True)
        ]
        out += [
            LeafRecord(
                kind="instrument",
                key=str(leaf.instrument),
                fields={
                    "instrument": leaf.instrument,
                    "mark": leaf.mark,
                    "lossPerUnitLong": leaf.loss_per_unit_long,
                    "lossPerUnitShort": leaf.loss_per_unit_short,
                },
                leaf_hash="0x" + h.hex(),
                proof=tuple("0x" + p.hex() for p in self.tree.proof(h)),
            )
            for leaf, h in zip(self.instrument_leaves, hashes[n:], strict=True)
        ]
        return out


def margin_proof_from_json(leaf: Mapping[str, Any]) -> MarginProof:
    """An ACCOUNT leaf as the API / epoch file serves it (``{"fields", "proof"}``, ints as
    decimal strings or ints) -> :class:`MarginProof` for a contract call."""
    f = leaf["fields"]
    return MarginProof(
        AccountLeaf(
            str(f["account"]),
            int(f["stateNonce"]),
            int(f["cumLo"]),
            int(f["cumHi"]),
            int(f["equity"]),
            int(f["im"]),
            int(f["mm"]),
        ),
        tuple(bytes.fromhex(p[2:]) for p in leaf["proof"]),
    )


def instrument_proof_from_json(leaf: Mapping[str, Any]) -> InstrumentProof:
    """An INSTRUMENT leaf as the API serves it -> :class:`InstrumentProof`."""
    f = leaf["fields"]
    return InstrumentProof(
        InstrumentLeaf(
            int(f["instrument"]),
            int(f["mark"]),
            int(f["lossPerUnitLong"]),
            int(f["lossPerUnitShort"]),
        ),
        tuple(bytes.fromhex(p[2:]) for p in leaf["proof"]),
    )


def _payoff(ins: InstrumentInfo, price: int) -> int:
    """Option payoff per unit at settlement ``price`` (WAD), as the vault's ``settle``."""
    if ins.kind == 1:
        return max(price - ins.strike, 0)
    return max(ins.strike - price, 0)


def _mul_wad_floor(x: int, y: int) -> int:
    """Signed ``x*y/1e18`` toward -inf (FixedPoint.mulWadFloor)."""
    if (x < 0) != (y < 0):
        return -mul_wad_up(abs(x), abs(y))
    return mul_wad_down(abs(x), abs(y))


def _mul_wad_ceil(x: int, y: int) -> int:
    """Signed ``x*y/1e18`` toward +inf (FixedPoint.mulWadCeil)."""
    if (x < 0) != (y < 0):
        return -mul_wad_down(abs(x), abs(y))
    return mul_wad_up(abs(x), abs(y))


def _engine_market(
    market: MarketState,
    underlyings: Sequence[str],
    live_options: Sequence[InstrumentInfo],
    token_symbol_of: Mapping[str, str],
) -> MarketSnapshot:
    """Engine snapshot of ``underlyings``: derivative underlyings from the feed, token-only
    underlyings (GOV) from the token price with ``perp_mark = spot``."""
    spot, perp, returns = [], [], []
    derivs = set(market.symbols)
    for u in underlyings:
        if u in derivs:
            us = market.underlying(u)
            spot.append(us.spot)
            perp.append(us.perp_mark)
        else:
            price = market.token_price(token_symbol_of[u])
            spot.append(price)
            perp.append(price)
        returns.append(market.returns_of(u))
    slices: dict[tuple[str, int], Any] = {}
    for ins in live_options:
        key = (ins.underlying, ins.expiry)
        if key not in slices:
            slices[key] = market.underlying(ins.underlying).smile_at(ins.expiry, market.timestamp)
    keys = sorted(slices)
    surface = (
        VolSurface(
            underlying=tuple(k[0] for k in keys),
            expiry=np.array([k[1] for k in keys], dtype=np.int64),
            forward=np.array([slices[k].forward for k in keys], dtype=np.float64),
            atm_vol=np.array([slices[k].atm_vol for k in keys], dtype=np.float64),
            skew=np.array([slices[k].skew for k in keys], dtype=np.float64),
            curvature=np.array([slices[k].curvature for k in keys], dtype=np.float64),
        )
        if keys
        else VolSurface.empty()
    )
    return MarketSnapshot(
        timestamp=int(market.timestamp),
        underlyings=tuple(underlyings),
        spot=np.array(spot, dtype=np.float64),
        perp_mark=np.array(perp, dtype=np.float64),
        rate=float(market.rate),
        surface=surface,
        returns=np.column_stack(returns).astype(np.float64),
    )


def compute_epoch(
    snapshot: ChainSnapshot,
    market: MarketState,
    params: RiskParams,
    *,
    epoch: int,
    token_underlyings: Mapping[str, str] = DEFAULT_TOKEN_UNDERLYINGS,
    funding_rule: FundingRule = FundingRule(),
) -> EpochBuild:
    """The epoch of ``snapshot`` in ``market`` (see the module docstring). Pure.

    The header's ``timestamp`` is ``market.timestamp``. Raises :class:`EpochRefusedError`.
    """
    t0 = time.perf_counter()
    ts = int(market.timestamp)
    derivs = set(market.symbols)
    # -- tokens: each must map to a known underlying
    token_und: list[str] = []
    token_symbol_of: dict[str, str] = {}
    for tok in snapshot.tokens:
        u = token_underlyings.get(tok.symbol)
        if u is None:
            raise EpochRefusedError(f"token {tok.symbol} ({tok.address}) has no underlying mapping")
        if u not in derivs and tok.symbol not in market.token_prices:
            raise EpochRefusedError(f"no market price for token {tok.symbol}", reason="feed")
        token_und.append(u)
        token_symbol_of.setdefault(u, tok.symbol)
    # -- instruments: live ones are priced, expired ones settle into cash
    live: list[InstrumentInfo] = []
    settle_now: dict[int, int] = {}
    settle_price: dict[int, int] = dict(snapshot.settlements)
    for ins in snapshot.instruments:
        if ins.underlying not in derivs:
            raise EpochRefusedError(
                f"instrument {ins.id} has underlying {ins.underlying!r} unknown to the feed",
                reason="feed",
            )
        if ins.expired(ts):
            if ins.id not in settle_price:
                price = to_wad_down(market.underlying(ins.underlying).spot)
                settle_now[ins.id] = price
                settle_price[ins.id] = price
        else:
            live.append(ins)
    if not live:
        raise EpochRefusedError("no live instrument registered: nothing to attest")
    underlyings = sorted(derivs | set(token_und), key=lambda u: (u not in derivs, u))
    # -- funding indices this epoch posts
    prev = snapshot.current_epoch
    elapsed = ts - prev.timestamp if prev.epoch > 0 else 0
    funding: dict[int, int] = {}
    for ins in snapshot.instruments:
        if ins.kind == int(InstrumentKind.PERP):
            us = market.underlying(ins.underlying)
            funding[ins.id] = funding_rule.next_index(
                snapshot.cum_funding.get(ins.id, 0), us.perp_mark, us.spot, elapsed
            )
    # -- engine instrument table: live instruments, then one SPOT per token
    col_of = {ins.id: j for j, ins in enumerate(live)}
    n_live = len(live)
    table = InstrumentTable.build(
        kind=[ins.kind for ins in live] + [int(InstrumentKind.SPOT)] * len(token_und),
        underlying=[ins.underlying for ins in live] + token_und,
        strike=[ins.strike / WAD for ins in live] + [0.0] * len(token_und),
        expiry=[ins.expiry if ins.is_option else 0 for ins in live] + [0] * len(token_und),
    )
    # -- portfolios of the accounts that need a leaf
    by_id = {ins.id: ins for ins in snapshot.instruments}
    leaf_accounts: list[AccountState] = []
    rows: list[int] = []
    cols: list[int] = []
    data: list[float] = []
    cash: list[float] = []
    decimals = [10**t.decimals for t in snapshot.tokens]
    for a in snapshot.accounts:
        r = len(leaf_accounts)
        leaf_accounts.append(a)
        c = a.cash
        for p in a.positions:
            if p.size == 0:
                continue
            ins = by_id[p.instrument]
            if ins.kind == int(InstrumentKind.PERP):
                c -= _mul_wad_ceil(p.size, funding[ins.id] - p.funding_index)
            if ins.id in col_of:
                rows.append(r)
                cols.append(col_of[ins.id])
                data.append(p.size / WAD)
            else:  # expired option: its payoff in cash, no risk left
                c += _mul_wad_floor(p.size, _payoff(ins, settle_price[ins.id]))
        for k, bal in enumerate(a.collateral):
            if bal:
                rows.append(r)
                cols.append(n_live + k)
                data.append(bal / decimals[k])
        cash.append(c / WAD)
    portfolios = Portfolios(
        table,
        sp.csr_array(
            (np.array(data, dtype=np.float64), (np.array(rows), np.array(cols))),
            shape=(len(leaf_accounts), table.n_instruments),
        ),
        np.array(cash, dtype=np.float64),
    )
    try:
        engine_market = _engine_market(
            market, underlyings, [i for i in live if i.is_option], token_symbol_of
        )
        result = compute_margin(portfolios, engine_market, params)
        wad_leaves = result.leaves.to_wad()
        wad_tokens = result.tokens.to_wad()
        account_leaves = []
        for r, a in enumerate(leaf_accounts):
            equity, im, mm = result.to_wad(r)
            account_leaves.append(
                AccountLeaf(a.address, a.state_nonce, a.cum_lo, a.cum_hi, equity, im, mm)
            )
    except RiskEngineError as exc:
        raise EpochRefusedError(f"risk engine refused the input: {exc}") from exc
    except FeedError as exc:
        raise EpochRefusedError(str(exc), reason="feed") from exc
    instrument_leaves = tuple(
        InstrumentLeaf(live[j].id, mark, lo, ls)
        for j, mark, lo, ls in zip(
            wad_leaves.instrument_index,
            wad_leaves.mark,
            wad_leaves.loss_long,
            wad_leaves.loss_short,
            strict=True,
        )
    )
    tokens = tuple(
        TokenPrice(snapshot.tokens[k].address, price, down, up)
        for k, (price, down, up) in enumerate(
            zip(wad_tokens.price, wad_tokens.down_shock, wad_tokens.up_shock, strict=True)
        )
    )
    for t in tokens:
        if t.price == 0 or t.down_shock > WAD:
            raise EpochRefusedError(f"token table entry the vault would refuse: {t}")
    t1 = time.perf_counter()
    hashes = tuple(leaf.hash() for leaf in (*account_leaves, *instrument_leaves))
    tree = MerkleTree(hashes)
    header = Epoch(
        epoch=epoch,
        snapshot_block=snapshot.block,
        timestamp=ts,
        root=tree.root,
        config_version=snapshot.config_version,
        tokens=tokens,
        funding=tuple(FundingUpdate(i, f) for i, f in sorted(funding.items())),
        settlements=tuple(Settlement(i, p) for i, p in sorted(settle_now.items())),
    )
    t2 = time.perf_counter()
    return EpochBuild(
        header=header,
        tree=tree,
        account_leaves=tuple(account_leaves),
        instrument_leaves=instrument_leaves,
        market=market,
        timings={"compute": t1 - t0, "tree": t2 - t1},
        hashes=hashes,
    )


# --------------------------------------------------------------------------- pipeline


@dataclass(frozen=True)
class EpochResult:
    """Outcome of one :meth:`EpochPipeline.run_epoch`.

    ``status``: ``mined`` (posted and mined), ``built`` (dry run: stored and signed, not
    sent), ``refused`` (bad input; nothing stored), ``pending`` (sent or to be re-sent
    next tick), ``failed`` (the epoch number was abandoned; the next tick builds anew).
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
        funding_rule: FundingRule = FundingRule(),
        max_attempts: int = 3,
        hook: Hook | None = None,
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
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            timings[name] = timings.get(name, 0.0) + elapsed
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
        with self._stage("snapshot", timings):
            snap = chain.snapshot(snapshot_block)
            # Who signs is checked when the epoch is POSTED: take the signer set, quorum and
            # configVersion of the latest block, not of the snapshot block.
            snap = dataclasses.replace(snap, **chain.governance("latest"))
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
            )
        except EpochRefusedError as exc:
            return self._refuse(exc.reason, str(exc), timings)
        for k, v in build.timings.items():
            timings[k] = v
            if self.metrics is not None:
                self.metrics.stage_seconds.labels(stage=k).observe(v)
        header = build.header
        with self._stage("store", timings):
            self.store.reserve_epoch(
                number,
                "0x" + header.root.hex(),
                snapshot_block=header.snapshot_block,
                timestamp=header.timestamp,
            )
            self.store.set_epoch_status(number, "built", header=header_to_json(header))
            market_json = market.to_json()
            self.store.save_market_snapshot(number, market_json)
            self.store.save_leaves(number, build.leaf_records())
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
        return self._sign_and_post(
            number,
            header,
            (),
            timings,
            snap.quorum,
            snap.signers,
            len(build.account_leaves),
            market=market_json,
        )

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
        base = dict(
            epoch=number,
            root=root,
            snapshot_block=header.snapshot_block,
            accounts=accounts,
            resumed=resumed,
        )
        if self.tx is None:  # dry run: built, stored and signed; never sent, never resumed
            self.store.set_epoch_status(number, "failed", reason="abandoned: dry run, not sent")
            log.info("epoch built (dry run, not sent)", extra={"epoch": number, "root": root})
            return EpochResult("built", timings=dict(timings), **base)  # type: ignore[arg-type]
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
                why = decode_revert(exc.data, self.chain.abi) if exc.data else str(exc)
                return self._abandon(number, f"postEpoch simulation reverted: {why}", timings)
            except RpcUnavailableError:
                raise
            except TxError as exc:
                self.store.set_epoch_status(number, "failed", reason=str(exc))
                return EpochResult("pending", reason=str(exc), timings=dict(timings), **base)  # type: ignore[arg-type]
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
                return EpochResult("pending", reason=str(exc), timings=dict(timings), **base)  # type: ignore[arg-type]
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
        return EpochResult(
            "mined",
            tx_hash=mined.tx_hash,
            gas_used=mined.gas_used,
            timings=dict(timings),
            **base,  # type: ignore[arg-type]
        )

    def _tx_outcome(self, outcome: str, gas: int) -> None:
        if self.metrics is not None:
            self.metrics.tx_outcome("postEpoch", outcome, gas)

    def _mined(self, number: int, header: Epoch, tx_hash: str | None, accounts: int) -> None:
        rec = self.store.get_epoch(number)
        assert rec is not None
        # walk the allowed transitions up to mined
        path = {"built": ["signed", "sent"], "signed": ["sent"], "failed": ["sent"]}
        for status in path.get(rec.status, []):
            self.store.set_epoch_status(number, status)  # type: ignore[arg-type]
        self.store.set_epoch_status(number, "mined", tx_hash=tx_hash)
        self.store.write_epoch_file(number)
        self._attempts.pop(number, None)
        if self.metrics is not None:
            self.metrics.epoch_mined(number, header.timestamp, accounts)

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
        accounts = len(self.store.get_leaves(number, "account"))
        if rec.header is None:
            return self._abandon(
                number, "stored without a header (crashed while building)", timings
            )
        header = header_from_json(rec.header)
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
        if not self.store.get_leaves(number) or self.store.get_market_snapshot(number) is None:
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

    def _receipt(self, tx_hash: str) -> Any | None:
        try:
            return self.chain.rpc(
                lambda: self.chain.w3.eth.get_transaction_receipt(tx_hash),  # type: ignore[arg-type]
                "get_transaction_receipt",
            )
        except Exception as exc:
            if type(exc).__name__ == "TransactionNotFound":
                return None
            raise
