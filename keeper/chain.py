"""The keeper's view of the chain: contract handles, the event indexer and snapshots.

:class:`ChainAdapter` wraps one vault on one node (web3.py, HTTP):

- **binding** (:meth:`ChainAdapter.connect`): chain id, genesis hash and vault address are
  recorded in the store on first use and checked on every start; the vault must have code.
  A chain that was reset (Anvil restarted empty) raises
  :class:`~keeper.errors.ChainResetError` with what changed, instead of posting epochs over
  a chain the store does not describe.
- **indexer** (:meth:`ChainAdapter.index`): an account is a subaccount, a ``uint256`` id
  with an owner (docs/protocol.md §2). The vault emits
  ``SubaccountTransferred(account, from, to)`` on creation (``from = 0``) and on every
  change of owner (a transfer, a liquidation), so that one event gives the indexer every
  subaccount, its creation block and its owner; it is scanned from the deployment block
  up to ``head - confirmations``, incrementally, in block ranges. The indexer needs only
  the SET of subaccounts for the leaves (their state is read with ``accountStates`` at the
  snapshot block, exactly what the contract will judge); the owners are kept for the
  proof API's ``GET /accounts?owner=`` and written to the store. On start it rebuilds the
  index from the deployment block (cheap: one ``eth_getLogs`` per range, topics only).
  Each scan remembers the hash of the last block it read; if that hash changed (a reorg),
  the indexer walks back to the newest remembered block whose hash still matches (the
  safe block), forgets the subaccounts created and the owner changes seen after it, and
  re-reads from there; if none match, it rebuilds from the deployment block.
- **state from events** (docs/operations.md, "Account state from events"): the indexer
  also keeps every subaccount's state (cash, cumLo, cumHi, stateNonce, positions in the
  vault's order, collateral) in memory. The vault's ``AccountUpdated``,
  ``PositionUpdated`` and ``CollateralUpdated`` events carry the absolute values after
  each change (contracts/interfaces/Events.sol), so the state is applied from them
  exactly, without replaying the vault's math; the position list mirrors the vault's
  swap-and-pop (``VaultBase._setSize``). The state is seeded once by ``accountStates`` at
  the block the first scan ends at (startup, or a reorg below every checkpoint), and each
  scan writes a before-image of every account it changes into a journal, so a reorg
  restores the accounts to the safe block before re-reading from it. A snapshot at the
  indexed block then costs one dictionary lookup per account; only the accounts changed
  since the last epoch are re-frozen. :meth:`ChainAdapter.check_state` re-reads every
  account with ``accountStates``, counts the accounts whose memory differs, logs them and
  adopts the chain's state (the pipeline runs it every ``chain.state_check_epochs``).
- **snapshot** (:meth:`ChainAdapter.snapshot`): every known subaccount's state at one
  block (from memory when the index ends at that block, else ``accountStates`` in
  batches), plus the instruments, tokens, funding indices, settlement prices and the
  current epoch at that same block.

Every RPC call goes through :func:`keeper.retry.call_with_retry`: a node unreachable
for a few seconds is waited for (exponential backoff), longer raises
:class:`~keeper.errors.RpcUnavailableError` and the epoch job simply runs again at its
next tick.

Units are the chain's (docs/protocol.md §1): WAD ints, token balances in token decimals.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from eth_abi.abi import encode as abi_encode
from eth_typing import HexStr
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import BlockData, BlockParams, FilterParams, RPCEndpoint

from keeper.abi import erc20_abi, vault_abi
from keeper.errors import ChainCallError, ChainMismatchError, ChainResetError
from keeper.retry import RetryPolicy, call_with_retry
from keeper.state_chain import (
    FUNDING_APPLIED_TOPIC,
    ROUNDING_LO,
    CommittedState,
    deltas_of_event,
    step,
)
from keeper.store import Store, SubaccountRecord
from keeper.view_batch import ViewCall, ViewFunctions, read_batch
from risk_engine.units import WAD

__all__ = [
    "ACCOUNT_STATES_TYPE",
    "SUBACCOUNT_TRANSFERRED",
    "AccountState",
    "ChainAdapter",
    "ChainSnapshot",
    "EpochOnChain",
    "InstrumentInfo",
    "Position",
    "TokenInfo",
    "decode_account_states",
    "instrument_name",
    "load_deployment",
]

log = logging.getLogger("keeper.chain")
T = TypeVar("T")

#: The one event the indexer reads: topics ``[sig, account, from, to]`` (``from = 0`` on
#: creation). Every subaccount is created by it before any other event names it.
SUBACCOUNT_TRANSFERRED = "SubaccountTransferred(uint256,address,address)"
_TRANSFER_TOPIC = "0x" + keccak(text=SUBACCOUNT_TRANSFERRED).hex()
_ACCOUNT_TOPIC = "0x" + keccak(text="AccountUpdated(uint256,int256,int256,int256,uint64)").hex()
_POSITION_TOPIC = "0x" + keccak(text="PositionUpdated(uint256,uint32,int256,int256)").hex()
_COLLATERAL_TOPIC = "0x" + keccak(text="CollateralUpdated(uint256,address,uint256)").hex()
#: Everything an account's state (and its state chain, ``FundingApplied`` for the order of
#: cash deltas) is applied from, in one ``eth_getLogs`` (chain order).
_STATE_TOPICS = [
    _TRANSFER_TOPIC,
    _ACCOUNT_TOPIC,
    _POSITION_TOPIC,
    _COLLATERAL_TOPIC,
    FUNDING_APPLIED_TOPIC,
]
_EPOCH_POSTED_TOPIC = HexStr(
    "0x" + keccak(text="EpochPosted(uint64,uint64,uint64,bytes32,uint64)").hex()
)

#: RPC retries of reads: a node gone for up to ~30 s is waited for.
DEFAULT_READ_RETRY = RetryPolicy(max_attempts=8, deadline_seconds=30.0)

_ACCOUNT_STATES_SELECTOR = keccak(text="accountStates(uint256[])")[:4]
ACCOUNT_STATES_TYPE = "(int256,uint64,int256,int256,uint32[],int256[],int256[],uint256[])[]"

#: Remembered (block, hash) checkpoints for reorg recovery; one per scan.
_CHECKPOINTS = 256
#: Scans whose account before-images are kept: a reorg deeper than these reseeds the state.
_JOURNAL_SCANS = 64


# --------------------------------------------------------------------------- records


def instrument_name(kind: int, underlying: str, strike: int, expiry: int) -> str:
    """``BTC-PERP`` or ``ETH-C-3800-20261225`` (strike WAD shown in whole USD, expiry date
    UTC): the one name of an instrument in ``pm``, the reports and the dashboard."""
    if kind == 0:
        return f"{underlying}-PERP"
    day = datetime.fromtimestamp(expiry, tz=UTC).strftime("%Y%m%d")
    k = strike // WAD if strike % WAD == 0 else strike / WAD
    return f"{underlying}-{'C' if kind == 1 else 'P'}-{k}-{day}"


@dataclass(frozen=True)
class InstrumentInfo:
    """A registered instrument. ``kind`` 0 PERP, 1 CALL, 2 PUT; ``strike`` WAD USD per
    unit (0 for a perp); ``expiry`` unix seconds (0 for a perp); ``underlying`` decoded
    from the right-padded bytes32 (``"ETH"``)."""

    id: int
    kind: int
    underlying: str
    strike: int
    expiry: int

    @property
    def name(self) -> str:
        return instrument_name(self.kind, self.underlying, self.strike, self.expiry)

    @property
    def is_option(self) -> bool:
        return self.kind in (1, 2)

    def expired(self, timestamp: int) -> bool:
        """True for an option with ``expiry <= timestamp`` (the vault's settlement rule)."""
        return self.is_option and self.expiry <= timestamp


@dataclass(frozen=True)
class TokenInfo:
    """A registered collateral token, in registration order (``index``)."""

    address: str
    symbol: str
    decimals: int
    index: int


@dataclass(frozen=True)
class Position:
    """One open position: ``size`` WAD units (signed), ``funding_index`` WAD USD per unit
    (the perp's cumulative funding at the position's last update)."""

    instrument: int
    size: int
    funding_index: int


@dataclass(frozen=True)
class AccountState:
    """A subaccount as the vault stores it at the snapshot block.

    ``account``: the subaccount id; ``cash``, ``cum_lo``, ``cum_hi``: int256 WAD USD;
    ``collateral``: balances in each token's decimals, in registered token order;
    ``state_word``: its ``stateChain`` word (docs/protocol.md §9), which its ACCOUNT leaf
    commits (§11).
    """

    account: int
    cash: int
    state_nonce: int
    cum_lo: int
    cum_hi: int
    positions: tuple[Position, ...]
    collateral: tuple[int, ...]
    state_word: bytes = bytes(32)

    @property
    def has_positions(self) -> bool:
        return any(p.size != 0 for p in self.positions)


@dataclass(frozen=True)
class EpochOnChain:
    """The vault's current epoch (0 and zero root before the first)."""

    epoch: int
    snapshot_block: int
    timestamp: int
    root: bytes


class Governance(TypedDict):
    """The signer set of the vault at a block, under the :class:`ChainSnapshot` field
    names (so that it can be splatted into one)."""

    config_version: int
    quorum: int
    signers: tuple[str, ...]


@dataclass(frozen=True)
class ChainSnapshot:
    """Everything the epoch pipeline reads from the chain, at one block.

    ``cum_funding``: perp id -> cumulative funding index (WAD); ``settlements``: option id
    -> settlement price (WAD) for the options whose price is already set.
    """

    block: int
    block_hash: str
    block_timestamp: int
    chain_id: int
    vault: str
    accounts: tuple[AccountState, ...]
    instruments: tuple[InstrumentInfo, ...]
    tokens: tuple[TokenInfo, ...]
    cum_funding: Mapping[int, int]
    settlements: Mapping[int, int]
    current_epoch: EpochOnChain
    config_version: int
    quorum: int
    signers: tuple[str, ...]
    max_age: int
    future_tolerance: int
    #: the vault's challenge window (seconds, 0: disputes off, docs/protocol.md §10); the
    #: epoch carries the dispute commitments only when it is on (§11)
    dispute_window: int = 0

    def instrument(self, instrument_id: int) -> InstrumentInfo:
        return self.instruments[instrument_id - 1]


def _decode_bytes32(raw: bytes) -> str:
    return bytes(raw).rstrip(b"\0").decode("utf-8", errors="replace")


#: The vault settings a snapshot reads at its block, in :meth:`ChainAdapter.snapshot`'s order.
_SNAPSHOT_SETTINGS = (
    "instrumentCount",
    "tokens",
    "currentEpoch",
    "maxAge",
    "futureTolerance",
    "disputeConfig",
)
#: Who signs an epoch, in :func:`_governance`'s order.
_GOVERNANCE = ("configVersion", "quorum", "signers")


def _block_tag(block: int | BlockParams) -> str:
    """A block number or tag as JSON-RPC takes it."""
    return block if isinstance(block, str) else hex(block)


def _is_empty_code(code: str) -> bool:
    return code in ("0x", "", None)


def _epoch_on_chain(row: tuple[Any, ...]) -> EpochOnChain:
    """``currentEpoch()``'s (epoch, snapshotBlock, timestamp, root)."""
    e, snap, ts, root = row
    return EpochOnChain(int(e), int(snap), int(ts), bytes(root))


def _governance(version: int, quorum: int, signers: Sequence[str]) -> Governance:
    return {
        "config_version": int(version),
        "quorum": int(quorum),
        "signers": tuple(to_checksum_address(s) for s in signers),
    }


def _hex(value: bytes | str) -> str:
    text = value.hex() if isinstance(value, bytes | bytearray) else str(value)
    return (text if text.startswith("0x") else "0x" + text).lower()


def load_deployment(path: Path | str) -> dict[str, Any]:
    """Read a deployments file written by ``pm deploy`` (``vault``, ``block``...)."""
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def decode_account_states(data: bytes) -> list[tuple[Any, ...]]:
    """ABI-decode the return data of ``accountStates`` (an ``AccountState[]``).

    Equal to ``eth_abi.decode([ACCOUNT_STATES_TYPE], data)[0]`` (a test pins it) but about
    ten times faster: the words are read directly. Raises :class:`ChainCallError` on data
    that is too short for the offsets it holds.
    """
    size = len(data)

    def word(pos: int) -> int:
        if pos < 0 or pos + 32 > size:
            raise ChainCallError(f"accountStates data too short ({size} bytes, word at {pos})")
        return int.from_bytes(data[pos : pos + 32], "big")

    def sword(pos: int) -> int:
        v = word(pos)
        return v - (1 << 256) if v >> 255 else v

    base = word(0)
    n = word(base)
    start = base + 32
    out: list[tuple[Any, ...]] = []
    for i in range(n):
        t = start + word(start + 32 * i)

        def arr(slot: int, signed: bool, t: int = t) -> list[int]:
            p = t + word(t + 32 * slot)
            m = word(p)
            read = sword if signed else word
            return [read(p + 32 * (k + 1)) for k in range(m)]

        out.append(
            (
                sword(t),
                word(t + 32),
                sword(t + 64),
                sword(t + 96),
                arr(4, False),
                arr(5, True),
                arr(6, True),
                arr(7, False),
            )
        )
    return out


# --------------------------------------------------------------------------- adapter


def _signed(word: str) -> int:
    v = int(word, 16)
    return v - (1 << 256) if v >> 255 else v


@dataclass
class _Book:
    """One subaccount's state as the events left it (mutable; frozen on demand).

    ``positions``: ``[instrument, size, funding_index]`` in the vault's ``instruments``
    order; ``collateral``: lowercase token address -> balance (token decimals).
    """

    cash: int = 0
    state_nonce: int = 0
    cum_lo: int = 0
    cum_hi: int = 0
    positions: list[list[int]] = field(default_factory=list)
    collateral: dict[str, int] = field(default_factory=dict)
    #: the vault's ``stateChain`` word (docs/protocol.md §9), folded from the events; None
    #: for a book seeded from ``accountStates`` until it is read (:meth:`ChainAdapter.state_chain`)
    word: bytes | None = bytes(32)

    @classmethod
    def of(cls, state: AccountState, tokens: Sequence[TokenInfo]) -> _Book:
        return cls(
            state.cash,
            state.state_nonce,
            state.cum_lo,
            state.cum_hi,
            [[p.instrument, p.size, p.funding_index] for p in state.positions],
            {t.address.lower(): b for t, b in zip(tokens, state.collateral, strict=False) if b},
            state.state_word,
        )

    def copy(self) -> _Book:
        return _Book(
            self.cash,
            self.state_nonce,
            self.cum_lo,
            self.cum_hi,
            [list(p) for p in self.positions],
            dict(self.collateral),
            self.word,
        )

    def position(self, instrument: int) -> tuple[int, int]:
        """``(size, funding_index)`` of an open position, ``(0, 0)`` otherwise."""
        p = next((p for p in self.positions if p[0] == instrument and p[1] != 0), None)
        return (0, 0) if p is None else (p[1], p[2])

    def committed(self) -> CommittedState:
        """The state in the canonical order of the state chain (docs/protocol.md §9)."""
        return CommittedState(
            self.cash,
            tuple(sorted((i, sz, f) for i, sz, f in self.positions if sz != 0)),
            tuple(
                sorted(
                    ((t, b) for t, b in self.collateral.items() if b), key=lambda x: int(x[0], 16)
                )
            ),
            self.cum_lo,
            self.cum_hi,
        )

    def set_position(self, instrument: int, size: int, funding_index: int) -> None:
        """``VaultBase._setSize``: append on open, swap-and-pop on close."""
        at = next((i for i, p in enumerate(self.positions) if p[0] == instrument), None)
        if at is None:
            if size != 0:
                self.positions.append([instrument, size, funding_index])
        elif size == 0:
            self.positions[at] = self.positions[-1]
            self.positions.pop()
        else:
            self.positions[at] = [instrument, size, funding_index]

    def freeze(self, account: int, tokens: Sequence[TokenInfo]) -> AccountState:
        return AccountState(
            account=account,
            cash=self.cash,
            state_nonce=self.state_nonce,
            cum_lo=self.cum_lo,
            cum_hi=self.cum_hi,
            positions=tuple(Position(i, sz, f) for i, sz, f in self.positions),
            collateral=tuple(self.collateral.get(t.address.lower(), 0) for t in tokens),
            state_word=bytes(32) if self.word is None else self.word,
        )


@dataclass
class _IndexState:
    #: subaccount id -> its owners, oldest first: ``(block, owner)``, the first entry its
    #: creation (kept per block so that a reorg can drop the changes after the safe block).
    accounts: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    last_block: int | None = None
    checkpoints: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=_CHECKPOINTS))
    #: subaccount id -> its state at ``last_block`` (None until seeded by ``accountStates``).
    books: dict[int, _Book] | None = None
    #: per scan, oldest first: ``(first block of the scan, {account: its state before the
    #: scan, None if it had none})``; undone newest first when a reorg drops the scans after
    #: the safe block (a safe block is always the end of a scan).
    journal: deque[tuple[int, dict[int, _Book | None]]] = field(default_factory=deque)
    #: the oldest safe block the journal can restore the state to.
    restorable_from: int = 0
    #: frozen states of the accounts unchanged since they were frozen, with the token count
    #: they were frozen with.
    frozen: dict[int, AccountState] = field(default_factory=dict)
    frozen_tokens: int = -1


