"""Slow, obvious reference: the same numbers as ``compute_margin``, one position at a time.

Scalar Python only (``math``), no risk arrays: every position of every account is
re-priced in every scenario. Used by the tests (the fast engine must agree to rounding)
and by the benchmark (the "plain per-position loop"). It shares with the fast engine
only the input validation, the scenario template (``build_scenarios``) and the
clustering of a correlation matrix (``correlation_tree``); the EWMA statistics, pricing,
shocks and aggregation are re-implemented here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .correlation import correlation_tree
from .instruments import InstrumentKind, Portfolios, validate_portfolios
from .market import MarketSnapshot, validate_market
from .params import RiskParams
from .scenarios import build_scenarios


@dataclass(frozen=True)
class ReferenceResult:
    """Per-account numbers as plain lists (same meaning as ``MarginResult``)."""

    equity: list[float]
    im: list[float]
    mm: list[float]
    scan_im: list[float]
    scan_mm: list[float]
    basis: list[float]
    short_option: list[float]
    minimum: list[float]
    concentration: list[float]


def _ncdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def black76_scalar(f: float, k: float, t: float, vol: float, r: float, call: bool) -> float:
    """Black-76 premium for one option (intrinsic at ``t <= 0``)."""
    if t <= 0.0 or vol <= 0.0:
        return max(f - k, 0.0) if call else max(k - f, 0.0)
    sd = vol * math.sqrt(t)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    df = math.exp(-r * t)
    if call:
        return df * max(f * _ncdf(d1) - k * _ncdf(d2), 0.0)
    return df * max(k * _ncdf(-d2) - f * _ncdf(-d1), 0.0)


def _delta_scalar(
    f: float, k: float, t: float, vol: float, r: float, call: bool, *, right: bool = False
) -> float:
    """dV/dF; for an expired option at its strike, the right or left derivative."""
    if t <= 0.0 or vol <= 0.0:
        if f == k:
            return (1.0 if right else 0.0) if call else (0.0 if right else -1.0)
        if call:
            return 1.0 if f > k else 0.0
        return -1.0 if f < k else 0.0
    sd = vol * math.sqrt(t)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    df = math.exp(-r * t)
    return df * _ncdf(d1) if call else df * (_ncdf(d1) - 1.0)


def _ewma_stats(returns: list[list[float]], lam: float) -> tuple[list[float], list[list[float]]]:
    n_obs = len(returns)
    n_u = len(returns[0])
    weights = [lam ** (n_obs - 1 - t) for t in range(n_obs)]
    total = sum(weights)
    cov = [[0.0] * n_u for _ in range(n_u)]
    for t in range(n_obs):
        w = weights[t] / total
        for a in range(n_u):
            for b in range(n_u):
                cov[a][b] += w * returns[t][a] * returns[t][b]
    vol = [math.sqrt(cov[a][a]) for a in range(n_u)]
    corr = [[0.0] * n_u for _ in range(n_u)]
    for a in range(n_u):
        for b in range(n_u):
            if a == b:
                corr[a][b] = 1.0
            elif vol[a] > 0 and vol[b] > 0:
                corr[a][b] = max(-1.0, min(1.0, cov[a][b] / (vol[a] * vol[b])))
    return vol, corr


def compute_margin_reference(
    portfolios: Portfolios,
    market: MarketSnapshot,
    params: RiskParams,
    *,
    accounts: list[int] | None = None,
) -> ReferenceResult:
    """Margin of the given accounts (default all) with per-position Python loops."""
    import numpy as np  # only to hand the correlation matrix to the shared clustering

    ins = portfolios.instruments
    res = validate_market(market, ins, min_observations=params.correlation.min_observations)
    validate_portfolios(portfolios, ins.n_instruments)
    scen = build_scenarios(market, params)
    n_t = scen.n_scenarios
    n_u = market.n_underlyings
    lam = params.correlation.ewma_lambda
    _, corr = _ewma_stats(market.returns.tolist(), lam)
    tree = correlation_tree(np.array(corr), params.correlation.credit_factor)
    h_years = params.horizon_years
    vp = params.vol
    r = float(market.rate)
    surf = market.surface
    spot = market.spot.tolist()
    conf = market.confidence_or_full().tolist()
    conf_th, conf_rate = params.confidence.threshold, params.confidence.rate
    perp = market.perp_mark.tolist()
    moves = scen.moves.tolist()
    covers = scen.cover.tolist()
    states = scen.vol_state.tolist()
    upar = [params.underlying(u) for u in market.underlyings]

    def vol_mult(t_years: float) -> float:
        days = max(t_years * 365.0, vp.min_tenor_days)
        p = vp.exponent_short if days <= vp.reference_days else vp.exponent_long
        return float((vp.reference_days / days) ** p)

    frac = scen.fraction.tolist()
    ranges = scen.ranges.tolist()
    segs = list(zip(scen.interval_lo.tolist(), scen.interval_hi.tolist(), strict=True))
    n_seg = len(segs)
    n_seg_mm = scen.n_mm_intervals
    n_mm = scen.n_mm
    boundary = scen.mm_boundary.tolist()

    def segment_pad(
        g: list[float],
        v: list[float],
        f: float,
        k: float,
        t_s: float,
        sig: list[float],
        fs: list[float],
        call: bool,
        seg: tuple[int, int],
        rng: float,
    ) -> float:
        """Most a long option's loss g (concave in the move) exceeds its chord on a segment."""
        a, b = seg
        h = (frac[b] - frac[a]) * rng
        p_slope = -f * _delta_scalar(fs[a], k, t_s, sig[a], r, call, right=True)
        q_slope = -f * _delta_scalar(fs[b], k, t_s, sig[b], r, call, right=False)
        chord = (g[b] - g[a]) / h
        p = max(p_slope - chord, 0.0)
        q = max(chord - q_slope, 0.0)
        tangent = h * p * q / (p + q) if p + q > 0.0 else 0.0
        return min(tangent, max(v[a], v[b]))

    out = ReferenceResult([], [], [], [], [], [], [], [], [])
    rows = range(portfolios.n_accounts) if accounts is None else accounts
    pos = portfolios.positions
    for a in rows:
        loss = [[0.0] * n_t for _ in range(n_u)]
        # per-point pads of long options: MM columns (MM segments only) and full (all)
        pad_mm = [[0.0] * n_t for _ in range(n_u)]
        pad_full = [[0.0] * n_t for _ in range(n_u)]
        minimum = 0.0
        b_up = [0.0] * n_u
        b_dn = [0.0] * n_u
        delta = [0.0] * n_u
        equity = float(portfolios.cash[a])
        som = 0.0
        start, stop = int(pos.indptr[a]), int(pos.indptr[a + 1])
        for nz in range(start, stop):
            i = int(pos.indices[nz])
            x = float(pos.data[nz])
            u = int(res.underlying_index[i])
            kind = int(ins.kind[i])
            minimum += abs(x) * params.minimum.rate * spot[u]
            if conf[u] < conf_th:  # the confidence add-on, charged like the minimum
                minimum += abs(x) * conf_rate * (1.0 - conf[u]) * spot[u]
            if kind in (InstrumentKind.SPOT, InstrumentKind.PERP):
                price = spot[u] if kind == InstrumentKind.SPOT else perp[u]
                equity += x * price
                delta[u] += x * price
                for s in range(n_t):
                    loss[u][s] += x * (price - price * (1.0 + moves[u][s])) * covers[s]
                if kind == InstrumentKind.PERP:
                    b_up[u] += -x * price * params.basis.perp
                    b_dn[u] += x * price * params.basis.perp
                continue
            j = int(res.slice_index[i])
            f = float(surf.forward[j])
            k = float(ins.strike[i])
            t = float(res.tenor_years[i])
            call = kind == InstrumentKind.CALL
            lm = math.log(k / f)
            sig = max(
                vp.floor,
                float(surf.atm_vol[j])
                + float(surf.skew[j]) * lm
                + float(surf.curvature[j]) * lm * lm,
            )
            mark = black76_scalar(f, k, t, sig, r, call)
            equity += x * mark
            delta[u] += x * _delta_scalar(f, k, t, sig, r, call) * f
            mult = vol_mult(t)
            t_s = max(t - h_years, 0.0)
            vals: list[float] = []
            sigs: list[float] = []
            fwds: list[float] = []
            for s in range(n_t):
                st = states[s]
                factor = 1.0 + vp.up * mult if st > 0 else (1.0 - vp.down * mult if st < 0 else 1.0)
                sigs.append(max(sig * factor, vp.floor))
                fwds.append(f * (1.0 + moves[u][s]))
                vals.append(black76_scalar(fwds[s], k, t_s, sigs[s], r, call))
                loss[u][s] += x * (mark - vals[s]) * covers[s]
            if x > 0:
                g_unit = [(mark - vals[s]) * covers[s] for s in range(n_t)]
                unit_mm = [0.0] * n_t
                unit_full = [0.0] * n_t
                for j in range(n_seg):
                    c = segment_pad(g_unit, vals, f, k, t_s, sigs, fwds, call, segs[j], ranges[u])
                    for end in segs[j]:
                        unit_full[end] = max(unit_full[end], c)
                        if j < n_seg_mm:
                            unit_mm[end] = max(unit_mm[end], c)
                for s in range(n_t):
                    pad_mm[u][s] += x * unit_mm[s]
                    pad_full[u][s] += x * unit_full[s]
            bshift = params.basis.forward_per_sqrt_year * math.sqrt(t)
            b_up[u] += x * (mark - black76_scalar(f * (1.0 + bshift), k, t, sig, r, call))
            b_dn[u] += x * (mark - black76_scalar(f * (1.0 - bshift), k, t, sig, r, call))
            if x < 0:
                som += -x * params.addons.short_option_minimum * spot[u]

        def scan(
            im: bool,
            loss: list[list[float]] = loss,
            pad_mm: list[list[float]] = pad_mm,
            pad_full: list[list[float]] = pad_full,
        ) -> float:
            total = 0.0
            for c, members in enumerate(tree.members):
                w = float(tree.weight[c])
                if w <= 0.0:
                    continue
                worst = 0.0
                for s in range(n_t if im else n_mm):
                    pad = pad_mm if s < n_mm else pad_full
                    worst = max(worst, sum(loss[u][s] + pad[u][s] for u in members))
                if im:
                    for s in boundary:
                        worst = max(worst, sum(loss[u][s] + pad_full[u][s] for u in members))
                total += w * worst
            return total

        basis = sum(max(0.0, b_up[u], b_dn[u]) for u in range(n_u))
        conc = sum(
            upar[u].concentration_rate
            * max(0.0, abs(delta[u]) - upar[u].concentration_threshold_usd)
            for u in range(n_u)
        )
        s_im = scan(True)
        s_mm = scan(False)
        add = basis + som + minimum + conc
        out.equity.append(equity)
        out.im.append(s_im + add)
        out.mm.append(s_mm + params.mm_scale * add)
        out.scan_im.append(s_im)
        out.scan_mm.append(s_mm)
        out.basis.append(basis)
        out.short_option.append(som)
        out.minimum.append(minimum)
        out.concentration.append(conc)
    return out


__all__ = ["ReferenceResult", "black76_scalar", "compute_margin_reference"]
