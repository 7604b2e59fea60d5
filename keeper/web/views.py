"""What the dashboard and a front-end read: the latest mined epoch's market, instruments,
one subaccount's positions and risk, its event history, and a what-if trade.

Every number is computed by the risk engine on the latest MINED epoch's stored market (the
one the vault trusts) with the subaccount's CURRENT chain state, mapped by
:func:`keeper.engine_input.engine_input` as the epoch build maps it; greeks, distances to
liquidation, maximum withdrawable and entry price / P&L come from
:mod:`keeper.account_view`, the same numbers ``pm margin`` prints. This module only reads
(store, chain) and shapes JSON: USD amounts as JSON numbers; an integer the chain holds in
WAD is ``{"wad": "<decimal string>", "decimal": <number>}`` (keeper/openapi.py's
``WAD_AMOUNT``), the exact value beside its decimal one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from web3.types import EventData

from keeper.account_view import (
    CASH_SCALE,
    Fill,
    account_greeks,
    liquidation_distances,
    max_withdrawable_cash6,
    position_pnl,
)
from keeper.attestation import AccountLeaf, MarginProof, proof_from_json
from keeper.chain import AccountState, ChainAdapter, InstrumentInfo, Position, TokenInfo
from keeper.engine_input import EngineInput, engine_input
from keeper.epoch_build import DEFAULT_FUNDING_RULE
from keeper.errors import ViewError
from keeper.feeds.base import MarketState
from keeper.store import EpochRecord, Store
from risk_engine import InstrumentKind, RiskParams, build_risk_arrays, compute_margin, explain
from risk_engine.units import WAD

__all__ = [
    "HISTORY_EVENTS",
    "Leg",
    "LatestMarket",
    "ViewError",
    "account_body",
    "history_body",
    "instruments_body",
    "latest_market",
    "markets_body",
    "simulate_body",
]

#: The vault events an account's history shows, by the argument that names the account.
HISTORY_EVENTS: Mapping[str, tuple[str, ...]] = {
    "Trade": ("makerAccount", "takerAccount"),
    "CashDeposited": ("account",),
    "CashWithdrawn": ("account",),
    "Deposited": ("account",),
    "Withdrawn": ("account",),
    "Liquidated": ("account",),
    "FundingApplied": ("account",),
}


def _usd(wad: int) -> dict[str, Any]:
    return {"wad": str(wad), "decimal": wad / WAD}


@dataclass(frozen=True)
class LatestMarket:
    """The latest mined epoch, its stored market and the chain's instruments and tokens."""

    epoch: EpochRecord
    market: MarketState
    instruments: tuple[InstrumentInfo, ...]
    live: tuple[InstrumentInfo, ...]  # not expired at the market's timestamp


def latest_market(store: Store, chain: ChainAdapter) -> LatestMarket:
    rec = store.latest_epoch(status="mined")
    if rec is None:
        raise ViewError("no epoch mined yet", not_found=True)
    raw = store.get_market_snapshot(rec.number)
    if raw is None:
        raise ViewError(f"epoch {rec.number} has no stored market", not_found=True)
    market = MarketState.from_json(raw)
    instruments = chain.instruments()
    live = tuple(i for i in instruments if not i.expired(int(market.timestamp)))
    return LatestMarket(rec, market, instruments, live)


def _instrument_leaf_marks(store: Store, epoch: int) -> dict[int, int]:
    return {int(r.key): int(r.fields["mark"]) for r in store.get_leaves(epoch, "instrument")}


def _funding_per_hour(mark: float, spot: float) -> float:
    """USD per unit per hour a long pays at this mark and spot (the epoch build's rule)."""
    return DEFAULT_FUNDING_RULE.next_index(0, mark, spot, 3600) / WAD


