"""Risk arrays: every instrument priced ONCE per scenario (SPAN's risk array).

``build_risk_arrays(instruments, market, params)`` returns a small, shared
:class:`RiskArrays` (n_instruments x ~75 floats) that ``compute_margin`` aggregates per
account with one sparse matrix product. It is all a shard of accounts needs besides its
own positions: pass it to ``compute_margin(..., arrays=...)`` on any worker.

Columns of ``RiskArrays.loss`` (USD per unit LONG, positive = loss):
``[0, n_scenarios)`` scenario losses (times the scenario's cover), then
``[n_scenarios, n_scan_columns)`` the losses of the ``mm_boundary`` points again (their
IM-padded copies), then ``col_basis_up``, ``col_basis_down`` (basis shock losses),
``col_delta`` (delta notional, USD per unit) and ``col_mark`` (mark), so that one product
gives every per-underlying quantity of every account.

``RiskArrays.pad`` (same columns, USD per unit LONG, 0 outside the scan columns) is the
continuous-range pad of each grid point: the largest of the pads of the segments the point
ends (MM segments only for an MM column), where a segment's pad bounds how far a long
option's loss rises above the chord between the segment's ends. A column's bound for a book
is ``sum_i x_i loss[i, k] + sum_i max(x_i, 0) pad[i, k]``; the largest of them covers every
move of the continuous range (docs/margin-method.md §3, proof in §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._typing import BoolArray, Float64Array, Int64Array
from .addons import concentration_slope, confidence_rate
from .correlation import CorrelationTree, correlation_tree, ewma_correlation, ewma_volatility
from .instruments import InstrumentKind, InstrumentTable
from .leaves import InstrumentLeaves, TokenTable, pad_loss, token_table
from .market import MarketSnapshot, smile_vol, validate_market
from .params import RiskParams
from .pricing import black76, black76_delta, black76_delta_one_sided
from .scenarios import (
    CappedValue,
    ScenarioSet,
    build_scenarios,
    scan_ranges_capped,
    shocked_vols,
    token_vol_haircuts_capped,
)


@dataclass(frozen=True)
class RiskArrays:
    """Shared per-instrument arrays for one (instruments, market, params).

    Attributes
    ----------
    timestamp : int
        ``market.timestamp`` they were built for.
    instruments : InstrumentTable
    underlying_index : Int64Array, shape (n_instruments,)
    mark : Float64Array, shape (n_instruments,), USD per unit
    unit_notional : Float64Array, shape (n_instruments,)
        Spot of the instrument's underlying (USD): gross notional of one unit.
    vol : Float64Array, shape (n_instruments,)
        Smile vol at the base (NaN for SPOT/PERP).
    loss : Float64Array, shape (n_instruments, n_scan_columns + 4), C-contiguous
        See the module docstring for the column layout.
    scenarios : ScenarioSet
    correlation : Float64Array, shape (n_underlyings, n_underlyings), EWMA estimate
    volatility : Float64Array, shape (n_underlyings,), daily EWMA vol
    tree : CorrelationTree
    short_option_charge : Float64Array, shape (n_instruments,), USD per unit short
    concentration_rate, concentration_threshold : Float64Array, shape (n_underlyings,)
    concentration_slope : Float64Array, shape (n_instruments,), USD per unit
    pad : Float64Array, shape (n_instruments, n_scan_columns + 4), C-contiguous
        Continuous-range pad per unit LONG of each scan column (>= 0; 0 for SPOT/PERP,
        for the extremes and outside the scan columns).
    minimum_charge : Float64Array, shape (n_instruments,)
        Minimum charge per unit of ``|size|`` (USD): ``minimum_charge.rate`` x spot plus
        the confidence add-on ``confidence_charge``.
    confidence_charge : Float64Array, shape (n_instruments,)
        The confidence add-on per unit of ``|size|`` (USD), inside ``minimum_charge``;
        0 where the feed's confidence is at or above ``confidence.threshold``.
    capped : tuple[CappedValue, ...]
        Values the engine capped for this market (vol-scaled scan ranges, token vol
        haircuts above ``scan.max_range``); empty in normal markets.
    mm_scale : float
    leaves : InstrumentLeaves
    tokens : TokenTable
    params : RiskParams
        The parameters they were built with.
    """

    timestamp: int
    instruments: InstrumentTable
    underlying_index: Int64Array
    mark: Float64Array
    unit_notional: Float64Array
    vol: Float64Array
    loss: Float64Array
    scenarios: ScenarioSet
    correlation: Float64Array
    volatility: Float64Array
    tree: CorrelationTree
    short_option_charge: Float64Array
    concentration_rate: Float64Array
    concentration_threshold: Float64Array
    concentration_slope: Float64Array
    pad: Float64Array
    minimum_charge: Float64Array
    confidence_charge: Float64Array
    capped: tuple[CappedValue, ...]
    mm_scale: float
    leaves: InstrumentLeaves
    tokens: TokenTable
    params: RiskParams

    @property
    def n_instruments(self) -> int:
        return int(self.loss.shape[0])

    @property
    def n_underlyings(self) -> int:
        return len(self.scenarios.underlyings)

    @property
    def n_scenarios(self) -> int:
        return self.scenarios.n_scenarios

    @property
    def n_scan_columns(self) -> int:
        return self.scenarios.n_scan_columns

    @property
    def col_basis_up(self) -> int:
        return self.n_scan_columns

    @property
    def col_basis_down(self) -> int:
        return self.n_scan_columns + 1

    @property
    def col_delta(self) -> int:
        return self.n_scan_columns + 2

    @property
    def col_mark(self) -> int:
        return self.n_scan_columns + 3

    @cached_property
    def stacked(self) -> Float64Array:
        """``[loss; loss + pad]``, shape (2 n_instruments, n_columns): the right-hand side of
        the one sparse product that gives signed losses plus long-position pads (a long
        position in a padded instrument reads the second half)."""
        out: Float64Array = np.ascontiguousarray(np.vstack([self.loss, self.loss + self.pad]))
        return out

    @property
    def n_joint_scenarios(self) -> int:
        """Joint scenarios evaluated per account: template size x clusters with weight > 0."""
        return self.n_scenarios * int(np.count_nonzero(self.tree.weight > 0))

    @cached_property
    def has_pad(self) -> BoolArray:
        """Instruments with a non-zero continuous-range pad (options), shape (n_instruments,)."""
        out: BoolArray = np.any(self.pad > 0.0, axis=1)
        return out

    @property
    def delta_notional(self) -> Float64Array:
        """Delta notional per unit (USD), shape (n_instruments,)."""
        out: Float64Array = self.loss[:, self.col_delta]
        return out


def build_risk_arrays(
    instruments: InstrumentTable, market: MarketSnapshot, params: RiskParams
) -> RiskArrays:
    """Validate the inputs, price every instrument once per scenario, derive the leaves.

    Raises
    ------
    InvalidInputError
        Any bad market or instrument field (see :func:`risk_engine.market.validate_market`).
    UnsoundBoundError
        A token's required downShock exceeds 100 %: unreachable with parameters that passed
        :func:`risk_engine.params.params_from_dict` (it bounds every term below 1); a crash
        caps the vol-scaled terms instead and lists them in ``capped``.
    """
    res = validate_market(market, instruments, min_observations=params.correlation.min_observations)
    n = instruments.n_instruments
    und = res.underlying_index
    kind = instruments.kind
    scen = build_scenarios(market, params)
    n_t = scen.n_scenarios
    horizon = params.horizon_years
    spot_i = market.spot[und]
    perp_i = market.perp_mark[und]

    mark = np.empty(n)
    vol = np.full(n, np.nan)
    delta = np.empty(n)
    value = np.empty((n, n_t))
    basis_up = np.zeros(n)
    basis_dn = np.zeros(n)
    moves = scen.moves[und]  # (n, n_t)
    n_scan = scen.n_scan_columns
    pad = np.zeros((n, n_scan + 4))

    is_spot = kind == InstrumentKind.SPOT
    is_perp = kind == InstrumentKind.PERP
    is_call = kind == InstrumentKind.CALL
    is_opt = is_call | (kind == InstrumentKind.PUT)

    mark[is_spot] = spot_i[is_spot]
    delta[is_spot] = spot_i[is_spot]
    value[is_spot] = spot_i[is_spot, None] * (1.0 + moves[is_spot])

    mark[is_perp] = perp_i[is_perp]
    delta[is_perp] = perp_i[is_perp]
    value[is_perp] = perp_i[is_perp, None] * (1.0 + moves[is_perp])
    basis_up[is_perp] = -perp_i[is_perp] * params.basis.perp
    basis_dn[is_perp] = perp_i[is_perp] * params.basis.perp

    o = np.flatnonzero(is_opt)
    if o.size:
        surf = market.surface
        sl = res.slice_index[o]
        fwd = surf.forward[sl]
        k = instruments.strike[o]
        t = res.tenor_years[o]
        call = is_call[o]
        sig = smile_vol(
            surf.atm_vol[sl], surf.skew[sl], surf.curvature[sl], np.log(k / fwd), params.vol.floor
        )
        vol[o] = sig
        m = black76(fwd, k, t, sig, market.rate, call)
        mark[o] = m
        delta[o] = black76_delta(fwd, k, t, sig, market.rate, call) * fwd
        sig_s = shocked_vols(sig, t, scen.vol_state, params.vol)
        t_s = np.maximum(t - horizon, 0.0)
        f_s = fwd[:, None] * (1.0 + moves[o])
        value[o] = black76(f_s, k[:, None], t_s[:, None], sig_s, market.rate, call[:, None])
        seg_pad = _segment_pad(
            value[o], m, fwd, k, t_s, sig_s, f_s, call, market.rate, scen, und[o]
        )
        pad[o, :n_scan] = _point_pad(seg_pad, scen)
        b = params.basis.forward_per_sqrt_year * np.sqrt(t)
        basis_up[o] = m - black76(fwd * (1.0 + b), k, t, sig, market.rate, call)
        basis_dn[o] = m - black76(fwd * (1.0 - b), k, t, sig, market.rate, call)

    loss = np.empty((n, n_scan + 4))
    loss[:, :n_t] = (mark[:, None] - value) * scen.cover[None, :]
    loss[:, n_t:n_scan] = loss[:, scen.mm_boundary]
    loss[:, n_scan] = basis_up
    loss[:, n_scan + 1] = basis_dn
    loss[:, n_scan + 2] = delta
    loss[:, n_scan + 3] = mark
    loss = np.ascontiguousarray(loss)

    upar = [params.underlying(u) for u in market.underlyings]
    conc_rate = np.array([p.concentration_rate for p in upar])
    conc_thr = np.array([p.concentration_threshold_usd for p in upar])
    slope = concentration_slope(delta, conc_rate[und])
    som = np.where(is_opt, params.addons.short_option_minimum * spot_i, 0.0)
    conf_rate = confidence_rate(
        market.confidence_or_full(), params.confidence.threshold, params.confidence.rate
    )
    confidence = conf_rate[und] * spot_i
    minimum = params.minimum.rate * spot_i + confidence
    pad = np.ascontiguousarray(pad)

    corr = ewma_correlation(market.returns, params.correlation.ewma_lambda)
    tree = correlation_tree(corr, params.correlation.credit_factor)
    dvol = ewma_volatility(market.returns, params.correlation.ewma_lambda)

    # standalone IM of +-1 unit: the tree weights along a path sum to 1, so the scan of a
    # single instrument is its own worst case (a long one's includes the pads, a short one
    # has none); plus basis, short minimum, minimum charge, conc. slope.
    scen_loss = loss[:, :n_scan]
    sub_long = (
        np.maximum((scen_loss + pad[:, :n_scan]).max(axis=1), 0.0)
        + np.maximum(np.maximum(basis_up, basis_dn), 0.0)
        + minimum
    )
    sub_short = (
        np.maximum((-scen_loss).max(axis=1), 0.0)
        + np.maximum(np.maximum(-basis_up, -basis_dn), 0.0)
        + som
        + minimum
    )
    loss_long = pad_loss(sub_long + slope, spot_i)
    loss_short = pad_loss(sub_short + slope, spot_i)
    leaves = InstrumentLeaves(mark=mark, loss_long=loss_long, loss_short=loss_short, chain=~is_spot)

    tok = np.flatnonzero(is_spot)
    tok_und = und[tok]
    _, capped_ranges = scan_ranges_capped(market, params)
    vol_haircut, capped_tokens = token_vol_haircuts_capped(
        market, params, frozenset(tok_und.tolist())
    )
    tokens: TokenTable = token_table(
        instrument_index=tok.astype(np.int64),
        underlying=tuple(market.underlyings[u] for u in tok_und.tolist()),
        price=mark[tok],
        loss_long=loss_long[tok],
        loss_short=loss_short[tok],
        vol_haircut=vol_haircut[tok_und],
        floor=np.array([upar[u].token_haircut_floor for u in tok_und.tolist()]),
    )
    return RiskArrays(
        timestamp=int(market.timestamp),
        instruments=instruments,
        underlying_index=und,
        mark=mark,
        unit_notional=spot_i,
        vol=vol,
        loss=loss,
        scenarios=scen,
        correlation=corr,
        volatility=dvol,
        tree=tree,
        short_option_charge=som,
        concentration_rate=conc_rate,
        concentration_threshold=conc_thr,
        concentration_slope=slope,
        pad=pad,
        minimum_charge=minimum,
        confidence_charge=confidence,
        capped=capped_ranges + capped_tokens,
        mm_scale=params.mm_scale,
        leaves=leaves,
        tokens=tokens,
        params=params,
    )


def _point_pad(seg_pad: Float64Array, scen: ScenarioSet) -> Float64Array:
    """Pad of each scan column from the segment pads, shape (n, n_scan_columns).

    An MM column takes the largest pad of the MM segments its point ends, any other
    in-range column (and the IM copy of an ``mm_boundary`` point) the largest of all the
    segments its point ends; extremes get none. Then ``max_k (L(k) + pad(k)) >=
    max(L(a), L(b)) + pad(segment)`` for every segment ``[a, b]`` (margin-method §6).
    """
    n_t, n_mm, n_seg_mm = scen.n_scenarios, scen.n_mm, scen.n_mm_intervals
    out = np.zeros((seg_pad.shape[0], scen.n_scan_columns))
    full = np.zeros((seg_pad.shape[0], n_t))
    for j, (a, b) in enumerate(
        zip(scen.interval_lo.tolist(), scen.interval_hi.tolist(), strict=True)
    ):
        for k in (a, b):
            full[:, k] = np.maximum(full[:, k], seg_pad[:, j])
            if j < n_seg_mm:
                out[:, k] = np.maximum(out[:, k], seg_pad[:, j])
    out[:, n_mm:n_t] = full[:, n_mm:]
    out[:, n_t:] = full[:, scen.mm_boundary]
    return out


def _segment_pad(
    value: Float64Array,
    mark: Float64Array,
    fwd: Float64Array,
    strike: Float64Array,
    tenor_after: Float64Array,
    sigma: Float64Array,
    f_s: Float64Array,
    call: BoolArray,
    rate: float,
    scen: ScenarioSet,
    und: Int64Array,
) -> Float64Array:
    """Per unit long option, the most its loss can exceed the chord on each segment.

    With the vol state and the time step fixed, an option's value is convex in the move
    ``m`` (Black-76 is convex in ``F``, ``F = fwd (1 + m)``, sticky-strike vols do not
    depend on ``F``), so a long option's loss ``g(m) = mark - V`` is concave. A concave
    ``g`` on ``[a, b]`` (``h = b - a``) lies under its tangents at ``a`` (right slope
    ``p``) and ``b`` (left slope ``q``); above the chord (slope ``c``) they meet at height
    ``h p' q' / (p' + q')`` with ``p' = p - c >= 0``, ``q' = c - q >= 0``, the tight
    bound (exact for an expired option's kinked payoff). And ``g <= mark`` (``V >= 0``)
    while the chord is ``>= min(g(a), g(b))``, so the excess is also ``<= max(V(a), V(b))``.

    Parameters
    ----------
    value : Float64Array, shape (n_options, n_scenarios), scenario values
    mark, fwd, strike, tenor_after : shape (n_options,)
    sigma, f_s : shape (n_options, n_scenarios), shocked vols and scenario forwards
    call : BoolArray, shape (n_options,)
    und : Int64Array, shape (n_options,), underlying index

    Returns
    -------
    Float64Array, shape (n_options, n_intervals), USD per unit long, >= 0
    """
    lo, hi = scen.interval_lo, scen.interval_hi
    h = (scen.fraction[hi] - scen.fraction[lo])[None, :] * scen.ranges[und][:, None]
    kk, tt, cc = strike[:, None], tenor_after[:, None], call[:, None]
    d_lo = black76_delta_one_sided(f_s[:, lo], kk, tt, sigma[:, lo], rate, cc, right=True)
    d_hi = black76_delta_one_sided(f_s[:, hi], kk, tt, sigma[:, hi], rate, cc, right=False)
    g_lo = mark[:, None] - value[:, lo]
    g_hi = mark[:, None] - value[:, hi]
    slope_p = -fwd[:, None] * d_lo  # dg/dm = -fwd * dV/dF
    slope_q = -fwd[:, None] * d_hi
    chord = (g_hi - g_lo) / h
    p = np.maximum(slope_p - chord, 0.0)
    q = np.maximum(chord - slope_q, 0.0)
    denom = p + q
    tangent = np.where(denom > 0.0, h * p * q / np.where(denom > 0.0, denom, 1.0), 0.0)
    out: Float64Array = np.minimum(tangent, np.maximum(value[:, lo], value[:, hi]))
    return out


__all__ = ["RiskArrays", "build_risk_arrays"]
