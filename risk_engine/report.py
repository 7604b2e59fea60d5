"""``explain``: the full risk array of one account, with words, for reports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._typing import Float64Array
from .instruments import Portfolios
from .margin import (
    MarginResult,
    cluster_worst,
    compute_margin,
    per_underlying,
)
from .market import MarketSnapshot
from .params import RiskParams
from .risk_arrays import RiskArrays


@dataclass(frozen=True)
class ScenarioLine:
    """One scenario of the template: its P&L per underlying and in total (USD)."""

    index: int
    words: str
    pnl_by_underlying: tuple[float, ...]
    pnl: float
    in_mm_grid: bool


@dataclass(frozen=True)
class ClusterLine:
    """One correlation cluster: its weight and worst co-move loss over the continuous IM and
    MM ranges (grid points plus the segment pads, margin.py)."""

    underlyings: tuple[str, ...]
    weight: float
    worst_loss_im: float
    worst_loss_mm: float


@dataclass(frozen=True)
class AccountReport:
    """Everything behind one account's numbers.

    ``pnl`` has shape (n_underlyings, n_scenarios) (P&L = -loss, USD, scenario covers
    applied); ``lines`` lists every scenario with words; ``clusters`` the terms of the
    scan sum; ``breakdown`` the IM components (they add up to ``im``).
    """

    account: int
    equity: float
    im: float
    mm: float
    worst_scenario: int
    worst_words: str
    breakdown: dict[str, float]
    underlyings: tuple[str, ...]
    pnl: Float64Array
    lines: tuple[ScenarioLine, ...]
    clusters: tuple[ClusterLine, ...]
    basis_pnl_up: tuple[float, ...]
    basis_pnl_down: tuple[float, ...]
    delta_notional: tuple[float, ...]


def explain(
    portfolios: Portfolios,
    market: MarketSnapshot,
    params: RiskParams,
    account: int,
    *,
    arrays: RiskArrays | None = None,
) -> AccountReport:
    """Full risk array (scenario -> P&L, with words) and breakdown of one account."""
    one = portfolios.select([account])
    res: MarginResult = compute_margin(one, market, params, arrays=arrays)
    arr = res.arrays
    g = per_underlying(one.positions, arr, padded=False)
    n_t = arr.n_scenarios
    scen = arr.scenarios
    pnl = -g[0, :, :n_t]
    node_im, node_mm = cluster_worst(per_underlying(one.positions, arr), arr)
    lines = tuple(
        ScenarioLine(
            index=s,
            words=scen.words(s),
            pnl_by_underlying=tuple(float(x) for x in pnl[:, s]),
            pnl=float(pnl[:, s].sum()),
            in_mm_grid=s < scen.n_mm,
        )
        for s in range(n_t)
    )
    clusters = tuple(
        ClusterLine(
            underlyings=tuple(scen.underlyings[u] for u in mem),
            weight=float(arr.tree.weight[c]),
            worst_loss_im=float(node_im[0, c]),
            worst_loss_mm=float(node_mm[0, c]),
        )
        for c, mem in enumerate(arr.tree.members)
        if arr.tree.weight[c] > 0
    )
    return AccountReport(
        account=account,
        equity=float(res.equity[0]),
        im=float(res.im[0]),
        mm=float(res.mm[0]),
        worst_scenario=int(res.worst_scenario[0]),
        worst_words=res.worst_words(0),
        breakdown={
            "scan": float(res.scan_im[0]),
            "basis": float(res.basis[0]),
            "short_option": float(res.short_option[0]),
            "minimum": float(res.minimum[0]),
            "concentration": float(res.concentration[0]),
        },
        underlyings=scen.underlyings,
        pnl=np.ascontiguousarray(pnl),
        lines=lines,
        clusters=clusters,
        basis_pnl_up=tuple(float(-x) for x in g[0, :, arr.col_basis_up]),
        basis_pnl_down=tuple(float(-x) for x in g[0, :, arr.col_basis_down]),
        delta_notional=tuple(float(x) for x in g[0, :, arr.col_delta]),
    )


__all__ = ["AccountReport", "ClusterLine", "ScenarioLine", "explain"]
