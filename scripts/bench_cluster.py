"""The risk engine on a Dask LocalCluster: accounts per second at 1M and 10M synthetic
accounts, 1 and 2 workers, and the cluster that would margin 10M accounts in one second.

The book is made ON the workers, shard by shard (``--shard`` accounts each, seeded by the
shard's number, so every run margins the same accounts), and stays there: the client
never holds 10M accounts (about 2.4 GB of positions at 20 per account). Then, timed, as
:class:`keeper.compute.DaskMargin` does it: the risk arrays (built once, in this process)
and the market are broadcast to every worker, every shard is margined where it lies
(:func:`keeper.compute.margin_shard`), and the per-account numbers are gathered here.

Figures per row: ``compute s`` (broadcast + every shard margined, results still on the
workers), ``+ gather s`` (the per-account numbers in this process), accounts per second
of both, the workers' peak RSS. ``scaling`` is the 2-worker rate over the 1-worker rate;
``projected workers`` for 10M accounts in 1 s is ``10M / (rate per worker at the largest
worker count)``, compute only (the gather, one stream into one process, is measured
apart). The machine has 2 cores and other processes: its load average is printed.

Usage: ``python -m scripts.bench_cluster [--accounts 1000000 10000000] [--workers 1 2]
[--shard 250000] [--positions 20]``
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import distributed
import numpy as np
import psutil

from keeper.compute import margin_shard
from risk_engine import InstrumentTable, MarketSnapshot, build_risk_arrays, load_params
from risk_engine.bench import _blas_info
from risk_engine.synthetic import random_portfolios, synthetic_instruments, synthetic_market

TARGET_ACCOUNTS = 10_000_000

#: distributed has no type hints
dask: Any = distributed


def make_shard(
    seed: int, n: int, positions: int, instruments: InstrumentTable, market: MarketSnapshot
) -> tuple[Any, Any]:
    """A worker's task: shard ``seed`` of the synthetic book, (positions, cash)."""
    book = random_portfolios(np.random.default_rng(seed), instruments, market, n, positions)
    return book.positions, book.cash


def worker_rss() -> int:
    return int(psutil.Process().memory_info().rss)


@dataclass(frozen=True)
class Row:
    workers: int
    accounts: int
    setup: float
    compute: float
    gather: float
    peak_rss: int

    @property
    def rate(self) -> float:
        return self.accounts / self.compute

    def line(self) -> str:
        with_gather = self.compute + self.gather
        return (
            f"| {self.workers} | {self.accounts:,} | {self.setup:,.1f} | {self.compute:,.2f} "
            f"| {self.rate:,.0f} | {with_gather:,.2f} | {self.accounts / with_gather:,.0f} "
            f"| {self.peak_rss / 2**30:,.2f} |"
        )


def run(client: Any, n: int, args: argparse.Namespace, market: MarketSnapshot, workers: int) -> Row:
    instruments = synthetic_instruments(market)
    arrays = build_risk_arrays(instruments, market, load_params())
    t0 = time.perf_counter()
    shared = client.scatter([instruments, market], broadcast=True, hash=False)
    sizes = [min(args.shard, n - start) for start in range(0, n, args.shard)]
    shards = [
        client.submit(make_shard, 1_000 + k, size, args.positions, *shared, pure=False)
        for k, size in enumerate(sizes)
    ]
    dask.wait(shards)
    setup = time.perf_counter() - t0

    t0 = time.perf_counter()
    broadcast = client.scatter([arrays, market], broadcast=True, hash=False)
    parts = [client.submit(margin_shard, s, *broadcast, pure=False) for s in shards]
    dask.wait(parts)
    compute = time.perf_counter() - t0
    t1 = time.perf_counter()
    gathered = client.gather(parts)
    gather = time.perf_counter() - t1
    total = sum(len(p["im"]) for p in gathered)
    if total != n:
        raise SystemExit(f"margined {total} accounts of {n}")
    peak = max(client.run(worker_rss).values())
    del gathered, parts, shards
    return Row(workers, n, setup, compute, gather, peak)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, nargs="+", default=[1_000_000, TARGET_ACCOUNTS])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--shard", type=int, default=250_000)
    ap.add_argument("--positions", type=int, default=20)
    ap.add_argument("--seed", type=int, default=20240630)
    args = ap.parse_args(argv)
    market = synthetic_market(np.random.default_rng(args.seed))
    print(f"numpy {np.__version__}; CPUs {os.cpu_count()}; client BLAS: {_blas_info()}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    rows: list[Row] = []
    lines = []
    for workers in args.workers:
        with (
            dask.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                memory_limit=0,  # the book is sized to fit; no spilling in the timing
            ) as cluster,
            dask.Client(cluster) as client,
        ):
            if workers == args.workers[0]:
                print(f"worker BLAS: {next(iter(client.run(_blas_info).values()))}")
            for n in args.accounts:
                row = run(client, n, args, market, workers)
                rows.append(row)
                lines.append(row.line())
                print(row.line(), flush=True)
    print()
    print(
        "| workers | accounts | setup s (book made on the workers) | compute s "
        "| accounts/s | compute + gather s | accounts/s | worker peak RSS GiB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in lines:
        print(line)
    print()
    most = max(args.workers)
    for n in args.accounts:
        by_workers = {r.workers: r for r in rows if r.accounts == n}
        if 1 in by_workers and most in by_workers and most > 1:
            scaling = by_workers[most].rate / by_workers[1].rate
            print(f"{n:,} accounts: {most} workers / 1 worker = {scaling:.2f}x")
    largest = max(rows, key=lambda r: (r.workers, r.accounts))
    per_worker = largest.rate / largest.workers
    print(
        f"rate per worker at {largest.workers} workers, {largest.accounts:,} accounts: "
        f"{per_worker:,.0f} accounts/s -> {TARGET_ACCOUNTS:,} accounts within 1 s needs "
        f"{math.ceil(TARGET_ACCOUNTS / per_worker)} such workers (compute only; "
        f"the gather took {largest.gather:.2f} s more at this size)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
