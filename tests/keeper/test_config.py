"""Config: TOML + environment, keys only from env / keystore, one ConfigError per bad field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak

from keeper.config import Config, load_config
from keeper.errors import ConfigError
from scripts.toolchain.paths import REPO_ROOT

KEY1 = "0x" + keccak(text="config test key 1").hex()
KEY2 = "0x" + keccak(text="config test key 2").hex()
VAULT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BASE_ENV = {"PM_SIGNER_KEYS": f"{KEY1},{KEY2}", "PM_VAULT_ADDRESS": VAULT}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keeper.toml"
    path.write_text(text)
    return path


def test_exampleFile_loadsWithEnvKeys():
    root = REPO_ROOT
    cfg = load_config(root / "keeper.example.toml", {"PM_SIGNER_KEYS": KEY1})
    assert isinstance(cfg, Config)
    assert cfg.chain.rpc_url == "http://127.0.0.1:8545" and cfg.chain.chain_id == 31337
    assert cfg.keeper.interval_seconds == 1.0
    assert cfg.fees.replacement_bump_pct >= 10
    assert cfg.signers.keys == (KEY1,)
    assert cfg.sender_key == KEY1


def test_envOverridesFile(tmp_path):
    path = write(tmp_path, '[chain]\nrpc_url = "http://a:1"\n[api]\nport = 1000\n')
    cfg = load_config(
        path,
        {
            **BASE_ENV,
            "PM_RPC_URL": "http://b:2",
            "PM_API_PORT": "2000",
            "PM_FEED_SEED": "9",
            "PM_DATA_DIR": str(tmp_path / "d"),
            "PM_INTERVAL_SECONDS": "0.5",
        },
    )
    assert cfg.chain.rpc_url == "http://b:2"
    assert cfg.api.port == 2000 and cfg.feed.seed == 9
    assert cfg.keeper.data_dir == tmp_path / "d" and cfg.keeper.interval_seconds == 0.5
    assert cfg.keeper.db_path == tmp_path / "d" / "keeper.sqlite"
    assert cfg.signers.addresses == (Account.from_key(KEY1).address, Account.from_key(KEY2).address)


def test_keysInFile_areRefused(tmp_path):
    path = write(tmp_path, f'[chain]\nrpc_url = "http://a:1"\n[signers]\nkeys = ["{KEY1}"]\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path, BASE_ENV)
    assert exc.value.field == "signers.keys"


def test_keysNeverInRepr():
    cfg = load_config(None, {**BASE_ENV, "PM_RPC_URL": "http://x:1", "PM_SENDER_KEY": KEY2})
    assert KEY1[2:] not in repr(cfg) and KEY2[2:] not in repr(cfg)
    assert cfg.sender_key == KEY2


@pytest.mark.parametrize(
    ("env", "toml", "field"),
    [
        ({}, "", "chain.rpc_url"),
        ({"PM_RPC_URL": "ftp://x"}, "", "chain.rpc_url"),
        ({"PM_RPC_URL": "http://x:1", "PM_CHAIN_ID": "abc"}, "", "chain.chain_id"),
        ({"PM_RPC_URL": "http://x:1", "PM_CHAIN_ID": "0"}, "", "chain.chain_id"),
        ({"PM_RPC_URL": "http://x:1", "PM_VAULT_ADDRESS": "0x1234"}, "", "chain.vault_address"),
        ({"PM_RPC_URL": "http://x:1", "PM_SIGNER_KEYS": "0x12"}, "", "PM_SIGNER_KEYS[0]"),
        ({"PM_RPC_URL": "http://x:1", "PM_SIGNER_KEYS": f"{KEY1},{KEY1}"}, "", "signers.keys"),
        ({"PM_RPC_URL": "http://x:1", "PM_SIGNER_KEYS": ""}, "", "signers.keys"),
        ({"PM_RPC_URL": "http://x:1", "PM_SIGNER_MODE": "cloud"}, "", "signers.mode"),
        (
            {"PM_RPC_URL": "http://x:1", "PM_SIGNER_MODE": "remote", "PM_SIGNER_KEYS": ""},
            "",
            "signers.remote_urls",
        ),
        ({"PM_RPC_URL": "http://x:1", "PM_API_PORT": "70000"}, "", "api.port"),
        ({"PM_RPC_URL": "http://x:1", "PM_METRICS_PORT": "-1"}, "", "metrics_port"),
        ({"PM_RPC_URL": "http://x:1", "PM_INTERVAL_SECONDS": "0"}, "", "keeper.interval_seconds"),
        ({"PM_RPC_URL": "http://x:1", "PM_INTERVAL_SECONDS": "nan"}, "", "keeper.interval_seconds"),
        ({"PM_RPC_URL": "http://x:1", "PM_MAX_FEE_GWEI": "0"}, "", "fees.max_fee_gwei"),
        (
            {"PM_RPC_URL": "http://x:1"},
            "[fees]\nreplacement_bump_pct = 5\n",
            "fees.replacement_bump_pct",
        ),
        (
            {"PM_RPC_URL": "http://x:1"},
            "[fees]\npriority_fee_gwei = 500\n",
            "fees.priority_fee_gwei",
        ),
        (
            {"PM_RPC_URL": "http://x:1"},
            "[fees]\nstuck_after_seconds = true\n",
            "fees.stuck_after_seconds",
        ),
        ({"PM_RPC_URL": "http://x:1", "PM_FEED_KIND": "live"}, "", "feed.kind"),
        ({"PM_RPC_URL": "http://x:1", "PM_FEED_KIND": "replay"}, "", "feed.path"),
        (
            {"PM_RPC_URL": "http://x:1", "PM_FEED_KIND": "replay", "PM_FEED_PATH": "/nonexistent"},
            "",
            "feed.path",
        ),
        ({"PM_RPC_URL": "http://x:1"}, "[chain]\nconfirmations = -1\n", "chain.confirmations"),
        ({"PM_RPC_URL": "http://x:1"}, "[chain]\nrpc = 'x'\n", "chain.rpc"),
        ({"PM_RPC_URL": "http://x:1"}, "[nonsense]\n", "config.nonsense"),
        ({"PM_RPC_URL": "http://x:1"}, "chain = 3\n", "chain"),
        ({"PM_RPC_URL": "http://x:1"}, "[chain\n", "config"),
    ],
)
def test_badField_raisesConfigErrorNamingIt(tmp_path, env, toml, field):
    full = {"PM_SIGNER_KEYS": KEY1, "PM_VAULT_ADDRESS": VAULT, **env}
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, toml), full)
    assert exc.value.field == field


def test_missingVault_raises(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(None, {"PM_RPC_URL": "http://x:1", "PM_SIGNER_KEYS": KEY1})
    assert exc.value.field == "chain.vault_address"


def test_keystore_decryptsWithPassword_andRefusesWrongOne(tmp_path):
    ks = tmp_path / "signer.json"
    ks.write_text(json.dumps(Account.encrypt(KEY1, "s3cret", iterations=2)))
    env = {"PM_RPC_URL": "http://x:1", "PM_VAULT_ADDRESS": VAULT, "PM_KEYSTORE": str(ks)}
    cfg = load_config(None, {**env, "PM_KEYSTORE_PASSWORD": "s3cret"})
    assert cfg.signers.keys == (KEY1,)
    with pytest.raises(ConfigError) as exc:
        load_config(None, {**env, "PM_KEYSTORE_PASSWORD": "wrong"})
    assert exc.value.field == "PM_KEYSTORE"
    with pytest.raises(ConfigError) as exc:
        load_config(None, env)
    assert exc.value.field == "PM_KEYSTORE_PASSWORD"


def test_remoteMode_needsNoKeys(tmp_path):
    cfg = load_config(
        None,
        {
            "PM_RPC_URL": "http://x:1",
            "PM_VAULT_ADDRESS": VAULT,
            "PM_SIGNER_MODE": "remote",
            "PM_SIGNER_URLS": "http://s1:1, http://s2:2",
            "PM_SENDER_KEY": KEY2,
        },
    )
    assert cfg.signers.mode == "remote" and cfg.signers.remote_urls == (
        "http://s1:1",
        "http://s2:2",
    )
    assert cfg.signers.keys == () and cfg.sender_key == KEY2


def test_vaultFromDeploymentsFile(tmp_path):
    dep = tmp_path / "31337.json"
    dep.write_text(json.dumps({"contracts": {"MarginVault": {"address": VAULT.lower()}}}))
    cfg = load_config(
        None, {"PM_RPC_URL": "http://x:1", "PM_SIGNER_KEYS": KEY1, "PM_DEPLOYMENTS_FILE": str(dep)}
    )
    assert cfg.chain.resolve_vault_address() == VAULT
    dep.write_text(json.dumps({"token": VAULT}))
    with pytest.raises(ConfigError) as exc:
        cfg.chain.resolve_vault_address()
    assert exc.value.field == "chain.deployments_file"


def test_store_retention_and_the_watch_list_margin_are_read_and_checked(tmp_path):
    rpc = '[chain]\nrpc_url = "http://a:1"\n'
    path = write(
        tmp_path,
        rpc + "[store]\nkeep_last = 10\nkeep_every = 100\ncache_epochs = 2\n"
        "[api]\nliquidatable_margin_usd = 250.5\n",
    )
    cfg = load_config(path, BASE_ENV)
    assert (cfg.store.keep_last, cfg.store.keep_every, cfg.store.cache_epochs) == (10, 100, 2)
    assert cfg.store.retention.keep_last == 10 and cfg.store.retention.keep_every == 100
    assert cfg.api.liquidatable_margin_usd == 250.5
    default = load_config(write(tmp_path, rpc), BASE_ENV)
    assert (default.store.keep_last, default.store.keep_every) == (600, 3600)
    assert default.api.liquidatable_margin_usd == 0.0
    keep_all = load_config(
        write(tmp_path, rpc + "[store]\nkeep_last = 0\nkeep_every = 0\n"), BASE_ENV
    )
    assert keep_all.store.retention.keep_last is None
    for text, name in (
        ("[store]\nkeep_last = -1\n", "store.keep_last"),
        ("[store]\nkeep_every = 1.5\n", "store.keep_every"),
        ("[store]\nkeep = 1\n", "store"),
        ("[api]\nliquidatable_margin_usd = -1\n", "api.liquidatable_margin_usd"),
    ):
        with pytest.raises(ConfigError) as exc:
            load_config(write(tmp_path, rpc + text), BASE_ENV)
        assert exc.value.field.startswith(name), (text, exc.value.field)
