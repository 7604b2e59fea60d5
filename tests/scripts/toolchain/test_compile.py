"""scripts.toolchain.compile: compiles contracts/ without forge, caches on disk, fails loudly."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from scripts.errors import BuildError, CompileError
from scripts.toolchain.compile import SETTINGS, collect_sources, compile_contracts
from scripts.toolchain.paths import CONTRACTS_DIR

EIP170_MAX_RUNTIME = 24_576
EIP3860_MAX_INITCODE = 49_152

TINY = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Lib} from "./lib/Lib.sol";
contract Tiny {
    error Bad(uint256 x);
    function f(bytes32[] calldata p, bytes32 r, bytes32 l) external pure returns (bool) {
        return MerkleProof.verify(p, r, l) && Lib.one() == 1;
    }
}
"""
LIB = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;
library Lib { function one() internal pure returns (uint256) { return %s; } }
"""


def _tiny_project(root: Path, lib_value: str = "1") -> Path:
    (root / "contracts" / "lib").mkdir(parents=True, exist_ok=True)
    (root / "contracts" / "Tiny.sol").write_text(TINY)
    (root / "contracts" / "lib" / "Lib.sol").write_text(LIB % lib_value)
    return root / "contracts"


def test_compiles_the_project_vault_and_mock() -> None:
    result = compile_contracts()
    vault = result["MarginVault"]
    assert vault.source == "contracts/MarginVault.sol"
    assert vault.bytecode and vault.deployed_bytecode
    names = {e["name"] for e in vault.abi if e.get("type") == "function"}
    for fn in ("postEpoch", "executeQuote", "liquidate", "hashEpoch", "hashQuote", "accountState"):
        assert fn in names
    assert result["MockERC20"].bytecode
    assert "MarginVault" in result and "Nope" not in result


def test_the_benchmark_helper_contract_compiles_against_the_vault_it_drives() -> None:
    # scripts/contracts/BulkWorld.sol builds scripts/bench_pipeline.py's world through the
    # vault's structs: it once fell behind a new leaf field, and the benchmark did not run
    from scripts.bench_pipeline import BULK_SOURCE

    result = compile_contracts(contracts_dir=BULK_SOURCE.parent)
    assert result["BulkWorld"].bytecode


def test_every_error_of_errors_sol_is_in_the_vault_abi() -> None:
    # decode_revert works from the vault's ABI: an error missing there would print as unknown.
    declared = set(
        re.findall(
            r"^\s*error\s+(\w+)\s*\(", (CONTRACTS_DIR / "interfaces/Errors.sol").read_text(), re.M
        )
    )
    in_abi = {e["name"] for e in compile_contracts()["MarginVault"].errors()}
    assert declared <= in_abi, f"declared but never used by the vault: {sorted(declared - in_abi)}"


def test_vault_runtime_fits_eip170() -> None:
    # Anvil, eth-tester and every public chain refuse to deploy runtime code above 24,576 bytes.
    size = len(compile_contracts()["MarginVault"].deployed_bytecode) // 2
    assert size <= EIP170_MAX_RUNTIME, f"MarginVault runtime is {size} bytes"


def test_vault_creation_code_fits_eip3860() -> None:
    # The modules are deployed apart (scripts/protocol_deploy.py), so only the vault is in it.
    size = len(compile_contracts()["MarginVault"].bytecode) // 2
    assert size <= EIP3860_MAX_INITCODE, f"MarginVault initcode is {size} bytes"


def test_second_call_reads_the_cache(tmp_path: Path) -> None:
    contracts = _tiny_project(tmp_path / "p")
    cache = tmp_path / "cache"
    first = compile_contracts(contracts_dir=contracts, root=tmp_path / "p", cache_dir=cache)
    assert not first.from_cache
    assert (cache / f"{first.cache_key}.json").is_file()
    t0 = time.perf_counter()
    second = compile_contracts(contracts_dir=contracts, root=tmp_path / "p", cache_dir=cache)
    elapsed = time.perf_counter() - t0
    assert second.from_cache and elapsed < 0.5
    assert second["Tiny"] == first["Tiny"]
    assert second.qualified["contracts/Tiny.sol:Tiny"].abi == first["Tiny"].abi


def test_source_change_changes_the_key_and_recompiles(tmp_path: Path) -> None:
    root = tmp_path / "p"
    contracts = _tiny_project(root)
    cache = tmp_path / "cache"
    a = compile_contracts(contracts_dir=contracts, root=root, cache_dir=cache)
    _tiny_project(root, lib_value="2")
    b = compile_contracts(contracts_dir=contracts, root=root, cache_dir=cache)
    assert a.cache_key != b.cache_key and not b.from_cache
    assert a["Tiny"].deployed_bytecode != b["Tiny"].deployed_bytecode


def test_sources_include_remapped_openzeppelin_and_relative_imports(tmp_path: Path) -> None:
    sources = collect_sources(_tiny_project(tmp_path / "p"), tmp_path / "p")
    assert "contracts/lib/Lib.sol" in sources
    assert "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol" in sources
    # OpenZeppelin's own relative imports resolve inside the remapped tree
    assert "@openzeppelin/contracts/utils/cryptography/Hashes.sol" in sources
    assert list(sources) == sorted(sources)


def test_settings_pin_optimizer_and_evm() -> None:
    assert SETTINGS["optimizer"] == {"enabled": True, "runs": 200}
    assert SETTINGS["evmVersion"] == "cancun" and SETTINGS["viaIR"] is False


def test_compile_error_carries_the_solc_message(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "contracts").mkdir(parents=True)
    (root / "contracts" / "Broken.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity 0.8.28;\ncontract B { uint x = ; }\n"
    )
    with pytest.raises(CompileError, match="ParserError"):
        compile_contracts(contracts_dir=root / "contracts", root=root, cache_dir=None)


def test_missing_import_and_unknown_contract_raise_keeper_errors(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "contracts").mkdir(parents=True)
    (root / "contracts" / "M.sol").write_text('import "./Missing.sol";\n')
    with pytest.raises(CompileError, match="cannot resolve import 'contracts/Missing.sol'"):
        compile_contracts(contracts_dir=root / "contracts", root=root, cache_dir=None)
    with pytest.raises(CompileError, match="no .sol files"):
        compile_contracts(contracts_dir=tmp_path / "empty", root=root, cache_dir=None)
    with pytest.raises(BuildError, match="no contract named 'Nope'"):
        compile_contracts()["Nope"]
