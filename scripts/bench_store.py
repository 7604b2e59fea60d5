"""The epoch's store stage at 1k / 10k / 100k leaves: the row-per-leaf store (before issue
12) against the columnar store (keeper/store.py, keeper/leaf_file.py), in the same run, on
the same synthetic leaves and tree (scripts/bench_merkle.py's).

What each path does for one epoch, as the pipeline calls it (milliseconds):

- ``old``: ``EpochBuild.leaf_records()`` (every proof as hex), one sqlite row per leaf
  (fields JSON, hash, proof JSON), ``epochs/<n>.json`` with every leaf and proof when the
  epoch is built, and that file again when it is mined (:class:`RowStore`, the code of
  keeper/store.py before the change, kept here as the reference);
- ``new``: ``Store.save_tree`` (the columns and the tree's node array to ``<n>.leaves``,
  the sqlite index row) and, when mined, the status row and the small ``<n>.json`` (no
  leaves);
- ``words given``: ``Store.save_tree`` alone, handed the leaves' ABI rows that the tree
  stage already made (``encode_leaves``), so that no WAD value is converted twice.

Bytes per epoch: everything the epoch adds to the data directory (sqlite file growth,
checkpointed, plus the epoch's files), averaged over ``--epochs`` epochs. Then one proof:
``get_leaf`` of a subaccount from an epoch in memory, and from an epoch on disk only (a
fresh store, the file memory-mapped), best of 50 ids.

``--world N``: instead, the keeper itself on Anvil (the test world of
``scripts/pipeline_world.py``: 4 funded subaccounts, 4 instruments), N epochs after 3 of
warm-up, and the bytes per epoch by kind of file (sqlite: market snapshot, epoch and
transaction rows; the epoch files).

Usage: ``python -m scripts.bench_store [--leaves 1000 10000 100000] [--epochs 3]``,
``python -m scripts.bench_store --world 20``
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from keeper.attestation import (
    AccountLeaf,
    InstrumentLeaf,
    InstrumentProof,
    LeafRecord,
    MarginProof,
    MerkleTree,
    encode_leaves,
    hash_to_json,
)
from keeper.store import Store
from scripts.bench_merkle import synthetic_leaves


def leaf_records(
    tree: MerkleTree, accounts: Sequence[AccountLeaf], instruments: Sequence[InstrumentLeaf]
) -> list[LeafRecord]:
    """``EpochBuild.leaf_records`` (keeper/epoch_build.py): what the old store was given."""
    out = []
    for a in accounts:
        wire = MarginProof(a, tree.proof(a)).to_json()
        out.append(
            LeafRecord(
                "account",
                str(a.account),
                wire["fields"],
                hash_to_json(a.hash()),
                tuple(wire["proof"]),
            )
        )
    for i in instruments:
        wire = InstrumentProof(i, tree.proof(i)).to_json()
        out.append(
            LeafRecord(
                "instrument",
                str(i.instrument),
                wire["fields"],
                hash_to_json(i.hash()),
                tuple(wire["proof"]),
            )
        )
    return out


class RowStore:
    """The row-per-leaf store before issue 12, reduced to the epoch's writes: the ``epochs``
    and ``leaves`` tables and the ``<n>.json`` file with every leaf."""

    def __init__(self, path: Path) -> None:
        self.dir = path.parent
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(
            """
            CREATE TABLE epochs (number INTEGER PRIMARY KEY, root TEXT, status TEXT,
                                 header_json TEXT, updated_at REAL);
            CREATE TABLE leaves (epoch INTEGER, kind TEXT, key TEXT, fields_json TEXT,
                                 leaf_hash TEXT, proof_json TEXT,
                                 PRIMARY KEY (epoch, kind, key));
            """
        )

    def save(self, epoch: int, root: str, records: Sequence[LeafRecord]) -> None:
        rows = [
            (
                epoch,
                r.kind,
                r.key,
                json.dumps(dict(r.fields), sort_keys=True),
                r.leaf_hash,
                json.dumps(list(r.proof)),
            )
            for r in records
        ]
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(
            "INSERT INTO epochs VALUES (?, ?, 'built', NULL, ?)", (epoch, root, time.time())
        )
        self.db.executemany("INSERT INTO leaves VALUES (?, ?, ?, ?, ?, ?)", rows)
        self.db.execute("COMMIT")
        self.write_file(epoch, root, "built")

    def mined(self, epoch: int, root: str) -> None:
        self.db.execute("UPDATE epochs SET status = 'mined' WHERE number = ?", (epoch,))
        self.write_file(epoch, root, "mined")

    def write_file(self, epoch: int, root: str, status: str) -> None:
        rows = self.db.execute(
            "SELECT kind, key, fields_json, leaf_hash, proof_json FROM leaves WHERE epoch = ? "
            "ORDER BY kind, length(key), key",
            (epoch,),
        ).fetchall()
        leaves = [
            LeafRecord(k, key, json.loads(f), h, tuple(json.loads(p))).to_dict()
            for k, key, f, h, p in rows
        ]
        doc = {"epoch": epoch, "root": root, "status": status, "leaves": leaves}
        path = self.dir / "epochs" / f"{epoch}.json"
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def get_leaf(self, epoch: int, key: str) -> tuple[str, str] | None:
        row = self.db.execute(
            "SELECT fields_json, proof_json FROM leaves WHERE epoch = ? AND kind = 'account' "
            "AND key = ?",
            (epoch, key),
        ).fetchone()
        return None if row is None else (row[0], row[1])


def dir_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


def checkpointed(path: Path) -> None:
    """Move the WAL into the database file, so that the file's size counts every write."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def bench(n: int, epochs: int, rng: np.random.Generator) -> dict[str, float]:
    leaves = synthetic_leaves(n, rng)
    accounts = [x for x in leaves if isinstance(x, AccountLeaf)]
    instruments = [x for x in leaves if isinstance(x, InstrumentLeaf)]
    tree = MerkleTree(leaves)
    root = "0x" + tree.root.hex()
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        # -- old
        (tmp / "old").mkdir()
        old = RowStore(tmp / "old" / "k.sqlite")
        checkpointed(tmp / "old" / "k.sqlite")
        base = dir_bytes(tmp / "old")
        t_old = []
        for e in range(1, epochs + 1):
            t0 = time.perf_counter()
            old.save(e, root, leaf_records(tree, accounts, instruments))
            old.mined(e, root)
            t_old.append(time.perf_counter() - t0)
        checkpointed(tmp / "old" / "k.sqlite")
        out["old_ms"] = 1e3 * min(t_old)
        out["old_bytes"] = (dir_bytes(tmp / "old") - base) / epochs
        key = str(accounts[n // 2].account)
        out["old_proof_ms"] = 1e3 * min(
            _timed(lambda: old.get_leaf(epochs, key)) for _ in range(50)
        )
        old.db.close()
        # -- new
        store = Store(tmp / "new" / "k.sqlite")
        checkpointed(tmp / "new" / "k.sqlite")
        base = dir_bytes(tmp / "new")
        t_new = []
        for e in range(1, epochs + 1):
            t0 = time.perf_counter()
            store.reserve_epoch(e, root, snapshot_block=e, timestamp=e)
            store.save_tree(e, accounts, instruments, tree)
            store.set_epoch_status(e, "signed")
            store.set_epoch_status(e, "sent")
            store.set_epoch_status(e, "mined")
            store.write_epoch_file(e)
            t_new.append(time.perf_counter() - t0)
        checkpointed(tmp / "new" / "k.sqlite")
        out["new_ms"] = 1e3 * min(t_new)
        out["new_bytes"] = (dir_bytes(tmp / "new") - base) / epochs
        out["leaf_file_bytes"] = float(store.leaves_bytes(epochs) or 0)
        # the tree stage's ABI rows handed over (keeper/attestation.py:encode_leaves)
        (_, a_rows), (_, i_rows) = encode_leaves([*accounts, *instruments])
        t_words = []
        for e in range(epochs + 1, 2 * epochs + 1):
            store.reserve_epoch(e, root, snapshot_block=e, timestamp=e)
            t0 = time.perf_counter()
            store.save_tree(e, accounts, instruments, tree, encodings=(a_rows, i_rows))
            t_words.append(time.perf_counter() - t0)
        out["words_ms"] = 1e3 * min(t_words)
        ids = [accounts[int(i)].account for i in rng.integers(0, n, 50)]
        out["mem_proof_ms"] = 1e3 * min(
            _timed(partial(store.get_leaf, epochs, "account", a)) for a in ids
        )
        store.close()
        cold = Store(tmp / "new" / "k.sqlite", cache_epochs=0)  # every read maps the file
        out["disk_proof_ms"] = 1e3 * min(
            _timed(partial(cold.get_leaf, 1, "account", a)) for a in ids
        )
        mem = cold.get_leaf(1, "account", ids[0])
        assert mem is not None and MerkleTree.verify(
            tree.root,
            AccountLeaf.from_json(mem.fields),
            tuple(bytes.fromhex(p[2:]) for p in mem.proof),
        )
        cold.close()
    return out


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _sizes(d: Path) -> dict[str, int]:
    checkpointed(d / "keeper.sqlite")
    out = {"sqlite": 0, "json": 0, "leaves": 0}
    for p in d.rglob("*"):
        if p.is_file():
            kind = {".json": "json", ".leaves": "leaves"}.get(p.suffix, "sqlite")
            out[kind] += p.stat().st_size
    return out


def world(epochs: int) -> None:
    """Bytes per epoch of the keeper's data directory on the test world (Anvil)."""
    from scripts.anvil import start_anvil
    from scripts.pipeline_world import build_world, make_pipeline

    node = start_anvil()
    try:
        w = build_world(node.web3())
        with tempfile.TemporaryDirectory() as tmp_s:
            d = Path(tmp_s)
            store = Store(d / "keeper.sqlite", epochs_dir=d / "epochs")
            pipeline = make_pipeline(w, store)
            for name in ("alice", "bob", "carol", "dave"):
                w.fund_cash(w.actor(name), 10_000)
            for _ in range(3):
                assert pipeline.run_epoch().status == "mined"
            before = _sizes(d)
            for _ in range(epochs):
                r = pipeline.run_epoch()
                assert r.status == "mined", r
            after = _sizes(d)
            per = {k: (after[k] - before[k]) / epochs for k in before}
            print(
                f"{epochs} epochs, leaves {store.leaf_counts(r.epoch or 0)}: bytes per epoch "
                f"{sum(per.values()):,.0f} (sqlite {per['sqlite']:,.0f}, epoch JSON "
                f"{per['json']:,.0f}, leaf file {per['leaves']:,.0f})"
            )
            store.close()
    finally:
        node.stop()


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--leaves", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--world", type=int, default=0, help="epochs of the keeper on Anvil")
    args = ap.parse_args(argv)
    if args.world:
        world(args.world)
        return
    rng = np.random.default_rng(args.seed)
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores)")
    print(
        f"{'accounts':>9} | {'old ms':>8} | {'new ms':>7} | {'words given':>11} | "
        f"{'old bytes/epoch':>15} | "
        f"{'new bytes/epoch':>15} | {'leaf file':>10} | {'proof mem ms':>12} | "
        f"{'proof disk ms':>13} | {'old proof ms':>12}"
    )
    for n in args.leaves:
        r = bench(n, args.epochs, rng)
        print(
            f"{n:>9,} | {r['old_ms']:>8.0f} | {r['new_ms']:>7.1f} | {r['words_ms']:>11.1f} | "
            f"{r['old_bytes']:>15,.0f} | "
            f"{r['new_bytes']:>15,.0f} | {r['leaf_file_bytes']:>10,.0f} | "
            f"{r['mem_proof_ms']:>12.3f} | {r['disk_proof_ms']:>13.3f} | "
            f"{r['old_proof_ms']:>12.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
