"""Chain state + market feed -> the risk engine's input, one mapping for every caller.

The epoch build (``keeper/epoch_build.py``) prices every indexed subaccount with it, and
``scripts/margin_view.py`` prices one subaccount's current chain state in an epoch's stored
market with the same function, so both sides value the same inputs (docs/protocol.md §3):

- one engine column per chain instrument given (the build gives the live ones), sizes
  WAD -> units; one smile slice per (underlying, expiry) of those options;
- one SPOT column per registered collateral token, its underlying from the token's
  symbol (``WETH -> ETH``), balance in whole tokens, so spot collateral nets against
  derivatives on the same underlying;
- underlyings: the feed's (sorted), then token-only ones (GOV) priced at the token price
  with ``perp_mark = spot``;
- cash: WAD USD per account as the caller settles it (the build adds pending funding and
  expired options' payoffs first);
- caps: a valid but extreme market value is capped at its
  :class:`~keeper.feeds.FeedBounds` limit, never refused (docs/operations.md, "Refuse or
  cap"), and listed as a :class:`~risk_engine.CappedValue`: a log return beyond
  ``max_abs_return`` (``return[GOV]``), a perp or forward basis beyond ``max_abs_basis``
  (``perp_basis[ETH]``, ``forward_basis[ETH@<expiry>]``), an ATM vol outside
  ``[min_vol, max_vol]``, a skew or curvature beyond its bound (``atm_vol[ETH@<expiry>]``,
  ``skew[...]``, ``curvature[...]``). The stored market keeps the raw values, so
  ``keeper verify`` and every signer recompute the same caps;
- confidence: the feed's confidence per symbol (``MarketState.confidence``, the composite
  feed's) becomes ``MarketSnapshot.confidence`` per engine underlying (a token-only one
  under its own symbol, else its token's, else full); none when the feed gave none, so the
  engine's confidence add-on is zero (risk_engine/addons.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from keeper.chain import AccountState, InstrumentInfo, TokenInfo
from keeper.feeds.base import FeedBounds, MarketState, Smile
from risk_engine import (
    CappedValue,
    InstrumentKind,
    InstrumentTable,
    MarketSnapshot,
    Portfolios,
    VolSurface,
)
from risk_engine._typing import Float64Array
from risk_engine.units import WAD

__all__ = [
    "EngineInput",
    "EngineMarket",
    "engine_input",
    "engine_market",
    "engine_market_of",
    "engine_portfolios",
]


@dataclass(frozen=True)
class EngineInput:
    """The risk engine's input: portfolios (their instrument table inside) and market;
    ``capped``: the market values capped on the way (see the module docstring)."""

    portfolios: Portfolios
    market: MarketSnapshot
    capped: tuple[CappedValue, ...] = ()


@dataclass(frozen=True)
class EngineMarket:
    """The engine's market snapshot and the feed values capped to build it."""

    snapshot: MarketSnapshot
    capped: tuple[CappedValue, ...]


def _cap(name: str, raw: float, lo: float, hi: float, capped: list[CappedValue]) -> float:
    """``raw`` clipped to ``[lo, hi]``; a clipped value is appended to ``capped``."""
    used = min(max(raw, lo), hi)
    if used != raw:
        capped.append(CappedValue(name, float(raw), float(used)))
    return used


def _capped_smile(u: str, s: Smile, spot: float, b: FeedBounds, capped: list[CappedValue]) -> Smile:
    """The smile slice with its forward basis, ATM vol, skew and curvature capped."""
    at = f"{u}@{s.expiry}"
    basis = _cap(
        f"forward_basis[{at}]", s.forward / spot - 1.0, -b.max_abs_basis, b.max_abs_basis, capped
    )
    forward = s.forward if basis == s.forward / spot - 1.0 else spot * (1.0 + basis)
    return Smile(
        s.expiry,
        forward,
        _cap(f"atm_vol[{at}]", s.atm_vol, b.min_vol, b.max_vol, capped),
        _cap(f"skew[{at}]", s.skew, -b.max_abs_skew, b.max_abs_skew, capped),
        _cap(f"curvature[{at}]", s.curvature, -b.max_abs_curvature, b.max_abs_curvature, capped),
    )


def _capped_returns(
    u: str, returns: Float64Array, b: FeedBounds, capped: list[CappedValue]
) -> Float64Array:
    """The return column with every ``|log return| > max_abs_return`` clipped (one
    CappedValue per underlying: the largest raw move)."""
    r = np.asarray(returns, dtype=np.float64)
    big = np.abs(r) > b.max_abs_return
    if not big.any():
        return r
    worst = float(r[np.argmax(np.abs(r))])
    capped.append(
        CappedValue(
            f"return[{u}]", worst, float(np.clip(worst, -b.max_abs_return, b.max_abs_return))
        )
    )
    return np.clip(r, -b.max_abs_return, b.max_abs_return)


def _engine_underlyings(
    market: MarketState,
    instruments: Sequence[InstrumentInfo],
    token_und: Sequence[str],
) -> list[str]:
    """Feed underlyings first (sorted), then token-only ones (GOV)."""
    derivs = set(market.symbols)
    wanted = derivs | set(token_und) | {ins.underlying for ins in instruments}
    return sorted(wanted, key=lambda u: (u not in derivs, u))


