"""The front-end API on a live Anvil + keeper: markets, positions, history and a what-if
trade answered by the running daemon."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from keeper.config import load_config
from keeper.daemon import build_keeper
from scripts.anvil import AnvilNode
from scripts.pipeline_world import World, make_feed

pytestmark = pytest.mark.anvil


def test_markets_positions_history_and_a_what_if_leg_are_served(
    world: World, anvil: AnvilNode, tmp_path: Path
) -> None:
    alice = world.actor("alice")
    world.fund_cash(alice, 5_000)
    config = load_config(
        None,
        env={
            "PM_RPC_URL": anvil.url,
            "PM_VAULT_ADDRESS": world.vault.address,
            "PM_DATA_DIR": str(tmp_path / "data"),
            "PM_SIGNER_KEYS": ",".join(world.signer_keys),
            "PM_SENDER_KEY": "0x" + bytes(world.sender.key).hex(),
            "PM_INTERVAL_SECONDS": "0.5",
            "PM_API_PORT": "0",
            "PM_METRICS_PORT": "0",
        },
    )
    keeper = build_keeper(config, feed=make_feed(world), serve_metrics=False)
    t = threading.Thread(target=lambda: keeper.run(install_signals=False))
    t.start()
    try:
        deadline = time.monotonic() + 60
        while world.vault.functions.currentEpoch().call()[0] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        url = keeper.api.url
        markets = requests.get(f"{url}/markets", timeout=10).json()
        names = {m["name"] for m in markets["markets"]}
        assert "ETH-PERP" in names
        account = world.account(alice)
        pos = requests.get(f"{url}/positions/{account}", timeout=30).json()
        assert pos["account"] == account and pos["cash"]["decimal"] == pytest.approx(5_000)
        assert pos["maxWithdrawableCash"] == pytest.approx(5_000, rel=1e-6)
        hist = requests.get(f"{url}/history/{account}", timeout=10).json()
        assert [e["event"] for e in hist["events"]] == ["CashDeposited"]
        perp = next(m["instrument"] for m in markets["markets"] if m["name"] == "ETH-PERP")
        sim = requests.post(
            f"{url}/simulate",
            json={"account": account, "legs": [{"instrument": perp, "size": 1.0}]},
            timeout=30,
        ).json()
        assert sim["before"]["im"] == pytest.approx(0.0, abs=1e-9)
        assert sim["after"]["im"] > 0.0
        # the leg is paid at the mark from cash: equity does not move
        assert sim["after"]["equity"] == pytest.approx(sim["before"]["equity"], abs=1e-6)
        assert sim["after"]["liquidation"][0]["underlying"] == "ETH"
        bad = requests.post(f"{url}/simulate", data=b"{", timeout=10)
        assert bad.status_code == 400
    finally:
        keeper.lifecycle.request_stop()
        t.join(timeout=30)
