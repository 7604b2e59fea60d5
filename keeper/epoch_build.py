"""The pure epoch build: chain state + market -> leaves, tree and header (no I/O).

:func:`compute_epoch` takes a :class:`~keeper.chain.ChainSnapshot` and a validated
:class:`~keeper.feeds.MarketState` and returns an :class:`EpochBuild` (header without
signatures, tree, leaves). The keeper's pipeline (``keeper/pipeline.py``), ``keeper
verify`` and every signer's recomputation (``keeper/epoch_check.py``) call this same
function, so a posted root can be recomputed by anyone from public data. It is made of
named steps, each a function of this module:

1. :func:`chain_inputs` -- which tokens and instruments the epoch prices, and the
   settlement prices it posts;
2. :func:`funding_indices` -- the cumulative funding index of every perp;
3. :func:`account_cash` -- each account's cash after pending funding and settlements;
4. :func:`~keeper.engine_input.engine_portfolios` and
   :func:`~keeper.engine_input.engine_market_of` -- the risk engine's input, mapped by
   ``keeper/engine_input.py`` (shared with ``scripts/margin_view.py``);
5. :func:`margin_leaves`, :func:`instrument_leaves` and :func:`token_table` -- the
   engine's result in WAD;
6. :func:`epoch_header` -- the Merkle tree's root and the header the signers sign.

From chain state to engine portfolios (docs/protocol.md §3; columns, collateral and
underlyings as ``keeper/engine_input.py`` maps them):

- positions: one engine column per live (not expired) chain instrument;
- cash: the vault's cash, plus the pending funding of every perp position up to the index
  this epoch posts (``-mulWadCeil(size, F_new - F_last)``, rounded against the account as
  the vault will charge it), plus every expired option at its payoff from the settlement
  price (already on chain, or posted by this epoch), ``mulWadFloor(size, payoff)`` as
  ``settle`` will pay it. Those options leave the risk computation (no risk left);
- an ACCOUNT leaf for EVERY indexed subaccount (keyed by its id; docs/protocol.md §2),
  also those without positions: the vault values a flat subaccount on chain for a
  withdrawal, but a trade checks the subaccount after the fill, when it holds positions,
  against its leaf; so a subaccount's first trade needs a leaf that exists already (an
  empty subaccount's leaf is all zeros, which with the running bounds is exact);
- an INSTRUMENT leaf for every live instrument; the token table for every token.

Funding rule (simple, documented in docs/operations.md): per perp,
``F_new = F_prev + clamp(perp_mark - spot, +-cap * spot) * dt / period`` with ``dt`` the
seconds since the previous epoch's timestamp (capped at ``max_elapsed_seconds``, 0 for the
first epoch): longs pay shorts when the perp trades above its index.

Settlement rule: an option with ``expiry <= header.timestamp`` and no settlement price yet
gets the underlying's spot of this epoch's market (rounded down to WAD).

Input that cannot be priced (NaN, a non-positive price or vol, an unknown instrument
underlying or token) raises :class:`~keeper.errors.EpochRefusedError`. A crash is never
refused: an extreme market value or engine range is capped and listed in
:attr:`EpochBuild.capped` (docs/operations.md, "Refuse or cap").
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from eth_utils.crypto import keccak

from keeper import merkle
from keeper.attestation import (
    AccountLeaf,
    AccountLeafRows,
    InstrumentLeaf,
    InstrumentProof,
    Leaf,
    LeafRecord,
    MarginProof,
    MerkleTree,
    hash_leaves,
    hash_to_json,
)
from keeper.bounds import mul_wad_down, mul_wad_up
from keeper.chain import AccountState, ChainSnapshot, InstrumentInfo, TokenInfo
from keeper.compute import MarginFn
from keeper.dispute_encoding import (
    AggregationParamsWad,
    MarketInputsWad,
    RangeParamsWad,
    VectorParamsWad,
    hash_params,
    inputs_hash_from,
    market_hash_of,
    published_inputs,
    vector_hashes,
)
from keeper.eip712 import Epoch, FundingUpdate, Settlement, TokenPrice
from keeper.engine_input import engine_market_of, engine_portfolios
from keeper.epoch_columns import (
    ColumnCache,
    account_columns,
    account_leaf_rows,
    cash_columns,
    check_leaf_columns,
    payoff,
    portfolios_of_columns,
)
from keeper.errors import EpochRefusedError, FeedError
from keeper.feeds.base import MarketState
from risk_engine import (
    CappedValue,
    InstrumentKind,
    MarginResult,
    MarketSnapshot,
    RiskArrays,
    RiskEngineError,
    RiskParams,
    compute_margin,
    to_signed_wad_down,
    to_wad_down,
)
from risk_engine.units import WAD

__all__ = [
    "DEFAULT_FUNDING_RULE",
    "DEFAULT_TOKEN_UNDERLYINGS",
    "ChainInputs",
    "EpochBuild",
    "FundingRule",
    "account_cash",
    "chain_inputs",
    "compute_epoch",
    "compute_epoch_reference",
    "epoch_header",
    "funding_indices",
    "margin_leaves",
    "token_table",
]


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


# --------------------------------------------------------------------------- 1. chain state


@dataclass(frozen=True)
class ChainInputs:
    """What of the chain state the epoch prices.

    ``token_underlyings``: the underlying of each snapshot token, in token order;
    ``live``: the instruments priced (not expired), in snapshot order;
    ``settle_now``: settlement prices this epoch posts (WAD, rounded down), by instrument;
    ``settle_price``: every settlement price known, on chain or posted now.
    """

    token_underlyings: tuple[str, ...]
    live: tuple[InstrumentInfo, ...]
    settle_now: Mapping[int, int]
    settle_price: Mapping[int, int]


def chain_inputs(
    snapshot: ChainSnapshot, market: MarketState, token_underlyings: Mapping[str, str]
) -> ChainInputs:
    """Tokens mapped to underlyings the market prices; live instruments; the settlement
    price of every option that expired without one. Raises
    :class:`~keeper.errors.EpochRefusedError`."""
    ts = int(market.timestamp)
    derivs = set(market.symbols)
    token_und: list[str] = []
    for tok in snapshot.tokens:
        u = token_underlyings.get(tok.symbol)
        if u is None:
            raise EpochRefusedError(f"token {tok.symbol} ({tok.address}) has no underlying mapping")
        if u not in derivs and tok.symbol not in market.token_prices:
            priced = ", ".join(sorted(market.token_prices)) or "none"
            raise EpochRefusedError(
                f"no market price for token {tok.symbol} (the feed prices {priced}; a vault "
                "collateral the feed cannot price stops every epoch)",
                reason="feed",
            )
        token_und.append(u)
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
    return ChainInputs(tuple(token_und), tuple(live), settle_now, settle_price)


# --------------------------------------------------------------------------- 2. funding


def funding_indices(
    snapshot: ChainSnapshot, market: MarketState, rule: FundingRule
) -> dict[int, int]:
    """The cumulative funding index (WAD USD per unit) this epoch posts for every perp,
    over the seconds since the previous epoch (none before the first)."""
    prev = snapshot.current_epoch
    elapsed = int(market.timestamp) - prev.timestamp if prev.epoch > 0 else 0
    funding: dict[int, int] = {}
    for ins in snapshot.instruments:
        if ins.kind == int(InstrumentKind.PERP):
            us = market.underlying(ins.underlying)
            funding[ins.id] = rule.next_index(
                snapshot.cum_funding.get(ins.id, 0), us.perp_mark, us.spot, elapsed
            )
    return funding


# --------------------------------------------------------------------------- 3. cash


def account_cash(
    accounts: Sequence[AccountState],
    instruments: Sequence[InstrumentInfo],
    live: Sequence[InstrumentInfo],
    funding: Mapping[int, int],
    settle_price: Mapping[int, int],
) -> list[int]:
    """Each account's cash (WAD USD) as the vault will hold it once this epoch is posted:
    pending perp funding charged (rounded against the account), expired options paid at
    their settlement price (rounded down), as ``settle`` will."""
    by_id = {ins.id: ins for ins in instruments}
    live_ids = {ins.id for ins in live}
    out: list[int] = []
    for a in accounts:
        c = a.cash
        for p in a.positions:
            if p.size == 0:
                continue
            ins = by_id[p.instrument]
            if ins.kind == int(InstrumentKind.PERP):
                c -= _mul_wad_ceil(p.size, funding[ins.id] - p.funding_index)
            if ins.id not in live_ids:  # expired option: its payoff in cash, no risk left
                c += _mul_wad_floor(p.size, payoff(ins, settle_price[ins.id]))
        out.append(c)
    return out


# --------------------------------------------------------------------------- 4. engine input


# --------------------------------------------------------------------------- 5. leaves


def margin_leaves(
    accounts: Sequence[AccountState], result: MarginResult
) -> tuple[AccountLeaf, ...]:
    """One ACCOUNT leaf per subaccount: its id, chain counters and the engine's numbers in
    WAD (equity rounded down, requirements up)."""
    equity, im, mm = result.to_wad_all()
    return tuple(
        AccountLeaf(a.account, a.state_nonce, a.cum_lo, a.cum_hi, e, i, m, a.state_word)
        for a, e, i, m in zip(accounts, equity, im, mm, strict=True)
    )


@dataclass(frozen=True)
class DisputeCommitments:
    """What an epoch commits for the disputes (docs/protocol.md §11): the hash of every
    live instrument's engine row (by live index) and of every token's SPOT row (registration
    order), the aggregation parameters' hash, the market hash, and the header's
    ``inputs_hash`` over the last three. The market hash covers the published snapshot's
    JSON (``snapshot_hash``), the engine's market inputs and the vector parameters (what
    ``disputeInstrument`` recomputes a vector from)."""

    vector_hashes: tuple[bytes, ...]
    token_vector_hashes: tuple[bytes, ...]
    params_hash: bytes
    market_hash: bytes
    inputs_hash: bytes
    snapshot_hash: bytes = bytes(32)
    market_inputs: MarketInputsWad | None = field(default=None, compare=False, repr=False)
    vector_params: VectorParamsWad | None = field(default=None, compare=False, repr=False)
    range_params: RangeParamsWad | None = field(default=None, compare=False, repr=False)


def inputs_hash(
    params_hash: bytes, token_vector_hashes: Sequence[bytes], market_hash: bytes
) -> bytes:
    """``keccak256(abi.encode(paramsHash, keccak256(abi.encodePacked(tokenVectorHashes)),
    marketHash))``, as ``DisputeModule.disputeAccount`` checks it."""
    return inputs_hash_from(params_hash, keccak(b"".join(token_vector_hashes)), market_hash)


def snapshot_hash(market: MarketState) -> bytes:
    """The hash of the market snapshot the keeper publishes with the epoch (the JSON the
    signers receive, ``MarketState.to_json``)."""
    return keccak(market.to_json().encode())


def dispute_commitments(
    n_live: int,
    n_tokens: int,
    arrays: RiskArrays,
    market: MarketState,
    engine_market: MarketSnapshot,
) -> DisputeCommitments:
    """The engine rows of the epoch's risk arrays (the live instruments first, then one
    SPOT row per token, as ``keeper/engine_input.py`` lays them out), hashed as the
    dispute module hashes a ``RiskVector`` (all rows at once,
    ``keeper/dispute_encoding.py:vector_hashes``); the market hash over the published snapshot
    ``market``, the engine's market inputs ``engine_market`` (with the scan ranges of
    ``arrays``) and the vector parameters."""
    rows = vector_hashes(arrays, n_live + n_tokens)
    params = hash_params(AggregationParamsWad.from_arrays(arrays))
    snap = snapshot_hash(market)
    mkt = MarketInputsWad.from_engine(engine_market, arrays)
    vparams = VectorParamsWad.from_arrays(arrays)
    rparams = RangeParamsWad.from_params(arrays.params)
    mh = market_hash_of(snap, mkt, vparams, rparams)
    tokens = tuple(rows[n_live:])
    return DisputeCommitments(
        vector_hashes=tuple(rows[:n_live]),
        token_vector_hashes=tokens,
        params_hash=params,
        market_hash=mh,
        inputs_hash=inputs_hash(params, tokens, mh),
        snapshot_hash=snap,
        market_inputs=mkt,
        vector_params=vparams,
        range_params=rparams,
    )


def _commitments_if_disputable(
    snapshot: ChainSnapshot,
    n_live: int,
    result: MarginResult,
    market: MarketState,
    engine_market: MarketSnapshot,
) -> DisputeCommitments | None:
    """The epoch's dispute commitments when the vault's challenge window is on at the
    snapshot block; None (zero words in the leaves and header) when it is off: no epoch is
    disputable then, so no row is hashed (about 6 us per instrument, all rows at once;
    docs/protocol.md §11)."""
    if not snapshot.dispute_window:
        return None
    return dispute_commitments(n_live, len(snapshot.tokens), result.arrays, market, engine_market)


def instrument_leaves(
    live: Sequence[InstrumentInfo],
    result: MarginResult,
    funding: Mapping[int, int] | None = None,
    row_hashes: Sequence[bytes] | None = None,
) -> tuple[InstrumentLeaf, ...]:
    """One INSTRUMENT leaf per live instrument the engine values (WAD, losses up), with the
    perp's funding index this epoch posts and the hash of its engine row."""
    wad = result.leaves.to_wad()
    funding = funding or {}
    return tuple(
        InstrumentLeaf(
            live[j].id,
            mark,
            lo,
            ls,
            funding.get(live[j].id, 0) if live[j].kind == 0 else 0,
            row_hashes[j] if row_hashes is not None else bytes(32),
        )
        for j, mark, lo, ls in zip(
            wad.instrument_index, wad.mark, wad.loss_long, wad.loss_short, strict=True
        )
    )


