"""The epoch's Merkle tree at 1k / 10k / 100k leaves: per-leaf Python (before) against
keeper/merkle.py (now), in the same run, on the same synthetic leaves.

Stages, milliseconds, best of ``--repeat`` runs (the per-leaf path runs once):

- ``old leaves``: ``AccountLeaf.hash()`` per leaf (``eth_abi`` encode, two ``keccak``);
- ``old tree``: :func:`keeper.merkle.reference_tree`, one ``keccak`` call per node;
- ``encode``: :func:`keeper.attestation.encode_leaves`, the leaves' columns to ABI words
  (:func:`keeper.merkle.abi_words`, one Python call per WAD value);
- ``tree``: :func:`keeper.merkle.merkle_tree` from the encodings: leaves double-hashed,
  sorted, every node hashed -- the root and the layers for every proof;
- ``MerkleTree``: ``hash_leaves`` + ``MerkleTree`` from typed leaves, as
  ``keeper/epoch_build.py`` calls them (encode + tree + the ``bytes`` hand-over).

Every row checks that both paths give the same root. Leaves: ``n`` ACCOUNT leaves with
WAD-sized values (subaccount ids 1..n, equity +-1e6 USD, requirements up to 1e6 USD) and 20
INSTRUMENT leaves. The machine's load average is printed: other processes on the 2 cores
stretch every figure.

Usage: ``python -m scripts.bench_merkle [--leaves 1000 10000 100000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numba
import numpy as np

from keeper import merkle
from keeper.attestation import (
    AccountLeaf,
    InstrumentLeaf,
    Leaf,
    MerkleTree,
    encode_leaves,
    hash_leaves,
)
from risk_engine.units import WAD

T = TypeVar("T")


def synthetic_leaves(n: int, rng: np.random.Generator) -> list[Leaf]:
    """``n`` ACCOUNT leaves and 20 INSTRUMENT leaves with WAD-sized values."""
    out: list[Leaf] = []
    for i in range(n):
        equity, cum_lo, cum_hi, im, mm = (int(v) * WAD + i for v in rng.integers(0, 10**6, 5))
        out.append(AccountLeaf(i + 1, i, -cum_lo, cum_hi, equity - 5 * 10**23, im, mm))
    out += [InstrumentLeaf(j, (j + 1) * 1000 * WAD, j * WAD, (j + 2) * WAD) for j in range(20)]
    return out


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    """Best wall time in ms of ``repeat`` calls, and the last result."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    assert result is not None
    return best * 1e3, result


def measure(leaves: Sequence[Leaf], repeat: int) -> str:
    """One table row: the old and the new path on ``leaves``, roots compared."""
    old_leaves, hashes = best_of(1, lambda: [leaf.hash() for leaf in leaves])
    old_tree, reference = best_of(1, lambda: merkle.reference_tree(hashes))
    encode, blocks = best_of(repeat, lambda: [w for _, w in encode_leaves(leaves)])
    tree, layers = best_of(repeat, lambda: merkle.merkle_tree(blocks))
    whole, built = best_of(repeat, lambda: MerkleTree(hash_leaves(leaves)))
    if not reference[0] == layers.root == built.root:
        raise SystemExit(f"roots differ at {len(leaves)} leaves")
    old = old_leaves + old_tree
    return (
        f"| {len(leaves):,} | {old_leaves:,.1f} | {old_tree:,.1f} | {old:,.1f} "
        f"| {encode:,.1f} | {tree:,.1f} | {whole:,.1f} | {old / whole:,.0f}x |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leaves", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    warm = synthetic_leaves(8, rng)
    MerkleTree(hash_leaves(warm))  # the first call loads (or compiles) the numba code
    print(
        f"numba {numba.__version__}, numpy {np.__version__}, one thread; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    print()
    print(
        "| leaves | old leaves ms | old tree ms | old total ms | encode ms | tree ms "
        "| MerkleTree ms | speed-up |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.leaves:
        print(measure(synthetic_leaves(n, rng), args.repeat))
    print()
    print(f"load average after: {os.getloadavg()[0]:.2f}; roots identical in every row")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
