"""Black-76 on forwards, vectorised.

``V = df * (F N(d1) - K N(d2))`` for a call, ``df * (K N(-d2) - F N(-d1))`` for a put,
``df = exp(-r T)``, ``d1 = (ln(F/K) + sigma^2 T / 2) / (sigma sqrt(T))``, ``d2 = d1 -
sigma sqrt(T)``. At ``T <= 0`` (an option that expires within a scenario's horizon) the
value is the intrinsic value ``max(F - K, 0)`` / ``max(K - F, 0)``, undiscounted. All
arguments broadcast; tenors are in years, vols annualised.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from ._typing import BoolArray, Float64Array


def _d1_d2(
    forward: Float64Array, strike: Float64Array, tenor: Float64Array, vol: Float64Array
) -> tuple[Float64Array, Float64Array, BoolArray]:
    live = (tenor > 0) & (vol > 0)
    sd = np.where(live, vol * np.sqrt(np.where(live, tenor, 1.0)), 1.0)
    d1 = (np.log(forward / strike) + 0.5 * sd * sd) / sd
    return d1, d1 - sd, live


def black76(
    forward: Float64Array | float,
    strike: Float64Array | float,
    tenor: Float64Array | float,
    vol: Float64Array | float,
    rate: float,
    is_call: BoolArray | bool,
) -> Float64Array:
    """Black-76 premium per unit (USD), broadcast over all array arguments.

    Parameters
    ----------
    forward, strike : USD per unit, > 0
    tenor : years to expiry (<= 0 means expired: intrinsic value)
    vol : annualised implied vol, > 0
    rate : continuously compounded discount rate
    is_call : True for calls, False for puts
    """
    f = np.asarray(forward, dtype=np.float64)
    k = np.asarray(strike, dtype=np.float64)
    t = np.asarray(tenor, dtype=np.float64)
    v = np.asarray(vol, dtype=np.float64)
    c = np.asarray(is_call, dtype=np.bool_)
    d1, d2, live = _d1_d2(f, k, t, v)
    df = np.exp(-rate * np.maximum(t, 0.0))
    call = f * ndtr(d1) - k * ndtr(d2)
    put = k * ndtr(-d2) - f * ndtr(-d1)
    value = np.where(c, call, put)
    intrinsic = np.where(c, np.maximum(f - k, 0.0), np.maximum(k - f, 0.0))
    out: Float64Array = np.where(live, df * np.maximum(value, 0.0), intrinsic)
    return out


def black76_delta(
    forward: Float64Array | float,
    strike: Float64Array | float,
    tenor: Float64Array | float,
    vol: Float64Array | float,
    rate: float,
    is_call: BoolArray | bool,
) -> Float64Array:
    """``dV/dF`` per unit (dimensionless), same broadcasting as :func:`black76`."""
    f = np.asarray(forward, dtype=np.float64)
    k = np.asarray(strike, dtype=np.float64)
    t = np.asarray(tenor, dtype=np.float64)
    v = np.asarray(vol, dtype=np.float64)
    c = np.asarray(is_call, dtype=np.bool_)
    d1, _, live = _d1_d2(f, k, t, v)
    df = np.exp(-rate * np.maximum(t, 0.0))
    live_delta = np.where(c, df * ndtr(d1), df * (ndtr(d1) - 1.0))
    dead_delta = np.where(c, (f > k).astype(np.float64), -(f < k).astype(np.float64))
    out: Float64Array = np.where(live, live_delta, dead_delta)
    return out


def black76_spot_delta(
    spot: Float64Array | float,
    forward: Float64Array | float,
    strike: Float64Array | float,
    tenor: Float64Array | float,
    vol: Float64Array | float,
    rate: float,
    is_call: BoolArray | bool,
) -> Float64Array:
    """``dV/dS`` per unit: :func:`black76_delta` (``dV/dF``) times ``dF/dS = F/S`` (the
    forward moves with spot at a fixed basis). What a perp on spot hedges."""
    d = black76_delta(forward, strike, tenor, vol, rate, is_call)
    out: Float64Array = (
        d * np.asarray(forward, dtype=np.float64) / np.asarray(spot, dtype=np.float64)
    )
    return out


def black76_delta_one_sided(
    forward: Float64Array | float,
    strike: Float64Array | float,
    tenor: Float64Array | float,
    vol: Float64Array | float,
    rate: float,
    is_call: BoolArray | bool,
    *,
    right: bool,
) -> Float64Array:
    """Right (``right=True``) or left derivative ``dV/dF`` of :func:`black76` in ``F``.

    Equal to :func:`black76_delta` except for an expired option exactly at its strike,
    where the payoff has a kink: right derivative 1 (call) / 0 (put), left 0 / -1. The
    continuous-range pad needs the one-sided slopes (risk_arrays.py).
    """
    out = black76_delta(forward, strike, tenor, vol, rate, is_call)
    f = np.asarray(forward, dtype=np.float64)
    k = np.asarray(strike, dtype=np.float64)
    t = np.asarray(tenor, dtype=np.float64)
    v = np.asarray(vol, dtype=np.float64)
    c = np.asarray(is_call, dtype=np.bool_)
    kink = ~((t > 0) & (v > 0)) & (f == k)
    side = np.where(c, 1.0, 0.0) if right else np.where(c, 0.0, -1.0)
    res: Float64Array = np.where(kink, side, out)
    return res


__all__ = ["black76", "black76_delta", "black76_delta_one_sided", "black76_spot_delta"]
