"""The contract ABIs the keeper, the liquidator bot and ``pm`` call the chain with.

The JSON files beside this module are build artefacts: ``make abi``
(:mod:`scripts.toolchain.abi`) compiles ``contracts/`` and writes them; they are committed
and shipped as package data, so an installed keeper has them and never compiles.
``tests/scripts/toolchain/test_abi.py`` fails, telling to run ``make abi``, when they no
longer match the contracts.

- ``MarginVault.json``: the vault (calls, events, custom errors);
- ``IERC20Metadata.json``: any collateral or settlement token;
- ``MockERC20.json``: the test tokens' ``mint``, for ``pm faucet`` on a mock deployment.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["erc20_abi", "load_abi", "mock_erc20_abi", "vault_abi"]

ABI = list[dict[str, Any]]


@cache
def _text(name: str) -> str:
    try:
        return resources.files(__name__).joinpath(f"{name}.json").read_text()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"keeper/abi/{name}.json is missing: run `make abi` (or reinstall the package)"
        ) from None


def load_abi(name: str) -> ABI:
    """The ABI of contract ``name``, parsed afresh (callers never share one list)."""
    abi: ABI = json.loads(_text(name))
    return abi


def vault_abi() -> ABI:
    """``MarginVault``'s ABI."""
    return load_abi("MarginVault")


def erc20_abi() -> ABI:
    """``IERC20Metadata``'s ABI: what the keeper reads of a token (symbol, decimals) and
    what ``pm`` calls on one (balanceOf, allowance, approve)."""
    return load_abi("IERC20Metadata")


def mock_erc20_abi() -> ABI:
    """``MockERC20``'s ABI (IERC20Metadata + ``mint``): only for the test tokens."""
    return load_abi("MockERC20")
