"""The sqlite store: one root per epoch, status machine, leaves + files, restarts."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading

import pytest

from keeper.attestation import LeafRecord
from keeper.errors import ChainMismatchError, EpochConflictError, StoreError
from keeper.store import MIGRATIONS, SCHEMA_VERSION, Store, SubaccountRecord, TxRecord
from scripts.toolchain.paths import REPO_ROOT

ROOT_A = "0x" + "aa" * 32
ROOT_B = "0x" + "bb" * 32
ACCT = 12  # a subaccount id
ADDR = "0x" + "11" * 20


def leaves() -> list[LeafRecord]:
    return [
        LeafRecord(
            "account",
            str(ACCT),
            {"account": ACCT, "stateNonce": 3, "cumLo": -(10**30), "equity": 2**255 - 1},
            "0x" + "22" * 32,
            ("0x" + "33" * 32, "0x" + "44" * 32),
        ),
        LeafRecord("instrument", "7", {"mark": 10**22}, "0x" + "55" * 32, ("0x" + "66" * 32,)),
    ]


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "k.sqlite")
    yield s
    s.close()


def test_emptyStore_hasNoEpochs(store):
    assert store.max_epoch_number() is None and store.latest_epoch() is None
    assert store.list_epochs() == []


def test_schema_isVersioned_andWal(store, tmp_path):
    assert store.schema_version == SCHEMA_VERSION
    mode = sqlite3.connect(tmp_path / "k.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_newerSchema_isRefused(tmp_path):
    path = tmp_path / "k.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_reserveEpoch_isIdempotent_andRefusesSecondRoot(store):
    a = store.reserve_epoch(1, ROOT_A, snapshot_block=10, timestamp=100)
    assert a.status == "built"
    again = store.reserve_epoch(
        1, ROOT_A.upper().replace("0X", "0x"), snapshot_block=11, timestamp=101
    )
    assert again.root == ROOT_A and again.snapshot_block == 10  # first record stands
    with pytest.raises(EpochConflictError) as exc:
        store.reserve_epoch(1, ROOT_B, snapshot_block=10, timestamp=100)
    assert exc.value.epoch == 1 and exc.value.stored_root == ROOT_A
    # Even after the first attempt failed, the number keeps its root.
    store.set_epoch_status(1, "failed", reason="rpc down")
    with pytest.raises(EpochConflictError):
        store.reserve_epoch(1, ROOT_B, snapshot_block=10, timestamp=100)


def test_epochStatus_movesForwardOnly(store):
    store.reserve_epoch(1, ROOT_A, snapshot_block=10, timestamp=100)
    with pytest.raises(StoreError):
        store.set_epoch_status(1, "mined")  # built -> mined skips signing and sending
    store.set_epoch_status(1, "signed", header={"epoch": 1, "root": ROOT_A}, signatures=["0x01"])
    store.set_epoch_status(1, "sent", tx_hash="0x" + "ab" * 32)
    store.set_epoch_status(1, "failed", reason="timeout")
    store.set_epoch_status(1, "sent", tx_hash="0x" + "cd" * 32)  # retried with the same root
    rec = store.set_epoch_status(1, "mined")
    assert rec.status == "mined" and rec.tx_hash == "0x" + "cd" * 32
    assert rec.header == {"epoch": 1, "root": ROOT_A} and rec.signatures == ("0x01",)
    assert rec.to_dict()["header"] == {"epoch": "1", "root": ROOT_A}
    with pytest.raises(StoreError):
        store.set_epoch_status(1, "failed")  # mined is final
    with pytest.raises(StoreError):
        store.set_epoch_status(2, "signed")  # unknown epoch
    with pytest.raises(StoreError):
        store.set_epoch_status(1, "bogus")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="not above"):
        store.reserve_epoch(1 - 1, ROOT_B, snapshot_block=5, timestamp=50)
    assert store.latest_epoch(status="mined").number == 1  # type: ignore[union-attr]
    assert store.max_epoch_number() == 1


def test_leaves_storedWithProofs_andEpochFileWritten(store):
    store.reserve_epoch(4, ROOT_A, snapshot_block=10, timestamp=100)
    store.save_market_snapshot(4, '{"spot": 1.5}')
    path = store.save_leaves(4, leaves())
    assert path == store.epochs_dir / "4.json"
    doc = json.loads(path.read_text())
    assert doc["root"] == ROOT_A and doc["market"] == {"spot": 1.5}
    acct = next(x for x in doc["leaves"] if x["kind"] == "account")
    assert acct["key"] == str(ACCT) and acct["fields"]["equity"] == str(2**255 - 1)
    assert acct["fields"]["cumLo"] == str(-(10**30)) and len(acct["proof"]) == 2
    leaf = store.get_leaf(4, "account", ACCT)
    assert leaf is not None and leaf.proof == ("0x" + "33" * 32, "0x" + "44" * 32)
    assert leaf.fields["equity"] == 2**255 - 1 and leaf.fields["cumLo"] == -(10**30)
    assert store.get_leaf(4, "instrument", "7").fields == {"mark": 10**22}  # type: ignore[union-attr]
    assert store.get_leaf(4, "instrument", "8") is None
    store.save_leaves(4, leaves())  # same set again: fine
    changed = leaves()
    changed[1] = LeafRecord("instrument", "7", {"mark": 1}, "0x" + "55" * 32, ("0x" + "66" * 32,))
    with pytest.raises(StoreError, match="different leaves"):
        store.save_leaves(4, changed)
    with pytest.raises(StoreError, match="different market"):
        store.save_market_snapshot(4, '{"spot": 2}')
    with pytest.raises(StoreError):
        store.save_leaves(5, leaves())  # epoch not reserved
    with pytest.raises(StoreError):
        store.save_leaves(4, [LeafRecord("quote", "1", {}, "0x00", ())])


def test_accountLeaves_areKeyedById_inNumericOrder_andAnAddressKeyIsRefused(store):
    store.reserve_epoch(1, ROOT_A, snapshot_block=10, timestamp=100)
    ids = [10, 2, 1]
    store.save_leaves(
        1,
        [LeafRecord("account", str(i), {"account": i}, "0x" + f"{i:02x}" * 32, ()) for i in ids],
    )
    assert [r.key for r in store.get_leaves(1, "account")] == ["1", "2", "10"]
    assert store.get_leaf(1, "account", "10") == store.get_leaf(1, "account", 10)
    with pytest.raises(StoreError, match="decimal id"):
        store.get_leaf(1, "account", ADDR)
    store.reserve_epoch(2, ROOT_B, snapshot_block=20, timestamp=200)
    with pytest.raises(StoreError, match="decimal id"):
        store.save_leaves(2, [LeafRecord("account", ADDR, {}, "0x" + "01" * 32, ())])


def test_subaccounts_listedByOwner_updatedOnTransfer_andReplacedOnRebuild(store):
    alice, bob = "0x" + "a1" * 20, "0x" + "b2" * 20
    store.save_subaccounts(
        [SubaccountRecord(1, alice, 5), SubaccountRecord(2, bob, 6), SubaccountRecord(10, alice, 9)]
    )
    mine = store.subaccounts_of(alice.upper().replace("0X", "0x"))
    assert [r.account for r in mine] == [1, 10]  # lowest id first, owner case-insensitive
    assert mine[0].to_dict() == {"account": 1, "owner": mine[0].owner, "createdBlock": 5}
    store.save_subaccounts([SubaccountRecord(1, bob, 5)])  # transferred to bob
    assert [r.account for r in store.subaccounts_of(bob)] == [1, 2]
    assert store.get_subaccount(1).owner.lower() == bob  # type: ignore[union-attr]
    store.save_subaccounts([SubaccountRecord(2, bob, 6)], replace=True)  # a rebuilt index
    assert store.get_subaccount(1) is None and store.subaccounts_of(alice) == []


def test_v2Store_migratesAccountLeavesToTheIdOfTheSameWord(tmp_path):
    """A store of the pre-subaccount vault: its address keys become the decimal id of the
    same 32-byte word, so the stored leaf hashes and proofs still verify."""
    path = tmp_path / "k.sqlite"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        assert isinstance(script, str)
        db.executescript(script)
    db.execute("PRAGMA user_version = 2")
    db.execute(
        "INSERT INTO epochs VALUES (1, ?, 10, 100, 'mined', NULL, NULL, NULL, NULL, 0, 0)",
        (ROOT_A,),
    )
    db.execute(
        "INSERT INTO leaves VALUES (1, 'account', ?, ?, ?, '[]')",
        (ADDR, json.dumps({"account": ADDR, "equity": 5}), "0x" + "22" * 32),
    )
    db.commit()
    db.close()
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION == 3
        leaf = s.get_leaf(1, "account", int(ADDR, 16))
        assert leaf is not None and leaf.key == str(int(ADDR, 16))
        assert leaf.fields == {"account": int(ADDR, 16), "equity": 5}
        assert s.subaccounts_of(ADDR) == []


def test_transactions_andReplacementLinks(store):
    tx = TxRecord("0x" + "01" * 32, ADDR, 5, "postEpoch", 4, 3 * 10**9, 10**9, 200_000)
    store.record_tx(tx)
    store.record_tx(
        TxRecord("0x" + "02" * 32, ADDR, 5, "postEpoch", 4, 4 * 10**9, 2 * 10**9, 200_000)
    )
    store.update_tx(tx.hash, "replaced", replaced_by="0x" + "02" * 32)
    store.update_tx(
        "0x" + "02" * 32, "mined", block_number=9, gas_used=150_000, effective_gas_price=2 * 10**9
    )
    got = store.txs(epoch=4)
    assert [t.status for t in got] == ["replaced", "mined"]
    assert got[0].replaced_by == got[1].hash and got[1].gas_used == 150_000
    assert store.txs(status="mined")[0].effective_gas_price == 2 * 10**9
    with pytest.raises(StoreError):
        store.update_tx("0x" + "03" * 32, "mined")


def test_cursor_andChainBinding(store):
    assert store.get_cursor() is None
    store.set_cursor(10, "0x" + "ab" * 32)
    store.set_cursor(12, "0x" + "cd" * 32)
    assert store.get_cursor().block_number == 12  # type: ignore[union-attr]
    store.delete_cursor()
    assert store.get_cursor() is None
    store.bind_chain(31337, "0x" + "ee" * 32, ADDR)
    store.bind_chain(31337, "0x" + "EE" * 32, ADDR.upper().replace("0X", "0x"))  # same chain
    with pytest.raises(ChainMismatchError, match="reset"):
        store.bind_chain(31337, "0x" + "ff" * 32, ADDR)  # Anvil restarted: new genesis


_CHILD = """
import sys
from keeper.store import Store
s = Store(sys.argv[1])
s.reserve_epoch(1, "0x" + "aa" * 32, snapshot_block=10, timestamp=100)
s.set_epoch_status(1, "signed")
s.save_market_snapshot(1, '{"x": 1}')
sys.stdout.write("reserved\\n"); sys.stdout.flush()
if sys.argv[2] == "crash":
    import os; os._exit(9)   # killed mid-epoch: no close, no cleanup
s.close()
"""


def test_survivesProcessCrash_andRefusesSecondRootAfterRestart(tmp_path):
    db = tmp_path / "k.sqlite"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(db), "crash"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 9 and "reserved" in proc.stdout, proc.stderr
    with Store(db) as s:
        rec = s.get_epoch(1)
        assert rec is not None and rec.status == "signed" and rec.root == ROOT_A
        assert s.get_market_snapshot(1) == '{"x": 1}'
        with pytest.raises(EpochConflictError):
            s.reserve_epoch(1, ROOT_B, snapshot_block=10, timestamp=100)
        assert s.reserve_epoch(1, ROOT_A, snapshot_block=10, timestamp=100).status == "signed"


def test_concurrentReservations_oneRootWins(tmp_path):
    path = tmp_path / "k.sqlite"
    stores = [Store(path) for _ in range(4)]
    results: list[str] = []

    def worker(i: int, s: Store) -> None:
        try:
            s.reserve_epoch(1, "0x" + f"{i:02x}" * 32, snapshot_block=1, timestamp=1)
            results.append("ok")
        except EpochConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=worker, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 3 + ["ok"]
    for s in stores:
        s.close()
