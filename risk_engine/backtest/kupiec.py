"""Kupiec's proportion-of-failures (POF) test of a coverage level.

With ``x`` exceedances in ``n`` days and a target exceedance probability ``p = 1 - c``,

    LR = -2 ln[(1 - p)^(n - x) p^x] + 2 ln[(1 - x/n)^(n - x) (x/n)^x]

is chi-squared with one degree of freedom under the null that the true rate is ``p``
(Kupiec 1995, "Techniques for verifying the accuracy of risk measurement models").
The test is two-sided: too few exceedances reject too. A margin is meant to cover at
least ``c``, so the verdict also says the direction: ``too_many`` is the failure that
matters for solvency; a rejection for too few is capital left idle, which the backtest
shows as IM over gross notional.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.special import xlogy
from scipy.stats import chi2

__all__ = ["KupiecResult", "kupiec_pof"]


@dataclass(frozen=True)
class KupiecResult:
    """Outcome of :func:`kupiec_pof`.

    Attributes
    ----------
    n_days, n_exceedances : int
    coverage : float
        Target coverage ``c`` (0.99).
    lr : float
        Likelihood-ratio statistic, >= 0.
    p_value : float
        ``P(chi2_1 >= lr)``.
    rejected : bool
        Two-sided rejection at ``alpha``.
    too_many : bool
        Rejected and the observed rate is above ``1 - coverage``: the margin is too low.
    """

    n_days: int
    n_exceedances: int
    coverage: float
    alpha: float
    lr: float
    p_value: float
    rejected: bool
    too_many: bool

    @property
    def verdict(self) -> str:
        if not self.rejected:
            return "not rejected"
        return "REJECTED: too many" if self.too_many else "rejected: too few"


def kupiec_pof(
    n_exceedances: int, n_days: int, *, coverage: float = 0.99, alpha: float = 0.05
) -> KupiecResult:
    """Kupiec POF likelihood-ratio test of ``n_exceedances`` in ``n_days`` at ``coverage``."""
    if n_days <= 0:
        raise ValueError(f"n_days={n_days} must be > 0")
    if not 0 <= n_exceedances <= n_days:
        raise ValueError(f"n_exceedances={n_exceedances} must lie in [0, n_days={n_days}]")
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage={coverage} must lie in (0, 1)")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha} must lie in (0, 1)")
    p = 1.0 - coverage
    x, n = n_exceedances, n_days
    rate = x / n
    # xlogy(0, 0) = 0: the limits x = 0 and x = n are well defined
    log_null = xlogy(n - x, 1.0 - p) + xlogy(x, p)
    log_alt = xlogy(n - x, 1.0 - rate) + xlogy(x, rate)
    lr = max(0.0, float(-2.0 * (log_null - log_alt)))
    p_value = float(chi2.sf(lr, df=1))
    rejected = p_value < alpha
    return KupiecResult(
        n_days=n,
        n_exceedances=x,
        coverage=coverage,
        alpha=alpha,
        lr=lr,
        p_value=p_value,
        rejected=rejected,
        too_many=rejected and rate > p,
    )
