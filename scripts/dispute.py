"""``pm dispute``: check a posted epoch and prove a wrong ACCOUNT or INSTRUMENT leaf on
chain (docs/protocol.md §11).

A watcher needs no keeper of its own, only a node and the keeper API that published the
epoch. :func:`find_wrong_leaf` recomputes the epoch as ``keeper verify`` and a signer service
do (``keeper/epoch_check.py``): the vault's state at the header's snapshot block read from the
watcher's node, the market snapshot the keeper published (``GET /epoch/<n>/market``), the same
engine and parameters; it requires the header's ``inputsHash`` to be the recomputation's (the
same parameters, token rows and market: otherwise there is nothing this watcher can prove)
and compares each posted ACCOUNT leaf (``GET /proof/<id>?epoch=n``) with its own.
:func:`account_claim` builds ``disputeAccount``'s argument for a leaf whose numbers or bounds
differ: the state at the leaf's ``stateWord`` and the vault's deltas since (rebuilt from the
logs, ``keeper/state_chain.py``), the posted INSTRUMENT leaves and proofs, the engine's cash,
sizes and rows (``keeper/dispute_encoding.py``). When every ACCOUNT leaf is its own, the
first INSTRUMENT leaf that differs (``GET /instrument/<id>?epoch=n``) is disputed with
:func:`instrument_claim`: its vector (which must be the recomputation's), the committed
market inputs and parameters. :func:`dispute` simulates and sends the claim.
A leaf whose ``stateWord`` is not the account's word at its sequence number is disputed with
``disputeAccountState`` (:func:`state_claim`: the account's history replayed from the logs);
one that names a real older state is reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.exceptions import ContractLogicError

from keeper.attestation import AccountLeaf, InstrumentLeaf
from keeper.chain import AccountState, ChainAdapter, ChainSnapshot
from keeper.dispute_encoding import (
    MARKET_INPUTS_ABI,
    AggregationParamsWad,
    MarketInputsWad,
    PublishedInputs,
    RangeParamsWad,
    RiskVectorWad,
    VectorParamsWad,
    hash_vector,
)
from keeper.eip712 import Epoch
from keeper.epoch_build import (
    DEFAULT_FUNDING_RULE,
    DEFAULT_TOKEN_UNDERLYINGS,
    DisputeCommitments,
    EpochBuild,
    account_cash,
    chain_inputs,
    compute_epoch,
    funding_indices,
)
from keeper.errors import AttestationError, EpochRefusedError
from keeper.feeds.base import MarketState
from keeper.state_chain import (
    STATE_CHAIN_TOPICS,
    CommittedState,
    StateChainBook,
    StateDelta,
    seq_of,
)
from risk_engine import RiskParams
from scripts.client import KeeperApi, Session
from scripts.errors import CliError

__all__ = [
    "Finding",
    "InstrumentFinding",
    "account_claim",
    "dispute",
    "find_wrong_leaf",
    "instrument_claim",
    "range_claim",
    "state_claim",
    "recompute_epoch",
]


@dataclass(frozen=True)
class Finding:
    """The first ACCOUNT leaf of epoch ``epoch`` whose posted fields differ from the
    recomputation's (``posted`` / ``mine``), with what the claim needs."""

    epoch: int
    posted: AccountLeaf
    proof: tuple[bytes, ...]
    mine: AccountLeaf
    build: EpochBuild
    snapshot: ChainSnapshot
    header: Epoch


class _InputsDiffer(CliError):
    """The epoch's header commits other engine inputs than the recomputation's."""

    def __init__(self, epoch: int, build: EpochBuild, header: Epoch, message: str) -> None:
        super().__init__(message)
        self.epoch, self.build, self.header = epoch, build, header


