"""Paths of the pinned toolchain (npm packages under ``node_modules``, the solc shim).

Nothing here runs a tool; callers get paths and fail early, with the fix in the message,
when ``make setup`` has not been run.
"""

from __future__ import annotations

from pathlib import Path

from scripts.errors import ToolchainError

#: Repository root (the folder holding ``contracts/``, ``tools/``, ``node_modules/``).
REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO_ROOT / "node_modules"
CONTRACTS_DIR = REPO_ROOT / "contracts"
#: The solc shim that makes npm solcjs 0.8.28 look like a native solc (see tools/solc).
SOLC_SHIM = REPO_ROOT / "tools" / "solc"
SOLC_VERSION = "0.8.28"
OPENZEPPELIN_DIR = NODE_MODULES / "@openzeppelin" / "contracts"
_FOUNDRY = NODE_MODULES / "@foundry-rs"


def _require(path: Path) -> Path:
    if not path.exists():
        raise ToolchainError(f"{path} not found; run `make setup` first")
    return path


def solc() -> Path:
    """The solc shim (``tools/solc``), checked to exist together with solcjs behind it."""
    _require(NODE_MODULES / "solc" / "solc.js")
    return _require(SOLC_SHIM)


def anvil() -> Path:
    """The pinned Anvil binary."""
    return _require(_FOUNDRY / "anvil-linux-amd64" / "bin" / "anvil")


def forge() -> Path:
    """The pinned forge binary."""
    return _require(_FOUNDRY / "forge-linux-amd64" / "bin" / "forge")


def cast() -> Path:
    """The pinned cast binary."""
    return _require(_FOUNDRY / "cast-linux-amd64" / "bin" / "cast")


def openzeppelin() -> Path:
    """The OpenZeppelin contracts folder that ``@openzeppelin/contracts/`` remaps to."""
    return _require(OPENZEPPELIN_DIR)
