"""Write the shared test vectors ``tests/vectors/*.json`` (deterministic).

Both sides check the same files: pytest (``tests/vault/test_vectors.py``) recomputes every
output with ``keeper``; forge (``tests/contracts/unit/Vectors.t.sol``) with the vault and its
libraries. Every integer is written as a decimal string (JSON numbers lose precision past
2**53, and forge's ``vm.parseJsonUint``/``parseJsonInt`` read strings), bytes as 0x-hex.

Run: ``python -m scripts.gen_vectors`` (``--check`` exits 1 if the files would change).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from keeper import bounds
from keeper.attestation import ZERO_ADDRESS, AccountLeaf, InstrumentLeaf, MerkleTree
from keeper.eip712 import (
    Domain,
    Epoch,
    FundingUpdate,
    Leg,
    Quote,
    Settlement,
    TokenPrice,
    epoch_digest,
    epoch_struct_hash,
    quote_digest,
    quote_struct_hash,
    sign_epoch,
    sign_quote,
)
from keeper.state_chain import CommittedState, StateDelta, hash_state, step
from risk_engine.units import WAD
from scripts.toolchain.paths import REPO_ROOT

VECTORS_DIR = REPO_ROOT / "tests" / "vectors"
CHAIN_ID = 31337
#: The forge test deploys the vault at this address (``deployCodeTo``) to check digests.
VAULT = "0x00000000000000000000000000000000000fA017"
UINT64_MAX = 2**64 - 1
INT256_MIN = -(2**255)
INT256_MAX = 2**255 - 1
UINT256_MAX = 2**256 - 1


def _key(label: str) -> bytes:
    return keccak(text=f"portfolio-margin vector key {label}")


def _addr(label: str) -> str:
    acct: LocalAccount = Account.from_key(_key(label))
    return acct.address


def _s(v: int) -> str:
    return str(v)


def _h(b: bytes) -> str:
    return "0x" + b.hex()


# ------------------------------------------------------------------------------ leaves

#: Subaccount ids: the first, an ordinary one, the largest, and 0 (no subaccount has it,
#: but the encoding must not care).
ACCOUNT_LEAVES = [
    AccountLeaf(1, 0, 0, 0, 10_000 * WAD, 1_500 * WAD, 1_200 * WAD),
    AccountLeaf(
        7_042, 7, -3 * WAD, 25 * WAD, -12_345_678_901_234_567_890, 0, 0, keccak(text="word-7042")
    ),
    AccountLeaf(
        UINT256_MAX, UINT64_MAX, INT256_MIN, INT256_MAX, INT256_MIN, UINT256_MAX, 1, b"\xff" * 32
    ),
    AccountLeaf(0, 1, -1, 1, 1, 1, 0, bytes(24) + (5).to_bytes(8, "big")),
]
INSTRUMENT_LEAVES = [
    InstrumentLeaf(1, 60_000 * WAD, 9_000 * WAD, 9_600 * WAD, -7 * WAD, keccak(text="vec-1")),
    InstrumentLeaf(2, 3_000 * WAD, 540 * WAD, 600 * WAD),
    InstrumentLeaf(3, 125_500_000_000_000_001, 125_500_000_000_000_001, 4_100 * WAD, INT256_MAX),
    InstrumentLeaf(2**32 - 1, 0, 0, UINT256_MAX, INT256_MIN, b"\xff" * 32),
]


def _wire(leaf: AccountLeaf | InstrumentLeaf) -> dict[str, str]:
    """The leaf's wire fields (``to_json``) with every int as a decimal string."""
    return {k: v if isinstance(v, str) else _s(v) for k, v in leaf.to_json().items()}


def leaves_vectors() -> dict[str, Any]:
    return {
        "nAccount": _s(len(ACCOUNT_LEAVES)),
        "nInstrument": _s(len(INSTRUMENT_LEAVES)),
        "account": [
            {**_wire(x), "encoded": _h(x.encode()), "hash": _h(x.hash())} for x in ACCOUNT_LEAVES
        ],
        "instrument": [
            {**_wire(x), "encoded": _h(x.encode()), "hash": _h(x.hash())} for x in INSTRUMENT_LEAVES
        ],
    }


# ------------------------------------------------------------------------------ merkle


