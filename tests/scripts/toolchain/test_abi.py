"""keeper/abi/*.json (what the keeper loads) matches a fresh compile of contracts/."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from keeper.abi import erc20_abi, load_abi, mock_erc20_abi, vault_abi
from scripts.toolchain.abi import ABI_DIR, EXPORTED, abi_files, vault_abi_of, write_abis
from scripts.toolchain.compile import CompileResult, compile_contracts


@pytest.fixture(scope="module")
def fresh() -> CompileResult:
    return compile_contracts()


@pytest.mark.parametrize("stem", sorted(EXPORTED))
def test_committed_abi_matches_a_fresh_compile(fresh: CompileResult, stem: str) -> None:
    path = ABI_DIR / f"{stem}.json"
    expected = abi_files(fresh)[path.name]
    assert path.is_file(), f"{path} is missing: run `make abi`"
    assert path.read_text() == expected, (
        f"{path} is stale (contracts/ changed since it was exported): run `make abi` "
        "and commit keeper/abi/"
    )


def test_abi_dir_holds_only_the_exported_abis() -> None:
    on_disk = {p.stem for p in ABI_DIR.glob("*.json")}
    assert on_disk == set(EXPORTED), "keeper/abi/ differs from EXPORTED: run `make abi`"


def test_keeper_loads_the_exported_abis(fresh: CompileResult) -> None:
    assert vault_abi() == vault_abi_of(fresh)
    names = {e.get("name") for e in erc20_abi()}
    assert {"symbol", "decimals", "balanceOf", "allowance", "approve"} <= names
    assert "mint" not in names  # the interface, not the mock
    assert "mint" in {e.get("name") for e in mock_erc20_abi()}


def test_missing_abi_says_to_run_make_abi() -> None:
    with pytest.raises(FileNotFoundError, match="make abi"):
        load_abi("NoSuchContract")


def test_write_abis_rewrites_a_stale_file_and_deletes_an_unknown_one(
    fresh: CompileResult, tmp_path
) -> None:
    assert sorted(write_abis(fresh, tmp_path)) == sorted(f"{s}.json" for s in EXPORTED)
    (tmp_path / "MarginVault.json").write_text("[]\n")
    (tmp_path / "Old.json").write_text("[]\n")
    assert sorted(write_abis(fresh, tmp_path)) == ["MarginVault.json", "Old.json"]
    assert write_abis(fresh, tmp_path) == []
    assert json.loads((tmp_path / "MarginVault.json").read_text()) == vault_abi_of(fresh)


def test_vault_abi_adds_the_functions_its_fallback_delegates(fresh: CompileResult) -> None:
    names = {e.get("name") for e in vault_abi_of(fresh) if e["type"] == "function"}
    own = {e.get("name") for e in fresh["MarginVault"].abi if e["type"] == "function"}
    assert {"disputeDuplicateLeaf", "postBond", "claimWithdrawal", "fraudState"} <= names - own
    # each entry once: the vault's own `withdraw` is not repeated from the interface
    sigs = [(e["type"], e.get("name"), len(e.get("inputs", []))) for e in vault_abi_of(fresh)]
    assert len(sigs) == len(set(sigs))


def test_the_keeper_daemon_and_bot_never_import_the_compiler() -> None:
    code = (
        "import sys, keeper.cli, keeper.daemon, keeper.liquidator.cli, keeper.chain\n"
        "bad = sorted(m for m in sys.modules if m == 'solcx' or m.startswith('scripts'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