def markets_body(store: Store, chain: ChainAdapter) -> dict[str, Any]:
    """Mark, IV and funding per instrument; spot and perp mark per underlying."""
    lm = latest_market(store, chain)
    m = lm.market
    ts = int(m.timestamp)
    marks = _instrument_leaf_marks(store, lm.epoch.number)
    cum = {i: int(chain.vault.functions.cumFunding(i).call()) for i in _perp_ids(lm.live)}
    rows: list[dict[str, Any]] = []
    for ins in lm.live:
        us = m.underlying(ins.underlying)
        row: dict[str, Any] = {
            "instrument": ins.id,
            "name": ins.name,
            "kind": _KIND_NAMES[ins.kind],
            "underlying": ins.underlying,
            "mark": _usd(marks.get(ins.id, 0)),
            "iv": None,
            "fundingPerHour": None,
            "cumFunding": None,
        }
        if ins.is_option:
            row["iv"] = us.smile_at(ins.expiry, ts).vol(ins.strike / WAD, min_vol=m.bounds.min_vol)
            row["strike"] = _usd(ins.strike)
            row["expiry"] = ins.expiry
        else:
            row["fundingPerHour"] = _funding_per_hour(us.perp_mark, us.spot)
            row["cumFunding"] = _usd(cum[ins.id])
        rows.append(row)
    return {
        "epoch": lm.epoch.number,
        "timestamp": ts,
        "source": m.source,
        "underlyings": [
            {"symbol": u.symbol, "spot": u.spot, "perpMark": u.perp_mark, "ivSource": u.iv_source}
            for u in m.underlyings
        ],
        "tokenPrices": dict(m.token_prices),
        "markets": rows,
    }


_KIND_NAMES = {0: "perp", 1: "call", 2: "put"}


def _perp_ids(instruments: Sequence[InstrumentInfo]) -> list[int]:
    return [i.id for i in instruments if i.kind == int(InstrumentKind.PERP)]


def instruments_body(chain: ChainAdapter) -> dict[str, Any]:
    return {
        "instruments": [
            {
                "instrument": i.id,
                "name": i.name,
                "kind": _KIND_NAMES[i.kind],
                "underlying": i.underlying,
                "strike": _usd(i.strike),
                "expiry": i.expiry,
            }
            for i in chain.instruments()
        ]
    }


# --------------------------------------------------------------------------- account


@dataclass(frozen=True)
class Leg:
    """A what-if leg: ``size`` units of ``instrument`` from the account's side (+ buy)."""

    instrument: int
    size: float


def _with_legs(
    state: AccountState, legs: Sequence[Leg], marks: Mapping[int, float]
) -> AccountState:
    """``state`` after trading ``legs`` at ``marks`` (USD per unit, by instrument id): sizes
    change and cash pays ``size x mark`` per leg, as a fill at that price would (the vault
    moves the price times the size through cash, for perps and options alike), so the
    equity the engine computes does not move. Cash is rounded to the nearest WAD unit: a
    what-if, not a settlement."""
    sizes = {p.instrument: p for p in state.positions}
    cash = state.cash
    for leg in legs:
        p = sizes.get(leg.instrument, Position(leg.instrument, 0, 0))
        sizes[leg.instrument] = Position(
            p.instrument, p.size + round(leg.size * WAD), p.funding_index
        )
        cash -= round(leg.size * marks[leg.instrument] * WAD)
    return AccountState(
        account=state.account,
        cash=cash,
        state_nonce=state.state_nonce,
        cum_lo=state.cum_lo,
        cum_hi=state.cum_hi,
        positions=tuple(sizes.values()),
        collateral=state.collateral,
    )


def _engine(
    lm: LatestMarket, chain: ChainAdapter, state: AccountState, und: Mapping[str, str]
) -> EngineInput:
    return engine_input(lm.market, lm.live, chain.tokens(), [state], token_underlyings=und)


def _risk(ei: EngineInput, params: RiskParams) -> dict[str, Any]:
    res = compute_margin(ei.portfolios, ei.market, params)
    equity, im, mm = float(res.equity[0]), float(res.im[0]), float(res.mm[0])
    dist = liquidation_distances(ei.portfolios, ei.market, params, 0)
    return {
        "equity": equity,
        "im": im,
        "mm": mm,
        "imSurplus": equity - im,
        "mmSurplus": equity - mm,
        # margin usage: the share of equity the requirement takes (> 1: below it)
        "imUsage": im / equity if equity > 0 else None,
        "mmUsage": mm / equity if equity > 0 else None,
        "liquidation": [
            {
                "underlying": d.underlying,
                "spot": d.spot,
                "moveDown": d.down,
                "moveUp": d.up,
                "priceDown": d.price_down,
                "priceUp": d.price_up,
            }
            for d in dist
        ],
    }


def _fills(chain: ChainAdapter, account: int, logs: Sequence[EventData]) -> dict[int, list[Fill]]:
    out: dict[int, list[Fill]] = {}
    for ev in logs:
        if ev["event"] != "Trade":
            continue
        a = ev["args"]
        sign = 1 if a["makerAccount"] == account else -1  # ``size`` is the maker's side
        out.setdefault(int(a["instrument"]), []).append(
            Fill(sign * a["size"] / WAD, a["price"] / WAD)
        )
    return out