def merkle_vectors() -> dict[str, Any]:
    all_leaves: list[AccountLeaf | InstrumentLeaf] = [*ACCOUNT_LEAVES, *INSTRUMENT_LEAVES]
    cases = []
    for n in (1, 2, 3, 4, 5, 7, 8):
        chosen = all_leaves[:n]
        tree = MerkleTree(chosen)
        hashes = [x.hash() for x in chosen]
        cases.append(
            {
                "n": _s(n),
                "leaves": [_h(h) for h in hashes],
                "root": _h(tree.root),
                "proofs": [[_h(p) for p in tree.proof(h)] for h in hashes],
            }
        )
    return {"nCases": _s(len(cases)), "cases": cases}


# ------------------------------------------------------------------------------ EIP-712

TOKENS = [_addr("token-weth"), _addr("token-wbtc")]
EPOCHS = [
    Epoch(1, 10, 1_700_000_000, keccak(text="root-1"), 1),
    Epoch(
        epoch=42,
        snapshot_block=123_456,
        timestamp=1_700_003_600,
        root=keccak(text="root-42"),
        config_version=3,
        tokens=(
            TokenPrice(TOKENS[0], 3_000 * WAD, 15 * 10**16, 20 * 10**16),
            TokenPrice(TOKENS[1], 60_000 * WAD, 12 * 10**16, 15 * 10**16),
        ),
        funding=(FundingUpdate(1, -1_234_567_890_123), FundingUpdate(4, 5 * WAD)),
        settlements=(Settlement(2, 2_950 * WAD), Settlement(3, 1)),
        inputs_hash=keccak(text="inputs-42"),
    ),
    Epoch(
        UINT64_MAX,
        UINT64_MAX,
        UINT64_MAX,
        b"\xff" * 32,
        UINT64_MAX,
        tokens=(TokenPrice(TOKENS[0], UINT256_MAX, WAD, UINT256_MAX),),
        funding=(FundingUpdate(2**32 - 1, INT256_MIN),),
        inputs_hash=b"\xff" * 32,
    ),
]
SIGNER_LABELS = ("signer-0", "signer-1", "signer-2")
QUOTES = [
    Quote(_addr("maker"), 1, ZERO_ADDRESS, (Leg(1, WAD, 60_000 * WAD),), 0, 1_700_000_600),
    Quote(
        _addr("maker"),
        UINT256_MAX,
        _addr("taker"),
        (Leg(2, -2 * WAD, 120 * WAD), Leg(3, 2 * WAD, 95_500_000_000_000_000_000)),
        2**200 + 7,
        UINT64_MAX,
    ),
]


def _token_json(t: TokenPrice) -> dict[str, str]:
    return {
        "token": t.token,
        "price": _s(t.price),
        "downShock": _s(t.down_shock),
        "upShock": _s(t.up_shock),
    }


def eip712_vectors() -> dict[str, Any]:
    domain = Domain(CHAIN_ID, VAULT)
    signer_keys = [_key(label) for label in SIGNER_LABELS]
    signers = sorted((Account.from_key(k).address for k in signer_keys), key=lambda a: int(a, 16))
    epochs = []
    for e in EPOCHS:
        epochs.append(
            {
                "epoch": _s(e.epoch),
                "snapshotBlock": _s(e.snapshot_block),
                "timestamp": _s(e.timestamp),
                "root": _h(e.root),
                "inputsHash": _h(e.inputs_hash),
                "configVersion": _s(e.config_version),
                "nTokens": _s(len(e.tokens)),
                "tokens": [_token_json(t) for t in e.tokens],
                "nFunding": _s(len(e.funding)),
                "funding": [
                    {"instrument": _s(f.instrument), "cumFunding": _s(f.cum_funding)}
                    for f in e.funding
                ],
                "nSettlements": _s(len(e.settlements)),
                "settlements": [
                    {"instrument": _s(s.instrument), "price": _s(s.price)} for s in e.settlements
                ],
                "structHash": _h(epoch_struct_hash(e, domain)),
                "digest": _h(epoch_digest(e, domain)),
                "signatures": [_h(sig) for sig in sign_epoch(e, signer_keys, domain)],
            }
        )
    quotes = []
    for q in QUOTES:
        quotes.append(
            {
                "maker": q.maker,
                "makerAccount": _s(q.maker_account),
                "taker": q.taker,
                "nLegs": _s(len(q.legs)),
                "legs": [
                    {"instrument": _s(g.instrument), "size": _s(g.size), "price": _s(g.price)}
                    for g in q.legs
                ],
                "nonce": _s(q.nonce),
                "deadline": _s(q.deadline),
                "structHash": _h(quote_struct_hash(q, domain)),
                "digest": _h(quote_digest(q, domain)),
                "signature": _h(sign_quote(q, _key("maker"), domain)),
            }
        )
    return {
        "chainId": _s(CHAIN_ID),
        "vault": VAULT,
        "domainSeparator": _h(domain.separator()),
        "signers": signers,
        "nEpochs": _s(len(epochs)),
        "epochs": epochs,
        "nQuotes": _s(len(quotes)),
        "quotes": quotes,
    }


