"""keeper.compute: the risk engine sharded on a Dask LocalCluster (2 worker processes)
gives the local run's numbers bit for bit; the pipeline on Anvil posts, and the daemon
with ``compute.backend = "dask"`` posts, epochs whose leaves a local recomputation
matches; the ``[compute]`` config section."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client, LocalCluster

from keeper.chain import ChainAdapter, Position
from keeper.compute import MIN_SHARD_ACCOUNTS, DaskMargin, join_shards, margin_fn
from keeper.config import ComputeConfig, load_config
from keeper.daemon import build_keeper
from keeper.epoch_build import compute_epoch
from keeper.errors import ConfigError
from keeper.store import Store
from keeper.verify import verify_epoch
from risk_engine import MarginResult, Portfolios, compute_margin, load_params
from risk_engine.synthetic import random_portfolios, synthetic_instruments, synthetic_market
from scripts.anvil import AnvilNode
from scripts.pipeline_world import World, leaves_from_store, make_feed, make_pipeline
from tests.keeper.test_epoch_build import ALICE, BOB, account, market, snapshot

PARAMS = load_params()
PER_ACCOUNT = (
    "equity",
    "im",
    "mm",
    "scan_im",
    "scan_mm",
    "basis",
    "short_option",
    "minimum",
    "concentration",
    "worst_scenario",
    "gross_notional",
    "cash",
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes, started and stopped by this module."""
    made: Any = LocalCluster
    with made(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local
    assert local.status.name == "closed"


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Any]:
    made: Any = Client
    with made(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="module")
def book() -> tuple[Portfolios, Any]:
    rng = np.random.default_rng(12)
    m = synthetic_market(rng)
    return random_portfolios(rng, synthetic_instruments(m), m, 5_000, 20), m


def assert_same_bits(a: MarginResult, b: MarginResult) -> None:
    for name in PER_ACCOUNT:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name


def test_two_workers_give_the_local_numbers_bit_for_bit_with_uneven_shards(
    client: Any, book: tuple[Portfolios, Any]
) -> None:
    portfolios, m = book
    local = compute_margin(portfolios, m, PARAMS)
    for shard in (1_234, 5_000, 9_999):  # 5 uneven shards, one exact, one larger than the book
        assert_same_bits(DaskMargin(client, shard_accounts=shard)(portfolios, m, PARAMS), local)
    assert len(client.scheduler_info()["workers"]) == 2


def test_default_shards_are_two_per_worker_and_never_tiny(client: Any) -> None:
    dask = DaskMargin(client)
    assert dask._shard_size(1_000_000) == 250_000
    assert dask._shard_size(10) == MIN_SHARD_ACCOUNTS
    with pytest.raises(ValueError, match="shard_accounts"):
        DaskMargin(client, shard_accounts=0)


def test_join_shards_keeps_the_order_of_the_shards(book: tuple[Portfolios, Any]) -> None:
    portfolios, m = book
    whole = compute_margin(portfolios, m, PARAMS)
    parts = [
        compute_margin(portfolios.select(range(a, b)), m, PARAMS, arrays=whole.arrays)
        for a, b in ((0, 10), (10, 4_000), (4_000, 5_000))
    ]
    joined = join_shards([{f: getattr(p, f) for f in PER_ACCOUNT} for p in parts], whole.arrays)
    assert_same_bits(joined, whole)


def test_an_epoch_built_on_the_cluster_has_the_local_root(cluster: LocalCluster) -> None:
    snap = snapshot(
        (
            account(ALICE, Position(1, 2 * 10**18, 0), Position(3, -(10**18), 0)),
            account(BOB, Position(2, 10**18, 0)),
        )
    )
    local = compute_epoch(snap, market(), PARAMS, epoch=2)
    config = ComputeConfig(backend="dask", scheduler=cluster.scheduler_address)
    with margin_fn(config) as margin:
        remote = compute_epoch(snap, market(), PARAMS, epoch=2, margin=margin)
    assert remote.header.root == local.header.root
    assert remote.account_leaves == local.account_leaves


def test_local_backend_is_the_engine_in_this_process(book: tuple[Portfolios, Any]) -> None:
    portfolios, m = book
    small = portfolios.select(range(50))
    with margin_fn(ComputeConfig()) as margin:
        assert_same_bits(margin(small, m, PARAMS), compute_margin(small, m, PARAMS))


# ------------------------------------------------------------------------------ config

BASE = {
    "PM_SIGNER_KEYS": "0x" + "11" * 32,
    "PM_VAULT_ADDRESS": "0x" + "99" * 20,
    "PM_RPC_URL": "http://127.0.0.1:8545",
}


def write(tmp_path: Any, text: str) -> Any:
    path = tmp_path / "keeper.toml"
    path.write_text(text)
    return path


