"""GET /openapi.json: a valid OpenAPI 3.1 document of exactly the routes the keeper's HTTP
server answers (keeper/openapi.py's table), and live answers of a real Anvil + keeper stack
valid against its response schemas, with every WAD amount's decimal beside its exact
string."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from keeper.api import ProofApi
from keeper.attestation import AccountLeaf, InstrumentLeaf, MerkleTree
from keeper.config import load_config
from keeper.daemon import Keeper, build_keeper
from keeper.metrics import KeeperMetrics
from keeper.openapi import ROUTES, Route, document, match
from keeper.store import Store, SubaccountRecord
from risk_engine.units import WAD
from scripts.anvil import AnvilNode
from scripts.pipeline_world import World, make_feed

OWNER = "0x" + "12" * 20


def _paths(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}


def _table(groups: set[str]) -> set[tuple[str, str]]:
    return {(r.method, r.path) for r in ROUTES if r.group in groups}


def _seed(store: Store) -> None:
    account = AccountLeaf(7, 1, 0, 0, 1234 * WAD + 5 * 10**17, 3 * WAD, WAD)
    instrument = InstrumentLeaf(3, 3500 * WAD, 0, 0)
    tree = MerkleTree([account, instrument])
    store.reserve_epoch(1, "0x" + tree.root.hex(), snapshot_block=10, timestamp=100)
    store.save_tree(1, [account], [instrument], tree)
    for status in ("signed", "sent", "mined"):
        store.set_epoch_status(1, status, tx_hash="0x" + "09" * 32 if status == "sent" else None)
    store.save_subaccounts(
        [
            SubaccountRecord(7, OWNER, 3),
            SubaccountRecord(8, OWNER, 4),
            SubaccountRecord(9, OWNER, 5),
        ]
    )


def test_the_document_is_valid_openapi_and_lists_exactly_the_served_groups(store: Store) -> None:
    with ProofApi(store, metrics=KeeperMetrics()) as api:
        doc = requests.get(f"{api.url}/openapi.json", timeout=5).json()
    validate(doc)
    validate(document())  # every group
    assert doc["openapi"] == "3.1.0"
    assert _paths(doc) == _table({"proof", "metrics"})  # no web routes: none attached
    simulate = next(r for r in ROUTES if r.path == "/simulate")
    assert simulate.request is not None and simulate.request["required"] == ["legs"]


_SEGMENTS = sorted(
    {s for r in ROUTES for s in r.segments if not s.startswith("{")}
    | {"7", "3", "1", "latest", "x", "account", "0x" + "12" * 20}
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "PUT"]),
    parts=st.lists(st.sampled_from(_SEGMENTS), max_size=3),
)
def test_a_request_is_answered_exactly_when_the_table_has_its_route(
    tmp_path_factory: pytest.TempPathFactory, method: str, parts: list[str]
) -> None:
    with Store(tmp_path_factory.mktemp("s") / "k.sqlite") as store:
        _seed(store)
        with ProofApi(store, metrics=KeeperMetrics()) as api:
            r = requests.request(method, f"{api.url}/{'/'.join(parts)}", timeout=5)
            route, path_known = match(method, parts, api.groups)
    # the route table's own answers ("no route /...", "no GET route /..."), not a route's
    # 404 for a missing resource ("no epoch 3")
    error = r.json().get("error", "") if r.status_code in (404, 405) else ""
    no_route = error.startswith(("no route /", f"no {method} route /"))
    assert no_route == (route is None)
    if route is None:
        assert r.status_code == (405 if path_known else 404)


def test_accounts_are_listed_by_page_with_their_latest_leaf_numbers(store: Store) -> None:
    _seed(store)
    with ProofApi(store) as api:
        page = requests.get(f"{api.url}/accounts?limit=2&offset=1", timeout=5).json()
        assert (page["total"], page["limit"], page["offset"], page["epoch"]) == (3, 2, 1, 1)
        assert [a["account"] for a in page["accounts"]] == [8, 9]
        assert [a["latest"] for a in page["accounts"]] == [None, None]  # no leaf in epoch 1
        first = requests.get(f"{api.url}/accounts?limit=1", timeout=5).json()["accounts"][0]
        assert first["account"] == 7
        assert first["latest"]["equity"] == {"wad": str(1234 * WAD + 5 * 10**17), "decimal": 1234.5}
        owned = requests.get(f"{api.url}/accounts?owner={OWNER}&offset=2", timeout=5).json()
        assert owned["total"] == 3 and [a["account"] for a in owned["accounts"]] == [9]
        for bad in ("limit=0", "limit=1001", "offset=-1", "owner=0x12"):
            r = requests.get(f"{api.url}/accounts?{bad}", timeout=5)
            assert r.status_code == 400 and "\n" not in r.json()["error"]


def test_a_leaf_carries_its_wad_fields_as_decimals_beside_the_exact_strings(store: Store) -> None:
    _seed(store)
    with ProofApi(store) as api:
        leaf = requests.get(f"{api.url}/proof/7", timeout=5).json()["leaf"]
        ins = requests.get(f"{api.url}/instrument/3", timeout=5).json()["leaf"]
    assert leaf["fields"]["equity"] == str(1234 * WAD + 5 * 10**17)
    assert leaf["decimal"] == {
        "equity": 1234.5,
        "im": 3.0,
        "mm": 1.0,
        "cumLo": 0.0,
        "cumHi": 0.0,
    }
    assert ins["decimal"] == {"mark": 3500.0, "lossPerUnitLong": 0.0, "lossPerUnitShort": 0.0}


# ------------------------------------------------------------------------ a live stack

#: A request per route of the table, answered by the live stack of the next test.
EXAMPLES = {
    ("GET", "/health"): "/health",
    ("GET", "/epoch/latest"): "/epoch/latest",
    ("GET", "/epoch/{n}"): "/epoch/1",
    ("GET", "/proof/{id}"): "/proof/{alice}",
    ("GET", "/instrument/{id}"): "/instrument/1",
    ("GET", "/accounts"): "/accounts?limit=10",
    ("GET", "/market"): "/market",
    ("GET", "/epoch/{n}/market"): "/epoch/1/market",
    ("GET", "/epoch/{n}/inputs"): "/epoch/4/inputs",  # posted with the challenge window on
    ("GET", "/liquidatable"): "/liquidatable?margin_usd=1000000",
    ("GET", "/openapi.json"): "/openapi.json",
    ("GET", "/metrics"): "/metrics",
    ("GET", "/"): "/",
    ("GET", "/dashboard"): "/dashboard",
    ("GET", "/static/{name}"): "/static/dashboard.js",
    ("GET", "/markets"): "/markets",
    ("GET", "/instruments"): "/instruments",
    ("GET", "/positions/{id}"): "/positions/{alice}",
    ("GET", "/history/{id}"): "/history/{alice}",
    ("POST", "/simulate"): "/simulate",
}


def _keeper(world: World, anvil: AnvilNode, tmp_path: Path, toml: str = "") -> Keeper:
    f = tmp_path / "keeper.toml"
    f.write_text(toml)
    config = load_config(
        f,
        env={
            "PM_RPC_URL": anvil.url,
            "PM_VAULT_ADDRESS": world.vault.address,
            "PM_DATA_DIR": str(tmp_path / "data"),
            "PM_SIGNER_KEYS": ",".join(world.signer_keys),
            "PM_SENDER_KEY": "0x" + bytes(world.sender.key).hex(),
            "PM_API_PORT": "0",
        },
    )
    keeper = build_keeper(config, feed=make_feed(world), serve_metrics=False)
    # epochs are run by hand: no daemon thread, no race with a moving root
    keeper.pipeline.startup()
    keeper.api.start()
    return keeper


def _wad_pairs_agree(body: Any) -> int:
    """Every ``{"wad", "decimal"}`` object and every leaf's ``decimal`` agree with their
    exact strings; returns how many were checked."""
    n = 0
    if isinstance(body, dict):
        if set(body) == {"wad", "decimal"}:
            assert body["decimal"] == pytest.approx(int(body["wad"]) / WAD, rel=1e-12, abs=1e-18)
            return 1
        if "fields" in body and "decimal" in body:
            for k, v in body["decimal"].items():
                assert v == pytest.approx(int(body["fields"][k]) / WAD, rel=1e-12)
                n += 1
        n += sum(_wad_pairs_agree(v) for v in body.values())
    elif isinstance(body, list):
        n += sum(_wad_pairs_agree(v) for v in body)
    return n


@pytest.mark.anvil
def test_every_route_of_the_document_answers_a_live_stack_as_its_schema_says(
    world: World, anvil: AnvilNode, tmp_path: Path
) -> None:
    alice, bob = world.actor("alice"), world.actor("bob")
    world.fund_cash(alice, 50_000)
    world.fund_cash(bob, 50_000)
    world.fund_token(alice, "WETH", 2 * WAD)
    keeper = _keeper(world, anvil, tmp_path)
    try:
        url = keeper.api.url
        assert keeper.pipeline.run_epoch().status == "mined"
        a, b = world.account(alice), world.account(bob)
        # a trade with proofs read from the API, as a front-end would
        q, sig = world.quote(alice, bob, [("ETH-PERP", 2, 3_500), ("ETH-C-3500", 1, 120)])
        leaves = {
            f"instrument:{leg.instrument}": requests.get(
                f"{url}/instrument/{leg.instrument}", timeout=10
            ).json()["leaf"]
            for leg in q.legs
        }
        world.execute(q, sig, bob, leaves)
        world.w3.provider.make_request("evm_increaseTime", [600])  # type: ignore[arg-type]
        world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert keeper.pipeline.run_epoch().status == "mined"
        world.tx(world.vault.functions.applyFunding(a), bob)
        assert keeper.pipeline.run_epoch().status == "mined"
        world.disputes_on()
        assert keeper.pipeline.run_epoch().status == "mined"  # epoch 4: disputable

        doc = requests.get(f"{url}/openapi.json", timeout=10).json()
        validate(doc)
        assert _paths(doc) == _table({"proof", "metrics", "web"})
        assert set(EXAMPLES) == _paths(doc), "one example per route"
        checked = 0
        for (method, path), example in EXAMPLES.items():
            route: Route = next(r for r in ROUTES if (r.method, r.path) == (method, path))
            target = url + example.format(alice=a)
            if method == "POST":
                r = requests.post(
                    target,
                    json={"account": a, "legs": [{"instrument": 1, "size": -1.0}]},
                    timeout=60,
                )
            else:
                r = requests.get(target, timeout=60)
            assert r.status_code == 200, (example, r.text[:300])
            assert r.headers["Content-Type"] in route.content_types, example
            if r.headers["Content-Type"] == "application/json":
                body = r.json()
                schema = doc["paths"][path][method.lower()]["responses"]["200"]["content"][
                    "application/json"
                ]["schema"]
                jsonschema.Draft202012Validator(schema).validate(body)
                if path != "/openapi.json":  # its schemas name "wad" and "decimal" too
                    checked += _wad_pairs_agree(body)
        assert checked > 20

        hist = requests.get(f"{url}/history/{a}", timeout=30).json()["events"]
        assert [e["event"] for e in hist] == [
            "CashDeposited",
            "Deposited",
            "Trade",  # one per leg
            "Trade",
            "FundingApplied",
        ]
        trade = next(e for e in hist if e["event"] == "Trade" and e["instrument"] == 1)
        assert trade["size"] == {"wad": str(2 * WAD), "decimal": 2.0}  # alice made the quote
        assert trade["price"] == {"wad": str(3_500 * WAD), "decimal": 3_500.0}
        assert hist[-1]["payment"]["wad"] != "0"  # a long paid funding over 600 s
        # by time range: [from, to] in block seconds, both ends inclusive
        t = trade["time"]
        window = requests.get(f"{url}/history/{a}?from={t}&to={t}", timeout=30).json()
        assert {e["event"] for e in window["events"]} <= {"Trade", "CashDeposited", "Deposited"}
        assert "Trade" in {e["event"] for e in window["events"]}
        after = requests.get(f"{url}/history/{a}?from={hist[-1]['time'] + 1}", timeout=30).json()
        assert after["events"] == []
        before = requests.get(f"{url}/history/{a}?to={hist[0]['time'] - 1}", timeout=30).json()
        assert before["events"] == []

        market = requests.get(f"{url}/market", timeout=10).json()
        assert market["epoch"] == 4
        eth = next(u for u in market["market"]["underlyings"] if u["symbol"] == "ETH")
        assert eth["spot"] > 0 and eth["smiles"], "spot and vol inputs of the latest epoch"
        listed = requests.get(f"{url}/accounts", timeout=10).json()
        assert listed["total"] == 2 and [x["account"] for x in listed["accounts"]] == sorted([a, b])
        leaf = requests.get(f"{url}/proof/{a}", timeout=10).json()["leaf"]
        row = next(x for x in listed["accounts"] if x["account"] == a)
        assert row["latest"]["im"]["wad"] == leaf["fields"]["im"] and int(leaf["fields"]["im"]) > 0
    finally:
        keeper.close()