@dataclass(frozen=True)
class InstrumentFinding:
    """The first INSTRUMENT leaf of epoch ``epoch`` whose posted fields differ from the
    recomputation's (every ACCOUNT leaf being the recomputation's)."""

    epoch: int
    posted: InstrumentLeaf
    proof: tuple[bytes, ...]
    mine: InstrumentLeaf
    build: EpochBuild
    header: Epoch


def recompute_epoch(
    session: Session,
    api: KeeperApi,
    params: RiskParams,
    epoch: int,
    *,
    token_underlyings: Mapping[str, str] = DEFAULT_TOKEN_UNDERLYINGS,
) -> tuple[EpochBuild, ChainSnapshot, Epoch]:
    """Recompute ``epoch`` from the watcher's node and the published market: the build, the
    vault's snapshot and the posted header. Raises :class:`CliError` when the epoch cannot be
    checked (not recorded for disputes, no published header or market, other parameters)."""
    vault = session.vault
    root, _posted_at = vault.functions.epochRecord(epoch).call()
    if bytes(root) == bytes(32):
        raise CliError(
            f"epoch {epoch} is not recorded for disputes (window off when it was posted, or "
            "overwritten in the ring)"
        )
    rec = api.epoch(epoch)
    if rec is None or not rec.get("header"):
        raise CliError(f"the keeper API has no header for epoch {epoch}")
    header = Epoch.from_json(rec["header"])
    if header.root != bytes(root):
        raise CliError(
            f"the keeper API's header of epoch {epoch} has root 0x{header.root.hex()}, the vault "
            f"recorded 0x{bytes(root).hex()}"
        )
    market_json = api.market_snapshot(epoch)
    if market_json is None:
        raise CliError(f"the keeper API has no market snapshot for epoch {epoch}")
    market = MarketState.from_json(market_json)
    chain = ChainAdapter(session.w3, session.deployment.vault, track_state=True)
    chain.index(to_block=header.snapshot_block, record=False)
    snapshot = dataclasses.replace(
        chain.snapshot(header.snapshot_block), config_version=header.config_version
    )
    try:
        build = compute_epoch(
            snapshot, market, params, epoch=epoch, token_underlyings=token_underlyings
        )
    except EpochRefusedError as exc:
        raise CliError(f"cannot recompute epoch {epoch}: {exc}") from exc
    if build.header.inputs_hash != header.inputs_hash:
        raise _InputsDiffer(
            epoch,
            build,
            header,
            f"epoch {epoch} committed other engine inputs than this recomputation (inputsHash "
            f"0x{header.inputs_hash.hex()}, here 0x{build.header.inputs_hash.hex()}): other "
            "risk parameters or market; no account or instrument dispute can be built on them",
        )
    return build, snapshot, header


def find_wrong_leaf(
    session: Session,
    api: KeeperApi,
    params: RiskParams,
    epoch: int,
    *,
    token_underlyings: Mapping[str, str] = DEFAULT_TOKEN_UNDERLYINGS,
) -> Finding | InstrumentFinding | None:
    """Recompute ``epoch`` (:func:`recompute_epoch`) and return the first posted ACCOUNT leaf
    that differs, else the first INSTRUMENT leaf, or None when every posted leaf is the
    recomputation's."""
    build, snapshot, header = recompute_epoch(
        session, api, params, epoch, token_underlyings=token_underlyings
    )
    if build.tree.root == header.root:
        return None
    for mine in build.account_leaves:
        got = api.account(mine.account, epoch)
        if got is None:
            continue  # not published: the watcher cannot prove it (docs/security.md §1)
        posted = AccountLeaf.from_json(got.fields)
        if posted != mine:
            return Finding(epoch, posted, got.proof, mine, build, snapshot, header)
    for mine_i in build.instrument_leaves:
        got = api.instrument(mine_i.instrument, epoch)
        if got is None:
            continue
        posted_i = InstrumentLeaf.from_json(got.fields)
        if posted_i != mine_i:
            return InstrumentFinding(epoch, posted_i, got.proof, mine_i, build, header)
    return None