# ------------------------------------------------------------------------------ bounds


def bounds_vectors() -> dict[str, Any]:
    return bounds.vector_cases()


def state_chain_vectors() -> dict[str, Any]:
    """The state chain (docs/protocol.md §9): each delta with the chain word after it, from
    the word 0; and canonical states with H(S). Extremes of int256 and a high address."""
    token = "0xfffffffffffffffffffffffffffffffffffffffe"
    deltas = [
        StateDelta(1, 0, 0, 0, 100 * WAD, 0),
        StateDelta(3, int(token, 16), 0, 0, UINT256_MAX >> 1, 0),
        StateDelta(2, 7, 0, 0, -3 * WAD, 11 * WAD),
        StateDelta(2, 7, -3 * WAD, 11 * WAD, -3 * WAD, INT256_MIN),
        StateDelta(1, 0, 100 * WAD, 0, INT256_MIN, 0),
        StateDelta(2, 2**32 - 1, 0, 0, INT256_MAX, -1),
        StateDelta(2, 7, -3 * WAD, INT256_MIN, 0, 0),
        StateDelta(4, 0, 0, 0, -(10**36), 10**36),
        StateDelta(4, 0, -(10**36), 10**36, INT256_MIN, INT256_MAX),
    ]
    word = bytes(32)
    steps = []
    for d in deltas:
        word = step(word, d)
        steps.append(
            {
                "kind": d.kind,
                "key": _s(d.key),
                "oldA": _s(d.old_a),
                "oldB": _s(d.old_b),
                "newA": _s(d.new_a),
                "newB": _s(d.new_b),
                "word": _h(word),
            }
        )
    states = [
        CommittedState(0),
        CommittedState(
            INT256_MIN,
            ((1, WAD, -(5 * WAD)), (2**32 - 1, INT256_MAX, INT256_MIN)),
            (("0x0000000000000000000000000000000000000001", 1), (token, UINT256_MAX)),
            INT256_MAX,
            INT256_MIN,
        ),
        CommittedState(5 * WAD, (), (), -(10**36), 3),
    ]
    return {
        "steps": steps,
        "states": [
            {
                "cash": _s(st.cash),
                "cumLo": _s(st.cum_lo),
                "cumHi": _s(st.cum_hi),
                "positions": [
                    {"instrument": i, "size": _s(z), "fundingIndex": _s(f)}
                    for i, z, f in st.positions
                ],
                "collateral": [{"token": t, "amount": _s(a)} for t, a in st.collateral],
                "hash": _h(hash_state(st)),
            }
            for st in states
        ],
    }


GENERATORS = {
    "leaves.json": leaves_vectors,
    "merkle.json": merkle_vectors,
    "eip712.json": eip712_vectors,
    "bounds.json": bounds_vectors,
    "state_chain.json": state_chain_vectors,
}


def render() -> dict[str, str]:
    """File name -> exact file content."""
    return {
        name: json.dumps(gen(), indent=2, sort_keys=False) + "\n"
        for name, gen in GENERATORS.items()
    }


def write(out_dir: Path = VECTORS_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render().items():
        path = out_dir / name
        path.write_text(text)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = [
            n
            for n, t in render().items()
            if not (VECTORS_DIR / n).is_file() or (VECTORS_DIR / n).read_text() != t
        ]
        if stale:
            print(f"stale vectors: {', '.join(stale)}; run python -m scripts.gen_vectors")
            return 1
        print("vectors up to date")
        return 0
    for p in write():
        print(f"wrote {p.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
