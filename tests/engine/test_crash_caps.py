"""A crash day caps the vol-scaled numbers instead of refusing the epoch.

One daily return of -90 %, -60 % or +150 % makes ``4.5 x EWMA vol`` exceed 100 %; the
engine caps the scan range and the token's vol haircut at ``scan.max_range``, lists what it
capped in ``RiskArrays.capped`` / ``MarginResult.capped`` and publishes a token table with
every ``downShock < 1`` (docs/risk-parameters.md, ``max_range``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from risk_engine import build_risk_arrays, compute_margin, load_params
from risk_engine.scenarios import CappedValue
from risk_engine.synthetic import random_portfolios, synthetic_instruments, synthetic_market

from .conftest import TS

# a range multiple of 4.5 (the token haircut's): one crash day then lifts BOTH vol terms
# above the cap, whatever the calibrated range_vol_multiple (3.6 x the APC factor)
_BASE = load_params()
PARAMS = dataclasses.replace(_BASE, scan=dataclasses.replace(_BASE.scan, range_vol_multiple=4.5))


@pytest.mark.parametrize("name", ["BTC", "SOL", "GOV"])
@pytest.mark.parametrize("day", [-0.9, -0.6, 1.5])
@pytest.mark.parametrize("days_after", [0, 5])
def test_crash_day_returns_capped_numbers_without_an_exception(
    name: str, day: float, days_after: int
) -> None:
    rng = np.random.default_rng(11)
    market = synthetic_market(
        rng, timestamp=TS, underlyings=("BTC", "ETH", "SOL", "GOV"), n_observations=120
    )
    u = market.underlyings.index(name)
    returns = market.returns.copy()
    returns[-1 - days_after, u] = math.log1p(day)
    spot = market.spot.copy()
    spot[u] *= 1.0 + day
    crashed = dataclasses.replace(
        market, returns=returns, spot=spot, perp_mark=market.perp_mark * spot / market.spot
    )
    ins = synthetic_instruments(crashed, strikes_per_expiry=4)
    arrays = build_risk_arrays(ins, crashed, PARAMS)

    cap = PARAMS.scan.max_range
    names = {c.name: c for c in arrays.capped}
    for key in (f"scan_range[{name}]", f"token_vol_haircut[{name}]"):
        assert key in names, arrays.capped
        assert names[key].raw > cap and names[key].capped == cap
    assert all(isinstance(c, CappedValue) and c.raw > c.capped for c in arrays.capped)
    assert arrays.scenarios.ranges[u] == cap
    tok = arrays.tokens
    assert np.all(tok.down_shock < 1.0) and np.all(np.isfinite(tok.up_shock))
    tok.to_wad()  # publishable
    pf = random_portfolios(rng, ins, crashed, 50, 6)
    r = compute_margin(pf, crashed, PARAMS, arrays=arrays)
    assert r.capped == arrays.capped
    assert np.all(np.isfinite(r.im)) and np.all(r.mm <= r.im)


def test_a_calm_market_caps_nothing() -> None:
    rng = np.random.default_rng(3)
    market = synthetic_market(rng, timestamp=TS, n_observations=120)
    arrays = build_risk_arrays(synthetic_instruments(market, strikes_per_expiry=2), market, PARAMS)
    assert arrays.capped == ()
