"""The keeper's durable state: one sqlite file (WAL mode) that survives restarts.

What it holds and why:

- ``epochs``: one row per epoch number with its ONE root. :meth:`Store.reserve_epoch`
  is the only way to create it and refuses a different root for an existing number
  (:class:`~keeper.errors.EpochConflictError`), inside an ``IMMEDIATE`` transaction
  so that two keeper processes cannot race. Status moves forward only:
  ``built -> signed -> sent -> mined``, and ``failed`` from any non-final state (a failed
  epoch may be sent again with the same root: ``failed -> sent``). An epoch that cannot
  be posted any more (its snapshot too old) is left ``failed`` and the next number is
  used: the vault needs increasing, not contiguous, epoch numbers; the abandoned root
  stays on record.
- ``market_snapshots``: the market JSON each epoch was computed from (``keeper verify``
  recomputes the root from it), zlib-compressed (from v4; a text row of an older store
  reads as it was).
- ``dispute_inputs`` (v5): the committed dispute inputs of an epoch posted with the vault's
  challenge window on (``keeper/dispute_encoding.py:published_inputs``), zlib-compressed.
- leaves: one columnar file per epoch, ``<epochs_dir>/<n>.leaves`` (``keeper/leaf_file.py``:
  the ABI words of every ACCOUNT / INSTRUMENT leaf, sorted by id, and the Merkle tree's
  node array), written once when the epoch is built; ``epochs`` indexes it (file name,
  leaf counts, bytes). A status change never touches it. The last ``cache_epochs`` epochs
  are kept in memory (an LRU) and an older file is memory-mapped, so one proof reads a
  binary search's ``log2(n)`` ids, one leaf row and ``log2(n)`` tree rows, never every
  leaf.
- retention (``keep_last``, ``keep_every``; docs/operations.md, "Data directory"): after
  each epoch's leaves are stored, every epoch that is not among the last ``keep_last``,
  not a multiple of ``keep_every`` and not the last mined one is deleted (its files and its
  rows).
- ``subaccounts``: every subaccount the indexer knows with its current owner and its
  creation block (the proof API's ``GET /accounts?owner=``); rewritten by the indexer.
- ``capped_values``: per epoch, each value capped instead of refusing the epoch (name, raw,
  capped; docs/operations.md, "Refuse or cap"), also in the epoch file as ``capped``.
- ``<epochs_dir>/<n>.json``: the epoch's header, status, capped values and leaf counts
  (no leaves, no market: both are in the store once), written when the epoch is final
  (mined or abandoned), for a reader without sqlite.
- ``transactions``: every transaction sent (hash, nonce, fees, status, ``replaced_by``).
- ``cursors``: the event indexer's last block and its hash (reorg detection).
- ``chain_binding``: chain id, genesis hash and vault this store belongs to; a different
  chain (Anvil restarted empty) raises :class:`~keeper.errors.ChainMismatchError`.

Integers (WAD amounts, int256) are kept exact: Python ints in the records this module
returns, decimal strings in ``to_dict()`` (the API and the epoch files), so that a
JavaScript client does not lose precision.
The schema version is sqlite's ``user_version``; :data:`MIGRATIONS` upgrades an older
file in place. v3 (subaccounts, docs/protocol.md §2) rewrites the account leaves of an
older store from address keys to the same word as an id (``abi.encode`` of an address and
of ``uint256(uint160(address))`` are one word, so the stored hashes and proofs stay
valid); such a store stays bound to its pre-subaccount vault (``chain_binding``).
v4 (columnar leaves) drops the ``leaves`` table; a store that holds leaf rows (written by
a keeper before v4) is refused with :class:`~keeper.errors.StoreError` and left as it
was: its epochs cannot be served without those rows, and the chain, not the store, is the
source of truth, so the operator moves that data directory away (docs/operations.md).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from eth_utils.address import to_checksum_address

from keeper import merkle
from keeper.attestation import (
    AccountLeaf,
    InstrumentLeaf,
    LeafRecord,
    MerkleTree,
    hash_to_json,
    ints_as_strings,
)
from keeper.errors import ChainMismatchError, EpochConflictError, StoreError
from keeper.leaf_file import EpochLeaves
from risk_engine import CappedValue

__all__ = [
    "EPOCH_STATUSES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TX_STATUSES",
    "Cursor",
    "EpochRecord",
    "Retention",
    "Store",
    "SubaccountRecord",
    "TxRecord",
]

EpochStatus = Literal["built", "signed", "sent", "mined", "failed"]
TxStatus = Literal["pending", "mined", "reverted", "replaced", "dropped"]
LeafKind = Literal["account", "instrument"]

EPOCH_STATUSES: tuple[str, ...] = ("built", "signed", "sent", "mined", "failed")
TX_STATUSES: tuple[str, ...] = ("pending", "mined", "reverted", "replaced", "dropped")

#: Allowed epoch status transitions (same status again is a no-op, always allowed).
_EPOCH_NEXT: dict[str, set[str]] = {
    "built": {"signed", "failed"},
    "signed": {"sent", "failed"},
    "sent": {"mined", "failed"},
    "failed": {"sent", "signed"},
    "mined": set(),  # final: the root is on chain
}


def _run_sql(db: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _v3_subaccounts(db: sqlite3.Connection) -> None:
    """The ``subaccounts`` table; account leaf keys and ``fields.account`` from ``0x``
    addresses to the decimal id of the same word."""
    _run_sql(
        db,
        """
        CREATE TABLE subaccounts (
            account       TEXT    PRIMARY KEY,
            owner         TEXT    NOT NULL,
            created_block INTEGER NOT NULL
        );
        CREATE INDEX subaccounts_by_owner ON subaccounts (owner);
        """,
    )
    rows = db.execute("SELECT epoch, key, fields_json FROM leaves WHERE kind = 'account'")
    for epoch, key, fields_json in rows.fetchall():
        if not str(key).startswith("0x"):
            continue
        fields = json.loads(fields_json)
        if "account" in fields:
            fields["account"] = int(str(fields["account"]), 16)
        db.execute(
            "UPDATE leaves SET key = ?, fields_json = ? "
            "WHERE epoch = ? AND kind = 'account' AND key = ?",
            (str(int(key, 16)), json.dumps(fields, sort_keys=True), epoch, key),
        )


def _v4_columnar_leaves(db: sqlite3.Connection) -> None:
    """Leaves leave sqlite for one file per epoch (``keeper/leaf_file.py``), indexed in
    ``epochs``. A store holding leaf rows is refused unchanged (module docstring)."""
    rows = db.execute("SELECT COUNT(*), MIN(epoch), MAX(epoch) FROM leaves").fetchone()
    if rows[0]:
        raise StoreError(
            f"this data directory holds {rows[0]} leaf rows of epochs {rows[1]}..{rows[2]} in "
            "the row-per-leaf format of keepers before store schema v4; this keeper writes one "
            "columnar file per epoch and does not convert them. Move the data directory away "
            "(the next epoch is rebuilt from the chain), or keep serving it with the older "
            "keeper (docs/operations.md, 'Data directory')"
        )
    _run_sql(
        db,
        """
        DROP TABLE leaves;
        ALTER TABLE epochs ADD COLUMN leaves_file  TEXT;
        ALTER TABLE epochs ADD COLUMN accounts     INTEGER;
        ALTER TABLE epochs ADD COLUMN instruments  INTEGER;
        ALTER TABLE epochs ADD COLUMN leaves_bytes INTEGER;
        """,
    )


#: One step per schema version: SQL statements (``;``-separated) or a function of the
#: connection (a data rewrite), each run in one transaction.
MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
    # v1
    """
    CREATE TABLE epochs (
        number          INTEGER PRIMARY KEY,
        root            TEXT    NOT NULL,
        snapshot_block  INTEGER NOT NULL,
        timestamp       INTEGER NOT NULL,
        status          TEXT    NOT NULL CHECK (status IN
                                ('built','signed','sent','mined','failed')),
        tx_hash         TEXT,
        header_json     TEXT,
        signatures_json TEXT,
        reason          TEXT,
        created_at      REAL    NOT NULL,
        updated_at      REAL    NOT NULL
    );
    CREATE TABLE market_snapshots (
        epoch INTEGER PRIMARY KEY REFERENCES epochs(number),
        json  TEXT NOT NULL
    );
    CREATE TABLE leaves (
        epoch       INTEGER NOT NULL REFERENCES epochs(number),
        kind        TEXT    NOT NULL CHECK (kind IN ('account','instrument')),
        key         TEXT    NOT NULL,
        fields_json TEXT    NOT NULL,
        leaf_hash   TEXT    NOT NULL,
        proof_json  TEXT    NOT NULL,
        PRIMARY KEY (epoch, kind, key)
    );
    CREATE TABLE transactions (
        hash                     TEXT PRIMARY KEY,
        sender                   TEXT    NOT NULL,
        nonce                    INTEGER NOT NULL,
        purpose                  TEXT    NOT NULL,
        epoch                    INTEGER,
        max_fee_per_gas          TEXT    NOT NULL,
        max_priority_fee_per_gas TEXT    NOT NULL,
        gas_limit                INTEGER NOT NULL,
        status                   TEXT    NOT NULL CHECK (status IN
                                 ('pending','mined','reverted','replaced','dropped')),
        replaced_by              TEXT,
        block_number             INTEGER,
        gas_used                 INTEGER,
        effective_gas_price      TEXT,
        error                    TEXT,
        created_at               REAL    NOT NULL,
        updated_at               REAL    NOT NULL
    );
    CREATE INDEX transactions_by_sender_nonce ON transactions (sender, nonce);
    CREATE TABLE cursors (
        name         TEXT PRIMARY KEY,
        block_number INTEGER NOT NULL,
        block_hash   TEXT    NOT NULL,
        updated_at   REAL    NOT NULL
    );
    CREATE TABLE chain_binding (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        chain_id     INTEGER NOT NULL,
        genesis_hash TEXT    NOT NULL,
        vault        TEXT    NOT NULL
    );
    """,
    # v2: values capped in an epoch instead of refusing it
    """
    CREATE TABLE capped_values (
        epoch  INTEGER NOT NULL REFERENCES epochs(number),
        name   TEXT    NOT NULL,
        raw    REAL    NOT NULL,
        capped REAL    NOT NULL,
        PRIMARY KEY (epoch, name)
    );
    """,
    # v3: subaccounts (ids with owners); account leaves keyed by id
    _v3_subaccounts,
    # v4: leaves in one columnar file per epoch, indexed in epochs
    _v4_columnar_leaves,
    # v5: the committed dispute inputs of each epoch (GET /epoch/<n>/inputs)
    """
    CREATE TABLE dispute_inputs (
        epoch INTEGER PRIMARY KEY REFERENCES epochs(number),
        json  BLOB NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _norm_hex(value: str, name: str) -> str:
    text = value.lower()
    if not text.startswith("0x"):
        text = "0x" + text
    try:
        int(text, 16)
    except ValueError:
        raise StoreError(f"{name} is not hex: {value!r}") from None
    return text


_DECIMAL = re.compile(r"[0-9]+")


def _id_key(key: int | str, kind: str) -> str:
    """A leaf key: the subaccount or instrument id in decimal (no sign, no leading zeros)."""
    text = str(key).strip()
    if not _DECIMAL.fullmatch(text):
        raise StoreError(f"{kind} key must be a decimal id, got {key!r}")
    return str(int(text))


@dataclass(frozen=True)
class SubaccountRecord:
    """A subaccount as indexed: its id, current owner (checksummed) and creation block."""

    account: int
    owner: str
    created_block: int

    def to_dict(self) -> dict[str, Any]:
        return {"account": self.account, "owner": self.owner, "createdBlock": self.created_block}


@dataclass(frozen=True)
class EpochRecord:
    """One stored epoch. ``root`` and hashes are lowercase ``0x`` hex."""

    number: int
    root: str
    snapshot_block: int
    timestamp: int
    status: str
    tx_hash: str | None
    header: Mapping[str, Any] | None
    signatures: tuple[str, ...]
    reason: str | None
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.number,
            "root": self.root,
            "snapshotBlock": self.snapshot_block,
            "timestamp": self.timestamp,
            "status": self.status,
            "txHash": self.tx_hash,
            "header": ints_as_strings(self.header) if self.header is not None else None,
            "signatures": list(self.signatures),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class TxRecord:
    """One transaction as sent. Fees in wei."""

    hash: str
    sender: str
    nonce: int
    purpose: str
    epoch: int | None
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    gas_limit: int
    status: str = "pending"
    replaced_by: str | None = None
    block_number: int | None = None
    gas_used: int | None = None
    effective_gas_price: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Retention:
    """Which epochs the store keeps (docs/operations.md, "Data directory").

    ``keep_last``: the newest this many epoch numbers (None: all); ``keep_every``: also
    every epoch whose number is a multiple of it (None: no older one). The last mined
    epoch (the root the vault holds, whose proofs users need) is always kept.
    """

    keep_last: int | None = None
    keep_every: int | None = None

    def __post_init__(self) -> None:
        if self.keep_last is not None and self.keep_last < 1:
            raise StoreError(f"keep_last must be >= 1 (the epoch posted), got {self.keep_last}")
        if self.keep_every is not None and self.keep_every < 1:
            raise StoreError(f"keep_every must be >= 1, got {self.keep_every}")

    def kept(self, numbers: Sequence[int], last_mined: int | None) -> set[int]:
        """The numbers of ``numbers`` to keep."""
        if self.keep_last is None:
            return set(numbers)
        keep = set(sorted(numbers, reverse=True)[: self.keep_last])
        if self.keep_every is not None:
            keep |= {n for n in numbers if n % self.keep_every == 0}
        if last_mined is not None:
            keep.add(last_mined)
        return keep & set(numbers)


@dataclass(frozen=True)
class Cursor:
    """Indexer position: last processed block and its hash (to detect a reorg)."""

    name: str
    block_number: int
    block_hash: str


class Store:
    """sqlite store; thread-safe (one connection, one lock), usable as a context manager.

    Parameters
    ----------
    path : Path
        The sqlite file (created with its parent directory).
    epochs_dir : Path, optional
        Where the ``<n>.leaves`` and ``<n>.json`` epoch files go; defaults to
        ``<path's dir>/epochs``.
    retention : Retention
        Which epochs to keep; the default keeps all.
    cache_epochs : int
        How many epochs' leaves and trees stay in memory (the newest stored or read).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        epochs_dir: Path | str | None = None,
        retention: Retention = Retention(),
        cache_epochs: int = 4,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.epochs_dir = Path(epochs_dir) if epochs_dir else self.path.parent / "epochs"
        self.retention = retention
        self.cache_epochs = max(0, int(cache_epochs))
        self._cache: OrderedDict[int, EpochLeaves] = OrderedDict()
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc

    # ---------------------------------------------------------------- plumbing

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; BEGIN IMMEDIATE takes the write lock up front so that the
        read-check-write of :meth:`reserve_epoch` is atomic across processes."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args))

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema v{version}, newer than this keeper "
                f"(v{SCHEMA_VERSION}); upgrade the keeper"
            )
        for v in range(version, SCHEMA_VERSION):
            with self._tx() as db:
                migration = MIGRATIONS[v]
                if isinstance(migration, str):
                    _run_sql(db, migration)
                else:
                    migration(db)
                db.execute(f"PRAGMA user_version = {v + 1}")

    # ---------------------------------------------------------------- chain binding

    def bind_chain(self, chain_id: int, genesis_hash: str, vault: str) -> None:
        """Record which chain this store describes, or check that it still does.

        Raises :class:`ChainMismatchError` when the stored binding differs (for instance
        Anvil restarted with an empty chain: the genesis hash or the vault changed).
        """
        genesis = _norm_hex(genesis_hash, "genesis_hash")
        vault_l = _norm_hex(vault, "vault")
        with self._tx() as db:
            row = db.execute("SELECT * FROM chain_binding WHERE id = 1").fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO chain_binding VALUES (1, ?, ?, ?)", (chain_id, genesis, vault_l)
                )
                return
            stored = (row["chain_id"], row["genesis_hash"], row["vault"])
            if stored != (chain_id, genesis, vault_l):
                raise ChainMismatchError(
                    f"store {self.path} belongs to chain {stored[0]} genesis {stored[1]} vault "
                    f"{stored[2]}, but the node reports chain {chain_id} genesis {genesis} vault "
                    f"{vault_l}; the chain was reset or the config points elsewhere. Refusing to "
                    "post over it: move the data directory away to start afresh."
                )

    # ---------------------------------------------------------------- epochs

    def reserve_epoch(
        self, number: int, root: str, *, snapshot_block: int, timestamp: int
    ) -> EpochRecord:
        """Create epoch ``number`` with ``root`` (status ``built``), or return it if it
        already exists with the same root.

        Raises :class:`EpochConflictError` if it exists with a different root: one epoch
        number has one root for ever, whatever happened to the first attempt. Also
        refuses a number not above an epoch that is already mined (the vault would reject
        it as out of order).
        """
        if number < 0:
            raise StoreError(f"epoch number must be >= 0, got {number}")
        root_l = _norm_hex(root, "root")
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT * FROM epochs WHERE number = ?", (number,)).fetchone()
            if row is not None:
                if row["root"] != root_l:
                    raise EpochConflictError(number, row["root"], root_l)
                return _epoch(row)
            mined = db.execute("SELECT MAX(number) FROM epochs WHERE status = 'mined'").fetchone()[
                0
            ]
            if mined is not None and number <= mined:
                raise StoreError(f"epoch {number} is not above the last mined epoch {mined}")
            db.execute(
                "INSERT INTO epochs (number, root, snapshot_block, timestamp, status, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, 'built', ?, ?)",
                (number, root_l, snapshot_block, timestamp, now, now),
            )
            return _epoch(db.execute("SELECT * FROM epochs WHERE number = ?", (number,)).fetchone())

    def set_epoch_status(
        self,
        number: int,
        status: EpochStatus,
        *,
        tx_hash: str | None = None,
        reason: str | None = None,
        header: Mapping[str, Any] | None = None,
        signatures: Sequence[str] | None = None,
    ) -> EpochRecord:
        """Move epoch ``number`` to ``status`` (see the module docstring for the allowed
        moves); optionally record the tx hash, the failure reason, the signed header and
        the signatures. Raises :class:`StoreError` on an unknown epoch or a backward move."""
        if status not in EPOCH_STATUSES:
            raise StoreError(f"unknown epoch status {status!r}")
        with self._tx() as db:
            row = db.execute("SELECT * FROM epochs WHERE number = ?", (number,)).fetchone()
            if row is None:
                raise StoreError(f"no epoch {number}")
            current = row["status"]
            if status != current and status not in _EPOCH_NEXT[current]:
                raise StoreError(f"epoch {number}: cannot go from {current} to {status}")
            db.execute(
                "UPDATE epochs SET status = ?, tx_hash = COALESCE(?, tx_hash), "
                "reason = ?, header_json = COALESCE(?, header_json), "
                "signatures_json = COALESCE(?, signatures_json), updated_at = ? "
                "WHERE number = ?",
                (
                    status,
                    _norm_hex(tx_hash, "tx_hash") if tx_hash else None,
                    reason,
                    json.dumps(dict(header)) if header is not None else None,
                    json.dumps(list(signatures)) if signatures is not None else None,
                    time.time(),
                    number,
                ),
            )
            return _epoch(db.execute("SELECT * FROM epochs WHERE number = ?", (number,)).fetchone())

    def get_epoch(self, number: int) -> EpochRecord | None:
        rows = self._query("SELECT * FROM epochs WHERE number = ?", (number,))
        return _epoch(rows[0]) if rows else None

    def latest_epoch(self, *, status: EpochStatus | None = None) -> EpochRecord | None:
        """Highest-numbered epoch, optionally only with ``status`` (``"mined"``: the one
        the vault holds)."""
        if status is None:
            rows = self._query("SELECT * FROM epochs ORDER BY number DESC LIMIT 1")
        else:
            rows = self._query(
                "SELECT * FROM epochs WHERE status = ? ORDER BY number DESC LIMIT 1", (status,)
            )
        return _epoch(rows[0]) if rows else None

    def max_epoch_number(self) -> int | None:
        """Highest epoch number ever reserved, in any status (None if none)."""
        value = self._query("SELECT MAX(number) FROM epochs")[0][0]
        return None if value is None else int(value)

    def list_epochs(self, *, limit: int = 100) -> list[EpochRecord]:
        """Most recent first."""
        return [
            _epoch(r)
            for r in self._query("SELECT * FROM epochs ORDER BY number DESC LIMIT ?", (limit,))
        ]

    # ---------------------------------------------------------------- market snapshots

    def save_market_snapshot(self, epoch: int, market_json: str) -> None:
        """Store the market JSON (``MarketState.to_json()``) of ``epoch``; idempotent, but a
        different snapshot for the same epoch is refused (it would change the root)."""
        json.loads(market_json)  # must be JSON
        with self._tx() as db:
            row = db.execute(
                "SELECT json FROM market_snapshots WHERE epoch = ?", (epoch,)
            ).fetchone()
            if row is not None:
                if _market_text(row["json"]) != market_json:
                    raise StoreError(f"epoch {epoch} already has a different market snapshot")
                return
            packed = zlib.compress(market_json.encode(), 6)
            try:
                db.execute("INSERT INTO market_snapshots VALUES (?, ?)", (epoch, packed))
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"no epoch {epoch} reserved: {exc}") from exc

    def get_market_snapshot(self, epoch: int) -> str | None:
        rows = self._query("SELECT json FROM market_snapshots WHERE epoch = ?", (epoch,))
        return _market_text(rows[0]["json"]) if rows else None

    # ---------------------------------------------------------------- dispute inputs

    def save_dispute_inputs(self, epoch: int, inputs_json: str) -> None:
        """Store the committed dispute inputs of ``epoch`` (``keeper/dispute_encoding.py:
        published_inputs``, JSON), compressed; a second save replaces the first."""
        json.loads(inputs_json)  # must be JSON
        packed = zlib.compress(inputs_json.encode(), 6)
        with self._tx() as db:
            try:
                db.execute("INSERT OR REPLACE INTO dispute_inputs VALUES (?, ?)", (epoch, packed))
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"no epoch {epoch} reserved: {exc}") from exc

    def get_dispute_inputs(self, epoch: int) -> str | None:
        rows = self._query("SELECT json FROM dispute_inputs WHERE epoch = ?", (epoch,))
        return zlib.decompress(rows[0]["json"]).decode() if rows else None

    # ---------------------------------------------------------------- capped values

    def save_capped(self, epoch: int, capped: Sequence[CappedValue]) -> None:
        """Record the values capped in ``epoch`` (idempotent: the same build gives the
        same list)."""
        with self._tx() as db:
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO capped_values VALUES (?, ?, ?, ?)",
                    [(epoch, c.name, float(c.raw), float(c.capped)) for c in capped],
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"no epoch {epoch} reserved: {exc}") from exc

    def get_capped(self, epoch: int) -> list[CappedValue]:
        rows = self._query(
            "SELECT name, raw, capped FROM capped_values WHERE epoch = ? ORDER BY name",
            (epoch,),
        )
        return [CappedValue(r["name"], r["raw"], r["capped"]) for r in rows]

    # ---------------------------------------------------------------- leaves

    def save_tree(
        self,
        epoch: int,
        accounts: Sequence[AccountLeaf],
        instruments: Sequence[InstrumentLeaf],
        tree: MerkleTree | merkle.MerkleLayers | None = None,
        *,
        encodings: tuple[merkle.U8Array | None, merkle.U8Array | None] = (None, None),
        hashes: merkle.U8Array | None = None,
    ) -> Path:
        """Write ``epoch``'s leaves and tree to ``<epochs_dir>/<n>.leaves`` (once), index
        it, keep it in memory, then apply the retention policy.

        ``tree``: the epoch's tree when already built (else built here); ``encodings``:
        the leaves' ``abi.encode`` rows when already made, ``hashes`` their leaf hashes
        (``EpochLeaves.from_leaves``).
        The tree's root must be the root reserved for ``epoch``; saving again is a no-op
        (one root, one set of leaves). Returns the file's path.
        """
        layers = tree.layers if isinstance(tree, MerkleTree) else tree
        leaves = EpochLeaves.from_leaves(epoch, accounts, instruments, layers, encodings, hashes)
        root = hash_to_json(leaves.root)
        path = self.leaves_path(epoch)
        with self._lock:
            rec = self.get_epoch(epoch)
            if rec is None:
                raise StoreError(f"no epoch {epoch} reserved")
            if rec.root != root:
                raise StoreError(
                    f"epoch {epoch} already has different leaves: their root {root} is not "
                    f"its root {rec.root}"
                )
            row = self._query("SELECT leaves_file FROM epochs WHERE number = ?", (epoch,))
            if row[0]["leaves_file"] is not None and path.exists():
                return path
            self.epochs_dir.mkdir(parents=True, exist_ok=True)
            size = leaves.write(path)
            with self._tx() as db:
                db.execute(
                    "UPDATE epochs SET leaves_file = ?, accounts = ?, instruments = ?, "
                    "leaves_bytes = ? WHERE number = ?",
                    (
                        path.name,
                        leaves.count("account"),
                        leaves.count("instrument"),
                        size,
                        epoch,
                    ),
                )
            self._remember(epoch, leaves)
        self.prune()
        return path

    def save_leaves(self, epoch: int, leaves: Sequence[LeafRecord]) -> Path:
        """:meth:`save_tree` from stored-format records (their ``fields``); each record's
        ``leaf_hash`` must be its fields' hash. The proofs given are not kept: the tree
        is rebuilt from the leaves and every proof read from it."""
        accounts: list[AccountLeaf] = []
        instruments: list[InstrumentLeaf] = []
        for r in leaves:
            if r.kind not in ("account", "instrument"):
                raise StoreError(f"unknown leaf kind {r.kind!r}")
            key = int(_id_key(r.key, r.kind))
            try:
                leaf = (
                    AccountLeaf.from_json(r.fields)
                    if r.kind == "account"
                    else InstrumentLeaf.from_json(r.fields)
                )
            except (KeyError, ValueError, TypeError) as exc:
                raise StoreError(f"{r.kind} leaf {r.key}: bad fields ({exc})") from exc
            leaf_key = leaf.account if isinstance(leaf, AccountLeaf) else leaf.instrument
            if leaf_key != key:
                raise StoreError(f"{r.kind} leaf keyed {r.key} holds id {leaf_key}")
            if hash_to_json(leaf.hash()) != _norm_hex(r.leaf_hash, "leaf_hash"):
                raise StoreError(f"{r.kind} leaf {r.key}: leaf_hash is not its fields' hash")
            if isinstance(leaf, AccountLeaf):
                accounts.append(leaf)
            else:
                instruments.append(leaf)
        return self.save_tree(epoch, accounts, instruments)

    def leaves_path(self, epoch: int) -> Path:
        return self.epochs_dir / f"{epoch}.leaves"

    def _remember(self, epoch: int, leaves: EpochLeaves) -> None:
        if self.cache_epochs == 0:
            return
        self._cache[epoch] = leaves
        self._cache.move_to_end(epoch)
        while len(self._cache) > self.cache_epochs:
            self._cache.popitem(last=False)

    def epoch_leaves(self, epoch: int) -> EpochLeaves | None:
        """``epoch``'s leaves and tree: from memory, else its file memory-mapped (and
        remembered); None if the epoch has none (not built, or deleted by retention)."""
        with self._lock:
            cached = self._cache.get(epoch)
            if cached is not None:
                self._cache.move_to_end(epoch)
                return cached
            rows = self._query("SELECT leaves_file FROM epochs WHERE number = ?", (epoch,))
            if not rows or rows[0]["leaves_file"] is None:
                return None
            leaves = EpochLeaves.open(self.epochs_dir / rows[0]["leaves_file"])
            if leaves.epoch != epoch:
                raise StoreError(f"leaf file of epoch {epoch} holds epoch {leaves.epoch}")
            self._remember(epoch, leaves)
            return leaves

    def leaf_counts(self, epoch: int) -> tuple[int, int] | None:
        """``(accounts, instruments)`` of ``epoch``'s leaves (the index, no file read)."""
        rows = self._query(
            "SELECT accounts, instruments FROM epochs WHERE number = ? AND leaves_file IS NOT NULL",
            (epoch,),
        )
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    def leaves_bytes(self, epoch: int) -> int | None:
        """Size of ``epoch``'s leaf file in bytes (the index)."""
        rows = self._query("SELECT leaves_bytes FROM epochs WHERE number = ?", (epoch,))
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    def get_leaf(self, epoch: int, kind: LeafKind, key: int | str) -> LeafRecord | None:
        """The leaf of ``key`` (a subaccount id, or an instrument id) in ``epoch``, with
        its proof: one binary search, one row and ``log2(n)`` tree rows."""
        key_n = int(_id_key(key, kind))
        leaves = self.epoch_leaves(epoch)
        if leaves is None:
            return None
        i = leaves.row(kind, key_n)
        return None if i is None else leaves.record(kind, i)

    def get_leaves(self, epoch: int, kind: LeafKind | None = None) -> list[LeafRecord]:
        """Every leaf of ``epoch`` (accounts then instruments, each by id; reads them all)."""
        leaves = self.epoch_leaves(epoch)
        return [] if leaves is None else leaves.records(kind)

    def epoch_file_path(self, epoch: int) -> Path:
        return self.epochs_dir / f"{epoch}.json"

    def write_epoch_file(self, epoch: int) -> Path:
        """Write (atomically: temp file + rename) the epoch's header, status, values capped
        and leaf counts to ``<epochs_dir>/<n>.json``; the leaves stay in their own file
        (``leavesFile``), untouched, and the market in sqlite."""
        record = self.get_epoch(epoch)
        if record is None:
            raise StoreError(f"no epoch {epoch}")
        doc = record.to_dict()
        doc["capped"] = [
            {"name": c.name, "raw": c.raw, "capped": c.capped} for c in self.get_capped(epoch)
        ]
        counts = self.leaf_counts(epoch)
        doc["leavesFile"] = self.leaves_path(epoch).name if counts else None
        doc["accounts"], doc["instruments"] = counts or (None, None)
        self.epochs_dir.mkdir(parents=True, exist_ok=True)
        path = self.epoch_file_path(epoch)
        tmp = path.with_suffix(f".json.tmp{os.getpid()}")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
        os.replace(tmp, path)
        return path

    # ---------------------------------------------------------------- retention

    def prune(self) -> list[int]:
        """Delete every epoch the retention policy does not keep: its rows (epoch, market
        snapshot, capped values) and its files. Returns the numbers deleted, ascending.
        Transactions stay (the record of gas spent)."""
        if self.retention.keep_last is None:
            return []
        with self._lock:
            numbers = [int(r[0]) for r in self._query("SELECT number FROM epochs")]
            mined = self.latest_epoch(status="mined")
            drop = sorted(
                set(numbers) - self.retention.kept(numbers, mined.number if mined else None)
            )
            if not drop:
                return []
            marks = ",".join("?" * len(drop))
            with self._tx() as db:
                for table, col in (
                    ("capped_values", "epoch"),
                    ("market_snapshots", "epoch"),
                    ("dispute_inputs", "epoch"),
                    ("epochs", "number"),
                ):
                    db.execute(f"DELETE FROM {table} WHERE {col} IN ({marks})", drop)
            for n in drop:
                self._cache.pop(n, None)
                for path in (self.leaves_path(n), self.epoch_file_path(n)):
                    path.unlink(missing_ok=True)
        return drop

    # ---------------------------------------------------------------- transactions

    def record_tx(self, tx: TxRecord) -> None:
        """Insert a sent transaction (hash unique; re-recording the same hash is a no-op)."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO transactions (hash, sender, nonce, purpose, epoch, "
                "max_fee_per_gas, max_priority_fee_per_gas, gas_limit, status, replaced_by, "
                "block_number, gas_used, effective_gas_price, error, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _norm_hex(tx.hash, "hash"),
                    _norm_hex(tx.sender, "sender"),
                    tx.nonce,
                    tx.purpose,
                    tx.epoch,
                    str(tx.max_fee_per_gas),
                    str(tx.max_priority_fee_per_gas),
                    tx.gas_limit,
                    tx.status,
                    tx.replaced_by,
                    tx.block_number,
                    tx.gas_used,
                    None if tx.effective_gas_price is None else str(tx.effective_gas_price),
                    tx.error,
                    now,
                    now,
                ),
            )

    def update_tx(
        self,
        tx_hash: str,
        status: TxStatus,
        *,
        replaced_by: str | None = None,
        block_number: int | None = None,
        gas_used: int | None = None,
        effective_gas_price: int | None = None,
        error: str | None = None,
    ) -> None:
        if status not in TX_STATUSES:
            raise StoreError(f"unknown tx status {status!r}")
        with self._tx() as db:
            cur = db.execute(
                "UPDATE transactions SET status = ?, replaced_by = COALESCE(?, replaced_by), "
                "block_number = COALESCE(?, block_number), gas_used = COALESCE(?, gas_used), "
                "effective_gas_price = COALESCE(?, effective_gas_price), "
                "error = COALESCE(?, error), updated_at = ? WHERE hash = ?",
                (
                    status,
                    _norm_hex(replaced_by, "replaced_by") if replaced_by else None,
                    block_number,
                    gas_used,
                    None if effective_gas_price is None else str(effective_gas_price),
                    error,
                    time.time(),
                    _norm_hex(tx_hash, "hash"),
                ),
            )
            if cur.rowcount == 0:
                raise StoreError(f"no transaction {tx_hash}")

    def get_tx(self, tx_hash: str) -> TxRecord | None:
        rows = self._query(
            "SELECT * FROM transactions WHERE hash = ?", (_norm_hex(tx_hash, "hash"),)
        )
        return _txrec(rows[0]) if rows else None

    def txs(
        self, *, sender: str | None = None, status: TxStatus | None = None, epoch: int | None = None
    ) -> list[TxRecord]:
        """Transactions filtered by sender / status / epoch, oldest first."""
        sql, args = "SELECT * FROM transactions WHERE 1=1", list[Any]()
        if sender is not None:
            sql, args = sql + " AND sender = ?", [*args, _norm_hex(sender, "sender")]
        if status is not None:
            sql, args = sql + " AND status = ?", [*args, status]
        if epoch is not None:
            sql, args = sql + " AND epoch = ?", [*args, epoch]
        return [_txrec(r) for r in self._query(sql + " ORDER BY nonce, created_at", args)]

    # ---------------------------------------------------------------- subaccounts

    def save_subaccounts(
        self, records: Sequence[SubaccountRecord], *, replace: bool = False
    ) -> None:
        """Insert or update subaccounts (the indexer's owners); ``replace``: the given
        records become the whole table (a rebuilt index, a reorg)."""
        rows = [
            (_id_key(r.account, "account"), _norm_hex(r.owner, "owner"), r.created_block)
            for r in records
        ]
        with self._tx() as db:
            if replace:
                db.execute("DELETE FROM subaccounts")
            db.executemany(
                "INSERT INTO subaccounts VALUES (?, ?, ?) ON CONFLICT(account) DO UPDATE SET "
                "owner = excluded.owner, created_block = excluded.created_block",
                rows,
            )

    def get_subaccount(self, account: int) -> SubaccountRecord | None:
        rows = self._query(
            "SELECT * FROM subaccounts WHERE account = ?", (_id_key(account, "account"),)
        )
        return _subaccount(rows[0]) if rows else None

    def subaccounts_of(self, owner: str) -> list[SubaccountRecord]:
        """``owner``'s subaccounts as last indexed, lowest id first."""
        rows = self._query(
            "SELECT * FROM subaccounts WHERE owner = ? ORDER BY length(account), account",
            (_norm_hex(owner, "owner"),),
        )
        return [_subaccount(r) for r in rows]

    def subaccounts(self, *, limit: int, offset: int = 0) -> list[SubaccountRecord]:
        """Every subaccount as last indexed, lowest id first: ``limit`` from ``offset``."""
        rows = self._query(
            "SELECT * FROM subaccounts ORDER BY length(account), account LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_subaccount(r) for r in rows]

    def count_subaccounts(self) -> int:
        return int(self._query("SELECT COUNT(*) AS n FROM subaccounts")[0]["n"])

    # ---------------------------------------------------------------- cursors

    def get_cursor(self, name: str = "vault") -> Cursor | None:
        rows = self._query("SELECT * FROM cursors WHERE name = ?", (name,))
        if not rows:
            return None
        return Cursor(rows[0]["name"], rows[0]["block_number"], rows[0]["block_hash"])

    def set_cursor(self, block_number: int, block_hash: str, name: str = "vault") -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "block_number = excluded.block_number, block_hash = excluded.block_hash, "
                "updated_at = excluded.updated_at",
                (name, block_number, _norm_hex(block_hash, "block_hash"), time.time()),
            )

    def delete_cursor(self, name: str = "vault") -> None:
        with self._tx() as db:
            db.execute("DELETE FROM cursors WHERE name = ?", (name,))


def _epoch(row: sqlite3.Row) -> EpochRecord:
    return EpochRecord(
        number=row["number"],
        root=row["root"],
        snapshot_block=row["snapshot_block"],
        timestamp=row["timestamp"],
        status=row["status"],
        tx_hash=row["tx_hash"],
        header=json.loads(row["header_json"]) if row["header_json"] else None,
        signatures=tuple(json.loads(row["signatures_json"])) if row["signatures_json"] else (),
        reason=row["reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _market_text(value: str | bytes) -> str:
    """A stored market snapshot: zlib-compressed bytes (v4), or text (older rows)."""
    return zlib.decompress(value).decode() if isinstance(value, bytes) else value


def _subaccount(row: sqlite3.Row) -> SubaccountRecord:
    return SubaccountRecord(
        int(row["account"]), to_checksum_address(row["owner"]), int(row["created_block"])
    )


def _txrec(row: sqlite3.Row) -> TxRecord:
    egp = row["effective_gas_price"]
    return TxRecord(
        hash=row["hash"],
        sender=row["sender"],
        nonce=row["nonce"],
        purpose=row["purpose"],
        epoch=row["epoch"],
        max_fee_per_gas=int(row["max_fee_per_gas"]),
        max_priority_fee_per_gas=int(row["max_priority_fee_per_gas"]),
        gas_limit=row["gas_limit"],
        status=row["status"],
        replaced_by=row["replaced_by"],
        block_number=row["block_number"],
        gas_used=row["gas_used"],
        effective_gas_price=None if egp is None else int(egp),
        error=row["error"],
    )
