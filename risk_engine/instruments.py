"""Instrument table and portfolios.

An instrument is one of: a collateral token held as spot (``SPOT``), a perpetual
(``PERP``), a European ``CALL`` or ``PUT``. All are linear in size, cash-settled in USD,
contract multiplier 1 (one unit = one unit of the underlying). The chain's
``InstrumentKind`` codes are kept (PERP=0, CALL=1, PUT=2, docs/protocol.md §2); SPOT=3
exists only in the engine (tokens are not chain instruments, they are the epoch's
token table).

Portfolios are a sparse account x instrument matrix of signed sizes (float units; a
token's size is its balance in whole tokens) plus a cash vector (USD).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import scipy.sparse as sp

from ._typing import Float64Array, Int8Array, Int64Array
from .errors import InvalidInputError


class InstrumentKind(IntEnum):
    """Kind codes (PERP/CALL/PUT match the chain's ``InstrumentKind``)."""

    PERP = 0
    CALL = 1
    PUT = 2
    SPOT = 3


@dataclass(frozen=True)
class InstrumentTable:
    """The instrument universe, one row per instrument (column of the portfolio matrix).

    Attributes
    ----------
    kind : Int8Array, shape (n_instruments,)
        :class:`InstrumentKind` codes.
    underlying : tuple[str, ...], length n_instruments
        Underlying name (``"BTC"``), matched against ``MarketSnapshot.underlyings``.
    strike : Float64Array, shape (n_instruments,)
        USD per unit; 0 for SPOT and PERP.
    expiry : Int64Array, shape (n_instruments,)
        Unix seconds; 0 for SPOT and PERP.
    """

    kind: Int8Array
    underlying: tuple[str, ...]
    strike: Float64Array
    expiry: Int64Array

    @property
    def n_instruments(self) -> int:
        return int(self.kind.shape[0])

    @staticmethod
    def build(
        kind: Sequence[int] | Int8Array,
        underlying: Sequence[str],
        strike: Sequence[float] | Float64Array,
        expiry: Sequence[int] | Int64Array,
    ) -> InstrumentTable:
        """Build and validate a table from sequences (see :func:`validate_instruments`)."""
        table = InstrumentTable(
            kind=np.asarray(kind, dtype=np.int8),
            underlying=tuple(str(u) for u in underlying),
            strike=np.asarray(strike, dtype=np.float64),
            expiry=np.asarray(expiry, dtype=np.int64),
        )
        validate_instruments(table)
        return table

    def label(self, i: int) -> str:
        """Short human-readable name of instrument ``i`` (e.g. ``BTC-C-60000@1719792000``)."""
        k = InstrumentKind(int(self.kind[i]))
        u = self.underlying[i]
        if k is InstrumentKind.SPOT:
            return f"{u} (token)"
        if k is InstrumentKind.PERP:
            return f"{u}-PERP"
        return f"{u}-{'C' if k is InstrumentKind.CALL else 'P'}-{self.strike[i]:g}@{self.expiry[i]}"


def validate_instruments(table: InstrumentTable) -> None:
    """Check shapes and values of an instrument table.

    Raises
    ------
    InvalidInputError
        Naming ``instruments.<field>[i]`` of the first bad row.
    """
    n = table.kind.shape[0]
    if table.kind.ndim != 1:
        raise InvalidInputError("instruments.kind", "must be 1-D")
    for name, arr in (("strike", table.strike), ("expiry", table.expiry)):
        if arr.shape != (n,):
            raise InvalidInputError(f"instruments.{name}", f"shape {arr.shape} != ({n},)")
    if len(table.underlying) != n:
        raise InvalidInputError("instruments.underlying", f"length {len(table.underlying)} != {n}")
    bad = np.flatnonzero(~np.isin(table.kind, [int(k) for k in InstrumentKind]))
    if bad.size:
        raise InvalidInputError(f"instruments.kind[{bad[0]}]", f"unknown kind {table.kind[bad[0]]}")
    is_opt = (table.kind == InstrumentKind.CALL) | (table.kind == InstrumentKind.PUT)
    bad = np.flatnonzero(is_opt & ~(np.isfinite(table.strike) & (table.strike > 0)))
    if bad.size:
        raise InvalidInputError(f"instruments.strike[{bad[0]}]", "option strike must be > 0")
    bad = np.flatnonzero(is_opt & (table.expiry <= 0))
    if bad.size:
        raise InvalidInputError(f"instruments.expiry[{bad[0]}]", "option expiry must be > 0")
    bad = np.flatnonzero(~is_opt & ((table.strike != 0) | (table.expiry != 0)))
    if bad.size:
        raise InvalidInputError(
            f"instruments.strike[{bad[0]}]", "SPOT/PERP must have strike 0 and expiry 0"
        )


@dataclass(frozen=True)
class Portfolios:
    """Positions of many accounts.

    Attributes
    ----------
    instruments : InstrumentTable
        The columns.
    positions : scipy.sparse.csr_array, shape (n_accounts, n_instruments)
        Signed sizes in units of each instrument (float64). A token column holds the
        account's collateral balance in whole tokens.
    cash : Float64Array, shape (n_accounts,)
        Signed USD cash (may be negative).
    """

    instruments: InstrumentTable
    positions: sp.csr_array
    cash: Float64Array

    @property
    def n_accounts(self) -> int:
        return int(self.cash.shape[0])

    @staticmethod
    def from_dense(
        instruments: InstrumentTable,
        positions: Float64Array | Sequence[Sequence[float]],
        cash: Float64Array | Sequence[float],
    ) -> Portfolios:
        """Build from a dense (n_accounts, n_instruments) array (tests, small books)."""
        pos = np.atleast_2d(np.asarray(positions, dtype=np.float64))
        c = np.atleast_1d(np.asarray(cash, dtype=np.float64))
        return Portfolios(instruments, sp.csr_array(pos), c)

    def select(self, accounts: Sequence[int] | Int64Array) -> Portfolios:
        """A shard: the given account rows, same instrument columns."""
        idx = np.asarray(accounts, dtype=np.int64)
        return Portfolios(
            self.instruments, sp.csr_array(self.positions[idx]), self.cash[idx].copy()
        )


def validate_portfolios(portfolios: Portfolios, n_instruments: int) -> None:
    """Check a portfolio matrix against the instrument count of the risk arrays.

    Raises
    ------
    InvalidInputError
        ``portfolios.positions`` (wrong shape or type, NaN/inf sizes, unknown instrument
        column) or ``portfolios.cash`` (shape, NaN/inf).
    """
    pos = portfolios.positions
    if not sp.issparse(pos) or pos.format != "csr":
        raise InvalidInputError("portfolios.positions", "must be a scipy.sparse CSR array")
    cash = portfolios.cash
    if not isinstance(cash, np.ndarray) or cash.ndim != 1:
        raise InvalidInputError("portfolios.cash", "must be a 1-D float array")
    if pos.shape[0] != cash.shape[0]:
        raise InvalidInputError(
            "portfolios.cash", f"length {cash.shape[0]} != accounts {pos.shape[0]}"
        )
    if pos.shape[1] != n_instruments:
        raise InvalidInputError(
            "portfolios.positions",
            f"{pos.shape[1]} instrument columns, the instrument table has {n_instruments}",
        )
    if pos.nnz and not np.all(np.isfinite(pos.data)):
        raise InvalidInputError("portfolios.positions", "NaN or infinite size")
    if not np.all(np.isfinite(cash)):
        raise InvalidInputError("portfolios.cash", "NaN or infinite cash")


__all__ = [
    "InstrumentKind",
    "InstrumentTable",
    "Portfolios",
    "validate_instruments",
    "validate_portfolios",
]
