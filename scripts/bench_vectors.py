"""The epoch's risk-vector hashes (docs/protocol.md §11): per-row Python (before) against
``keeper/dispute_encoding.py:vector_hashes`` (now), in the same run, on the same rows.

Rows: the risk arrays of ``risk_engine.bench``'s universe (``synthetic_market`` with
``--seed``, ``synthetic_instruments``: 1,207 instruments at 20 strikes per expiry, the
``make bench`` figures), every row hashed as ``keeper/epoch_build.py:dispute_commitments``
hashes the live instruments and token rows of an epoch with the dispute window on.

- ``per-row``: ``hash_vector(RiskVectorWad.from_arrays(arrays, i))`` for every row (the
  exact Python-int WAD conversion, ``eth_abi`` encoding, one ``keccak`` call per row), best
  of ``--repeat-reference`` runs;
- ``column-wise``: :func:`~keeper.dispute_encoding.vector_hashes`, best of ``--repeat``
  runs after one untimed call (the first call of a fresh checkout compiles the numba code).

The run checks that both give the same hashes, and prints numpy's BLAS and thread settings
(neither path uses BLAS: the numba kernels are single-threaded), the machine's core count
and its load average: other processes on the cores stretch every figure. Prints, never
asserts a speed.

Usage: ``python -m scripts.bench_vectors [--strikes 20] [--repeat 5] [--repeat-reference 1]``
"""

from __future__ import annotations

import argparse
import os

import numba
import numpy as np

from keeper.dispute_encoding import RiskVectorWad, hash_vector, vector_hashes
from risk_engine import build_risk_arrays, load_params
from risk_engine.bench import _blas_info
from risk_engine.risk_arrays import RiskArrays
from risk_engine.synthetic import synthetic_instruments, synthetic_market
from scripts.bench_merkle import best_of


def universe(seed: int, strikes: int) -> RiskArrays:
    """``risk_engine.bench``'s risk arrays (its market and instruments for ``seed``)."""
    rng = np.random.default_rng(seed)
    market = synthetic_market(rng, underlyings=("BTC", "ETH", "SOL", "GOV"))
    instruments = synthetic_instruments(market, strikes_per_expiry=strikes)
    return build_risk_arrays(instruments, market, load_params())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strikes", type=int, default=20, help="strikes per expiry (20: 1,207 rows)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--repeat-reference", type=int, default=1)
    ap.add_argument("--seed", type=int, default=20240630, help="risk_engine.bench's seed")
    args = ap.parse_args(argv)

    arrays = universe(args.seed, args.strikes)
    n = arrays.n_instruments
    n_padded = int(np.count_nonzero(arrays.has_pad))
    vector_hashes(arrays, n)  # loads (or compiles) the numba code
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(
        f"numpy {np.__version__}, numba {numba.__version__} (kernels single-threaded); "
        f"BLAS: {_blas_info()}"
    )
    print(f"cores: {os.cpu_count()} ({affinity} usable by this process)")
    print(
        f"rows: {n:,} ({n_padded:,} with {arrays.n_scan_columns} pads, {n - n_padded} without); "
        f"{arrays.n_scenarios} scenario losses per row"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    def reference() -> tuple[bytes, ...]:
        return tuple(hash_vector(RiskVectorWad.from_arrays(arrays, i)) for i in range(n))

    old_ms, want = best_of(args.repeat_reference, reference)
    new_ms, got = best_of(args.repeat, lambda: vector_hashes(arrays, n))
    old, new = old_ms / 1e3, new_ms / 1e3
    if got != want:
        raise SystemExit("the column-wise hashes differ from the per-row reference")
    print()
    print("| rows | per-row s | column-wise s | per-row us/row | column-wise us/row | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {n:,} | {old:.3f} | {new:.4f} | {old / n * 1e6:,.0f} | {new / n * 1e6:,.1f} "
        f"| {old / new:,.0f}x |"
    )
    print()
    print(f"load average after: {os.getloadavg()[0]:.2f}; hashes identical in every row")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
