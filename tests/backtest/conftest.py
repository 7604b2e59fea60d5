"""A small synthetic data directory in the layout of ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
