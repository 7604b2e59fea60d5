"""Account aggregation: equity, IM, MM and their breakdown for many accounts at once.

For an account X (sizes x_i) and the shared :class:`RiskArrays`:

* ``L_u(X, s) = sum_{i on u} x_i * loss[i, s]``: per-underlying scenario loss, for all
  accounts at once with ONE sparse product ``Y @ loss`` where ``Y`` has a row per
  (account, underlying) (built from the CSR arrays without sorting).
  The scan columns add the continuous-range pad of long positions,
  ``sum_{i on u} max(x_i, 0) * pad[i, k]``, in the same product (a long position in a
  padded instrument reads row ``n_i + i`` of ``RiskArrays.stacked = [loss; loss + pad]``).
* per cluster ``c`` of the correlation tree, ``J_c = max(0, max_k sum_{u in c} L_u(X, k))``
  over every scan column (IM) or the MM columns (MM): at least the worst loss of a co-move
  anywhere in the continuous range (docs/margin-method.md §6); ``scan = sum_c weight[c] J_c``.
* ``basis(X) = sum_u max(0, B_u^up(X), B_u^down(X))``.
* ``short_option(X) = sum_i m_i max(0, -x_i)``; ``minimum(X) = sum_i n_i |x_i|``.
* ``concentration(X) = sum_u k_u max(0, |D_u(X)| - T_u)``.
* ``add = basis + short_option + minimum + concentration``
* ``IM = scan(X, IM) + add`` and ``MM = scan(X, MM) + mm_scale * add``

Every term except concentration is a positive combination of maxima of sublinear functions
of X over a set fixed by (market, params): subadditive and positively homogeneous. The MM
segments are a subset of the IM segments and ``mm_scale < 1``, and ``add >= minimum > 0``
for any book with a position: ``MM < IM`` whenever IM > 0 (docs/margin-method.md §6).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ._typing import Float64Array, Int64Array
from .addons import concentration_charge, minimum_charge, short_option_minimum
from .errors import InvalidInputError
from .instruments import Portfolios, validate_portfolios
from .leaves import (
    InstrumentLeaves,
    TokenTable,
    wad_account_values,
    wad_account_values_many,
    widened_account_values,
)
from .market import MarketSnapshot
from .params import RiskParams
from .risk_arrays import RiskArrays, build_risk_arrays
from .scenarios import CappedValue
from .units import Wad

ACCOUNT_PAD_REL = 1e-12
"""Relative pad (of gross notional + |cash|) applied when posting account numbers."""

DEFAULT_CHUNK = 4096


@dataclass(frozen=True)
class MarginResult:
    """Per-account numbers (USD floats), all arrays shape (n_accounts,).

    Attributes
    ----------
    equity : cash + sum(size * mark)
    im, mm : initial and maintenance requirement
    scan_im, scan_mm : the scan terms of IM and of MM (before ``mm_scale``)
    basis, short_option, minimum, concentration : the add-ons (in IM; MM has mm_scale x them)
    worst_scenario : Int64Array
        Template scenario with the largest all-underlyings co-move loss.
    gross_notional : sum_i |x_i| * spot of its underlying (USD)
    arrays : RiskArrays
        The shared arrays used (leaves, token table, scenarios, correlation).
    """

    equity: Float64Array
    im: Float64Array
    mm: Float64Array
    scan_im: Float64Array
    scan_mm: Float64Array
    basis: Float64Array
    short_option: Float64Array
    minimum: Float64Array
    concentration: Float64Array
    worst_scenario: Int64Array
    gross_notional: Float64Array
    cash: Float64Array
    arrays: RiskArrays

    @property
    def n_accounts(self) -> int:
        return int(self.im.shape[0])

    @property
    def leaves(self) -> InstrumentLeaves:
        """INSTRUMENT leaf numbers (per instrument)."""
        return self.arrays.leaves

    @property
    def tokens(self) -> TokenTable:
        """The epoch's token table."""
        return self.arrays.tokens

    @property
    def capped(self) -> tuple[CappedValue, ...]:
        """Values capped for this market instead of refusing the epoch (``RiskArrays.capped``)."""
        return self.arrays.capped

    def worst_words(self, account: int) -> str:
        """Words of the account's worst scenario."""
        return self.arrays.scenarios.words(int(self.worst_scenario[account]))

    def to_wad(self, account: int) -> tuple[Wad, Wad, Wad]:
        """``(equity, im, mm)`` of one account in WAD: equity down, requirements up.

        Each is first widened by ``ACCOUNT_PAD_REL * (gross_notional + |cash|)`` to
        cover float rounding in the aggregation.
        """
        pad = ACCOUNT_PAD_REL * (
            float(self.gross_notional[account]) + abs(float(self.cash[account]))
        )
        return wad_account_values(
            float(self.equity[account]), float(self.im[account]), float(self.mm[account]), pad
        )

    def to_wad_all(self) -> tuple[list[Wad], list[Wad], list[Wad]]:
        """:meth:`to_wad` of every account, as three lists (equity, im, mm): the same
        integers, computed in one pass (``wad_account_values_many``)."""
        pad = ACCOUNT_PAD_REL * (self.gross_notional + np.abs(self.cash))
        return wad_account_values_many(self.equity, self.im, self.mm, pad)

    def widened_all(self) -> tuple[Float64Array, Float64Array, Float64Array] | None:
        """The floats :meth:`to_wad_all` rounds (equity down, im and mm up), or None when
        one is out of range (:meth:`to_wad_all` then raises)."""
        pad = ACCOUNT_PAD_REL * (self.gross_notional + np.abs(self.cash))
        return widened_account_values(self.equity, self.im, self.mm, pad)


