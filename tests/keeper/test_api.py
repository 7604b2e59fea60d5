"""The proof API over real HTTP on a free port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence

import pytest

from keeper.api import ProofApi
from keeper.attestation import AccountLeaf, InstrumentLeaf, MarginProof, MerkleTree
from keeper.metrics import KeeperMetrics
from keeper.store import Store, SubaccountRecord

ACCT = 7  # a subaccount id with leaves
OWNER = "0x" + "12" * 20


def get(url: str) -> tuple[int, dict | str]:
    req = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read().decode()
            status = resp.status
            ctype = resp.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        body, status, ctype = exc.read().decode(), exc.code, exc.headers["Content-Type"]
    return status, json.loads(body) if ctype == "application/json" else body


def post_epoch(
    store: Store,
    n: int,
    ts: int,
    mined: bool = True,
    accounts: Sequence[AccountLeaf] | None = None,
) -> MerkleTree:
    """Epoch ``n``: subaccount ``ACCT`` (equity ``10**30 + n``) or ``accounts``, and
    instrument 3 (mark ``n``); mined unless ``mined=False``. Returns its tree."""
    accounts = accounts or [AccountLeaf(ACCT, n, 0, 0, 10**30 + n, 5, 0)]
    instruments = [InstrumentLeaf(3, n, 0, 0)]
    tree = MerkleTree([*accounts, *instruments])
    store.reserve_epoch(n, "0x" + tree.root.hex(), snapshot_block=10 * n, timestamp=ts)
    store.save_tree(n, accounts, instruments, tree)
    if mined:
        store.set_epoch_status(n, "signed")
        store.set_epoch_status(n, "sent", tx_hash="0x" + "09" * 32)
        store.set_epoch_status(n, "mined")
    return tree


def test_endpoints(store):
    metrics = KeeperMetrics()
    metrics.failure("feed")
    now = 1_000_000
    with ProofApi(store, port=0, metrics=metrics, max_epoch_age=60, clock=lambda: now) as api:
        assert api.port > 0
        status, body = get(api.url + "/health")
        assert status == 503 and body["status"] == "degraded"  # nothing mined yet
        status, _ = get(api.url + "/epoch/latest")
        assert status == 404
        tree = post_epoch(store, 1, now - 10)
        root = "0x" + tree.root.hex()
        post_epoch(store, 2, now - 5, mined=False)  # built, not on chain
        status, body = get(api.url + "/health")
        assert status == 200 and body["status"] == "ok"
        assert (
            body["latestEpoch"] == 2 and body["latestMinedEpoch"] == 1 and body["ageSeconds"] == 10
        )
        status, body = get(api.url + "/epoch/latest")
        assert status == 200 and body["epoch"] == 1 and body["root"] == root
        assert body["accounts"] == 1 and body["instruments"] == 1 and body["status"] == "mined"
        status, body = get(api.url + "/epoch/2")
        assert status == 200 and body["status"] == "built"
        status, body = get(api.url + f"/proof/{ACCT}")
        assert status == 200 and body["epoch"] == 1 and body["root"] == root
        assert body["account"] == ACCT and body["leaf"]["key"] == str(ACCT)
        assert body["leaf"]["fields"]["equity"] == str(10**30 + 1)  # exact, as a string
        assert body["leaf"]["proof"] == ["0x" + InstrumentLeaf(3, 1, 0, 0).hash().hex()]
        status, body = get(api.url + f"/proof/{ACCT}?epoch=2")
        assert status == 200 and body["leaf"]["fields"]["equity"] == str(10**30 + 2)
        status, body = get(api.url + "/epoch/1/market")
        assert status == 404 and body["error"] == "no market snapshot for epoch 1"
        store.save_market_snapshot(1, '{"spot": 1.5}')
        status, body = get(api.url + "/epoch/1/market")
        assert status == 200 and body == {"spot": 1.5}
        status, body = get(api.url + "/instrument/3")
        assert status == 200 and body["leaf"]["fields"]["mark"] == "1"
        status, text = get(api.url + "/metrics")
        assert status == 200 and 'pm_keeper_failures_total{reason="feed"} 1.0' in text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/proof/0x1234", 400),
        ("/proof/-1", 400),
        ("/proof/" + str(2**256), 400),
        ("/proof/99", 404),
        ("/instrument/abc", 400),
        ("/instrument/99", 404),
        ("/epoch/-1", 400),
        ("/epoch/77", 404),
        (f"/proof/{ACCT}?epoch=x", 400),
        (f"/proof/{ACCT}?epoch=55", 404),
        ("/accounts?limit=0", 400),
        ("/accounts?offset=x", 400),
        ("/market?epoch=77", 404),
        ("/market", 404),  # epoch 1 has no stored market
        ("/accounts?owner=0x12", 400),
        (f"/account/{OWNER}", 404),
        ("/nothing", 404),
        ("/metrics", 404),  # no metrics attached to this API
    ],
)
def test_errors(store, path, status):
    post_epoch(store, 1, 100)
    with ProofApi(store) as api:
        got, body = get(api.url + path)
        assert got == status and "error" in body


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/proof/99", "unknown subaccount 99: the vault has not created it"),
        (
            "/proof/8",
            "subaccount 8 has no leaf in epoch 1: created at block 11, after the epoch's "
            "snapshot block 10; the next epoch attests it",
        ),
        ("/proof/abc", "subaccount id must be a uint256 in decimal: 'abc'"),
        (f"/account/{OWNER}", "leaves are per subaccount, GET /proof/<id>"),
    ],
)
def test_a_proof_request_that_cannot_be_served_says_why_in_one_line(store, path, message):
    post_epoch(store, 1, 100)  # snapshot block 10
    store.save_subaccounts([SubaccountRecord(ACCT, OWNER, 3), SubaccountRecord(8, OWNER, 11)])
    with ProofApi(store) as api:
        status, body = get(api.url + path)
    assert status in (400, 404) and message in body["error"] and "\n" not in body["error"]


def test_accounts_lists_an_owners_subaccount_ids_with_the_owner_of_each(store):
    other = "0x" + "34" * 20
    store.save_subaccounts(
        [
            SubaccountRecord(ACCT, OWNER, 3),
            SubaccountRecord(8, other, 4),
            SubaccountRecord(12, OWNER, 5),
        ]
    )
    with ProofApi(store) as api:
        status, body = get(api.url + f"/accounts?owner={OWNER.upper().replace('0X', '0x')}")
        assert status == 200 and body["owner"].lower() == OWNER
        assert [(a["account"], a["owner"].lower()) for a in body["accounts"]] == [
            (ACCT, OWNER),
            (12, OWNER),
        ]
        status, body = get(api.url + "/accounts?owner=0x" + "56" * 20)
        assert status == 200 and body["accounts"] == []


def test_postIsRefused_andStopFreesThePort(store):
    api = ProofApi(store)
    port = api.start()
    req = urllib.request.Request(api.url + "/health", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 405
    api.stop()
    api.stop()  # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


def test_healthCallback_canDegrade(store):
    post_epoch(store, 1, 100)
    with ProofApi(
        store, health=lambda: {"ok": False, "reason": "feed refused", "rpc": "up"}
    ) as api:
        status, body = get(api.url + "/health")
        assert status == 503 and body["reason"] == "feed refused" and body["rpc"] == "up"


WAD = 10**18


def watch_list_epoch(store: Store) -> MerkleTree:
    """Subaccounts 1..5 with MM surplus ``equity - mm`` of -100, -1 wei, 0, +40 and +1,000
    USD, and 6 flat (no requirement, surplus 0)."""
    surplus = {1: -100 * WAD, 2: -1, 3: 0, 4: 40 * WAD, 5: 1_000 * WAD}
    accounts = [
        AccountLeaf(a, 1, 0, 0, 500 * WAD + s, 600 * WAD, 500 * WAD) for a, s in surplus.items()
    ]
    accounts.append(AccountLeaf(6, 0, 0, 0, 0, 0, 0))
    return post_epoch(store, 1, 100, accounts=accounts)


def test_liquidatable_lists_the_subaccounts_below_zero_most_negative_first_with_proofs(store):
    tree = watch_list_epoch(store)
    with ProofApi(store) as api:
        status, body = get(api.url + "/liquidatable")
    assert status == 200 and body["epoch"] == 1 and body["root"] == "0x" + tree.root.hex()
    assert body["snapshotBlock"] == 10 and body["marginWad"] == "0"
    assert [(a["account"], a["mmSurplusHi"]["wad"]) for a in body["accounts"]] == [
        (1, str(-100 * WAD)),
        (2, "-1"),
    ]
    for entry in body["accounts"]:
        proof = MarginProof.from_json(entry["leaf"])  # the liquidate call's argument
        assert proof.leaf.account == entry["account"]
        assert proof.leaf.equity - proof.leaf.mm == int(entry["mmSurplusHi"]["wad"])
        assert MerkleTree.verify(tree.root, proof.leaf, proof.proof)


def test_liquidatable_margin_widens_the_list_from_the_config_or_the_query(store):
    watch_list_epoch(store)
    with ProofApi(store, liquidatable_margin_usd=50.0) as api:
        _, body = get(api.url + "/liquidatable")
        assert [a["account"] for a in body["accounts"]] == [1, 2, 3, 4]  # not 6: flat
        assert body["marginUsd"] == 50.0 and body["marginWad"] == str(50 * WAD)
        _, body = get(api.url + "/liquidatable?margin_usd=0")
        assert [a["account"] for a in body["accounts"]] == [1, 2]
        _, body = get(api.url + "/liquidatable?margin_usd=40.000000000000000001")
        assert [a["account"] for a in body["accounts"]] == [1, 2, 3, 4]
        _, body = get(api.url + "/liquidatable?margin_usd=40&limit=1")
        assert [a["account"] for a in body["accounts"]] == [1]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/liquidatable?margin_usd=-1", 400, "margin_usd must be a non-negative decimal"),
        ("/liquidatable?margin_usd=1e3", 400, "margin_usd must be a non-negative decimal"),
        ("/liquidatable?limit=x", 400, "limit must be a non-negative integer"),
    ],
)
def test_liquidatable_refuses_a_bad_query(store, path, status, message):
    watch_list_epoch(store)
    with ProofApi(store) as api:
        got, body = get(api.url + path)
    assert got == status and message in body["error"]


def test_liquidatable_is_404_before_an_epoch_is_mined(store):
    post_epoch(store, 1, 100, mined=False)
    with ProofApi(store) as api:
        status, body = get(api.url + "/liquidatable")
    assert status == 404 and body["error"] == "no epoch mined yet"
