"""The vault's state chain off chain (docs/protocol.md §9), exactly as
``contracts/libraries/StateChain.sol``.

Every change of a subaccount's cash, of one of its positions (size, funding index), of one
of its collateral balances or of its running bounds (``cumLo``, ``cumHi``) is a
:class:`StateDelta` ``(kind, key, old, new)``; the vault folds
each into the subaccount's chain word, one storage word: the high 24 bytes a hash chain, the
low 8 bytes the number of deltas so far (the state sequence number)::

    word' = keccak256(word ‖ kind ‖ key ‖ oldA ‖ oldB ‖ newA ‖ newB)[:24] ‖ uint64(seq(word) + 1)

(seven 32-byte words, integers two's complement). :func:`hash_state` is H(S), the hash an
ACCOUNT leaf will commit; :class:`StateChainBook` rebuilds one subaccount's chain from the
vault's events, taking each delta's old value from its own running state:

- ``FundingApplied(account, instrument, payment, index)``: a cash delta ``cash -> cash -
  payment``, then a bounds delta ``cumLo -> cumLo + ROUNDING_LO`` (the 1-wei rounding; the
  ``PositionUpdated`` that follows is the position's delta);
- ``PositionUpdated(account, instrument, size, index)``: a position delta, a closed position
  being ``(0, 0)``;
- ``CollateralUpdated(account, token, balance)``: a collateral delta;
- ``AccountUpdated(account, cash, cumLo, cumHi, ...)``: a cash delta when ``cash`` differs
  from the running cash, then a bounds delta when ``(cumLo, cumHi)`` differs from the running
  bounds (every other change of either is shown first by one of these).

The vault commits the deltas in this order (``VaultBase._commit`` sits next to each event), so
the same log gives the same chain. The funding index of a position that is not open is not
part of the state and moves without an event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

__all__ = [
    "CASH",
    "BOUNDS",
    "COLLATERAL",
    "FUNDING_APPLIED_TOPIC",
    "POSITION",
    "ROUNDING_LO",
    "STATE_CHAIN_TOPICS",
    "books_from_logs",
    "deltas_of_event",
    "CommittedState",
    "StateChainBook",
    "StateDelta",
    "chain_of",
    "hash_state",
    "seq_of",
    "step",
    "word_of",
]

CASH = 1  # key 0, value (cash, 0)
POSITION = 2  # key instrument id, value (size, funding index); (0, 0) when closed
COLLATERAL = 3  # key uint160(token), value (balance, 0)
BOUNDS = 4  # key 0, value (cumLo, cumHi)
#: What the vault adds to cumLo when it applies funding or settles an option
#: (``MarginBounds.roundingLo``).
ROUNDING_LO = -1

_SEQ_MASK = (1 << 64) - 1
_WORD = 1 << 256

_ACCOUNT_TOPIC = "0x" + keccak(text="AccountUpdated(uint256,int256,int256,int256,uint64)").hex()
_POSITION_TOPIC = "0x" + keccak(text="PositionUpdated(uint256,uint32,int256,int256)").hex()
_COLLATERAL_TOPIC = "0x" + keccak(text="CollateralUpdated(uint256,address,uint256)").hex()
FUNDING_APPLIED_TOPIC = "0x" + keccak(text="FundingApplied(uint256,uint32,int256,int256)").hex()
#: The events a state chain is rebuilt from (topic 1 is the subaccount in each).
STATE_CHAIN_TOPICS = (_ACCOUNT_TOPIC, _POSITION_TOPIC, _COLLATERAL_TOPIC, FUNDING_APPLIED_TOPIC)


def _word(x: int) -> bytes:
    """One 32-byte word: ``x`` two's complement (int256 or uint256)."""
    return (x % _WORD).to_bytes(32, "big")


def _signed(word: str) -> int:
    v = int(word, 16)
    return v - _WORD if v >> 255 else v


@dataclass(frozen=True)
class StateDelta:
    """One state change as the vault folds it (``IMarginVault.StateDelta``)."""

    kind: int
    key: int
    old_a: int
    old_b: int
    new_a: int
    new_b: int

    def to_abi(self) -> tuple[int, int, int, int, int, int]:
        return (self.kind, self.key, self.old_a, self.old_b, self.new_a, self.new_b)


