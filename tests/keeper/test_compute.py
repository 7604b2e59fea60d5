"""keeper.compute: the risk engine sharded on a Dask LocalCluster (2 worker processes)
gives the local run's numbers bit for bit; the ``[compute]`` config section."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from distributed import Client, LocalCluster

from keeper.chain import Position
from keeper.compute import MIN_SHARD_ACCOUNTS, DaskMargin, join_shards, margin_fn
from keeper.config import ComputeConfig, load_config
from keeper.epoch_build import compute_epoch
from keeper.errors import ConfigError
from risk_engine import MarginResult, Portfolios, compute_margin, load_params
from risk_engine.synthetic import random_portfolios, synthetic_instruments, synthetic_market
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
