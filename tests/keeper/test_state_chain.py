"""keeper/state_chain.py: the shared vectors (the contract checks the same file), and the
event rule that rebuilds the deltas with their old values from the running state."""

from __future__ import annotations

import json

from eth_utils.crypto import keccak

from keeper.state_chain import (
    BOUNDS,
    CASH,
    COLLATERAL,
    FUNDING_APPLIED_TOPIC,
    POSITION,
    ROUNDING_LO,
    CommittedState,
    StateChainBook,
    StateDelta,
    hash_state,
    seq_of,
    step,
)
from risk_engine.units import WAD
from scripts.gen_vectors import VECTORS_DIR

ACCOUNT = "0x" + keccak(text="AccountUpdated(uint256,int256,int256,int256,uint64)").hex()
POSITION_T = "0x" + keccak(text="PositionUpdated(uint256,uint32,int256,int256)").hex()
COLLATERAL_T = "0x" + keccak(text="CollateralUpdated(uint256,address,uint256)").hex()
TOKEN = "0x00000000000000000000000000000000000000aa"


def _w(x: int) -> str:
    return f"{x % 2**256:064x}"


def _data(*xs: int) -> str:
    return "0x" + "".join(_w(x) for x in xs)


def _topic(x: int | str) -> str:
    return "0x" + (_w(x) if isinstance(x, int) else x[2:].rjust(64, "0"))


def test_steps_and_state_hashes_match_the_shared_vectors() -> None:
    v = json.loads((VECTORS_DIR / "state_chain.json").read_text())
    word = bytes(32)
    for i, s in enumerate(v["steps"]):
        d = StateDelta(
            s["kind"],
            int(s["key"]),
            int(s["oldA"]),
            int(s["oldB"]),
            int(s["newA"]),
            int(s["newB"]),
        )
        word = step(word, d)
        assert "0x" + word.hex() == s["word"]
        assert seq_of(word) == i + 1
    for s in v["states"]:
        st = CommittedState(
            int(s["cash"]),
            tuple(
                (p["instrument"], int(p["size"]), int(p["fundingIndex"])) for p in s["positions"]
            ),
            tuple((c["token"], int(c["amount"])) for c in s["collateral"]),
            int(s["cumLo"]),
            int(s["cumHi"]),
        )
        assert "0x" + hash_state(st).hex() == s["hash"]


def test_events_give_deltas_with_old_values_from_the_running_state() -> None:
    b = StateChainBook()
    acct = _topic(5)
    assert b.apply_event([COLLATERAL_T, acct, _topic(TOKEN)], _data(3 * WAD)) == (
        StateDelta(COLLATERAL, int(TOKEN, 16), 0, 0, 3 * WAD, 0),
    )
    # cash first, then the bounds, each only when it changed
    assert b.apply_event([ACCOUNT, acct], _data(0, 1, 2, 0)) == (StateDelta(BOUNDS, 0, 0, 0, 1, 2),)
    assert b.apply_event([ACCOUNT, acct], _data(0, 1, 2, 0)) == ()
    assert b.apply_event([ACCOUNT, acct], _data(100 * WAD, 1, 2, 0)) == (
        StateDelta(CASH, 0, 0, 0, 100 * WAD, 0),
    )
    assert b.apply_event([ACCOUNT, acct], _data(90 * WAD, -4, 7, 0)) == (
        StateDelta(CASH, 0, 100 * WAD, 0, 90 * WAD, 0),
        StateDelta(BOUNDS, 0, 1, 2, -4, 7),
    )
    # a position opens from (0, 0); funding is cash, the 1-wei rounding of cumLo, then the
    # index; closing is (0, 0)
    assert b.apply_event([POSITION_T, acct, _topic(7)], _data(-2 * WAD, 4)) == (
        StateDelta(POSITION, 7, 0, 0, -2 * WAD, 4),
    )
    assert b.apply_event([FUNDING_APPLIED_TOPIC, acct, _topic(7)], _data(-WAD, 9)) == (
        StateDelta(CASH, 0, 90 * WAD, 0, 91 * WAD, 0),
        StateDelta(BOUNDS, 0, -4, 7, -4 + ROUNDING_LO, 7),
    )
    assert b.apply_event([POSITION_T, acct, _topic(7)], _data(-2 * WAD, 9)) == (
        StateDelta(POSITION, 7, -2 * WAD, 4, -2 * WAD, 9),
    )
    # the AccountUpdated after funding shows the cash and bounds already counted: no delta
    assert b.apply_event([ACCOUNT, acct], _data(91 * WAD, -5, 7, 0)) == ()
    assert b.state() == CommittedState(91 * WAD, ((7, -2 * WAD, 9),), ((TOKEN, 3 * WAD),), -5, 7)
    seq, chain, older = b.mark()
    assert seq == b.seq == 9 and b.deltas == []
    assert b.apply_event([POSITION_T, acct, _topic(7)], _data(0, 9)) == (
        StateDelta(POSITION, 7, -2 * WAD, 9, 0, 0),
    )
    assert b.state().positions == () and older.positions == ((7, -2 * WAD, 9),)
    assert chain != bytes(24)
