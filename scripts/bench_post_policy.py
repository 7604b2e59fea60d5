"""Posts per day of ``post.mode = "on_change"`` in an idle market, and gas per day.

    python -m scripts.bench_post_policy --hours 6 --seeds 1 2 3 --gas 136710

An idle market: no subaccount changes (no fill, deposit or withdrawal), so only prices
and time can trigger a post. The seeded simulator (``scripts/pipeline_world.py``) ticks
every second; a post happens when an ETH or BTC spot or perp mark moved by more than the
tolerance since the last post (the ``instrument`` / ``token`` triggers of
``keeper/post_policy.py``, on the prices they follow), or when ``funding_interval_seconds``
passed (``heartbeat`` is longer). Gas per day = posts per day x the measured gas of one
``postEpoch`` (``--gas``, from ``scripts/bench_pipeline.py``).
"""

from __future__ import annotations

import argparse

import numpy as np

from scripts.pipeline_world import make_feed_at

T0 = 1_800_000_000
SYMBOLS = ("ETH", "BTC")


def posts_per_day(seed: int, hours: float, tolerance: float, funding_interval: int) -> float:
    feed = make_feed_at(T0, seed=seed)
    last: np.ndarray | None = None
    last_ts = T0
    posts = 0
    seconds = int(hours * 3600)
    for t in range(1, seconds + 1):
        m = feed.tick(T0 + t)
        prices = np.array(
            [m.underlying(s).spot for s in SYMBOLS] + [m.underlying(s).perp_mark for s in SYMBOLS]
        )
        if last is None:
            last, last_ts = prices, T0 + t
            continue
        if np.max(np.abs(prices / last - 1.0)) > tolerance or T0 + t - last_ts >= funding_interval:
            posts += 1
            last, last_ts = prices, T0 + t
    return posts * 86_400 / seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--tolerances", type=float, nargs="+", default=[0.001, 0.005])
    ap.add_argument("--funding-interval", type=int, default=900)
    ap.add_argument("--gas", type=int, default=136_710, help="gas of one postEpoch")
    args = ap.parse_args(argv)
    print("| tolerance_rel | seed | posts per day | gas per day |")
    print("|---|---|---|---|")
    for tol in args.tolerances:
        for seed in args.seeds:
            n = posts_per_day(seed, args.hours, tol, args.funding_interval)
            print(f"| {tol} | {seed} | {n:,.0f} | {n * args.gas / 1e6:,.1f} M |")
    every = 86_400 * args.gas
    print(f"\nalways (one post a second): 86,400 posts, {every / 1e9:,.2f} G gas per day")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
