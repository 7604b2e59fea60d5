"""One epoch's leaves and Merkle tree as fixed-width columns in one file, written once.

The store (``keeper/store.py``) keeps one such file per epoch, ``<epochs_dir>/<n>.leaves``,
and indexes it in sqlite; docs/operations.md ("Data directory") gives the sizes. The file
is the epoch's ABI words (docs/protocol.md §3) and the tree's node array, so that:

- writing it is a few ``ndarray.tobytes`` (no row per leaf, no JSON);
- a proof is ``log2(n)`` rows of the tree array, and finding a leaf a binary search over
  the sorted ids: opened with ``mmap``, one proof reads O(log n) pages, never every leaf;
- nothing in it changes with the epoch's status (built -> mined lives in sqlite).

Layout (all integers little-endian, all arrays C-contiguous, each at a 64-byte offset)::

    b"PMLEAF01" | u32 header length | header JSON | zero padding | arrays...

The header JSON is ``{"epoch", "root", "arrays": {name: [offset, dtype, shape]}}``.

=====================  ================  =========================================================
array                  shape, dtype      content
=====================  ================  =========================================================
``account_ids``        (na, 32) u1       subaccount ids as ABI words, ascending (a big-endian
                                         word sorts as its number)
``account_words``      (na, 192) u1      ``stateNonce, cumLo, cumHi, equity, im, mm``, ABI words
``account_rows``       (na,) <u4         each leaf's row in ``tree``
``instrument_ids``     (ni, 32) u1       instrument ids, ascending
``instrument_words``   (ni, 96) u1       ``mark, lossPerUnitLong, lossPerUnitShort``
``instrument_rows``    (ni,) <u4         each leaf's row in ``tree``
``tree``               (2n - 1, 32) u1   :attr:`keeper.merkle.MerkleLayers.tree` (n = na + ni)
=====================  ================  =========================================================

A leaf's ``abi.encode`` is its type tag's word, its id's word and its words, so the hash
(``keeper/merkle.py:leaf_hashes``) is recomputed from the file alone (the tests do).
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from keeper import merkle
from keeper.attestation import (
    LEAF_ACCOUNT,
    LEAF_INSTRUMENT,
    AccountLeaf,
    AccountLeafRows,
    InstrumentLeaf,
    LeafRecord,
    hash_to_json,
    leaf_columns,
)
from keeper.errors import StoreError

__all__ = ["MAGIC", "EpochLeaves", "LeafKind"]

LeafKind = Literal["account", "instrument"]

MAGIC = b"PMLEAF01"
_ALIGN = 64

U8Array = npt.NDArray[np.uint8]
U32Array = npt.NDArray[np.uint32]

#: Per kind: the leaf type, its wire field names after the id, and how each word reads:
#: False unsigned, True signed, None a bytes32 (on the wire as ``0x`` hex).
_ACCOUNT_NAMES: tuple[str, ...] = (
    "stateNonce",
    "cumLo",
    "cumHi",
    "equity",
    "im",
    "mm",
    "stateWord",
)
_ACCOUNT_SIGNED: tuple[bool | None, ...] = (False, True, True, True, False, False, None)
_INSTRUMENT_NAMES: tuple[str, ...] = (
    "mark",
    "lossPerUnitLong",
    "lossPerUnitShort",
    "fundingIndex",
    "vectorHash",
)
_INSTRUMENT_SIGNED: tuple[bool | None, ...] = (False, False, False, True, None)


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big", signed=value < 0)


def _sorted_by_id(ids: U8Array) -> npt.NDArray[np.intp]:
    order = np.argsort(ids.view("S32").ravel(), kind="stable")
    keys = ids[order].view("S32").ravel()
    if len(keys) > 1 and bool(np.any(keys[1:] == keys[:-1])):
        raise StoreError("two leaves of one kind have the same id")
    return order


def _columns(leaves: Sequence[Any], kind: type, encoded: U8Array | None) -> tuple[U8Array, U8Array]:
    """(id words, the other words) of ``leaves`` of dataclass ``kind``, in the leaves' order;
    from ``encoded`` (their ``abi.encode`` rows, type tag first) when given, or from the
    rows that hold ``leaves`` (:class:`~keeper.attestation.AccountLeafRows`: no leaf object
    is made)."""
    if isinstance(leaves, AccountLeafRows) and kind is AccountLeaf:
        encoded = leaves.rows if encoded is None else encoded
    else:
        for leaf in leaves:
            if not isinstance(leaf, kind):
                raise StoreError(f"not a {kind.__name__}: {leaf!r}")
    width = 32 * len(fields(kind))
    if not leaves:
        return np.empty((0, 32), np.uint8), np.empty((0, width - 32), np.uint8)
    if encoded is None:
        words = merkle.abi_words(leaf_columns(leaves, kind))
    elif encoded.shape != (len(leaves), 32 + width) or encoded.dtype != np.uint8:
        raise StoreError(
            f"{kind.__name__} encodings of shape {encoded.shape}, expected "
            f"{(len(leaves), 32 + width)}"
        )
    else:
        words = encoded[:, 32:]  # the type tag's word is implied by the kind
    return np.ascontiguousarray(words[:, :32]), np.ascontiguousarray(words[:, 32:])


@dataclass(frozen=True, eq=False)
class EpochLeaves:
    """One epoch's leaves and tree, in memory or memory-mapped from its file.

    Build it with :meth:`from_leaves` (then :meth:`write` it) or :meth:`open` a file.
    Lookups never copy a column: :meth:`row` is a binary search over the sorted ids and
    :meth:`record` reads one row and ``log2(n)`` tree nodes.
    """

    epoch: int
    account_ids: U8Array
    account_words: U8Array
    account_rows: U32Array
    instrument_ids: U8Array
    instrument_words: U8Array
    instrument_rows: U32Array
    tree: U8Array
    #: the open map of a file (kept alive with the arrays that view it)
    _map: mmap.mmap | None = field(default=None, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # ---------------------------------------------------------------- build

    @classmethod
    def from_leaves(
        cls,
        epoch: int,
        accounts: Sequence[AccountLeaf],
        instruments: Sequence[InstrumentLeaf],
        layers: merkle.MerkleLayers | None = None,
        encodings: tuple[U8Array | None, U8Array | None] = (None, None),
        hashes: U8Array | None = None,
    ) -> EpochLeaves:
        """The columns of ``accounts`` and ``instruments``, sorted by id, with the tree.

        ``layers``: the epoch's tree if already built (the pipeline's); it must hold
        exactly these leaves. Without it the tree is built here (``keeper/merkle.py``).
        ``encodings``: the leaves' ``abi.encode`` rows (accounts, instruments; in the
        leaves' order, as ``keeper/attestation.py:encode_leaves`` makes them) when the
        caller has them: converting every WAD value to a word again is most of the cost
        (0.2 s at 10,000 accounts). They are trusted to be the leaves' rows: a wrong row
        gives a hash the tree does not hold, refused below. ``hashes``: the leaves' hashes
        (shape ``(n, 32)``, accounts then instruments, in the leaves' order) when the caller
        made them from these same rows (the epoch build): trusted as well, not recomputed
        (double-hashing 100,000 rows again was a third of the store stage); the tree must
        still hold every one.
        """
        if not accounts and not instruments:
            raise StoreError(f"epoch {epoch} has no leaf (protocol §3: no empty tree)")
        a_ids, a_words = _columns(accounts, AccountLeaf, encodings[0])
        i_ids, i_words = _columns(instruments, InstrumentLeaf, encodings[1])
        a_order, i_order = _sorted_by_id(a_ids), _sorted_by_id(i_ids)
        a_ids, a_words = a_ids[a_order], a_words[a_order]
        i_ids, i_words = i_ids[i_order], i_words[i_order]
        na = len(a_ids)
        if hashes is None:
            hashes = np.concatenate(
                [
                    _hashes(LEAF_ACCOUNT, a_ids, a_words),
                    _hashes(LEAF_INSTRUMENT, i_ids, i_words),
                ]
            )
        elif hashes.shape != (na + len(i_ids), 32) or hashes.dtype != np.uint8:
            expected = (na + len(i_ids), 32)
            raise StoreError(f"leaf hashes of shape {hashes.shape}, expected {expected}")
        else:
            hashes = np.concatenate([hashes[:na][a_order], hashes[na:][i_order]])
        tree = merkle.build(hashes) if layers is None else layers
        n = len(hashes)
        if len(tree) != n:
            raise StoreError(f"the tree has {len(tree)} leaves, the epoch {n}")
        rows = _tree_rows(tree, hashes)
        if n and not np.array_equal(tree.tree[rows], hashes):
            raise StoreError("the tree does not hold these leaves")
        return cls(
            epoch,
            a_ids,
            a_words,
            rows[:na],
            i_ids,
            i_words,
            rows[na:],
            np.ascontiguousarray(tree.tree),
        )

    # ---------------------------------------------------------------- file

    def _arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {
            "account_ids": self.account_ids,
            "account_words": self.account_words,
            "account_rows": self.account_rows,
            "instrument_ids": self.instrument_ids,
            "instrument_words": self.instrument_words,
            "instrument_rows": self.instrument_rows,
            "tree": self.tree,
        }

    def write(self, path: Path) -> int:
        """Write the file atomically (temp file, rename); returns its size in bytes.

        Not fsynced, as the store's sqlite (``synchronous=NORMAL``): a process crash keeps
        it, a power loss may lose the newest files; :meth:`open` then refuses a torn one
        and the keeper rebuilds from the chain."""
        arrays = self._arrays()
        specs: dict[str, list[Any]] = {}
        header_room = 1024  # the JSON header is ~600 bytes; grown below if not
        while True:
            offset = _ALIGN * -(-(len(MAGIC) + 4 + header_room) // _ALIGN)
            start = offset
            for name, a in arrays.items():
                specs[name] = [offset, a.dtype.str, list(a.shape)]
                offset += _ALIGN * -(-a.nbytes // _ALIGN)
            head = json.dumps(
                {"epoch": self.epoch, "root": hash_to_json(self.root), "arrays": specs},
                sort_keys=True,
            ).encode()
            if len(head) <= header_room:
                break
            header_room = len(head)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(MAGIC + len(head).to_bytes(4, "little") + head)
            f.write(b"\0" * (start - f.tell()))
            for name, a in arrays.items():
                f.write(np.ascontiguousarray(a).data)  # no copy of the array
                f.write(b"\0" * (specs[name][0] + _ALIGN * -(-a.nbytes // _ALIGN) - f.tell()))
        os.replace(tmp, path)
        return offset

    @classmethod
    def open(cls, path: Path) -> EpochLeaves:
        """Map ``path`` read-only; the arrays are views of the map (pages read on use)."""
        try:
            with open(path, "rb") as f:
                m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read leaf file {path}: {exc}") from exc
        if m[: len(MAGIC)] != MAGIC:
            raise StoreError(f"{path} is not a leaf file (bad magic)")
        n = int.from_bytes(m[len(MAGIC) : len(MAGIC) + 4], "little")
        arrays: dict[str, npt.NDArray[Any]] = {}
        try:
            head = json.loads(m[len(MAGIC) + 4 : len(MAGIC) + 4 + n])
            for name, (offset, dtype, shape) in head["arrays"].items():
                count = int(np.prod(shape)) if shape else 1
                arrays[name] = np.frombuffer(m, dtype=dtype, count=count, offset=offset).reshape(
                    shape
                )
        except (ValueError, KeyError, TypeError) as exc:  # a torn or foreign file
            raise StoreError(f"{path} is not a whole leaf file: {exc}") from exc
        a = arrays
        out = cls(
            int(head["epoch"]),
            a["account_ids"],
            a["account_words"],
            a["account_rows"],
            a["instrument_ids"],
            a["instrument_words"],
            a["instrument_rows"],
            a["tree"],
            _map=m,
        )
        if hash_to_json(out.root) != head["root"]:
            raise StoreError(f"{path}: root does not match its header")
        return out

    # ---------------------------------------------------------------- reads

    @property
    def root(self) -> bytes:
        return bytes(self.tree[0])

    def count(self, kind: LeafKind) -> int:
        return len(self.account_ids if kind == "account" else self.instrument_ids)

    def row(self, kind: LeafKind, key: int) -> int | None:
        """The index of id ``key`` among ``kind``'s leaves, or None (binary search)."""
        ids = self.account_ids if kind == "account" else self.instrument_ids
        if not 0 <= key < 2**256 or not len(ids):
            return None
        target = np.bytes_(key.to_bytes(32, "big"))
        # an S32 view of the (mapped) id column: searchsorted touches log2(n) rows of it
        keys = ids.view("S32").ravel()
        i = int(np.searchsorted(keys, target))
        if i == len(keys) or bytes(ids[i]) != key.to_bytes(32, "big"):
            return None
        return i

    def fields(self, kind: LeafKind, i: int) -> dict[str, int | str]:
        """Row ``i``'s fields by protocol name (``AccountLeaf.to_json`` / ``InstrumentLeaf``)."""
        if kind == "account":
            ids, words, names, signed = (
                self.account_ids,
                self.account_words,
                _ACCOUNT_NAMES,
                _ACCOUNT_SIGNED,
            )
            head = "account"
        else:
            ids, words, names, signed = (
                self.instrument_ids,
                self.instrument_words,
                _INSTRUMENT_NAMES,
                _INSTRUMENT_SIGNED,
            )
            head = "instrument"
        raw = bytes(words[i])
        out: dict[str, int | str] = {head: int.from_bytes(bytes(ids[i]), "big")}
        for k, (name, s) in enumerate(zip(names, signed, strict=True)):
            w = raw[32 * k : 32 * k + 32]
            out[name] = hash_to_json(w) if s is None else int.from_bytes(w, "big", signed=s)
        return out

    def tree_row(self, kind: LeafKind, i: int) -> int:
        return int((self.account_rows if kind == "account" else self.instrument_rows)[i])

    def proof(self, tree_row: int) -> tuple[bytes, ...]:
        """Sibling hashes from ``tree_row`` up to the root: ``log2(n)`` rows read."""
        out = []
        while tree_row > 0:
            sibling = tree_row + 1 if tree_row % 2 == 1 else tree_row - 1
            out.append(bytes(self.tree[sibling]))
            tree_row = (tree_row - 1) // 2
        return tuple(out)

    def record(self, kind: LeafKind, i: int) -> LeafRecord:
        """Row ``i`` of ``kind`` as the store's :class:`LeafRecord` (fields, hash, proof)."""
        fields_ = self.fields(kind, i)
        key = fields_["account" if kind == "account" else "instrument"]
        r = self.tree_row(kind, i)
        return LeafRecord(
            kind,
            str(key),
            fields_,
            hash_to_json(bytes(self.tree[r])),
            tuple(hash_to_json(p) for p in self.proof(r)),
        )

    def records(self, kind: LeafKind | None = None) -> list[LeafRecord]:
        """Every leaf (accounts then instruments, each by id): reads the whole file."""
        kinds: tuple[LeafKind, ...] = ("account", "instrument") if kind is None else (kind,)
        return [self.record(k, i) for k in kinds for i in range(self.count(k))]

    def mm_surplus(self) -> list[int]:
        """``equity - mm`` (WAD USD, exact) of every account row: the MM surplus upper
        bound at the snapshot (docs/protocol.md §5, with ``cumHi`` unchanged). Computed
        once per object (the store keeps recent epochs in memory)."""
        cached = self._cache.get("mm_surplus")
        if cached is None:
            equity = self.account_words[:, 96:128]
            mm = self.account_words[:, 160:192]
            cached = [
                int.from_bytes(bytes(e), "big", signed=True) - int.from_bytes(bytes(m), "big")
                for e, m in zip(equity, mm, strict=True)
            ]
            self._cache["mm_surplus"] = cached
        return list(cached)

    def mm(self, i: int) -> int:
        """Row ``i``'s maintenance requirement (WAD USD)."""
        return int.from_bytes(bytes(self.account_words[i, 160:192]), "big")


def _tree_rows(tree: merkle.MerkleLayers, hashes: U8Array) -> U32Array:
    """The row of ``tree`` where each hash is, if the tree holds it (the caller compares):
    a binary search over the sorted leaves on their first 8 bytes read as big-endian
    integers, the bytes' order (several times faster than comparing ``S32`` keys), or on
    all 32 bytes when two leaves share their first 8."""
    n = len(tree)
    if n == 0:
        return np.zeros(0, np.uint32)
    prefix = np.ascontiguousarray(tree.tree[n - 1 :][::-1, :8]).view(">u8").ravel()
    prefix = prefix.astype(np.uint64)
    if n > 1 and bool(np.any(prefix[1:] == prefix[:-1])):
        k = np.searchsorted(tree.keys, hashes.view("S32").ravel())
    else:
        wanted = np.ascontiguousarray(hashes[:, :8]).view(">u8").ravel().astype(np.uint64)
        k = np.searchsorted(prefix, wanted)
    return (2 * n - 2 - np.minimum(k, n - 1)).astype(np.uint32)


def _hashes(tag: int, ids: U8Array, words: U8Array) -> U8Array:
    if not len(ids):
        return np.empty((0, 32), np.uint8)
    tags = np.zeros((len(ids), 32), np.uint8)
    tags[:, 31] = tag
    return merkle.leaf_hashes(np.hstack([tags, ids, words]))