def _check_arrays(
    arrays: RiskArrays, market: MarketSnapshot, params: RiskParams, portfolios: Portfolios
) -> None:
    """Cheap consistency checks of shared arrays against the call's inputs.

    The market is matched by timestamp and underlyings only: the caller must pass the
    arrays built from THIS snapshot (two snapshots with one timestamp are not told apart).
    """
    if arrays.params is not params and arrays.params != params:
        raise InvalidInputError("arrays", "built with other risk parameters")
    if arrays.timestamp != int(market.timestamp):
        raise InvalidInputError(
            "arrays", f"built for timestamp {arrays.timestamp}, market is {market.timestamp}"
        )
    if arrays.scenarios.underlyings != market.underlyings:
        raise InvalidInputError("arrays", "built for other underlyings")
    ins = portfolios.instruments
    if ins is not arrays.instruments and (
        ins.n_instruments != arrays.n_instruments
        or ins.underlying != arrays.instruments.underlying
        or not np.array_equal(ins.kind, arrays.instruments.kind)
        or not np.array_equal(ins.strike, arrays.instruments.strike)
        or not np.array_equal(ins.expiry, arrays.instruments.expiry)
    ):
        raise InvalidInputError("portfolios.instruments", "differ from the arrays' instruments")


def per_underlying(
    positions: sp.csr_array, arrays: RiskArrays, *, padded: bool = True
) -> Float64Array:
    """``positions`` aggregated per (account, underlying): shape (n, n_u, n_columns).

    Column layout as ``RiskArrays.loss``. With ``padded`` (what the requirement uses) the
    scan columns are ``L_u(X, k) + sum_{i on u} max(x_i, 0) pad[i, k]``; without, the plain
    scenario losses (for reports). One sparse product over the stored entries (plus the
    long positions in padded instruments); no Python loop per position.
    """
    n = positions.shape[0]
    n_u = arrays.n_underlyings
    n_i = arrays.n_instruments
    indices = positions.indices
    acc = np.repeat(np.arange(n, dtype=np.int64), np.diff(positions.indptr))
    rows = acc * n_u + arrays.underlying_index[indices]
    if padded:
        # a long position in a padded instrument reads row n_i + i of [loss; loss + pad]:
        # the same entries as the plain product, so the padding costs no extra work
        cols = indices + n_i * ((positions.data > 0) & arrays.has_pad[indices])
        y = sp.coo_array((positions.data, (rows, cols)), shape=(n * n_u, 2 * n_i))
        g = y @ arrays.stacked
    else:
        g = sp.coo_array((positions.data, (rows, indices)), shape=(n * n_u, n_i)) @ arrays.loss
    out: Float64Array = np.asarray(g).reshape(n, n_u, arrays.loss.shape[1])
    return out


