"""The epoch build's per-account steps, column-wise: the fast path of ``compute_epoch``.

:func:`keeper.epoch_build.compute_epoch` prices 100,000 subaccounts each epoch; the
per-account steps (cash after pending funding and settlements, the engine's portfolios,
the ACCOUNT leaves and their ``abi.encode`` rows) were a Python loop of objects per
account, ten times the engine's own time (docs/benchmarks.md, "Compute stage"). Here the
snapshot's accounts are read once into columns (:func:`account_columns`), and every step
works on whole columns:

- WAD arithmetic stays exact: integers that pass int64 are numpy ``object`` arrays of
  Python ints, so ``size * (F_new - F_last)`` and the divisions round as
  ``keeper/bounds.py`` does, value by value, in numpy's C loop;
- WAD -> float is Python's ``int / int`` (correctly rounded) on the same object arrays,
  so the engine gets the bits of the per-account code;
- the ACCOUNT leaves are never objects: their market-free words are checked once per
  column against their Solidity types (:func:`check_leaf_columns`) and encoded, their
  equity, im and mm words come straight from the engine's floats
  (:func:`account_leaf_rows`), and the rows go to ``keeper/merkle.py`` and the store as
  they are (:class:`~keeper.attestation.AccountLeafRows` makes a leaf when one is read).

:func:`keeper.epoch_build.compute_epoch_reference` is the per-account code this replaces;
tests/keeper/test_epoch_columns.py checks both give the same leaves, tree and header.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from operator import is_
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from keeper import merkle
from keeper._abi_checks import UINT64_MAX
from keeper.attestation import LEAF_ACCOUNT
from keeper.chain import AccountState, InstrumentInfo, TokenInfo
from keeper.errors import AttestationError
from keeper.wad_words import wad_words
from risk_engine import InstrumentKind, InstrumentTable, Portfolios
from risk_engine._typing import Float64Array
from risk_engine.units import INT256_MAX, INT256_MIN, UINT256_MAX, WAD

__all__ = [
    "AccountColumns",
    "ColumnCache",
    "account_columns",
    "account_leaf_rows",
    "cash_columns",
    "check_leaf_columns",
    "portfolios_of_columns",
]

IntpArray = npt.NDArray[np.intp]
ObjectArray = npt.NDArray[np.object_]


def payoff(ins: InstrumentInfo, price: int) -> int:
    """Option payoff per unit at settlement ``price`` (WAD), as the vault's ``settle``."""
    if ins.kind == 1:
        return max(price - ins.strike, 0)
    return max(ins.strike - price, 0)


@dataclass(frozen=True)
class AccountColumns:
    """The snapshot's subaccounts column-wise, in snapshot order.

    Per subaccount (length ``n``): ``account``, ``state_nonce``, ``cum_lo``, ``cum_hi``,
    ``cash`` (int256 WAD USD, Python ints). Per non-zero position, in account order:
    ``pos_row`` (the subaccount's row), ``pos_instrument``, ``pos_size`` (WAD units) and
    ``pos_funding`` (WAD USD per unit) as object arrays, and ``pos_units`` (the size in
    units, ``size / 1e18`` correctly rounded). Per non-zero collateral balance: ``coll_row``,
    ``coll_token`` (token index), ``coll_balance`` (token decimals) and ``coll_units`` (whole
    tokens, ``balance / 10**decimals[token]`` correctly rounded), ``decimals`` being each
    token's decimals as read. The floats are what the engine gets (market-free, so
    :class:`ColumnCache` keeps them with the rest).
    """

    account: list[int]
    state_nonce: list[int]
    cum_lo: list[int]
    cum_hi: list[int]
    cash: list[int]
    pos_row: IntpArray
    pos_instrument: IntpArray
    pos_size: ObjectArray
    pos_funding: ObjectArray
    coll_row: IntpArray
    coll_token: IntpArray
    coll_balance: ObjectArray
    pos_units: Float64Array
    coll_units: Float64Array
    decimals: tuple[int, ...]
    #: ``abi.encode(LEAF_ACCOUNT, account, state_nonce, cum_lo, cum_hi)`` of every row,
    #: shape ``(n, 160)``: the ACCOUNT leaf words that do not depend on the market, kept
    #: by :class:`ColumnCache` across epochs (None: encoded with the leaves).
    head_words: merkle.U8Array | None = None
    #: Each subaccount's state chain word at the snapshot (the ACCOUNT leaf's last word,
    #: docs/protocol.md §11); empty: zero words.
    state_word: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.account)


