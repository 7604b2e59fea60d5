"""Readable revert decoding (keeper/revert.py) on synthetic data; on-chain reverts are decoded
in tests/vault/test_flow.py and tests/vault/test_errors.py."""

from __future__ import annotations

import re

import pytest
from eth_abi import encode
from eth_utils import keccak

from keeper.errors import KeeperError, VaultRevert
from keeper.revert import (
    ERROR_DESCRIPTIONS,
    as_vault_revert,
    decode_revert,
    decode_revert_data,
    error_signature,
    revert_data_of,
)
from scripts.toolchain.paths import CONTRACTS_DIR

ABI = [
    {
        "type": "error",
        "name": "InsufficientMargin",
        "inputs": [
            {"name": "account", "type": "address"},
            {"name": "imSurplusLo", "type": "int256"},
        ],
    },
    {"type": "error", "name": "SafeMode", "inputs": []},
    {
        "type": "error",
        "name": "NotExpired",
        "inputs": [
            {"name": "instrument", "type": "uint32"},
            {"name": "expiry", "type": "uint64"},
            {"name": "timestamp", "type": "uint64"},
        ],
    },
    {"type": "error", "name": "Custom", "inputs": [{"name": "", "type": "bytes32"}]},
    {"type": "function", "name": "f", "inputs": [], "outputs": []},
]
ACCOUNT = "0x00000000000000000000000000000000000A11cE"


def _data(sig: str, types: list[str], values: list[object]) -> bytes:
    return keccak(text=sig)[:4] + encode(types, values)


def test_decodes_custom_error_with_wad_values_and_description() -> None:
    data = _data(
        "InsufficientMargin(address,int256)", ["address", "int256"], [ACCOUNT, -12_5 * 10**17]
    )
    msg = decode_revert(data, ABI)
    assert msg == (
        f"InsufficientMargin(account={ACCOUNT}, imSurplusLo=-12.5 [-12500000000000000000]): "
        "IM surplus lower bound would be negative after this action"
    )


def test_accepts_hex_string_and_decodes_error_without_arguments() -> None:
    data = "0x" + keccak(text="SafeMode()")[:4].hex()
    assert decode_revert(data, ABI).startswith("SafeMode(): no fresh attestation")


def test_non_wad_integers_print_raw() -> None:
    data = _data("NotExpired(uint32,uint64,uint64)", ["uint32", "uint64", "uint64"], [3, 100, 99])
    assert decode_revert(data, ABI).startswith("NotExpired(instrument=3, expiry=100, timestamp=99)")


def test_unnamed_parameter_and_bytes32_text() -> None:
    data = _data("Custom(bytes32)", ["bytes32"], [b"BTC".ljust(32, b"\0")])
    assert (
        decode_revert(data, ABI) == "Custom(arg0=0x" + b"BTC".ljust(32, b"\0").hex() + " ('BTC'))"
    )


def test_error_string_and_panic() -> None:
    assert decode_revert(_data("Error(string)", ["string"], ["nope"]), ABI) == "Error: nope"
    assert decode_revert(_data("Panic(uint256)", ["uint256"], [0x11]), ABI) == (
        "Panic(0x11): arithmetic overflow or underflow"
    )


def test_unknown_selector_and_empty_data_are_reported_not_guessed() -> None:
    assert decode_revert(b"\xde\xad\xbe\xef", ABI).startswith("unknown error selector 0xdeadbeef")
    assert decode_revert(b"", ABI).startswith("reverted without data")
    assert decode_revert(None, ABI).startswith("reverted without data")


def test_truncated_arguments_do_not_raise() -> None:
    data = _data("InsufficientMargin(address,int256)", ["address", "int256"], [ACCOUNT, 1])[:40]
    assert "undecodable" in decode_revert(data, ABI)


def test_error_signature_expands_tuples() -> None:
    entry = {
        "name": "E",
        "inputs": [
            {"type": "tuple[]", "components": [{"type": "uint32"}, {"type": "int256"}]},
            {"type": "address"},
        ],
    }
    assert error_signature(entry) == "E((uint32,int256)[],address)"


def test_revert_data_is_found_through_the_exception_chain() -> None:
    data = _data("SafeMode()", [], [])

    class Inner(Exception):
        pass

    try:
        try:
            raise Inner(data)
        except Inner:
            raise RuntimeError(f"execution reverted: {data!r}") from None
    except RuntimeError as exc:
        # `from None` hides the context from tracebacks but keeps the literal repr parseable
        assert revert_data_of(exc) == data

    class Web3Like(Exception):
        def __init__(self) -> None:
            super().__init__("execution reverted", "0x" + data.hex())
            self.data = "0x" + data.hex()

    wrapped = as_vault_revert(Web3Like(), ABI)
    assert isinstance(wrapped, VaultRevert) and isinstance(wrapped, KeeperError)
    assert wrapped.name == "SafeMode" and str(wrapped).startswith("SafeMode()")
    assert as_vault_revert(ValueError("no data"), ABI) is None


def test_every_vault_error_has_a_description() -> None:
    text = (CONTRACTS_DIR / "interfaces" / "Errors.sol").read_text()
    names = set(re.findall(r"^\s*error\s+(\w+)\s*\(", text, re.M))
    assert names, "no errors parsed from Errors.sol"
    missing = sorted(names - set(ERROR_DESCRIPTIONS))
    assert not missing, f"errors without a readable description: {missing}"


@pytest.mark.parametrize("name", sorted(ERROR_DESCRIPTIONS))
def test_descriptions_are_one_line(name: str) -> None:
    assert "\n" not in ERROR_DESCRIPTIONS[name] and ERROR_DESCRIPTIONS[name]


def test_decoded_args_keep_python_values() -> None:
    data = _data("InsufficientMargin(address,int256)", ["address", "int256"], [ACCOUNT, -1])
    d = decode_revert_data(data, ABI)
    assert d.name == "InsufficientMargin" and dict(d.args)["imSurplusLo"] == -1
