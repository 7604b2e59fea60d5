"""Leaves, Merkle tree and EIP-712 messages exactly as docs/protocol.md §3, §4, §7.

This module is the Python half of the one encoding shared with ``contracts/``
(``libraries/Leaves.sol``, the vault's ``hashEpoch`` / ``hashQuote``); the JSON vectors
in ``tests/vectors/`` pin both halves to the same bytes.

Every integer is in the chain's fixed point (docs/protocol.md §1): USD values and prices
in WAD (1e18), sizes in WAD units, shocks in WAD fractions. Nothing here rounds.

The wire codec (``to_json`` / ``from_json``) sits beside each type: the ONE JSON shape of a
leaf (its ``fields`` by protocol name), a proof (``{"fields", "proof"}``) and a header,
as the keeper stores, serves and sends them. Writers emit ints as ints (Python's json
keeps them exact; the store's ``to_dict`` turns them into decimal strings for
JavaScript); readers accept either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from keeper.errors import AttestationError

LEAF_ACCOUNT = 1
LEAF_INSTRUMENT = 2
DOMAIN_NAME = "PortfolioMarginVault"
DOMAIN_VERSION = "1"

_UINT64_MAX = 2**64 - 1
_UINT32_MAX = 2**32 - 1
_UINT256_MAX = 2**256 - 1
_INT256_MIN = -(2**255)
_INT256_MAX = 2**255 - 1


def _check_uint(name: str, value: int, bound: int = _UINT256_MAX) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= bound:
        raise AttestationError(f"{name} must be an integer in [0, {bound}], got {value!r}")


def _check_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise AttestationError(f"{name} must be an integer, got {value!r}")
    if not _INT256_MIN <= value <= _INT256_MAX:
        raise AttestationError(f"{name} does not fit int256: {value}")


def _check_bytes32(name: str, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise AttestationError(f"{name} must be 32 bytes, got {value!r}")


def _address(name: str, value: str) -> str:
    try:
        return to_checksum_address(value)
    except (ValueError, TypeError) as exc:
        raise AttestationError(f"{name} is not an address: {value!r}") from exc


def hash_to_json(value: bytes) -> str:
    """A 32-byte hash on the wire: lowercase hex with ``0x``."""
    return "0x" + value.hex()


def proof_to_json(proof: Iterable[bytes]) -> list[str]:
    """Merkle sibling hashes on the wire, leaf to root."""
    return [hash_to_json(p) for p in proof]


def proof_from_json(proof: Iterable[str]) -> tuple[bytes, ...]:
    """Inverse of :func:`proof_to_json`."""
    return tuple(bytes.fromhex(p[2:]) for p in proof)


# ----------------------------------------------------------------------------- leaves


@dataclass(frozen=True)
class AccountLeaf:
    """ACCOUNT leaf: the account's attested numbers at the epoch's snapshot block.

    ``cum_lo`` / ``cum_hi`` / ``state_nonce`` are the vault's values at the snapshot;
    ``equity`` (WAD USD, rounded down), ``im`` and ``mm`` (WAD USD, rounded up) come from
    the risk engine.
    """

    account: str
    state_nonce: int
    cum_lo: int
    cum_hi: int
    equity: int
    im: int
    mm: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", _address("account", self.account))
        _check_uint("state_nonce", self.state_nonce, _UINT64_MAX)
        for name in ("cum_lo", "cum_hi", "equity"):
            _check_int(name, getattr(self, name))
        _check_uint("im", self.im)
        _check_uint("mm", self.mm)

    def to_abi(self) -> tuple[Any, ...]:
        """The Solidity ``AccountLeaf`` struct tuple."""
        return (
            self.account,
            self.state_nonce,
            self.cum_lo,
            self.cum_hi,
            self.equity,
            self.im,
            self.mm,
        )

    def encode(self) -> bytes:
        return abi_encode(
            ["uint8", "address", "uint64", "int256", "int256", "int256", "uint256", "uint256"],
            [LEAF_ACCOUNT, *self.to_abi()],
        )

    def hash(self) -> bytes:
        """``keccak256(bytes.concat(keccak256(abi.encode(uint8(1), ...))))``."""
        return keccak(keccak(self.encode()))

    def to_json(self) -> dict[str, Any]:
        """The leaf's ``fields`` on the wire, by protocol name."""
        return {
            "account": self.account,
            "stateNonce": self.state_nonce,
            "cumLo": self.cum_lo,
            "cumHi": self.cum_hi,
            "equity": self.equity,
            "im": self.im,
            "mm": self.mm,
        }

    @classmethod
    def from_json(cls, fields: Mapping[str, Any]) -> AccountLeaf:
        """Inverse of :meth:`to_json`; ints as ints or decimal strings."""
        f = fields
        return cls(
            str(f["account"]),
            int(f["stateNonce"]),
            int(f["cumLo"]),
            int(f["cumHi"]),
            int(f["equity"]),
            int(f["im"]),
            int(f["mm"]),
        )


