"""The confidence add-on: the feed's confidence per underlying is an engine input; below
the threshold it charges ``rate * (1 - confidence)`` x spot per unit, in the requirement
and in every published instrument loss (risk_engine/addons.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk_engine import (
    InvalidInputError,
    InvalidParamsError,
    build_risk_arrays,
    compute_margin,
    load_params,
    params_from_dict,
)
from risk_engine._reference import compute_margin_reference
from risk_engine.addons import confidence_rate
from risk_engine.params import default_params_text
from risk_engine.synthetic import random_portfolios

from .conftest import small_universe


def _with_confidence(market, values):  # type: ignore[no-untyped-def]
    return dataclasses.replace(market, confidence=np.array(values, dtype=np.float64))


def test_full_confidence_changes_nothing() -> None:
    params = load_params()
    market, ins = small_universe(3)
    pf = random_portfolios(np.random.default_rng(2), ins, market, 10, 5)
    plain = compute_margin(pf, market, params)
    full = compute_margin(pf, _with_confidence(market, [1.0, 1.0, 1.0]), params)
    assert np.array_equal(plain.im, full.im)
    assert np.array_equal(plain.leaves.loss_long, full.leaves.loss_long)


def test_confidence_at_or_above_the_threshold_adds_nothing() -> None:
    th = load_params().confidence.threshold
    assert np.all(confidence_rate(np.array([th, 0.9, 1.0]), th, 0.02) == 0.0)


def test_low_confidence_raises_the_leaves_of_that_underlying_only() -> None:
    params = load_params()
    market, ins = small_universe(4)
    base = build_risk_arrays(ins, market, params)
    low = build_risk_arrays(ins, _with_confidence(market, [0.4, 1.0, 1.0]), params)
    btc = np.array([u == "BTC" for u in ins.underlying])
    spot = market.spot[0]
    want = params.confidence.rate * (1.0 - 0.4) * spot
    assert np.allclose(low.confidence_charge[btc], want)
    assert np.all(low.confidence_charge[~btc] == 0.0)
    assert np.all(low.leaves.loss_long[btc] > base.leaves.loss_long[btc] + 0.99 * want)
    assert np.all(low.leaves.loss_short[btc] > base.leaves.loss_short[btc] + 0.99 * want)
    assert np.array_equal(low.leaves.loss_long[~btc], base.leaves.loss_long[~btc])


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 1000), st.floats(0.0, 1.0))
def test_fast_engine_equals_reference_with_a_confidence(seed: int, conf: float) -> None:
    params = load_params()
    market, ins = small_universe(seed)
    market = _with_confidence(market, [conf, 1.0, 0.5 * conf])
    rng = np.random.default_rng(seed)
    pf = random_portfolios(rng, ins, market, 12, 5)
    fast = compute_margin(pf, market, params)
    ref = compute_margin_reference(pf, market, params)
    scale = fast.gross_notional + np.abs(pf.cash) + 1.0
    for f in ("im", "mm", "minimum"):
        assert np.all(np.abs(getattr(fast, f) - np.array(getattr(ref, f))) <= 1e-10 * scale), f


def test_a_confidence_outside_zero_one_is_refused() -> None:
    market, ins = small_universe(1)
    with pytest.raises(InvalidInputError, match=r"market.confidence\[1\]"):
        build_risk_arrays(ins, _with_confidence(market, [1.0, 1.5, 1.0]), load_params())


def test_the_confidence_section_is_optional_and_validated() -> None:
    import tomllib

    d = tomllib.loads(default_params_text())
    d["confidence"] = {"threshold": 0.6, "rate": 0.03}
    p = params_from_dict(d)
    assert (p.confidence.threshold, p.confidence.rate) == (0.6, 0.03)
    d["confidence"] = {"threshold": 0.6, "rate": 0.5}
    with pytest.raises(InvalidParamsError, match="confidence.rate"):
        params_from_dict(d)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 1000), st.floats(0.0, 0.54))
def test_the_add_on_to_an_account_is_its_gross_notional_on_that_underlying_times_the_rate(
    seed: int, conf: float
) -> None:
    params = load_params()
    market, ins = small_universe(seed)
    pf = random_portfolios(np.random.default_rng(seed), ins, market, 15, 6)
    plain = compute_margin(pf, market, params)
    low = compute_margin(pf, _with_confidence(market, [1.0, conf, 1.0]), params)
    eth = np.array([u == "ETH" for u in ins.underlying], dtype=np.float64)
    gross_eth = np.abs(pf.positions.toarray()) @ eth * market.spot[1]
    add = params.confidence.rate * (1.0 - conf) * gross_eth
    scale = plain.gross_notional + 1.0
    assert np.all(np.abs(low.im - plain.im - add) <= 1e-9 * scale)
    assert np.all(np.abs(low.mm - plain.mm - params.mm_scale * add) <= 1e-9 * scale)