def instrument_claim(
    build: EpochBuild,
    epoch: int,
    posted: InstrumentLeaf,
    proof: tuple[bytes, ...],
    header: Epoch,
) -> tuple[Any, ...]:
    """``disputeInstrument``'s ``InstrumentClaim`` tuple for ``posted`` (with its ``proof``)
    from the recomputation ``build`` of ``epoch``: the posted leaf's vector must be this
    recomputation's (a vector the quorum did not publish cannot be passed: docs/security.md
    §1), the committed market inputs and parameters, and the posted ``header``'s funding
    updates. Raises :class:`CliError`."""
    commit, market, vparams, rparams = _commitments(build, epoch)
    arrays = build.arrays
    if arrays is None:
        raise CliError("the recomputation kept no risk arrays")
    index = {leaf.instrument: j for j, leaf in enumerate(build.instrument_leaves)}
    if posted.instrument not in index:
        raise CliError(f"instrument {posted.instrument} is not live in epoch {epoch}")
    vector = RiskVectorWad.from_arrays(arrays, index[posted.instrument])
    if hash_vector(vector) != posted.vector_hash:
        raise CliError(
            f"instrument {posted.instrument}'s posted vector hash 0x{posted.vector_hash.hex()} "
            f"is not this recomputation's (0x{hash_vector(vector).hex()}) and the quorum did not "
            "publish its vector: it cannot be disputed from here"
        )
    return (
        epoch,
        posted.to_abi(),
        list(proof),
        vector.to_abi(),
        market.to_abi(),
        vparams.to_abi(),
        commit.snapshot_hash,
        AggregationParamsWad.from_arrays(arrays).to_abi(),
        keccak(b"".join(commit.token_vector_hashes)),
        keccak(rparams.encode()),
        [f.to_abi() for f in header.funding],
    )


def _commitments(
    build: EpochBuild, epoch: int
) -> tuple[DisputeCommitments, MarketInputsWad, VectorParamsWad, RangeParamsWad]:
    """The dispute commitments of the recomputation ``build`` of ``epoch``, with the market
    inputs and parameters they hash; :class:`CliError` when it made none (the vault's
    challenge window was off at its snapshot block)."""
    c = build.commitments
    if c is None or c.market_inputs is None or c.vector_params is None or c.range_params is None:
        raise CliError(
            f"epoch {epoch} was recomputed without dispute commitments: the vault's "
            "challenge window was off at its snapshot block"
        )
    return c, c.market_inputs, c.vector_params, c.range_params


def range_claim(build: EpochBuild, epoch: int, underlying: int) -> tuple[Any, ...]:
    """``disputeRange``'s ``RangeClaim`` tuple for engine underlying ``underlying`` (its index)
    from the recomputation ``build`` of ``epoch``: its returns, the committed market inputs
    and parameters. Raises :class:`CliError`."""
    commit, market, vparams, rparams = _commitments(build, epoch)
    if not 0 <= underlying < len(market.underlyings):
        raise CliError(f"epoch {epoch} has no underlying {underlying}")
    return (
        epoch,
        underlying,
        list(market.returns[underlying]),
        market.to_abi(),
        keccak(vparams.encode()),
        rparams.to_abi(),
        commit.snapshot_hash,
        commit.params_hash,
        keccak(b"".join(commit.token_vector_hashes)),
    )


def _state_of(a: AccountState, snapshot: ChainSnapshot) -> StateChainBook:
    """The book of ``a`` at the snapshot: its word, state and bounds."""
    return StateChainBook(
        word=a.state_word,
        cash=a.cash,
        cum_lo=a.cum_lo,
        cum_hi=a.cum_hi,
        positions={p.instrument: (p.size, p.funding_index) for p in a.positions if p.size},
        collateral={
            t.address.lower(): b for t, b in zip(snapshot.tokens, a.collateral, strict=True) if b
        },
    )