def token_table(tokens: Sequence[TokenInfo], result: MarginResult) -> tuple[TokenPrice, ...]:
    """The header's token table (WAD price down, shocks up). Refuses an entry that
    ``postEpoch`` would revert on (``InvalidTokenPrice``), before anyone signs it."""
    wad = result.tokens.to_wad()
    out = tuple(
        TokenPrice(tokens[k].address, price, down, up)
        for k, (price, down, up) in enumerate(
            zip(wad.price, wad.down_shock, wad.up_shock, strict=True)
        )
    )
    for t in out:
        if t.price == 0 or t.down_shock > WAD:
            raise EpochRefusedError(f"token table entry the vault would refuse: {t}")
    return out


# --------------------------------------------------------------------------- 6. header


def epoch_header(
    snapshot: ChainSnapshot,
    *,
    epoch: int,
    timestamp: int,
    tree: MerkleTree,
    tokens: Sequence[TokenPrice],
    funding: Mapping[int, int],
    settle_now: Mapping[int, int],
    inputs_hash: bytes = bytes(32),
) -> Epoch:
    """The header the signers sign: funding and settlements by instrument id, and the
    hash of the engine's committed inputs (docs/protocol.md §11)."""
    return Epoch(
        epoch=epoch,
        snapshot_block=snapshot.block,
        timestamp=timestamp,
        root=tree.root,
        config_version=snapshot.config_version,
        tokens=tuple(tokens),
        funding=tuple(FundingUpdate(i, f) for i, f in sorted(funding.items())),
        settlements=tuple(Settlement(i, p) for i, p in sorted(settle_now.items())),
        inputs_hash=inputs_hash,
    )


