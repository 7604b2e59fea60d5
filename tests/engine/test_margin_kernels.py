"""risk_engine/margin.py:cluster_worst, compiled, against the whole-column numpy it replaced:
the same node maxima bit for bit, NaN and infinities included, and the same margins."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk_engine import RiskArrays, RiskParams, build_risk_arrays
from risk_engine._typing import Float64Array
from risk_engine.margin import cluster_worst, per_underlying
from risk_engine.synthetic import random_portfolios
from tests.engine.conftest import small_universe


def cluster_worst_numpy(
    losses: Float64Array, arrays: RiskArrays
) -> tuple[Float64Array, Float64Array]:
    """The numpy code ``cluster_worst`` ran before it was compiled (the reference)."""
    tree = arrays.tree
    n = losses.shape[0]
    n_im = arrays.n_scan_columns
    n_mm = arrays.scenarios.n_mm
    n_nodes = len(tree.members)
    node_im = np.zeros((n, n_nodes))
    node_mm = np.zeros((n, n_nodes))
    sums: dict[int, Float64Array] = {}
    for c in range(n_nodes):
        ch = tree.children[c]
        s = losses[:, c, :n_im] if ch is None else sums.pop(ch[0]) + sums.pop(ch[1])
        sums[c] = s
        if tree.weight[c] > 0:
            mm = s[:, :n_mm].max(axis=1)
            node_mm[:, c] = np.maximum(mm, 0.0)
            node_im[:, c] = np.maximum(np.maximum(mm, s[:, n_mm:n_im].max(axis=1)), 0.0)
    return node_im, node_mm


@pytest.fixture(scope="module")
def arrays(params: RiskParams) -> RiskArrays:
    market, ins = small_universe(5)
    return build_risk_arrays(ins, market, params)


def _same_bits(a: Float64Array, b: Float64Array) -> bool:
    """Equal as floats (NaN equal to NaN; +0.0 and -0.0 add up the same downstream)."""
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 40),
    st.sampled_from([0.0, 1e-300, 1e6, 1e300]),
    st.booleans(),
)
def test_cluster_worst_equals_the_numpy_columns(
    arrays: RiskArrays, seed: int, n: int, scale: float, specials: bool
) -> None:
    rng = np.random.default_rng(seed)
    shape = (n, arrays.n_underlyings, arrays.loss.shape[1])
    losses = rng.standard_normal(shape) * scale
    if specials and n:
        for value in (np.nan, np.inf, -np.inf, -0.0, 0.0):
            losses[rng.integers(n), rng.integers(shape[1]), rng.integers(shape[2])] = value
    fast_im, fast_mm = cluster_worst(losses, arrays)
    ref_im, ref_mm = cluster_worst_numpy(losses, arrays)
    assert _same_bits(fast_im, ref_im) and _same_bits(fast_mm, ref_mm)


def test_cluster_worst_equals_the_numpy_columns_on_real_books(params: RiskParams) -> None:
    market, ins = small_universe(5)
    arrays = build_risk_arrays(ins, market, params)
    book = random_portfolios(np.random.default_rng(2), ins, market, 500, 4)
    losses = per_underlying(book.positions, arrays)
    fast, ref = cluster_worst(losses, arrays), cluster_worst_numpy(losses, arrays)
    assert fast[0].tobytes() == ref[0].tobytes() and fast[1].tobytes() == ref[1].tobytes()
