"""The backtest's implied-vol rule: what vol a day's options are marked and margined at.

Only the history known at the close of day t enters the value for day t:

- where the underlying has an implied-vol index (BTC: Deribit DVOL), its close on day t,
  or the last close at most ``max_stale_days`` before t when the index skipped a day;
- otherwise the realized vol of the last ``window_days`` close-to-close log returns
  ending on day t (zero mean, annualised with 365 days: crypto trades every day).

The smile is flat: every strike and expiry of an underlying gets the day's one number.
The next day's vol comes from the same rule, so a crash day that lifts DVOL or the
realized vol also reprices the options with the higher vol (the vol move is in the loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from risk_engine.backtest._typing import Float64Array

__all__ = ["SOURCE_DVOL", "SOURCE_NONE", "SOURCE_REALIZED", "VolPath", "VolRule", "vol_path"]

SOURCE_NONE = 0
SOURCE_DVOL = 1
SOURCE_REALIZED = 2


@dataclass(frozen=True, kw_only=True)
class VolRule:
    """Parameters of the vol rule.

    Attributes
    ----------
    window_days : int
        Realized-vol window, days (30: the same horizon as DVOL's 30-day implied vol).
    annualisation_days : float
        Days per year for annualising daily variance (365: crypto trades every day).
    max_stale_days : int
        Reuse the last index close for at most this many days when the index has a gap
        (DVOL skips single days; the longest gap in the shipped file is 4 days).
    """

    window_days: int = 30
    annualisation_days: float = 365.0
    max_stale_days: int = 4

    def __post_init__(self) -> None:
        if self.window_days < 2:
            raise ValueError(f"window_days={self.window_days} must be >= 2")
        if not self.annualisation_days > 0:
            raise ValueError(f"annualisation_days={self.annualisation_days} must be > 0")
        if self.max_stale_days < 0:
            raise ValueError(f"max_stale_days={self.max_stale_days} must be >= 0")


@dataclass(frozen=True)
class VolPath:
    """The rule's vol per calendar day.

    Attributes
    ----------
    vol : Float64Array, shape (n_days,)
        Annualised vol as a fraction; NaN where neither source is available.
    source : ndarray of int8, shape (n_days,)
        ``SOURCE_DVOL``, ``SOURCE_REALIZED`` or ``SOURCE_NONE`` per day.
    """

    vol: Float64Array
    source: np.ndarray[tuple[int], np.dtype[np.int8]]


def realized_vol(close: Float64Array, window_days: int, annualisation_days: float) -> Float64Array:
    """Trailing realized vol per day; NaN until ``window_days`` returns ending that day exist.

    Parameters
    ----------
    close : Float64Array, shape (n_days,)
        Closes on a calendar of consecutive days, NaN where missing. A window that holds
        a missing return gives NaN (no silent shortening of the window).
    """
    log_close = np.log(close)
    returns = np.full(close.shape, np.nan)
    returns[1:] = np.diff(log_close)
    squared = np.where(np.isnan(returns), 0.0, returns**2)
    missing = np.isnan(returns).astype(np.int64)
    csum = np.concatenate(([0.0], np.cumsum(squared)))
    cmiss = np.concatenate(([0], np.cumsum(missing)))
    out = np.full(close.shape, np.nan)
    if close.size > window_days:
        ends = np.arange(window_days, close.size)
        sums = csum[ends + 1] - csum[ends + 1 - window_days]
        misses = cmiss[ends + 1] - cmiss[ends + 1 - window_days]
        values = np.sqrt(sums / window_days * annualisation_days)
        out[ends] = np.where(misses == 0, values, np.nan)
    return out


def _forward_fill(values: Float64Array, max_stale: int) -> Float64Array:
    """Carry each known value forward for at most ``max_stale`` days (past only)."""
    index = np.where(np.isnan(values), -1, np.arange(values.size))
    last = np.maximum.accumulate(index)
    age = np.arange(values.size) - last
    ok = (last >= 0) & (age <= max_stale)
    return np.where(ok, values[np.maximum(last, 0)], np.nan)


def vol_path(
    close: Float64Array,
    index_vol: Float64Array | None,
    rule: VolRule | None = None,
) -> VolPath:
    """Apply the rule on one calendar of consecutive days.

    Parameters
    ----------
    close : Float64Array, shape (n_days,)
        Daily closes, NaN where missing.
    index_vol : Float64Array, shape (n_days,), optional
        Implied-vol index as a fraction, NaN where missing; None if the underlying has none.
    rule : VolRule, optional
        Default ``VolRule()``.
    """
    rule = rule or VolRule()
    if index_vol is not None and index_vol.shape != close.shape:
        raise ValueError(f"index_vol shape {index_vol.shape} != close shape {close.shape}")
    realized = realized_vol(close, rule.window_days, rule.annualisation_days)
    source = np.where(np.isnan(realized), SOURCE_NONE, SOURCE_REALIZED).astype(np.int8)
    vol = realized
    if index_vol is not None:
        implied = _forward_fill(index_vol, rule.max_stale_days)
        has_index = ~np.isnan(implied)
        vol = np.where(has_index, implied, realized)
        source = np.where(has_index, np.int8(SOURCE_DVOL), source).astype(np.int8)
    return VolPath(vol=vol, source=source)