@dataclass(frozen=True)
class InstrumentLeaf:
    """INSTRUMENT leaf: mark and standalone worst-case loss per unit, long and short.

    All three in WAD USD per unit; the losses are rounded up by the engine.
    """

    instrument: int
    mark: int
    loss_per_unit_long: int
    loss_per_unit_short: int

    def __post_init__(self) -> None:
        _check_uint("instrument", self.instrument, _UINT32_MAX)
        _check_uint("mark", self.mark)
        _check_uint("loss_per_unit_long", self.loss_per_unit_long)
        _check_uint("loss_per_unit_short", self.loss_per_unit_short)

    def to_abi(self) -> tuple[Any, ...]:
        """The Solidity ``InstrumentLeaf`` struct tuple."""
        return (self.instrument, self.mark, self.loss_per_unit_long, self.loss_per_unit_short)

    def encode(self) -> bytes:
        return abi_encode(
            ["uint8", "uint32", "uint256", "uint256", "uint256"],
            [LEAF_INSTRUMENT, *self.to_abi()],
        )

    def hash(self) -> bytes:
        """``keccak256(bytes.concat(keccak256(abi.encode(uint8(2), ...))))``."""
        return keccak(keccak(self.encode()))

    def to_json(self) -> dict[str, Any]:
        """The leaf's ``fields`` on the wire, by protocol name."""
        return {
            "instrument": self.instrument,
            "mark": self.mark,
            "lossPerUnitLong": self.loss_per_unit_long,
            "lossPerUnitShort": self.loss_per_unit_short,
        }

    @classmethod
    def from_json(cls, fields: Mapping[str, Any]) -> InstrumentLeaf:
        """Inverse of :meth:`to_json`; ints as ints or decimal strings."""
        f = fields
        return cls(
            int(f["instrument"]),
            int(f["mark"]),
            int(f["lossPerUnitLong"]),
            int(f["lossPerUnitShort"]),
        )


Leaf = AccountLeaf | InstrumentLeaf


def account_leaf_hash(
    account: str, state_nonce: int, cum_lo: int, cum_hi: int, equity: int, im: int, mm: int
) -> bytes:
    """Hash of an ACCOUNT leaf (docs/protocol.md §3)."""
    return AccountLeaf(account, state_nonce, cum_lo, cum_hi, equity, im, mm).hash()


