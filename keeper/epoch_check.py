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
settlement price signed. The market snapshot is checked too when the service has a feed of
its own (``reference(timestamp) -> MarketState``; ``keeper signer --feed-config``, built
from the ``[feed]`` table of that file, docs/operations.md): :func:`market_deviation`
refuses a snapshot

- whose spot, perp mark or token price is further than ``max_price_deviation``
  (relative, default 2 %) from the service's own;
- whose smile vols differ from the service's by more than ``max_vol_deviation``
  (absolute, in vol: 0.05 = 5 vol points, default), compared at every expiry of the
  snapshot at log-moneyness -0.2, 0 and +0.2 (the service's smile interpolated to that
  expiry);
- whose return history differs from the service's by more than ``max_return_deviation``
  (absolute log return per observation, default 0.01) on the newest observations both
  have, or has another return interval;
- or that quotes a symbol (or vols, or returns of a symbol) the service's feed does not.

A keeper must then lie to a quorum of services that each read the market themselves
(docs/security.md section 14). Without a reference the market stays trusted.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

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

__all__ = ["EpochRecomputer", "MarketTolerances", "first_header_difference", "market_deviation"]


@dataclass(frozen=True)
class MarketTolerances:
    """How far a keeper's market may be from a signer's own (module docstring): prices
    relative, vols absolute (vol points as decimals), returns absolute (log return)."""

    price: float = 0.02
    vol: float = 0.05
    returns: float = 0.01

    def __post_init__(self) -> None:
        if not 0 <= self.price < 1 or not 0 <= self.vol < 5 or not 0 <= self.returns < 3:
            raise ValueError(f"tolerances out of range: {self}")


#: Log-moneyness points where a snapshot's smile is compared with the service's.
VOL_CHECK_POINTS = (-0.2, 0.0, 0.2)


def _vol_deviation(market: MarketState, reference: MarketState, tol: float) -> str | None:
    """The first smile vol of ``market`` further than ``tol`` from ``reference``'s."""
    for sym in market.symbols:
        u = market.underlying(sym)
        if not u.smiles:
            continue
        if sym not in reference.symbols or not reference.underlying(sym).smiles:
            return f"{sym} vols: this service's feed does not quote them"
        own = reference.underlying(sym)
        for s in u.smiles:
            r = own.smile_at(s.expiry, market.timestamp)
            for k in VOL_CHECK_POINTS:
                got = s.atm_vol + s.skew * k + s.curvature * k * k
                ref = r.atm_vol + r.skew * k + r.curvature * k * k
                if not abs(got - ref) <= tol:  # also refuses NaN
                    return (
                        f"{sym} vol at expiry {s.expiry}, log-moneyness {k:+.1f}: {got:.4f} vs "
                        f"this service's {ref:.4f} (max difference {tol})"
                    )
    return None


def _return_deviation(market: MarketState, reference: MarketState, tol: float) -> str | None:
    """The first return of ``market`` further than ``tol`` from ``reference``'s (newest
    observations aligned), or a symbol or interval the reference does not have."""
    if market.return_interval_seconds != reference.return_interval_seconds:
        return (
            f"returns every {market.return_interval_seconds} s, this service's feed every "
            f"{reference.return_interval_seconds} s"
        )
    for sym in market.return_symbols:
        if sym not in reference.return_symbols:
            return f"returns of {sym}: this service's feed does not have them"
        got, ref = market.returns_of(sym), reference.returns_of(sym)
        n = min(len(got), len(ref))
        diff = np.abs(got[len(got) - n :] - ref[len(ref) - n :])
        if n and not float(diff.max()) <= tol:
            i = int(np.argmax(diff))
            return (
                f"{sym} return {n - i} observations back: {got[len(got) - n + i]:.5f} vs this "
                f"service's {ref[len(ref) - n + i]:.5f} (max difference {tol})"
            )
    return None


def market_deviation(
    market: MarketState,
    reference: MarketState,
    max_deviation: float,
    *,
    max_vol_deviation: float | None = None,
    max_return_deviation: float | None = None,
) -> str | None:
    """The first value of ``market`` too far from ``reference``'s (module docstring):
    prices (underlying spot and perp mark, then token prices) beyond ``max_deviation``
    relative, then smile vols beyond ``max_vol_deviation`` and returns beyond
    ``max_return_deviation`` (absolute; None = not compared), or a value ``reference``
    does not quote; None if everything is within its tolerance."""
    found = _price_deviation(market, reference, max_deviation)
    if found is None and max_vol_deviation is not None:
        found = _vol_deviation(market, reference, max_vol_deviation)
    if found is None and max_return_deviation is not None:
        found = _return_deviation(market, reference, max_return_deviation)
    return found


def _price_deviation(
    market: MarketState, reference: MarketState, max_deviation: float
) -> str | None:
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
    for name in ("epoch", "snapshotBlock", "timestamp", "configVersion", "inputsHash"):
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
    tolerances : MarketTolerances, optional
        Price, vol and return tolerances against the reference (wins over
        ``max_price_deviation``); without it only prices are compared.
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
        tolerances: MarketTolerances | None = None,
    ) -> None:
        if not 0 <= max_price_deviation < 1:
            raise ValueError(f"max_price_deviation {max_price_deviation} not in [0, 1)")
        self.reference = reference
        self.tolerances = tolerances
        self.max_price_deviation = (
            tolerances.price if tolerances is not None else max_price_deviation
        )
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
            tol = self.tolerances
            deviation = market_deviation(
                market,
                own,
                self.max_price_deviation,
                max_vol_deviation=None if tol is None else tol.vol,
                max_return_deviation=None if tol is None else tol.returns,
            )
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
