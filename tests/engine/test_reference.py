"""The fast engine equals the slow per-position reference; shards equal the whole."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk_engine import build_risk_arrays, compute_margin, load_params
from risk_engine._reference import compute_margin_reference
from risk_engine.synthetic import random_portfolios

from .conftest import small_universe, tight_params

FIELDS = (
    "equity",
    "im",
    "mm",
    "scan_im",
    "scan_mm",
    "basis",
    "short_option",
    "minimum",
    "concentration",
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.booleans(), st.sampled_from([3e3, 1e5, 3e6]))
def test_fast_engine_equals_reference(seed: int, tight: bool, notional: float) -> None:
    params = tight_params(load_params()) if tight else load_params()
    market, ins = small_universe(seed)
    rng = np.random.default_rng(seed)
    pf = random_portfolios(rng, ins, market, 25, int(rng.integers(1, 12)), notional_usd=notional)
    fast = compute_margin(pf, market, params)
    ref = compute_margin_reference(pf, market, params)
    for f in FIELDS:
        a = getattr(fast, f)
        b = np.array(getattr(ref, f))
        scale = fast.gross_notional + np.abs(pf.cash) + 1.0
        assert np.all(np.abs(a - b) <= 1e-10 * scale), f


def test_reference_sees_concentration() -> None:
    params = tight_params(load_params())
    market, ins = small_universe(5)
    pf = random_portfolios(np.random.default_rng(1), ins, market, 20, 6, notional_usd=3e6)
    ref = compute_margin_reference(pf, market, params)
    assert max(ref.concentration) > 0
    assert np.allclose(compute_margin(pf, market, params).concentration, ref.concentration)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_shards_and_chunks_equal_the_whole(chunk: int) -> None:
    params = load_params()
    market, ins = small_universe(9)
    pf = random_portfolios(np.random.default_rng(3), ins, market, 50, 8)
    arrays = build_risk_arrays(ins, market, params)
    whole = compute_margin(pf, market, params, arrays=arrays)
    chunked = compute_margin(pf, market, params, arrays=arrays, chunk_size=chunk)
    shards = [
        compute_margin(pf.select(range(a, b)), market, params, arrays=arrays)
        for a, b in ((0, 13), (13, 40), (40, 50))
    ]
    for f in FIELDS + ("worst_scenario",):
        np.testing.assert_array_equal(getattr(chunked, f), getattr(whole, f))  # bit-identical
        np.testing.assert_array_equal(
            np.concatenate([getattr(s, f) for s in shards]), getattr(whole, f)
        )
