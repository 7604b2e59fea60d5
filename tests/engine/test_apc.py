"""The anti-procyclicality buffer on the scan range (scenarios.apc_buffer_factor)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk_engine import InvalidParamsError, MarketSnapshot, RiskParams, load_params, parse_params
from risk_engine.params import NO_APC, AntiProcyclicalityParams, default_params_text
from risk_engine.scenarios import apc_buffer_factor, scan_ranges

PARAMS = load_params()
vols = st.floats(min_value=1e-4, max_value=0.3)
buffers = st.floats(min_value=0.0, max_value=1.0)
ratios = st.floats(min_value=1.01, max_value=5.0)


def _market(returns: np.ndarray) -> MarketSnapshot:
    """The two fields scan_ranges reads (the rest of a snapshot does not enter the range)."""
    names = ("BTC", "ETH", "SOL")[: returns.shape[1]]
    return cast(MarketSnapshot, SimpleNamespace(underlyings=names, returns=returns))


def _with_apc(buffer: float, stress_ratio: float = 2.0) -> RiskParams:
    return dataclasses.replace(PARAMS, apc=AntiProcyclicalityParams(buffer, stress_ratio))


def _factor(short: float, long: float, buffer: float, stress: float) -> float:
    apc = AntiProcyclicalityParams(buffer, stress)
    return float(apc_buffer_factor(np.array([short]), np.array([long]), apc)[0])


@settings(max_examples=200, deadline=None)
@given(short=vols, long=vols, buffer=buffers, stress=ratios)
def test_buffer_factor_lies_between_one_and_one_plus_buffer(
    short: float, long: float, buffer: float, stress: float
) -> None:
    f = apc_buffer_factor(
        np.array([short]), np.array([long]), AntiProcyclicalityParams(buffer, stress)
    )
    assert 1.0 - 1e-12 <= f[0] <= 1.0 + buffer + 1e-12


@settings(max_examples=200, deadline=None)
@given(short=vols, long=vols, buffer=buffers, stress=ratios)
def test_buffer_is_released_only_in_stress(
    short: float, long: float, buffer: float, stress: float
) -> None:
    f = float(
        apc_buffer_factor(
            np.array([short]), np.array([long]), AntiProcyclicalityParams(buffer, stress)
        )[0]
    )
    if short <= long:  # calm: the whole buffer
        assert f == pytest.approx(1.0 + buffer)
    if short >= stress * long:  # full stress: none of it
        assert f == pytest.approx(1.0)
    if f < 1.0 + buffer - 1e-12:  # any release means the short vol is above the long-run vol
        assert short > long


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    shock=st.floats(min_value=0.2, max_value=5.0),
    b1=buffers,
    b2=buffers,
)
def test_range_is_never_below_the_floor_and_grows_with_the_buffer(
    seed: int, shock: float, b1: float, b2: float
) -> None:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.03, (120, 3))
    returns[-10:] *= shock  # calm (shock < 1) or stressed (shock > 1) recent returns
    market = _market(returns)
    lo, hi = sorted((b1, b2))
    r_lo, r_hi = scan_ranges(market, _with_apc(lo)), scan_ranges(market, _with_apc(hi))
    floors = np.array([PARAMS.underlying(u).scan_range for u in market.underlyings])
    assert np.all(r_lo >= floors - 1e-15)
    assert np.all(r_hi >= r_lo - 1e-15)
    assert np.all(r_hi <= PARAMS.scan.max_range + 1e-15)


def test_no_buffer_is_the_rule_without_apc() -> None:
    returns = np.random.default_rng(3).normal(0.0, 0.05, (60, 2))
    market = _market(returns)
    assert np.array_equal(
        scan_ranges(market, dataclasses.replace(PARAMS, apc=NO_APC)),
        scan_ranges(market, _with_apc(0.0)),
    )


def test_calm_market_gets_the_whole_buffer_on_the_range() -> None:
    returns = np.random.default_rng(5).normal(0.0, 0.06, (200, 1))
    returns[-30:] *= 0.5  # recent vol below the long-run vol
    market = _market(returns)
    base = scan_ranges(market, _with_apc(0.0))
    assert scan_ranges(market, _with_apc(0.25)) == pytest.approx(base * 1.25)


def test_apc_section_is_optional_and_validated() -> None:
    text = default_params_text()
    start = text.index("[apc]")
    end = text.index("\n[", start + 1)
    without = text[:start] + text[end + 1 :]
    assert parse_params(without).apc == NO_APC
    for bad, field in (
        ("buffer = -0.1", "apc.buffer"),
        ("stress_ratio = 1.0", "apc.stress_ratio"),
        ("extra = 1", "apc.extra"),
    ):
        key = bad.split(" ")[0]
        lines = [
            line
            for line in text[start:end].splitlines()
            if not line.startswith(key + " ") or key == "extra"
        ]
        section = "\n".join(lines) + "\n" + bad + "\n"
        with pytest.raises(InvalidParamsError) as info:
            parse_params(text[:start] + section + text[end:])
        assert info.value.field == field
