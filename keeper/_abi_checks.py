"""Range checks of Solidity ABI values, shared by the leaf codec (``keeper.attestation``)
and the EIP-712 messages (``keeper.eip712``).

A value that does not fit its Solidity type would be encoded into bytes the vault never
hashes the same way; refusing it at construction keeps the error at the keeper, with the
field's name, instead of a bad signature or proof on chain.
"""

from __future__ import annotations

from eth_utils.address import to_checksum_address

from keeper.errors import AttestationError
from risk_engine.units import INT256_MAX, INT256_MIN, UINT256_MAX

__all__ = [
    "UINT32_MAX",
    "UINT64_MAX",
    "check_bytes32",
    "check_int",
    "check_uint",
    "checksum_address",
]

UINT64_MAX = 2**64 - 1
UINT32_MAX = 2**32 - 1


def check_uint(name: str, value: int, bound: int = UINT256_MAX) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= bound:
        raise AttestationError(f"{name} must be an integer in [0, {bound}], got {value!r}")


def check_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise AttestationError(f"{name} must be an integer, got {value!r}")
    if not INT256_MIN <= value <= INT256_MAX:
        raise AttestationError(f"{name} does not fit int256: {value}")


def check_bytes32(name: str, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise AttestationError(f"{name} must be 32 bytes, got {value!r}")


def checksum_address(name: str, value: str) -> str:
    try:
        return to_checksum_address(value)
    except (ValueError, TypeError) as exc:
        raise AttestationError(f"{name} is not an address: {value!r}") from exc