def cluster_worst(losses: Float64Array, arrays: RiskArrays) -> tuple[Float64Array, Float64Array]:
    """Per-cluster worst losses over the continuous IM and MM ranges.

    Parameters
    ----------
    losses : Float64Array, shape (n, n_u, >= n_scan_columns), from :func:`per_underlying`
        (padded).

    Returns
    -------
    node_im, node_mm : Float64Array, shape (n, n_nodes)
        ``max(0, max_k sum_{u in c} L_u(X, k))`` over every scan column (IM) or the MM
        columns (the first ``n_mm``); 0 for nodes of weight 0. Cluster sums are built
        bottom-up (a parent's columns are the sum of its two children's), so each cluster
        costs one addition and two reductions.

    One compiled pass per account (:func:`_cluster_rows`), the cluster sums of one account
    in a buffer that stays in cache: the same additions in the same order and the same
    maxima (exact, NaN propagating as numpy's) as whole-column numpy, which made a new
    ``(n, n_scan)`` array per cluster and read each twice (half of the aggregation at
    100,000 accounts); tests/engine/test_margin_kernels.py compares the two bit for bit.
    """
    tree = arrays.tree
    n_nodes = len(tree.members)
    children = np.array([ch if ch is not None else (-1, -1) for ch in tree.children], np.int64)
    node_im = np.zeros((losses.shape[0], n_nodes))
    node_mm = np.zeros((losses.shape[0], n_nodes))
    _cluster_rows(
        losses,
        children.reshape(n_nodes, 2),
        np.asarray(tree.weight > 0),
        arrays.n_scan_columns,
        arrays.scenarios.n_mm,
        node_im,
        node_mm,
    )
    return node_im, node_mm


@numba.njit(cache=True, nogil=True)
def _maximum(a: float, b: float) -> float:  # pragma: no cover - compiled
    """``np.maximum(a, b)``: ``a`` when ``a >= b`` or ``a`` is NaN, else ``b``."""
    return a if (a >= b or a != a) else b


@numba.njit(cache=True, nogil=True)
def _cluster_rows(  # pragma: no cover - compiled; tested against the numpy twin
    losses: Float64Array,
    children: Int64Array,
    positive: npt.NDArray[np.bool_],
    n_im: int,
    n_mm: int,
    node_im: Float64Array,
    node_mm: Float64Array,
) -> None:
    n_nodes = children.shape[0]
    sums = np.empty((n_nodes, n_im))
    for i in range(losses.shape[0]):
        for c in range(n_nodes):
            a, b = children[c, 0], children[c, 1]
            if a < 0:  # a leaf: underlying c's own losses
                for k in range(n_im):
                    sums[c, k] = losses[i, c, k]
            else:
                for k in range(n_im):
                    sums[c, k] = sums[a, k] + sums[b, k]
            if positive[c]:
                mm = sums[c, 0]
                for k in range(1, n_mm):
                    mm = _maximum(mm, sums[c, k])
                node_mm[i, c] = _maximum(mm, 0.0)
                if n_im > n_mm:
                    im = sums[c, n_mm]
                    for k in range(n_mm + 1, n_im):
                        im = _maximum(im, sums[c, k])
                    node_im[i, c] = _maximum(_maximum(mm, im), 0.0)
                else:
                    node_im[i, c] = _maximum(mm, 0.0)


def weighted_sum(columns: Float64Array, weight: Float64Array) -> Float64Array:
    """``sum_c weight[c] * columns[:, c]`` in a fixed order, element by element.

    Not a BLAS product on purpose: a BLAS kernel may sum in a different order for a
    different number of rows, and a verifier recomputing ONE account must get the same
    bits as the keeper computing all of them (the leaf hash depends on them).
    """
    out = np.zeros(columns.shape[0])
    for c in range(columns.shape[1]):
        if weight[c] != 0.0:
            out += weight[c] * columns[:, c]
    return out


