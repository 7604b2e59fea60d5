"""Leaves, proofs and the Merkle tree exactly as docs/protocol.md §3.

This module is the Python half of the one leaf encoding shared with ``contracts/``
(``libraries/Leaves.sol``); the JSON vectors in ``tests/vectors/`` pin both halves to the
same bytes. The signed messages (epoch header, quotes) are in ``keeper.eip712``.

Every integer is in the chain's fixed point (docs/protocol.md §1): USD values and prices
in WAD (1e18), sizes in WAD units, shocks in WAD fractions. Nothing here rounds.

The wire codec (``to_json`` / ``from_json``) sits beside each type: the ONE JSON shape of a
leaf (its ``fields`` by protocol name) and a proof (``{"fields", "proof"}``), as the
keeper stores, serves and sends them. Writers emit ints as ints (Python's json
keeps them exact; the store's ``to_dict`` turns them into decimal strings for
JavaScript); readers accept either.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from operator import attrgetter
from typing import Any, overload

import numpy as np
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from keeper import merkle
from keeper._abi_checks import (
    UINT32_MAX,
    UINT64_MAX,
    check_bytes32,
    check_int,
    check_uint,
)
from keeper.errors import AttestationError
from risk_engine.units import INT256_MAX, INT256_MIN, UINT256_MAX

LEAF_ACCOUNT = 1
LEAF_INSTRUMENT = 2


def hash_to_json(value: bytes) -> str:
    """A 32-byte hash on the wire: lowercase hex with ``0x``."""
    return "0x" + value.hex()


def proof_to_json(proof: Iterable[bytes]) -> list[str]:
    """Merkle sibling hashes on the wire, leaf to root."""
    return [hash_to_json(p) for p in proof]


def proof_from_json(proof: Iterable[str]) -> tuple[bytes, ...]:
    """Inverse of :func:`proof_to_json`."""
    return tuple(bytes.fromhex(p[2:]) for p in proof)


# ----------------------------------------------------------------------------- leaves


@dataclass(frozen=True)
class AccountLeaf:
    """ACCOUNT leaf: a subaccount's attested numbers at the epoch's snapshot block.

    ``account`` is the subaccount id (``uint256``; encoded as one word, as an address
    was). ``cum_lo`` / ``cum_hi`` / ``state_nonce`` are the vault's values at the snapshot;
    ``equity`` (WAD USD, rounded down), ``im`` and ``mm`` (WAD USD, rounded up) come from
    the risk engine. ``state_word`` is the subaccount's state chain word at the snapshot
    (docs/protocol.md §9, §11): the state the numbers are of, which a dispute proves.
    """

    account: int
    state_nonce: int
    cum_lo: int
    cum_hi: int
    equity: int
    im: int
    mm: int
    state_word: bytes = bytes(32)

    def __post_init__(self) -> None:
        # One expression for the common case (an epoch builds one leaf per subaccount);
        # anything else goes through the named checks, which raise with the field.
        a, n, lo, hi, e, im, mm, w = self.to_abi()
        if (
            type(w) is bytes
            and len(w) == 32
            and type(a) is int
            and type(n) is int
            and type(lo) is int
            and type(hi) is int
            and type(e) is int
            and type(im) is int
            and type(mm) is int
            and 0 <= a <= UINT256_MAX
            and 0 <= n <= UINT64_MAX
            and INT256_MIN <= lo <= INT256_MAX
            and INT256_MIN <= hi <= INT256_MAX
            and INT256_MIN <= e <= INT256_MAX
            and 0 <= im <= UINT256_MAX
            and 0 <= mm <= UINT256_MAX
        ):
            return
        check_uint("account", self.account)
        check_uint("state_nonce", self.state_nonce, UINT64_MAX)
        for name in ("cum_lo", "cum_hi", "equity"):
            check_int(name, getattr(self, name))
        check_uint("im", self.im)
        check_uint("mm", self.mm)
        check_bytes32("state_word", self.state_word)

    def to_abi(self) -> tuple[Any, ...]:
        """The Solidity ``AccountLeaf`` struct tuple."""
        return (
            self.account,
            self.state_nonce,
            self.cum_lo,
            self.cum_hi,
            self.equity,
            self.im,
            self.mm,
            self.state_word,
        )

    def encode(self) -> bytes:
        return abi_encode(
            [
                "uint8",
                "uint256",
                "uint64",
                "int256",
                "int256",
                "int256",
                "uint256",
                "uint256",
                "bytes32",
            ],
            [LEAF_ACCOUNT, *self.to_abi()],
        )

    def hash(self) -> bytes:
        """``keccak256(bytes.concat(keccak256(abi.encode(uint8(1), ...))))``."""
        return keccak(keccak(self.encode()))

    def to_json(self) -> dict[str, Any]:
        """The leaf's ``fields`` on the wire, by protocol name."""
        return {
            "account": self.account,
            "stateNonce": self.state_nonce,
            "cumLo": self.cum_lo,
            "cumHi": self.cum_hi,
            "equity": self.equity,
            "im": self.im,
            "mm": self.mm,
            "stateWord": hash_to_json(self.state_word),
        }

    @classmethod
    def from_json(cls, fields: Mapping[str, Any]) -> AccountLeaf:
        """Inverse of :meth:`to_json`; ints as ints or decimal strings."""
        f = fields
        return cls(
            int(f["account"]),
            int(f["stateNonce"]),
            int(f["cumLo"]),
            int(f["cumHi"]),
            int(f["equity"]),
            int(f["im"]),
            int(f["mm"]),
            _bytes32_of(f.get("stateWord")),
        )