@dataclass(frozen=True)
class CommittedState:
    """A subaccount's state in canonical order (``IMarginVault.CommittedState``):
    ``positions`` ``(instrument, size, funding_index)`` by ascending instrument, sizes != 0;
    ``collateral`` ``(token, amount)`` by ascending token address, amounts != 0. Cash and the
    funding index WAD, amounts in token decimals; ``token`` a checksummed or lowercase
    address; ``cum_lo``/``cum_hi`` the running bounds (WAD USD; last here, first after the cash
    in the ABI and in H(S))."""

    cash: int
    positions: tuple[tuple[int, int, int], ...] = ()
    collateral: tuple[tuple[str, int], ...] = ()
    cum_lo: int = 0
    cum_hi: int = 0

    def to_abi(
        self,
    ) -> tuple[int, int, int, list[tuple[int, int, int]], list[tuple[Any, int]]]:
        return (
            self.cash,
            self.cum_lo,
            self.cum_hi,
            list(self.positions),
            [(to_checksum_address(t), a) for t, a in self.collateral],
        )


def word_of(chain: bytes, seq: int) -> bytes:
    """The chain word of a 24-byte ``chain`` at sequence number ``seq``."""
    return bytes(chain[:24]) + seq.to_bytes(8, "big")


def seq_of(word: bytes) -> int:
    return int.from_bytes(word[24:], "big")


def chain_of(word: bytes) -> bytes:
    return bytes(word[:24])


def step(word: bytes, d: StateDelta) -> bytes:
    """The chain word after ``d`` (``StateChain.step``)."""
    h = keccak(
        bytes(word)
        + _word(d.kind)
        + _word(d.key)
        + _word(d.old_a)
        + _word(d.old_b)
        + _word(d.new_a)
        + _word(d.new_b)
    )
    return word_of(h, seq_of(word) + 1)


def hash_state(s: CommittedState) -> bytes:
    """H(S) = keccak256(cash ‖ cumLo ‖ cumHi ‖ P ‖ (instrument ‖ size ‖ index) x P ‖ K ‖
    (token ‖ amount) x K), each a 32-byte word (``StateChain.hashState``)."""
    parts = [_word(s.cash), _word(s.cum_lo), _word(s.cum_hi), _word(len(s.positions))]
    for instrument, size, index in s.positions:
        parts += [_word(instrument), _word(size), _word(index)]
    parts.append(_word(len(s.collateral)))
    for token, amount in s.collateral:
        parts += [_word(int(token, 16)), _word(amount)]
    return keccak(b"".join(parts))


