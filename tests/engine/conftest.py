"""Shared fixtures and builders for the engine tests (and, for the backtest and the capital
efficiency table, a small synthetic data directory in the layout of ../shared/data)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

from risk_engine import (
    InstrumentKind,
    InstrumentTable,
    MarketSnapshot,
    RiskParams,
    VolSurface,
    load_params,
)
from risk_engine.params import NO_APC, UnderlyingParams
from risk_engine.synthetic import returns_with_correlation, synthetic_instruments, synthetic_market

TS = 1_719_792_000
DAY = 86400


@pytest.fixture(scope="session")
def params() -> RiskParams:
    return load_params()


def static_floor_params(base: RiskParams, **floors: float) -> RiskParams:
    """``base`` with the given ``scan_range`` floors and no APC buffer: tests whose numbers
    are worked out on a fixed range (BTC 17 %, ETH 18 %) stay independent of calibration."""
    unders = dict(base.underlyings)
    for name, floor in floors.items():
        unders[name] = dataclasses.replace(unders[name], scan_range=floor)
    return dataclasses.replace(base, underlyings=MappingProxyType(unders), apc=NO_APC)


def tight_params(base: RiskParams) -> RiskParams:
    """Defaults with low concentration thresholds, so the superadditive add-on is active."""
    unders = {
        name: dataclasses.replace(
            u, concentration_threshold_usd=u.concentration_threshold_usd / 50.0
        )
        for name, u in base.underlyings.items()
    }
    return dataclasses.replace(base, underlyings=MappingProxyType(unders))


def small_universe(
    seed: int,
    *,
    rho: float | None = None,
    expiry_days: Sequence[float] = (2.0 / 24.0, 7.0, 45.0),
    strikes: int = 4,
) -> tuple[MarketSnapshot, InstrumentTable]:
    """BTC, ETH (options, perps, tokens) and GOV (token only); an expiry within the horizon."""
    rng = np.random.default_rng(seed)
    corr = None
    if rho is not None:
        corr = np.array([[1.0, rho, 0.3], [rho, 1.0, 0.3], [0.3, 0.3, 1.0]])
    market = synthetic_market(
        rng,
        timestamp=TS,
        underlyings=("BTC", "ETH", "GOV"),
        option_underlyings=("BTC", "ETH"),
        expiry_days=expiry_days,
        correlation=corr,
        n_observations=120,
    )
    ins = synthetic_instruments(market, strikes_per_expiry=strikes, perp_underlyings=("BTC", "ETH"))
    return market, ins


def pair_market(
    rho: float, *, params: RiskParams, vols: tuple[float, float] = (0.01, 0.012)
) -> tuple[MarketSnapshot, InstrumentTable]:
    """BTC/ETH perps and tokens; returns with EWMA correlation exactly ``rho``."""
    corr = np.array([[1.0, rho], [rho, 1.0]])
    ret = returns_with_correlation(
        np.random.default_rng(7), corr, np.array(vols), 60, params.correlation.ewma_lambda
    )
    market = MarketSnapshot(
        timestamp=TS,
        underlyings=("BTC", "ETH"),
        spot=np.array([60000.0, 3000.0]),
        perp_mark=np.array([60000.0, 3000.0]),
        rate=0.0,
        surface=VolSurface.empty(),
        returns=ret,
    )
    ins = InstrumentTable.build(
        [InstrumentKind.PERP, InstrumentKind.PERP, InstrumentKind.SPOT, InstrumentKind.SPOT],
        ["BTC", "ETH", "BTC", "ETH"],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    )
    return market, ins


# A small synthetic data directory in the layout of ../shared/data.

START = np.datetime64("2021-03-01")
N_DAYS = 120
CRASH = np.datetime64("2021-05-19")


def write_data_dir(
    root: Path,
    *,
    seed: int = 11,
    perturb_from: np.datetime64 | None = None,
) -> Path:
    """BTC, ETH, SOL closes (GBM, a -40 % day on 2021-05-19) and a BTC DVOL with gaps.

    ``perturb_from``: closes and DVOL from that day on are replaced by other numbers
    (the past is byte-identical), for look-ahead tests.
    """
    rng = np.random.default_rng(seed)
    other = np.random.default_rng(seed + 1)  # the perturbation must not shift rng's draws
    dates = np.arange(START, START + N_DAYS)
    daily = root / "daily"
    daily.mkdir(parents=True, exist_ok=True)
    for name, s0, sigma in (("BTC", 50_000.0, 0.04), ("ETH", 2_000.0, 0.05), ("SOL", 40.0, 0.07)):
        returns = rng.normal(0.0, sigma, N_DAYS)
        returns[dates == CRASH] = np.log(0.6)
        close = s0 * np.exp(np.cumsum(returns))
        if perturb_from is not None:
            late = dates >= perturb_from
            close[late] = close[late] * np.exp(np.cumsum(other.normal(0.01, 0.03, late.sum())))
        lines = ["date,open,high,low,close,volume"]
        lines += [
            f"{d},{c:.6f},{c * 1.02:.6f},{c * 0.98:.6f},{c:.6f},10"
            for d, c in zip(dates, close, strict=True)
        ]
        (daily / f"{name}.csv").write_text("\n".join(lines) + "\n")
    dvol = rng.uniform(50.0, 90.0, N_DAYS)
    if perturb_from is not None:
        dvol[dates >= perturb_from] = 150.0
    keep = (dates >= np.datetime64("2021-04-10")) & (np.arange(N_DAYS) % 9 != 0)
    iv = root / "implied_vol"
    iv.mkdir(parents=True, exist_ok=True)
    lines = ["date,dvol"] + [f"{d},{v:.2f}" for d, v in zip(dates[keep], dvol[keep], strict=True)]
    (iv / "BTC_DVOL.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return write_data_dir(tmp_path / "data")


__all__ = [
    "CRASH",
    "DAY",
    "TS",
    "UnderlyingParams",
    "pair_market",
    "small_universe",
    "tight_params",
    "write_data_dir",
]
