"""IM covers the whole CONTINUOUS scan range, MM its own range (docs/margin-method.md §3, §6).

Books of 2-6 option legs (plus perps and tokens) on one to three underlyings, expiries from
one minute to a month, strikes exactly between two grid points, at grid points and
anywhere; the loss of every co-move ``f`` (in units of each underlying's range) on a
2,001-point grid of ``[-1, 1]``, for each vol state, is recomputed here from Black-76 and
must be at most IM (and on ``[-0.8, 0.8]`` at most MM) to 1e-6 relative.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk_engine import (
    InstrumentKind,
    InstrumentTable,
    MarketSnapshot,
    Portfolios,
    RiskArrays,
    VolSurface,
    build_risk_arrays,
    compute_margin,
    load_params,
)
from risk_engine.market import SECONDS_PER_YEAR, validate_market
from risk_engine.pricing import black76
from risk_engine.scenarios import shocked_vols

from .conftest import TS, static_floor_params

PARAMS = load_params()
REL_TOL = 1e-6
SPOTS = {"BTC": 95_000.0, "ETH": 3_300.0, "SOL": 180.0}
MINUTE = 60


def _market(
    rng: np.random.Generator, names: tuple[str, ...], expiries: list[int], daily_vol: float
) -> MarketSnapshot:
    spot = np.array([SPOTS[u] * rng.uniform(0.95, 1.05) for u in names])
    s_und, s_exp, fwd, atm, skew, curv = [], [], [], [], [], []
    for u_i, u in enumerate(names):
        for e in expiries:
            t = (e - TS) / SECONDS_PER_YEAR
            s_und.append(u)
            s_exp.append(e)
            fwd.append(spot[u_i] * np.exp(0.03 * t))
            atm.append(rng.uniform(0.3, 1.2))
            skew.append(rng.uniform(-0.3, 0.1))
            curv.append(rng.uniform(0.0, 0.6))
    returns = rng.normal(0.0, daily_vol, size=(60, len(names)))
    return MarketSnapshot(
        timestamp=TS,
        underlyings=names,
        spot=spot,
        perp_mark=spot * (1.0 + rng.uniform(-0.002, 0.002, len(names))),
        rate=0.03,
        surface=VolSurface(
            tuple(s_und),
            np.array(s_exp, dtype=np.int64),
            np.array(fwd),
            np.array(atm),
            np.array(skew),
            np.array(curv),
        ),
        returns=returns,
    )


def _world(seed: int) -> tuple[MarketSnapshot, InstrumentTable, RiskArrays, np.ndarray]:
    """A market, an instrument table (options on every underlying, perps, tokens), the
    arrays and a random book of 2-6 legs on one to three underlyings."""
    rng = np.random.default_rng(seed)
    names = tuple(rng.choice(list(SPOTS), size=int(rng.integers(1, 4)), replace=False).tolist())
    tenors = [MINUTE, 15 * MINUTE, 3600, 6 * 3600, 23 * 3600, 86400 + 600, 2 * 86400, 30 * 86400]
    expiries = sorted({TS + int(t) for t in rng.choice(tenors, size=3, replace=False)})
    market = _market(rng, names, expiries, float(rng.choice([0.01, 0.03, 0.08])))
    ranges = build_risk_arrays(
        InstrumentTable.build([InstrumentKind.PERP], [names[0]], [0.0], [0]), market, PARAMS
    ).scenarios.ranges
    kind, und, strike, expiry = [], [], [], []
    for u_i, u in enumerate(names):
        for kd in (InstrumentKind.PERP, InstrumentKind.SPOT):
            kind.append(kd)
            und.append(u)
            strike.append(0.0)
            expiry.append(0)
        for e in expiries:
            f = float(market.surface.forward[list(market.surface.expiry).index(e)])
            # strikes halfway between grid points, on grid points, and anywhere in range
            for x in (0.5, 1.5, -0.5, -2.5, 0.0, 3.0, float(rng.uniform(-10, 10))):
                k = f * (1.0 + x / 10.0 * ranges[u_i])
                for kd in (InstrumentKind.CALL, InstrumentKind.PUT):
                    kind.append(kd)
                    und.append(u)
                    strike.append(k)
                    expiry.append(e)
    ins = InstrumentTable.build(kind, und, strike, expiry)
    arrays = build_risk_arrays(ins, market, PARAMS)
    legs = int(rng.integers(2, 7))
    opts = np.flatnonzero(ins.kind <= InstrumentKind.PUT)
    chosen = rng.choice(opts, size=legs, replace=False)
    book = np.zeros((1, ins.n_instruments))
    book[0, chosen] = rng.choice([-1.0, 1.0], size=legs) * rng.uniform(0.2, 3.0, size=legs)
    book[0] /= arrays.unit_notional  # ~ USD 1 notional per unit of size, any underlying
    return market, ins, arrays, book


def continuous_losses(
    market: MarketSnapshot,
    ins: InstrumentTable,
    arrays: RiskArrays,
    book: np.ndarray,
    fractions: np.ndarray,
) -> np.ndarray:
    """Joint co-move loss (USD), shape (3 vol states, n_fractions), repriced from scratch."""
    res = validate_market(market, ins)
    x = book[0]
    held = np.flatnonzero(x)
    out = np.zeros((3, fractions.size))
    horizon = PARAMS.horizon_years
    for v_i, state in enumerate((-1, 0, 1)):
        for i in held.tolist():
            u = int(res.underlying_index[i])
            move = fractions * arrays.scenarios.ranges[u]
            kd = int(ins.kind[i])
            if kd in (InstrumentKind.SPOT, InstrumentKind.PERP):
                value = arrays.mark[i] * (1.0 + move)
            else:
                j = int(res.slice_index[i])
                t = float(res.tenor_years[i])
                sig = shocked_vols(
                    np.array([arrays.vol[i]]),
                    np.array([t]),
                    np.array([state], dtype=np.int8),
                    PARAMS.vol,
                )[0, 0]
                value = black76(
                    market.surface.forward[j] * (1.0 + move),
                    ins.strike[i],
                    max(t - horizon, 0.0),
                    sig,
                    market.rate,
                    kd == InstrumentKind.CALL,
                )
            out[v_i] += x[i] * (arrays.mark[i] - value)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1))
def test_im_and_mm_cover_every_move_of_their_continuous_range(seed: int) -> None:
    market, ins, arrays, book = _world(seed)
    r = compute_margin(Portfolios.from_dense(ins, book, [0.0]), market, PARAMS, arrays=arrays)
    f = np.linspace(-1.0, 1.0, 2001)
    loss = continuous_losses(market, ins, arrays, book, f)
    worst_im = float(loss.max())
    assert worst_im <= float(r.scan_im[0]) * (1 + REL_TOL) + 1e-9
    assert worst_im <= float(r.im[0]) * (1 + REL_TOL)
    in_mm = np.abs(f) <= PARAMS.scan.mm_range_fraction + 1e-12
    worst_mm = float(loss[:, in_mm].max())
    assert worst_mm <= float(r.scan_mm[0]) * (1 + REL_TOL) + 1e-9
    assert worst_mm <= float(r.mm[0]) * (1 + REL_TOL)


def _straddle() -> tuple[MarketSnapshot, InstrumentTable, np.ndarray]:
    """Long 1 BTC straddle, strike 95,808, spot 95,000 (halfway between two scan points of
    the 17 % range), vol 50 %, one hour to expiry: it expires within the 1-day horizon."""
    expiry = TS + 3600
    market = MarketSnapshot(
        timestamp=TS,
        underlyings=("BTC",),
        spot=np.array([95_000.0]),
        perp_mark=np.array([95_000.0]),
        rate=0.0,
        surface=VolSurface(
            ("BTC",),
            np.array([expiry], dtype=np.int64),
            np.array([95_000.0]),
            np.array([0.5]),
            np.zeros(1),
            np.zeros(1),
        ),
        returns=np.random.default_rng(0).normal(0.0, 0.01, size=(60, 1)),
    )
    ins = InstrumentTable.build(
        [InstrumentKind.CALL, InstrumentKind.PUT], ["BTC", "BTC"], [95_808.0] * 2, [expiry] * 2
    )
    return market, ins, np.array([[1.0, 1.0]])


def test_straddle_an_hour_before_expiry_is_charged_its_in_range_loss() -> None:
    market, ins, book = _straddle()
    params = static_floor_params(PARAMS, BTC=0.17)  # the strike sits between two points of it
    arrays = build_risk_arrays(ins, market, params)
    assert arrays.scenarios.ranges[0] == 0.17
    r = compute_margin(Portfolios.from_dense(ins, book, [0.0]), market, params, arrays=arrays)
    # at +0.85 % the straddle expires at its strike and is worth nothing: the loss is the mark
    mark = float(arrays.mark[0] + arrays.mark[1])
    at_strike = continuous_losses(market, ins, arrays, book, np.array([808.0 / 95_000 / 0.17]))
    assert at_strike.max() == np.float64(mark)
    worst = continuous_losses(market, ins, arrays, book, np.linspace(-1, 1, 2001)).max()
    assert float(r.im[0]) >= max(worst, mark)
    assert float(r.mm[0]) >= max(worst, mark)
    # and not much more: the pad is exact for a kinked payoff; adding it to the higher end
    # (not to the chord) costs at most half the ends' difference (~USD 0.5 here)
    assert float(r.scan_im[0]) <= mark + 1.0
