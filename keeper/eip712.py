"""EIP-712 messages exactly as docs/protocol.md §4, §7: the vault's domain, the epoch
header the signers attest, RFQ quotes, their typed-data hashes and signatures.

This module is the Python half of the vault's ``hashEpoch`` / ``hashQuote``; the JSON
vectors in ``tests/vectors/`` pin both halves to the same digests. The leaves and the
Merkle tree whose root a header carries are in ``keeper.attestation``.

Every integer is in the chain's fixed point (docs/protocol.md §1): prices in WAD (1e18)
USD, sizes in WAD units, shocks in WAD fractions. Nothing here rounds.

The header's wire codec (:meth:`Epoch.to_json` / :meth:`Epoch.from_json`) is the ONE JSON
shape of a header as the keeper stores it and sends it to the signers. Writers emit ints
as ints; readers accept ints or decimal strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from keeper._abi_checks import (
    UINT32_MAX,
    UINT64_MAX,
    check_bytes32,
    check_int,
    check_uint,
    checksum_address,
)
from keeper.attestation import ZERO_ADDRESS, hash_to_json
from keeper.errors import AttestationError

DOMAIN_NAME = "PortfolioMarginVault"
DOMAIN_VERSION = "1"


@dataclass(frozen=True)
class TokenPrice:
    """Collateral token price (WAD USD per whole token) and its shocks (WAD fractions)."""

    token: str
    price: int
    down_shock: int
    up_shock: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", checksum_address("token", self.token))
        check_uint("price", self.price)
        check_uint("down_shock", self.down_shock)
        check_uint("up_shock", self.up_shock)

    def to_abi(self) -> tuple[Any, ...]:
        return (self.token, self.price, self.down_shock, self.up_shock)

    def to_eip712(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "price": self.price,
            "downShock": self.down_shock,
            "upShock": self.up_shock,
        }


@dataclass(frozen=True)
class FundingUpdate:
    """A perp's cumulative funding index (WAD USD per unit; a long pays increases)."""

    instrument: int
    cum_funding: int

    def __post_init__(self) -> None:
        check_uint("instrument", self.instrument, UINT32_MAX)
        check_int("cum_funding", self.cum_funding)

    def to_abi(self) -> tuple[Any, ...]:
        return (self.instrument, self.cum_funding)

    def to_eip712(self) -> dict[str, Any]:
        return {"instrument": self.instrument, "cumFunding": self.cum_funding}


@dataclass(frozen=True)
class Settlement:
    """Final settlement price (WAD USD per unit of underlying) of an expired option."""

    instrument: int
    price: int

    def __post_init__(self) -> None:
        check_uint("instrument", self.instrument, UINT32_MAX)
        check_uint("price", self.price)

    def to_abi(self) -> tuple[Any, ...]:
        return (self.instrument, self.price)

    def to_eip712(self) -> dict[str, Any]:
        return {"instrument": self.instrument, "price": self.price}


