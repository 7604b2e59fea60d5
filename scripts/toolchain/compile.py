"""Compile ``contracts/**/*.sol`` from Python, without forge, with an on-disk cache.

Deployment, the demo stack and the tests take bytecode from here, and ``make abi`` exports
the ABIs the keeper loads (:mod:`scripts.toolchain.abi`); nothing needs forge at run time,
and the keeper daemon never compiles. The compiler is the pinned solcjs 0.8.28
behind the ``tools/solc`` shim, driven through py-solc-x's standard-JSON interface.

Import resolution is done here, not by the compiler: every source unit reachable from
``contracts/`` is read and put into the standard-JSON input under its import name, with
``@openzeppelin/contracts/`` mapped onto ``node_modules/@openzeppelin/contracts/`` and
``solady/`` onto ``node_modules/solady/src/`` (the same remappings as ``foundry.toml``).
The compiler then needs no file system access, and the cache key (sha256 of that whole
input) changes exactly when a compiled byte could.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError

from scripts.errors import CompileError
from scripts.toolchain import paths as toolchain

#: Import prefix -> folder (relative to the repository root), as in foundry.toml.
REMAPPINGS: dict[str, str] = {
    "@openzeppelin/contracts/": "node_modules/@openzeppelin/contracts/",
    "solady/": "node_modules/solady/src/",
}
#: Compiler settings; part of the cache key.
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "viaIR": False,
    "outputSelection": {
        "*": {
            "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"],
        }
    },
}
DEFAULT_CACHE_DIR = toolchain.REPO_ROOT / "cache" / "py-solc"
_IMPORT_RE = re.compile(r"""^\s*import\s+(?:[^"';]*?\s+from\s+)?["']([^"']+)["']\s*;""", re.M)


@dataclass(frozen=True)
class CompiledContract:
    """One compiled contract.

    ``bytecode`` is the creation code (hex without ``0x``; empty for interfaces and
    abstract contracts), ``deployed_bytecode`` the runtime code.
    """

    name: str
    source: str
    abi: tuple[dict[str, Any], ...] = field(repr=False)
    bytecode: str = field(repr=False)
    deployed_bytecode: str = field(repr=False)

    @property
    def bytecode_bytes(self) -> bytes:
        return bytes.fromhex(self.bytecode)

    def errors(self) -> tuple[dict[str, Any], ...]:
        """The ABI entries of type ``error``."""
        return tuple(e for e in self.abi if e.get("type") == "error")


@dataclass(frozen=True)
class CompileResult:
    """All contracts of one compilation, by contract name.

    A name defined in ``contracts/`` wins over the same name in a dependency; every
    contract is also reachable as ``"<source unit>:<name>"`` through :meth:`qualified`.
    """

    contracts: dict[str, CompiledContract]
    qualified: dict[str, CompiledContract]
    cache_key: str
    from_cache: bool

    def __getitem__(self, name: str) -> CompiledContract:
        try:
            return self.contracts[name]
        except KeyError:
            known = ", ".join(sorted(self.contracts))
            raise CompileError(f"no contract named {name!r}; compiled: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.contracts


def _resolve_import(importer: str, path: str) -> str:
    if path.startswith("./") or path.startswith("../"):
        return posixpath.normpath(posixpath.join(posixpath.dirname(importer), path))
    return path


def _disk_path(unit: str, root: Path) -> Path:
    for prefix, folder in REMAPPINGS.items():
        if unit.startswith(prefix):
            # Dependencies always come from this checkout's node_modules.
            return toolchain.REPO_ROOT / folder / unit[len(prefix) :]
    return root / unit


def collect_sources(contracts_dir: Path | None = None, root: Path | None = None) -> dict[str, str]:
    """Source unit name -> content for every ``.sol`` under ``contracts_dir`` and its imports.

    Unit names are repository-relative (``contracts/MarginVault.sol``) or the remapped import
    name (``@openzeppelin/contracts/utils/cryptography/ECDSA.sol``), sorted, so the input and
    the cache key are deterministic.
    """
    root = root or toolchain.REPO_ROOT
    contracts_dir = contracts_dir or toolchain.CONTRACTS_DIR
    pending = sorted(p.relative_to(root).as_posix() for p in contracts_dir.rglob("*.sol"))
    if not pending:
        raise CompileError(f"no .sol files under {contracts_dir}")
    sources: dict[str, str] = {}
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        disk = _disk_path(unit, root)
        if not disk.is_file():
            raise CompileError(f"cannot resolve import {unit!r} (looked at {disk})")
        text = disk.read_text()
        sources[unit] = text
        pending.extend(_resolve_import(unit, imp) for imp in _IMPORT_RE.findall(text))
    return dict(sorted(sources.items()))


def standard_input(sources: dict[str, str]) -> dict[str, Any]:
    """The solc standard-JSON input for ``sources`` with :data:`SETTINGS`."""
    return {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": SETTINGS,
    }


def _cache_key(input_json: dict[str, Any]) -> str:
    blob = json.dumps(
        {"solc": toolchain.SOLC_VERSION, "input": input_json}, sort_keys=True
    ).encode()
    return hashlib.sha256(blob).hexdigest()


def _result(output: dict[str, Any], key: str, from_cache: bool) -> CompileResult:
    contracts: dict[str, CompiledContract] = {}
    qualified: dict[str, CompiledContract] = {}
    # Our own sources last so that their names win over a dependency's.
    units = sorted(output.get("contracts", {}), key=lambda u: (u.startswith("contracts/"), u))
    for unit in units:
        for name, art in output["contracts"][unit].items():
            c = CompiledContract(
                name=name,
                source=unit,
                abi=tuple(art["abi"]),
                bytecode=art["evm"]["bytecode"]["object"],
                deployed_bytecode=art["evm"]["deployedBytecode"]["object"],
            )
            contracts[name] = c
            qualified[f"{unit}:{name}"] = c
    return CompileResult(
        contracts=contracts, qualified=qualified, cache_key=key, from_cache=from_cache
    )


def compile_contracts(
    *,
    contracts_dir: Path | None = None,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
    root: Path | None = None,
) -> CompileResult:
    """Compile every contract under ``contracts_dir`` (default ``contracts/``).

    The compiler output is cached in ``cache_dir/<sha256>.json`` (``cache_dir=None``
    disables the cache); a second call with unchanged sources reads that file and does not
    start the compiler. Raises :class:`~scripts.errors.CompileError` with the compiler's
    messages on a compile error.
    """
    sources = collect_sources(contracts_dir, root)
    input_json = standard_input(sources)
    key = _cache_key(input_json)
    cache_file = cache_dir / f"{key}.json" if cache_dir is not None else None
    if cache_file is not None and cache_file.is_file():
        return _result(json.loads(cache_file.read_text()), key, from_cache=True)
    try:
        output = solcx.compile_standard(input_json, solc_binary=toolchain.solc())
    except SolcError as exc:
        raise CompileError(f"solc failed:\n{exc.message}") from exc
    output = {"contracts": output.get("contracts", {})}
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a concurrent reader never sees a half-written file.
        tmp = cache_file.with_suffix(f".{time.time_ns()}.tmp")
        tmp.write_text(json.dumps(output))
        tmp.replace(cache_file)
    return _result(output, key, from_cache=False)