def _bytes32_of(text: Any) -> bytes:
    """A ``0x`` hex word from the wire (absent: 0, as a leaf stored before it)."""
    if text is None:
        return bytes(32)
    s = str(text)
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


#: An ACCOUNT leaf's ``abi.encode`` row: the type tag, then the eight fields, one word each.
ACCOUNT_ROW_BYTES = 32 * 9


class AccountLeafRows(Sequence[AccountLeaf]):
    """ACCOUNT leaves held as their ``abi.encode`` rows, shape ``(n, 288)``: a leaf object
    is made only when one is read.

    An epoch has a leaf per subaccount; what the pipeline does with its 100,000 leaves
    (hash them, store them) needs only the rows, and making an object per leaf was a fifth
    of the epoch's build (docs/benchmarks.md, "Compute stage"). Reading leaf ``i`` decodes
    row ``i`` through the checked :class:`AccountLeaf`, so a row never gives a leaf that
    would not encode back to it. Equal to any sequence of the same leaves (a tuple of
    :class:`AccountLeaf` included). The caller makes the rows as ``AccountLeaf.encode`` does
    (``keeper/epoch_columns.py:account_leaf_rows``).
    """

    __slots__ = ("rows",)
    __hash__ = None  # type: ignore[assignment]  # equal to tuples, which hash otherwise

    def __init__(self, rows: merkle.U8Array) -> None:
        if rows.ndim != 2 or rows.shape[1] != ACCOUNT_ROW_BYTES or rows.dtype != np.uint8:
            raise AttestationError(
                f"ACCOUNT leaf rows must be uint8 of shape (n, {ACCOUNT_ROW_BYTES}), "
                f"got {rows.dtype} {rows.shape}"
            )
        view = rows.view()
        view.flags.writeable = False  # the leaves are immutable, as AccountLeaf is
        self.rows = view

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @overload
    def __getitem__(self, index: int) -> AccountLeaf: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[AccountLeaf, ...]: ...

    def __getitem__(self, index: int | slice) -> AccountLeaf | tuple[AccountLeaf, ...]:
        if isinstance(index, slice):
            return tuple(_leaf_of_row(r) for r in self.rows[index])
        n = len(self)
        i = operator.index(index)
        if not -n <= i < n:
            raise IndexError(f"ACCOUNT leaf {index} of {n}")
        return _leaf_of_row(self.rows[i])

    def __iter__(self) -> Iterator[AccountLeaf]:
        return map(_leaf_of_row, self.rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AccountLeafRows):
            return bool(np.array_equal(self.rows, other.rows))
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and all(map(operator.eq, self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"AccountLeafRows(<{len(self)} leaves>)"


def _leaf_of_row(row: merkle.U8Array) -> AccountLeaf:
    """The leaf of one ``abi.encode`` row: uint words read unsigned, int256 words signed."""
    blob = row.tobytes()
    word = [blob[k : k + 32] for k in range(32, ACCOUNT_ROW_BYTES, 32)]
    return AccountLeaf(
        int.from_bytes(word[0], "big"),
        int.from_bytes(word[1], "big"),
        int.from_bytes(word[2], "big", signed=True),
        int.from_bytes(word[3], "big", signed=True),
        int.from_bytes(word[4], "big", signed=True),
        int.from_bytes(word[5], "big"),
        int.from_bytes(word[6], "big"),
        word[7],
    )


@dataclass(frozen=True)
class InstrumentLeaf:
    """INSTRUMENT leaf: mark and standalone worst-case loss per unit, long and short.

    All three in WAD USD per unit; the losses are rounded up by the engine. For disputes
    (docs/protocol.md §11): ``funding_index``, a perp's cumulative funding index this epoch
    posts (0 otherwise), and ``vector_hash``, the hash of the instrument's engine row
    (:func:`keeper.dispute_encoding.hash_vector`).
    """

    instrument: int
    mark: int
    loss_per_unit_long: int
    loss_per_unit_short: int
    funding_index: int = 0
    vector_hash: bytes = bytes(32)

    def __post_init__(self) -> None:
        check_uint("instrument", self.instrument, UINT32_MAX)
        check_uint("mark", self.mark)
        check_uint("loss_per_unit_long", self.loss_per_unit_long)
        check_uint("loss_per_unit_short", self.loss_per_unit_short)
        check_int("funding_index", self.funding_index)
        check_bytes32("vector_hash", self.vector_hash)

    def to_abi(self) -> tuple[Any, ...]:
        """The Solidity ``InstrumentLeaf`` struct tuple."""
        return (
            self.instrument,
            self.mark,
            self.loss_per_unit_long,
            self.loss_per_unit_short,
            self.funding_index,
            self.vector_hash,
        )

    def encode(self) -> bytes:
        return abi_encode(
            ["uint8", "uint32", "uint256", "uint256", "uint256", "int256", "bytes32"],
            [LEAF_INSTRUMENT, *self.to_abi()],
        )

    def hash(self) -> bytes:
        """``keccak256(bytes.concat(keccak256(abi.encode(uint8(2), ...))))``."""
        return keccak(keccak(self.encode()))

    def to_json(self) -> dict[str, Any]:
        """The leaf's ``fields`` on the wire, by protocol name."""
        return {
            "instrument": self.instrument,
            "mark": self.mark,
            "lossPerUnitLong": self.loss_per_unit_long,
            "lossPerUnitShort": self.loss_per_unit_short,
            "fundingIndex": self.funding_index,
            "vectorHash": hash_to_json(self.vector_hash),
        }

    @classmethod
    def from_json(cls, fields: Mapping[str, Any]) -> InstrumentLeaf:
        """Inverse of :meth:`to_json`; ints as ints or decimal strings."""
        f = fields
        return cls(
            int(f["instrument"]),
            int(f["mark"]),
            int(f["lossPerUnitLong"]),
            int(f["lossPerUnitShort"]),
            int(f.get("fundingIndex", 0)),
            _bytes32_of(f.get("vectorHash")),
        )


Leaf = AccountLeaf | InstrumentLeaf


def account_leaf_hash(
    account: int, state_nonce: int, cum_lo: int, cum_hi: int, equity: int, im: int, mm: int
) -> bytes:
    """Hash of an ACCOUNT leaf (docs/protocol.md §3)."""
    return AccountLeaf(account, state_nonce, cum_lo, cum_hi, equity, im, mm).hash()


def instrument_leaf_hash(
    instrument: int, mark: int, loss_per_unit_long: int, loss_per_unit_short: int
) -> bytes:
    """Hash of an INSTRUMENT leaf (docs/protocol.md §3)."""
    return InstrumentLeaf(instrument, mark, loss_per_unit_long, loss_per_unit_short).hash()


def encode_leaves(leaves: Sequence[Leaf]) -> list[tuple[list[int], merkle.U8Array]]:
    """The leaves' :meth:`~AccountLeaf.encode` as one array of rows per leaf type, with the
    leaves' positions: each field's column to ABI words (``keeper/merkle.py``).

    A leaf's ABI tuple is its dataclass fields in order (``to_abi``), after the type tag;
    the tests compare every row with the per-leaf encoding.
    """
    out = []
    for tag, kind in ((LEAF_ACCOUNT, AccountLeaf), (LEAF_INSTRUMENT, InstrumentLeaf)):
        where = [i for i, leaf in enumerate(leaves) if isinstance(leaf, kind)]
        if not where:
            continue
        group = [leaves[i] for i in where]
        columns: list[Sequence[int]] = [[tag] * len(where), *leaf_columns(group, kind)]
        out.append((where, merkle.abi_words(columns)))
    return out


def leaf_columns(leaves: Sequence[Leaf], kind: type) -> list[list[int]]:
    """The leaves' fields of dataclass ``kind`` as integer columns, in field order, for
    :func:`keeper.merkle.abi_words`: a bytes32 field is its word read as a uint256."""
    out: list[list[int]] = []
    for f in fields(kind):
        col = list(map(attrgetter(f.name), leaves))
        if col and isinstance(col[0], bytes):
            col = [int.from_bytes(v, "big") for v in col]
        out.append(col)
    return out


def hash_leaves(leaves: Sequence[Leaf]) -> list[bytes]:
    """Every leaf's :meth:`~AccountLeaf.hash`, in order, from one compiled call per leaf
    type (the same bytes as the per-leaf code, which the tests compare it with)."""
    out = [b""] * len(leaves)
    for where, words in encode_leaves(leaves):
        blob = merkle.leaf_hashes(words).tobytes()
        for j, i in enumerate(where):
            out[i] = blob[32 * j : 32 * j + 32]
    if b"" in out:
        raise AttestationError(f"not a leaf: {leaves[out.index(b'')]!r}")
    return out


ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class MarginProof:
    """An ACCOUNT leaf with its Merkle proof (Solidity ``MarginProof``).

    Wire shape: ``{"fields": <AccountLeaf.to_json()>, "proof": ["0x..", ...]}``; a
    stored leaf record (``kind``, ``key``, ``leaf`` hash besides) reads the same way.
    """

    leaf: AccountLeaf
    proof: tuple[bytes, ...] = ()

    @classmethod
    def empty(cls, account: int = 0) -> MarginProof:
        """The all-zero leaf without a proof: what an account without open positions
        passes (the vault values it on chain and ignores the proof)."""
        return cls(AccountLeaf(account, 0, 0, 0, 0, 0, 0), ())

    def to_abi(self) -> tuple[Any, ...]:
        return (self.leaf.to_abi(), list(self.proof))

    def to_json(self) -> dict[str, Any]:
        return {"fields": self.leaf.to_json(), "proof": proof_to_json(self.proof)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MarginProof:
        """Inverse of :meth:`to_json` (extra keys, as a stored record's, are ignored)."""
        return cls(AccountLeaf.from_json(d["fields"]), proof_from_json(d["proof"]))


@dataclass(frozen=True)
class InstrumentProof:
    """An INSTRUMENT leaf with its Merkle proof (Solidity ``InstrumentProof``); on the
    wire as :class:`MarginProof`, with :meth:`InstrumentLeaf.to_json` fields."""

    leaf: InstrumentLeaf
    proof: tuple[bytes, ...] = ()

    def to_abi(self) -> tuple[Any, ...]:
        return (self.leaf.to_abi(), list(self.proof))

    def to_json(self) -> dict[str, Any]:
        return {"fields": self.leaf.to_json(), "proof": proof_to_json(self.proof)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> InstrumentProof:
        """Inverse of :meth:`to_json` (extra keys, as a stored record's, are ignored)."""
        return cls(InstrumentLeaf.from_json(d["fields"]), proof_from_json(d["proof"]))


# ------------------------------------------------------------------------------ merkle


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's commutative node hash: ``keccak256(min(a,b) ++ max(a,b))``."""
    return keccak(a + b) if a <= b else keccak(b + a)


class MerkleTree:
    """Merkle tree over leaf hashes, identical to OpenZeppelin's ``StandardMerkleTree``.

    Leaf hashes are sorted ascending and laid out as OpenZeppelin's ``makeMerkleTree``
    does: a complete binary tree in an array of ``2n - 1`` nodes, leaves at the end in
    reverse order, node ``i`` = ``hash_pair(tree[2i+1], tree[2i+2])``. So the root equals
    ``StandardMerkleTree.of(values, types).root`` of ``@openzeppelin/merkle-tree`` for the
    same leaves, and every proof verifies with ``MerkleProof.verify``.
    """

    @classmethod
    def of_rows(cls, rows: merkle.U8Array) -> MerkleTree:
        """The tree over leaf hashes given as rows (shape ``(n, 32)``), as
        ``MerkleTree([bytes(r) for r in rows])`` without the round trip through bytes."""
        tree = object.__new__(cls)
        tree._layers = merkle.build(rows)
        return tree

    def __init__(self, leaves: Iterable[Leaf | bytes]) -> None:
        items = list(leaves)
        batch = iter(hash_leaves([x for x in items if not isinstance(x, bytes)]))
        hashes = [x if isinstance(x, bytes) else next(batch) for x in items]
        if set(map(len, hashes)) - {32}:
            check_bytes32("leaf hash", next(h for h in hashes if len(h) != 32))
        # The nodes are hashed in one compiled call (keeper/merkle.py); ``hash_pair`` and
        # the tests' references say what it computes.
        rows = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), 32)
        self._layers = merkle.build(rows)

    @cached_property
    def _tree(self) -> tuple[bytes, ...]:
        blob = self._layers.tree.tobytes()
        return tuple(blob[i : i + 32] for i in range(0, len(blob), 32))

    @cached_property
    def _index(self) -> dict[bytes, int]:
        n = len(self)
        return {self._tree[r]: r for r in range(n - 1, 2 * n - 1)}

    @property
    def layers(self) -> merkle.MerkleLayers:
        """The node array itself (``keeper/merkle.py``), as the store writes it."""
        return self._layers

    @property
    def leaves(self) -> tuple[bytes, ...]:
        """The leaf hashes, sorted ascending."""
        return self._tree[len(self) - 1 :][::-1]

    @property
    def root(self) -> bytes:
        return self._layers.root

    def __len__(self) -> int:
        return len(self._layers)

    def __contains__(self, leaf: object) -> bool:
        h = leaf.hash() if isinstance(leaf, AccountLeaf | InstrumentLeaf) else leaf
        return h in self._index

    def proof(self, leaf: Leaf | bytes) -> tuple[bytes, ...]:
        """Sibling hashes from the leaf up to (not including) the root."""
        h = leaf if isinstance(leaf, bytes) else leaf.hash()
        try:
            i = self._index[h]
        except KeyError:
            raise AttestationError(f"leaf 0x{h.hex()} is not in the tree") from None
        out: list[bytes] = []
        while i > 0:
            sibling = i + 1 if i % 2 == 1 else i - 1
            out.append(self._tree[sibling])
            i = (i - 1) // 2
        return tuple(out)

    @staticmethod
    def verify(root: bytes, leaf: Leaf | bytes, proof: Sequence[bytes]) -> bool:
        """``MerkleProof.verify`` of OpenZeppelin."""
        h = leaf if isinstance(leaf, bytes) else leaf.hash()
        for p in proof:
            h = hash_pair(h, p)
        return h == root

    def margin_proof(self, leaf: AccountLeaf) -> MarginProof:
        return MarginProof(leaf, self.proof(leaf))

    def instrument_proof(self, leaf: InstrumentLeaf) -> InstrumentProof:
        return InstrumentProof(leaf, self.proof(leaf))


# --------------------------------------------------------------------------- stored leaves


def ints_as_strings(value: Any) -> Any:
    """``value`` with every int as a decimal string (full precision for any JSON client);
    bools, strings and the nesting kept."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        return {k: ints_as_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [ints_as_strings(v) for v in value]
    return value


@dataclass(frozen=True)
class LeafRecord:
    """One leaf of an epoch's tree.

    ``kind`` is ``"account"`` (``key`` = the subaccount id in decimal) or ``"instrument"``
    (``key`` = the instrument id in decimal). ``fields`` are the leaf's values by protocol
    name (``account``, ``stateNonce``, ``cumLo``, ``equity``...; all ``int`` values),
    ``leaf_hash`` the double-hashed leaf and ``proof`` the sibling hashes, all ``0x`` hex.
    """

    kind: str
    key: str
    fields: Mapping[str, Any]
    leaf_hash: str
    proof: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "fields": ints_as_strings(dict(self.fields)),
            "leaf": self.leaf_hash,
            "proof": list(self.proof),
        }
