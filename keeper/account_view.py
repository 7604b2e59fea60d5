"""What a trader asks of one subaccount, beyond IM and MM: greeks, distance to liquidation,
maximum withdrawable, entry price and P&L. One module for ``pm margin`` and the keeper's
dashboard API, so that both show the same numbers.

Pure: every function takes the engine's input (:class:`~risk_engine.Portfolios` +
:class:`~risk_engine.MarketSnapshot`, as :func:`keeper.engine_input.engine_input` maps chain
state), the risk parameters and plain numbers; no chain, no files, no clock. The callers
read the chain (or the store) and pass what they read.

- **Greeks** are bump-and-reprice on the engine's own marks (``RiskArrays.mark``): delta
  and gamma for a relative spot move of one underlying (spot, perp mark and that
  underlying's forwards move together, the basis held), vega for one vol point on that
  underlying's smiles, theta for one day (the clock moved, everything else held). A
  collateral token is a SPOT column: delta 1 per token.
- **Distance to liquidation** re-runs the engine with the spot of ONE underlying shifted
  (others held) and finds the smallest move either way that takes the MM surplus
  (equity - MM, engine numbers) to zero: bisection after a coarse scan, so a surplus that
  is not monotone in the move still gives the nearest zero the scan brackets.
- **Maximum withdrawable** mirrors the vault's rounding (contracts/libraries/
  MarginBounds.sol: a cash withdrawal lowers the IM surplus bound 1:1, a token withdrawal
  by ``value * (1 + upShock)`` rounded up) so that the amount printed is one the vault
  accepts.
- **Entry price and P&L** replay a position's fills (the vault's ``Trade`` events, the
  account's side) at average cost: adding to a position averages the entry, reducing it
  realizes P&L at the entry, crossing zero opens the remainder at the fill price. Funding
  paid is the sum of ``FundingApplied.payment`` (positive: the account paid) plus the
  funding pending since its last update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from risk_engine import (
    InstrumentKind,
    InstrumentTable,
    MarketSnapshot,
    Portfolios,
    RiskEngineError,
    RiskParams,
    VolSurface,
    build_risk_arrays,
    compute_margin,
)
from risk_engine._typing import Float64Array, Int64Array
from risk_engine.units import WAD

__all__ = [
    "CASH_SCALE",
    "AccountGreeks",
    "Fill",
    "LiquidationDistance",
    "PositionGreeks",
    "PositionPnl",
    "account_greeks",
    "liquidation_distances",
    "max_withdrawable_cash6",
    "max_withdrawable_token",
    "mm_surplus_at",
    "position_pnl",
    "shift_spot",
    "shift_vol",
]

#: WAD USD per settlement-token unit (6 decimals): the vault's CASH_SCALE.
CASH_SCALE = 10**12
#: Relative spot bump of delta / gamma (1 %: large next to float noise, small next to the
#: curvature of an option a week out).
SPOT_BUMP = 0.01
#: Vol bump of vega: one vol point (0.01 annualized), taken as +-0.005 around the smile.
VOL_BUMP = 0.005
#: Theta horizon: one day, in seconds.
DAY = 86_400


# ------------------------------------------------------------------------------ market shifts


def _underlying_index(market: MarketSnapshot, underlying: str) -> int:
    try:
        return market.underlyings.index(underlying)
    except ValueError:
        raise RiskEngineError(
            f"unknown underlying {underlying!r} (market has {', '.join(market.underlyings)})"
        ) from None


def shift_spot(market: MarketSnapshot, underlying: str, factor: float) -> MarketSnapshot:
    """``market`` with ``underlying``'s spot, perp mark and forwards times ``factor`` (the
    basis and every other underlying held)."""
    u = _underlying_index(market, underlying)
    spot = market.spot.copy()
    perp = market.perp_mark.copy()
    spot[u] *= factor
    perp[u] *= factor
    surf = market.surface
    mine = np.array([s == underlying for s in surf.underlying], dtype=bool)
    forward = np.where(mine, surf.forward * factor, surf.forward)
    return replace(market, spot=spot, perp_mark=perp, surface=replace(surf, forward=forward))


def shift_vol(market: MarketSnapshot, underlying: str, points: float) -> MarketSnapshot:
    """``market`` with every ATM vol of ``underlying``'s smiles plus ``points`` (0.01 = one
    vol point)."""
    _underlying_index(market, underlying)
    surf = market.surface
    mine = np.array([s == underlying for s in surf.underlying], dtype=bool)
    atm = np.where(mine, surf.atm_vol + points, surf.atm_vol)
    return replace(market, surface=replace(surf, atm_vol=atm))


def _marks(portfolios: Portfolios, market: MarketSnapshot, params: RiskParams) -> Float64Array:
    out: Float64Array = build_risk_arrays(portfolios.instruments, market, params).mark
    return out


# ------------------------------------------------------------------------------ greeks


def _marks_one_day_later(
    table: InstrumentTable, held: Int64Array, market: MarketSnapshot, params: RiskParams
) -> dict[int, float]:
    """Marks of the ``held`` columns one day later (clock moved, all else held); a column
    whose option expires within the day is left out, and so are the smiles that expire."""
    later_ts = int(market.timestamp) + DAY
    keep = [int(i) for i in held if int(table.expiry[i]) == 0 or int(table.expiry[i]) > later_ts]
    if not keep:
        return {}
    surf = market.surface
    live = surf.expiry > later_ts
    later = replace(
        market,
        timestamp=later_ts,
        surface=VolSurface(
            tuple(u for u, k in zip(surf.underlying, live, strict=True) if k),
            surf.expiry[live],
            surf.forward[live],
            surf.atm_vol[live],
            surf.skew[live],
            surf.curvature[live],
        ),
    )
    sub = InstrumentTable(
        kind=table.kind[keep],
        underlying=tuple(table.underlying[i] for i in keep),
        strike=table.strike[keep],
        expiry=table.expiry[keep],
    )
    marks = build_risk_arrays(sub, later, params).mark
    return {i: float(m) for i, m in zip(keep, marks, strict=True)}


@dataclass(frozen=True)
class PositionGreeks:
    """Greeks of one held column, for the position's size (not per unit).

    ``delta``: underlying units (a 1 USD spot move changes the value by ``delta`` USD);
    ``delta_usd``: delta x spot; ``gamma``: change of delta per 1 USD spot move; ``vega``:
    USD per vol point; ``theta``: USD per day (``None`` when an expiry is less than a day
    away: the one-day reprice is not defined); ``mark``: USD per unit."""

    column: int
    label: str
    underlying: str
    size: float
    mark: float
    delta: float
    delta_usd: float
    gamma: float
    vega: float
    theta: float | None


@dataclass(frozen=True)
class AccountGreeks:
    """Per position and summed per underlying (``totals[u] = (delta, delta_usd, gamma,
    vega, theta)``; theta ``None`` if any position's is)."""

    positions: tuple[PositionGreeks, ...]
    totals: dict[str, tuple[float, float, float, float, float | None]]


def account_greeks(
    portfolios: Portfolios, market: MarketSnapshot, params: RiskParams, account: int
) -> AccountGreeks:
    """Greeks of account row ``account`` of ``portfolios`` in ``market`` (see the module
    docstring for the bumps)."""
    row = portfolios.positions[[account], :].toarray()[0]
    held = np.flatnonzero(row != 0.0)
    table = portfolios.instruments
    base = _marks(portfolios, market, params)
    theta_marks = _marks_one_day_later(table, held, market, params)
    by_und: dict[str, tuple[Float64Array, Float64Array, Float64Array, Float64Array]] = {}
    for u in sorted({table.underlying[i] for i in held}):
        up = _marks(portfolios, shift_spot(market, u, 1.0 + SPOT_BUMP), params)
        dn = _marks(portfolios, shift_spot(market, u, 1.0 - SPOT_BUMP), params)
        v_up = _marks(portfolios, shift_vol(market, u, VOL_BUMP), params)
        v_dn = _marks(portfolios, shift_vol(market, u, -VOL_BUMP), params)
        by_und[u] = (up, dn, v_up, v_dn)
    out: list[PositionGreeks] = []
    totals: dict[str, tuple[float, float, float, float, float | None]] = {}
    for i in held:
        u = table.underlying[i]
        s = float(market.spot[market.underlyings.index(u)])
        up, dn, v_up, v_dn = by_und[u]
        q = float(row[i])
        h = SPOT_BUMP * s
        delta = q * float(up[i] - dn[i]) / (2 * h)
        gamma = q * float(up[i] - 2 * base[i] + dn[i]) / (h * h)
        vega = q * float(v_up[i] - v_dn[i])
        later_mark = theta_marks.get(int(i))
        theta = None if later_mark is None else q * (later_mark - float(base[i]))
        if int(table.kind[i]) in (InstrumentKind.SPOT, InstrumentKind.PERP):
            gamma, vega, theta = 0.0, 0.0, 0.0  # linear: the bump's float noise is no greek
        g = PositionGreeks(
            int(i), table.label(int(i)), u, q, float(base[i]), delta, delta * s, gamma, vega, theta
        )
        out.append(g)
        d0, du0, g0, v0, t0 = totals.get(u, (0.0, 0.0, 0.0, 0.0, 0.0))
        totals[u] = (
            d0 + delta,
            du0 + delta * s,
            g0 + gamma,
            v0 + vega,
            None if t0 is None or theta is None else t0 + theta,
        )
    return AccountGreeks(tuple(out), totals)


# ------------------------------------------------------------------------------ liquidation


def mm_surplus_at(
    portfolios: Portfolios,
    market: MarketSnapshot,
    params: RiskParams,
    account: int,
    underlying: str,
    move: float,
) -> float:
    """Engine equity - MM (USD) of ``account`` with ``underlying``'s spot moved by
    ``move`` (-0.1 = 10 % down)."""
    one = portfolios.select([account])
    res = compute_margin(one, shift_spot(market, underlying, 1.0 + move), params)
    return float(res.equity[0] - res.mm[0])


@dataclass(frozen=True)
class LiquidationDistance:
    """The spot moves of ``underlying`` (others held) that take the MM surplus to zero:
    ``down`` (a negative fraction, -0.23 = 23 % down) and ``up``; ``None`` when none within
    the searched range (``-max_down`` .. ``+max_up``). ``spot``: the spot now; the
    liquidation prices are ``spot * (1 + down)`` and ``spot * (1 + up)``. ``surplus``: the
    MM surplus now (USD; <= 0: liquidatable already, both moves 0)."""

    underlying: str
    spot: float
    surplus: float
    down: float | None
    up: float | None

    @property
    def price_down(self) -> float | None:
        return None if self.down is None else self.spot * (1.0 + self.down)

    @property
    def price_up(self) -> float | None:
        return None if self.up is None else self.spot * (1.0 + self.up)


def _first_zero(
    f: Callable[[float], float], grid: Sequence[float], *, iterations: int = 30
) -> float | None:
    """The first ``x`` of ``grid`` (moving away from 0) with ``f(x) <= 0``, refined by
    bisection against the previous point (``f(0) > 0``); ``None`` when none."""
    prev = 0.0
    for x in grid:
        if f(x) <= 0.0:
            lo, hi = prev, x  # surplus > 0 at lo, <= 0 at hi
            for _ in range(iterations):
                mid = 0.5 * (lo + hi)
                if f(mid) > 0.0:
                    lo = mid
                else:
                    hi = mid
            return hi
        prev = x
    return None


def liquidation_distances(
    portfolios: Portfolios,
    market: MarketSnapshot,
    params: RiskParams,
    account: int,
    *,
    max_down: float = 0.95,
    max_up: float = 3.0,
    steps: int = 24,
    tolerance: float = 1e-4,
) -> tuple[LiquidationDistance, ...]:
    """One :class:`LiquidationDistance` per underlying the account holds (sorted), found by
    re-running the engine on shifted markets: a scan of ``steps`` moves per side, growing
    geometrically from 0.5 % to ``max_down`` / ``max_up``, then bisection to ``tolerance``
    (a fraction of spot) inside the first bracket."""
    row = portfolios.positions[[account], :].toarray()[0]
    table = portfolios.instruments
    held = sorted({table.underlying[i] for i in np.flatnonzero(row != 0.0)})
    one = portfolios.select([account])
    res0 = compute_margin(one, market, params)
    surplus0 = float(res0.equity[0] - res0.mm[0])
    iterations = max(1, int(np.ceil(np.log2(max(max_down, max_up) / tolerance))))
    out: list[LiquidationDistance] = []
    for u in held:
        spot = float(market.spot[market.underlyings.index(u)])
        if surplus0 <= 0.0:
            out.append(LiquidationDistance(u, spot, surplus0, 0.0, 0.0))
            continue

        def f(move: float, u: str = u) -> float:
            return mm_surplus_at(portfolios, market, params, account, u, move)

        down_grid = [-x for x in np.geomspace(0.005, max_down, steps)]
        up_grid = list(np.geomspace(0.005, max_up, steps))
        down = _first_zero(f, down_grid, iterations=iterations)
        up = _first_zero(f, up_grid, iterations=iterations)
        out.append(LiquidationDistance(u, spot, surplus0, down, up))
    return tuple(out)


# ------------------------------------------------------------------------------ withdrawable


def max_withdrawable_cash6(im_surplus_lo_wad: int) -> int:
    """The most settlement-token units (6 decimals) a ``withdrawCash`` passes with: the
    vault lowers the IM surplus bound by exactly ``amount6 * CASH_SCALE`` and needs it
    >= 0 after (rounded down to a whole unit; 0 when the bound is negative)."""
    return max(0, int(im_surplus_lo_wad)) // CASH_SCALE


def _mul_div_up(a: int, b: int, d: int) -> int:
    return -((-a * b) // d)


def _withdraw_cost_wad(amount: int, price_wad: int, up_shock_wad: int, decimals: int) -> int:
    """``MarginBounds.shockedValueUp``: ``amount * price / 10**decimals`` rounded up, times
    ``(1 + upShock)`` rounded up (WAD USD)."""
    value = _mul_div_up(amount, price_wad, 10**decimals)
    return _mul_div_up(value, WAD + up_shock_wad, WAD)


def max_withdrawable_token(
    im_surplus_lo_wad: int, balance: int, price_wad: int, up_shock_wad: int, decimals: int
) -> int:
    """The most token units (``decimals``) a ``withdraw`` passes with: at most ``balance``,
    and its cost ``shockedValueUp`` (see :func:`_withdraw_cost_wad`) no more than the IM
    surplus bound. A token without a price (``price_wad == 0``) costs nothing."""
    surplus = int(im_surplus_lo_wad)
    if balance <= 0 or surplus < 0 and price_wad > 0:
        return 0
    if price_wad <= 0:
        return int(balance)
    per_unit = int(price_wad) * (int(WAD) + int(up_shock_wad))  # WAD^2 USD / 10**decimals
    guess: int = min(int(balance), surplus * int(WAD) * 10**decimals // per_unit)
    if _withdraw_cost_wad(guess, price_wad, up_shock_wad, decimals) <= surplus:
        return guess
    # The two roundings up add up to ~2 WAD-units of cost; when a token unit is worth far
    # less than one (price_wad * (1 + up) << 10**decimals) that is billions of units, too
    # many to step down one at a time (it hung): bisect. The cost does not fall as the
    # amount grows, and cost(0) = 0 <= surplus < cost(guess).
    lo, hi = 0, guess
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _withdraw_cost_wad(mid, price_wad, up_shock_wad, decimals) <= surplus:
            lo = mid
        else:
            hi = mid
    return lo


# ------------------------------------------------------------------------------ P&L


@dataclass(frozen=True)
class Fill:
    """One fill of a position, from the account's side: ``size`` units (+ bought, - sold)
    at ``price`` USD per unit, at ``timestamp`` (unix seconds, 0 unknown)."""

    size: float
    price: float
    timestamp: int = 0


@dataclass(frozen=True)
class PositionPnl:
    """``size`` units now at average ``entry`` USD per unit (``None`` when flat);
    ``unrealized`` = size x (mark - entry); ``realized``: P&L of the reductions;
    ``funding_paid``: USD the account paid (negative: received)."""

    size: float
    entry: float | None
    mark: float | None
    unrealized: float | None
    realized: float
    funding_paid: float


def position_pnl(
    fills: Sequence[Fill],
    mark: float | None,
    funding_payments: Sequence[float] = (),
    pending_funding: float = 0.0,
) -> PositionPnl:
    """Average-cost replay of ``fills`` in order (see the module docstring);
    ``funding_payments``: the ``FundingApplied`` payments (USD, + paid), ``pending_funding``:
    size x (cumFunding now - the position's funding index), not yet applied."""
    size = 0.0
    entry = 0.0
    realized = 0.0
    for f in fills:
        q = float(f.size)
        if size == 0.0 or (size > 0) == (q > 0):
            total = size + q
            entry = (entry * size + f.price * q) / total if total != 0.0 else 0.0
            size = total
            continue
        closed = min(abs(q), abs(size)) * (1.0 if size > 0 else -1.0)
        realized += closed * (f.price - entry)
        size += q
        if abs(size) < 1e-12:
            size, entry = 0.0, 0.0
        elif (size > 0) != (closed > 0):  # crossed zero: the rest opens at the fill price
            entry = f.price
    flat = size == 0.0
    unrealized = None if flat or mark is None else size * (mark - entry)
    return PositionPnl(
        size=size,
        entry=None if flat else entry,
        mark=mark,
        unrealized=0.0 if flat else unrealized,
        realized=realized,
        funding_paid=float(sum(funding_payments)) + pending_funding,
    )
