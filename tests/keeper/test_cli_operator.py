"""``keeper`` at start: the configured chain id is checked against the node, ``verify``
needs no signer key, the metrics are seeded from the store (lag right after a restart)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from keeper.cli import keeper_cli
from keeper.metrics import KeeperMetrics
from scripts.anvil import AnvilNode

KEY = "0x" + "11" * 32
VAULT = "0x000000000000000000000000000000000000dEaD"


def _config(tmp_path: Path, rpc: str, chain_id: int) -> Path:
    path = tmp_path / "keeper.toml"
    path.write_text(
        f'[chain]\nrpc_url = "{rpc}"\nchain_id = {chain_id}\nvault_address = "{VAULT}"\n'
        f'[keeper]\ndata_dir = "{tmp_path / "data"}"\n'
    )
    return path


def test_keeper_run_refuses_a_configured_chain_id_the_node_does_not_serve(
    anvil: AnvilNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PM_SIGNER_KEYS", KEY)
    monkeypatch.setenv("PM_METRICS_PORT", "0")
    monkeypatch.setenv("PM_API_PORT", "0")
    cfg = _config(tmp_path, anvil.url, 1)
    r = CliRunner().invoke(keeper_cli, ["run", "--config", str(cfg)], obj={})
    assert r.exit_code != 0
    assert "chain.chain_id is 1 but the node" in r.output and "serves chain 31337" in r.output


def test_keeper_verify_runs_without_any_signer_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("PM_SIGNER_KEYS", "PM_KEYSTORE", "PM_SENDER_KEY"):
        monkeypatch.delenv(var, raising=False)
    cfg = _config(tmp_path, "http://127.0.0.1:9", 31337)
    r = CliRunner().invoke(keeper_cli, ["verify", "--epoch", "1", "--config", str(cfg)], obj={})
    # past the configuration (no key asked for): it fails later, at the unreachable node
    assert "configuration" not in r.output and "needs keys" not in r.output


def test_seeded_metrics_show_the_last_epoch_and_its_lag_before_any_new_epoch() -> None:
    m = KeeperMetrics()
    m.seed(7, 1_000)
    m.update_lag(now=1_600.0)
    text = m.render().decode()
    assert "pm_keeper_epoch_last 7.0" in text
    assert "pm_keeper_epoch_lag_seconds 600.0" in text


def test_a_relative_data_dir_in_the_config_file_is_relative_to_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keeper.config import keeper_data_dir, load_config

    monkeypatch.delenv("PM_DATA_DIR", raising=False)
    monkeypatch.setenv("PM_SIGNER_KEYS", KEY)
    (tmp_path / "etc").mkdir()
    cfg = tmp_path / "etc" / "keeper.toml"
    cfg.write_text(
        f'[chain]\nrpc_url = "http://127.0.0.1:8545"\nvault_address = "{VAULT}"\n'
        '[keeper]\ndata_dir = "../data"\n'
    )
    monkeypatch.chdir("/")
    want = (tmp_path / "etc" / ".." / "data").resolve()
    assert load_config(cfg).keeper.data_dir.resolve() == want
    assert keeper_data_dir(cfg, {}).resolve() == want
    assert keeper_data_dir(cfg, {"PM_DATA_DIR": "x"}) == Path("x")  # the variable wins


def test_pm_margin_finds_the_epochs_through_pm_config_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scripts.margin_view import _default_data_dir

    cfg = tmp_path / "keeper.toml"
    cfg.write_text('[keeper]\ndata_dir = "var/k"\n')
    monkeypatch.setenv("PM_CONFIG", str(cfg))
    monkeypatch.chdir("/")
    assert _default_data_dir() == tmp_path.resolve() / "var/k"
    monkeypatch.delenv("PM_CONFIG")
    monkeypatch.delenv("PM_DATA_DIR", raising=False)
    assert _default_data_dir().is_absolute()  # the repository's var/keeper, not the cwd's


def test_a_restarted_keeper_reports_its_last_epoch_and_lag_before_mining_a_new_one(
    anvil: AnvilNode, tmp_path: Path
) -> None:
    from keeper.config import load_config
    from keeper.daemon import build_keeper
    from scripts.cli import main as pm_main

    key0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Anvil's 0
    out = tmp_path / "deployment.json"
    signer = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert pm_main(["deploy", "--rpc-url", anvil.url, "--out", str(out), "--signer", signer]) == 0
    env = {
        "PM_RPC_URL": anvil.url,
        "PM_DEPLOYMENTS_FILE": str(out),
        "PM_SIGNER_KEYS": key0,
        "PM_DATA_DIR": str(tmp_path / "data"),
        "PM_API_PORT": "0",
    }
    first = build_keeper(load_config(None, env), serve_metrics=False)
    try:
        mined = first.pipeline.run_epoch()
    finally:
        first.store.close()
    assert mined.status == "mined", mined.reason
    again = build_keeper(load_config(None, env), serve_metrics=False)  # the restart
    try:
        text = again.metrics.render().decode()
    finally:
        again.store.close()
    assert f"pm_keeper_epoch_last {float(mined.epoch)}" in text
    (lag,) = [ln for ln in text.splitlines() if ln.startswith("pm_keeper_epoch_lag_seconds ")]
    assert float(lag.split()[1]) != 0.0  # the time since that epoch, not a fresh process's 0
