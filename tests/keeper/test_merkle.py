"""keeper.merkle (compiled Keccak and tree) against the per-leaf code and tests/vectors.

The references are independent of the compiled code: ``eth_utils.keccak`` for the hash,
``eth_abi`` for the encoding (``AccountLeaf.encode``), ``merkle.reference_tree`` (the
per-node tree in Python, as ``MerkleTree`` built it before) for the tree, itself checked
against ``hash_pair`` and tests/vectors/merkle.json.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper import merkle
from keeper.attestation import (
    AccountLeaf,
    InstrumentLeaf,
    Leaf,
    MerkleTree,
    hash_leaves,
    hash_pair,
)
from keeper.errors import AttestationError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def rows(blobs: Sequence[bytes], width: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), width)


# ------------------------------------------------------------------------------ keccak


ROWS = st.integers(0, 420).flatmap(
    lambda n: st.lists(st.binary(min_size=n, max_size=n), min_size=1, max_size=9)
)


@settings(max_examples=60, deadline=None)
@given(ROWS)
def test_keccak256_rows_equals_keccak_of_each_row(data: list[bytes]) -> None:
    # lengths across 0, one block (135/136/137 bytes), two blocks and 3 blocks
    length = len(data[0])
    got = merkle.keccak256_rows(rows(data, length))
    assert [r.tobytes() for r in got] == [keccak(d) for d in data]
    twice = merkle.leaf_hashes(rows(data, length))
    assert [r.tobytes() for r in twice] == [keccak(keccak(d)) for d in data]


@pytest.mark.parametrize("length", [0, 31, 32, 135, 136, 137, 256, 271, 272])
def test_keccak256_rows_at_the_block_edges_for_every_group_of_four(length: int) -> None:
    # 1..9 rows: whole groups of 4 and every remainder of the 4-way permutation
    for n in range(1, 10):
        data = [bytes([(7 * k + i) % 256 for i in range(length)]) for k in range(n)]
        assert [r.tobytes() for r in merkle.keccak256_rows(rows(data, length))] == [
            keccak(d) for d in data
        ]


def test_keccak256_rows_refuses_what_is_not_a_2d_byte_array() -> None:
    with pytest.raises(AttestationError, match="2-D uint8"):
        merkle.keccak256_rows(np.zeros(32, dtype=np.uint8))
    with pytest.raises(AttestationError, match="2-D uint8"):
        merkle.leaf_hashes(np.zeros((2, 32), dtype=np.int64))


# ------------------------------------------------------------------------------ encoding

INT256 = st.integers(-(2**255), 2**255 - 1)
UINT256 = st.integers(0, 2**256 - 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(INT256, UINT256, st.integers(-(2**63), 2**63 - 1)), min_size=1))
def test_abi_words_equals_eth_abi_encode_row_by_row(values: list[tuple[int, int, int]]) -> None:
    columns = list(zip(*values, strict=True))
    words = merkle.abi_words(columns)
    assert words.shape == (len(values), 96)
    for row, v in zip(words, values, strict=True):
        assert row.tobytes() == encode(["int256", "uint256", "int64"], list(v))


def test_abi_words_at_the_edges_of_its_int64_and_two_halves_paths() -> None:
    # int64, then two 64-bit halves below 2**127 in size, then one to_bytes per value
    edges = [2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64 - 1, 2**64, -(2**64)]
    edges += [2**127 - 1, -(2**127), 2**127, -(2**127) - 1, 2**255 - 1, -(2**255), 0, -1]
    for column in (edges[:2], edges[:9], edges[:11], edges, [2**256 - 1, 5]):
        words = merkle.abi_words([column])
        kind = "uint256" if column[0] == 2**256 - 1 else "int256"
        assert [w.tobytes() for w in words] == [encode([kind], [v]) for v in column]


def test_abi_words_refuses_a_value_no_word_holds_and_no_column() -> None:
    with pytest.raises(AttestationError, match="does not fit"):
        merkle.abi_words([[2**256]])
    with pytest.raises(AttestationError, match="does not fit"):
        merkle.abi_words([[-(2**255) - 1]])
    with pytest.raises(AttestationError, match="one column"):
        merkle.abi_words([])


ACCOUNT_LEAVES = st.builds(
    AccountLeaf, UINT256, st.integers(0, 2**64 - 1), INT256, INT256, INT256, UINT256, UINT256
)
INSTRUMENT_LEAVES = st.builds(InstrumentLeaf, st.integers(0, 2**32 - 1), UINT256, UINT256, UINT256)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(ACCOUNT_LEAVES, INSTRUMENT_LEAVES), max_size=12))
def test_hash_leaves_equals_each_leaf_hash_in_order(leaves: list[Leaf]) -> None:
    assert hash_leaves(leaves) == [leaf.hash() for leaf in leaves]


def test_hash_leaves_matches_the_shared_leaf_vectors() -> None:
    v = json.loads((VECTORS / "leaves.json").read_text())
    leaves: list[Leaf] = [AccountLeaf.from_json(x) for x in v["account"]]
    leaves += [InstrumentLeaf.from_json(x) for x in v["instrument"]]
    expected = [bytes.fromhex(x["hash"][2:]) for x in (*v["account"], *v["instrument"])]
    assert hash_leaves(leaves) == expected


def test_hash_leaves_refuses_what_is_not_a_leaf() -> None:
    with pytest.raises(AttestationError, match="not a leaf"):
        hash_leaves([InstrumentLeaf(1, 1, 1, 1), "leaf"])  # type: ignore[list-item]


# ------------------------------------------------------------------------------ tree


def test_reference_tree_matches_the_shared_merkle_vectors_and_hash_pair() -> None:
    v = json.loads((VECTORS / "merkle.json").read_text())
    for case in v["cases"]:
        tree = merkle.reference_tree([bytes.fromhex(h[2:]) for h in case["leaves"]])
        assert "0x" + tree[0].hex() == case["root"]
        for i in range(len(tree) - 1 - len(case["leaves"]), -1, -1):
            assert tree[i] == hash_pair(tree[2 * i + 1], tree[2 * i + 2])


def test_build_matches_the_shared_merkle_vectors() -> None:
    v = json.loads((VECTORS / "merkle.json").read_text())
    for case in v["cases"]:
        leaves = [bytes.fromhex(h[2:]) for h in case["leaves"]]
        layers = merkle.build(rows(leaves, 32))
        assert "0x" + layers.root.hex() == case["root"]
        for leaf, proof in zip(leaves, case["proofs"], strict=True):
            row = layers.row_of(leaf)
            assert row is not None
            assert ["0x" + p.hex() for p in layers.proof(row)] == proof


HASHES = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70, unique=True)


@settings(max_examples=80, deadline=None)
@given(HASHES, st.integers(0, 32))
def test_build_equals_the_per_node_tree(hashes: list[bytes], shared: int) -> None:
    # ``shared`` leading bytes in common: ties on the 8-byte sort key take the full sort
    hashes = sorted({bytes(shared) + h[shared:] for h in hashes})
    layers = merkle.build(rows(hashes, 32))
    reference = merkle.reference_tree(hashes)
    assert [r.tobytes() for r in layers.tree] == list(reference)
    for h in hashes:
        row = layers.row_of(h)
        assert row is not None and reference[row] == h
        assert MerkleTree.verify(layers.root, h, layers.proof(row))
    assert layers.row_of(keccak(b"not a leaf")) is None


@settings(max_examples=30, deadline=None)
@given(st.lists(ACCOUNT_LEAVES, min_size=1, max_size=9), st.lists(INSTRUMENT_LEAVES, max_size=5))
def test_merkle_tree_of_encodings_equals_the_tree_of_the_leaves(
    accounts: list[AccountLeaf], instruments: list[InstrumentLeaf]
) -> None:
    leaves: list[Leaf] = [*dict.fromkeys(accounts), *dict.fromkeys(instruments)]
    blocks = [
        rows([leaf.encode() for leaf in leaves if isinstance(leaf, kind)], width)
        for kind, width in ((AccountLeaf, 288), (InstrumentLeaf, 224))
    ]
    layers = merkle.merkle_tree(blocks)
    assert layers.root == merkle.reference_tree([leaf.hash() for leaf in leaves])[0]
    assert layers.root == MerkleTree(leaves).root


def test_build_refuses_no_leaf_a_duplicate_and_rows_that_are_not_hashes() -> None:
    with pytest.raises(AttestationError, match="empty"):
        merkle.build(np.zeros((0, 32), dtype=np.uint8))
    with pytest.raises(AttestationError, match="empty"):
        merkle.merkle_tree([np.zeros((0, 256), dtype=np.uint8)])
    with pytest.raises(AttestationError, match="duplicate"):
        merkle.build(np.zeros((2, 32), dtype=np.uint8))
    with pytest.raises(AttestationError, match="32 bytes"):
        merkle.build(np.zeros((2, 31), dtype=np.uint8))


def test_merkle_tree_refuses_a_leaf_hash_of_the_wrong_length() -> None:
    with pytest.raises(AttestationError, match="32 bytes"):
        MerkleTree([bytes(32), bytes(31)])
