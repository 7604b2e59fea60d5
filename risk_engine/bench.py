"""Benchmark: ``python -m risk_engine.bench`` (``make bench``). Prints, never asserts.

Universe: BTC, ETH, SOL (10 expiries x 20 strikes x call/put each, plus a perp) and 4
collateral tokens (BTC, ETH, SOL, GOV); 100,000 random accounts x 20 positions. Prints
the risk-array build time, the aggregation time, one account after a trade, peak
memory, and the per-position Python loop (``_reference``) on a 1,000-account sample with
the speed ratio. Timings are wall-clock medians on this machine.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ._reference import compute_margin_reference
from .instruments import Portfolios
from .margin import compute_margin
from .params import load_params
from .risk_arrays import build_risk_arrays
from .synthetic import random_portfolios, synthetic_instruments, synthetic_market


def _median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _blas_info() -> str:
    import os

    env = ", ".join(
        f"{k}={os.environ[k]}"
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        if k in os.environ
    )
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {}) if isinstance(cfg, dict) else {}
        return (
            f"{blas.get('name', '?')} {blas.get('version', '?')} "
            f"(threadpoolctl not installed; thread env: {env or 'unset'})"
        )
    pools = "; ".join(
        f"{d.get('internal_api')} {d.get('version')} threads={d.get('num_threads')}"
        for d in threadpool_info()
    )
    return f"{pools} (thread env: {env or 'unset'})"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--positions", type=int, default=20)
    ap.add_argument("--sample", type=int, default=1_000)
    ap.add_argument("--seed", type=int, default=20240630)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import os

    print(f"numpy {np.__version__}; CPUs {os.cpu_count()}; BLAS: {_blas_info()}")
    rng = np.random.default_rng(args.seed)
    market = synthetic_market(rng, underlyings=("BTC", "ETH", "SOL", "GOV"))
    instruments = synthetic_instruments(market)
    params = load_params()
    book = random_portfolios(rng, instruments, market, args.accounts, args.positions)
    arrays = build_risk_arrays(instruments, market, params)
    n_opt = int(np.count_nonzero(instruments.kind <= 2) - 3)
    print(
        f"universe: {instruments.n_instruments} instruments ({n_opt} options, 3 perps, "
        f"{arrays.tokens.instrument_index.size} tokens), {market.n_underlyings} underlyings; "
        f"{arrays.n_scenarios} template scenarios ({arrays.n_scan_columns} padded scan "
        f"columns) x {market.n_underlyings} underlyings = "
        f"{arrays.n_scan_columns * market.n_underlyings} scan columns; "
        f"{arrays.n_joint_scenarios} joint (cluster) scenarios per account"
    )
    print(f"book: {book.n_accounts} accounts, {book.positions.nnz} positions")

    t_arrays = _median_time(lambda: build_risk_arrays(instruments, market, params), args.repeat)
    t_agg = _median_time(
        lambda: compute_margin(book, market, params, arrays=arrays), max(args.repeat // 2, 1)
    )
    print(f"risk arrays (price every instrument once per scenario): {t_arrays * 1e3:8.1f} ms")
    print(f"aggregation (sparse product + cluster maxima + add-ons): {t_agg * 1e3:8.1f} ms")
    full = t_arrays + t_agg
    print(f"full recompute:                                          {full * 1e3:8.1f} ms")

    # one account after a trade: append a leg to account 0, re-margin it alone
    row = book.positions[[0]].toarray()
    row[0, 7] += 1.5
    one = Portfolios(instruments, sp.csr_array(row), book.cash[:1] - 1.5 * arrays.mark[7])
    t_one = _median_time(lambda: compute_margin(one, market, params, arrays=arrays), 200)
    print(f"one account after a trade (shared arrays):               {t_one * 1e6:8.1f} us")

    tracemalloc.start()
    compute_margin(book, market, params, arrays=build_risk_arrays(instruments, market, params))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        f"peak traced memory during a full recompute: {peak / 2**20:.1f} MiB; max RSS {rss:.0f} MiB"
    )

    sample = list(range(min(args.sample, book.n_accounts)))
    t0 = time.perf_counter()
    ref = compute_margin_reference(book, market, params, accounts=sample)
    t_ref = time.perf_counter() - t0
    fast = compute_margin(book.select(sample), market, params, arrays=arrays)
    err = float(np.max(np.abs(fast.im - np.array(ref.im)) / (1.0 + np.abs(np.array(ref.im)))))
    per_ref = t_ref / len(sample)
    per_fast = full / book.n_accounts
    print(
        f"per-position Python loop on {len(sample)} accounts: {t_ref:.2f} s "
        f"({per_ref * 1e6:.0f} us/account); engine {per_fast * 1e6:.2f} us/account "
        f"(full recompute / accounts); ratio {per_ref / per_fast:.0f}x; "
        f"max relative IM difference {err:.1e}"
    )
    print(
        "targets: full recompute <= 1 s: "
        + ("met" if full <= 1.0 else "NOT met")
        + "; >= 100x the loop: "
        + ("met" if per_ref / per_fast >= 100 else "NOT met")
        + "; one account <= 1 ms: "
        + ("met" if t_one <= 1e-3 else "NOT met")
    )


if __name__ == "__main__":
    main()
