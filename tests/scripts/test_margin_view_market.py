"""scripts/margin_view.py finds an epoch's market in the keeper's store (the epoch file no
longer carries it, docs/operations.md §3), and in an older keeper's epoch file."""

from __future__ import annotations

import json
from pathlib import Path

from keeper.store import Store
from scripts import margin_view as mv
from scripts.pipeline_world import make_feed_at

ROOT = "0x" + "aa" * 32


def test_the_market_of_an_epoch_is_read_from_the_keepers_store(tmp_path: Path) -> None:
    market = make_feed_at(1_700_000_000).tick(1_700_000_000)
    with Store(tmp_path / "keeper.sqlite") as store:
        store.reserve_epoch(3, ROOT, snapshot_block=1, timestamp=1_700_000_000)
        store.save_market_snapshot(3, market.to_json())
    got, note = mv._load_market(3, None, tmp_path)
    assert got is not None and got.to_json() == market.to_json()
    assert note == f"market of epoch 3 from {tmp_path / 'keeper.sqlite'}"
    missing, why = mv._load_market(4, None, tmp_path)
    assert missing is None and "no market snapshot for epoch 4" in why


def test_an_older_keepers_epoch_file_still_serves(tmp_path: Path) -> None:
    market = make_feed_at(1_700_000_000).tick(1_700_000_000)
    (tmp_path / "epochs").mkdir()
    doc = {"epoch": "2", "market": json.loads(market.to_json())}
    (tmp_path / "epochs" / "2.json").write_text(json.dumps(doc))
    got, note = mv._load_market(2, None, tmp_path)
    assert got is not None and got.to_json() == market.to_json() and "2.json" in note