def _objects(values: list[int]) -> ObjectArray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def account_columns(
    accounts: Sequence[AccountState], decimals: Sequence[int], cache: ColumnCache | None = None
) -> AccountColumns:
    """One pass over the subaccounts (the only per-account Python loop of the build);
    with ``cache``, only over the blocks of subaccounts that changed since its last call.
    ``decimals``: each collateral token's decimals, in token order."""
    if cache is not None:
        return cache.columns(accounts, decimals)
    return _read_columns(accounts, tuple(decimals))


class ColumnCache:
    """:func:`account_columns` across epochs: a block of ``block`` subaccounts is read
    again only when one of its states is not the very object it held last time.

    The keeper's indexer hands out the same frozen ``AccountState`` object for a subaccount
    until an event changes it (``ChainAdapter.states_at``), and a frozen dataclass never
    changes, so identity means the same state: at 100,000 subaccounts the columns and the
    market-free leaf words (:attr:`AccountColumns.head_words`) of unchanged blocks are
    reused (docs/benchmarks.md, "Compute stage"); when no block changed (a quiet epoch) the
    last call's columns are returned as they are. The cache holds the states it compares,
    so an identity is never that of a freed object. One cache per pipeline.
    """

    def __init__(self, block: int = 32) -> None:
        if block < 1:
            raise ValueError("block must be >= 1")
        self.block = block
        self._blocks: list[tuple[tuple[AccountState, ...], AccountColumns]] = []
        self._decimals: tuple[int, ...] = ()
        self._joined: AccountColumns | None = None  # the last call's columns
        #: blocks read again at the last call (tests and the benchmark read it)
        self.last_misses = 0

    def columns(self, accounts: Sequence[AccountState], decimals: Sequence[int]) -> AccountColumns:
        """The columns of ``accounts`` (what :func:`account_columns` returns)."""
        if tuple(decimals) != self._decimals:  # other tokens: every collateral float anew
            self._blocks, self._decimals, self._joined = [], tuple(decimals), None
        parts: list[tuple[AccountState, ...]] = []
        blocks: list[AccountColumns | None] = []
        for b, start in enumerate(range(0, len(accounts), self.block)):
            part = tuple(accounts[start : start + self.block])
            old = self._blocks[b] if b < len(self._blocks) else None
            same = old is not None and len(old[0]) == len(part) and all(map(is_, old[0], part))
            parts.append(part)
            blocks.append(old[1] if same and old is not None else None)
        dirty = [b for b, c in enumerate(blocks) if c is None]
        if dirty:
            # the changed blocks are read in one pass, then cut back into blocks
            fresh = _read_columns([a for b in dirty for a in parts[b]], self._decimals)
            head = _head_words(*(getattr(fresh, k) for k in _HEAD))
            fresh = replace(fresh, head_words=head)
            start = 0
            for b in dirty:
                blocks[b] = _rows(fresh, start, start + len(parts[b]))
                start += len(parts[b])
        self.last_misses = len(dirty)
        if not dirty and len(parts) == len(self._blocks) and self._joined is not None:
            return self._joined  # every block the very one of the last call, none dropped
        done = [c for c in blocks if c is not None]
        self._blocks = list(zip(parts, done, strict=True))
        self._joined = _concat(done, self.block, self._decimals)
        return self._joined


