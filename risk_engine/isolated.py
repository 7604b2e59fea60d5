"""Portfolio margin against isolated margin: the same engine, each position alone.

An isolated-margin venue with the same risk model asks of an account the sum of the IMs of
its positions, each margined as an account of its own (a collateral balance counts as a
position: it is a spot column of the book). :class:`IsolatedMargin` holds both sides and
the figures quoted from them, for ``risk_engine.efficiency`` and the demo's capital table
(scripts/crash.py), so that "isolated IM", "extra capital" and "ratio" mean one thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from risk_engine._typing import Float64Array, Int64Array
from risk_engine.errors import InvalidInputError

__all__ = ["IsolatedMargin"]


@dataclass(frozen=True)
class IsolatedMargin:
    """IM of accounts as portfolios and as the sum of their positions margined alone. USD.

    Attributes
    ----------
    portfolio_im : Float64Array, shape (n_accounts,)
        Each account's IM as one portfolio.
    position_im : Float64Array, shape (n_positions,)
        Each position's IM as an account of its own.
    owner : Int64Array, shape (n_positions,)
        The account (row of ``portfolio_im``) each position belongs to.
    """

    portfolio_im: Float64Array
    position_im: Float64Array
    owner: Int64Array

    def __post_init__(self) -> None:
        pim = np.asarray(self.portfolio_im, dtype=np.float64)
        qim = np.asarray(self.position_im, dtype=np.float64)
        own = np.asarray(self.owner, dtype=np.int64)
        if pim.ndim != 1 or qim.ndim != 1 or own.shape != qim.shape:
            raise InvalidInputError(
                "isolated.owner",
                f"portfolio_im {pim.shape}, position_im {qim.shape}, owner {own.shape}: "
                "all 1-D, position_im and owner of one length",
            )
        for name, v in (("portfolio_im", pim), ("position_im", qim)):
            if not np.all(np.isfinite(v)) or np.any(v < 0.0):
                raise InvalidInputError(f"isolated.{name}", f"an IM is finite and >= 0: {v}")
        if own.size and (own.min() < 0 or own.max() >= pim.size):
            raise InvalidInputError(
                "isolated.owner", f"must index portfolio_im (0..{pim.size - 1}): {own}"
            )
        object.__setattr__(self, "portfolio_im", pim)
        object.__setattr__(self, "position_im", qim)
        object.__setattr__(self, "owner", own)

    @property
    def isolated_im(self) -> Float64Array:
        """Per account: the sum of its positions' IMs, shape (n_accounts,)."""
        out: Float64Array = np.bincount(
            self.owner, weights=self.position_im, minlength=self.portfolio_im.size
        ).astype(np.float64)
        return out

    @property
    def extra(self) -> Float64Array:
        """Per account: the capital isolated margin asks on top of portfolio margin."""
        out: Float64Array = self.isolated_im - self.portfolio_im
        return out

    @property
    def ratio(self) -> Float64Array:
        """Per account: isolated IM / portfolio IM (NaN where the portfolio IM is 0)."""
        out: Float64Array = np.full(self.portfolio_im.shape, np.nan)
        np.divide(self.isolated_im, self.portfolio_im, out=out, where=self.portfolio_im > 0)
        return out