def instrument_leaf_hash(
    instrument: int, mark: int, loss_per_unit_long: int, loss_per_unit_short: int
) -> bytes:
    """Hash of an INSTRUMENT leaf (docs/protocol.md §3)."""
    return InstrumentLeaf(instrument, mark, loss_per_unit_long, loss_per_unit_short).hash()


ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class MarginProof:
    """An ACCOUNT leaf with its Merkle proof (Solidity ``MarginProof``).

    Wire shape: ``{"fields": <AccountLeaf.to_json()>, "proof": ["0x..", ...]}``; a
    stored leaf record (``kind``, ``key``, ``leaf`` hash besides) reads the same way.
    """

    leaf: AccountLeaf
    proof: tuple[bytes, ...] = ()

    @classmethod
    def empty(cls, account: str = ZERO_ADDRESS) -> MarginProof:
        """The all-zero leaf without a proof: what an account without open positions
        passes (the vault values it on chain and ignores the proof)."""
        return cls(AccountLeaf(account, 0, 0, 0, 0, 0, 0), ())

    def to_abi(self) -> tuple[Any, ...]:
        return (self.leaf.to_abi(), list(self.proof))

    def to_json(self) -> dict[str, Any]:
        return {"fields": self.leaf.to_json(), "proof": proof_to_json(self.proof)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MarginProof:
        """Inverse of :meth:`to_json` (extra keys, as a stored record's, are ignored)."""
        return cls(AccountLeaf.from_json(d["fields"]), proof_from_json(d["proof"]))


@dataclass(frozen=True)
class InstrumentProof:
    """An INSTRUMENT leaf with its Merkle proof (Solidity ``InstrumentProof``); on the
    wire as :class:`MarginProof`, with :meth:`InstrumentLeaf.to_json` fields."""

    leaf: InstrumentLeaf
    proof: tuple[bytes, ...] = ()

    def to_abi(self) -> tuple[Any, ...]:
        return (self.leaf.to_abi(), list(self.proof))

    def to_json(self) -> dict[str, Any]:
        return {"fields": self.leaf.to_json(), "proof": proof_to_json(self.proof)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> InstrumentProof:
        """Inverse of :meth:`to_json` (extra keys, as a stored record's, are ignored)."""
        return cls(InstrumentLeaf.from_json(d["fields"]), proof_from_json(d["proof"]))


# ------------------------------------------------------------------------------ merkle


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's commutative node hash: ``keccak256(min(a,b) ++ max(a,b))``."""
    return keccak(a + b) if a <= b else keccak(b + a)


class MerkleTree:
    """Merkle tree over leaf hashes, identical to OpenZeppelin's ``StandardMerkleTree``.

    Leaf hashes are sorted ascending and laid out as OpenZeppelin's ``makeMerkleTree``
    does: a complete binary tree in an array of ``2n - 1`` nodes, leaves at the end in
    reverse order, node ``i`` = ``hash_pair(tree[2i+1], tree[2i+2])``. So the root equals
    ``StandardMerkleTree.of(values, types).root`` of ``@openzeppelin/merkle-tree`` for the
    same leaves, and every proof verifies with ``MerkleProof.verify``.
    """

    def __init__(self, leaves: Iterable[Leaf | bytes]) -> None:
        hashes = [leaf if isinstance(leaf, bytes) else leaf.hash() for leaf in leaves]
        if not hashes:
            raise AttestationError("an empty Merkle tree is not allowed (protocol §3)")
        for h in hashes:
            _check_bytes32("leaf hash", h)
        if len(set(hashes)) != len(hashes):
            raise AttestationError("duplicate leaf in Merkle tree")
        self.leaves: tuple[bytes, ...] = tuple(sorted(hashes))
        n = len(self.leaves)
        tree: list[bytes] = [b""] * (2 * n - 1)
        for i, h in enumerate(self.leaves):
            tree[len(tree) - 1 - i] = h
        for i in range(len(tree) - 1 - n, -1, -1):
            tree[i] = hash_pair(tree[2 * i + 1], tree[2 * i + 2])
        self._tree = tuple(tree)
        self._index = {h: len(tree) - 1 - i for i, h in enumerate(self.leaves)}

    @property
    def root(self) -> bytes:
        return self._tree[0]

    def __len__(self) -> int:
        return len(self.leaves)

    def __contains__(self, leaf: object) -> bool:
        h = leaf.hash() if isinstance(leaf, AccountLeaf | InstrumentLeaf) else leaf
        return h in self._index

    def proof(self, leaf: Leaf | bytes) -> tuple[bytes, ...]:
        """Sibling hashes from the leaf up to (not including) the root."""
        h = leaf if isinstance(leaf, bytes) else leaf.hash()
        try:
            i = self._index[h]
        except KeyError:
            raise AttestationError(f"leaf 0x{h.hex()} is not in the tree") from None
        out: list[bytes] = []
        while i > 0:
            sibling = i + 1 if i % 2 == 1 else i - 1
            out.append(self._tree[sibling])
            i = (i - 1) // 2
        return tuple(out)

    @staticmethod
    def verify(root: bytes, leaf: Leaf | bytes, proof: Sequence[bytes]) -> bool:
        """``MerkleProof.verify`` of OpenZeppelin."""
        h = leaf if isinstance(leaf, bytes) else leaf.hash()
        for p in proof:
            h = hash_pair(h, p)
        return h == root

    def margin_proof(self, leaf: AccountLeaf) -> MarginProof:
        return MarginProof(leaf, self.proof(leaf))

    def instrument_proof(self, leaf: InstrumentLeaf) -> InstrumentProof:
        return InstrumentProof(leaf, self.proof(leaf))


# ------------------------------------------------------------------------------ EIP-712


@dataclass(frozen=True)
class TokenPrice:
    """Collateral token price (WAD USD per whole token) and its shocks (WAD fractions)."""

    token: str
    price: int
    down_shock: int
    up_shock: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", _address("token", self.token))
        _check_uint("price", self.price)
        _check_uint("down_shock", self.down_shock)
        _check_uint("up_shock", self.up_shock)

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
        _check_uint("instrument", self.instrument, _UINT32_MAX)
        _check_int("cum_funding", self.cum_funding)

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
        _check_uint("instrument", self.instrument, _UINT32_MAX)
        _check_uint("price", self.price)

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

    def __post_init__(self) -> None:
        _check_uint("epoch", self.epoch, _UINT64_MAX)
        _check_uint("snapshot_block", self.snapshot_block, _UINT64_MAX)
        _check_uint("timestamp", self.timestamp, _UINT64_MAX)
        _check_bytes32("root", self.root)
        _check_uint("config_version", self.config_version, _UINT64_MAX)
        for name in ("tokens", "funding", "settlements"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def to_abi(self) -> tuple[Any, ...]:
        return (
            self.epoch,
            self.snapshot_block,
            self.timestamp,
            self.root,
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
            "configVersion": self.config_version,
            "tokens": [[t.token, t.price, t.down_shock, t.up_shock] for t in self.tokens],
            "funding": [[f.instrument, f.cum_funding] for f in self.funding],
            "settlements": [[s.instrument, s.price] for s in self.settlements],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Epoch:
        """Inverse of :meth:`to_json`; ints as ints or decimal strings, root with or
        without ``0x``."""
        root = str(d["root"])
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
        )


@dataclass(frozen=True)
class Leg:
    """One leg of a quote, from the maker's side: the maker gets ``+size`` at ``price``."""

    instrument: int
    size: int
    price: int

    def __post_init__(self) -> None:
        _check_uint("instrument", self.instrument, _UINT32_MAX)
        _check_int("size", self.size)
        _check_uint("price", self.price)

    def to_abi(self) -> tuple[Any, ...]:
        return (self.instrument, self.size, self.price)

    def to_eip712(self) -> dict[str, Any]:
        return {"instrument": self.instrument, "size": self.size, "price": self.price}


@dataclass(frozen=True)
class Quote:
    """An RFQ quote signed by ``maker`` (docs/protocol.md §7); ``taker`` 0 = anyone."""

    maker: str
    taker: str
    legs: tuple[Leg, ...]
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "maker", _address("maker", self.maker))
        object.__setattr__(self, "taker", _address("taker", self.taker))
        object.__setattr__(self, "legs", tuple(self.legs))
        _check_uint("nonce", self.nonce)
        _check_uint("deadline", self.deadline, _UINT64_MAX)

    def to_abi(self) -> tuple[Any, ...]:
        return (
            self.maker,
            self.taker,
            [leg.to_abi() for leg in self.legs],
            self.nonce,
            self.deadline,
        )

    def to_eip712(self) -> dict[str, Any]:
        return {
            "maker": self.maker,
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
            self, "verifying_contract", _address("verifying_contract", self.verifying_contract)
        )
        _check_uint("chain_id", self.chain_id)

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


_EMPTY_QUOTE = {"maker": ZERO_ADDRESS, "taker": ZERO_ADDRESS, "legs": [], "nonce": 0, "deadline": 0}


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
