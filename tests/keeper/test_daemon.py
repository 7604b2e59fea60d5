"""The daemon wired from configuration: epochs every interval, the API, a clean stop, a
reset chain stopping it; funding and settlement on chain through the pipeline."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from keeper.chain import ChainAdapter
from keeper.cli import keeper_cli
from keeper.config import load_config
from keeper.daemon import EXIT_CHAIN_RESET, build_keeper
from keeper.eip712 import Epoch
from keeper.store import Store
from keeper.verify import verify_epoch
from risk_engine import load_params
from risk_engine.units import WAD
from scripts.anvil import AnvilNode, start_anvil
from scripts.pipeline_world import World, leaves_from_store, make_feed, make_pipeline

pytestmark = pytest.mark.anvil


def test_help_explains_config_and_keys() -> None:
    out = CliRunner().invoke(keeper_cli, ["--help"], obj={})
    assert out.exit_code == 0
    for word in (
        "PM_SIGNER_KEYS",
        "PM_KEYSTORE",
        "PM_RPC_URL",
        "run",
        "verify",
        "signer",
        "never come from a file",
    ):
        assert word in out.output


def _config(world: World, anvil: AnvilNode, tmp_path: Path):  # type: ignore[no-untyped-def]
    toml = tmp_path / "keeper.toml"
    # short receipt wait: a node that vanishes mid-wait is given up on quickly
    toml.write_text("[fees]\nreceipt_timeout_seconds = 5.0\nstuck_after_seconds = 2.0\n")
    return load_config(
        toml,
        env={
            "PM_RPC_URL": anvil.url,
            "PM_VAULT_ADDRESS": world.vault.address,
            "PM_DATA_DIR": str(tmp_path / "data"),
            "PM_SIGNER_KEYS": ",".join(world.signer_keys),
            "PM_SENDER_KEY": "0x" + bytes(world.sender.key).hex(),
            "PM_INTERVAL_SECONDS": "0.5",
            "PM_API_PORT": "0",
            "PM_METRICS_PORT": "0",
        },
    )


def test_daemon_posts_epochs_serves_proofs_and_stops(
    world: World, anvil: AnvilNode, tmp_path: Path
) -> None:
    alice = world.actor("alice")
    world.fund_cash(alice, 5_000)
    keeper = build_keeper(_config(world, anvil, tmp_path), feed=make_feed(world))
    t = threading.Thread(target=lambda: keeper.run(install_signals=False))
    t.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if world.vault.functions.currentEpoch().call()[0] >= 3:
                break
            time.sleep(0.2)
        assert world.vault.functions.currentEpoch().call()[0] >= 3
        (a,) = requests.get(f"{keeper.api.url}/accounts?owner={alice.address}", timeout=5).json()[
            "accounts"
        ]
        assert a == {"account": world.account(alice), "owner": alice.address, **a}
        r = requests.get(f"{keeper.api.url}/proof/{a['account']}", timeout=5)
        assert r.status_code == 200 and r.json()["leaf"]["fields"]["account"] == str(a["account"])
        health = requests.get(f"{keeper.api.url}/health", timeout=5).json()
        assert health["status"] == "ok" and health["lastResult"] == "mined"
        metrics = keeper.metrics.render().decode()
        assert 'pm_keeper_stage_seconds_count{stage="compute"}' in metrics
    finally:
        keeper.lifecycle.request_stop()
        t.join(timeout=30)
    assert not t.is_alive() and keeper.exit_code == 0
    # every stored mined epoch is the one on chain
    with Store(tmp_path / "data" / "keeper.sqlite") as store:
        last = store.latest_epoch(status="mined")
        assert last is not None
        assert world.vault.functions.currentEpoch().call()[3].hex() == last.root[2:]


def test_daemon_stops_on_a_reset_chain(
    world: World, anvil: AnvilNode, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keeper = build_keeper(_config(world, anvil, tmp_path), feed=make_feed(world))
    t = threading.Thread(target=lambda: keeper.run(install_signals=False))
    t.start()
    fresh: AnvilNode | None = None
    try:
        deadline = time.monotonic() + 30
        while world.vault.functions.currentEpoch().call()[0] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        anvil.stop()
        fresh = start_anvil(port=anvil.port)  # same URL, empty chain
        t.join(timeout=60)
        assert not t.is_alive() and keeper.exit_code == EXIT_CHAIN_RESET
        assert any(r.getMessage().startswith("chain reset detected") for r in caplog.records)
        # a restart on the same data directory refuses at startup
        again = build_keeper(_config(world, anvil, tmp_path), feed=make_feed(world))
        assert again.run(install_signals=False) == EXIT_CHAIN_RESET
    finally:
        keeper.lifecycle.request_stop()
        t.join(timeout=30)
        if fresh is not None:
            fresh.stop()


def test_funding_and_settlement_reach_the_chain(world: World, store: Store) -> None:
    p = make_pipeline(world, store)
    alice, bob = world.actor("alice"), world.actor("bob")
    world.fund_cash(alice, 50_000)
    world.fund_cash(bob, 50_000)
    p.run_epoch()
    assert p.run_epoch().status == "mined"  # the second one has bob's deposit
    q, sig = world.quote(alice, bob, [("ETH-PERP", 2, 3_500), ("ETH-C-3500", 1, 120)])
    world.execute(q, sig, bob, leaves_from_store(store, 2))
    world.w3.provider.make_request("evm_increaseTime", [600])  # type: ignore[arg-type]
    world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    r = p.run_epoch()
    assert r.status == "mined"
    header = Epoch.from_json(store.get_epoch(r.epoch or 0).header or {})  # type: ignore[union-attr]
    f_eth = dict((f.instrument, f.cum_funding) for f in header.funding)[1]
    assert f_eth != 0 and world.vault.functions.cumFunding(1).call() == f_eth
    cash = world.state(alice)["cash"]
    world.tx(world.vault.functions.applyFunding(world.account(alice)), bob)
    paid = cash - world.state(alice)["cash"]
    assert paid == -((-2 * WAD * f_eth) // WAD)  # mulWadCeil(size, F): a long pays
    # past expiry: the next epoch posts the call's settlement price
    world.w3.provider.make_request("evm_mine", [world.expiry + 10])  # type: ignore[arg-type]
    r = p.run_epoch()
    assert r.status == "mined", r
    header = Epoch.from_json(store.get_epoch(r.epoch or 0).header or {})  # type: ignore[union-attr]
    assert {s.instrument for s in header.settlements} == {3, 4}
    price, is_set = world.vault.functions.settlementPrice(3).call()
    assert is_set and price == dict((s.instrument, s.price) for s in header.settlements)[3]
    assert 3 not in [int(leaf.key) for leaf in store.get_leaves(r.epoch or 0, "instrument")]
    res = verify_epoch(
        ChainAdapter(world.w3, world.vault.address),
        store,
        r.epoch or 0,
        load_params(),
    )
    assert res.match, res.render()
    before = world.state(alice)["cash"]
    world.tx(world.vault.functions.settle(world.account(alice), 3), bob)
    assert world.state(alice)["cash"] - before == max(price - 3_500 * WAD, 0)
    # and epochs go on after expiry
    world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert p.run_epoch().status == "mined"


def test_dry_run_builds_and_signs_but_sends_nothing(world: World, store: Store) -> None:
    alice = world.actor("alice")
    world.fund_cash(alice, 1_000)
    p = make_pipeline(world, store, send_tx=False)
    first, second = p.run_epoch(), p.run_epoch()
    assert (first.status, first.epoch, second.status, second.epoch) == ("built", 1, "built", 2)
    rec = store.get_epoch(1)
    assert rec is not None and len(rec.signatures) == 3 and "dry run" in (rec.reason or "")
    assert store.get_leaves(1) and store.txs() == []
    assert world.vault.functions.currentEpoch().call()[0] == 0


def test_signer_command_needs_exactly_one_key(tmp_path: Path) -> None:
    args = [
        "signer",
        "--port",
        "0",
        "--rpc-url",
        "http://127.0.0.1:1",
        "--chain-id",
        "31337",
        "--vault",
        "0x" + "11" * 20,
        "--allow-keeper",
        "0x" + "22" * 20,
        "--state",
        str(tmp_path / "signed.json"),
    ]
    out = CliRunner().invoke(
        keeper_cli, args, env={"PM_SIGNER_KEYS": "", "PM_KEYSTORE": ""}, obj={}
    )
    assert out.exit_code == 1 and "exactly one key" in out.output
    two = ",".join("0x" + f"{i:064x}" for i in (1, 2))
    out = CliRunner().invoke(keeper_cli, args, env={"PM_SIGNER_KEYS": two}, obj={})
    assert out.exit_code == 1 and "exactly one key" in out.output