def _deltas_since(
    session: Session, account: int, book: StateChainBook, block: int
) -> list[StateDelta]:
    """The vault's deltas of ``account`` after ``block``, folded into ``book`` (which must
    then reach the live word: checked)."""
    book.deltas = []
    for topics, data in _history(session, account, block + 1):
        book.apply_event(topics, data)
    _require_live(session, account, book)
    return list(book.deltas)


def _require_live(session: Session, account: int, book: StateChainBook) -> None:
    """``book``, rebuilt from the logs, has reached the vault's live word of ``account``."""
    live = bytes(session.vault.functions.stateChain(account).call())
    if book.word != live:
        raise CliError(
            f"subaccount {account}'s state chain rebuilt from the logs (0x{book.word.hex()}) is "
            f"not the vault's (0x{live.hex()}): the node's logs are incomplete"
        )


def _history(session: Session, account: int, from_block: int) -> list[tuple[list[str], str]]:
    """The vault's state-changing events of ``account`` from ``from_block`` (raw topics and
    data, chain order)."""
    logs = session.w3.eth.get_logs(
        {
            "address": to_checksum_address(session.deployment.vault),
            "fromBlock": from_block,
            "toBlock": "latest",
            "topics": [list(STATE_CHAIN_TOPICS), "0x" + account.to_bytes(32, "big").hex()],
        }
    )
    return [
        (["0x" + bytes(t).hex() for t in e["topics"]], "0x" + bytes(e["data"]).hex()) for e in logs
    ]


def state_claim(session: Session, f: Finding) -> tuple[Any, ...] | None:
    """``disputeAccountState``'s arguments for the finding's leaf when its ``stateWord`` is
    not the account's word at its sequence number (or names a number the account has not
    reached); None when the word is real (the leaf names a real, maybe older, state). The
    account's whole history is replayed from the logs (``keeper/state_chain.py``): the state
    and chain at the leaf's sequence number, and the deltas from there to the live word."""
    account = f.posted.account
    seq = seq_of(f.posted.state_word)
    book = StateChainBook()
    at: tuple[int, bytes, CommittedState] | None = None
    for topics, data in _history(session, account, session.deployment.block):
        for d in book.deltas_of(topics, data):  # marked between two deltas of one event too
            if book.seq == seq and at is None:
                at = book.mark()
            book.apply(d)
    if book.seq == seq and at is None:
        at = book.mark()
    _require_live(session, account, book)
    if at is None:  # a sequence number beyond the live one: no proof needed
        empty = CommittedState(0, (), (), 0, 0)
        return (f.epoch, f.posted.to_abi(), list(f.proof), bytes(24), empty.to_abi(), [])
    _seq, chain, state = at
    if chain == f.posted.state_word[:24]:
        return None
    return (
        f.epoch,
        f.posted.to_abi(),
        list(f.proof),
        chain,
        state.to_abi(),
        [d.to_abi() for d in book.deltas],
    )


