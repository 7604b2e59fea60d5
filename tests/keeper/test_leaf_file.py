"""keeper.leaf_file: one epoch's columns and tree, in memory and memory-mapped, against
the per-leaf code (``AccountLeaf.hash``, ``MerkleTree.proof``) and keeper.merkle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper import merkle
from keeper.attestation import (
    AccountLeaf,
    AccountLeafRows,
    InstrumentLeaf,
    MerkleTree,
    encode_leaves,
)
from keeper.errors import StoreError
from keeper.leaf_file import MAGIC, EpochLeaves

UINT256 = st.integers(0, 2**256 - 1)
INT256 = st.integers(-(2**255), 2**255 - 1)
ACCOUNTS = st.lists(
    st.builds(
        AccountLeaf, UINT256, st.integers(0, 2**64 - 1), INT256, INT256, INT256, UINT256, UINT256
    ),
    max_size=20,
    unique_by=lambda a: a.account,
)
INSTRUMENTS = st.lists(
    st.builds(InstrumentLeaf, st.integers(0, 2**32 - 1), UINT256, UINT256, UINT256),
    min_size=1,
    max_size=5,
    unique_by=lambda i: i.instrument,
)


@settings(max_examples=40)
@given(ACCOUNTS, INSTRUMENTS, st.booleans())
def test_proofFromFile_equalsProofFromMemory_equalsMerkleProof_andVerifies(
    tmp_path_factory: pytest.TempPathFactory,
    accounts: list[AccountLeaf],
    instruments: list[InstrumentLeaf],
    give_tree: bool,
) -> None:
    tree = MerkleTree([*accounts, *instruments])
    memory = EpochLeaves.from_leaves(7, accounts, instruments, tree.layers if give_tree else None)
    path = tmp_path_factory.mktemp("leaves") / "7.leaves"
    size = memory.write(path)
    assert size == path.stat().st_size and path.read_bytes().startswith(MAGIC)
    disk = EpochLeaves.open(path)
    assert disk.epoch == 7 and disk.root == memory.root == tree.root
    for leaf in [*accounts, *instruments]:
        kind, key = (
            ("account", leaf.account)
            if isinstance(leaf, AccountLeaf)
            else ("instrument", leaf.instrument)
        )
        i = disk.row(kind, key)
        assert i is not None and i == memory.row(kind, key)
        assert disk.record(kind, i) == memory.record(kind, i)
        assert disk.fields(kind, i) == leaf.to_json()
        row = disk.tree_row(kind, i)
        proof = disk.proof(row)
        assert proof == tree.proof(leaf) == tree.layers.proof(row)
        assert MerkleTree.verify(tree.root, leaf, proof)
    # the columns alone give the leaves back: their hashes are the tree's leaves
    n = len(accounts) + len(instruments)
    tag = np.zeros((len(accounts), 32), np.uint8)
    tag[:, 31] = 1
    if accounts:
        words = np.hstack([tag, disk.account_ids, disk.account_words])
        assert np.array_equal(merkle.leaf_hashes(words), disk.tree[disk.account_rows])
    assert sorted(bytes(r) for r in disk.tree[n - 1 :]) == sorted(tree.leaves)
    assert disk.mm_surplus() == [a.equity - a.mm for a in sorted(accounts, key=lambda a: a.account)]
    # the pipeline's own encodings (keeper/attestation.py) give the same columns
    a_rows = encode_leaves(accounts)[0][1] if accounts else None
    i_rows = encode_leaves(instruments)[0][1]
    again = EpochLeaves.from_leaves(7, accounts, instruments, tree.layers, (a_rows, i_rows))
    for name, array in again._arrays().items():
        assert np.array_equal(array, memory._arrays()[name]), name
    # the epoch build's leaves held as rows: their rows are taken, no leaf made
    if accounts:
        assert a_rows is not None
        held = EpochLeaves.from_leaves(7, AccountLeafRows(a_rows), instruments, tree.layers)
        for name, array in held._arrays().items():
            assert np.array_equal(array, memory._arrays()[name]), name


def test_absentIds_areNotFound() -> None:
    leaves = EpochLeaves.from_leaves(
        1, [AccountLeaf(5, 0, 0, 0, 0, 0, 0)], [InstrumentLeaf(1, 1, 1, 1)]
    )
    assert leaves.row("account", 4) is None and leaves.row("account", 6) is None
    assert leaves.row("account", 2**256) is None and leaves.row("instrument", 5) is None
    only_instruments = EpochLeaves.from_leaves(1, [], [InstrumentLeaf(1, 1, 1, 1)])
    assert only_instruments.row("account", 5) is None


def test_aTreeOfOtherLeaves_andAFileThatIsNotOne_areRefused(tmp_path: Path) -> None:
    accounts = [AccountLeaf(5, 0, 0, 0, 0, 0, 0)]
    other = MerkleTree([AccountLeaf(6, 0, 0, 0, 0, 0, 0)])
    with pytest.raises(StoreError, match="does not hold"):
        EpochLeaves.from_leaves(1, accounts, [], other.layers)
    bigger = MerkleTree([*accounts, AccountLeaf(6, 0, 0, 0, 0, 0, 0)])
    with pytest.raises(StoreError, match="2 leaves, the epoch 1"):
        EpochLeaves.from_leaves(1, accounts, [], bigger.layers)
    with pytest.raises(StoreError, match=r"encodings of shape \(1, 224\), expected \(1, 288\)"):
        EpochLeaves.from_leaves(1, accounts, [], None, (np.zeros((1, 224), np.uint8), None))
    bad = tmp_path / "1.leaves"
    bad.write_bytes(b"not a leaf file at all")
    with pytest.raises(StoreError, match="bad magic"):
        EpochLeaves.open(bad)
    whole = EpochLeaves.from_leaves(1, accounts, [])
    whole.write(bad)
    bad.write_bytes(bad.read_bytes()[:-64])  # torn: the tree's last block lost
    with pytest.raises(StoreError, match="not a whole leaf file"):
        EpochLeaves.open(bad)
    with pytest.raises(StoreError, match="cannot read"):
        EpochLeaves.open(tmp_path / "missing.leaves")


@settings(max_examples=30)
@given(ACCOUNTS, INSTRUMENTS)
def test_givenHashes_giveTheColumnsOfHashingAgain(
    accounts: list[AccountLeaf], instruments: list[InstrumentLeaf]
) -> None:
    """The epoch build hands the store its leaf hashes (accounts then instruments, in the
    leaves' order): the same file as hashing the rows again."""
    tree = MerkleTree([*accounts, *instruments])
    hashes = np.frombuffer(
        b"".join(leaf.hash() for leaf in [*accounts, *instruments]), dtype=np.uint8
    ).reshape(-1, 32)
    again = EpochLeaves.from_leaves(7, accounts, instruments, tree.layers)
    given_ = EpochLeaves.from_leaves(7, accounts, instruments, tree.layers, hashes=hashes)
    for name, array in given_._arrays().items():
        assert np.array_equal(array, again._arrays()[name]), name


def test_givenHashes_theTreeMustHoldThem_andTheirShapeMatch() -> None:
    accounts = [AccountLeaf(5, 0, 0, 0, 0, 0, 0), AccountLeaf(6, 0, 0, 0, 0, 0, 0)]
    tree = MerkleTree(accounts)
    wrong = np.zeros((2, 32), np.uint8)
    wrong[1, 0] = 1
    with pytest.raises(StoreError, match="does not hold"):
        EpochLeaves.from_leaves(1, accounts, [], tree.layers, hashes=wrong)
    with pytest.raises(StoreError, match="shape"):
        EpochLeaves.from_leaves(1, accounts, [], tree.layers, hashes=wrong[:1])


def test_leavesSharingTheirFirst8Bytes_areFoundOnAll32() -> None:
    """The row search reads 8-byte prefixes unless two leaves share one: then all 32 bytes
    (hashes made up here, as a caller's given hashes are trusted)."""
    accounts = [AccountLeaf(i, 0, 0, 0, 0, 0, 0) for i in range(1, 5)]
    hashes = np.zeros((4, 32), np.uint8)
    hashes[:, 31] = [9, 3, 7, 1]  # one prefix (zeros), four leaves
    hashes[3, 0] = 0xFF  # one leaf of another prefix
    layers = merkle.build(hashes)
    leaves = EpochLeaves.from_leaves(1, accounts, [], layers, hashes=hashes)
    assert np.array_equal(leaves.tree[leaves.account_rows], hashes)
