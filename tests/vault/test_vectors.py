"""The Python side against the shared vectors (forge checks the Solidity side against the same
files in tests/contracts/unit/Vectors.t.sol). Expected values are read from the JSON, inputs
are re-encoded with keeper, so a change on either side breaks one of the two suites."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pytest

from keeper import bounds
from keeper.attestation import AccountLeaf, InstrumentLeaf, MerkleTree
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
    recover_signer,
)
from scripts import gen_vectors
from scripts.gen_vectors import VECTORS_DIR


def _load(name: str) -> Any:
    return json.loads((VECTORS_DIR / name).read_text())


def _b(h: str) -> bytes:
    return bytes.fromhex(h[2:])


def test_generation_is_deterministic_and_files_are_current() -> None:
    first, second = gen_vectors.render(), gen_vectors.render()
    assert first == second
    for name, text in first.items():
        assert (VECTORS_DIR / name).read_text() == text, f"{name} is stale: run gen_vectors"


def test_account_leaves() -> None:
    v = _load("leaves.json")
    assert int(v["nAccount"]) == len(v["account"]) >= 4
    for x in v["account"]:
        leaf = AccountLeaf.from_json(x)  # the wire fields, ints as decimal strings
        assert leaf.encode() == _b(x["encoded"]) and leaf.hash() == _b(x["hash"])


def test_instrument_leaves() -> None:
    v = _load("leaves.json")
    for x in v["instrument"]:
        leaf = InstrumentLeaf.from_json(x)
        assert leaf.encode() == _b(x["encoded"]) and leaf.hash() == _b(x["hash"])


def test_merkle_cases() -> None:
    v = _load("merkle.json")
    assert int(v["nCases"]) == len(v["cases"])
    for case in v["cases"]:
        leaves = [_b(h) for h in case["leaves"]]
        tree = MerkleTree(leaves)
        assert tree.root == _b(case["root"])
        for leaf, proof in zip(leaves, case["proofs"], strict=True):
            assert tree.proof(leaf) == tuple(_b(p) for p in proof)
            assert MerkleTree.verify(tree.root, leaf, [_b(p) for p in proof])


def _epoch(x: dict[str, Any]) -> Epoch:
    return Epoch(
        int(x["epoch"]),
        int(x["snapshotBlock"]),
        int(x["timestamp"]),
        _b(x["root"]),
        int(x["configVersion"]),
        tuple(
            TokenPrice(t["token"], int(t["price"]), int(t["downShock"]), int(t["upShock"]))
            for t in x["tokens"]
        ),
        tuple(FundingUpdate(int(f["instrument"]), int(f["cumFunding"])) for f in x["funding"]),
        tuple(Settlement(int(s["instrument"]), int(s["price"])) for s in x["settlements"]),
        _b(x["inputsHash"]),
    )


def test_eip712_epochs_and_signatures() -> None:
    v = _load("eip712.json")
    domain = Domain(int(v["chainId"]), v["vault"])
    assert domain.chain_id == 31337 and domain.separator() == _b(v["domainSeparator"])
    assert v["signers"] == sorted(v["signers"], key=lambda a: int(a, 16))
    for x in v["epochs"]:
        e = _epoch(x)
        digest = epoch_digest(e, domain)
        assert digest == _b(x["digest"]) and epoch_struct_hash(e, domain) == _b(x["structHash"])
        assert [recover_signer(digest, _b(s)) for s in x["signatures"]] == v["signers"]


def test_eip712_quotes() -> None:
    v = _load("eip712.json")
    domain = Domain(int(v["chainId"]), v["vault"])
    for x in v["quotes"]:
        q = Quote(
            x["maker"],
            int(x["makerAccount"]),
            x["taker"],
            tuple(Leg(int(g["instrument"]), int(g["size"]), int(g["price"])) for g in x["legs"]),
            int(x["nonce"]),
            int(x["deadline"]),
        )
        digest = quote_digest(q, domain)
        assert digest == _b(x["digest"])
        assert recover_signer(digest, _b(x["signature"])) == q.maker


def test_collateral_bounds() -> None:
    v = _load("bounds.json")
    assert int(v["UNBOUNDED"]) == bounds.UNBOUNDED
    for x in v["tokens"]:
        args = [int(x[k]) for k in ("amount", "price", "decimals", "downShock", "upShock")]
        d, w = bounds.deposit_bound(*args), bounds.withdraw_bound(*args)
        assert (d.lo, d.hi, w.lo, w.hi) == tuple(
            int(x[k]) for k in ("depositLo", "depositHi", "withdrawLo", "withdrawHi")
        )
        # the bound brackets the exact (rational) haircut value
        amount, price, dec, down, up = args
        exact = Fraction(amount * price, 10**dec)
        assert d.lo <= exact * Fraction(10**18 - down, 10**18)
        assert d.hi >= exact * Fraction(10**18 + up, 10**18)


def test_trade_bounds() -> None:
    v = _load("bounds.json")
    for x in v["trades"]:
        size, price, mark = int(x["size"]), int(x["price"]), int(x["mark"])
        ll, ls = int(x["lossPerUnitLong"]), int(x["lossPerUnitShort"])
        b = bounds.trade_bound(size, price, mark, ll, ls)
        assert (bounds.trade_cash(size, price), b.lo, b.hi) == (
            int(x["cash"]),
            int(x["lo"]),
            int(x["hi"]),
        )
        assert b.lo <= b.hi


def test_liquidation_cases() -> None:
    v = _load("bounds.json")
    scale = int(v["cashScale"])
    for x in v["liquidations"]:
        r = bounds.liquidation(
            equity=int(x["equity"]),
            mm=int(x["mm"]),
            leaf_cum_lo=int(x["leafCumLo"]),
            leaf_cum_hi=int(x["leafCumHi"]),
            cum_lo_now=int(x["cumLoNow"]),
            cum_hi_now=int(x["cumHiNow"]),
            liquidation_penalty=int(x["liquidationPenalty"]),
            insurance_share=int(x["insuranceShare"]),
            insurance_fund=int(x["insuranceFund"]),
        )
        got = (r.eq_lo, r.eq_hi, r.penalty, r.pay, r.fee, r.covered, r.uncovered, r.net_cash_paid)
        keys = ("eqLo", "eqHi", "penalty", "pay", "fee", "covered", "uncovered", "netCashPaid")
        assert got == tuple(int(x[k]) for k in keys)
        im_lo = bounds.im_surplus_lo(
            int(x["equity"]), int(x["im"]), int(x["leafCumLo"]), int(x["cumLoNow"])
        )
        assert im_lo == int(x["imSurplusLoNow"])
        need6 = int(x["minDeposit6"])
        assert bounds.min_deposit6(r.net_cash_paid, im_lo, scale) == need6
        # the least deposit that leaves the subaccount at IM after paying: one unit less does not
        assert im_lo + need6 * scale - r.net_cash_paid >= 0
        assert need6 == 0 or im_lo + (need6 - 1) * scale - r.net_cash_paid < 0


def test_the_vector_cases_cover_each_side_of_the_capital_need() -> None:
    v = _load("bounds.json")
    scale = int(v["cashScale"])
    needs = [int(x["netCashPaid"]) - int(x["imSurplusLoNow"]) for x in v["liquidations"]]
    assert any(n <= 0 for n in needs)  # no deposit needed
    assert any(n > 0 and n % scale == 0 for n in needs)  # an exact number of token units
    assert any(n > 0 and n % scale != 0 for n in needs)  # rounded up to the next unit


@pytest.mark.parametrize(
    ("a", "b", "down", "up"),
    [(7, 3, 2, 3), (-7, 3, -3, -2), (0, 5, 0, 0), (10**18, 10**18, 1, 1), (-1, 10**18, -1, 0)],
)
def test_rounding_helpers_round_toward_the_named_side(a: int, b: int, down: int, up: int) -> None:
    assert bounds.div_down(a, b) == down and bounds.div_up(a, b) == up
