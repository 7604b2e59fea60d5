"""EWMA correlation and the correlation tree that turns it into offsets.

Offsets between underlyings must keep the requirement subadditive (docs/margin-method.md §6,
the lemma the running bounds of docs/protocol.md §5 rely on). We use
a positive combination of per-cluster worst cases over NESTED partitions of the
underlyings:

    scan(X) = sum_k w_k * sum_{c in P_k} max(0, max_s sum_{u in c} L_u(X, s))

where P_0 = singletons, ..., each P_k merges clusters of P_{k-1}, ``w_k >= 0`` and
``sum_k w_k = 1``. Two underlyings u, v share a cluster in partitions whose weights sum
to the level ``rho_uv`` at which they merge. For two underlyings this is exactly
``(1 - rho) * (S_u + S_v) + rho * joint``.

The partitions come from complete-linkage clustering on ``1 - rho_used``, where
``rho_used = credit_factor * max(rho, 0)``. Complete linkage merges two clusters at the
SMALLEST correlation between their members, so the implied (ultrametric) correlation of
every pair is <= its estimated ``rho_used``: no pair gets more credit than its own
correlation justifies. The result is stored per tree node: each node (cluster) carries
the total weight of the partitions in which it is a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import linkage

from ._typing import Float64Array


def ewma_weights(n: int, lam: float) -> Float64Array:
    """Normalised EWMA weights for ``n`` observations, oldest first (sum to 1)."""
    w: Float64Array = lam ** np.arange(n - 1, -1, -1, dtype=np.float64)
    out: Float64Array = w / w.sum()
    return out


def ewma_covariance(returns: Float64Array, lam: float) -> Float64Array:
    """Zero-mean EWMA covariance (RiskMetrics) of daily returns.

    Parameters
    ----------
    returns : Float64Array, shape (n_observations, n_underlyings), oldest first
    lam : decay in (0, 1)

    Returns
    -------
    Float64Array, shape (n_underlyings, n_underlyings)
    """
    w = ewma_weights(returns.shape[0], lam)
    out: Float64Array = (returns * w[:, None]).T @ returns
    return out


def ewma_volatility(returns: Float64Array, lam: float) -> Float64Array:
    """Daily EWMA volatility per underlying, shape (n_underlyings,)."""
    w = ewma_weights(returns.shape[0], lam)
    out: Float64Array = np.sqrt(w @ (returns * returns))
    return out


def ewma_correlation(returns: Float64Array, lam: float) -> Float64Array:
    """EWMA correlation matrix; a constant series has correlation 0 with the others."""
    cov = ewma_covariance(returns, lam)
    sd = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    corr = np.where(np.isfinite(corr), corr, 0.0)
    corr = np.clip(corr, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    out: Float64Array = corr
    return out


@dataclass(frozen=True)
class CorrelationTree:
    """Clusters of underlyings with their weights in the scan requirement.

    Attributes
    ----------
    members : tuple[tuple[int, ...], ...]
        Underlying indices of each node; nodes 0..n-1 are the single underlyings, later
        nodes are merges (children before parents).
    weight : Float64Array, shape (n_nodes,)
        Non-negative; along every leaf-to-root path the weights sum to 1.
    level : Float64Array, shape (n_nodes,)
        Correlation level at which the node was formed (1 for leaves).
    children : tuple[tuple[int, int] | None, ...]
        The two merged nodes (``None`` for leaves).
    used_correlation : Float64Array, shape (n, n)
        ``credit_factor * max(rho, 0)``, diagonal 1.
    """

    members: tuple[tuple[int, ...], ...]
    weight: Float64Array
    level: Float64Array
    children: tuple[tuple[int, int] | None, ...]
    used_correlation: Float64Array

    def implied_correlation(self) -> Float64Array:
        """Correlation credit each pair actually gets (sum of weights of shared nodes)."""
        n = self.used_correlation.shape[0]
        out = np.zeros((n, n))
        for mem, w in zip(self.members, self.weight.tolist(), strict=True):
            idx = np.asarray(mem)
            out[np.ix_(idx, idx)] += w
        res: Float64Array = out
        return res


def correlation_tree(corr: Float64Array, credit_factor: float) -> CorrelationTree:
    """Build the nested partitions from a correlation matrix (module docstring)."""
    n = corr.shape[0]
    used = credit_factor * np.clip(corr, 0.0, 1.0)
    np.fill_diagonal(used, 1.0)
    members: list[tuple[int, ...]] = [(i,) for i in range(n)]
    level = [1.0] * n
    children: list[tuple[int, int] | None] = [None] * n
    parent = [-1] * n
    if n >= 2:
        dist = 1.0 - used
        iu = np.triu_indices(n, 1)
        z = linkage(dist[iu], method="complete")
        for a, b, h, _ in z.tolist():
            ia, ib = int(a), int(b)
            node = len(members)
            members.append(tuple(sorted(members[ia] + members[ib])))
            # complete linkage merges at the smallest member correlation; clip noise
            lv = min(1.0 - h, level[ia], level[ib])
            level.append(max(lv, 0.0))
            children.append((ia, ib))
            parent.append(-1)
            parent[ia] = node
            parent[ib] = node
    weight = np.empty(len(members))
    for i in range(len(members)):
        up = level[parent[i]] if parent[i] >= 0 else 0.0
        weight[i] = max(level[i] - up, 0.0)
    return CorrelationTree(
        members=tuple(members),
        weight=weight,
        level=np.asarray(level),
        children=tuple(children),
        used_correlation=used,
    )


__all__ = [
    "CorrelationTree",
    "correlation_tree",
    "ewma_correlation",
    "ewma_covariance",
    "ewma_volatility",
    "ewma_weights",
]
