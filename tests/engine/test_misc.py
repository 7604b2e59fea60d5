"""explain(), correlation tree, leaves and token table in WAD, purity of the package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import risk_engine
from risk_engine import (
    Portfolios,
    UnsoundBoundError,
    build_risk_arrays,
    compute_margin,
    explain,
    load_params,
)
from risk_engine.correlation import correlation_tree, ewma_correlation, ewma_volatility
from risk_engine.leaves import LOSS_PAD_REL
from risk_engine.synthetic import random_portfolios
from risk_engine.units import WAD

from .conftest import small_universe, tight_params

ENGINE_DIR = Path(risk_engine.__file__).parent


def test_explain_is_consistent_with_compute_margin() -> None:
    params = load_params()
    market, ins = small_universe(4)
    pf = random_portfolios(np.random.default_rng(2), ins, market, 5, 10)
    arrays = build_risk_arrays(ins, market, params)
    res = compute_margin(pf, market, params, arrays=arrays)
    rep = explain(pf, market, params, 3, arrays=arrays)
    assert rep.im == res.im[3] and rep.mm == res.mm[3] and rep.equity == res.equity[3]
    assert sum(rep.breakdown.values()) == pytest.approx(rep.im, rel=1e-12)
    assert rep.pnl.shape == (market.n_underlyings, arrays.n_scenarios)
    assert len(rep.lines) == arrays.n_scenarios
    worst = min(rep.lines, key=lambda ln: ln.pnl)
    assert worst.index == rep.worst_scenario
    assert rep.worst_words == res.worst_words(3)
    assert "BTC" in rep.worst_words and "range" in rep.worst_words
    assert sum(c.weight * c.worst_loss_im for c in rep.clusters) == pytest.approx(
        rep.breakdown["scan"], rel=1e-12
    )
    assert sum(ln.in_mm_grid for ln in rep.lines) == arrays.scenarios.n_mm


def test_ewma_statistics_by_hand() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.02, size=(50, 3))
    lam = 0.94
    w = lam ** np.arange(49, -1, -1)
    w /= w.sum()
    cov = sum(w[t] * np.outer(r[t], r[t]) for t in range(50))
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(ewma_correlation(r, lam), cov / np.outer(sd, sd), rtol=1e-12)
    np.testing.assert_allclose(ewma_volatility(r, lam), sd, rtol=1e-12)
    flat = r.copy()
    flat[:, 2] = 0.0  # a constant series has no correlation with anything
    c = ewma_correlation(flat, lam)
    assert c[0, 2] == 0.0 and c[2, 2] == 1.0


def test_correlation_tree_never_gives_more_credit_than_the_estimate() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(1, 7))
        a = rng.normal(size=(n, n + 2))
        cov = a @ a.T
        d = np.sqrt(np.diag(cov))
        corr = cov / np.outer(d, d)
        tree = correlation_tree(corr, 0.8)
        implied = tree.implied_correlation()
        assert np.all(implied <= tree.used_correlation + 1e-12)
        assert np.all(tree.weight >= 0)
        np.testing.assert_allclose(np.diag(implied), 1.0)  # leaf-to-root weights sum to 1


def test_two_underlyings_tree_is_the_rho_mix() -> None:
    tree = correlation_tree(np.array([[1.0, 0.75], [0.75, 1.0]]), 0.8)
    np.testing.assert_allclose(tree.weight, [0.4, 0.4, 0.6])
    assert tree.members == ((0,), (1,), (0, 1))


def test_wad_leaves_and_tokens_round_against_the_account() -> None:
    params = load_params()
    market, ins = small_universe(6)
    arrays = build_risk_arrays(ins, market, params)
    wl = arrays.leaves.to_wad()
    assert len(wl.instrument_index) == int(np.count_nonzero(arrays.leaves.chain))
    for j, i in enumerate(wl.instrument_index):
        assert wl.loss_long[j] >= arrays.leaves.loss_long[i] * WAD * (1 - 1e-15)
        assert wl.mark[j] <= arrays.leaves.mark[i] * WAD * (1 + 1e-15)
    wt = arrays.tokens.to_wad()
    assert all(0 < d <= WAD for d in wt.down_shock)
    assert wt.instrument_index == tuple(int(i) for i in arrays.tokens.instrument_index)
    pf = random_portfolios(np.random.default_rng(1), ins, market, 3, 5)
    res = compute_margin(pf, market, params, arrays=arrays)
    eq, im, mm = res.to_wad(0)
    assert eq <= res.equity[0] * WAD and im >= res.im[0] * WAD and mm >= res.mm[0] * WAD
    assert mm < im
    assert LOSS_PAD_REL < 1e-6


def test_token_shock_above_one_is_refused() -> None:
    import dataclasses
    from types import MappingProxyType

    base = load_params()
    u = dict(base.underlyings)
    u["GOV"] = dataclasses.replace(u["GOV"], scan_range=0.75, concentration_rate=0.5)
    wild = dataclasses.replace(base, underlyings=MappingProxyType(u))
    market, ins = small_universe(1)
    with pytest.raises(UnsoundBoundError, match="GOV"):
        build_risk_arrays(ins, market, wild)


def test_unsorted_positions_give_the_same_bits() -> None:
    params = tight_params(load_params())
    market, ins = small_universe(2)
    pf = random_portfolios(np.random.default_rng(5), ins, market, 4, 9)
    p = pf.positions
    data, indices = p.data.copy(), p.indices.copy()
    for r in range(p.shape[0]):  # reverse the column order inside every row
        a, b = p.indptr[r], p.indptr[r + 1]
        data[a:b] = data[a:b][::-1]
        indices[a:b] = indices[a:b][::-1]
    messy = sp.csr_array((data, indices, p.indptr.copy()), shape=p.shape)
    assert not messy.has_sorted_indices
    a = compute_margin(pf, market, params)
    b = compute_margin(Portfolios(ins, messy, pf.cash), market, params)
    np.testing.assert_array_equal(a.im, b.im)
    np.testing.assert_array_equal(a.equity, b.equity)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_package_never_imports_web3_or_keeper() -> None:
    for path in ENGINE_DIR.rglob("*.py"):
        bad = _imports(path) & {"web3", "eth_account", "keeper", "scripts", "requests", "socket"}
        assert not bad, (path, bad)
    code = (
        "import sys, importlib, pkgutil, risk_engine\n"
        "for m in pkgutil.walk_packages(risk_engine.__path__, 'risk_engine.'):\n"
        "    if m.name.startswith('risk_engine.backtest'): continue\n"
        "    importlib.import_module(m.name)\n"
        "bad = [k for k in sys.modules if k.split('.')[0] in ('web3', 'keeper', 'eth_account')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


CORE = (
    "_typing",
    "errors",
    "units",
    "instruments",
    "market",
    "pricing",
    "scenarios",
    "correlation",
    "risk_arrays",
    "margin",
    "addons",
    "leaves",
    "report",
    "_reference",
)


def test_core_has_no_clock_files_or_global_random() -> None:
    for name in CORE:
        src = (ENGINE_DIR / f"{name}.py").read_text()
        mods = _imports(ENGINE_DIR / f"{name}.py")
        assert not mods & {"time", "datetime", "os", "random", "pathlib", "io"}, (name, mods)
        assert "open(" not in src and "np.random" not in src, name


def test_empty_and_cash_only_accounts() -> None:
    params = load_params()
    market, ins = small_universe(1)
    empty = compute_margin(
        Portfolios(ins, sp.csr_array((0, ins.n_instruments)), np.zeros(0)), market, params
    )
    assert empty.n_accounts == 0
    cash_only = compute_margin(
        Portfolios.from_dense(ins, np.zeros((2, ins.n_instruments)), [100.0, -5.0]),
        market,
        params,
    )
    np.testing.assert_array_equal(cash_only.im, [0.0, 0.0])
    np.testing.assert_array_equal(cash_only.mm, [0.0, 0.0])
    np.testing.assert_array_equal(cash_only.equity, [100.0, -5.0])