class ChainAdapter:
    """One vault on one node (see the module docstring).

    Parameters
    ----------
    w3 : Web3
    vault : str
        The vault address.
    store : Store, optional
        Holds the chain binding and the indexer cursor (the last block read and its hash).
    deployment_block : int
        First block to index (the vault's deployment block).
    confirmations : int
        Depth below the head at which the keeper reads state (0 on Anvil).
    batch_size : int
        Accounts per ``accountStates`` call (one ``eth_call``; bounded by the node's call
        gas limit, ~25k gas per account with two tokens).
    log_range : int
        Blocks per ``eth_getLogs`` request.
    track_state : bool
        Keep every subaccount's state in memory from the events (module docstring); False
        indexes the set of subaccounts only and every snapshot reads ``accountStates``.
    """

    def __init__(
        self,
        w3: Web3,
        vault: str,
        *,
        store: Store | None = None,
        deployment_block: int = 0,
        confirmations: int = 0,
        batch_size: int = 200,
        log_range: int = 5_000,
        retry: RetryPolicy = DEFAULT_READ_RETRY,
        track_state: bool = True,
    ) -> None:
        self.w3 = w3
        self.address = to_checksum_address(vault)
        self.store = store
        self.deployment_block = deployment_block
        self.confirmations = confirmations
        self.batch_size = batch_size
        self.log_range = log_range
        self.retry = retry
        self.track_state = track_state
        # The exported ABIs (keeper/abi/, `make abi`): the daemon never compiles.
        self.abi = vault_abi()
        self.vault: Contract = w3.eth.contract(address=self.address, abi=self.abi)
        self._views = ViewFunctions(self.address, self.abi)
        self._erc20_abi = erc20_abi()
        self._index = _IndexState()
        self._instruments: dict[int, InstrumentInfo] = {}  # immutable once registered
        self._tokens: dict[str, TokenInfo] = {}
        self._chain_id: int | None = None
        self._genesis: str | None = None
        self.rpc_retries = 0

    # ---------------------------------------------------------------- plumbing

    def rpc(self, fn: Callable[[], T], what: str) -> T:
        """Call ``fn`` with the adapter's retry policy (transient errors only)."""

        def count(_: BaseException, __: int) -> None:
            self.rpc_retries += 1

        return call_with_retry(fn, self.retry, what=what, on_retry=count)

    def _raw(self, method: str, params: list[Any]) -> Any:
        """A JSON-RPC call without web3's result formatters (hot paths only)."""

        def call() -> Any:
            resp = self.w3.provider.make_request(RPCEndpoint(method), params)
            if "error" in resp:
                raise ChainCallError(f"{method}: {resp['error']}")
            return resp["result"]

        return self.rpc(call, method)

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.rpc(lambda: self.w3.eth.chain_id, "chain_id"))
        return self._chain_id

    def head(self) -> int:
        return int(self.rpc(lambda: self.w3.eth.block_number, "block_number"))

    def safe_head(self) -> int:
        """The newest block read as final: ``head - confirmations``."""
        return max(0, self.head() - self.confirmations)

    def block(self, number: int | BlockParams) -> BlockData:
        return self.rpc(lambda: self.w3.eth.get_block(number), f"get_block({number})")

    # ---------------------------------------------------------------- binding

    def connect(self) -> None:
        """Check (and on first use record) that the node holds this store's chain and that
        the vault has code. Raises :class:`ChainResetError` otherwise."""
        genesis = _hex(self.block(0)["hash"])
        self.check_deployed()
        self._genesis = genesis
        if self.store is not None:
            try:
                self.store.bind_chain(self.chain_id, genesis, self.address)
            except ChainMismatchError as exc:
                raise ChainResetError(str(exc)) from exc

    def check_binding(self) -> None:
        """Per-epoch check that the node still holds the chain :meth:`connect` saw: the
        vault has code and the genesis block is the same. Raises :class:`ChainResetError`."""
        if self._genesis is None:
            self.connect()
            return
        self.check_deployed()
        genesis = _hex(self.block(0)["hash"])
        if genesis != self._genesis:
            raise ChainResetError(
                f"the node's genesis block changed from {self._genesis} to {genesis}: the "
                "chain was reset under the keeper. Refusing to post over it."
            )

    def check_deployed(self, block: int | BlockParams = "latest") -> None:
        code = self.rpc(lambda: self.w3.eth.get_code(self.address, block), "get_code")
        if len(code) == 0:
            raise ChainResetError(
                f"no contract at vault address {self.address} on chain {self.chain_id} "
                f"(block {block}): the chain was reset (Anvil restarted empty?) or the config "
                "points at the wrong node. Refusing to post; redeploy and start with a fresh "
                "data directory."
            )

    # ---------------------------------------------------------------- indexer

    @property
    def accounts(self) -> tuple[int, ...]:
        """Known subaccount ids, in creation order (ascending: ids are sequential)."""
        return tuple(self._index.accounts)

    def accounts_at(self, block: int) -> list[int]:
        """Known subaccounts created at or before ``block`` (one created later has no state
        there; leaving it out keeps a snapshot independent of how far the index ran, so
        ``keeper verify`` rebuilds the same leaf set)."""
        return [a for a, owners in self._index.accounts.items() if owners[0][0] <= block]

    def owner_of(self, account: int) -> str | None:
        """The indexed owner of ``account`` (checksummed), None for an id not seen."""
        owners = self._index.accounts.get(account)
        return None if owners is None else owners[-1][1]

    def subaccounts_of(self, owner: str) -> tuple[int, ...]:
        """The ids ``owner`` holds as far as the index read, ascending."""
        who = to_checksum_address(owner)
        return tuple(a for a, owners in self._index.accounts.items() if owners[-1][1] == who)

    @property
    def indexed_block(self) -> int | None:
        return self._index.last_block

    def rebuild(self) -> int:
        """Forget everything and re-read from the deployment block; returns accounts known."""
        self._index = _IndexState()
        self.index(replace_owners=True)
        return len(self._index.accounts)

    def rebuild_to(self, block: int) -> int:
        """A fresh index of the subaccounts created up to ``block`` only (``keeper
        verify``); the store's cursor and owners are left alone."""
        self._index = _IndexState()
        self.index(to_block=block, record=False)
        return len(self._index.accounts)

    def _hash_of(self, number: int) -> str | None:
        try:
            blk = self.block(number)
        except Exception as exc:  # block not found after a reset: treated as a mismatch
            if type(exc).__name__ == "BlockNotFound":
                return None
            raise
        return _hex(blk["hash"])

    def _check_reorg(self) -> bool:
        """Walk back to the safe block after a reorg; True when the index changed."""
        st = self._index
        if st.last_block is None or not st.checkpoints:
            return False
        number, stored = st.checkpoints[-1]
        if self._hash_of(number) == stored:
            return False
        self.check_deployed()  # a reset chain is not a reorg: say so
        safe: tuple[int, str] | None = None
        while st.checkpoints:
            n, h = st.checkpoints.pop()
            if self._hash_of(n) == h:
                safe = (n, h)
                break
        if safe is None or (st.books is not None and safe[0] < st.restorable_from):
            log.warning(
                "reorg below every checkpoint; rebuilding the index", extra={"block": number}
            )
            self._index = _IndexState()
            return True
        if st.books is not None:
            while st.journal and st.journal[-1][0] > safe[0]:
                for a, before in st.journal.pop()[1].items():
                    if before is None:
                        st.books.pop(a, None)
                    else:
                        st.books[a] = before
                    st.frozen.pop(a, None)
        st.checkpoints.append(safe)
        st.last_block = safe[0]
        dropped = 0
        for a in list(st.accounts):
            kept = [o for o in st.accounts[a] if o[0] <= safe[0]]
            if not kept:
                del st.accounts[a]
                dropped += 1
            else:
                st.accounts[a] = kept
        log.warning(
            "reorg detected; re-reading from the safe block",
            extra={"was": number, "safe_block": safe[0], "dropped_accounts": dropped},
        )
        return True

    def index(
        self, to_block: int | None = None, *, record: bool = True, replace_owners: bool = False
    ) -> int:
        """Scan ``SubaccountTransferred`` up to ``to_block`` (default: ``head -
        confirmations``).

        Returns the number of subaccounts known. Incremental: only blocks after the last
        scan are read, after checking that the last scanned block is still on the chain.
        With ``record`` (and a store), the cursor and the owners that changed are written
        to the store (all of them after a reorg or with ``replace_owners``).
        """
        replace_owners = self._check_reorg() or replace_owners
        target = self.safe_head() if to_block is None else to_block
        st = self._index
        start = self.deployment_block if st.last_block is None else st.last_block + 1
        # The first scan reads the owners only; the state is then seeded at its end block.
        seeding = self.track_state and st.books is None
        topics = [_STATE_TOPICS] if self.track_state and not seeding else [_TRANSFER_TOPIC]
        changed: set[int] = set()
        befores: dict[int, _Book | None] = {}
        lo = start
        while lo <= target:
            hi = min(lo + self.log_range - 1, target)
            # Raw RPC: web3's log formatters cost ~1 ms per entry, and only the topics, the
            # data and the block number are needed.
            params = {
                "address": self.address,
                "fromBlock": hex(lo),
                "toBlock": hex(hi),
                "topics": topics,
            }
            # eth_getLogs returns entries in chain order: the last value in a block wins.
            for entry in self._raw("eth_getLogs", [params]):
                t = entry["topics"]
                account = int(t[1], 16)
                if t[0] == _TRANSFER_TOPIC:
                    owner = to_checksum_address("0x" + t[3][-40:])
                    st.accounts.setdefault(account, []).append(
                        (int(entry["blockNumber"], 16), owner)
                    )
                    changed.add(account)
                else:
                    self._apply(account, t, entry["data"], befores)
            lo = hi + 1
        if start <= target:
            block_hash = self._hash_of(target)
            if block_hash is None:
                self.check_deployed()
                raise ChainResetError(f"block {target} vanished while indexing")
            st.last_block = target
            st.checkpoints.append((target, block_hash))
            if seeding:
                self._seed(target)
            elif befores:
                if len(st.journal) == _JOURNAL_SCANS:
                    st.journal.popleft()
                    st.restorable_from = st.journal[0][0] - 1
                st.journal.append((start, befores))
            if self.store is not None and record:
                self.store.set_cursor(target, block_hash)
        if self.store is not None and record and (changed or replace_owners):
            self.store.save_subaccounts(
                [
                    SubaccountRecord(a, owners[-1][1], owners[0][0])
                    for a, owners in st.accounts.items()
                    if replace_owners or a in changed
                ],
                replace=replace_owners,
            )
        return len(st.accounts)

    def _apply(
        self, account: int, topics: Sequence[str], data: str, befores: dict[int, _Book | None]
    ) -> None:
        """Apply one ``AccountUpdated`` / ``PositionUpdated`` / ``CollateralUpdated`` (absolute
        values after the change) to ``account``'s state, journaling its state before the
        scan's first change of it."""
        st = self._index
        assert st.books is not None
        book = st.books.get(account)
        if account not in befores:
            befores[account] = None if book is None else book.copy()
        if book is None:
            book = st.books[account] = _Book()
        st.frozen.pop(account, None)
        if book.word is not None:
            for d in deltas_of_event(
                book.cash,
                (book.cum_lo, book.cum_hi),
                book.position,
                lambda t: book.collateral.get(t, 0),
                topics,
                data,
            ):
                book.word = step(book.word, d)
        words = [data[2 + 64 * i : 66 + 64 * i] for i in range((len(data) - 2) // 64)]
        if topics[0] == FUNDING_APPLIED_TOPIC:  # (payment, fundingIndex): the AccountUpdated
            book.cash -= _signed(words[0])  # that follows shows this cash too
            book.cum_lo += ROUNDING_LO  # and these bounds
        elif topics[0] == _ACCOUNT_TOPIC:  # (cash, cumLo, cumHi, stateNonce)
            book.cash, book.cum_lo, book.cum_hi = (_signed(w) for w in words[:3])
            book.state_nonce = int(words[3], 16)
        elif topics[0] == _POSITION_TOPIC:  # instrument indexed; (size, fundingIndex)
            book.set_position(int(topics[2], 16), _signed(words[0]), _signed(words[1]))
        else:  # token indexed; (balance)
            book.collateral["0x" + topics[2][-40:].lower()] = int(words[0], 16)

    def _seed(self, block: int) -> None:
        """Take every indexed subaccount's state at ``block`` from ``accountStates``."""
        st = self._index
        tokens = self.tokens(block)
        states = self.account_states(self.accounts_at(block), block)
        st.books = {s.account: _Book.of(s, tokens) for s in states}
        st.frozen = {s.account: s for s in states}
        st.frozen_tokens = len(tokens)
        st.journal.clear()
        st.restorable_from = block

    def state_chain(self, block: int, account: int) -> tuple[bytes, CommittedState]:
        """``account``'s state chain word and canonical state at ``block``, the block the
        index ends at (docs/protocol.md §9), from the events; a book seeded from
        ``accountStates`` reads its word once with ``stateChain`` at that block."""
        st = self._index
        if st.books is None or st.last_block != block:
            raise ChainCallError(f"the in-memory state is at block {st.last_block}, not {block}")
        book = st.books.get(account)
        if book is None:
            book = st.books[account] = _Book()
        if book.word is None:
            fn = self.vault.functions.stateChain(account)
            book.word = bytes(self._call(fn, block, "stateChain"))
        return book.word, book.committed()

    @property
    def state_ready(self) -> bool:
        """True when the in-memory state is seeded (snapshots at :attr:`indexed_block` read
        no account from the node)."""
        return self._index.books is not None

    def states_at(
        self,
        block: int,
        accounts: Sequence[int] | None = None,
        *,
        tokens: tuple[TokenInfo, ...] | None = None,
    ) -> tuple[AccountState, ...]:
        """The in-memory state of ``accounts`` (default: those created at or before
        ``block``), which must be the block the index ends at. Only the accounts changed
        since they were last frozen are frozen again. ``tokens``: the vault's tokens at
        ``block`` when the caller read them already."""
        st = self._index
        if st.books is None or st.last_block != block:
            raise ChainCallError(
                f"the in-memory state is at block {st.last_block}, not {block} "
                f"(seeded: {st.books is not None})"
            )
        if tokens is None:
            tokens = self.tokens(block)
        if len(tokens) != st.frozen_tokens:  # a new token: every collateral tuple grows
            st.frozen.clear()
            st.frozen_tokens = len(tokens)
        out: list[AccountState] = []
        empty = _Book()
        for a in self.accounts_at(block) if accounts is None else accounts:
            fs = st.frozen.get(a)
            if fs is None:
                fs = st.frozen[a] = st.books.get(a, empty).freeze(a, tokens)
            out.append(fs)
        return tuple(out)

    def check_state(self, block: int) -> list[int]:
        """Re-read every account at ``block`` (the indexed block) with ``accountStates``,
        compare it with the in-memory state, adopt the chain's state where they differ, and
        return the accounts that differed (logged; the pipeline counts them,
        ``pm_keeper_state_mismatches_total``)."""
        cached = {s.account: s for s in self.states_at(block)}
        theirs = self.account_states(list(cached), block)
        tokens = self.tokens(block)
        st = self._index
        assert st.books is not None
        empty = _Book()
        differ: list[int] = []
        for s in theirs:
            # both the books and the frozen copies the snapshots read are audited
            mine = st.books.get(s.account, empty).freeze(s.account, tokens)
            if mine != s or cached[s.account] != s:
                differ.append(s.account)
                st.books[s.account] = _Book.of(s, tokens)
                st.frozen[s.account] = s
        if differ:
            log.warning(
                "account state from events differs from the chain; adopted the chain's",
                extra={"block": block, "count": len(differ), "accounts": differ[:20]},
            )
        else:
            log.info(
                "account state from events checked", extra={"block": block, "accounts": len(theirs)}
            )
        return differ

    # ---------------------------------------------------------------- reads

    def _call(self, fn: ContractFunction, block: int | BlockParams, what: str) -> Any:
        return self.rpc(lambda: fn.call(block_identifier=block), what)

    def _views_at(self, calls: Sequence[ViewCall], block: int | BlockParams) -> list[Any]:
        """The decoded answers of ``calls`` at ``block``, read in one JSON-RPC batch
        (``keeper/view_batch.py``), retried as one."""
        tag = _block_tag(block)
        results = self.rpc(
            lambda: read_batch(self.w3, [c.request(tag) for c in calls]),
            f"{len(calls)} view calls",
        )
        return [c.decode(r) for c, r in zip(calls, results, strict=True)]

    def instruments(self, block: int | BlockParams = "latest") -> tuple[InstrumentInfo, ...]:
        """Every registered instrument at ``block`` (ids 1..count)."""
        (count,) = self._views_at([self._views.call("instrumentCount")], block)
        return self._instruments_upto(int(count), block)

    def _instruments_upto(self, count: int, block: int | BlockParams) -> tuple[InstrumentInfo, ...]:
        """Instruments 1..``count``; those not known yet read in one batch (an instrument
        never changes once registered)."""
        new = [i for i in range(1, count + 1) if i not in self._instruments]
        rows = self._views_at([self._views.call("instrument", i) for i in new], block)
        for i, (kind, und, strike, expiry) in zip(new, rows, strict=True):
            self._instruments[i] = InstrumentInfo(
                i, int(kind), _decode_bytes32(und), int(strike), int(expiry)
            )
        return tuple(self._instruments[i] for i in range(1, count + 1))

    def tokens(self, block: int | BlockParams = "latest") -> tuple[TokenInfo, ...]:
        """Registered collateral tokens at ``block``, in registration order."""
        (addresses,) = self._views_at([self._views.call("tokens")], block)
        return self._tokens_of(addresses, block)

    def _tokens_of(
        self, addresses: Sequence[str], block: int | BlockParams
    ) -> tuple[TokenInfo, ...]:
        """The tokens at ``addresses`` (registration order); the symbol and decimals of
        those not known yet read in one batch."""
        checksummed = [to_checksum_address(a) for a in addresses]
        new = [a for a in dict.fromkeys(checksummed) if a not in self._tokens]
        calls = []
        for addr in new:
            erc20 = ViewFunctions(addr, self._erc20_abi)
            calls += [erc20.call("symbol"), erc20.call("decimals")]
        answers = self._views_at(calls, block)
        for k, addr in enumerate(new):
            symbol, decimals = answers[2 * k], answers[2 * k + 1]
            index = checksummed.index(addr)
            self._tokens[addr] = TokenInfo(addr, str(symbol), int(decimals), index)
        return tuple(self._tokens[a] for a in checksummed)

    def current_epoch(self, block: int | BlockParams = "latest") -> EpochOnChain:
        (row,) = self._views_at([self._views.call("currentEpoch")], block)
        return _epoch_on_chain(row)

    def account_states(
        self, accounts: Sequence[int], block: int | str = "latest"
    ) -> tuple[AccountState, ...]:
        """``accountStates`` of subaccount ids, in batches of ``batch_size``, all at
        ``block`` (raw ``eth_call`` + a direct decoder: web3's result normalisation of
        nested arrays costs more than the node's work). An id the vault does not know
        reads as an empty account (``accountStates`` does not check owners)."""
        out: list[AccountState] = []
        if isinstance(block, str):  # one block for the states and their words
            block = int(self._raw("eth_getBlockByNumber", [block, False])["number"], 16)
        tag = hex(block)
        for start in range(0, len(accounts), self.batch_size):
            chunk = [int(a) for a in accounts[start : start + self.batch_size]]
            data = _ACCOUNT_STATES_SELECTOR + abi_encode(["uint256[]"], [chunk])
            raw = self._raw("eth_call", [{"to": self.address, "data": "0x" + data.hex()}, tag])
            rows = decode_account_states(bytes.fromhex(raw[2:]))
            # each state chain word in the same block (one JSON-RPC batch): the leaves commit it
            words = self._views_at([self._views.call("stateChain", a) for a in chunk], block)
            for account, row, word in zip(chunk, rows, words, strict=True):
                cash, nonce, lo, hi, ids, sizes, findex, coll = row
                out.append(
                    AccountState(
                        account=account,
                        cash=cash,
                        state_nonce=nonce,
                        cum_lo=lo,
                        cum_hi=hi,
                        positions=tuple(
                            Position(i, sz, f) for i, sz, f in zip(ids, sizes, findex, strict=True)
                        ),
                        collateral=tuple(coll),
                        state_word=bytes(word),
                    )
                )
        return tuple(out)

    def snapshot(
        self,
        block: int,
        accounts: Iterable[int] | None = None,
        *,
        governance_block: int | BlockParams | None = None,
    ) -> ChainSnapshot:
        """Everything the pipeline needs, read at ``block`` (see :class:`ChainSnapshot`).

        ``accounts`` defaults to every indexed subaccount created at or before ``block``;
        the caller must have indexed up to ``block`` at least.
        ``governance_block``: where the signer set, quorum and config version are read
        (default ``block``; the pipeline reads them at ``latest``, where the epoch is
        checked). The small reads go in a few JSON-RPC batches (``keeper/view_batch.py``):
        the vault's code, the block, counts and settings at once, then what depends on them.
        """
        tag = _block_tag(block)
        gov_tag = tag if governance_block is None else _block_tag(governance_block)
        v = self._views
        settings = [v.call(name) for name in _SNAPSHOT_SETTINGS]
        governance = [v.call(name) for name in _GOVERNANCE]
        requests: list[tuple[str, list[Any]]] = [
            ("eth_getCode", [self.address, tag]),
            ("eth_getBlockByNumber", [tag, False]),
            *(c.request(tag) for c in settings),
            *(c.request(gov_tag) for c in governance),
        ]
        code, blk, *answers = self.rpc(lambda: read_batch(self.w3, requests), "snapshot reads")
        if _is_empty_code(code):
            self.check_deployed(block)  # raises ChainResetError with the explanation
        if blk is None:
            raise ChainCallError(f"block {block} not found")
        count, addresses, epoch, max_age, tolerance, dispute, *gov = (
            c.decode(r) for c, r in zip([*settings, *governance], answers, strict=True)
        )
        instruments = self._instruments_upto(int(count), block)
        tokens = self._tokens_of(addresses, block)
        reads = [
            v.call("cumFunding", ins.id) if ins.kind == 0 else v.call("settlementPrice", ins.id)
            for ins in instruments
        ]
        cum_funding: dict[int, int] = {}
        settlements: dict[int, int] = {}
        for ins, value in zip(instruments, self._views_at(reads, block), strict=True):
            if ins.kind == 0:
                cum_funding[ins.id] = int(value)
            elif value[1]:  # (price, is_set)
                settlements[ins.id] = int(value[0])
        if accounts is None:
            from_memory = self.state_ready and self._index.last_block == block
            states = (
                self.states_at(block, tokens=tokens)
                if from_memory
                else self.account_states(self.accounts_at(block), block)
            )
        else:
            states = self.account_states(list(accounts), block)
        return ChainSnapshot(
            block=block,
            block_hash=_hex(blk["hash"]),
            block_timestamp=int(blk["timestamp"], 16),
            chain_id=self.chain_id,
            vault=self.address,
            accounts=states,
            instruments=instruments,
            tokens=tokens,
            cum_funding=cum_funding,
            settlements=settlements,
            current_epoch=_epoch_on_chain(epoch),
            **_governance(*gov),
            max_age=int(max_age),
            future_tolerance=int(tolerance),
            dispute_window=int(dispute[0]),
        )

    def governance(self, block: int | BlockParams = "latest") -> Governance:
        """``config_version``, ``quorum`` and ``signers`` at ``block`` (the
        :class:`ChainSnapshot` field names), read in one batch."""
        return _governance(*self._views_at([self._views.call(n) for n in _GOVERNANCE], block))

    def epoch_posted_root(self, epoch: int, from_block: int | None = None) -> bytes | None:
        """Root of ``EpochPosted(epoch)`` on chain, or None if that epoch was never posted."""
        params: FilterParams = {
            "address": self.address,
            "fromBlock": self.deployment_block if from_block is None else from_block,
            "toBlock": "latest",
            "topics": [_EPOCH_POSTED_TOPIC, HexStr("0x" + epoch.to_bytes(32, "big").hex())],
        }
        logs = self.rpc(lambda: self.w3.eth.get_logs(params), "get_logs(EpochPosted)")
        if not logs:
            return None
        data = bytes(logs[-1]["data"])
        return data[64:96]  # (snapshotBlock, timestamp, root, configVersion)

    def wait_for_block(self, number: int, timeout: float = 10.0) -> None:
        """Wait until the head reaches ``number`` (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while self.head() < number:
            if time.monotonic() > deadline:
                raise TimeoutError(f"block {number} not reached")
            time.sleep(0.05)