def _vault_logs(chain: ChainAdapter, account: int) -> list[EventData]:
    """Every :data:`HISTORY_EVENTS` log naming ``account``, in chain order. A node's
    ``eth_getLogs`` from the deployment block: fine for a local or small deployment; a
    large one would index these in the store."""
    found: list[EventData] = []
    for name, args in HISTORY_EVENTS.items():
        event = getattr(chain.vault.events, name)
        for arg in args:
            found += event.get_logs(
                from_block=chain.deployment_block, argument_filters={arg: account}
            )
    found.sort(key=lambda e: (e["blockNumber"], e["logIndex"]))
    # a self-named event (both maker and taker filters) is read once
    seen: set[tuple[int, int]] = set()
    unique = []
    for e in found:
        key = (e["blockNumber"], e["logIndex"])
        if key not in seen:
            seen.add(key)
            unique.append(e)
    return unique


def _leaf(store: Store, epoch: int, account: int) -> MarginProof | None:
    rec = store.get_leaf(epoch, "account", account)
    if rec is None:
        return None
    return MarginProof(AccountLeaf.from_json(rec.fields), proof_from_json(list(rec.proof)))


def account_body(
    store: Store,
    chain: ChainAdapter,
    params: RiskParams,
    token_underlyings: Mapping[str, str],
    account: int,
) -> dict[str, Any]:
    """Positions (entry, mark, unrealized P&L, funding paid, greeks), totals, the risk
    array per underlying and in total, margin, maximum withdrawable and the distance to
    liquidation of ``account`` now."""
    lm = latest_market(store, chain)
    (state,) = chain.account_states([account])
    ei = _engine(lm, chain, state, token_underlyings)
    greeks = account_greeks(ei.portfolios, ei.market, params, 0)
    by_col = {g.column: g for g in greeks.positions}
    col_of = {ins.id: j for j, ins in enumerate(lm.live)}
    by_id = {ins.id: ins for ins in lm.instruments}
    logs = _vault_logs(chain, account)
    fills = _fills(chain, account, logs)
    paid: dict[int, list[float]] = {}
    for ev in logs:
        if ev["event"] == "FundingApplied":
            paid.setdefault(int(ev["args"]["instrument"]), []).append(ev["args"]["payment"] / WAD)
    positions: list[dict[str, Any]] = []
    for p in state.positions:
        if p.size == 0:
            continue
        ins = by_id[p.instrument]
        j = col_of.get(p.instrument)
        g = by_col.get(j) if j is not None else None
        pending = 0.0
        if ins.kind == int(InstrumentKind.PERP):
            cum = int(chain.vault.functions.cumFunding(ins.id).call())
            pending = p.size * (cum - p.funding_index) / WAD / WAD
        pnl = position_pnl(
            fills.get(p.instrument, []),
            None if g is None else g.mark,
            paid.get(p.instrument, []),
            pending,
        )
        positions.append(
            {
                "instrument": ins.id,
                "name": ins.name,
                "underlying": ins.underlying,
                "size": {"wad": str(p.size), "decimal": p.size / WAD},
                "entryPrice": pnl.entry,
                "mark": pnl.mark,
                "unrealizedPnl": pnl.unrealized,
                "realizedPnl": pnl.realized,
                "fundingPaid": pnl.funding_paid,
                "greeks": None
                if g is None
                else _greeks_json(g.delta, g.delta_usd, g.gamma, g.vega, g.theta),
            }
        )
    report = explain(ei.portfolios, ei.market, params, 0)
    risk = _risk(ei, params)
    leaf = _leaf(store, lm.epoch.number, account)
    im_lo: int | None = None
    if leaf is not None or not state.has_positions:
        mp = leaf or MarginProof.empty(account)
        im_lo = int(chain.vault.functions.imSurplusLo(account, mp.to_abi()).call())
    return {
        "account": account,
        "owner": chain.owner_of(account),
        "epoch": lm.epoch.number,
        "marketTimestamp": int(lm.market.timestamp),
        "cash": _usd(state.cash),
        "positions": positions,
        "collateral": [
            {"token": t.symbol, "balance": b / 10**t.decimals}
            for t, b in zip(chain.tokens(), state.collateral, strict=False)
            if b
        ],
        "greeks": {u: _greeks_json(*t) for u, t in greeks.totals.items()},
        **risk,
        "attested": None
        if leaf is None
        else {k: _usd(int(getattr(leaf.leaf, k))) for k in ("equity", "im", "mm")},
        "imSurplusLo": None if im_lo is None else _usd(im_lo),
        "maxWithdrawableCash": None
        if im_lo is None
        else max_withdrawable_cash6(im_lo) * CASH_SCALE / WAD,
        "riskArray": {
            "underlyings": list(report.underlyings),
            "scenarios": [
                {
                    "index": ln.index,
                    "words": ln.words,
                    "pnlByUnderlying": list(ln.pnl_by_underlying),
                    "pnl": ln.pnl,
                    "inMmGrid": ln.in_mm_grid,
                }
                for ln in report.lines
            ],
            "worst": report.worst_scenario,
        },
    }