@dataclass(frozen=True)
class EpochBuild:
    """Everything of one epoch except the signatures."""

    header: Epoch
    tree: MerkleTree
    #: One per subaccount: a tuple (the reference), or the rows the build hashed
    #: (:class:`~keeper.attestation.AccountLeafRows`, a leaf object made when read).
    account_leaves: Sequence[AccountLeaf]
    instrument_leaves: tuple[InstrumentLeaf, ...]
    market: MarketState
    timings: Mapping[str, float] = field(default_factory=dict)
    #: Leaf hashes as rows (shape ``(n, 32)``), account leaves then instrument leaves
    #: (computed once: ABI-encoding 10,000 leaves is most of the tree's cost).
    hash_rows: merkle.U8Array | None = field(default=None, compare=False)
    #: The engine's risk arrays (the rows and parameters the dispute commitments hash;
    #: ``pm dispute`` builds a claim from them), when the build computed them.
    arrays: RiskArrays | None = field(default=None, compare=False, repr=False)
    #: Values capped instead of refusing the epoch: the market input's
    #: (``keeper/engine_input.py``), then the engine's (``MarginResult.capped``).
    capped: tuple[CappedValue, ...] = ()
    #: The account leaves' ``abi.encode`` rows (shape ``(n, 256)``, in ``account_leaves``'
    #: order) when the build made them: the store takes them instead of encoding the
    #: leaves' WAD values a second time (``Store.save_tree``'s ``encodings``).
    account_rows: merkle.U8Array | None = field(default=None, compare=False)
    #: The dispute commitments the header's ``inputs_hash`` is over, when the vault's
    #: challenge window was on (``pm dispute`` builds its claims from them).
    commitments: DisputeCommitments | None = field(default=None, compare=False, repr=False)

    @cached_property
    def hashes(self) -> tuple[bytes, ...]:
        """The leaf hashes as ``bytes``, account leaves then instrument leaves (made when
        first read: the pipeline needs only :attr:`hash_rows`)."""
        if self.hash_rows is None:
            leaves: tuple[Leaf, ...] = (*self.account_leaves, *self.instrument_leaves)
            return tuple(leaf.hash() for leaf in leaves)
        blob = self.hash_rows.tobytes()
        return tuple(blob[i : i + 32] for i in range(0, len(blob), 32))

    def published_inputs(self) -> dict[str, Any] | None:
        """The dispute inputs the keeper publishes with this epoch (``GET /epoch/<n>/inputs``),
        when it committed them (the vault's challenge window on)."""
        c = self.commitments
        if (
            c is None
            or self.arrays is None
            or c.market_inputs is None
            or c.vector_params is None
            or c.range_params is None
        ):
            return None
        return published_inputs(
            c.snapshot_hash,
            c.market_inputs,
            c.vector_params,
            c.range_params,
            AggregationParamsWad.from_arrays(self.arrays),
            c.token_vector_hashes,
        )

    def _hashes(self) -> list[bytes]:
        return list(self.hashes)

    def leaf_records(self) -> list[LeafRecord]:
        """Every leaf with its proof, in the store's format (the proof's wire codec)."""
        hashes = self._hashes()
        n = len(self.account_leaves)
        out = []
        for leaf, h in zip(self.account_leaves, hashes[:n], strict=True):
            wire = MarginProof(leaf, self.tree.proof(h)).to_json()
            out.append(
                LeafRecord(
                    "account",
                    str(leaf.account),
                    wire["fields"],
                    hash_to_json(h),
                    tuple(wire["proof"]),
                )
            )
        for ileaf, h in zip(self.instrument_leaves, hashes[n:], strict=True):
            wire = InstrumentProof(ileaf, self.tree.proof(h)).to_json()
            out.append(
                LeafRecord(
                    "instrument",
                    str(ileaf.instrument),
                    wire["fields"],
                    hash_to_json(h),
                    tuple(wire["proof"]),
                )
            )
        return out