@dataclass
class StateChainBook:
    """One subaccount's state and chain word as the events left them (mutable), with the
    deltas since ``mark`` (for a proof of the state at the mark).

    ``positions``: instrument -> ``(size, funding_index)`` of the open ones; ``collateral``:
    lowercase token -> balance, non-zero only.
    """

    word: bytes = bytes(32)
    cash: int = 0
    cum_lo: int = 0
    cum_hi: int = 0
    positions: dict[int, tuple[int, int]] = field(default_factory=dict)
    collateral: dict[str, int] = field(default_factory=dict)
    deltas: list[StateDelta] = field(default_factory=list)

    @property
    def seq(self) -> int:
        return seq_of(self.word)

    def state(self) -> CommittedState:
        """The state now, canonical."""
        return CommittedState(
            self.cash,
            tuple((i, s, f) for i, (s, f) in sorted(self.positions.items())),
            tuple(sorted(self.collateral.items(), key=lambda kv: int(kv[0], 16))),
            self.cum_lo,
            self.cum_hi,
        )

    def apply(self, d: StateDelta) -> None:
        """Fold ``d`` into the chain and the running state."""
        self.word = step(self.word, d)
        self.deltas.append(d)
        if d.kind == CASH:
            self.cash = d.new_a
        elif d.kind == BOUNDS:
            self.cum_lo, self.cum_hi = d.new_a, d.new_b
        elif d.kind == POSITION:
            if d.new_a == 0:
                self.positions.pop(d.key, None)
            else:
                self.positions[d.key] = (d.new_a, d.new_b)
        else:
            token = f"0x{d.key:040x}"
            if d.new_a == 0:
                self.collateral.pop(token, None)
            else:
                self.collateral[token] = d.new_a

    def deltas_of(self, topics: Sequence[str], data: str) -> tuple[StateDelta, ...]:
        """The deltas one vault event (raw ``eth_getLogs`` topics and data, hex strings) of
        this subaccount makes from the running state, in order, not applied (none for an
        event that changes no state)."""
        return deltas_of_event(
            self.cash,
            (self.cum_lo, self.cum_hi),
            lambda i: self.positions.get(i, (0, 0)),
            lambda t: self.collateral.get(t, 0),
            topics,
            data,
        )

    def apply_event(self, topics: Sequence[str], data: str) -> tuple[StateDelta, ...]:
        """Apply one vault event (raw topics and data) of this subaccount; returns the deltas
        it makes, in order (:meth:`deltas_of`)."""
        ds = self.deltas_of(topics, data)
        for d in ds:
            self.apply(d)
        return ds

    def mark(self) -> tuple[int, bytes, CommittedState]:
        """Forget the deltas so far; returns ``(seq, chain, state)`` now, the start of the
        next proof."""
        self.deltas = []
        return self.seq, chain_of(self.word), self.state()


def deltas_of_event(
    cash: int,
    bounds: tuple[int, int],
    position: Callable[[int], tuple[int, int]],
    balance: Callable[[str], int],
    topics: Sequence[str],
    data: str,
) -> tuple[StateDelta, ...]:
    """The deltas one vault event (raw topics and data, hex strings) makes, in the vault's
    order, their old values taken from the running state: ``cash``, ``bounds`` ``(cumLo,
    cumHi)``, ``position(instrument)`` (``(0, 0)`` when not open) and ``balance(lowercase
    token)``. Empty for an event that changes no state."""
    words = [data[2 + 64 * i : 66 + 64 * i] for i in range((len(data) - 2) // 64)]
    t = topics[0]
    lo, hi = bounds
    if t == _ACCOUNT_TOPIC:
        new_cash, new_lo, new_hi = (_signed(w) for w in words[:3])
        out: list[StateDelta] = []
        if new_cash != cash:
            out.append(StateDelta(CASH, 0, cash, 0, new_cash, 0))
        if (new_lo, new_hi) != (lo, hi):
            out.append(StateDelta(BOUNDS, 0, lo, hi, new_lo, new_hi))
        return tuple(out)
    if t == FUNDING_APPLIED_TOPIC:
        return (
            StateDelta(CASH, 0, cash, 0, cash - _signed(words[0]), 0),
            StateDelta(BOUNDS, 0, lo, hi, lo + ROUNDING_LO, hi),
        )
    if t == _POSITION_TOPIC:
        instrument = int(topics[2], 16)
        size, index = _signed(words[0]), _signed(words[1])
        d = StateDelta(POSITION, instrument, *position(instrument), size, index if size else 0)
        return (d,)
    if t == _COLLATERAL_TOPIC:
        token = "0x" + topics[2][-40:].lower()
        return (StateDelta(COLLATERAL, int(token, 16), balance(token), 0, int(words[0], 16), 0),)
    return ()


def books_from_logs(entries: Iterable[dict[str, Any]]) -> dict[int, StateChainBook]:
    """Every subaccount's book rebuilt from the vault's logs since its deployment (raw
    ``eth_getLogs`` entries in chain order; entries of other events are skipped)."""
    books: dict[int, StateChainBook] = {}
    for e in entries:
        topics = [t if isinstance(t, str) else "0x" + bytes(t).hex() for t in e["topics"]]
        if topics[0] not in STATE_CHAIN_TOPICS:
            continue
        data = e["data"] if isinstance(e["data"], str) else "0x" + bytes(e["data"]).hex()
        books.setdefault(int(topics[1], 16), StateChainBook()).apply_event(topics, data)
    return books
