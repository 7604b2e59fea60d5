"""Add-ons on top of the scan loss.

* Short option minimum: ``sum_i m_i * max(0, -x_i)`` with ``m_i = rate * spot`` per unit
  short option. Convex and positively homogeneous, hence subadditive.
* Minimum charge: ``sum_i n_i * |x_i|`` with ``n_i = minimum_charge.rate * spot`` per unit
  of every instrument: no book with a position is at zero margin (a perfect hedge
  included). Convex and positively homogeneous, hence subadditive.
* Confidence add-on: ``sum_i c_i * |x_i|`` with ``c_i = rate * (1 - confidence_u) * spot``
  when the feed's confidence in underlying ``u`` is below ``threshold``, else 0
  (``[confidence]`` of the parameters, docs/risk-parameters.md). The confidence is an input
  of the engine (``MarketSnapshot.confidence``); the engine does not judge the sources.
  Charged exactly as the minimum charge (it is added to it per unit), so it is convex,
  positively homogeneous, subadditive and part of every instrument's published loss.
* Concentration: ``sum_u k_u * max(0, |D_u(X)| - T_u)`` with ``D_u`` the account's net
  delta notional (USD) on underlying ``u``. It is SUPERadditive (two books each under the
  threshold can sum above it), so it cannot rely on subadditivity. Instead its slope is
  capped: along instrument ``i`` it changes by at most ``k_u * |d_i|`` per unit, where
  ``d_i`` is the instrument's delta notional per unit. That slope is folded into the
  instrument's published loss per unit (leaves.py), which keeps docs/protocol.md §5
  sound for the whole requirement. Merged into one book, two books' concentration
  terms can exceed their sum by at most ``k_u * T_u`` per underlying
  (:func:`concentration_gap_bound`; no protocol check relies on it: a liquidation
  transfers a whole subaccount and merges nothing).
"""

from __future__ import annotations

import numpy as np

from ._typing import Float64Array, Int64Array


def short_option_minimum(
    data: Float64Array,
    indices: Int64Array,
    account_of_nnz: Int64Array,
    charge: Float64Array,
    n: int,
) -> Float64Array:
    """Per-account short option minimum.

    Parameters
    ----------
    data, indices : the CSR data and column indices of the positions
    account_of_nnz : account (row) of each stored entry
    charge : Float64Array, shape (n_instruments,), USD per unit short (0 if not an option)
    n : number of accounts
    """
    w = np.maximum(-data, 0.0) * charge[indices]
    out: Float64Array = np.bincount(account_of_nnz, weights=w, minlength=n).astype(np.float64)
    return out


def minimum_charge(
    data: Float64Array,
    indices: Int64Array,
    account_of_nnz: Int64Array,
    charge: Float64Array,
    n: int,
) -> Float64Array:
    """Per-account minimum charge ``sum_i charge_i |x_i|`` (arguments as
    :func:`short_option_minimum`; ``charge`` is USD per unit of ``|size|``)."""
    w = np.abs(data) * charge[indices]
    out: Float64Array = np.bincount(account_of_nnz, weights=w, minlength=n).astype(np.float64)
    return out


def confidence_rate(confidence: Float64Array, threshold: float, rate: float) -> Float64Array:
    """Confidence add-on per USD of notional, per underlying (shape of ``confidence``):
    ``rate * (1 - confidence)`` where ``confidence < threshold``, else 0."""
    c = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    out: Float64Array = np.where(c < threshold, rate * (1.0 - c), 0.0)
    return out


def concentration_charge(
    delta_notional: Float64Array, rate: Float64Array, threshold: Float64Array
) -> Float64Array:
    """``sum_u rate_u * max(0, |D_au| - T_u)``.

    Parameters
    ----------
    delta_notional : Float64Array, shape (n_accounts, n_underlyings), USD
    rate, threshold : Float64Array, shape (n_underlyings,)
    """
    excess = np.maximum(np.abs(delta_notional) - threshold[None, :], 0.0)
    out: Float64Array = np.zeros(delta_notional.shape[0])
    for u in range(rate.shape[0]):  # fixed order: same bits for any number of accounts
        out += rate[u] * excess[:, u]
    return out


def concentration_slope(
    delta_per_unit: Float64Array, rate_of_instrument: Float64Array
) -> Float64Array:
    """Steepest marginal concentration charge per unit of each instrument (USD per unit)."""
    out: Float64Array = rate_of_instrument * np.abs(delta_per_unit)
    return out


def concentration_gap_bound(rate: Float64Array, threshold: Float64Array) -> float:
    """Largest ``conc(A + B) - conc(A) - conc(B)`` (USD): ``sum_u rate_u * T_u``."""
    return float(np.sum(rate * threshold))


__all__ = [
    "concentration_charge",
    "concentration_slope",
    "confidence_rate",
    "minimum_charge",
    "short_option_minimum",
    "concentration_gap_bound",
]
