"""An epoch posted by the pipeline (one ACCOUNT leaf per subaccount), verified from public
data, and its proofs (served by the API by subaccount id) accepted by the vault for a
withdrawal, a trade and a liquidation by transfer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from keeper.api import ProofApi
from keeper.attestation import MarginProof
from keeper.chain import ChainAdapter
from keeper.cli import keeper_cli
from keeper.eip712 import Epoch
from keeper.store import Store
from keeper.verify import verify_epoch
from risk_engine import load_params
from risk_engine.units import WAD
from scripts.pipeline_world import World, leaves_from_store, make_pipeline

pytestmark = pytest.mark.anvil


def api_leaves(api: ProofApi, world: World, who: list[int]) -> dict[str, Any]:
    """Every leaf the tests need, fetched over HTTP from the proof API (subaccount ids)."""
    out: dict[str, Any] = {}
    for ins in world.instruments.values():
        r = requests.get(f"{api.url}/instrument/{ins}", timeout=5)
        assert r.status_code == 200, r.text
        out[f"instrument:{ins}"] = r.json()["leaf"]
    for account in who:
        r = requests.get(f"{api.url}/proof/{account}", timeout=5)
        assert r.status_code == 200, r.text
        out[f"account:{account}"] = r.json()["leaf"]
    return out


def test_epoch_posted_then_verify_matches(world: World, store: Store, tmp_path: Path) -> None:
    p = make_pipeline(world, store)
    alice, bob = world.actor("alice"), world.actor("bob")
    world.fund_cash(alice, 50_000)
    world.fund_token(alice, "WETH", 5 * WAD)
    world.fund_token(bob, "WBTC", 2 * 10**8)
    world.fund_cash(bob, 50_000)
    r1 = p.run_epoch()
    assert r1.status == "mined" and r1.epoch == 1 and r1.accounts == 2
    q, sig = world.quote(alice, bob, [("ETH-PERP", 3, 3_500), ("ETH-P-3000", 2, 80)])
    world.execute(q, sig, bob, leaves_from_store(store, 1))
    p.run_epoch()
    r3 = p.run_epoch()  # snapshot after the trade block
    assert r3.status == "mined" and r3.epoch == 3
    assert set(r3.timings) >= {"index", "snapshot", "market", "compute", "tree", "sign", "post"}
    epoch, _, ts, root = world.vault.functions.currentEpoch().call()
    assert (epoch, "0x" + root.hex()) == (3, r3.root)
    rec = store.get_epoch(3)
    assert rec is not None and rec.status == "mined"
    header = Epoch.from_json(rec.header or {})
    assert [t.token for t in header.tokens] == [t.address for t in world.tokens.values()]
    assert {f.instrument for f in header.funding} == {1, 2}
    # alice's leaf (her subaccount's) carries her positions: IM well above a flat one's ~0
    leaf = store.get_leaf(3, "account", world.account(alice))
    assert leaf is not None and leaf.fields["im"] > 1_000 * WAD
    assert leaf.fields["cumLo"] == world.state(alice)["cumLo"]
    # the JSON file per epoch names its leaf file and counts; the leaves are in that file
    doc = json.loads(store.epoch_file_path(3).read_text())
    assert doc["root"] == r3.root and (doc["accounts"], doc["instruments"]) == (2, 4)
    assert doc["leavesFile"] == "3.leaves" and len(store.get_leaves(3)) == 2 + 4
    # recomputed from chain state at snapshotBlock + the stored market snapshot
    res = verify_epoch(
        ChainAdapter(world.w3, world.vault.address),
        store,
        3,
        load_params(),
    )
    assert res.match and res.onchain_root == r3.root, res.render()
    # the CLI says the same
    env = {
        "PM_RPC_URL": world.w3.provider.endpoint_uri,  # type: ignore[attr-defined]
        "PM_VAULT_ADDRESS": world.vault.address,
        "PM_DATA_DIR": str(store.path.parent),
        "PM_SIGNER_KEYS": ",".join(world.signer_keys),
    }
    out = CliRunner().invoke(keeper_cli, ["verify", "--epoch", "3"], env=env, obj={})
    assert out.exit_code == 0 and "MATCH" in out.output, out.output


def test_verify_names_the_first_differing_leaf(world: World, store: Store) -> None:
    p = make_pipeline(world, store)
    alice, bob = world.actor("alice"), world.actor("bob")
    world.fund_cash(alice, 10_000)
    world.fund_cash(bob, 10_000)
    assert p.run_epoch().status == "mined"
    # tamper with alice's stored equity behind the store's back: one byte of her row in
    # the epoch's leaf file (keeper/leaf_file.py), read by a fresh store
    key = str(world.account(alice))
    leaves = store.epoch_leaves(1)
    assert leaves is not None
    row = leaves.row("account", int(key))
    assert row is not None
    path = store.leaves_path(1)
    blob = bytearray(path.read_bytes())
    head = json.loads(blob[12 : 12 + int.from_bytes(blob[8:12], "little")])
    at = head["arrays"]["account_words"][0] + 192 * row + 127  # equity's last byte
    blob[at] ^= 1
    path.write_bytes(bytes(blob))
    store = Store(store.path, epochs_dir=store.epochs_dir, cache_epochs=0)
    res = verify_epoch(
        ChainAdapter(world.w3, world.vault.address),
        store,
        1,
        load_params(),
    )
    assert not res.match
    assert res.first_difference is not None
    assert res.first_difference.startswith(f"account leaf {key} differs")
    assert "equity" in res.first_difference
    assert "MISMATCH" in res.render()
    store.close()


def test_api_proofs_accepted_for_withdraw_trade_and_liquidate(world: World, store: Store) -> None:
    feed_pipeline = make_pipeline(world, store)
    feed = feed_pipeline.feed
    alice, bob, carol, dave = (world.actor(n) for n in ("alice", "bob", "carol", "dave"))
    world.fund_cash(alice, 50_000)
    world.fund_token(alice, "WETH", 5 * WAD)
    world.fund_cash(bob, 200_000)
    world.fund_cash(carol, 10_000)
    a, b, c = (world.account(x) for x in (alice, bob, carol))
    feed_pipeline.run_epoch()  # carol's deposit is in the head block: the next epoch has it
    assert feed_pipeline.run_epoch().status == "mined"
    with ProofApi(store, port=0) as api:
        everyone = [a, b, c]
        leaves = api_leaves(api, world, everyone)
        # withdraw: alice takes 1 WETH out of her subaccount with its proof from the API
        mp = MarginProof.from_json(leaves[f"account:{a}"])
        world.tx(
            world.vault.functions.withdraw(a, world.tokens["WETH"].address, WAD, mp.to_abi()),
            alice,
        )
        assert world.state(alice)["coll"][0] == 4 * WAD
        # trade: carol buys 12 ETH perps from bob (leveraged ~4x), proofs from the API
        q, sig = world.quote(bob, carol, [("ETH-PERP", -12, 3_500)])
        world.execute(q, sig, carol, leaves)
        assert world.state(carol)["sizes"] == [12 * WAD]
        feed_pipeline.run_epoch()
        assert feed_pipeline.run_epoch().status == "mined"
        leaves = api_leaves(api, world, everyone)
        cp = MarginProof.from_json(leaves[f"account:{c}"])
        assert cp.leaf.im > 0 and cp.leaf.account == c
        view = world.vault.functions.checkLiquidation(c, cp.to_abi()).call()
        assert view[0] is False  # healthy: not liquidatable
        # ETH falls 30 %: carol's long is now below maintenance
        feed.push_shock({"ETH": -0.30, "BTC": -0.10}, vol_spike=0.3)
        r = feed_pipeline.run_epoch()
        assert r.status == "mined", r
        leaves = api_leaves(api, world, everyone)
        cp = MarginProof.from_json(leaves[f"account:{c}"])
        assert cp.leaf.equity < cp.leaf.mm
        liquidatable, mm_hi, pay, _fee, _covered, _uncovered, min_deposit6 = (
            world.vault.functions.checkLiquidation(c, cp.to_abi()).call()
        )
        assert liquidatable and mm_hi < 0
        # a healthy subaccount is refused by the same view
        bp = MarginProof.from_json(leaves[f"account:{b}"])
        assert world.vault.functions.checkLiquidation(b, bp.to_abi()).call()[0] is False
        # dave, with no subaccount and only the deposit in his wallet, takes carol's over
        world.tx(world.usdc.functions.mint(dave.address, min_deposit6), dave)
        world.tx(world.usdc.functions.approve(world.vault.address, min_deposit6), dave)
        world.tx(world.vault.functions.liquidate(c, cp.to_abi(), min_deposit6, 10**30), dave)
        assert world.owner_of(c) == dave.address
        # nothing moved: the positions stay, and the leaf still describes the subaccount
        assert world.state(c)["sizes"] == [12 * WAD]
        assert world.state(c)["stateNonce"] == cp.leaf.state_nonce
        # at or above IM on the same leaf; carol's equity less the penalty waits for her
        assert world.vault.functions.imSurplusLo(c, cp.to_abi()).call() >= 0
        assert world.vault.functions.payoutOf(carol.address).call() == pay
        # the next epoch attests the same subaccount under its new owner and still verifies
        feed_pipeline.run_epoch()
        r = feed_pipeline.run_epoch()
        assert r.status == "mined"
        got = requests.get(f"{api.url}/accounts?owner={dave.address}", timeout=5).json()
        assert [(x["account"], x["owner"]) for x in got["accounts"]] == [(c, dave.address)]
        assert (
            requests.get(f"{api.url}/accounts?owner={carol.address}", timeout=5).json()["accounts"]
            == []
        )
        after = MarginProof.from_json(api_leaves(api, world, [c])[f"account:{c}"])
        assert after.leaf.account == c and after.leaf.state_nonce == cp.leaf.state_nonce
        res = verify_epoch(
            ChainAdapter(world.w3, world.vault.address),
            store,
            r.epoch or 0,
            load_params(),
        )
        assert res.match, res.render()


def test_subaccount_created_after_the_snapshot_block_waits_for_the_next_epoch(
    world: World, store: Store
) -> None:
    alice, carol = world.actor("alice"), world.actor("carol")
    world.fund_cash(alice, 1_000)
    c = world.new_account(carol)  # created in the head block, after the snapshot
    p = make_pipeline(world, store)
    r = p.run_epoch()  # startup indexed up to the head, carol's subaccount included
    assert r.status == "mined" and c in p.chain.accounts
    assert store.get_leaf(1, "account", c) is None
    res = verify_epoch(
        ChainAdapter(world.w3, world.vault.address),
        store,
        1,
        load_params(),
    )
    assert res.match, res.render()
    assert p.run_epoch().status == "mined"
    assert store.get_leaf(2, "account", c) is not None
