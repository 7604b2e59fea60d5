"""Fault tolerance of the epoch pipeline on a real Anvil: a keeper killed mid-epoch, an
RPC outage, a chain reset under the keeper, bad market input, a stale unfinished epoch."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from eth_utils import keccak
from web3 import Web3

from keeper.errors import ChainResetError
from keeper.pipeline import EpochResult
from keeper.store import Store
from scripts.anvil import AnvilNode, start_anvil
from scripts.pipeline_world import World, build_world, make_pipeline
from scripts.toolchain.paths import REPO_ROOT

from .conftest import TcpProxy

pytestmark = pytest.mark.anvil

EPOCH_POSTED = "0x" + keccak(text="EpochPosted(uint64,uint64,uint64,bytes32,uint64)").hex()


def posted(world: World) -> list[tuple[int, str]]:
    """(epoch, root) of every EpochPosted log of the vault, in chain order."""
    logs = world.w3.eth.get_logs(
        {
            "address": world.vault.address,
            "fromBlock": 0,
            "toBlock": "latest",
            "topics": [EPOCH_POSTED],
        }
    )
    return [
        (int.from_bytes(bytes(e["topics"][1]), "big"), "0x" + bytes(e["data"])[64:96].hex())
        for e in logs
    ]


def seed_accounts(world: World) -> None:
    alice, bob = world.actor("alice"), world.actor("bob")
    world.fund_cash(alice, 20_000)
    world.fund_token(alice, "WETH", 2 * 10**18)
    world.fund_cash(bob, 20_000)


@pytest.mark.parametrize("stage", ["built", "signed", "sent"])
def test_killed_mid_epoch_resumes_without_a_second_root(
    world: World, anvil: AnvilNode, tmp_path: Path, stage: str
) -> None:
    seed_accounts(world)
    with Store(tmp_path / "keeper.sqlite") as store:
        assert make_pipeline(world, store).run_epoch().status == "mined"
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("crash_keeper.py")),
            anvil.url,
            world.vault.address,
            str(tmp_path),
            stage,
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    store = Store(tmp_path / "keeper.sqlite")
    rec = store.get_epoch(2)
    assert rec is not None and rec.status == stage
    stored_root = rec.root
    n_leaves = len(store.get_leaves(2))
    assert n_leaves == 2 + 4
    # a restarted keeper (new process state, same store) finishes epoch 2 with ITS root
    p = make_pipeline(world, store)
    result = p.run_epoch()
    assert result.status == "mined" and result.epoch == 2 and result.resumed
    assert result.root == stored_root
    after = p.run_epoch()
    assert after.status == "mined" and after.epoch == 3
    chain = posted(world)
    assert [e for e, _ in chain] == [1, 2, 3]  # one root per epoch number, none skipped
    assert dict(chain)[2] == stored_root
    rec = store.get_epoch(2)
    assert rec is not None and rec.status == "mined" and len(store.get_leaves(2)) == n_leaves
    assert store.get_market_snapshot(2) is not None
    if stage == "sent":  # the transaction the dead process sent is the one that was mined
        assert len([t for t in store.txs(epoch=2) if t.status == "mined"]) == 1
    store.close()


def test_stale_unfinished_epoch_is_abandoned_not_reposted(world: World, store: Store) -> None:
    seed_accounts(world)
    crashed: list[int] = []

    def crash(stage: str, epoch: int) -> None:
        if stage == "signed" and epoch == 2:
            crashed.append(epoch)
            raise KeyboardInterrupt  # the process dies between sign and post

    p = make_pipeline(world, store, hook=crash)
    assert p.run_epoch().status == "mined"
    with pytest.raises(KeyboardInterrupt):
        p.run_epoch()
    old_root = store.get_epoch(2).root  # type: ignore[union-attr]
    # the keeper stays down for longer than the vault's maxAge (3600 s)
    world.w3.provider.make_request("evm_increaseTime", [4_000])  # type: ignore[arg-type]
    world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    p2 = make_pipeline(world, store)
    r = p2.run_epoch()
    assert r.status == "failed" and "stale" in (r.reason or "")
    assert store.get_epoch(2).status == "failed"  # type: ignore[union-attr]
    r = p2.run_epoch()
    assert r.status == "mined" and r.epoch == 3
    chain = posted(world)
    assert [e for e, _ in chain] == [1, 3] and old_root not in dict(chain).values()


def test_rpc_unreachable_for_10s_then_recovers_and_posts(
    world: World, store: Store, proxy: TcpProxy
) -> None:
    seed_accounts(world)
    w3 = Web3(Web3.HTTPProvider(proxy.url, request_kwargs={"timeout": 5}))
    p = make_pipeline(world, store, w3=w3)
    assert p.run_epoch().status == "mined"
    proxy.down()
    results: list[EpochResult | BaseException] = []

    def run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                r = p.run_epoch()
            except Exception as exc:  # noqa: BLE001 - the daemon's job would just run again
                results.append(exc)
                continue
            results.append(r)
            if r.status == "mined":
                return

    t0 = time.monotonic()
    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(10)
    assert not any(isinstance(r, EpochResult) and r.status == "mined" for r in results)
    proxy.up()
    worker.join(timeout=90)
    last = results[-1]
    assert isinstance(last, EpochResult) and last.status == "mined", results
    assert last.epoch == 2 and time.monotonic() - t0 >= 10
    assert p.chain.rpc_retries > 0
    assert [e for e, _ in posted(world)] == [1, 2]


def test_anvil_restarted_empty_is_detected_and_nothing_is_posted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = start_anvil()
    port = node.port
    try:
        world = build_world(node.web3())
        seed_accounts(world)
        store = Store(tmp_path / "keeper.sqlite")
        p = make_pipeline(world, store)
        assert p.run_epoch().status == "mined"
    finally:
        node.stop()
    # Anvil's genesis block carries its start time in whole seconds: a restart within the
    # same second gives the same genesis hash (docs/operations.md, chain binding).
    time.sleep(1.1)
    node = start_anvil(port=port)  # same URL, empty chain
    try:
        with pytest.raises(ChainResetError, match="reset"):
            p.run_epoch()
        # a fresh keeper process on the same store refuses too, at startup
        p2 = make_pipeline(world, store)
        with pytest.raises(ChainResetError, match="no contract at vault"):
            p2.run_epoch()
        # even with the vault redeployed at the same address, the genesis differs
        world2 = build_world(node.web3())
        assert world2.vault.address == world.vault.address
        p3 = make_pipeline(world2, store)
        with pytest.raises(ChainResetError, match="genesis"):
            p3.run_epoch()
        assert world2.vault.functions.currentEpoch().call()[0] == 0
        assert store.latest_epoch().number == 1  # type: ignore[union-attr]
        store.close()
    finally:
        node.stop()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("ETH.spot", math.nan, "ETH.spot"),
        ("BTC.spot", -65_000.0, "BTC.spot"),
        ("ETH.perp_mark", 1e12, "ETH.perp_mark"),
        ("ETH.atm_vol", -0.5, "atm_vol"),  # a 5000 % vol is capped, not refused
        ("tokens.WBTC", 0.0, "tokens.WBTC"),
    ],
)
def test_bad_market_input_refuses_the_epoch_and_the_next_good_one_posts(
    world: World,
    store: Store,
    caplog: pytest.LogCaptureFixture,
    path: str,
    value: float,
    field: str,
) -> None:
    seed_accounts(world)
    p = make_pipeline(world, store)
    good = p.run_epoch()
    assert good.status == "mined"
    p.feed.inject_fault(path, value)  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger="keeper.pipeline"):
        bad = p.run_epoch()
    assert bad.status == "refused" and field in (bad.reason or "")
    assert any(
        r.getMessage() == "epoch refused" and field in r.__dict__["why"] for r in caplog.records
    )
    # nothing stored, nothing posted: the last good epoch stays
    assert store.latest_epoch().number == 1  # type: ignore[union-attr]
    assert world.vault.functions.currentEpoch().call()[0] == 1
    nxt = p.run_epoch()
    assert nxt.status == "mined" and nxt.epoch == 2


def test_instrument_on_an_unknown_underlying_refuses_the_epoch(world: World, store: Store) -> None:
    seed_accounts(world)
    p = make_pipeline(world, store)
    doge = b"DOGE".ljust(32, b"\0")
    world.tx(world.vault.functions.registerInstrument(0, doge, 0, 0), world.owner)
    world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    r = p.run_epoch()
    assert r.status == "refused" and "DOGE" in (r.reason or "")
    assert world.vault.functions.currentEpoch().call()[0] == 0


def test_epoch_tx_not_mined_in_time_is_waited_on_not_sent_again(world: World, store: Store) -> None:
    seed_accounts(world)
    p = make_pipeline(world, store, receipt_timeout=1.0, stuck_after=60.0)
    assert p.run_epoch().status == "mined"
    world.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        r = p.run_epoch()
        assert r.status == "pending" and r.epoch == 2
        assert store.get_epoch(2).status == "sent"  # type: ignore[union-attr]
        again = p.run_epoch()  # still not mined: waits on the same tx, sends nothing new
        assert again.status == "pending" and again.epoch == 2 and again.resumed
        assert len(store.txs(epoch=2)) == 1
    finally:
        world.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    done = p.run_epoch()
    assert done.status == "mined" and done.epoch == 2 and done.resumed
    assert [t.status for t in store.txs(epoch=2)] == ["mined"]
    assert [e for e, _ in posted(world)] == [1, 2]
    assert p.run_epoch().epoch == 3
