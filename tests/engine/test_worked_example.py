"""The worked example of docs/margin-method.md, number by number."""

from __future__ import annotations

import numpy as np
import pytest

from risk_engine import Portfolios, build_risk_arrays, compute_margin, explain, load_params

from .conftest import pair_market, static_floor_params

PERP_BTC, PERP_ETH, TOKEN_BTC, TOKEN_ETH = 0, 1, 2, 3


def test_worked_example() -> None:
    # the example's floors (BTC 17 %, ETH 18 %), no APC buffer: docs/margin-method.md §7
    params = static_floor_params(load_params(), BTC=0.17, ETH=0.18)
    market, ins = pair_market(0.8, params=params, vols=(0.01, 0.012))
    arrays = build_risk_arrays(ins, market, params)
    np.testing.assert_allclose(arrays.correlation[0, 1], 0.8, rtol=1e-12)
    np.testing.assert_allclose(arrays.scenarios.ranges, [0.17, 0.18])
    np.testing.assert_allclose(arrays.tree.weight, [0.36, 0.36, 0.64], rtol=1e-12)
    assert arrays.n_scenarios == 69 and arrays.scenarios.n_mm == 51

    rows = np.zeros((5, 4))
    rows[0, [PERP_BTC, PERP_ETH]] = [1.0, -20.0]  # A: the BTC/ETH pair
    rows[1, PERP_BTC] = 1.0  # its legs alone
    rows[2, PERP_ETH] = -20.0
    rows[3, [TOKEN_ETH, PERP_ETH]] = [10.0, -10.0]  # B: cash and carry
    rows[4, TOKEN_ETH] = 10.0
    cash = np.array([20000.0, 0.0, 0.0, 0.0, 0.0])
    pf = Portfolios.from_dense(ins, rows, cash)
    r = compute_margin(pf, market, params, arrays=arrays)

    # account A
    assert r.equity[0] == pytest.approx(20000.0, abs=1e-9)
    assert r.scan_im[0] == pytest.approx(0.36 * (10200 + 10800) + 0.64 * 600, rel=1e-12)  # 7944
    assert r.scan_im[0] == pytest.approx(7944.0, rel=1e-12)
    assert r.basis[0] == pytest.approx(1200.0, rel=1e-12)
    assert r.minimum[0] == pytest.approx(120.0, rel=1e-12)  # 0.1 % of 60,000 + 60,000
    assert r.im[0] == pytest.approx(9264.0, rel=1e-12)
    assert r.scan_mm[0] == pytest.approx(6355.2, rel=1e-12)
    assert r.mm[0] == pytest.approx(6355.2 + 0.98 * 1320.0, rel=1e-12)  # 7,648.8
    assert r.im[1] == pytest.approx(10860.0, rel=1e-12)
    assert r.im[2] == pytest.approx(11460.0, rel=1e-12)
    assert r.worst_words(0) == ("price +1.00x range (BTC +17.0%, ETH +18.0%), vol unchanged, +1d")
    rep = explain(pf, market, params, 0, arrays=arrays)
    assert [round(c.worst_loss_im, 6) for c in rep.clusters] == [10200.0, 10800.0, 600.0]

    # account B
    assert r.im[3] == pytest.approx(360.0, rel=1e-12)
    assert r.im[4] == pytest.approx(5430.0, rel=1e-12)

    # leaves (before the 1e-9 float pad) and the token table
    leaves = arrays.leaves
    assert leaves.loss_long[PERP_BTC] == pytest.approx(12060.0, rel=2e-9)
    assert leaves.loss_short[PERP_ETH] == pytest.approx(633.0, rel=2e-9)
    t = list(arrays.tokens.instrument_index).index(TOKEN_ETH)
    assert arrays.tokens.down_shock[t] == pytest.approx(0.201, rel=2e-9)
    assert arrays.tokens.up_shock[t] == pytest.approx(0.201, rel=2e-9)
