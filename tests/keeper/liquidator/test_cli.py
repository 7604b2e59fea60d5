"""``liquidator run`` (``pm liquidator run``): configuration from TOML + env, one tick from the
command line, and the Lifecycle job liquidating while the keeper posts epochs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account import Account

from keeper.errors import ConfigError
from keeper.liquidator.cli import liquidator_cli
from keeper.liquidator.config import load_liquidator_config
from keeper.liquidator.daemon import build_liquidator
from risk_engine.units import WAD

from .conftest import Crash

KEY = "0x" + "11" * 32
BASE_ENV = {"PM_RPC_URL": "http://127.0.0.1:8545", "PM_VAULT_ADDRESS": "0x" + "22" * 20}


def test_config_from_toml_and_env(tmp_path: Path) -> None:
    toml = tmp_path / "keeper.toml"
    toml.write_text(
        '[chain]\nrpc_url = "http://127.0.0.1:9999"\n'
        "[api]\nport = 7000\n"
        "[liquidator]\nslippage_usd = 25.0\nmax_per_tick = 2\nmin_headroom_usd = 100.0\n"
    )
    cfg = load_liquidator_config(toml, {**BASE_ENV, "PM_LIQUIDATOR_KEY": KEY})
    assert cfg.chain.rpc_url == "http://127.0.0.1:8545"  # env wins
    assert cfg.api_url == "http://127.0.0.1:7000" and cfg.source == "api"
    assert (cfg.slippage_usd, cfg.max_per_tick, cfg.min_headroom_usd) == (25.0, 2, 100.0)
    assert cfg.min_profit_usd == 0.0 and KEY not in repr(cfg)
    watch = load_liquidator_config(
        toml, {**BASE_ENV, "PM_LIQUIDATOR_KEY": KEY, "PM_LIQUIDATOR_SOURCE": "watchlist"}
    )
    assert watch.source == "watchlist" and watch.api_url == "http://127.0.0.1:7000"
    toml.write_text("[liquidator]\nbackstop = true\n")
    assert (
        load_liquidator_config(toml, {**BASE_ENV, "PM_LIQUIDATOR_KEY": KEY}).min_profit_usd is None
    )


@pytest.mark.parametrize(
    ("toml", "env", "field"),
    [
        ('[liquidator]\nkey = "0x11"\n', {"PM_LIQUIDATOR_KEY": KEY}, "liquidator.key"),
        ("[liquidator]\nslipage = 1\n", {"PM_LIQUIDATOR_KEY": KEY}, "liquidator.slipage"),
        ("", {}, "PM_LIQUIDATOR_KEY"),
        ("", {"PM_LIQUIDATOR_KEY": "0x1234"}, "PM_LIQUIDATOR_KEY"),
        ("", {"PM_LIQUIDATOR_KEY": KEY, "PM_LIQUIDATOR_SOURCE": "x"}, "liquidator.source"),
        ("[liquidator]\nmax_per_tick = 0\n", {"PM_LIQUIDATOR_KEY": KEY}, "liquidator.max_per_tick"),
        (
            "",
            {
                "PM_LIQUIDATOR_KEY": KEY,
                "PM_LIQUIDATOR_SOURCE": "store",
                "PM_DATA_DIR": "/nonexistent",
            },
            "liquidator.source",
        ),
    ],
)
def test_config_refusals(tmp_path: Path, toml: str, env: dict[str, str], field: str) -> None:
    path = tmp_path / "k.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_liquidator_config(path, {**BASE_ENV, **env})
    assert info.value.field == field


def test_key_from_an_encrypted_keystore(tmp_path: Path) -> None:
    ks = tmp_path / "liq.json"
    ks.write_text(json.dumps(Account.encrypt(KEY, "pw")))
    env = {**BASE_ENV, "PM_LIQUIDATOR_KEYSTORE": str(ks), "PM_LIQUIDATOR_KEYSTORE_PASSWORD": "pw"}
    assert load_liquidator_config(None, env).key == KEY
    with pytest.raises(ConfigError):
        load_liquidator_config(None, {**env, "PM_LIQUIDATOR_KEYSTORE_PASSWORD": "wrong"})


def test_help_names_the_key_variables() -> None:
    out = CliRunner().invoke(liquidator_cli, ["--help"])
    assert out.exit_code == 0 and "PM_LIQUIDATOR_KEY" in out.output
    out = CliRunner().invoke(liquidator_cli, ["run", "--help"])
    assert out.exit_code == 0 and "--once" in out.output and "--dry-run" in out.output


def _env(crash: Crash) -> dict[str, str]:
    return {
        "PM_RPC_URL": crash.world.w3.provider.endpoint_uri,  # type: ignore[attr-defined]
        "PM_VAULT_ADDRESS": crash.world.vault.address,
        "PM_DATA_DIR": str(crash.store.path.parent),
        "PM_LIQUIDATOR_SOURCE": "store",
        "PM_LIQUIDATOR_KEY": "0x" + crash.liquidator.key.hex().removeprefix("0x"),
        "PM_LIQUIDATOR_DATA_DIR": str(crash.tmp / "liq"),
    }


@pytest.mark.anvil
def test_run_once_from_the_command_line(crash: Crash) -> None:
    crash.shock()
    crash.lift_edge(crash.epoch())
    runner = CliRunner()
    dry = runner.invoke(liquidator_cli, ["run", "--once", "--dry-run"], env=_env(crash))
    assert dry.exit_code == 0, dry.output
    victim = crash.id(crash.victim)
    doc = json.loads(dry.stdout)
    assert [o["status"] for o in doc["outcomes"]] == ["simulated"]
    # each candidate's capital need: IM deficit + pay + fee - covered = minDeposit6
    (c,) = doc["candidates"]
    need = c["capitalNeed"]
    assert c["account"] == victim and need["min_deposit6"] > 0
    parts = need["im_deficit_usd"] + need["pay_usd"] + need["fee_usd"] - need["covered_usd"]
    assert need["total_usd"] == pytest.approx(parts, abs=1e-5) and need["im_deficit_usd"] > 0
    (line,) = [ln for ln in dry.stderr.splitlines() if ln.startswith(f"subaccount {victim}:")]
    assert f"capital need {need['total_usd']:,.2f} USD = IM deficit" in line
    assert "+ pay" in line and "+ fee" in line and "- covered" in line
    assert crash.owner(crash.victim) == crash.victim.address
    out = runner.invoke(liquidator_cli, ["run", "--once"], env=_env(crash))
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    (o,) = report["outcomes"]
    assert o["status"] == "liquidated" and o["account"] == victim
    assert o["profit_usd"] > 0 and o["deposit6"] >= o["capital_need"]["min_deposit6"]
    assert crash.owner(crash.victim) == crash.liquidator.address


@pytest.mark.anvil
def test_lifecycle_job_liquidates_while_the_keeper_posts(
    crash: Crash, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in _env(crash).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PM_LIQUIDATOR_INTERVAL_SECONDS", "0.2")
    service = build_liquidator(load_liquidator_config(None), serve_metrics=False)
    service.lifecycle.start()
    try:
        crash.shock()
        crash.lift_edge(crash.epoch())
        deadline = time.monotonic() + 30
        taken = crash.liquidator.address
        while crash.owner(crash.victim) != taken and time.monotonic() < deadline:
            time.sleep(0.1)
        assert crash.owner(crash.victim) == taken
        crash.epoch()
        time.sleep(0.6)  # a few more ticks over the next epoch
    finally:
        service.lifecycle.stop()
    assert service.lifecycle.runs["liquidator"] >= 3
    assert service.lifecycle.failures.get("liquidator", 0) == 0
    assert service.metrics.liquidations._value.get() == 1
    assert crash.positions(crash.edge) == [-10 * WAD]
    assert sorted(crash.positions(crash.hedged)) == [-10 * WAD, -5 * WAD]
