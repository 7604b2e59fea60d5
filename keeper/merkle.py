"""Keccak-256 and OpenZeppelin's Merkle tree over many leaves at once (docs/protocol.md §3).

The keeper hashes every account of every epoch: 100,000 leaves are 300,000 Keccak
permutations for the double-hashed leaves and 100,000 more for the tree's nodes. One
Python call per hash (``eth_utils.keccak``) costs more than the permutation itself, so
this module runs the permutation compiled (numba) over all rows of an array in one call.
It is the fast twin of the per-leaf code in ``keeper/attestation.py`` (``AccountLeaf.hash``,
``hash_pair``), which stays as the readable reference; the tests hold both to the same
bytes and to ``tests/vectors/``.

One entry point, :func:`merkle_tree`: the leaves' ABI encodings (one ``(n, L)`` uint8
array per leaf type, rows of :func:`abi_words`) in, the tree out as
:class:`MerkleLayers` -- OpenZeppelin ``StandardMerkleTree``'s array of ``2n - 1`` nodes,
which holds the root and every proof. :func:`build` is the same from leaf hashes.

Byte order: a 32-byte hash is a row of 32 uint8 (as it is on the wire); Keccak's lanes
are little-endian uint64 views of the same bytes (FIPS 202 §B.1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt
from eth_utils.crypto import keccak

from keeper.errors import AttestationError

__all__ = [
    "MerkleLayers",
    "abi_words",
    "build",
    "keccak256_rows",
    "leaf_hashes",
    "merkle_tree",
    "reference_tree",
]

U8Array = npt.NDArray[np.uint8]
U64Array = npt.NDArray[np.uint64]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Keccak-256's rate: 1088 bits, 17 lanes of 64 bits (FIPS 202 §5.2, c = 512).
RATE_BYTES = 136
_RATE_LANES = RATE_BYTES // 8
#: The last padding bit of a block, in the rate's last lane (``0x80`` in its byte 7).
_PAD_LAST = np.uint64(0x80 << 56)


def _jit(fn: _F) -> _F:
    # cache=True: the compiled code is kept in __pycache__, so only the first run of a
    # fresh checkout pays the compile (about 2 s).
    return cast(_F, numba.njit(cache=True, nogil=True)(fn))


@_jit
def _rotl(x: np.uint64, r: int) -> np.uint64:  # pragma: no cover - compiled
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


#: Round constants of iota (FIPS 202 §3.2.5).
_RC = np.array(
    [
        0x0000000000000001,
        0x0000000000008082,
        0x800000000000808A,
        0x8000000080008000,
        0x000000000000808B,
        0x0000000080000001,
        0x8000000080008081,
        0x8000000000008009,
        0x000000000000008A,
        0x0000000000000088,
        0x0000000080008009,
        0x000000008000000A,
        0x000000008000808B,
        0x800000000000008B,
        0x8000000000008089,
        0x8000000000008003,
        0x8000000000008002,
        0x8000000000000080,
        0x000000000000800A,
        0x800000008000000A,
        0x8000000080008081,
        0x8000000000008080,
        0x0000000080000001,
        0x8000000080008008,
    ],
    dtype=np.uint64,
)


@_jit
def _permute4(s: U64Array) -> None:  # pragma: no cover - compiled; tested via keccak256_rows
    """Keccak-f[1600] (FIPS 202 §3.3) of 4 states at once, in place: lane ``x + 5y`` of
    state ``m`` at ``s[4 * (x + 5y) + m]``.

    theta, rho and pi fused (``b[y, 2x+3y] = rotl(a[x, y] ^ d[x], r[x, y])``), then chi
    and iota. The 4 iterations over ``m`` share nothing, so LLVM turns each round into
    256-bit vector code: 4 permutations for the time of about 1.5 (scripts/bench_merkle.py).
    """
    for i in range(24):
        rc = _RC[i]
        for m in range(4):
            a00 = s[0 + m]
            a01 = s[4 + m]
            a02 = s[8 + m]
            a03 = s[12 + m]
            a04 = s[16 + m]
            a05 = s[20 + m]
            a06 = s[24 + m]
            a07 = s[28 + m]
            a08 = s[32 + m]
            a09 = s[36 + m]
            a10 = s[40 + m]
            a11 = s[44 + m]
            a12 = s[48 + m]
            a13 = s[52 + m]
            a14 = s[56 + m]
            a15 = s[60 + m]
            a16 = s[64 + m]
            a17 = s[68 + m]
            a18 = s[72 + m]
            a19 = s[76 + m]
            a20 = s[80 + m]
            a21 = s[84 + m]
            a22 = s[88 + m]
            a23 = s[92 + m]
            a24 = s[96 + m]
            c0 = a00 ^ a05 ^ a10 ^ a15 ^ a20
            c1 = a01 ^ a06 ^ a11 ^ a16 ^ a21
            c2 = a02 ^ a07 ^ a12 ^ a17 ^ a22
            c3 = a03 ^ a08 ^ a13 ^ a18 ^ a23
            c4 = a04 ^ a09 ^ a14 ^ a19 ^ a24
            d0 = c4 ^ _rotl(c1, 1)
            d1 = c0 ^ _rotl(c2, 1)
            d2 = c1 ^ _rotl(c3, 1)
            d3 = c2 ^ _rotl(c4, 1)
            d4 = c3 ^ _rotl(c0, 1)
            b00 = a00 ^ d0
            b16 = _rotl(a05 ^ d0, 36)
            b07 = _rotl(a10 ^ d0, 3)
            b23 = _rotl(a15 ^ d0, 41)
            b14 = _rotl(a20 ^ d0, 18)
            b10 = _rotl(a01 ^ d1, 1)
            b01 = _rotl(a06 ^ d1, 44)
            b17 = _rotl(a11 ^ d1, 10)
            b08 = _rotl(a16 ^ d1, 45)
            b24 = _rotl(a21 ^ d1, 2)
            b20 = _rotl(a02 ^ d2, 62)
            b11 = _rotl(a07 ^ d2, 6)
            b02 = _rotl(a12 ^ d2, 43)
            b18 = _rotl(a17 ^ d2, 15)
            b09 = _rotl(a22 ^ d2, 61)
            b05 = _rotl(a03 ^ d3, 28)
            b21 = _rotl(a08 ^ d3, 55)
            b12 = _rotl(a13 ^ d3, 25)
            b03 = _rotl(a18 ^ d3, 21)
            b19 = _rotl(a23 ^ d3, 56)
            b15 = _rotl(a04 ^ d4, 27)
            b06 = _rotl(a09 ^ d4, 20)
            b22 = _rotl(a14 ^ d4, 39)
            b13 = _rotl(a19 ^ d4, 8)
            b04 = _rotl(a24 ^ d4, 14)
            a00 = b00 ^ (~b01 & b02)
            a01 = b01 ^ (~b02 & b03)
            a02 = b02 ^ (~b03 & b04)
            a03 = b03 ^ (~b04 & b00)
            a04 = b04 ^ (~b00 & b01)
            a05 = b05 ^ (~b06 & b07)
            a06 = b06 ^ (~b07 & b08)
            a07 = b07 ^ (~b08 & b09)
            a08 = b08 ^ (~b09 & b05)
            a09 = b09 ^ (~b05 & b06)
            a10 = b10 ^ (~b11 & b12)
            a11 = b11 ^ (~b12 & b13)
            a12 = b12 ^ (~b13 & b14)
            a13 = b13 ^ (~b14 & b10)
            a14 = b14 ^ (~b10 & b11)
            a15 = b15 ^ (~b16 & b17)
            a16 = b16 ^ (~b17 & b18)
            a17 = b17 ^ (~b18 & b19)
            a18 = b18 ^ (~b19 & b15)
            a19 = b19 ^ (~b15 & b16)
            a20 = b20 ^ (~b21 & b22)
            a21 = b21 ^ (~b22 & b23)
            a22 = b22 ^ (~b23 & b24)
            a23 = b23 ^ (~b24 & b20)
            a24 = b24 ^ (~b20 & b21)
            s[0 + m] = a00 ^ rc
            s[4 + m] = a01
            s[8 + m] = a02
            s[12 + m] = a03
            s[16 + m] = a04
            s[20 + m] = a05
            s[24 + m] = a06
            s[28 + m] = a07
            s[32 + m] = a08
            s[36 + m] = a09
            s[40 + m] = a10
            s[44 + m] = a11
            s[48 + m] = a12
            s[52 + m] = a13
            s[56 + m] = a14
            s[60 + m] = a15
            s[64 + m] = a16
            s[68 + m] = a17
            s[72 + m] = a18
            s[76 + m] = a19
            s[80 + m] = a20
            s[84 + m] = a21
            s[88 + m] = a22
            s[92 + m] = a23
            s[96 + m] = a24


@_jit
def _sponge_rows(words: U64Array, length: int, double: bool) -> U64Array:  # pragma: no cover
    """Keccak-256 of the first ``length`` bytes of every row of ``words`` (shape
    ``(n, ceil(length / 8))``, little-endian lanes, zero after ``length``): the digests'
    lanes, shape ``(n, 4)``. ``double`` hashes each digest once more (leaves). Rows go 4
    at a time through :func:`_permute4`; the padding (pad10*1, first byte ``0x01``) is
    added here, so the input needs no padded copy."""
    n = words.shape[0]
    n_lanes = words.shape[1]
    n_blocks = length // RATE_BYTES + 1
    pad_lane = length // 8
    pad_first = np.uint64(1) << np.uint64(8 * (length % 8))
    out = np.empty((n, 4), dtype=np.uint64)
    s = np.empty(25 * 4, dtype=np.uint64)
    for g in range((n + 3) // 4):
        s[:] = 0
        for j in range(n_blocks):
            for m in range(4):
                k = 4 * g + m
                for t in range(_RATE_LANES):
                    q = _RATE_LANES * j + t
                    lane = words[k, q] if k < n and q < n_lanes else np.uint64(0)
                    if q == pad_lane:
                        lane ^= pad_first
                    if q == _RATE_LANES * n_blocks - 1:
                        lane ^= _PAD_LAST
                    s[4 * t + m] ^= lane
            _permute4(s)
        if double:
            # keccak256(digest): one block, the digest's 4 lanes then the padding.
            s[4 * 4 :] = 0
            for m in range(4):
                s[4 * 4 + m] = 1
                s[4 * 16 + m] = _PAD_LAST
            _permute4(s)
        for m in range(4):
            if 4 * g + m < n:
                for t in range(4):
                    out[4 * g + m, t] = s[4 * t + m]
    return out


@_jit
def _fill_tree(lanes: U64Array, octets: U8Array, n: int) -> None:  # pragma: no cover
    """Nodes ``n - 2`` down to ``0`` of the tree array, from its leaves at ``n - 1 ..``.

    ``lanes`` and ``octets`` are two views of the same ``(2n - 1, 32)`` bytes. Node ``i``
    is ``keccak256(min(c1, c2) ++ max(c1, c2))`` of its children ``2i+1``, ``2i+2``,
    bytes compared as unsigned big-endian numbers (OpenZeppelin
    ``Hashes.commutativeKeccak256``). Depth by depth from the bottom, so that the nodes of
    one depth (rows ``2**d - 1 .. 2**(d+1) - 2``) are independent: 4 to a permutation.
    """
    s = np.empty(25 * 4, dtype=np.uint64)
    depth = 0
    while (1 << (depth + 1)) - 1 <= n - 2:
        depth += 1
    for d in range(depth, -1, -1):
        first = (1 << d) - 1
        last = min((1 << (d + 1)) - 2, n - 2)
        for g in range((last - first + 4) // 4):
            s[:] = 0
            for m in range(4):
                i = first + 4 * g + m
                if i <= last:
                    lo, hi = 2 * i + 1, 2 * i + 2
                    for t in range(32):
                        if octets[lo, t] != octets[hi, t]:
                            if octets[lo, t] > octets[hi, t]:
                                lo, hi = hi, lo
                            break
                    for t in range(4):
                        s[4 * t + m] = lanes[lo, t]
                        s[4 * (4 + t) + m] = lanes[hi, t]
                s[4 * 8 + m] = 1
                s[4 * 16 + m] = _PAD_LAST
            _permute4(s)
            for m in range(4):
                i = first + 4 * g + m
                if i <= last:
                    for t in range(4):
                        lanes[i, t] = s[4 * t + m]


def _lanes(data: U8Array) -> U64Array:
    """Rows of ``data`` as little-endian lanes: a view when rows are whole lanes (every
    ABI encoding is), else a copy with zeros after each row."""
    n, length = data.shape
    if length % 8:
        widened = np.zeros((n, length + 8 - length % 8), dtype=np.uint8)
        widened[:, :length] = data
        data = widened
    return np.ascontiguousarray(data).view("<u8")


def _as_rows(data: U8Array) -> U8Array:
    if data.ndim != 2 or data.dtype != np.uint8:
        raise AttestationError(f"expected a 2-D uint8 array of rows, got {data.dtype} {data.shape}")
    return np.ascontiguousarray(data)


def keccak256_rows(data: U8Array) -> U8Array:
    """``keccak256`` of each row of ``data`` (shape ``(n, L)``): shape ``(n, 32)``."""
    data = _as_rows(data)
    return _sponge_rows(_lanes(data), data.shape[1], False).view(np.uint8)


def leaf_hashes(encodings: U8Array) -> U8Array:
    """``keccak256(bytes.concat(keccak256(row)))`` of each row: the double-hashed leaves of
    docs/protocol.md §3 from their ``abi.encode`` (shape ``(n, L)``), shape ``(n, 32)``."""
    encodings = _as_rows(encodings)
    return _sponge_rows(_lanes(encodings), encodings.shape[1], True).view(np.uint8)


def _word_bytes(value: int) -> bytes:
    try:
        return value.to_bytes(32, "big", signed=True)
    except OverflowError:
        pass
    try:
        return value.to_bytes(32, "big")  # a uint256 above int256's range
    except OverflowError:
        raise AttestationError(f"{value} does not fit a 32-byte ABI word") from None


def _column_words(ints: Sequence[int]) -> U8Array:
    n = len(ints)
    words = np.empty((n, 32), dtype=np.uint8)
    try:
        small = np.array(ints, dtype=np.int64)
    except OverflowError:
        pass
    else:
        words[:, :24] = np.where(small < 0, 0xFF, 0).astype(np.uint8)[:, None]  # sign extension
        words[:, 24:] = small.astype(">i8").view(np.uint8).reshape(n, 8)
        return words
    # WAD amounts pass 2**63 from about 9.2 USD. Below 2**127 in size (1.7e20 USD), a value
    # is two 64-bit halves, split by Python's & and >> on an object array (numpy's C loop;
    # & of a negative int gives its two's complement bits).
    values = np.empty(n, dtype=object)
    values[:] = ints
    try:
        high = (values >> 64).astype(np.int64)
        low = (values & 0xFFFF_FFFF_FFFF_FFFF).astype(np.uint64)
    except (OverflowError, TypeError):
        # One Python call per value, through the checked _word_bytes only if a value is
        # not an int256 (a uint256 above it).
        try:
            joined = b"".join([v.to_bytes(32, "big", signed=True) for v in ints])
        except OverflowError:
            joined = b"".join([_word_bytes(v) for v in ints])
        return np.frombuffer(joined, dtype=np.uint8).reshape(n, 32).copy()
    words[:, :16] = np.where(high < 0, 0xFF, 0).astype(np.uint8)[:, None]  # sign extension
    words[:, 16:24] = high.astype(">i8").view(np.uint8).reshape(n, 8)
    words[:, 24:] = low.astype(">u8").view(np.uint8).reshape(n, 8)
    return words


def abi_words(columns: Sequence[Sequence[int]]) -> U8Array:
    """``abi.encode`` of rows of static integer values, given column by column.

    Every static ABI integer type (``uint8``, ``uint32``, ``uint64``, ``address`` as its
    uint160, ``int256``, ``uint256``) is one 32-byte big-endian word, signed ones in two's
    complement; so row ``i`` is ``abi.encode(columns[0][i], columns[1][i], ...)``, shape
    ``(n, 32 * len(columns))``. The caller's values fit their Solidity types (the leaf
    types check at construction); a value no 32-byte word holds raises
    :class:`~keeper.errors.AttestationError`.
    """
    if not columns:
        raise AttestationError("abi_words needs one column at least")
    return np.hstack([_column_words(c) for c in columns])


@dataclass(frozen=True)
class MerkleLayers:
    """OpenZeppelin ``StandardMerkleTree``'s node array (docs/protocol.md §3).

    ``tree`` has shape ``(2n - 1, 32)``: the root at row 0, node ``i``'s children at
    ``2i+1`` and ``2i+2``, the ``n`` leaf hashes sorted ascending at the end in reverse
    order (leaf ``k`` of the sorted order at row ``2n - 2 - k``). ``keys`` are the sorted
    leaves as ``S32`` scalars, for a binary search from a hash to its row.
    """

    tree: U8Array
    keys: npt.NDArray[np.bytes_]

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def root(self) -> bytes:
        return bytes(self.tree[0])

    def row_of(self, leaf_hash: bytes) -> int | None:
        """The tree row of ``leaf_hash``, or ``None`` if it is not a leaf."""
        k = int(np.searchsorted(self.keys, np.bytes_(leaf_hash)))
        if k == len(self.keys) or self.tree[2 * len(self) - 2 - k].tobytes() != leaf_hash:
            return None
        return 2 * len(self) - 2 - k

    def proof(self, row: int) -> tuple[bytes, ...]:
        """Sibling hashes from tree row ``row`` up to (not including) the root."""
        out = []
        while row > 0:
            sibling = row + 1 if row % 2 == 1 else row - 1
            out.append(self.tree[sibling].tobytes())
            row = (row - 1) // 2
        return tuple(out)


def _sort_order(hashes: U8Array) -> npt.NDArray[np.intp]:
    """Indices that sort the rows as unsigned big-endian numbers (OpenZeppelin's order)."""
    head = hashes[:, :8].copy().view(">u8").ravel()
    order = np.argsort(head, kind="stable")
    ordered = head[order]
    if len(head) > 1 and bool(np.any(ordered[1:] == ordered[:-1])):
        # Two leaves share their first 8 bytes (or repeat): sort on all 32 bytes. A
        # fixed-width S32 compares as memcmp, 5 times slower than the 8-byte key.
        order = np.argsort(hashes.view("S32").ravel(), kind="stable")
    return order


def build(hashes: U8Array) -> MerkleLayers:
    """The tree over leaf hashes (shape ``(n, 32)``, any order). Raises
    :class:`~keeper.errors.AttestationError` on no leaf or a duplicate (protocol §3)."""
    hashes = _as_rows(hashes)
    n = hashes.shape[0]
    if n == 0:
        raise AttestationError("an empty Merkle tree is not allowed (protocol §3)")
    if hashes.shape[1] != 32:
        raise AttestationError(f"leaf hashes must be 32 bytes, got rows of {hashes.shape[1]}")
    ordered = hashes[_sort_order(hashes)]
    keys = ordered.view("S32").ravel()  # a fixed-width S32 compares as memcmp
    if n > 1 and bool(np.any(keys[1:] == keys[:-1])):
        raise AttestationError("duplicate leaf in Merkle tree")
    tree = np.empty((2 * n - 1, 32), dtype=np.uint8)
    tree[n - 1 :] = ordered[::-1]
    _fill_tree(tree.view("<u8"), tree, n)
    tree.flags.writeable = False
    return MerkleLayers(tree, keys)


def merkle_tree(encodings: Sequence[U8Array]) -> MerkleLayers:
    """The epoch's tree from its leaves' ``abi.encode`` (docs/protocol.md §3): one array
    of rows per leaf type (ACCOUNT rows are 256 bytes, INSTRUMENT rows 160), each row
    double-hashed and all of them put in one tree."""
    blocks = [leaf_hashes(e) for e in encodings if len(e)]
    if not blocks:
        raise AttestationError("an empty Merkle tree is not allowed (protocol §3)")
    return build(np.concatenate(blocks))


def reference_tree(hashes: Sequence[bytes]) -> tuple[bytes, ...]:
    """The slow, obvious twin of :func:`build`, one node at a time in Python (as the keeper
    built its tree before this module): ``tree`` rows as ``bytes``. For the tests and
    scripts/bench_merkle.py; no checks."""
    leaves = sorted(hashes)
    tree = [b""] * (2 * len(leaves) - 1)
    for i, h in enumerate(leaves):
        tree[len(tree) - 1 - i] = h
    for i in range(len(tree) - 1 - len(leaves), -1, -1):
        a, b = tree[2 * i + 1], tree[2 * i + 2]
        tree[i] = keccak(a + b) if a <= b else keccak(b + a)
    return tuple(tree)
