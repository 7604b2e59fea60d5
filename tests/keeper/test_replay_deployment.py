"""The replay feed on a deployment `pm deploy` makes: with `--collateral WETH,WBTC` (the
replay data prices BTC, ETH and SOL, not GOV) the keeper mines an epoch; on the default
deployment (GOV registered) every epoch is refused with a reason that names what the feed
prices (docs/operations.md §2, Replay)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeper.config import load_config
from keeper.daemon import build_keeper
from scripts.anvil import AnvilNode
from scripts.cli import main as pm_main
from scripts.toolchain.paths import REPO_ROOT

#: Anvil's account 0: the node's unlocked deployer, and here the one signer (it has ETH).
KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DATA = REPO_ROOT.parent / "shared" / "data"


def _first_epoch(anvil: AnvilNode, tmp: Path, *deploy_args: str) -> tuple[str, str | None]:
    out = tmp / "deployment.json"
    assert pm_main(["deploy", "--rpc-url", anvil.url, "--out", str(out), *deploy_args]) == 0
    config = load_config(
        None,
        {
            "PM_RPC_URL": anvil.url,
            "PM_DEPLOYMENTS_FILE": str(out),
            "PM_SIGNER_KEYS": KEY0,
            "PM_DATA_DIR": str(tmp / "keeper"),
            "PM_API_PORT": "0",
            "PM_FEED_KIND": "replay",
            "PM_FEED_PATH": str(DATA),
        },
    )
    keeper = build_keeper(config, serve_metrics=False)
    try:
        result = keeper.pipeline.run_epoch()
    finally:
        keeper.store.close()
    return result.status, result.reason


def test_the_replay_feed_mines_epochs_on_a_deployment_without_gov(
    anvil: AnvilNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (DATA / "daily" / "BTC.csv").is_file(), "the shared data directory is part of the setup"
    monkeypatch.setenv("PM_SIGNER_KEYS", KEY0)
    status, reason = _first_epoch(anvil, tmp_path, "--collateral", "WETH,WBTC")
    assert status == "mined", reason


def test_on_the_default_deployment_the_refusal_names_what_the_replay_prices(
    anvil: AnvilNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM_SIGNER_KEYS", KEY0)
    status, reason = _first_epoch(anvil, tmp_path)
    assert status == "refused"
    assert reason is not None and "no market price for token GOV" in reason
    assert "the feed prices WBTC, WETH, WSOL" in reason


def test_pm_deploy_refuses_an_unknown_collateral_symbol(anvil: AnvilNode, tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    code = pm_main(["deploy", "--rpc-url", anvil.url, "--out", str(out), "--collateral", "DOGE"])
    assert code == 1 and not out.exists()
