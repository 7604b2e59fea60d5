"""Hedges net: cash-and-carry, and the BTC/ETH pair credit as a function of correlation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from risk_engine import Portfolios, RiskParams, build_risk_arrays, compute_margin, load_params
from risk_engine.margin import MarginResult

from .conftest import pair_market

PERP_BTC, PERP_ETH, TOKEN_BTC, TOKEN_ETH = 0, 1, 2, 3


def _pair_books(params: RiskParams, rho: float) -> MarginResult:
    market, ins = pair_market(rho, params=params)
    arrays = build_risk_arrays(ins, market, params)
    r_btc, r_eth = arrays.scenarios.ranges
    btc_units = 10.0
    # beta-matched: equal scan-range loss on both legs
    eth_units = btc_units * market.spot[0] * r_btc / (market.spot[1] * r_eth)
    rows = np.zeros((3, 4))
    rows[0, PERP_BTC] = btc_units
    rows[1, PERP_ETH] = -eth_units
    rows[2, PERP_BTC] = btc_units
    rows[2, PERP_ETH] = -eth_units
    return compute_margin(
        Portfolios.from_dense(ins, rows, np.zeros(3)), market, params, arrays=arrays
    )


def _credit(r: MarginResult) -> float:
    return float(r.im[0] + r.im[1] - r.im[2])


def test_pair_credit_grows_with_correlation_and_is_zero_without() -> None:
    params = load_params()
    rhos = [-0.6, -0.2, 0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0]
    credits = [_credit(_pair_books(params, rho)) for rho in rhos]
    standalone = float(_pair_books(params, 0.5).im[:2].sum())
    for rho, c in zip(rhos, credits, strict=True):
        if rho <= 0.0:
            assert abs(c) <= 1e-9 * standalone, (rho, c)
    positive = [c for rho, c in zip(rhos, credits, strict=True) if rho > 0]
    assert all(b > a for a, b in zip(positive, positive[1:], strict=False)), positive
    # with the default credit factor 0.8 the credit at rho=1 is 80 % of the scan part
    r1 = _pair_books(params, 1.0)
    scan_standalone = float(r1.scan_im[0] + r1.scan_im[1])
    assert credits[-1] == pytest.approx(
        params.correlation.credit_factor * scan_standalone, rel=1e-6
    )


def test_perfectly_correlated_beta_matched_pair_needs_its_residual_risk() -> None:
    params = load_params()
    full_credit = dataclasses.replace(
        params, correlation=dataclasses.replace(params.correlation, credit_factor=1.0)
    )
    r = _pair_books(full_credit, 1.0)
    # scan residual is ~0 (beta-matched); what is left are the two perp basis shocks and
    # the minimum charge on the gross notional
    assert r.scan_im[2] <= 1e-6 * r.scan_im[:2].sum()
    assert r.im[2] == pytest.approx(r.basis[2] + r.minimum[2], rel=1e-9)
    assert r.im[2] <= 0.1 * r.im[:2].sum()


def test_cash_and_carry_eth_collateral_short_perp() -> None:
    params = load_params()
    market, ins = pair_market(0.5, params=params)
    rows = np.zeros((3, 4))
    rows[0, TOKEN_ETH] = 100.0
    rows[1, PERP_ETH] = -100.0
    rows[2, TOKEN_ETH] = 100.0
    rows[2, PERP_ETH] = -100.0
    r = compute_margin(Portfolios.from_dense(ins, rows, np.zeros(3)), market, params)
    assert r.im[2] <= 0.3 * (r.im[0] + r.im[1])
    # in fact only the 1 % basis shock and the minimum charge are left: no scan loss
    assert r.scan_im[2] == pytest.approx(0.0, abs=1e-6)
    assert r.im[2] == pytest.approx(r.basis[2] + r.minimum[2], rel=1e-9)
    assert r.im[2] <= 0.06 * (r.im[0] + r.im[1])


def test_a_perfect_hedge_is_never_at_zero_margin() -> None:
    """Without basis shocks, token + short perp has no scenario loss at all: the minimum
    charge (0.1 % of gross notional) is what it pays, and MM stays strictly below IM."""
    params = load_params()
    no_basis = dataclasses.replace(
        params, basis=dataclasses.replace(params.basis, perp=0.0, forward_per_sqrt_year=0.0)
    )
    market, ins = pair_market(0.5, params=no_basis)
    rows = np.zeros((1, 4))
    rows[0, TOKEN_ETH] = 100.0
    rows[0, PERP_ETH] = -100.0
    r = compute_margin(Portfolios.from_dense(ins, rows, np.zeros(1)), market, no_basis)
    assert r.scan_im[0] == 0.0 and r.basis[0] == 0.0
    gross = 2 * 100.0 * float(market.spot[1])
    assert r.im[0] == pytest.approx(no_basis.minimum.rate * gross, rel=1e-12)
    assert 0.0 < r.mm[0] < r.im[0]
