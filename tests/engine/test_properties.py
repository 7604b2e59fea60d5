"""Properties of issue 4, with hypothesis over random markets and portfolios.

Markets come from seeds (``small_universe``: BTC and ETH options incl. one expiring within
the liquidation horizon, perps, BTC/ETH/GOV tokens); books are random sparse matrices.
``tight_params`` lowers the concentration thresholds 50x so that the superadditive
concentration add-on is active in many books.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk_engine import (
    InstrumentKind,
    InstrumentTable,
    MarketSnapshot,
    Portfolios,
    RiskArrays,
    RiskParams,
    build_risk_arrays,
    compute_margin,
    load_params,
)
from risk_engine.addons import concentration_gap_bound
from risk_engine.margin import MarginResult, per_underlying
from risk_engine.synthetic import random_portfolios

from .conftest import small_universe, tight_params

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEFAULT = load_params()
TIGHT = tight_params(DEFAULT)


@lru_cache(maxsize=64)
def _world(
    seed: int, tight: bool
) -> tuple[MarketSnapshot, InstrumentTable, RiskParams, RiskArrays]:
    # correlations from negative to almost perfect, estimated from a random history
    rho = (-0.3, 0.0, 0.5, 0.9, 0.99, None)[seed % 6]
    market, ins = small_universe(seed, rho=rho)
    params = TIGHT if tight else DEFAULT
    return market, ins, params, build_risk_arrays(ins, market, params)


def _book(seed: int, ins: InstrumentTable, market: MarketSnapshot, n: int) -> Portfolios:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 9))
    notional = float(rng.choice([3e3, 1e5, 2e6]))
    return random_portfolios(rng, ins, market, n, k, notional_usd=notional)


def _margin(
    pf: Portfolios, w: tuple[MarketSnapshot, InstrumentTable, RiskParams, RiskArrays]
) -> MarginResult:
    market, _, params, arrays = w
    return compute_margin(pf, market, params, arrays=arrays)


def _tol(res: MarginResult) -> np.ndarray:
    """Float tolerance: far below any economic amount, above double rounding noise."""
    return 1e-9 * (res.gross_notional + np.abs(res.cash) + 1.0)


world_seed = st.integers(0, 40)
book_seed = st.integers(0, 2**31 - 1)


@SETTINGS
@given(world_seed, book_seed, book_seed, st.booleans())
def test_subadditivity_im_and_mm(ws: int, s1: int, s2: int, tight: bool) -> None:
    w = _world(ws, tight)
    market, ins, _, arrays = w
    a = _book(s1, ins, market, 8)
    b = _book(s2, ins, market, 8)
    ab = Portfolios(ins, sp.csr_array(a.positions + b.positions), a.cash + b.cash)
    ra, rb, rab = _margin(a, w), _margin(b, w), _margin(ab, w)
    tol = _tol(ra) + _tol(rb)
    # the subadditive part (everything but concentration) exactly
    sub = lambda r: r.im - r.concentration  # noqa: E731
    assert np.all(sub(rab) <= sub(ra) + sub(rb) + tol)
    sub_mm = lambda r: r.mm - r.arrays.mm_scale * r.concentration  # noqa: E731
    assert np.all(sub_mm(rab) <= sub_mm(ra) + sub_mm(rb) + tol)
    # the whole requirement, up to the documented concentration gap
    gap = concentration_gap_bound(arrays.concentration_rate, arrays.concentration_threshold)
    assert np.all(rab.im <= ra.im + rb.im + gap + tol)
    assert np.all(rab.mm <= ra.mm + rb.mm + gap + tol)
    # where no book is concentrated the whole IM and MM are subadditive
    calm = (ra.concentration == 0) & (rb.concentration == 0) & (rab.concentration == 0)
    assert np.all((rab.im <= ra.im + rb.im + tol)[calm])
    assert np.all((rab.mm <= ra.mm + rb.mm + tol)[calm])
    # equity is additive
    np.testing.assert_allclose(rab.equity, ra.equity + rb.equity, rtol=0, atol=float(tol.max()))


@SETTINGS
@given(world_seed, book_seed, st.floats(0.01, 50.0))
def test_positive_homogeneity_of_the_subadditive_part(ws: int, s: int, lam: float) -> None:
    w = _world(ws, False)
    market, ins, _, _ = w
    a = _book(s, ins, market, 6)
    scaled = Portfolios(ins, sp.csr_array(a.positions * lam), a.cash * lam)
    ra, rs = _margin(a, w), _margin(scaled, w)
    np.testing.assert_allclose(
        rs.im - rs.concentration, lam * (ra.im - ra.concentration), rtol=1e-9, atol=1e-6
    )


@SETTINGS
@given(world_seed, book_seed, st.booleans())
def test_mm_below_im_and_requirements_cover_their_grid(ws: int, s: int, tight: bool) -> None:
    w = _world(ws, tight)
    market, ins, params, arrays = w
    pf = _book(s, ins, market, 16)
    r = _margin(pf, w)
    risky = r.im > 0
    assert risky.any()
    assert np.all(r.mm[risky] < r.im[risky])
    assert np.all(r.mm >= 0) and np.all(r.im >= 0)
    # IM - MM = (scan_im - scan_mm) + (1 - mm_scale) * add-ons, and the add-ons include the
    # minimum charge, > 0 for every book with a position
    addons = r.im - r.scan_im
    assert np.all(r.mm <= r.scan_im + params.mm_scale * addons + _tol(r))
    assert np.all((addons >= r.minimum - _tol(r))[risky])
    assert np.all(r.minimum[risky] > 0)
    # every joint scenario of the grid (all underlyings at template s) is covered
    g = per_underlying(pf.positions, arrays)
    joint = g[:, :, : arrays.n_scenarios].sum(axis=1)
    assert np.all(joint.max(axis=1) <= r.scan_im + _tol(r))
    assert np.all(joint.max(axis=1) <= r.im + _tol(r))
    mm_joint = joint[:, : arrays.scenarios.n_mm].max(axis=1)
    assert np.all(mm_joint <= r.scan_mm + _tol(r))
    assert np.all(mm_joint <= r.mm + _tol(r))
    # each underlying's own worst case is covered at least at its (1 - rho) weight
    single = np.maximum(g[:, :, : arrays.n_scenarios].max(axis=2), 0.0)  # (n, n_u)
    leaf_w = arrays.tree.weight[: arrays.n_underlyings]
    assert np.all(single @ leaf_w <= r.scan_im + _tol(r))
    # worst scenario really is the worst joint one
    np.testing.assert_array_equal(r.worst_scenario, joint.argmax(axis=1))


def _apply_and_bound(
    w: tuple[MarketSnapshot, InstrumentTable, RiskParams, RiskArrays],
    rng: np.random.Generator,
    pos: np.ndarray,
    cash: float,
) -> tuple[np.ndarray, float, float, float, str]:
    """One random action: new position row, new cash, lo, hi (protocol §5 formulas)."""
    _, ins, _, arrays = w
    leaves, tokens = arrays.leaves, arrays.tokens
    kind = int(rng.integers(0, 4))
    if kind == 0:  # trade leg at an off-mark price
        chain = np.flatnonzero(ins.kind != InstrumentKind.SPOT)
        i = int(rng.choice(chain))
        mark = float(leaves.mark[i])
        q = float(rng.choice([-1.0, 1.0]) * rng.lognormal(0.0, 2.0) * 1e5 / arrays.unit_notional[i])
        p = max(
            mark * (1.0 + rng.uniform(-0.3, 0.3))
            + rng.uniform(-0.01, 0.01) * arrays.unit_notional[i],
            0.0,
        )
        side, opp = (
            (leaves.loss_long[i], leaves.loss_short[i])
            if q > 0
            else (leaves.loss_short[i], leaves.loss_long[i])
        )
        new = pos.copy()
        new[i] += q
        lo = q * mark - q * p - side * abs(q)
        hi = q * mark - q * p + opp * abs(q)
        return new, cash - q * p, lo, hi, f"trade {q:+.4g} of {ins.label(i)} at {p:.6g}"
    if kind in (1, 2):  # token deposit / withdrawal
        t = int(rng.integers(0, tokens.instrument_index.size))
        i = int(tokens.instrument_index[t])
        price = float(tokens.price[t])
        x = float(rng.lognormal(0.0, 2.0) * 1e5 / price)
        if kind == 2:
            x = -min(x, max(pos[i], 0.0)) if pos[i] > 0 else -x  # withdraw (may go short)
        v = abs(x) * price
        new = pos.copy()
        new[i] += x
        down, up = float(tokens.down_shock[t]), float(tokens.up_shock[t])
        if x >= 0:
            return (
                new,
                cash,
                v * (1 - down),
                v * (1 + up),
                f"deposit {x:.4g} {tokens.underlying[t]}",
            )
        return (
            new,
            cash,
            -v * (1 + up),
            -v * (1 - down),
            f"withdraw {-x:.4g} {tokens.underlying[t]}",
        )
    c = float(rng.uniform(-1e5, 1e5))
    return pos.copy(), cash + c, c, c, f"cash {c:+.4g}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world_seed, book_seed, st.integers(1, 5), st.booleans())
def test_running_bounds_hold_for_random_actions(
    ws: int, s: int, n_actions: int, tight: bool
) -> None:
    """docs/protocol.md §5: lo <= change of (equity - req) <= hi, for IM and MM, per action
    and summed over a sequence (as cumLo/cumHi are)."""
    w = _world(ws, tight)
    market, ins, _, _ = w
    rng = np.random.default_rng(s)
    start = _book(s, ins, market, 1)
    pos = start.positions.toarray()[0]
    cash = float(start.cash[0])
    r0 = _margin(Portfolios.from_dense(ins, pos[None, :], [cash]), w)
    cum_lo = cum_hi = 0.0
    prev = r0
    log = []
    for _ in range(n_actions):
        pos, cash, lo, hi, what = _apply_and_bound(w, rng, pos, cash)
        log.append(what)
        r = _margin(Portfolios.from_dense(ins, pos[None, :], [cash]), w)
        tol = float(_tol(prev)[0] + _tol(r)[0])
        for req, req_prev in ((r.im, prev.im), (r.mm, prev.mm)):
            change = float((r.equity - req)[0] - (prev.equity - req_prev)[0])
            assert lo - tol <= change <= hi + tol, (log, lo, change, hi)
        cum_lo += lo
        cum_hi += hi
        prev = r
    tol = float(_tol(r0)[0] + _tol(prev)[0]) * n_actions
    im_change = float((prev.equity - prev.im)[0] - (r0.equity - r0.im)[0])
    mm_change = float((prev.equity - prev.mm)[0] - (r0.equity - r0.mm)[0])
    assert cum_lo - tol <= im_change <= cum_hi + tol, log
    assert cum_lo - tol <= mm_change <= cum_hi + tol, log


@SETTINGS
@given(world_seed, st.integers(0, 2**31 - 1), st.booleans())
def test_leaf_losses_dominate_standalone_unit_requirements(ws: int, s: int, tight: bool) -> None:
    w = _world(ws, tight)
    _, ins, _, arrays = w
    n = ins.n_instruments
    eye = np.vstack([np.eye(n), -np.eye(n)])
    r = _margin(Portfolios.from_dense(ins, eye, np.zeros(2 * n)), w)
    assert np.all(r.im[:n] <= arrays.leaves.loss_long)
    assert np.all(r.im[n:] <= arrays.leaves.loss_short)
    # the pad is tiny: the published loss is the unit IM plus the concentration slope
    unpadded = r.im[:n] - r.concentration[:n] + arrays.concentration_slope
    excess = arrays.leaves.loss_long - unpadded
    assert np.all(excess >= 0)
    assert np.all(excess <= 2e-9 * unpadded + 2e-12 * arrays.unit_notional)
    tok = arrays.tokens
    assert np.all(tok.down_shock >= arrays.leaves.loss_long[tok.instrument_index] / tok.price)
    assert np.all(tok.up_shock >= arrays.leaves.loss_short[tok.instrument_index] / tok.price)
    assert np.all(tok.down_shock <= 1.0)


@SETTINGS
@given(world_seed, st.floats(0.1, 300.0), st.booleans())
def test_spot_plus_short_perp_needs_70pct_less(ws: int, size: float, tight: bool) -> None:
    w = _world(ws, tight)
    market, ins, _, _ = w
    spot_i = next(
        i
        for i in range(ins.n_instruments)
        if ins.kind[i] == InstrumentKind.SPOT and ins.underlying[i] == "ETH"
    )
    perp_i = next(
        i
        for i in range(ins.n_instruments)
        if ins.kind[i] == InstrumentKind.PERP and ins.underlying[i] == "ETH"
    )
    rows = np.zeros((3, ins.n_instruments))
    rows[0, spot_i] = size
    rows[1, perp_i] = -size
    rows[2, spot_i] = size
    rows[2, perp_i] = -size
    r = _margin(Portfolios.from_dense(ins, rows, np.zeros(3)), w)
    assert r.im[2] <= 0.3 * (r.im[0] + r.im[1])


def test_subadditive_part_is_exact_on_a_concentrated_example() -> None:
    """Concentration is superadditive (documented): two books at the threshold."""
    w = _world(1, True)
    market, ins, _, arrays = w
    perp_i = next(
        i
        for i in range(ins.n_instruments)
        if ins.kind[i] == InstrumentKind.PERP and ins.underlying[i] == "BTC"
    )
    u = int(arrays.underlying_index[perp_i])
    at_threshold = arrays.concentration_threshold[u] / arrays.delta_notional[perp_i]
    rows = np.zeros((2, ins.n_instruments))
    rows[0, perp_i] = at_threshold
    rows[1, perp_i] = 2 * at_threshold
    r = _margin(Portfolios.from_dense(ins, rows, np.zeros(2)), w)
    assert r.concentration[0] == 0.0
    gap = r.im[1] - 2 * r.im[0]
    expected = arrays.concentration_rate[u] * arrays.concentration_threshold[u]
    assert abs(gap - expected) <= 1e-6 * expected
    assert gap <= concentration_gap_bound(arrays.concentration_rate, arrays.concentration_threshold)
    del market


def test_bounds_use_params_of_the_same_epoch() -> None:
    """The leaf numbers change with the market: a sanity check that they are not constants."""
    a = _world(2, False)[3]
    b = build_risk_arrays(
        a.instruments,
        dataclasses.replace(_world(2, False)[0], spot=_world(2, False)[0].spot * 1.5),
        DEFAULT,
    )
    assert not np.allclose(a.leaves.loss_long, b.leaves.loss_long)
