"""Seeded synthetic universes, markets and portfolios (tests, benchmark, demos).

Pure: every function takes its ``numpy.random.Generator``; nothing global is touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ._typing import Float64Array
from .instruments import InstrumentKind, InstrumentTable, Portfolios
from .market import MarketSnapshot, VolSurface

DEFAULT_SPOT = {"BTC": 60000.0, "ETH": 3000.0, "SOL": 150.0, "GOV": 10.0, "USDC": 1.0}
DEFAULT_DAILY_VOL = {"BTC": 0.03, "ETH": 0.04, "SOL": 0.055, "GOV": 0.08, "USDC": 0.0005}
DEFAULT_ATM = {"BTC": 0.55, "ETH": 0.65, "SOL": 0.85, "GOV": 1.2, "USDC": 0.05}
EXPIRY_DAYS = (1, 2, 7, 14, 21, 30, 60, 90, 180, 365)


def returns_with_correlation(
    rng: np.random.Generator,
    correlation: Float64Array,
    daily_vol: Float64Array,
    n_observations: int,
    lam: float,
) -> Float64Array:
    """Returns whose zero-mean EWMA (decay ``lam``) covariance is EXACTLY
    ``correlation * outer(daily_vol, daily_vol)`` (up to float rounding).

    The columns of a random matrix are orthonormalised in the EWMA-weighted inner product,
    then coloured with the Cholesky factor of the target (``correlation`` must be positive
    definite, or positive semi-definite with a usable Cholesky after a tiny jitter).
    """
    n_u = correlation.shape[0]
    w = lam ** np.arange(n_observations - 1, -1, -1, dtype=np.float64)
    w = w / w.sum()
    z = rng.standard_normal((n_observations, n_u))
    q, _ = np.linalg.qr(np.sqrt(w)[:, None] * z)
    white = q / np.sqrt(w)[:, None]
    chol = np.linalg.cholesky(correlation + 1e-15 * np.eye(n_u))
    out: Float64Array = (white @ chol.T) * daily_vol[None, :]
    return out


def synthetic_market(
    rng: np.random.Generator,
    *,
    timestamp: int = 1_719_792_000,
    underlyings: Sequence[str] = ("BTC", "ETH", "SOL", "GOV"),
    option_underlyings: Sequence[str] = ("BTC", "ETH", "SOL"),
    expiry_days: Sequence[float] = EXPIRY_DAYS,
    correlation: Float64Array | None = None,
    n_observations: int = 250,
    rate: float = 0.03,
) -> MarketSnapshot:
    """A plausible market: spots, perps at a small premium, upward forward curves, skewed
    smiles, and ``n_observations`` correlated daily returns (default correlations 0.8
    between BTC/ETH/SOL, 0.4 with anything else)."""
    names = tuple(underlyings)
    n_u = len(names)
    spot = np.array([DEFAULT_SPOT.get(u, 50.0) for u in names]) * rng.uniform(0.9, 1.1, n_u)
    perp = spot * (1.0 + rng.uniform(-0.002, 0.003, n_u))
    if correlation is None:
        majors = {"BTC", "ETH", "SOL"}
        correlation = np.array(
            [
                [1.0 if a == b else (0.8 if a in majors and b in majors else 0.4) for b in names]
                for a in names
            ]
        )
    dvol = np.array([DEFAULT_DAILY_VOL.get(u, 0.06) for u in names])
    cov = correlation * np.outer(dvol, dvol)
    returns = rng.multivariate_normal(np.zeros(n_u), cov, size=n_observations)
    s_und: list[str] = []
    s_exp: list[int] = []
    fwd: list[float] = []
    atm: list[float] = []
    skew: list[float] = []
    curv: list[float] = []
    for ui, u in enumerate(names):
        if u not in option_underlyings:
            continue
        base = DEFAULT_ATM.get(u, 0.8) * rng.uniform(0.9, 1.1)
        for d in expiry_days:
            t = d / 365.0
            s_und.append(u)
            s_exp.append(timestamp + int(round(d * 86400)))
            fwd.append(float(spot[ui] * np.exp((rate + rng.uniform(0.0, 0.05)) * t)))
            atm.append(float(base * (1.0 + 0.1 * np.exp(-d / 30.0))))
            skew.append(float(rng.uniform(-0.3, 0.0)))
            curv.append(float(rng.uniform(0.0, 0.5)))
    surface = VolSurface(
        tuple(s_und),
        np.array(s_exp, dtype=np.int64),
        np.array(fwd),
        np.array(atm),
        np.array(skew),
        np.array(curv),
    )
    return MarketSnapshot(timestamp, names, spot, perp, rate, surface, returns)


def synthetic_instruments(
    market: MarketSnapshot,
    *,
    strikes_per_expiry: int = 20,
    perp_underlyings: Sequence[str] = ("BTC", "ETH", "SOL"),
    token_underlyings: Sequence[str] | None = None,
) -> InstrumentTable:
    """Tokens (default: one per underlying), perps, and a call and a put per strike of
    every surface slice (strikes spread over about +-2.5 standard deviations)."""
    kinds: list[int] = []
    unds: list[str] = []
    strikes: list[float] = []
    expiries: list[int] = []
    for u in market.underlyings if token_underlyings is None else token_underlyings:
        kinds.append(InstrumentKind.SPOT)
        unds.append(u)
        strikes.append(0.0)
        expiries.append(0)
    for u in perp_underlyings:
        kinds.append(InstrumentKind.PERP)
        unds.append(u)
        strikes.append(0.0)
        expiries.append(0)
    surf = market.surface
    z = np.linspace(-2.5, 2.5, strikes_per_expiry)
    for j in range(surf.n_slices):
        t = max((int(surf.expiry[j]) - market.timestamp) / (365.0 * 86400.0), 7.0 / 365.0)
        ks = surf.forward[j] * np.exp(z * surf.atm_vol[j] * np.sqrt(t))
        ks = np.unique(np.round(ks, 6 - int(np.floor(np.log10(surf.forward[j])))))
        for k in ks.tolist():
            for kind in (InstrumentKind.CALL, InstrumentKind.PUT):
                kinds.append(kind)
                unds.append(surf.underlying[j])
                strikes.append(float(k))
                expiries.append(int(surf.expiry[j]))
    return InstrumentTable.build(kinds, unds, strikes, expiries)


def random_portfolios(
    rng: np.random.Generator,
    instruments: InstrumentTable,
    market: MarketSnapshot,
    n_accounts: int,
    positions_per_account: int,
    *,
    notional_usd: float = 100_000.0,
) -> Portfolios:
    """Random books: ``positions_per_account`` distinct instruments per account, signed
    sizes of about ``notional_usd`` underlying notional (tokens long only), and cash."""
    n = instruments.n_instruments
    k = min(positions_per_account, n)
    cols = np.argsort(rng.random((n_accounts, n)), axis=1)[:, :k] if n <= 64 else None
    if cols is None:
        cols = rng.integers(0, n, size=(n_accounts, k * 2))
        cols.sort(axis=1)
        dup = np.zeros_like(cols, dtype=bool)
        dup[:, 1:] = cols[:, 1:] == cols[:, :-1]
        cols = np.where(dup, -1, cols)
        order = np.argsort(cols == -1, axis=1, kind="stable")
        cols = np.take_along_axis(cols, order, axis=1)[:, :k]
    index = {u: i for i, u in enumerate(market.underlyings)}
    und = np.array([index[u] for u in instruments.underlying])
    spot = market.spot[und]
    c = cols.ravel()
    valid = c >= 0
    rows = np.repeat(np.arange(n_accounts), k)[valid]
    c = c[valid]
    size = rng.lognormal(0.0, 1.0, c.size) * notional_usd / spot[c]
    sign = np.where(rng.random(c.size) < 0.5, -1.0, 1.0)
    sign = np.where(instruments.kind[c] == InstrumentKind.SPOT, 1.0, sign)
    pos = sp.csr_array((size * sign, (rows, c)), shape=(n_accounts, n))
    pos.sum_duplicates()
    pos.sort_indices()
    cash = rng.uniform(0.0, 5.0, n_accounts) * notional_usd
    return Portfolios(instruments, pos, cash)


__all__ = [
    "random_portfolios",
    "returns_with_correlation",
    "synthetic_instruments",
    "synthetic_market",
]