def test_compute_backend_defaults_to_local_and_env_overrides_the_file(tmp_path: Any) -> None:
    assert load_config(None, BASE).compute == ComputeConfig("local", None)
    path = write(tmp_path, '[compute]\nbackend = "local"\n')
    env = {**BASE, "PM_COMPUTE_BACKEND": "dask", "PM_COMPUTE_SCHEDULER": "tcp://10.0.0.5:8786"}
    assert load_config(path, env).compute == ComputeConfig("dask", "tcp://10.0.0.5:8786")


def test_compute_section_refuses_dask_without_scheduler_and_bad_values(tmp_path: Any) -> None:
    cases = {
        '[compute]\nbackend = "dask"\n': "compute.scheduler",
        '[compute]\nbackend = "ray"\n': "compute.backend",
        '[compute]\nbackend = "dask"\nscheduler = "http://x:1"\n': "compute.scheduler",
        "[compute]\nworkers = 4\n": "compute",
    }
    for text, field in cases.items():
        with pytest.raises(ConfigError) as err:
            load_config(write(tmp_path, text), BASE)
        assert err.value.field.startswith(field), text


# --------------------------------------------------------------------------- on Anvil


def traded_world(world: World, tmp: Path) -> None:
    """Four subaccounts, three holding positions from two fills, and one epoch mined."""
    maker, *takers = (world.actor(n) for n in ("maker", "alice", "bob", "carol"))
    world.fund_cash(maker, 1_000_000)
    for t in takers:
        world.fund_cash(t, 50_000)
    store = Store(tmp / "setup.sqlite")
    p = make_pipeline(world, store)
    p.run_epoch()
    last = p.run_epoch().epoch or 0
    leaves = leaves_from_store(store, last)
    fills: list[list[tuple[str, float, float]]] = [
        [("ETH-PERP", -2, 3_500), ("ETH-C-3500", -1, 150)],
        [("BTC-PERP", 0.3, 65_000), ("ETH-P-3000", -2, 90)],
    ]
    for i, (t, legs) in enumerate(zip(takers[:2], fills, strict=True)):
        q, sig = world.quote(maker, t, legs, nonce=i + 1)
        world.execute(q, sig, t, leaves)
    store.close()


@pytest.mark.anvil
def test_pipeline_on_the_cluster_posts_the_leaves_of_a_local_run(
    client: Any, world: World, store: Store, tmp_path: Path
) -> None:
    traded_world(world, tmp_path)
    # one account per shard: the book is spread over both workers
    p = make_pipeline(world, store)
    p.margin = DaskMargin(client, shard_accounts=1)
    mined = [r for r in (p.run_epoch() for _ in range(3)) if r.status == "mined"]
    assert len(mined) == 3
    for r in mined:
        assert r.epoch is not None and r.accounts == 4
        check = verify_epoch(ChainAdapter(world.w3, world.vault.address), store, r.epoch, PARAMS)
        # recomputed here with the local engine: same leaves, same root, and it is on chain
        assert check.match and check.first_difference is None, check
        assert check.onchain_root == r.root


@pytest.mark.anvil
def test_daemon_with_the_dask_backend_computes_on_the_cluster(
    cluster: LocalCluster, world: World, anvil: AnvilNode, tmp_path: Path
) -> None:
    traded_world(world, tmp_path)
    config = load_config(
        None,
        env={
            "PM_RPC_URL": anvil.url,
            "PM_VAULT_ADDRESS": world.vault.address,
            "PM_DATA_DIR": str(tmp_path / "data"),
            "PM_SIGNER_KEYS": ",".join(world.signer_keys),
            "PM_SENDER_KEY": "0x" + bytes(world.sender.key).hex(),
            "PM_INTERVAL_SECONDS": "0.5",
            "PM_API_PORT": "0",
            "PM_COMPUTE_BACKEND": "dask",
            "PM_COMPUTE_SCHEDULER": cluster.scheduler_address,
        },
    )
    keeper = build_keeper(config, feed=make_feed(world), serve_metrics=False)
    assert not isinstance(keeper.pipeline.margin, DaskMargin)  # connected at startup
    t = threading.Thread(target=lambda: keeper.run(install_signals=False))
    t.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and world.vault.functions.currentEpoch().call()[0] < 5:
            time.sleep(0.2)
        assert isinstance(keeper.pipeline.margin, DaskMargin)
    finally:
        keeper.lifecycle.request_stop()
        t.join(timeout=30)
    last = keeper.pipeline.last_result
    assert last is not None and last.status == "mined" and last.epoch is not None
    with Store(config.keeper.db_path) as store:
        chain = ChainAdapter(world.w3, world.vault.address)
        assert verify_epoch(chain, store, last.epoch, PARAMS).match
    assert keeper.pipeline.margin.client.status == "closed"  # closed at shutdown
