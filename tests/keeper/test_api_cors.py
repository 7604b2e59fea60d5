"""CORS of the keeper API: off by default, on for the configured origins only."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from keeper.api import ProofApi
from keeper.config import load_config
from keeper.errors import ConfigError
from keeper.store import Store


def test_no_cors_header_is_sent_by_default(tmp_path: Path) -> None:
    with Store(tmp_path / "k.sqlite") as store, ProofApi(store) as api:
        r = requests.get(f"{api.url}/health", headers={"Origin": "http://a.test"}, timeout=5)
        assert "Access-Control-Allow-Origin" not in r.headers
        pre = requests.options(f"{api.url}/health", headers={"Origin": "http://a.test"}, timeout=5)
        assert pre.status_code == 405


def test_a_configured_origin_reads_answers_and_passes_its_preflight(tmp_path: Path) -> None:
    with (
        Store(tmp_path / "k.sqlite") as store,
        ProofApi(store, cors_origins=("http://a.test",)) as api,
    ):
        ok = requests.get(f"{api.url}/health", headers={"Origin": "http://a.test"}, timeout=5)
        assert ok.headers["Access-Control-Allow-Origin"] == "http://a.test"
        other = requests.get(f"{api.url}/health", headers={"Origin": "http://b.test"}, timeout=5)
        assert "Access-Control-Allow-Origin" not in other.headers
        pre = requests.options(
            f"{api.url}/simulate", headers={"Origin": "http://a.test"}, timeout=5
        )
        assert pre.status_code == 204 and "POST" in pre.headers["Access-Control-Allow-Methods"]


_ENV = {
    "PM_RPC_URL": "http://127.0.0.1:8545",
    "PM_VAULT_ADDRESS": "0x" + "11" * 20,
    "PM_SIGNER_KEYS": "0x" + "22" * 32,
}


def test_cors_origins_that_are_not_origins_are_refused(tmp_path: Path) -> None:
    toml = tmp_path / "k.toml"
    toml.write_text('[api]\ncors_origins = ["http://a.test/path"]\n')
    with pytest.raises(ConfigError, match="api.cors_origins"):
        load_config(toml, env=_ENV)
    toml.write_text('[api]\ncors_origins = ["*"]\n[keeper]\nmax_refused_in_row = 5\n')
    cfg = load_config(toml, env=_ENV)
    assert cfg.api.cors_origins == ("*",) and cfg.keeper.max_refused_in_row == 5
