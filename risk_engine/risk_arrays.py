"""Risk arrays: every instrument priced ONCE per scenario (SPAN's risk array).

``build_risk_arrays(instruments, market, params)`` returns a small, shared
:class:`RiskArrays` (n_instruments x ~75 floats) that ``compute_margin`` aggregates per
account with one sparse matrix product. It is all a shard of accounts needs besides its
own positions: pass it to ``compute_margin(..., arrays=...)`` on any worker.

Columns of ``RiskArrays.loss`` (USD per unit LONG, positive = loss):
``[0, n_scenarios)`` scenario losses (times the scenario's cover), then
``col_basis_up``, ``col_basis_down`` (basis shock losses), ``col_delta`` (delta notional,
USD per unit) and ``col_mark`` (mark), so that one product gives every per-underlying
quantity of every account.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._typing import Float64Array, Int64Array
from .addons import concentration_slope
from .correlation import CorrelationTree, correlation_tree, ewma_correlation, ewma_volatility
from .instruments import InstrumentKind, InstrumentTable
from .leaves import InstrumentLeaves, TokenTable, pad_loss, token_table
from .market import MarketSnapshot, smile_vol, validate_market
from .params import RiskParams
from .pricing import black76, black76_delta
from .scenarios import ScenarioSet, build_scenarios, shocked_vols


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
    loss : Float64Array, shape (n_instruments, n_scenarios + 4), C-contiguous
        See the module docstring for the column layout.
    scenarios : ScenarioSet
    correlation : Float64Array, shape (n_underlyings, n_underlyings), EWMA estimate
    volatility : Float64Array, shape (n_underlyings,), daily EWMA vol
    tree : CorrelationTree
    short_option_charge : Float64Array, shape (n_instruments,), USD per unit short
    concentration_rate, concentration_threshold : Float64Array, shape (n_underlyings,)
    concentration_slope : Float64Array, shape (n_instruments,), USD per unit
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
    def col_basis_up(self) -> int:
        return self.n_scenarios

    @property
    def col_basis_down(self) -> int:
        return self.n_scenarios + 1

    @property
    def col_delta(self) -> int:
        return self.n_scenarios + 2

    @property
    def col_mark(self) -> int:
        return self.n_scenarios + 3

    @property
    def n_joint_scenarios(self) -> int:
        """Joint scenarios evaluated per account: template size x clusters with weight > 0."""
        return self.n_scenarios * int(np.count_nonzero(self.tree.weight > 0))

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
        A token's required downShock exceeds 100 %.
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
        value[o] = black76(
            fwd[:, None] * (1.0 + moves[o]),
            k[:, None],
            t_s[:, None],
            sig_s,
            market.rate,
            call[:, None],
        )
        b = params.basis.forward_per_sqrt_year * np.sqrt(t)
        basis_up[o] = m - black76(fwd * (1.0 + b), k, t, sig, market.rate, call)
        basis_dn[o] = m - black76(fwd * (1.0 - b), k, t, sig, market.rate, call)

    loss = np.empty((n, n_t + 4))
    loss[:, :n_t] = (mark[:, None] - value) * scen.cover[None, :]
    loss[:, n_t] = basis_up
    loss[:, n_t + 1] = basis_dn
    loss[:, n_t + 2] = delta
    loss[:, n_t + 3] = mark
    loss = np.ascontiguousarray(loss)

    upar = [params.underlying(u) for u in market.underlyings]
    conc_rate = np.array([p.concentration_rate for p in upar])
    conc_thr = np.array([p.concentration_threshold_usd for p in upar])
    slope = concentration_slope(delta, conc_rate[und])
    som = np.where(is_opt, params.addons.short_option_minimum * spot_i, 0.0)

    corr = ewma_correlation(market.returns, params.correlation.ewma_lambda)
    tree = correlation_tree(corr, params.correlation.credit_factor)
    dvol = ewma_volatility(market.returns, params.correlation.ewma_lambda)

    # standalone IM of +-1 unit: the tree weights along a path sum to 1, so the scan of a
    # single instrument is its own worst case; plus basis, short minimum, conc. slope.
    scen_loss = loss[:, :n_t]
    sub_long = np.maximum(scen_loss.max(axis=1), 0.0) + np.maximum(
        np.maximum(basis_up, basis_dn), 0.0
    )
    sub_short = (
        np.maximum((-scen_loss).max(axis=1), 0.0)
        + np.maximum(np.maximum(-basis_up, -basis_dn), 0.0)
        + som
    )
    loss_long = pad_loss(sub_long + slope, spot_i)
    loss_short = pad_loss(sub_short + slope, spot_i)
    leaves = InstrumentLeaves(mark=mark, loss_long=loss_long, loss_short=loss_short, chain=~is_spot)

    tok = np.flatnonzero(is_spot)
    tok_und = und[tok]
    tokens: TokenTable = token_table(
        instrument_index=tok.astype(np.int64),
        underlying=tuple(market.underlyings[u] for u in tok_und.tolist()),
        price=mark[tok],
        loss_long=loss_long[tok],
        loss_short=loss_short[tok],
        vol_haircut=params.tokens.vol_multiple * dvol[tok_und] * np.sqrt(params.horizon_days),
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
        mm_scale=params.mm_scale,
        leaves=leaves,
        tokens=tokens,
        params=params,
    )


__all__ = ["RiskArrays", "build_risk_arrays"]
