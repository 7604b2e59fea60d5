"""Leaves, Merkle tree and EIP-712 of keeper.attestation against independent references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.attestation import (
    ZERO_ADDRESS,
    AccountLeaf,
    AccountLeafRows,
    InstrumentLeaf,
    MerkleTree,
    account_leaf_hash,
    instrument_leaf_hash,
)
from keeper.eip712 import (
    Domain,
    Epoch,
    FundingUpdate,
    Leg,
    Quote,
    Settlement,
    TokenPrice,
    epoch_digest,
    quote_digest,
    recover_signer,
    sign_epoch,
    sign_quote,
)
from keeper.errors import AttestationError, KeeperError
from risk_engine.units import INT256_MAX, INT256_MIN, UINT256_MAX

ALICE = 0xA11CE  # a subaccount id
VAULT = "0x00000000000000000000000000000000000fA017"
DOMAIN = Domain(chain_id=31337, verifying_contract=VAULT)
KEYS = [Account.from_key(bytes([i]) * 32) for i in (7, 8, 9)]


def _word(v: int) -> bytes:
    return (v % 2**256).to_bytes(32, "big")


# ------------------------------------------------------------------------------ leaves


def test_account_leaf_hash_matches_hand_packed_words() -> None:
    # abi.encode of static types is one 32-byte word per field; pack by hand, not eth_abi.
    fields = [1, ALICE, 3, -5 * 10**18, 7 * 10**18, -(10**18), 2 * 10**18, 10**18]
    word = keccak(text="a state chain word")
    raw = b"".join(_word(v) for v in fields) + word
    expected = keccak(keccak(raw))
    leaf = AccountLeaf(ALICE, 3, -5 * 10**18, 7 * 10**18, -(10**18), 2 * 10**18, 10**18, word)
    assert leaf.hash() == expected
    # without a state word (the default) the last word is 0
    zero = b"".join(_word(v) for v in fields) + bytes(32)
    assert account_leaf_hash(ALICE, 3, -5 * 10**18, 7 * 10**18, -(10**18), 2 * 10**18, 10**18) == (
        keccak(keccak(zero))
    )


def test_instrument_leaf_hash_matches_hand_packed_words() -> None:
    vector = keccak(text="a risk vector")
    head = b"".join(_word(v) for v in [2, 4, 3000 * 10**18, 450 * 10**18, 480 * 10**18])
    raw = head + _word(-7 * 10**18) + vector
    leaf = InstrumentLeaf(4, 3000 * 10**18, 450 * 10**18, 480 * 10**18, -7 * 10**18, vector)
    assert leaf.hash() == keccak(keccak(raw))
    zero = head + bytes(64)
    assert instrument_leaf_hash(4, 3000 * 10**18, 450 * 10**18, 480 * 10**18) == keccak(
        keccak(zero)
    )


def test_leaf_types_are_domain_separated() -> None:
    # An ACCOUNT leaf can never collide with an INSTRUMENT leaf: the type tag differs.
    a = AccountLeaf(0, 0, 0, 0, 0, 0, 0)
    i = InstrumentLeaf(0, 0, 0, 0)
    assert a.hash() != i.hash()
    assert a.encode()[:32] == _word(1) and i.encode()[:32] == _word(2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"state_nonce": -1},
        {"state_nonce": 2**64},
        {"im": -1},
        {"mm": 2**256},
        {"equity": 2**255},
        {"cum_lo": 1.5},
        {"account": -1},
        {"account": 2**256},
    ],
)
def test_account_leaf_rejects_out_of_range_field(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = dict(
        account=ALICE, state_nonce=0, cum_lo=0, cum_hi=0, equity=0, im=0, mm=0
    )
    base.update(kwargs)
    with pytest.raises(AttestationError):
        AccountLeaf(**base)  # type: ignore[arg-type]


def test_instrument_leaf_rejects_instrument_beyond_uint32() -> None:
    with pytest.raises(AttestationError, match="instrument"):
        InstrumentLeaf(2**32, 1, 1, 1)


_UINT = st.integers(0, UINT256_MAX)
_INT = st.integers(INT256_MIN, INT256_MAX)
_LEAVES = st.lists(
    st.builds(AccountLeaf, _UINT, st.integers(0, 2**64 - 1), _INT, _INT, _INT, _UINT, _UINT),
    max_size=6,
)


@settings(max_examples=50, deadline=None)
@given(_LEAVES)
def test_account_leaf_rows_read_back_the_leaves_they_encode(leaves: list[AccountLeaf]) -> None:
    """Every field at its type's edges: a leaf read from its row is the leaf, and the rows
    are equal to the tuple of leaves (either way round), sliced or indexed from the end."""
    blob = b"".join(leaf.encode() for leaf in leaves)
    rows = AccountLeafRows(np.frombuffer(blob, dtype=np.uint8).reshape(len(leaves), 288))
    assert len(rows) == len(leaves)
    assert list(rows) == leaves and rows == tuple(leaves) and tuple(leaves) == rows
    assert rows[1:3] == tuple(leaves[1:3])
    if leaves:
        assert rows[-1] == leaves[-1] and rows[0].encode() == leaves[0].encode()
        assert rows != tuple(leaves[:-1])
    with pytest.raises(IndexError):
        rows[len(leaves)]
    assert not rows.rows.flags.writeable


def test_account_leaf_rows_refuse_rows_of_another_shape_or_type() -> None:
    with pytest.raises(AttestationError, match="shape"):
        AccountLeafRows(np.zeros((2, 160), dtype=np.uint8))
    with pytest.raises(AttestationError, match="uint8"):
        AccountLeafRows(np.zeros((2, 288), dtype=np.int64))


def test_account_leaf_rows_check_the_leaf_a_row_decodes_to() -> None:
    """A row whose state nonce does not fit uint64 is no leaf: reading it raises."""
    row = bytearray(AccountLeaf(ALICE, 1, 0, 0, 0, 0, 0).encode())
    row[64 + 7] = 1  # a byte above the nonce's 64 bits
    rows = AccountLeafRows(np.frombuffer(bytes(row), dtype=np.uint8).reshape(1, 288))
    with pytest.raises(AttestationError, match="state_nonce"):
        rows[0]


def test_attestation_error_derives_from_keeper_error() -> None:
    assert issubclass(AttestationError, KeeperError)


# ------------------------------------------------------------------------------ merkle


def _string_leaf(s: str) -> bytes:
    return keccak(keccak(encode(["string"], [s])))


def test_merkle_root_matches_openzeppelin_standard_merkle_tree_golden() -> None:
    # @openzeppelin/merkle-tree src/standard.test.ts: StandardMerkleTree.of('abcdef', ['string'])
    tree = MerkleTree(_string_leaf(c) for c in "abcdef")
    assert tree.root.hex() == "6deb52b5da8fd108f79fab00341f38d2587896634c646ee52e49f845680a70c8"


@pytest.mark.parametrize("n", range(1, 10))
def test_merkle_every_proof_verifies_and_tampering_fails(n: int) -> None:
    leaves = [InstrumentLeaf(i + 1, 10**18 * (i + 1), i, i + 1) for i in range(n)]
    tree = MerkleTree(leaves)
    assert len(tree) == n
    for leaf in leaves:
        proof = tree.proof(leaf)
        assert MerkleTree.verify(tree.root, leaf, proof)
        other = InstrumentLeaf(leaf.instrument, leaf.mark + 1, 0, 0)
        assert not MerkleTree.verify(tree.root, other, proof)
        if proof:
            bad = (bytes(32),) + proof[1:]
            assert not MerkleTree.verify(tree.root, leaf, bad)


def test_merkle_single_leaf_root_is_the_leaf() -> None:
    leaf = InstrumentLeaf(1, 1, 1, 1)
    tree = MerkleTree([leaf])
    assert tree.root == leaf.hash() and tree.proof(leaf) == ()


def test_merkle_root_does_not_depend_on_leaf_order() -> None:
    leaves = [InstrumentLeaf(i, i, i, i) for i in range(1, 6)]
    roots = {MerkleTree(p).root for p in itertools.permutations(leaves)}
    assert len(roots) == 1


def test_merkle_rejects_empty_duplicate_and_unknown_leaf() -> None:
    with pytest.raises(AttestationError, match="empty"):
        MerkleTree([])
    leaf = InstrumentLeaf(1, 1, 1, 1)
    with pytest.raises(AttestationError, match="duplicate"):
        MerkleTree([leaf, leaf])
    with pytest.raises(AttestationError, match="not in the tree"):
        MerkleTree([leaf]).proof(InstrumentLeaf(2, 1, 1, 1))


# ------------------------------------------------------------------------------ EIP-712
# A hand-written EIP-712 encoder from the type strings of docs/protocol.md §4 and §7, to
# check that eth-account encodes the arrays of structs the way the vault does.

TOKEN_PRICE_T = "TokenPrice(address token,uint256 price,uint256 downShock,uint256 upShock)"
FUNDING_T = "FundingUpdate(uint32 instrument,int256 cumFunding)"
SETTLEMENT_T = "Settlement(uint32 instrument,uint256 price)"
EPOCH_T = (
    "Epoch(uint64 epoch,uint64 snapshotBlock,uint64 timestamp,bytes32 root,bytes32 inputsHash,"
    "uint64 configVersion,TokenPrice[] tokens,FundingUpdate[] funding,Settlement[] settlements)"
    + FUNDING_T
    + SETTLEMENT_T
    + TOKEN_PRICE_T
)
LEG_T = "Leg(uint32 instrument,int256 size,uint256 price)"
QUOTE_T = (
    "Quote(address maker,uint256 makerAccount,address taker,Leg[] legs,uint256 nonce,"
    "uint64 deadline)" + LEG_T
)
DOMAIN_T = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"


def _ref_domain_separator(chain_id: int, vault: str) -> bytes:
    return keccak(
        keccak(DOMAIN_T.encode())
        + keccak(b"PortfolioMarginVault")
        + keccak(b"1")
        + _word(chain_id)
        + _word(int(vault, 16))
    )


def _ref_epoch_hash(e: Epoch) -> bytes:
    tokens = b"".join(
        keccak(
            keccak(TOKEN_PRICE_T.encode())
            + _word(int(t.token, 16))
            + _word(t.price)
            + _word(t.down_shock)
            + _word(t.up_shock)
        )
        for t in e.tokens
    )
    funding = b"".join(
        keccak(keccak(FUNDING_T.encode()) + _word(f.instrument) + _word(f.cum_funding))
        for f in e.funding
    )
    settlements = b"".join(
        keccak(keccak(SETTLEMENT_T.encode()) + _word(s.instrument) + _word(s.price))
        for s in e.settlements
    )
    struct = keccak(
        keccak(EPOCH_T.encode())
        + _word(e.epoch)
        + _word(e.snapshot_block)
        + _word(e.timestamp)
        + e.root
        + e.inputs_hash
        + _word(e.config_version)
        + keccak(tokens)
        + keccak(funding)
        + keccak(settlements)
    )
    return keccak(b"\x19\x01" + _ref_domain_separator(31337, VAULT) + struct)


def _ref_quote_hash(q: Quote) -> bytes:
    legs = b"".join(
        keccak(keccak(LEG_T.encode()) + _word(g.instrument) + _word(g.size) + _word(g.price))
        for g in q.legs
    )
    struct = keccak(
        keccak(QUOTE_T.encode())
        + _word(int(q.maker, 16))
        + _word(q.maker_account)
        + _word(int(q.taker, 16))
        + keccak(legs)
        + _word(q.nonce)
        + _word(q.deadline)
    )
    return keccak(b"\x19\x01" + _ref_domain_separator(31337, VAULT) + struct)


EPOCH = Epoch(
    epoch=3,
    snapshot_block=120,
    timestamp=1_700_000_000,
    root=keccak(b"root"),
    config_version=2,
    tokens=(
        TokenPrice("0x" + "11" * 20, 3000 * 10**18, 15 * 10**16, 20 * 10**16),
        TokenPrice("0x" + "22" * 20, 1 * 10**18, 2 * 10**16, 2 * 10**16),
    ),
    funding=(FundingUpdate(1, -12 * 10**15), FundingUpdate(3, 5)),
    settlements=(Settlement(2, 2950 * 10**18),),
)
QUOTE = Quote(
    maker=KEYS[0].address,
    maker_account=3,
    taker=ZERO_ADDRESS,
    legs=(Leg(1, -(10**18), 3000 * 10**18), Leg(2, 2 * 10**18, 120 * 10**18)),
    nonce=42,
    deadline=1_700_000_600,
)


def test_domain_separator_matches_reference() -> None:
    assert DOMAIN.separator() == _ref_domain_separator(31337, VAULT)


def test_epoch_digest_matches_hand_written_eip712() -> None:
    assert epoch_digest(EPOCH, DOMAIN) == _ref_epoch_hash(EPOCH)


def test_epoch_digest_with_empty_arrays_matches_reference() -> None:
    empty = Epoch(1, 0, 0, bytes(32), 1)
    assert epoch_digest(empty, DOMAIN) == _ref_epoch_hash(empty)


def test_quote_digest_matches_hand_written_eip712() -> None:
    assert quote_digest(QUOTE, DOMAIN) == _ref_quote_hash(QUOTE)


def test_digest_is_bound_to_chain_and_vault() -> None:
    other_chain = Domain(chain_id=1, verifying_contract=VAULT)
    other_vault = Domain(chain_id=31337, verifying_contract="0x" + "ab" * 20)
    d = epoch_digest(EPOCH, DOMAIN)
    assert d != epoch_digest(EPOCH, other_chain) and d != epoch_digest(EPOCH, other_vault)


def test_sign_epoch_sorts_by_signer_address_and_recovers() -> None:
    sigs = sign_epoch(EPOCH, [k.key for k in reversed(KEYS)], DOMAIN)
    digest = epoch_digest(EPOCH, DOMAIN)
    signers = [recover_signer(digest, s) for s in sigs]
    assert signers == sorted((k.address for k in KEYS), key=lambda a: int(a, 16))
    assert all(len(s) == 65 and s[64] in (27, 28) for s in sigs)


def test_sign_epoch_refuses_duplicate_key() -> None:
    with pytest.raises(AttestationError, match="duplicate"):
        sign_epoch(EPOCH, [KEYS[0], KEYS[0].key], DOMAIN)


def test_sign_quote_recovers_maker_and_refuses_other_key() -> None:
    sig = sign_quote(QUOTE, KEYS[0], DOMAIN)
    assert recover_signer(quote_digest(QUOTE, DOMAIN), sig) == KEYS[0].address
    with pytest.raises(AttestationError, match="cannot sign"):
        sign_quote(QUOTE, KEYS[1], DOMAIN)


def test_to_abi_orders_fields_as_the_solidity_structs() -> None:
    assert EPOCH.to_abi()[:6] == (3, 120, 1_700_000_000, keccak(b"root"), bytes(32), 2)
    assert EPOCH.to_abi()[6][0] == EPOCH.tokens[0].to_abi()
    assert QUOTE.to_abi()[1] == 3 and QUOTE.to_abi()[2] == ZERO_ADDRESS
    assert QUOTE.to_abi()[3][0] == (
        1,
        -(10**18),
        3000 * 10**18,
    )
    leaf = AccountLeaf(ALICE, 1, 2, 3, 4, 5, 6)
    assert leaf.to_abi() == (ALICE, 1, 2, 3, 4, 5, 6, bytes(32))
