"""/health of a running keeper degrades after ``keeper.max_refused_in_row`` epochs refused
in a row (a feed that refuses every tick), before the last mined epoch ages out, and
recovers with the next epoch that is not refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from keeper.config import load_config
from keeper.daemon import build_keeper
from keeper.errors import FeedError
from keeper.feeds.base import MarketFeed, MarketState
from scripts.anvil import AnvilNode
from scripts.pipeline_world import World, make_feed

pytestmark = pytest.mark.anvil


class RefusingFeed(MarketFeed):
    """Refuses every tick, as the replay feed did on a deployment with a token it has no
    price for."""

    def _next_state(self, now: int) -> MarketState:
        raise FeedError("no market price for token GOV")


def test_health_degrades_after_n_refused_epochs_in_a_row_and_recovers(
    world: World, anvil: AnvilNode, tmp_path: Path
) -> None:
    toml = tmp_path / "keeper.toml"
    toml.write_text("[keeper]\nmax_refused_in_row = 2\nepoch_max_age_seconds = 86400\n")
    config = load_config(
        toml,
        env={
            "PM_RPC_URL": anvil.url,
            "PM_VAULT_ADDRESS": world.vault.address,
            "PM_DATA_DIR": str(tmp_path / "data"),
            "PM_SIGNER_KEYS": ",".join(world.signer_keys),
            "PM_SENDER_KEY": "0x" + bytes(world.sender.key).hex(),
            "PM_API_PORT": "0",
        },
    )
    good = make_feed(world)
    keeper = build_keeper(config, feed=good, serve_metrics=False)
    keeper.pipeline.startup()
    keeper.api.start()
    try:
        health = f"{keeper.api.url}/health"
        first = keeper.epoch_job()
        assert first is not None and first.status == "mined"
        keeper.pipeline.feed = RefusingFeed()
        statuses = []
        for _ in range(3):
            result = keeper.epoch_job()
            assert result is not None and result.status == "refused"
            r = requests.get(health, timeout=10)
            statuses.append((r.status_code, r.json()["status"], r.json()["refusedInRow"]))
        assert statuses == [(200, "ok", 1), (503, "degraded", 2), (503, "degraded", 3)]
        body = requests.get(health, timeout=10).json()
        assert "keeper.max_refused_in_row = 2" in body["reason"]
        assert "no market price for token GOV" in body["reason"]
        keeper.pipeline.feed = good
        assert keeper.epoch_job().status == "mined"  # type: ignore[union-attr]
        r = requests.get(health, timeout=10)
        assert (r.status_code, r.json()["status"], r.json()["refusedInRow"]) == (200, "ok", 0)
    finally:
        keeper.close()
