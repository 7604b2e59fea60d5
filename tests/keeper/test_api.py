"""The proof API over real HTTP on a free port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from keeper.api import ProofApi
from keeper.attestation import LeafRecord
from keeper.metrics import KeeperMetrics
from keeper.store import Store, SubaccountRecord

ROOT = "0x" + "aa" * 32
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


def post_epoch(store: Store, n: int, root: str, ts: int, mined: bool = True) -> None:
    store.reserve_epoch(n, root, snapshot_block=10 * n, timestamp=ts)
    store.save_leaves(
        n,
        [
            LeafRecord(
                "account",
                str(ACCT),
                {"account": ACCT, "equity": 10**30 + n, "im": 5},
                "0x" + "01" * 32,
                ("0x" + "02" * 32,),
            ),
            LeafRecord("instrument", "3", {"mark": n}, "0x" + "03" * 32, ("0x" + "04" * 32,)),
        ],
    )
    if mined:
        store.set_epoch_status(n, "signed")
        store.set_epoch_status(n, "sent", tx_hash="0x" + "09" * 32)
        store.set_epoch_status(n, "mined")


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
        post_epoch(store, 1, ROOT, now - 10)
        post_epoch(store, 2, "0x" + "bb" * 32, now - 5, mined=False)  # built, not on chain
        status, body = get(api.url + "/health")
        assert status == 200 and body["status"] == "ok"
        assert (
            body["latestEpoch"] == 2 and body["latestMinedEpoch"] == 1 and body["ageSeconds"] == 10
        )
        status, body = get(api.url + "/epoch/latest")
        assert status == 200 and body["epoch"] == 1 and body["root"] == ROOT
        assert body["accounts"] == 1 and body["instruments"] == 1 and body["status"] == "mined"
        status, body = get(api.url + "/epoch/2")
        assert status == 200 and body["status"] == "built"
        status, body = get(api.url + f"/proof/{ACCT}")
        assert status == 200 and body["epoch"] == 1 and body["root"] == ROOT
        assert body["account"] == ACCT and body["leaf"]["key"] == str(ACCT)
        assert body["leaf"]["fields"]["equity"] == str(10**30 + 1)  # exact, as a string
        assert body["leaf"]["proof"] == ["0x" + "02" * 32]
        status, body = get(api.url + f"/proof/{ACCT}?epoch=2")
        assert status == 200 and body["leaf"]["fields"]["equity"] == str(10**30 + 2)
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
    post_epoch(store, 1, ROOT, 100)
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
    post_epoch(store, 1, ROOT, 100)  # snapshot block 10
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
    post_epoch(store, 1, ROOT, 100)
    with ProofApi(
        store, health=lambda: {"ok": False, "reason": "feed refused", "rpc": "up"}
    ) as api:
        status, body = get(api.url + "/health")
        assert status == 503 and body["reason"] == "feed refused" and body["rpc"] == "up"
