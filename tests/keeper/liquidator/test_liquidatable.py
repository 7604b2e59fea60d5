"""``GET /liquidatable`` (keeper/api.py) in the crash: the keeper's watch list names the
under-margined subaccounts of the last mined epoch with proofs the vault accepts, so a
liquidator that indexes nothing takes the subaccount over with them."""

from __future__ import annotations

import pytest
import requests

from keeper.api import ProofApi
from keeper.attestation import MarginProof
from keeper.liquidator.sources import WatchListLeafSource
from risk_engine.units import WAD

from .conftest import Crash

pytestmark = pytest.mark.anvil


def watch_list(url: str, query: str = "") -> dict:
    r = requests.get(f"{url}/liquidatable{query}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_watch_list_names_the_crashed_books_with_proofs_the_vault_liquidates_on(
    crash: Crash,
) -> None:
    vault = crash.world.vault.functions
    victim, hedged, edge = crash.id(crash.victim), crash.id(crash.hedged), crash.id(crash.edge)
    with ProofApi(crash.store, port=0) as api:
        before = watch_list(api.url)
        assert before["epoch"] == crash.store.latest_epoch(status="mined").number  # type: ignore[union-attr]
        assert before["accounts"] == []  # before the crash: every book above maintenance
        crash.shock()
        e = crash.epoch()
        body = watch_list(api.url)
        listed = {a["account"]: a for a in body["accounts"]}
        assert body["epoch"] == e and set(listed) == {victim, edge}  # not the hedged book
        assert body["root"] == "0x" + crash.world.vault.functions.currentEpoch().call()[3].hex()
        for account, entry in listed.items():
            proof = MarginProof.from_json(entry["leaf"])
            # nothing moved since the snapshot: the listed bound is the vault's, and the
            # vault's view takes the listed leaf and proof
            assert int(vault.mmSurplusHi(account, proof.to_abi()).call()) == int(
                entry["mmSurplusHi"]["wad"]
            )
            liquidatable, *_ = vault.checkLiquidation(account, proof.to_abi()).call()
            assert liquidatable
        # a margin widens the list to the hedged book, well above maintenance
        hedged_usd = crash.bound(crash.hedged, e) // WAD + 1
        wide = watch_list(api.url, f"?margin_usd={hedged_usd}")
        assert hedged in {a["account"] for a in wide["accounts"]}
        # the edge book's owner tops it up: its leaf still lists it, the vault decides
        crash.lift_edge(e)
        bot = crash.bot(source=WatchListLeafSource(api.url))
        report = bot.tick()
    assert set(report.liquidated) == {victim}
    assert crash.owner(crash.victim) == crash.liquidator.address
    assert crash.owner(crash.edge) == crash.edge.address
    assert crash.owner(crash.hedged) == crash.hedged.address