def _rows(cols: AccountColumns, lo: int, hi: int) -> AccountColumns:
    """Rows ``lo`` to ``hi`` of ``cols`` (their positions and collateral renumbered from 0)."""
    p = slice(*np.searchsorted(cols.pos_row, [lo, hi]))
    c = slice(*np.searchsorted(cols.coll_row, [lo, hi]))
    return AccountColumns(
        account=cols.account[lo:hi],
        state_nonce=cols.state_nonce[lo:hi],
        cum_lo=cols.cum_lo[lo:hi],
        cum_hi=cols.cum_hi[lo:hi],
        cash=cols.cash[lo:hi],
        pos_row=cols.pos_row[p] - lo,
        pos_instrument=cols.pos_instrument[p],
        pos_size=cols.pos_size[p],
        pos_funding=cols.pos_funding[p],
        coll_row=cols.coll_row[c] - lo,
        coll_token=cols.coll_token[c],
        coll_balance=cols.coll_balance[c],
        pos_units=cols.pos_units[p],
        coll_units=cols.coll_units[c],
        decimals=cols.decimals,
        head_words=None if cols.head_words is None else cols.head_words[lo:hi],
        state_word=cols.state_word[lo:hi],
    )


#: The ACCOUNT leaf fields that do not depend on the market (after the type tag).
_HEAD = ("account", "state_nonce", "cum_lo", "cum_hi")


def _head_words(*columns: Sequence[int]) -> merkle.U8Array:
    """``abi.encode(LEAF_ACCOUNT, *row)`` of the :data:`_HEAD` columns, shape ``(n, 160)``,
    each column first checked against its Solidity type (:func:`check_leaf_columns`)."""
    check_leaf_columns(dict(zip(_HEAD, columns, strict=True)))
    return merkle.abi_words([[LEAF_ACCOUNT] * len(columns[0]), *columns])


def _concat(
    blocks: Sequence[AccountColumns], size: int, decimals: tuple[int, ...]
) -> AccountColumns:
    """The blocks' columns end to end (block ``b`` starts at row ``b * size``)."""
    if not blocks:
        return _read_columns((), decimals)

    def joined(name: str) -> list[int]:
        return list(chain.from_iterable(getattr(c, name) for c in blocks))

    def stacked(name: str) -> npt.NDArray[Any]:
        return np.concatenate([getattr(c, name) for c in blocks])

    def joined_bytes(name: str) -> list[bytes]:
        return list(chain.from_iterable(getattr(c, name) for c in blocks))

    def rows(name: str) -> IntpArray:
        return np.concatenate([getattr(c, name) + b * size for b, c in enumerate(blocks)])

    heads = [c.head_words for c in blocks if c.head_words is not None]
    return AccountColumns(
        account=joined("account"),
        state_nonce=joined("state_nonce"),
        cum_lo=joined("cum_lo"),
        cum_hi=joined("cum_hi"),
        cash=joined("cash"),
        pos_row=rows("pos_row"),
        pos_instrument=stacked("pos_instrument"),
        pos_size=stacked("pos_size"),
        pos_funding=stacked("pos_funding"),
        coll_row=rows("coll_row"),
        coll_token=stacked("coll_token"),
        coll_balance=stacked("coll_balance"),
        pos_units=stacked("pos_units"),
        coll_units=stacked("coll_units"),
        decimals=decimals,
        head_words=np.concatenate(heads) if len(heads) == len(blocks) else None,
        state_word=joined_bytes("state_word"),
    )


def _read_columns(accounts: Sequence[AccountState], decimals: tuple[int, ...]) -> AccountColumns:
    pos_row: list[int] = []
    pos_ins: list[int] = []
    pos_size: list[int] = []
    pos_fund: list[int] = []
    coll_row: list[int] = []
    coll_tok: list[int] = []
    coll_bal: list[int] = []
    for r, a in enumerate(accounts):
        for p in a.positions:
            if p.size:
                pos_row.append(r)
                pos_ins.append(p.instrument)
                pos_size.append(p.size)
                pos_fund.append(p.funding_index)
        for k, bal in enumerate(a.collateral):
            if bal:
                coll_row.append(r)
                coll_tok.append(k)
                coll_bal.append(bal)
    sizes, balances = _objects(pos_size), _objects(coll_bal)
    scale = _objects([10**d for d in decimals])
    tokens = np.array(coll_tok, dtype=np.intp)
    return AccountColumns(
        account=[a.account for a in accounts],
        state_nonce=[a.state_nonce for a in accounts],
        cum_lo=[a.cum_lo for a in accounts],
        cum_hi=[a.cum_hi for a in accounts],
        cash=[a.cash for a in accounts],
        pos_row=np.array(pos_row, dtype=np.intp),
        pos_instrument=np.array(pos_ins, dtype=np.intp),
        pos_size=sizes,
        pos_funding=_objects(pos_fund),
        coll_row=np.array(coll_row, dtype=np.intp),
        coll_token=tokens,
        coll_balance=balances,
        pos_units=_to_float(sizes, WAD),
        coll_units=_to_float(balances, scale[tokens]),
        decimals=decimals,
        state_word=[a.state_word for a in accounts],
    )


