"""A signer service's own recomputation of an epoch before it signs (docs/security.md §14 #1).

:class:`EpochRecomputer` is the ``checker`` of :class:`keeper.signers.SignerService` in
``keeper signer``. Given a header and the market snapshot the keeper says it computed the
header from, it:

1. parses and validates the market (``MarketState.from_json``: the feed bounds) and
   requires ``market.timestamp == header.timestamp`` (the pipeline's rule);
2. reads the vault's state at ``header.snapshotBlock`` through its OWN
   :class:`~keeper.chain.ChainAdapter` (the service's node, never the keeper's), with the
   subaccounts created up to that block (the same leaf set ``keeper verify`` rebuilds);
3. requires ``header.epoch`` above the vault's current epoch and ``header.configVersion``
   equal to the vault's (both at the service's latest block: what ``postEpoch`` checks);
4. runs the same :func:`keeper.epoch_build.compute_epoch` and requires the token table, the
   funding updates, the settlements and the root to equal the header's, refusing with the
   first difference.

So a keeper can no longer get a root with a made-up leaf, token table, funding index or
settlement price signed. What remains trusted is the market snapshot itself: a keeper that
lies in the snapshot and the header consistently still gets its signature, unless the
service is given a ``reference`` market of its own (``reference(timestamp) ->
MarketState``): then every spot, perp mark and token price of the snapshot must be within
``max_price_deviation`` (relative, default 2 %) of the reference's, and a symbol the
reference does not quote is refused. Vols, smiles and the returns history are not compared.
``keeper signer`` has no production feed to pass as a reference yet (the project's feeds
are the simulator and a historical replay), so from the command line the market stays
trusted.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping

from keeper.chain import ChainAdapter, ChainSnapshot
from keeper.eip712 import Epoch
from keeper.epoch_build import (
    DEFAULT_FUNDING_RULE,
    DEFAULT_TOKEN_UNDERLYINGS,
    FundingRule,
    compute_epoch,
)
from keeper.errors import EpochRefusedError, FeedError, SignerRefusedError
from keeper.feeds.base import MarketState
from risk_engine import RiskParams

__all__ = ["EpochRecomputer", "first_header_difference", "market_deviation"]


def market_deviation(
    market: MarketState, reference: MarketState, max_deviation: float
) -> str | None:
    """The first price of ``market`` (underlying spot and perp mark, then token prices)
    further than ``max_deviation`` (relative to the reference) from ``reference``'s, or
    one ``reference`` does not quote; None if every price is within the tolerance."""
    own = {u: reference.underlying(u) for u in reference.symbols}
    prices: list[tuple[str, float, float | None]] = []
    for sym in market.symbols:
        u, r = market.underlying(sym), own.get(sym)
        prices.append((f"{sym} spot", u.spot, None if r is None else r.spot))
        prices.append((f"{sym} perp mark", u.perp_mark, None if r is None else r.perp_mark))
    for tok, price in sorted(market.token_prices.items()):
        prices.append((f"token {tok}", price, reference.token_prices.get(tok)))
    for name, got, ref in prices:
        if ref is None:
            return f"{name}: this service's feed does not quote it"
        if not abs(got - ref) <= max_deviation * abs(ref):  # also refuses NaN
            return (
                f"{name} {got} deviates {abs(got - ref) / abs(ref):.2%} from this service's "
                f"feed {ref} (max {max_deviation:.2%})"
            )
    return None


def first_header_difference(header: Epoch, recomputed: Epoch) -> str | None:
    """The first field where ``header`` differs from ``recomputed`` (token table, funding,
    settlements, then root; entries named by position and address/instrument), or None."""
    mine, theirs = recomputed.to_json(), header.to_json()
    for name in ("epoch", "snapshotBlock", "timestamp", "configVersion"):
        if mine[name] != theirs[name]:
            return f"header.{name}: header {theirs[name]} recomputed {mine[name]}"
    for name in ("tokens", "funding", "settlements"):
        a, b = theirs[name], mine[name]
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else None
            y = b[i] if i < len(b) else None
            if x != y:
                return f"header.{name}[{i}]: header {x} recomputed {y}"
    if mine["root"] != theirs["root"]:
        return f"header.root: header {theirs['root']} recomputed {mine['root']}"
    return None


class EpochRecomputer:
    """Recomputes an epoch from the service's own node (see the module docstring).

    Parameters
    ----------
    chain : ChainAdapter
        On the service's own node and the vault it signs for; its subaccount index is kept
        between calls (incremental, ``record=False``).
    params : RiskParams
        The same risk parameters as the keeper (the root depends on them).
    token_underlyings, funding_rule
        The same as the keeper's pipeline.
    reference : callable, optional
        ``reference(timestamp)``: the service's own market at the header's timestamp;
        None = the market snapshot is trusted.
    max_price_deviation : float
        Largest relative difference of a price from the reference's (0.02 = 2 %).
    """

    def __init__(
        self,
        chain: ChainAdapter,
        params: RiskParams,
        *,
        token_underlyings: Mapping[str, str] = DEFAULT_TOKEN_UNDERLYINGS,
        funding_rule: FundingRule = DEFAULT_FUNDING_RULE,
        reference: Callable[[int], MarketState] | None = None,
        max_price_deviation: float = 0.02,
    ) -> None:
        if not 0 <= max_price_deviation < 1:
            raise ValueError(f"max_price_deviation {max_price_deviation} not in [0, 1)")
        self.reference = reference
        self.max_price_deviation = max_price_deviation
        self.chain = chain
        self.params = params
        self.token_underlyings = token_underlyings
        self.funding_rule = funding_rule
        self._lock = threading.Lock()

    def __call__(self, header: Epoch, market_json: str | None) -> None:
        """Raise :class:`~keeper.signers.SignerRefusedError` unless ``header`` is the epoch
        this service computes from its own chain view and ``market_json``."""
        if market_json is None:
            raise SignerRefusedError("no market snapshot sent with the header: cannot recompute")
        try:
            market = MarketState.from_json(market_json)
        except (FeedError, ValueError, KeyError, TypeError) as exc:
            raise SignerRefusedError(f"market snapshot rejected: {exc}") from exc
        if int(market.timestamp) != header.timestamp:
            raise SignerRefusedError(
                f"market timestamp {market.timestamp} is not the header's {header.timestamp}"
            )
        if self.reference is not None:
            try:
                own = self.reference(header.timestamp)
            except Exception as exc:  # no own price = no signature
                raise SignerRefusedError(f"this service's feed failed: {exc}") from exc
            deviation = market_deviation(market, own, self.max_price_deviation)
            if deviation is not None:
                raise SignerRefusedError(f"market snapshot refused: {deviation}")
        with self._lock:
            at_block, latest_epoch, config_version = self._read(header.snapshot_block)
        if header.epoch <= latest_epoch:
            raise SignerRefusedError(
                f"epoch {header.epoch} is not above the vault's epoch {latest_epoch}"
            )
        if header.config_version != config_version:
            raise SignerRefusedError(
                f"configVersion {header.config_version} is not the vault's {config_version}"
            )
        snapshot = dataclasses.replace(at_block, config_version=config_version)
        try:
            build = compute_epoch(
                snapshot,
                market,
                self.params,
                epoch=header.epoch,
                token_underlyings=self.token_underlyings,
                funding_rule=self.funding_rule,
            )
        except EpochRefusedError as exc:
            raise SignerRefusedError(f"recomputation refused the epoch: {exc}") from exc
        diff = first_header_difference(header, build.header)
        if diff is not None:
            raise SignerRefusedError(f"header differs from this service's recomputation: {diff}")

    def _read(self, block: int) -> tuple[ChainSnapshot, int, int]:
        """The snapshot at ``block``, the vault's latest epoch and its config version now."""
        chain = self.chain
        try:
            head = chain.head()
            if block > head:
                raise SignerRefusedError(f"snapshot block {block} is above this node's head {head}")
            chain.index(to_block=max(block, chain.indexed_block or 0), record=False)
            return (
                chain.snapshot(block),
                chain.current_epoch("latest").epoch,
                chain.governance("latest")["config_version"],
            )
        except SignerRefusedError:
            raise
        except Exception as exc:  # node down, pruned state, wrong vault: refuse, do not sign
            raise SignerRefusedError(
                f"cannot read the vault's state at block {block}: {type(exc).__name__}: {exc}"
            ) from exc
