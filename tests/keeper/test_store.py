"""The store: one root per epoch, status machine, columnar leaf files, retention, restarts."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.attestation import (
    AccountLeaf,
    InstrumentLeaf,
    LeafRecord,
    MerkleTree,
    proof_from_json,
)
from keeper.errors import ChainMismatchError, EpochConflictError, StoreError
from keeper.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Retention,
    Store,
    SubaccountRecord,
    TxRecord,
)
from risk_engine import CappedValue
from scripts.toolchain.paths import REPO_ROOT

ROOT_A = "0x" + "aa" * 32
ROOT_B = "0x" + "bb" * 32
ACCT = 12  # a subaccount id
ADDR = "0x" + "11" * 20


ALICE, BOB = 12, 2**255 + 3  # subaccount ids (any uint256)


def book() -> tuple[list[AccountLeaf], list[InstrumentLeaf], MerkleTree]:
    accounts = [
        AccountLeaf(BOB, 1, 0, 0, 0, 0, 0),
        AccountLeaf(ALICE, 3, -(10**30), 10**30, 2**255 - 1, 5, 7),
    ]
    instruments = [InstrumentLeaf(7, 10**22, 10**20, 10**21), InstrumentLeaf(2, 1, 0, 0)]
    return accounts, instruments, MerkleTree([*accounts, *instruments])


def records(tree: MerkleTree, leaves: Sequence[AccountLeaf | InstrumentLeaf]) -> list[LeafRecord]:
    """The stored-format records of ``leaves`` (as EpochBuild.leaf_records)."""
    out = []
    for leaf in leaves:
        kind, key = (
            ("account", leaf.account)
            if isinstance(leaf, AccountLeaf)
            else ("instrument", leaf.instrument)
        )
        out.append(
            LeafRecord(
                kind,
                str(key),
                leaf.to_json(),
                "0x" + leaf.hash().hex(),
                tuple("0x" + p.hex() for p in tree.proof(leaf)),
            )
        )
    return out


def stored(store: Store, n: int, *, mined: bool = False) -> MerkleTree:
    """Epoch ``n`` of :func:`book` reserved and its leaves saved (and mined)."""
    accounts, instruments, tree = book()
    store.reserve_epoch(n, "0x" + tree.root.hex(), snapshot_block=10 * n, timestamp=100 * n)
    store.save_tree(n, accounts, instruments, tree)
    if mined:
        for status in ("signed", "sent", "mined"):
            store.set_epoch_status(n, status)  # type: ignore[arg-type]
    return tree


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


def test_leaves_roundTrip_withProofsFromTheTree_andSavingAgainIsANoOp(store):
    accounts, instruments, tree = book()
    store.reserve_epoch(4, "0x" + tree.root.hex(), snapshot_block=10, timestamp=100)
    path = store.save_leaves(4, records(tree, [*accounts, *instruments]))
    assert path == store.epochs_dir / "4.leaves" and store.leaf_counts(4) == (2, 2)
    assert store.leaves_bytes(4) == path.stat().st_size
    leaf = store.get_leaf(4, "account", ALICE)
    assert leaf is not None and leaf.fields == accounts[1].to_json()
    assert leaf.fields["equity"] == 2**255 - 1 and leaf.fields["cumLo"] == -(10**30)
    assert leaf.leaf_hash == "0x" + accounts[1].hash().hex()
    assert proof_from_json(leaf.proof) == tree.proof(accounts[1])
    assert MerkleTree.verify(tree.root, accounts[1], proof_from_json(leaf.proof))
    ins = store.get_leaf(4, "instrument", "7")
    assert ins is not None and ins.fields == instruments[0].to_json()
    assert store.get_leaf(4, "instrument", "8") is None
    assert store.get_leaf(4, "account", 2**256 - 1) is None
    assert store.get_leaf(5, "account", ALICE) is None  # no such epoch
    # every leaf, by kind then by id, as the records saved
    assert store.get_leaves(4) == sorted(
        records(tree, [*accounts, *instruments]), key=lambda r: (r.kind, int(r.key))
    )
    store.save_leaves(4, records(tree, [*accounts, *instruments]))  # same set again: fine
    store.save_tree(4, accounts, instruments)


def test_saveLeaves_refusesAnotherRoot_aWrongHash_anUnknownKind_andNoEpoch(store):
    accounts, instruments, tree = book()
    store.reserve_epoch(4, "0x" + tree.root.hex(), snapshot_block=10, timestamp=100)
    with pytest.raises(StoreError, match="different leaves"):
        store.save_tree(4, accounts, [InstrumentLeaf(7, 1, 0, 0), instruments[1]])
    with pytest.raises(StoreError, match="not a AccountLeaf"):
        store.save_tree(4, [*accounts, instruments[0]], instruments)  # type: ignore[list-item]
    bad = records(tree, accounts)
    bad[0] = LeafRecord("account", bad[0].key, bad[0].fields, "0x" + "22" * 32, ())
    with pytest.raises(StoreError, match="not its fields' hash"):
        store.save_leaves(4, bad)
    with pytest.raises(StoreError, match="holds id"):
        store.save_leaves(4, [LeafRecord("account", "99", accounts[0].to_json(), "0x", ())])
    with pytest.raises(StoreError, match="no epoch 5"):
        store.save_tree(5, accounts, instruments)
    with pytest.raises(StoreError, match="unknown leaf kind"):
        store.save_leaves(4, [LeafRecord("quote", "1", {}, "0x00", ())])
    with pytest.raises(StoreError, match="same id"):
        store.save_tree(4, [accounts[0], accounts[0]], instruments)
    with pytest.raises(StoreError, match="no leaf"):
        store.save_tree(4, [], [])
    assert store.get_leaves(4) == [] and not store.leaves_path(4).exists()


def test_accountLeaves_areKeyedById_inNumericOrder_andAnAddressKeyIsRefused(store):
    ids = [10, 2, 1]
    accounts = [AccountLeaf(i, 0, 0, 0, 0, 0, 0) for i in ids]
    tree = MerkleTree(accounts)
    store.reserve_epoch(1, "0x" + tree.root.hex(), snapshot_block=10, timestamp=100)
    store.save_leaves(1, records(tree, accounts))
    assert [r.key for r in store.get_leaves(1, "account")] == ["1", "2", "10"]
    assert store.get_leaf(1, "account", "10") == store.get_leaf(1, "account", 10)
    with pytest.raises(StoreError, match="decimal id"):
        store.get_leaf(1, "account", ADDR)
    store.reserve_epoch(2, ROOT_B, snapshot_block=20, timestamp=200)
    with pytest.raises(StoreError, match="decimal id"):
        store.save_leaves(2, [LeafRecord("account", ADDR, {}, "0x" + "01" * 32, ())])


def test_statusChanges_neverRewriteTheLeafFile(store):
    tree = stored(store, 1)
    path = store.leaves_path(1)
    before = path.stat()
    blob = path.read_bytes()
    store.set_epoch_status(1, "signed", header={"epoch": 1}, signatures=["0x01"])
    store.set_epoch_status(1, "sent", tx_hash="0x" + "ab" * 32)
    store.set_epoch_status(1, "mined")
    summary = store.write_epoch_file(1)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    assert path.read_bytes() == blob
    doc = json.loads(summary.read_text())
    assert doc["status"] == "mined" and doc["root"] == "0x" + tree.root.hex()
    assert doc["leavesFile"] == "1.leaves" and doc["accounts"] == 2 and "leaves" not in doc


def test_leavesOfAnOlderEpoch_areReadFromTheFile_asFromMemory(tmp_path):
    with Store(tmp_path / "k.sqlite", cache_epochs=1) as s:
        stored(s, 1)
        stored(s, 2)  # epoch 1 leaves the cache
        memory = s.get_leaves(2)
        from_file = s.get_leaves(1)
    with Store(tmp_path / "k.sqlite", cache_epochs=0) as s:  # a reader process: files only
        assert s.get_leaves(2) == memory and from_file == memory
        assert s.get_leaf(2, "account", ALICE) == memory[0]


def test_storeWithLeafRows_fromAnOlderKeeper_isRefused_andLeftAsItWas(tmp_path):
    """A v2 store of the pre-subaccount vault with leaf rows: the v3 step (address keys to
    ids) runs, the v4 step (columnar leaves) refuses and rolls back."""
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
    with pytest.raises(StoreError, match="1 leaf rows of epochs 1..1.*Move the data directory"):
        Store(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    assert db.execute("SELECT key FROM leaves").fetchall() == [(str(int(ADDR, 16)),)]
    db.close()


def test_oldStoreWithoutLeafRows_migrates(tmp_path):
    path = tmp_path / "k.sqlite"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        assert isinstance(script, str)
        db.executescript(script)
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION == 5
        stored(s, 1)
        assert s.leaf_counts(1) == (2, 2)


def expected_kept(numbers: list[int], keep_last: int, keep_every: int | None, mined: int | None):
    """The retention rule written out: the newest ``keep_last``, the multiples of
    ``keep_every``, the last mined."""
    newest = sorted(numbers)[-keep_last:]
    every = [n for n in numbers if keep_every and n % keep_every == 0]
    return set(newest) | set(every) | ({mined} if mined is not None else set())


@settings(max_examples=25)
@given(
    st.lists(st.integers(1, 60), min_size=1, max_size=14, unique=True),
    st.integers(1, 6),
    st.one_of(st.none(), st.integers(1, 7)),
    st.data(),
)
def test_retention_keepsExactlyTheLastN_everyKth_andTheLastMined(
    tmp_path_factory, numbers, keep_last, keep_every, data
):
    tmp = tmp_path_factory.mktemp("retention")
    mined = data.draw(st.one_of(st.none(), st.sampled_from(sorted(numbers))))
    with Store(tmp / "k.sqlite", retention=Retention(keep_last, keep_every)) as s:
        for n in sorted(numbers):
            # the vault's order: an epoch is mined before a later one is built
            stored(s, n, mined=(n == mined))
        kept = expected_kept(numbers, keep_last, keep_every, mined)
        assert {r.number for r in s.list_epochs(limit=1000)} == kept
        on_disk = {int(p.name.split(".")[0]) for p in (tmp / "epochs").iterdir()}
        assert on_disk == kept
        for n in numbers:
            assert (s.get_market_snapshot(n) is None) or n in kept
            assert (s.get_leaf(n, "account", ALICE) is not None) == (n in kept)


def test_disputeInputs_roundTrip_replace_andNeedAReservedEpoch(tmp_path):
    with Store(tmp_path / "k.sqlite") as s:
        stored(s, 1)
        assert s.get_dispute_inputs(1) is None
        s.save_dispute_inputs(1, '{"market": "0x01"}')
        assert json.loads(s.get_dispute_inputs(1)) == {"market": "0x01"}
        s.save_dispute_inputs(1, '{"market": "0x02"}')
        assert json.loads(s.get_dispute_inputs(1)) == {"market": "0x02"}
        with pytest.raises(StoreError, match="no epoch 9 reserved"):
            s.save_dispute_inputs(9, "{}")
        with pytest.raises(json.JSONDecodeError):
            s.save_dispute_inputs(1, "not json")


def test_retention_deletesTheSummaryFile_theRows_andRefusesABadSetting(tmp_path):
    with Store(tmp_path / "k.sqlite", retention=Retention(keep_last=1)) as s:
        stored(s, 1, mined=True)
        s.save_market_snapshot(1, "{}")
        s.save_dispute_inputs(1, '{"market": "0x"}')
        s.save_capped(1, [CappedValue("x", 2.0, 1.0)])
        s.write_epoch_file(1)
        stored(s, 2, mined=True)  # 1 is still the last mined while 2 is stored
        assert s.get_epoch(1) is not None and s.leaves_path(1).exists()
        stored(s, 3)
        assert s.get_epoch(1) is None and s.get_capped(1) == [] and s.get_market_snapshot(1) is None
        assert s.get_dispute_inputs(1) is None
        assert sorted(p.name for p in (tmp_path / "epochs").iterdir()) == ["2.leaves", "3.leaves"]
    with pytest.raises(StoreError, match="keep_last"):
        Retention(keep_last=0)
    with pytest.raises(StoreError, match="keep_every"):
        Retention(keep_last=1, keep_every=0)


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