def account_claim(session: Session, api: KeeperApi, f: Finding) -> tuple[Any, ...]:
    """``disputeAccount``'s ``AccountClaim`` tuple for the finding's leaf."""
    arrays = f.build.arrays
    if arrays is None:
        raise CliError("the recomputation kept no risk arrays")
    account = f.posted.account
    state = next((a for a in f.snapshot.accounts if a.account == account), None)
    if state is None:
        raise CliError(f"subaccount {account} is not in the snapshot")
    if state.state_word != f.posted.state_word:
        raise CliError(
            f"the posted leaf of subaccount {account} names state word "
            f"0x{f.posted.state_word.hex()}, the account's was 0x{state.state_word.hex()}: a "
            "disputeAccountState case, not built by this command yet"
        )
    market = f.build.market
    inputs = chain_inputs(f.snapshot, market, DEFAULT_TOKEN_UNDERLYINGS)
    funding = funding_indices(f.snapshot, market, DEFAULT_FUNDING_RULE)
    (cash,) = account_cash(
        [state], f.snapshot.instruments, inputs.live, funding, inputs.settle_price
    )
    live_index = {ins.id: j for j, ins in enumerate(inputs.live)}
    book = _state_of(state, f.snapshot)
    committed = book.state()
    sizes: list[int] = []
    vectors: list[Any] = []
    instruments: list[tuple[Any, ...]] = []
    proofs: list[list[bytes]] = []
    for instrument, size, _index in committed.positions:
        if instrument not in live_index:
            continue  # expired at the epoch: its payoff is in the cash
        got = api.instrument(instrument, f.epoch)
        if got is None:
            raise CliError(f"the keeper API has no INSTRUMENT leaf {instrument} in epoch {f.epoch}")
        instruments.append(InstrumentLeaf.from_json(got.fields).to_abi())
        proofs.append(list(got.proof))
        sizes.append(size)
        vectors.append(RiskVectorWad.from_arrays(arrays, live_index[instrument]).to_abi())
    token_of = {t.address.lower(): (k, t) for k, t in enumerate(f.snapshot.tokens)}
    for token, amount in committed.collateral:
        k, t = token_of[token.lower()]
        sizes.append(
            amount * 10 ** (18 - t.decimals)
            if t.decimals <= 18
            else amount // 10 ** (t.decimals - 18)
        )
        vectors.append(RiskVectorWad.from_arrays(arrays, len(inputs.live) + k).to_abi())
    commit = _commitments(f.build, f.epoch)[0]
    deltas = _deltas_since(session, account, book, f.header.snapshot_block)
    return (
        f.epoch,
        f.posted.to_abi(),
        list(f.proof),
        committed.to_abi(),
        [d.to_abi() for d in deltas],
        instruments,
        proofs,
        cash,
        sizes,
        vectors,
        AggregationParamsWad.from_arrays(arrays).to_abi(),
        list(commit.token_vector_hashes),
        commit.market_hash,
    )


def dispute(
    session: Session,
    api: KeeperApi,
    params: RiskParams,
    *,
    epoch: int | None = None,
) -> None:
    """Check ``epoch`` (default: the latest the keeper API published) and dispute the first
    wrong ACCOUNT leaf; say so when every leaf is right."""
    if epoch is None:
        latest = api.latest_epoch()
        if latest is None:
            raise CliError("the keeper API has no mined epoch")
        epoch = int(latest["number"]) if "number" in latest else int(latest["epoch"])
    try:
        f = find_wrong_leaf(session, api, params, epoch)
    except _InputsDiffer as differ:
        _dispute_inputs(session, api, differ)
        return
    if f is None:
        session.echo(
            f"epoch {epoch}: every ACCOUNT and INSTRUMENT leaf is this recomputation's; nothing "
            "to dispute"
        )
        return
    posted_json, mine_json = f.posted.to_json(), f.mine.to_json()
    diff = {k: (v, mine_json[k]) for k, v in posted_json.items() if mine_json[k] != v}
    if isinstance(f, InstrumentFinding):
        session.echo(
            f"epoch {epoch}: instrument {f.posted.instrument}'s leaf differs (posted, "
            f"recomputed): {diff}"
        )
        session.send(
            session.vault.functions.disputeInstrument(
                instrument_claim(f.build, epoch, f.posted, f.proof, f.header)
            ),
            f"dispute instrument {f.posted.instrument}'s leaf of epoch {epoch}",
        )
    else:
        session.echo(
            f"epoch {epoch}: subaccount {f.posted.account}'s leaf differs (posted, "
            f"recomputed): {diff}"
        )
        if f.posted.state_word != f.mine.state_word:
            args = state_claim(session, f)
            if args is None:
                raise CliError(
                    f"subaccount {f.posted.account}'s leaf names the real state word "
                    f"0x{f.posted.state_word.hex()} of an older state than the snapshot's: its "
                    "numbers are that state's to check, which this command does not do yet"
                )
            session.echo(
                f"epoch {epoch}: subaccount {f.posted.account}'s leaf names state word "
                f"0x{f.posted.state_word.hex()}, which the account never had"
            )
            session.send(
                session.vault.functions.disputeAccountState(*args),
                f"dispute subaccount {f.posted.account}'s state word in epoch {epoch}",
            )
        else:
            claim = account_claim(session, api, f)
            session.send(
                session.vault.functions.disputeAccount(claim),
                f"dispute subaccount {f.posted.account}'s leaf of epoch {epoch}",
            )
    if not session.dry_run:
        due = int(session.vault.functions.payoutOf(session.address).call())
        session.echo(
            f"fraud proven: the vault is in safe mode; {due / 10**18:,.2f} USD of the bond is "
            f"yours (`pm claim-payout`)"
        )