def _aggregate(
    positions: sp.csr_array, cash: Float64Array, arrays: RiskArrays
) -> dict[str, Float64Array | Int64Array]:
    n = positions.shape[0]
    n_t = arrays.n_scenarios  # worst_scenario: the template point with the largest padded loss
    g = per_underlying(positions, arrays)
    node_im, node_mm = cluster_worst(g, arrays)
    scan_im = weighted_sum(node_im, arrays.tree.weight)
    scan_mm = weighted_sum(node_mm, arrays.tree.weight)
    joint = g[:, 0, :n_t].copy()
    for u in range(1, arrays.n_underlyings):
        joint += g[:, u, :n_t]
    worst = joint.argmax(axis=1).astype(np.int64)
    bu = g[:, :, arrays.col_basis_up]
    bd = g[:, :, arrays.col_basis_down]
    basis = weighted_sum(np.maximum(np.maximum(bu, bd), 0.0), np.ones(arrays.n_underlyings))
    conc = concentration_charge(
        g[:, :, arrays.col_delta], arrays.concentration_rate, arrays.concentration_threshold
    )
    equity = cash + weighted_sum(g[:, :, arrays.col_mark], np.ones(arrays.n_underlyings))
    acc = np.repeat(np.arange(n, dtype=np.int64), np.diff(positions.indptr))
    som = short_option_minimum(
        positions.data, positions.indices, acc, arrays.short_option_charge, n
    )
    minimum = minimum_charge(positions.data, positions.indices, acc, arrays.minimum_charge, n)
    gross = np.bincount(
        acc,
        weights=np.abs(positions.data) * arrays.unit_notional[positions.indices],
        minlength=n,
    ).astype(np.float64)
    addons = basis + som + minimum + conc
    return {
        "equity": equity,
        "scan_im": scan_im,
        "scan_mm": scan_mm,
        "basis": basis,
        "short_option": som,
        "minimum": minimum,
        "concentration": conc,
        "im": scan_im + addons,
        "mm": scan_mm + arrays.mm_scale * addons,
        "worst_scenario": worst,
        "gross_notional": gross,
    }


_FIELDS = (
    "equity",
    "im",
    "mm",
    "scan_im",
    "scan_mm",
    "basis",
    "short_option",
    "minimum",
    "concentration",
    "worst_scenario",
    "gross_notional",
)


def compute_margin(
    portfolios: Portfolios,
    market: MarketSnapshot,
    params: RiskParams,
    *,
    arrays: RiskArrays | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> MarginResult:
    """Equity, IM, MM and breakdown of every account in ``portfolios``.

    Parameters
    ----------
    portfolios : Portfolios
        Any set (or shard) of accounts; columns = ``arrays.instruments`` rows.
    market : MarketSnapshot
    params : RiskParams
    arrays : RiskArrays, optional
        Shared arrays from :func:`build_risk_arrays` for ``(portfolios.instruments,
        market, params)``; built here when omitted. Pass them to margin a shard of
        accounts (or one account after a trade) without re-pricing anything.
    chunk_size : int
        Accounts per aggregation block (bounds memory; results do not depend on it).

    Raises
    ------
    InvalidInputError
        Bad portfolio (NaN size, wrong instrument count...) or arrays built for another
        market. Nothing is returned half-computed.
    """
    if chunk_size <= 0:
        raise InvalidInputError("chunk_size", "must be > 0")
    if arrays is None:
        validate_portfolios(portfolios, portfolios.instruments.n_instruments)
        arrays = build_risk_arrays(portfolios.instruments, market, params)
    else:
        _check_arrays(arrays, market, params, portfolios)
        validate_portfolios(portfolios, arrays.n_instruments)
    n = portfolios.n_accounts
    pos = portfolios.positions
    if not pos.has_canonical_format:
        # sorted, duplicate-free rows: the float sums then do not depend on how the
        # caller built the matrix, so anyone recomputing an account gets the same bits
        pos = pos.copy()
        pos.sum_duplicates()
    if n <= chunk_size:
        out = _aggregate(pos, portfolios.cash, arrays)
    else:
        parts = [
            _aggregate(
                sp.csr_array(pos[start : start + chunk_size]),
                portfolios.cash[start : start + chunk_size],
                arrays,
            )
            for start in range(0, n, chunk_size)
        ]
        out = {f: np.concatenate([p[f] for p in parts]) for f in _FIELDS}
    return MarginResult(
        equity=np.asarray(out["equity"], dtype=np.float64),
        im=np.asarray(out["im"], dtype=np.float64),
        mm=np.asarray(out["mm"], dtype=np.float64),
        scan_im=np.asarray(out["scan_im"], dtype=np.float64),
        scan_mm=np.asarray(out["scan_mm"], dtype=np.float64),
        basis=np.asarray(out["basis"], dtype=np.float64),
        short_option=np.asarray(out["short_option"], dtype=np.float64),
        minimum=np.asarray(out["minimum"], dtype=np.float64),
        concentration=np.asarray(out["concentration"], dtype=np.float64),
        worst_scenario=np.asarray(out["worst_scenario"], dtype=np.int64),
        gross_notional=np.asarray(out["gross_notional"], dtype=np.float64),
        cash=np.asarray(portfolios.cash, dtype=np.float64),
        arrays=arrays,
    )


__all__ = [
    "ACCOUNT_PAD_REL",
    "MarginResult",
    "cluster_worst",
    "compute_margin",
    "per_underlying",
]
