"""The wire codec of keeper.attestation: the one JSON shape of leaves, proofs and headers.

The literal shapes below are what the keeper writes today (store, epoch files, the proof
API, signer requests); readers take ints as ints or as the decimal strings of the store's
``to_dict`` (JavaScript-safe).
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from keeper.attestation import (
    AccountLeaf,
    InstrumentLeaf,
    InstrumentProof,
    LeafRecord,
    MarginProof,
    MerkleTree,
    proof_from_json,
    proof_to_json,
)
from keeper.eip712 import Epoch, FundingUpdate, Settlement, TokenPrice
from keeper.store import Store
from risk_engine.units import WAD
from scripts.gen_vectors import VECTORS_DIR

ALICE = 0xA11CE  # a subaccount id
WETH = "0x0000000000000000000000000000000000000001"
INT256 = st.integers(-(2**255), 2**255 - 1)
UINT256 = st.integers(0, 2**256 - 1)
UINT64 = st.integers(0, 2**64 - 1)
UINT32 = st.integers(0, 2**32 - 1)
HASH = st.binary(min_size=32, max_size=32)
VECTORS = VECTORS_DIR


def _strings(value: object) -> object:
    """Ints as decimal strings, as the store's ``to_dict`` serves them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return {k: _strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings(v) for v in value]
    return value