@dataclass(frozen=True)
class Epoch:
    """The epoch attestation header (docs/protocol.md §4)."""

    epoch: int
    snapshot_block: int
    timestamp: int
    root: bytes
    config_version: int
    tokens: tuple[TokenPrice, ...] = ()
    funding: tuple[FundingUpdate, ...] = ()
    settlements: tuple[Settlement, ...] = ()
    #: The engine's committed inputs (docs/protocol.md §11); after ``root`` in the ABI and in
    #: the EIP-712 type, last here so that a header without disputes needs no value.
    inputs_hash: bytes = bytes(32)

    def __post_init__(self) -> None:
        check_uint("epoch", self.epoch, UINT64_MAX)
        check_uint("snapshot_block", self.snapshot_block, UINT64_MAX)
        check_uint("timestamp", self.timestamp, UINT64_MAX)
        check_bytes32("root", self.root)
        check_bytes32("inputs_hash", self.inputs_hash)
        check_uint("config_version", self.config_version, UINT64_MAX)
        for name in ("tokens", "funding", "settlements"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def to_abi(self) -> tuple[Any, ...]:
        return (
            self.epoch,
            self.snapshot_block,
            self.timestamp,
            self.root,
            self.inputs_hash,
            self.config_version,
            [t.to_abi() for t in self.tokens],
            [f.to_abi() for f in self.funding],
            [s.to_abi() for s in self.settlements],
        )

    def to_eip712(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "snapshotBlock": self.snapshot_block,
            "timestamp": self.timestamp,
            "root": self.root,
            "inputsHash": self.inputs_hash,
            "configVersion": self.config_version,
            "tokens": [t.to_eip712() for t in self.tokens],
            "funding": [f.to_eip712() for f in self.funding],
            "settlements": [s.to_eip712() for s in self.settlements],
        }

    def to_json(self) -> dict[str, Any]:
        """The header on the wire (store, epoch file, signer requests): the token table,
        funding and settlements as arrays in :meth:`to_abi` order."""
        return {
            "epoch": self.epoch,
            "snapshotBlock": self.snapshot_block,
            "timestamp": self.timestamp,
            "root": hash_to_json(self.root),
            "inputsHash": hash_to_json(self.inputs_hash),
            "configVersion": self.config_version,
            "tokens": [[t.token, t.price, t.down_shock, t.up_shock] for t in self.tokens],
            "funding": [[f.instrument, f.cum_funding] for f in self.funding],
            "settlements": [[s.instrument, s.price] for s in self.settlements],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Epoch:
        """Inverse of :meth:`to_json`; ints as ints or decimal strings, root with or
        without ``0x``; a header stored before the inputs hash has it 0."""
        root = str(d["root"])
        inputs = str(d.get("inputsHash", "0x" + "00" * 32))
        return cls(
            epoch=int(d["epoch"]),
            snapshot_block=int(d["snapshotBlock"]),
            timestamp=int(d["timestamp"]),
            root=bytes.fromhex(root[2:] if root.startswith("0x") else root),
            config_version=int(d["configVersion"]),
            tokens=tuple(
                TokenPrice(str(a), int(p), int(dn), int(up)) for a, p, dn, up in d["tokens"]
            ),
            funding=tuple(FundingUpdate(int(i), int(c)) for i, c in d["funding"]),
            settlements=tuple(Settlement(int(i), int(p)) for i, p in d["settlements"]),
            inputs_hash=bytes.fromhex(inputs[2:] if inputs.startswith("0x") else inputs),
        )


@dataclass(frozen=True)
class Leg:
    """One leg of a quote, from the maker's side: the maker gets ``+size`` at ``price``."""

    instrument: int
    size: int
    price: int

    def __post_init__(self) -> None:
        check_uint("instrument", self.instrument, UINT32_MAX)
        check_int("size", self.size)
        check_uint("price", self.price)

    def to_abi(self) -> tuple[Any, ...]:
        return (self.instrument, self.size, self.price)

    def to_eip712(self) -> dict[str, Any]:
        return {"instrument": self.instrument, "size": self.size, "price": self.price}


@dataclass(frozen=True)
class Quote:
    """An RFQ quote signed by ``maker`` (docs/protocol.md §7) for its subaccount
    ``maker_account`` (``maker`` must own or operate it when the quote is filled);
    ``taker`` 0 = anyone."""

    maker: str
    maker_account: int
    taker: str
    legs: tuple[Leg, ...]
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "maker", checksum_address("maker", self.maker))
        check_uint("maker_account", self.maker_account)
        object.__setattr__(self, "taker", checksum_address("taker", self.taker))
        object.__setattr__(self, "legs", tuple(self.legs))
        check_uint("nonce", self.nonce)
        check_uint("deadline", self.deadline, UINT64_MAX)

    def to_abi(self) -> tuple[Any, ...]:
        return (
            self.maker,
            self.maker_account,
            self.taker,
            [leg.to_abi() for leg in self.legs],
            self.nonce,
            self.deadline,
        )

    def to_eip712(self) -> dict[str, Any]:
        return {
            "maker": self.maker,
            "makerAccount": self.maker_account,
            "taker": self.taker,
            "legs": [leg.to_eip712() for leg in self.legs],
            "nonce": self.nonce,
            "deadline": self.deadline,
        }


_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
EPOCH_TYPES: dict[str, list[dict[str, str]]] = {
    "Epoch": [
        {"name": "epoch", "type": "uint64"},
        {"name": "snapshotBlock", "type": "uint64"},
        {"name": "timestamp", "type": "uint64"},
        {"name": "root", "type": "bytes32"},
        {"name": "inputsHash", "type": "bytes32"},
        {"name": "configVersion", "type": "uint64"},
        {"name": "tokens", "type": "TokenPrice[]"},
        {"name": "funding", "type": "FundingUpdate[]"},
        {"name": "settlements", "type": "Settlement[]"},
    ],
    "TokenPrice": [
        {"name": "token", "type": "address"},
        {"name": "price", "type": "uint256"},
        {"name": "downShock", "type": "uint256"},
        {"name": "upShock", "type": "uint256"},
    ],
    "FundingUpdate": [
        {"name": "instrument", "type": "uint32"},
        {"name": "cumFunding", "type": "int256"},
    ],
    "Settlement": [
        {"name": "instrument", "type": "uint32"},
        {"name": "price", "type": "uint256"},
    ],
}
QUOTE_TYPES: dict[str, list[dict[str, str]]] = {
    "Quote": [
        {"name": "maker", "type": "address"},
        {"name": "makerAccount", "type": "uint256"},
        {"name": "taker", "type": "address"},
        {"name": "legs", "type": "Leg[]"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ],
    "Leg": [
        {"name": "instrument", "type": "uint32"},
        {"name": "size", "type": "int256"},
        {"name": "price", "type": "uint256"},
    ],
}


@dataclass(frozen=True)
class Domain:
    """The vault's EIP-712 domain: bound to one chain and one vault address."""

    chain_id: int
    verifying_contract: str
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "verifying_contract",
            checksum_address("verifying_contract", self.verifying_contract),
        )
        check_uint("chain_id", self.chain_id)

    def to_eip712(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }

    def separator(self) -> bytes:
        """``domainSeparator()`` of the vault deployed at ``verifying_contract``."""
        return bytes(_signable(self, QUOTE_TYPES, "Quote", _EMPTY_QUOTE).header)


_EMPTY_QUOTE = {
    "maker": ZERO_ADDRESS,
    "makerAccount": 0,
    "taker": ZERO_ADDRESS,
    "legs": [],
    "nonce": 0,
    "deadline": 0,
}


def _signable(
    domain: Domain, types: dict[str, list[dict[str, str]]], primary: str, message: dict[str, Any]
) -> SignableMessage:
    return encode_typed_data(
        full_message={
            "types": {"EIP712Domain": _DOMAIN_TYPE, **types},
            "primaryType": primary,
            "domain": domain.to_eip712(),
            "message": message,
        }
    )


def _digest(msg: SignableMessage) -> bytes:
    return keccak(b"\x19" + bytes(msg.version) + bytes(msg.header) + bytes(msg.body))


def epoch_typed_data(header: Epoch, domain: Domain) -> SignableMessage:
    """The EIP-712 message of an epoch header, for ``Account.sign_message``."""
    return _signable(domain, EPOCH_TYPES, "Epoch", header.to_eip712())


def quote_typed_data(quote: Quote, domain: Domain) -> SignableMessage:
    """The EIP-712 message of a quote, for ``Account.sign_message``."""
    return _signable(domain, QUOTE_TYPES, "Quote", quote.to_eip712())


def epoch_struct_hash(header: Epoch, domain: Domain) -> bytes:
    """``hashStruct(Epoch)`` (domain-independent; the domain is only needed by the encoder)."""
    return bytes(epoch_typed_data(header, domain).body)


def quote_struct_hash(quote: Quote, domain: Domain) -> bytes:
    return bytes(quote_typed_data(quote, domain).body)


def epoch_digest(header: Epoch, domain: Domain) -> bytes:
    """The digest the signers sign and the vault's ``hashEpoch`` returns."""
    return _digest(epoch_typed_data(header, domain))


def quote_digest(quote: Quote, domain: Domain) -> bytes:
    """The digest the maker signs and the vault's ``hashQuote`` returns."""
    return _digest(quote_typed_data(quote, domain))


KeyLike = LocalAccount | bytes | str | int


def _account(key: KeyLike) -> LocalAccount:
    if isinstance(key, LocalAccount):
        return key
    acct: LocalAccount = Account.from_key(key)
    return acct


def sign_epoch(header: Epoch, keys: Iterable[KeyLike], domain: Domain) -> list[bytes]:
    """Signatures (65 bytes ``r || s || v``) of ``header`` by each key, sorted by signer
    address ascending as ``postEpoch`` requires. Duplicate keys are refused: the vault
    would reject them anyway, and a silent dedupe would hide a config mistake."""
    accounts = [_account(k) for k in keys]
    addresses = [a.address.lower() for a in accounts]
    if len(set(addresses)) != len(addresses):
        raise AttestationError("duplicate signer key")
    msg = epoch_typed_data(header, domain)
    signed = sorted(
        ((int(a.address, 16), bytes(a.sign_message(msg).signature)) for a in accounts),
        key=lambda t: t[0],
    )
    return [sig for _, sig in signed]


def sign_quote(quote: Quote, key: KeyLike, domain: Domain) -> bytes:
    """The maker's signature of ``quote``; the key must be the maker's."""
    acct = _account(key)
    if acct.address != quote.maker:
        raise AttestationError(f"key of {acct.address} cannot sign a quote of maker {quote.maker}")
    return bytes(acct.sign_message(quote_typed_data(quote, domain)).signature)


def recover_signer(digest: bytes, signature: bytes) -> str:
    """Address that produced ``signature`` over the 32-byte ``digest``."""
    addr: str = Account._recover_hash(digest, signature=signature)
    return addr