def engine_portfolios(
    accounts: Sequence[AccountState],
    instruments: Sequence[InstrumentInfo],
    tokens: Sequence[TokenInfo],
    token_und: Sequence[str],
    cash: Sequence[int],
) -> Portfolios:
    """One row per subaccount; one column per instrument of ``instruments`` (sizes WAD ->
    units), then one SPOT column per token (balances in whole tokens). A position in an
    instrument not among the columns is left out (an expired option: its payoff is in
    ``cash``, WAD USD per account)."""
    n_ins = len(instruments)
    table = InstrumentTable.build(
        kind=[ins.kind for ins in instruments] + [int(InstrumentKind.SPOT)] * len(token_und),
        underlying=[ins.underlying for ins in instruments] + list(token_und),
        strike=[ins.strike / WAD for ins in instruments] + [0.0] * len(token_und),
        expiry=[ins.expiry if ins.is_option else 0 for ins in instruments] + [0] * len(token_und),
    )
    col_of = {ins.id: j for j, ins in enumerate(instruments)}
    decimals = [10**t.decimals for t in tokens]
    rows: list[int] = []
    cols: list[int] = []
    data: list[float] = []
    for r, a in enumerate(accounts):
        for p in a.positions:
            if p.size != 0 and p.instrument in col_of:
                rows.append(r)
                cols.append(col_of[p.instrument])
                data.append(p.size / WAD)
        for k, bal in enumerate(a.collateral):
            if bal:
                rows.append(r)
                cols.append(n_ins + k)
                data.append(bal / decimals[k])
    return Portfolios(
        table,
        sp.csr_array(
            (np.array(data, dtype=np.float64), (np.array(rows), np.array(cols))),
            shape=(len(accounts), table.n_instruments),
        ),
        np.array([c / WAD for c in cash], dtype=np.float64),
    )


def engine_market(
    market: MarketState,
    underlyings: Sequence[str],
    live_options: Sequence[InstrumentInfo],
    token_symbol_of: Mapping[str, str],
) -> EngineMarket:
    """Engine snapshot of ``underlyings``: derivative underlyings from the feed, token-only
    underlyings (GOV) from the token price with ``perp_mark = spot``; one smile slice per
    (underlying, expiry) of ``live_options``; extreme values capped (module docstring).
    Raises :class:`~keeper.errors.FeedError` (an underlying or expiry the market does not
    quote)."""
    b = market.bounds
    capped: list[CappedValue] = []
    spot, perp, returns = [], [], []
    derivs = set(market.symbols)
    for u in underlyings:
        if u in derivs:
            us = market.underlying(u)
            spot.append(us.spot)
            basis = _cap(
                f"perp_basis[{u}]", us.perp_basis, -b.max_abs_basis, b.max_abs_basis, capped
            )
            perp.append(us.perp_mark if basis == us.perp_basis else us.spot * (1.0 + basis))
        else:
            price = market.token_price(token_symbol_of[u])
            spot.append(price)
            perp.append(price)
        returns.append(_capped_returns(u, market.returns_of(u), b, capped))
    slices: dict[tuple[str, int], Smile] = {}
    for ins in live_options:
        key = (ins.underlying, ins.expiry)
        if key not in slices:
            us = market.underlying(ins.underlying)
            slices[key] = _capped_smile(
                ins.underlying, us.smile_at(ins.expiry, market.timestamp), us.spot, b, capped
            )
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
    snapshot = MarketSnapshot(
        timestamp=int(market.timestamp),
        underlyings=tuple(underlyings),
        spot=np.array(spot, dtype=np.float64),
        perp_mark=np.array(perp, dtype=np.float64),
        rate=float(market.rate),
        surface=surface,
        returns=np.column_stack(returns).astype(np.float64),
        # the feed's confidence per underlying (a token-only one under its own symbol or
        # its token's); None when the feed gave none, so the engine sees full confidence
        confidence=np.array(
            [
                market.confidence.get(u, market.confidence.get(token_symbol_of.get(u, u), 1.0))
                for u in underlyings
            ],
            dtype=np.float64,
        )
        if market.confidence
        else None,
    )
    return EngineMarket(snapshot, tuple(capped))


def engine_market_of(
    market: MarketState,
    instruments: Sequence[InstrumentInfo],
    tokens: Sequence[TokenInfo],
    token_und: Sequence[str],
) -> EngineMarket:
    """:func:`engine_market` of ``instruments`` (their options' smiles) and ``tokens``
    (``token_und``: each token's underlying, in token order; a token-only underlying is
    priced by the first token that maps to it)."""
    token_symbol_of: dict[str, str] = {}
    for tok, u in zip(tokens, token_und, strict=True):
        token_symbol_of.setdefault(u, tok.symbol)
    return engine_market(
        market,
        _engine_underlyings(market, instruments, token_und),
        [ins for ins in instruments if ins.is_option],
        token_symbol_of,
    )


def engine_input(
    market: MarketState,
    instruments: Sequence[InstrumentInfo],
    tokens: Sequence[TokenInfo],
    accounts: Sequence[AccountState],
    *,
    token_underlyings: Mapping[str, str],
    cash: Sequence[int] | None = None,
) -> EngineInput:
    """The chain state -> engine mapping of the epoch build, for one set of accounts:
    columns ``instruments`` then one SPOT per token (``token_underlyings``: symbol ->
    underlying, a missing symbol raises ``KeyError``), the market as the build maps it.
    ``cash``: WAD USD per account, default each account's own (no funding or settlement
    adjustment). Raises :class:`~keeper.errors.FeedError` (a price the market lacks)
    and :class:`~risk_engine.RiskEngineError`."""
    token_und = [token_underlyings[t.symbol] for t in tokens]
    ports = engine_portfolios(
        accounts,
        instruments,
        tokens,
        token_und,
        [a.cash for a in accounts] if cash is None else cash,
    )
    em = engine_market_of(market, instruments, tokens, token_und)
    return EngineInput(ports, em.snapshot, em.capped)