HEADER = Epoch(
    epoch=7,
    snapshot_block=123,
    timestamp=1_800_000_000,
    root=bytes(range(32)),
    config_version=2,
    tokens=(TokenPrice(WETH, 3_000 * WAD, WAD // 5, WAD // 4),),
    funding=(FundingUpdate(1, -5 * 10**15),),
    settlements=(Settlement(3, 2_900 * WAD),),
)


# ------------------------------------------------------------------------------ shapes


def test_account_leaf_fields_are_the_protocol_names_with_ints() -> None:
    word = bytes(range(32))
    leaf = AccountLeaf(ALICE, 3, -5 * WAD, 7 * WAD, -WAD, 2 * WAD, WAD, word)
    assert leaf.to_json() == {
        "account": ALICE,
        "stateNonce": 3,
        "cumLo": -5 * WAD,
        "cumHi": 7 * WAD,
        "equity": -WAD,
        "im": 2 * WAD,
        "mm": WAD,
        "stateWord": "0x" + word.hex(),
    }
    assert AccountLeaf.from_json(leaf.to_json()) == leaf


def test_instrument_leaf_fields_are_the_protocol_names_with_ints() -> None:
    vector = bytes([7]) * 32
    leaf = InstrumentLeaf(4, 3_000 * WAD, 450 * WAD, 480 * WAD, -3, vector)
    assert leaf.to_json() == {
        "instrument": 4,
        "mark": 3_000 * WAD,
        "lossPerUnitLong": 450 * WAD,
        "lossPerUnitShort": 480 * WAD,
        "fundingIndex": -3,
        "vectorHash": "0x" + vector.hex(),
    }
    assert InstrumentLeaf.from_json(leaf.to_json()) == leaf


def test_proof_is_fields_and_lowercase_hex_siblings() -> None:
    leaf = InstrumentLeaf(4, 3_000 * WAD, 450 * WAD, 480 * WAD)
    wire = InstrumentProof(leaf, (b"\xab" * 32, b"\x01" * 32)).to_json()
    assert wire == {"fields": leaf.to_json(), "proof": ["0x" + "ab" * 32, "0x" + "01" * 32]}


def test_header_arrays_follow_the_abi_struct_order() -> None:
    assert HEADER.to_json() == {
        "epoch": 7,
        "snapshotBlock": 123,
        "timestamp": 1_800_000_000,
        "root": "0x" + bytes(range(32)).hex(),
        "inputsHash": "0x" + "00" * 32,
        "configVersion": 2,
        "tokens": [[WETH, 3_000 * WAD, WAD // 5, WAD // 4]],
        "funding": [[1, -5 * 10**15]],
        "settlements": [[3, 2_900 * WAD]],
    }


def test_vector_leaves_read_with_the_codec_and_write_back_the_same_fields() -> None:
    v = json.loads((VECTORS / "leaves.json").read_text())
    for kind, cls in (("account", AccountLeaf), ("instrument", InstrumentLeaf)):
        for x in v[kind]:
            leaf = cls.from_json(x)
            fields = {k: x[k] for k in leaf.to_json()}
            assert _strings(leaf.to_json()) == fields
            assert "0x" + leaf.hash().hex() == x["hash"]


# ------------------------------------------------------------------------------ round trips


@given(
    account=UINT256,
    nonce=UINT64,
    lo=INT256,
    hi=INT256,
    equity=INT256,
    im=UINT256,
    mm=UINT256,
    proof=st.lists(HASH, max_size=20),
)
def test_margin_proof_round_trips_with_ints_and_with_decimal_strings(
    account: int, nonce: int, lo: int, hi: int, equity: int, im: int, mm: int, proof: list[bytes]
) -> None:
    mp = MarginProof(AccountLeaf(account, nonce, lo, hi, equity, im, mm), tuple(proof))
    assert MarginProof.from_json(mp.to_json()) == mp
    assert MarginProof.from_json(_strings(mp.to_json())) == mp  # type: ignore[arg-type]
    assert MarginProof.from_json(json.loads(json.dumps(mp.to_json()))) == mp


@given(ins=UINT32, mark=UINT256, long=UINT256, short=UINT256, proof=st.lists(HASH, max_size=20))
def test_instrument_proof_round_trips_with_ints_and_with_decimal_strings(
    ins: int, mark: int, long: int, short: int, proof: list[bytes]
) -> None:
    ip = InstrumentProof(InstrumentLeaf(ins, mark, long, short), tuple(proof))
    assert InstrumentProof.from_json(ip.to_json()) == ip
    assert InstrumentProof.from_json(_strings(ip.to_json())) == ip  # type: ignore[arg-type]


@given(
    epoch=UINT64,
    block=UINT64,
    ts=UINT64,
    root=HASH,
    cv=UINT64,
    prices=st.lists(st.tuples(UINT256, UINT256, UINT256), max_size=4),
    funding=st.lists(st.tuples(UINT32, INT256), max_size=4),
    settlements=st.lists(st.tuples(UINT32, UINT256), max_size=4),
)
def test_header_round_trips_with_ints_and_with_decimal_strings(
    epoch: int,
    block: int,
    ts: int,
    root: bytes,
    cv: int,
    prices: list[tuple[int, int, int]],
    funding: list[tuple[int, int]],
    settlements: list[tuple[int, int]],
) -> None:
    h = Epoch(
        epoch,
        block,
        ts,
        root,
        cv,
        tuple(TokenPrice(WETH, p, d, u) for p, d, u in prices),
        tuple(FundingUpdate(i, f) for i, f in funding),
        tuple(Settlement(i, p) for i, p in settlements),
    )
    assert Epoch.from_json(h.to_json()) == h
    assert Epoch.from_json(_strings(h.to_json())) == h  # type: ignore[arg-type]


def test_header_reader_takes_a_root_without_0x() -> None:
    wire = HEADER.to_json()
    wire["root"] = wire["root"][2:]
    assert Epoch.from_json(wire) == HEADER


def test_proof_hex_round_trips() -> None:
    proof = (b"\x00" * 32, b"\xff" * 32)
    assert proof_to_json(proof) == ["0x" + "00" * 32, "0x" + "ff" * 32]
    assert proof_from_json(proof_to_json(proof)) == proof


# ------------------------------------------------------------------------------ store


def test_a_stored_leaf_record_and_header_read_back_through_the_epoch_file(tmp_path: Path) -> None:
    """What the pipeline writes (codec -> store -> leaf file, epoch file with the header;
    the API's leaf dict with decimal strings) reads back with the same codec into the
    proof the vault verifies."""
    leaves = [
        AccountLeaf(ALICE, 1, -WAD, 2 * WAD, 5 * WAD, WAD, WAD // 2),
        AccountLeaf(2, 0, 0, 0, 0, 0, 0),
        InstrumentLeaf(1, 3_000 * WAD, 300 * WAD, 310 * WAD),
    ]
    tree = MerkleTree(leaves)
    header = Epoch(1, 10, 100, tree.root, 1)
    with Store(tmp_path / "k.sqlite") as store:
        store.reserve_epoch(1, "0x" + tree.root.hex(), snapshot_block=10, timestamp=100)
        store.set_epoch_status(1, "built", header=header.to_json())
        records = []
        for leaf in leaves:
            if isinstance(leaf, AccountLeaf):
                wire = tree.margin_proof(leaf).to_json()
                kind, key = "account", str(leaf.account)
            else:
                wire = tree.instrument_proof(leaf).to_json()
                kind, key = "instrument", str(leaf.instrument)
            records.append((kind, key, wire, "0x" + leaf.hash().hex()))
        store.save_leaves(
            1, [LeafRecord(k, key, w["fields"], h, tuple(w["proof"])) for k, key, w, h in records]
        )
        path = store.write_epoch_file(1)
        served = [r.to_dict() for r in store.get_leaves(1)]
    doc = json.loads(path.read_text())
    assert Epoch.from_json(doc["header"]) == header
    assert doc["header"]["tokens"] == [] and doc["header"]["epoch"] == "1"
    by_key = {x["key"]: x for x in served}
    alice = MarginProof.from_json(by_key[str(ALICE)])
    assert alice == tree.margin_proof(leaves[0])
    assert MerkleTree.verify(header.root, alice.leaf, alice.proof)
    assert by_key[str(ALICE)]["fields"]["cumLo"] == str(-WAD)
    assert InstrumentProof.from_json(by_key["1"]) == tree.instrument_proof(leaves[2])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ empty


def test_empty_margin_proof_is_the_all_zero_leaf_without_siblings() -> None:
    assert MarginProof.empty() == MarginProof(AccountLeaf(0, 0, 0, 0, 0, 0, 0), ())
    mine = MarginProof.empty(ALICE)
    assert mine.leaf.account == ALICE and mine.proof == ()
    assert mine.to_abi() == ((ALICE, 0, 0, 0, 0, 0, 0, bytes(32)), [])