# --------------------------------------------------------------------------- the build


def compute_epoch(
    snapshot: ChainSnapshot,
    market: MarketState,
    params: RiskParams,
    *,
    epoch: int,
    token_underlyings: Mapping[str, str] = DEFAULT_TOKEN_UNDERLYINGS,
    funding_rule: FundingRule = DEFAULT_FUNDING_RULE,
    margin: MarginFn = compute_margin,
    columns_cache: ColumnCache | None = None,
) -> EpochBuild:
    """The epoch of ``snapshot`` in ``market`` (see the module docstring). Pure.

    The header's ``timestamp`` is ``market.timestamp``. ``margin`` runs the risk engine
    (``keeper/compute.py``: here or on a cluster, with the same bits). Raises
    :class:`~keeper.errors.EpochRefusedError`. The per-account steps run column-wise
    (``keeper/epoch_columns.py``); :func:`compute_epoch_reference` is the same build one
    account at a time. ``timings``: ``compute`` and ``tree`` (seconds), and within them
    ``columns``, ``portfolios``, ``engine``, ``leaves``, ``hash``, ``merkle``.
    ``columns_cache``: the pipeline's :class:`~keeper.epoch_columns.ColumnCache`, so that
    only the subaccounts that changed since the last epoch are read again (the result is
    the same).

    Python's cyclic garbage collector is paused during the build: it allocates a few
    million acyclic objects (ints, leaves, hashes), and each allocation burst made the
    collector walk every live object, the 100,000-account snapshot included (a third of
    the compute stage at 100,000 accounts, docs/benchmarks.md "Compute stage"); nothing
    is lost, it runs again after.
    """
    with _collector_paused():
        return _compute_epoch(
            snapshot,
            market,
            params,
            epoch=epoch,
            token_underlyings=token_underlyings,
            funding_rule=funding_rule,
            margin=margin,
            columns_cache=columns_cache,
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compute_epoch(
    snapshot: ChainSnapshot,
    market: MarketState,
    params: RiskParams,
    *,
    epoch: int,
    token_underlyings: Mapping[str, str],
    funding_rule: FundingRule,
    margin: MarginFn,
    columns_cache: ColumnCache | None,
) -> EpochBuild:
    t0 = time.perf_counter()
    inputs = chain_inputs(snapshot, market, token_underlyings)
    funding = funding_indices(snapshot, market, funding_rule)
    decimals = [t.decimals for t in snapshot.tokens]
    cols = account_columns(snapshot.accounts, decimals, columns_cache)
    ta = time.perf_counter()
    cash = cash_columns(cols, snapshot.instruments, inputs.live, funding, inputs.settle_price)
    portfolios = portfolios_of_columns(
        cols, cash, inputs.live, snapshot.tokens, inputs.token_underlyings
    )
    tb = time.perf_counter()
    try:
        engine = engine_market_of(market, inputs.live, snapshot.tokens, inputs.token_underlyings)
        result = margin(portfolios, engine.snapshot, params)
        tc = time.perf_counter()
        columns: dict[str, Sequence[int]] = {
            "account": cols.account,
            "state_nonce": cols.state_nonce,
            "cum_lo": cols.cum_lo,
            "cum_hi": cols.cum_hi,
        }
        widened = result.widened_all()
        if widened is None:
            # a value past 5e58 USD (or not finite): the exact ints, which refuse what
            # leaves int256 / uint256 (InvalidInputError names it)
            equity, im, mm = result.to_wad_all()
            columns |= {"equity": equity, "im": im, "mm": mm}
            check_leaf_columns(columns)
        commit = _commitments_if_disputable(
            snapshot, len(inputs.live), result, market, engine.snapshot
        )
        ileaves = instrument_leaves(
            inputs.live, result, funding, None if commit is None else commit.vector_hashes
        )
        tokens = token_table(snapshot.tokens, result)
    except RiskEngineError as exc:
        raise EpochRefusedError(f"risk engine refused the input: {exc}") from exc
    except FeedError as exc:
        raise EpochRefusedError(str(exc), reason="feed") from exc
    t1 = time.perf_counter()
    # the leaves stay rows: a leaf object is made only where one is read (proofs, verify)
    account_rows = account_leaf_rows(
        columns, widened, head=cols.head_words, state_words=cols.state_word
    )
    account_leaves = AccountLeafRows(account_rows)
    rows = np.concatenate([merkle.leaf_hashes(account_rows), _instrument_hash_rows(ileaves)])
    th = time.perf_counter()
    tree = MerkleTree.of_rows(rows)
    header = epoch_header(
        snapshot,
        epoch=epoch,
        timestamp=int(market.timestamp),
        tree=tree,
        tokens=tokens,
        funding=funding,
        settle_now=inputs.settle_now,
        inputs_hash=bytes(32) if commit is None else commit.inputs_hash,
    )
    t2 = time.perf_counter()
    return EpochBuild(
        header=header,
        tree=tree,
        account_leaves=account_leaves,
        instrument_leaves=ileaves,
        market=market,
        timings={
            "compute": t1 - t0,
            "tree": t2 - t1,
            "columns": ta - t0,
            "portfolios": tb - ta,
            "engine": tc - tb,
            "leaves": t1 - tc,
            "hash": th - t1,
            "merkle": t2 - th,
        },
        hash_rows=rows,
        arrays=result.arrays,
        capped=engine.capped + result.capped,
        account_rows=account_rows,
        commitments=commit,
    )


def _instrument_hash_rows(leaves: Sequence[InstrumentLeaf]) -> merkle.U8Array:
    """The INSTRUMENT leaves' hashes as rows, shape ``(n, 32)``."""
    blob = b"".join(hash_leaves(leaves))
    return np.frombuffer(blob, dtype=np.uint8).reshape(len(leaves), 32)


def compute_epoch_reference(
    snapshot: ChainSnapshot,
    market: MarketState,
    params: RiskParams,
    *,
    epoch: int,
    token_underlyings: Mapping[str, str] = DEFAULT_TOKEN_UNDERLYINGS,
    funding_rule: FundingRule = DEFAULT_FUNDING_RULE,
    margin: MarginFn = compute_margin,
) -> EpochBuild:
    """:func:`compute_epoch` one subaccount at a time, with an object per account and
    per leaf: the slow, obvious reference the tests and scripts/bench_compute.py compare
    the column-wise build with (the same header, tree and leaves).

    The header's ``timestamp`` is ``market.timestamp``. ``margin`` runs the risk engine
    (``keeper/compute.py``: here or on a cluster, with the same bits). Raises
    :class:`~keeper.errors.EpochRefusedError`.
    """
    t0 = time.perf_counter()
    inputs = chain_inputs(snapshot, market, token_underlyings)
    funding = funding_indices(snapshot, market, funding_rule)
    accounts = snapshot.accounts
    cash = account_cash(accounts, snapshot.instruments, inputs.live, funding, inputs.settle_price)
    portfolios = engine_portfolios(
        accounts, inputs.live, snapshot.tokens, inputs.token_underlyings, cash
    )
    try:
        engine = engine_market_of(market, inputs.live, snapshot.tokens, inputs.token_underlyings)
        result = margin(portfolios, engine.snapshot, params)
        account_leaves = margin_leaves(accounts, result)
        commit = _commitments_if_disputable(
            snapshot, len(inputs.live), result, market, engine.snapshot
        )
        ileaves = instrument_leaves(
            inputs.live, result, funding, None if commit is None else commit.vector_hashes
        )
        tokens = token_table(snapshot.tokens, result)
    except RiskEngineError as exc:
        raise EpochRefusedError(f"risk engine refused the input: {exc}") from exc
    except FeedError as exc:
        raise EpochRefusedError(str(exc), reason="feed") from exc
    t1 = time.perf_counter()
    leaves: tuple[Leaf, ...] = (*account_leaves, *ileaves)
    hashes = tuple(hash_leaves(leaves))
    tree = MerkleTree(hashes)
    header = epoch_header(
        snapshot,
        epoch=epoch,
        timestamp=int(market.timestamp),
        tree=tree,
        tokens=tokens,
        funding=funding,
        settle_now=inputs.settle_now,
        inputs_hash=bytes(32) if commit is None else commit.inputs_hash,
    )
    t2 = time.perf_counter()
    return EpochBuild(
        header=header,
        tree=tree,
        account_leaves=account_leaves,
        instrument_leaves=ileaves,
        market=market,
        timings={"compute": t1 - t0, "tree": t2 - t1},
        hash_rows=np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), 32),
        arrays=result.arrays,
        capped=engine.capped + result.capped,
        commitments=commit,
    )