def _dispute_inputs(session: Session, api: KeeperApi, d: _InputsDiffer) -> None:
    """The epoch committed other inputs than the recomputation's: read the inputs the keeper
    published (``GET /epoch/<n>/inputs``), check them against the header's ``inputsHash``, say
    what differs, and dispute the first committed scan range that does not follow from its
    committed returns (the one derived input provable on chain, docs/protocol.md §11).
    Raises :class:`CliError` when nothing is provable."""
    raw = api.dispute_inputs(d.epoch)
    if raw is None:
        raise CliError(f"{d}; the keeper API publishes no dispute inputs for it")
    try:
        pub = PublishedInputs.from_json(raw)
    except AttestationError as exc:
        raise CliError(f"epoch {d.epoch}: {exc}") from None
    if pub.inputs_hash() != d.header.inputs_hash:
        raise CliError(
            f"{d}; the keeper API's dispute inputs of epoch {d.epoch} do not hash to its "
            "header's inputsHash either"
        )
    mine = d.build.commitments
    if mine is not None and mine.market_inputs is not None and mine.range_params is not None:
        published_market = keccak(abi_encode([MARKET_INPUTS_ABI], [pub.market]))
        pairs = (
            ("market inputs", published_market, keccak(mine.market_inputs.encode())),
            ("range parameters", pub.range_params_hash, keccak(mine.range_params.encode())),
            ("aggregation parameters", pub.params_hash, mine.params_hash),
            ("token vectors", pub.token_vectors_hash, keccak(b"".join(mine.token_vector_hashes))),
        )
        differs = [name for name, theirs, ours in pairs if theirs != ours]
        session.echo(
            f"epoch {d.epoch}: its committed inputs differ from this recomputation's in: "
            f"{', '.join(differs) or 'the vector parameters or the snapshot hash'}"
        )
    vault = session.vault
    for u in range(len(pub.market[1])):
        claim = (
            d.epoch,
            u,
            list(pub.returns[u]),
            pub.market,
            pub.vector_params_hash,
            pub.range_params,
            pub.snapshot_hash,
            pub.params_hash,
            pub.token_vectors_hash,
        )
        try:
            vault.functions.disputeRange(claim).call({"from": session.address})
        except ContractLogicError:
            continue  # honest (ScanRangeIsHonest), or not disputable
        symbol = bytes(pub.market[1][u][0]).rstrip(b"\0").decode(errors="replace")
        session.echo(f"epoch {d.epoch}: the committed scan range of {symbol} is not its returns'")
        session.send(
            vault.functions.disputeRange(claim),
            f"dispute {symbol}'s scan range of epoch {d.epoch}",
        )
        if not session.dry_run:
            due = int(vault.functions.payoutOf(session.address).call())
            session.echo(
                f"fraud proven: the vault is in safe mode; {due / 10**18:,.2f} USD of the bond "
                "is yours (`pm claim-payout`)"
            )
        return
    raise CliError(
        f"{d}; every committed scan range follows from its committed returns: what differs is "
        "not provable on chain (docs/protocol.md §11, docs/security.md §1)"
    )