def _greeks_json(
    delta: float, delta_usd: float, gamma: float, vega: float, theta: float | None
) -> dict[str, float | None]:
    return {"delta": delta, "deltaUsd": delta_usd, "gamma": gamma, "vega": vega, "theta": theta}


def simulate_body(
    store: Store,
    chain: ChainAdapter,
    params: RiskParams,
    token_underlyings: Mapping[str, str],
    account: int | None,
    legs: Sequence[Leg],
) -> dict[str, Any]:
    """IM / MM and the liquidation prices of ``account`` (None: an empty account) before
    and after ``legs``, on the latest mined epoch's market (no trade price: the legs are
    taken at the engine's mark, cash paying for them, so equity does not move)."""
    lm = latest_market(store, chain)
    live = {i.id for i in lm.live}
    for leg in legs:
        if leg.instrument not in live:
            raise ViewError(f"instrument {leg.instrument} is not live (live: {sorted(live)})")
    if account is None:
        state = AccountState(0, 0, 0, 0, 0, (), tuple(0 for _ in chain.tokens()))
    else:
        (state,) = chain.account_states([account])
    ei = _engine(lm, chain, state, token_underlyings)
    # the engine's own marks (its instrument columns are lm.live, in order)
    engine_marks = build_risk_arrays(ei.portfolios.instruments, ei.market, params).mark
    marks = {ins.id: float(engine_marks[j]) for j, ins in enumerate(lm.live)}
    before = _risk(ei, params)
    after = _risk(_engine(lm, chain, _with_legs(state, legs, marks), token_underlyings), params)
    return {
        "account": account,
        "epoch": lm.epoch.number,
        "legs": [{"instrument": leg.instrument, "size": leg.size} for leg in legs],
        "before": before,
        "after": after,
    }


def history_body(
    chain: ChainAdapter, account: int, start: int | None, end: int | None
) -> dict[str, Any]:
    """``account``'s trades, deposits, withdrawals, liquidations and funding, with block
    times (unix seconds), within ``[start, end]`` when given."""
    rows: list[dict[str, Any]] = []
    times: dict[int, int] = {}
    tokens = {t.address.lower(): t for t in chain.tokens()}
    for ev in _vault_logs(chain, account):
        n = int(ev["blockNumber"])
        if n not in times:
            times[n] = int(chain.block(n)["timestamp"])
        t = times[n]
        if (start is not None and t < start) or (end is not None and t > end):
            continue
        rows.append(
            {
                "event": ev["event"],
                "time": t,
                "block": n,
                "tx": ev["transactionHash"].to_0x_hex(),
                **_event_fields(ev, account, tokens),
            }
        )
    return {"account": account, "from": start, "to": end, "events": rows}


def _event_fields(ev: EventData, account: int, tokens: Mapping[str, TokenInfo]) -> dict[str, Any]:
    a = ev["args"]
    name = ev["event"]
    if name == "Trade":
        sign = 1 if a["makerAccount"] == account else -1
        return {
            "instrument": int(a["instrument"]),
            "size": _usd(sign * a["size"]),
            "price": _usd(a["price"]),
            "side": "maker" if sign == 1 else "taker",
        }
    if name in ("CashDeposited", "CashWithdrawn"):
        # the settlement token's 6-decimal amount, exact and in USD
        return {"amount": a["amount6"] / 10**6, "amountRaw": str(a["amount6"])}
    if name in ("Deposited", "Withdrawn"):
        t = tokens.get(str(a["token"]).lower())
        return {
            "token": a["token"],
            "amountRaw": str(a["amount"]),
            # the registered token's symbol and the amount in its units (None: unknown token)
            "symbol": None if t is None else t.symbol,
            "amount": None if t is None else a["amount"] / 10**t.decimals,
        }
    if name == "Liquidated":
        return {"liquidator": a["liquidator"], "mmSurplusHi": _usd(a["mmSurplusHi"])}
    if name == "FundingApplied":
        return {"instrument": int(a["instrument"]), "payment": _usd(a["payment"])}
    return {}