def _by_instrument(
    cols: AccountColumns, instruments: Sequence[InstrumentInfo], values: Mapping[int, int]
) -> ObjectArray:
    """``values[instrument]`` of every position (0 where absent), as Python ints."""
    table = np.zeros(max((ins.id for ins in instruments), default=0) + 1, dtype=object)
    for i, v in values.items():
        if i < len(table):
            table[i] = v
    return table[cols.pos_instrument]


def cash_columns(
    cols: AccountColumns,
    instruments: Sequence[InstrumentInfo],
    live: Sequence[InstrumentInfo],
    funding: Mapping[int, int],
    settle_price: Mapping[int, int],
) -> ObjectArray:
    """:func:`keeper.epoch_build.account_cash` on the columns (the same integers): pending
    perp funding ``-ceil(size * (F_new - F_last) / WAD)``, expired options'
    ``floor(size * payoff / WAD)``; Python ints in an object array."""
    cash = _objects(cols.cash)
    if not len(cols.pos_row):
        return cash
    perps = {ins.id for ins in instruments if ins.kind == int(InstrumentKind.PERP)}
    live_ids = {ins.id for ins in live}
    expired = {
        ins.id: payoff(ins, settle_price[ins.id])
        for ins in instruments
        if ins.id not in live_ids and ins.id not in perps
    }
    is_perp = np.isin(cols.pos_instrument, list(perps))
    if is_perp.any():
        f_new = _by_instrument(cols, instruments, funding)[is_perp]
        owed = cols.pos_size[is_perp] * (f_new - cols.pos_funding[is_perp])
        np.add.at(cash, cols.pos_row[is_perp], (-owed) // WAD)  # -ceil(owed / WAD)
    is_expired = np.isin(cols.pos_instrument, list(expired))
    if is_expired.any():
        paid = cols.pos_size[is_expired] * _by_instrument(cols, instruments, expired)[is_expired]
        np.add.at(cash, cols.pos_row[is_expired], paid // WAD)  # floor, as settle pays
    return cash


def _to_float(values: ObjectArray, scale: ObjectArray | int) -> npt.NDArray[np.float64]:
    """``value / scale`` of Python ints, correctly rounded as ``int / int`` is."""
    return np.asarray(values / scale, dtype=np.float64) if len(values) else np.zeros(0)


def portfolios_of_columns(
    cols: AccountColumns,
    cash: ObjectArray,
    instruments: Sequence[InstrumentInfo],
    tokens: Sequence[TokenInfo],
    token_und: Sequence[str],
) -> Portfolios:
    """:func:`keeper.engine_input.engine_portfolios` on the columns: the same table, the
    same sparse matrix (entries in the same order: an account's positions, then its
    collateral), the same cash floats. ``cols`` were read with ``tokens``' decimals."""
    if cols.decimals != tuple(t.decimals for t in tokens):
        raise ValueError(f"columns read for token decimals {cols.decimals}, not these tokens'")
    n_ins = len(instruments)
    table = InstrumentTable.build(
        kind=[ins.kind for ins in instruments] + [int(InstrumentKind.SPOT)] * len(token_und),
        underlying=[ins.underlying for ins in instruments] + list(token_und),
        strike=[ins.strike / WAD for ins in instruments] + [0.0] * len(token_und),
        expiry=[ins.expiry if ins.is_option else 0 for ins in instruments] + [0] * len(token_und),
    )
    col_of = np.full(
        max([ins.id for ins in instruments] + [int(cols.pos_instrument.max(initial=0))]) + 1,
        -1,
        dtype=np.intp,
    )
    col_of[[ins.id for ins in instruments]] = np.arange(n_ins)
    pos_col = col_of[cols.pos_instrument]
    keep = pos_col >= 0
    rows = np.concatenate([cols.pos_row[keep], cols.coll_row])
    order = np.argsort(rows, kind="stable")
    data = np.concatenate([cols.pos_units[keep], cols.coll_units])
    columns = np.concatenate([pos_col[keep], n_ins + cols.coll_token])
    return Portfolios(
        table,
        sp.csr_array(
            (data[order], (rows[order], columns[order])),
            shape=(len(cols), table.n_instruments),
        ),
        _to_float(cash, WAD),
    )


#: Each ACCOUNT leaf field's Solidity range (docs/protocol.md §3), as AccountLeaf checks.
_RANGES = {
    "account": (0, UINT256_MAX),
    "state_nonce": (0, UINT64_MAX),
    "cum_lo": (INT256_MIN, INT256_MAX),
    "cum_hi": (INT256_MIN, INT256_MAX),
    "equity": (INT256_MIN, INT256_MAX),
    "im": (0, UINT256_MAX),
    "mm": (0, UINT256_MAX),
}


def check_leaf_columns(columns: Mapping[str, Sequence[int]]) -> None:
    """Every value of every ACCOUNT leaf column given (by field name) is an ``int`` in its
    Solidity range, as :class:`~keeper.attestation.AccountLeaf` checks one leaf. Raises
    :class:`~keeper.errors.AttestationError` naming the field and the row."""
    for name, col in columns.items():
        lo, hi = _RANGES[name]
        if not col:
            continue
        if set(map(type, col)) != {int} or min(col) < lo or max(col) > hi:
            bad = next(i for i, v in enumerate(col) if type(v) is not int or not lo <= v <= hi)
            raise AttestationError(
                f"ACCOUNT leaf field {name} must be an integer in [{lo}, {hi}], "
                f"got {col[bad]!r} at row {bad}"
            )


def account_leaf_rows(
    columns: Mapping[str, Sequence[int]],
    widened: tuple[Float64Array, Float64Array, Float64Array] | None = None,
    head: merkle.U8Array | None = None,
    state_words: Sequence[bytes] | None = None,
) -> merkle.U8Array:
    """``AccountLeaf.encode()`` of every row, shape ``(n, 288)``, from the columns and each
    row's state chain word (``state_words``, 32 bytes each; None: zero words).

    Without ``widened``: from the seven ACCOUNT leaf columns (Python ints, checked by the
    caller). ``widened``: the floats whose WAD values are the equity, im and mm
    (``MarginResult.widened_all``: finite, ``|x| < 5e58``, so every word fits its type);
    their words then come from the floats in one compiled pass (``keeper/wad_words.py``,
    the same integers) and only the :data:`_HEAD` columns are read. ``head``: the rows'
    first five words when already made (``AccountColumns.head_words``, checked then).
    """
    n = len(columns["account"])
    words = _state_word_rows(state_words, n)
    if widened is None:
        base = merkle.abi_words([[LEAF_ACCOUNT] * n, *(columns[k] for k in _RANGES)])
        return np.hstack([base, words])
    equity, im, mm = widened
    if head is None:
        head = _head_words(*(columns[k] for k in _HEAD))
    return np.hstack(
        [head, wad_words(equity, up=False), wad_words(im, up=True), wad_words(mm, up=True), words]
    )


def _state_word_rows(words: Sequence[bytes] | None, n: int) -> merkle.U8Array:
    """The state words as rows, shape ``(n, 32)``; each must be 32 bytes."""
    if not words:
        return np.zeros((n, 32), dtype=np.uint8)
    blob = b"".join(words)
    if len(words) != n or len(blob) != 32 * n:
        raise AttestationError(f"{len(words)} state words of {len(blob)} bytes for {n} leaves")
    return np.frombuffer(blob, dtype=np.uint8).reshape(n, 32)
