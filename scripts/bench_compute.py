"""The epoch build's compute and tree stages at N subaccounts, without Anvil.

``python -m scripts.bench_compute --accounts 10000 100000`` builds a synthetic
:class:`~keeper.chain.ChainSnapshot` of N subaccounts (each: cash, WETH collateral, an ETH
perp and an ETH call; one flat subaccount), a seeded simulator market, and times
:func:`keeper.epoch_build.compute_epoch` (its ``compute`` and ``tree`` timings) against the
per-account reference :func:`keeper.epoch_build.compute_epoch_reference`, the sub-stages of
the fast path, and checks that both give the same root. Then the store stage's leaf file
(``Store.save_tree`` into a temporary data directory, as ``keeper/pipeline.py`` calls it):
handed the build's ABI rows and leaf hashes, and encoding and hashing the leaves again.
Figures go to docs/benchmarks.md ("Keeper epoch pipeline", "Compute stage"). ``--profile``
prints cProfile's top entries.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import pstats
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from keeper.chain import (
    AccountState,
    ChainSnapshot,
    EpochOnChain,
    InstrumentInfo,
    Position,
    TokenInfo,
)
from keeper.epoch_build import EpochBuild, compute_epoch, compute_epoch_reference
from keeper.epoch_columns import ColumnCache
from keeper.feeds import MarketState, SimConfig, SimulatedFeed
from keeper.store import Store
from risk_engine import load_params
from risk_engine.units import WAD

T0 = 1_800_000_000
EXPIRY = T0 + 30 * 86_400
WETH = "0x" + "01" * 20
WBTC = "0x" + "02" * 20


def market() -> MarketState:
    """A seeded simulator tick (BTC, ETH, SOL, GOV), one option expiry."""
    cfg = SimConfig(initial_prices=(65_000.0, 3_500.0, 150.0, 2.0))
    feed = SimulatedFeed(cfg, np.random.default_rng(3), start_time=T0 - 60, expiries=(EXPIRY,))
    return feed.tick(T0)


def snapshot(n: int, *, seed: int = 1) -> ChainSnapshot:
    """``n`` subaccounts with an ETH perp and an ETH call of random sizes (WAD, either
    sign), cash and WETH collateral, funding indices behind the current one; plus one flat
    subaccount."""
    rng = np.random.default_rng(seed)
    milli = 10**15  # sizes and balances in 1/1000 units, plus WAD dust below that
    perp = rng.integers(-50_000, 50_000, n).astype(object) * milli + rng.integers(0, milli, n)
    call = rng.integers(-20_000, 20_000, n).astype(object) * milli + rng.integers(0, milli, n)
    cash = rng.integers(1_000, 1_000_000, n).astype(object) * WAD
    weth = rng.integers(0, 10_000, n).astype(object) * milli
    fidx = rng.integers(-(10**15), 10**15, n)
    accounts = [
        AccountState(
            i + 1,
            int(cash[i]),
            i % 7,
            -int(cash[i]) // 2,
            int(cash[i]),
            (Position(1, int(perp[i]), int(fidx[i])), Position(2, int(call[i]), 0)),
            (int(weth[i]), 0),
        )
        for i in range(n)
    ]
    accounts.append(AccountState(n + 1, 0, 0, 0, 0, (), (0, 0)))
    return ChainSnapshot(
        block=100,
        block_hash="0x" + "00" * 32,
        block_timestamp=T0,
        chain_id=31337,
        vault="0x" + "99" * 20,
        accounts=tuple(accounts),
        instruments=(
            InstrumentInfo(1, 0, "ETH", 0, 0),
            InstrumentInfo(2, 1, "ETH", 3_500 * WAD, EXPIRY),
        ),
        tokens=(TokenInfo(WETH, "WETH", 18, 0), TokenInfo(WBTC, "WBTC", 8, 1)),
        cum_funding={1: 10**15},
        settlements={},
        current_epoch=EpochOnChain(1, 90, T0 - 60, b"\x01" * 32),
        config_version=1,
        quorum=2,
        signers=(),
        max_age=3600,
        future_tolerance=60,
    )


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        got = fn()
        wall = time.perf_counter() - t
        if wall < best:
            best, out = wall, got
    return best, out


def _blas_line() -> str:
    cfg = np.show_config(mode="dicts")
    blas = cfg.get("Build Dependencies", {}).get("blas", {})
    return f"numpy {np.__version__}, BLAS {blas.get('name', '?')} {blas.get('version', '')}"


def run(n: int, *, repeat: int, profile: bool) -> None:
    snap, m, params = snapshot(n), market(), load_params()
    print(f"\n== {n + 1:,} subaccounts (2 positions + WETH each, one flat) ==")
    compute_epoch(snap, m, params, epoch=2)  # compiles keeper/merkle.py's kernels once
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        compute_epoch_reference(snap, m, params, epoch=2)
        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(15)
        print(s.getvalue())
    rows = []
    paths: dict[str, Callable[..., EpochBuild]] = {
        "reference": compute_epoch_reference,
        "fast": compute_epoch,
    }
    for name, fn in paths.items():
        wall, build = _best(partial(fn, snap, m, params, epoch=2), repeat)
        rows.append((name, build.timings["compute"], build.timings["tree"], wall, build))
    print(f"{'path':<10} {'compute s':>10} {'tree s':>8} {'wall s':>8}")
    for name, c, t, w, _ in rows:
        print(f"{name:<10} {c:>10.3f} {t:>8.3f} {w:>8.3f}")
    ref, fast = rows[0][4], rows[1][4]
    same = ref.header == fast.header and ref.account_leaves == fast.account_leaves
    print(f"same header and leaves: {same}; fast sub-stages: ", end="")
    print(", ".join(f"{k} {v:.3f}" for k, v in fast.timings.items()))
    if not same:
        raise SystemExit("the fast path disagrees with the reference")
    _cached_rows(snap, m, params, repeat)
    given, again = _store_seconds(fast, repeat)
    print(
        f"store (save_tree): {given:.3f} s handed the build's ABI rows and hashes, "
        f"{again:.3f} s encoding and hashing"
    )


def _cached_rows(snap: ChainSnapshot, m: MarketState, params: Any, repeat: int) -> None:
    """The fast build with the pipeline's ColumnCache, warm: no subaccount changed since
    the last epoch, then 1 % of them (new state objects, as the indexer hands out)."""
    for share in (0.0, 0.01):
        cache = ColumnCache()
        compute_epoch(snap, m, params, epoch=2, columns_cache=cache)
        accounts = list(snap.accounts)
        step = int(1 / share) if share else 0
        if step:
            for i in range(0, len(accounts), step):
                accounts[i] = dataclasses.replace(
                    accounts[i], state_nonce=accounts[i].state_nonce + 1
                )
        changed = dataclasses.replace(snap, accounts=tuple(accounts))

        def build(s: ChainSnapshot = changed, c: ColumnCache = cache) -> EpochBuild:
            # the cache is warm for `s` after the first call: later calls see no change
            return compute_epoch(s, m, params, epoch=2, columns_cache=c)

        if step:  # time the first call after the change, from a cache warm for `snap`
            best = float("inf")
            for _ in range(repeat):
                cache = ColumnCache()
                compute_epoch(snap, m, params, epoch=2, columns_cache=cache)
                t = time.perf_counter()
                b = compute_epoch(changed, m, params, epoch=2, columns_cache=cache)
                best = min(best, time.perf_counter() - t)
            misses = cache.last_misses
        else:
            best, b = _best(build, repeat)
            misses = cache.last_misses
        print(
            f"fast, column cache, {share:.0%} of subaccounts changed ({misses} blocks read): "
            f"compute {b.timings['compute']:.3f}, tree {b.timings['tree']:.3f}, wall {best:.3f}; "
            + ", ".join(
                f"{k} {v:.3f}" for k, v in b.timings.items() if k not in ("compute", "tree")
            )
        )


def _store_seconds(build: EpochBuild, repeat: int) -> tuple[float, float]:
    """Best ``Store.save_tree`` wall time with and without the build's account rows and
    leaf hashes."""
    best = {True: float("inf"), False: float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"{tmp}/bench.sqlite")
        number = 0
        for _ in range(repeat):
            for given in (True, False):
                number += 1
                store.reserve_epoch(
                    number, "0x" + build.header.root.hex(), snapshot_block=1, timestamp=1
                )
                rows = (build.account_rows, None) if given else (None, None)
                t = time.perf_counter()
                store.save_tree(
                    number,
                    build.account_leaves,
                    build.instrument_leaves,
                    build.tree,
                    encodings=rows,
                    hashes=build.hash_rows if given else None,
                )
                best[given] = min(best[given], time.perf_counter() - t)
        store.close()
    return best[True], best[False]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--accounts", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    print(_blas_line())
    for n in args.accounts:
        run(n, repeat=args.repeat, profile=args.profile)


if __name__ == "__main__":
    main()
