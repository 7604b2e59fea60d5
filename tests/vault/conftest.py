"""Shared fixtures: chains (a real Anvil per session, eth-tester in process) and a deployed
vault with a small market, reset between tests by chain snapshots. Each trader (alice, bob,
carol) owns one subaccount, created at deployment (ids 1, 2, 3); the helpers take the
trader's key and act on its subaccount.

Anvil is started on a free port once per test session (``anvil --port P --silent``) and
stopped at the end, by its own process handle. Tests that use it carry
``@pytest.mark.anvil`` (the ``chain`` fixture adds the mark to its anvil parameter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.middleware import SignAndSendRawMiddlewareBuilder

from keeper.attestation import AccountLeaf, InstrumentLeaf, MerkleTree
from keeper.eip712 import Domain, Epoch, FundingUpdate, Settlement, TokenPrice, sign_epoch
from keeper.errors import VaultRevert
from keeper.revert import as_vault_revert
from risk_engine.units import WAD
from scripts.anvil import AnvilNode, start_anvil
from scripts.deploy import send, token_at, vault_at
from scripts.protocol_deploy import InstrumentSpec, deploy_protocol
from scripts.toolchain.compile import CompileResult, compile_contracts

USDC6 = 10**6
MAX_AGE = 3600
FUTURE_TOLERANCE = 60


def _key(label: str) -> LocalAccount:
    acct: LocalAccount = Account.from_key(keccak(text=f"portfolio-margin test key {label}"))
    return acct


# ------------------------------------------------------------------------------ chains


@dataclass
class Chain:
    """A Web3 connection plus the few test-node controls the tests need."""

    kind: str
    w3: Web3
    _tester: Any = None

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def snapshot(self) -> Any:
        if self._tester is not None:
            return self._tester.take_snapshot()
        return self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]

    def revert(self, snap: Any) -> None:
        if self._tester is not None:
            self._tester.revert_to_snapshot(snap)
        else:
            assert self.w3.provider.make_request("evm_revert", [snap])["result"]  # type: ignore[arg-type]

    def mine_at(self, timestamp: int) -> None:
        """Mine one block with ``timestamp`` (strictly after the latest)."""
        if self._tester is not None:
            self._tester.time_travel(timestamp)
        else:
            self.w3.provider.make_request("evm_mine", [timestamp])  # type: ignore[arg-type]

    def advance(self, seconds: int) -> None:
        self.mine_at(self.now() + seconds)


@pytest.fixture(scope="session")
def compiled() -> CompileResult:
    return compile_contracts()


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    node = start_anvil()
    try:
        yield node
    finally:
        node.stop()


def _eth_tester_chain() -> Chain:
    provider = EthereumTesterProvider()
    return Chain("eth-tester", Web3(provider), provider.ethereum_tester)


@pytest.fixture(scope="session")
def _chains() -> dict[str, Chain]:
    return {}


def _get_chain(kind: str, request: pytest.FixtureRequest, chains: dict[str, Chain]) -> Chain:
    """One chain of each kind per session (one eth-tester, one Anvil process)."""
    if kind not in chains:
        if kind == "anvil":
            node: AnvilNode = request.getfixturevalue("anvil_node")
            chains[kind] = Chain("anvil", node.web3())
        else:
            chains[kind] = _eth_tester_chain()
    return chains[kind]


@pytest.fixture(
    scope="session",
    params=["eth-tester", pytest.param("anvil", marks=pytest.mark.anvil)],
)
def chain(request: pytest.FixtureRequest, _chains: dict[str, Chain]) -> Chain:
    """Each test using it runs on both chains: in process, and on the session's Anvil."""
    return _get_chain(request.param, request, _chains)


# ------------------------------------------------------------------------------ vault


#: A trader (its key: the helpers act on its subaccount) or a subaccount id.
Who = LocalAccount | int


@dataclass
class Market:
    """A deployed vault with USDC (6), WETH (18), a perp and a call on ETH, 3 signers
    (quorum 2), and funded actors, each owning one subaccount (``accounts``: address ->
    id). ``post_epoch`` builds, signs and posts an epoch."""

    chain: Chain
    compiled: CompileResult
    vault: Contract
    usdc: Contract
    weth: Contract
    owner: str
    signers: list[LocalAccount]
    alice: LocalAccount
    bob: LocalAccount
    carol: LocalAccount
    perp: int
    call: int
    call_expiry: int
    accounts: dict[str, int] = field(default_factory=dict)
    epoch: int = 0
    tree: MerkleTree | None = None
    gas: dict[str, int] = field(default_factory=dict)

    @property
    def w3(self) -> Web3:
        return self.chain.w3

    @property
    def abi(self) -> list[dict[str, Any]]:
        return list(self.vault.abi)

    @property
    def domain(self) -> Domain:
        return Domain(self.w3.eth.chain_id, self.vault.address)

    def tx(self, fn: Any, sender: str | LocalAccount, label: str | None = None) -> Any:
        who = sender.address if isinstance(sender, LocalAccount) else sender
        receipt = send(fn, who, self.abi)
        if label:
            self.gas[label] = int(receipt["gasUsed"])
        return receipt

    def revert_of(self, fn: Any, sender: str | LocalAccount) -> VaultRevert:
        """Send ``fn`` expecting a revert; return the decoded revert."""
        who = sender.address if isinstance(sender, LocalAccount) else sender
        with pytest.raises(VaultRevert) as info:
            send(fn, who, self.abi)
        return info.value

    def revert_of_call(self, fn: Any) -> VaultRevert:
        """``eth_call`` ``fn`` (a view) expecting a revert; return the decoded revert."""
        with pytest.raises(Exception) as info:  # noqa: PT011 - web3 / eth-tester types differ
            fn.call()
        decoded = as_vault_revert(info.value, self.abi)
        assert decoded is not None, f"no revert data in {info.value!r}"
        return decoded

    def acct(self, who: Who) -> int:
        """The subaccount of trader ``who`` (or ``who`` itself, an id)."""
        return who if isinstance(who, int) else self.accounts[who.address]

    def new_account(self, owner: LocalAccount) -> int:
        """A further subaccount of ``owner`` (``createSubaccount``): its id."""
        receipt = self.tx(self.vault.functions.createSubaccount(), owner)
        ev = self.vault.events.SubaccountTransferred().process_receipt(receipt, errors=DISCARD)
        return int(ev[0]["args"]["account"])

    def state(self, who: Who) -> dict[str, Any]:
        r = self.vault.functions.accountState(self.acct(who)).call()
        keys = ("cash", "stateNonce", "cumLo", "cumHi", "instruments", "sizes", "funding", "coll")
        return dict(zip(keys, r, strict=True))

    def size(self, who: Who, instrument: int) -> int:
        return int(self.vault.functions.position(self.acct(who), instrument).call()[0])

    def leaf(self, who: Who, *, equity: int, im: int, mm: int) -> AccountLeaf:
        """An ACCOUNT leaf with the vault's current nonce, running sums and state chain word
        (the snapshot)."""
        s = self.state(who)
        word = bytes(self.vault.functions.stateChain(self.acct(who)).call())
        return AccountLeaf(
            self.acct(who), s["stateNonce"], s["cumLo"], s["cumHi"], equity, im, mm, word
        )

    def header(
        self,
        leaves: list[AccountLeaf | InstrumentLeaf],
        *,
        weth_price: int = 3_000 * WAD,
        down: int = 15 * WAD // 100,
        up: int = 20 * WAD // 100,
        funding: tuple[FundingUpdate, ...] = (),
        settlements: tuple[Settlement, ...] = (),
        timestamp: int | None = None,
        epoch: int | None = None,
        config_version: int | None = None,
    ) -> Epoch:
        tree = MerkleTree(leaves)
        self.tree = tree
        return Epoch(
            epoch=self.epoch + 1 if epoch is None else epoch,
            snapshot_block=self.w3.eth.block_number,
            timestamp=self.chain.now() if timestamp is None else timestamp,
            root=tree.root,
            config_version=(
                int(self.vault.functions.configVersion().call())
                if config_version is None
                else config_version
            ),
            tokens=(TokenPrice(self.weth.address, weth_price, down, up),),
            funding=funding,
            settlements=settlements,
        )

    def ready(self, header: Epoch) -> None:
        """Mine a block on top of the snapshot if needed: Anvil simulates (estimateGas) in the
        context of the latest block, where `snapshotBlock < block.number` must already hold."""
        if self.w3.eth.block_number <= header.snapshot_block:
            self.chain.advance(1)

    def post(self, header: Epoch, keys: list[LocalAccount] | None = None) -> Any:
        self.ready(header)
        sigs = sign_epoch(header, keys if keys is not None else self.signers[:2], self.domain)
        receipt = self.tx(
            self.vault.functions.postEpoch(header.to_abi(), sigs), self.owner, "postEpoch"
        )
        self.epoch = header.epoch
        return receipt

    def owner_key(self, who: Who) -> LocalAccount:
        """The trader's key that owns ``who`` (a trader is its own)."""
        if isinstance(who, LocalAccount):
            return who
        owner = self.vault.functions.ownerOf(who).call()
        return next(k for k in (self.alice, self.bob, self.carol) if k.address == owner)

    def fund_usdc(self, who: Who, amount6: int, *, deposit: bool = True) -> None:
        """Mint ``amount6`` USDC to the owner of ``who`` and (``deposit``) deposit it as
        cash into ``who``'s subaccount."""
        key = self.owner_key(who)
        self.tx(self.usdc.functions.mint(key.address, amount6), key)
        self.tx(self.usdc.functions.approve(self.vault.address, 2**256 - 1), key)
        if deposit:
            self.tx(self.vault.functions.depositCash(self.acct(who), amount6), key, "depositCash")

    def fund_weth(self, who: Who, amount: int, *, deposit: bool = True) -> None:
        """As :meth:`fund_usdc`, in WETH."""
        key = self.owner_key(who)
        self.tx(self.weth.functions.mint(key.address, amount), key)
        self.tx(self.weth.functions.approve(self.vault.address, 2**256 - 1), key)
        if deposit:
            self.tx(
                self.vault.functions.deposit(self.acct(who), self.weth.address, amount),
                key,
                "deposit",
            )


def _build_market(chain: Chain, compiled: CompileResult) -> Market:
    w3 = chain.w3
    actors = {name: _key(name) for name in ("alice", "bob", "carol")}
    signers = sorted((_key(f"signer-{i}") for i in range(3)), key=lambda a: int(a.address, 16))
    funder = w3.eth.accounts[0]
    w3.middleware_onion.inject(
        SignAndSendRawMiddlewareBuilder.build(list(actors.values())), layer=0
    )
    for a in actors.values():
        tx = w3.eth.send_transaction({"from": funder, "to": a.address, "value": 100 * WAD})
        w3.eth.wait_for_transaction_receipt(tx)
    call_expiry = chain.now() + 30 * 86_400
    d = deploy_protocol(
        w3,
        owner=funder,
        signers=[s.address for s in signers],
        quorum=2,
        collateral=(("WETH", 18, "ETH"),),
        instruments=(
            InstrumentSpec(0, "ETH", 0, 0),
            InstrumentSpec(1, "ETH", 3_000 * WAD, call_expiry),
        ),
        max_age=MAX_AGE,
        future_tolerance=FUTURE_TOLERANCE,
        compiled=compiled,
    )
    perp, call = (i.id for i in d.instruments)
    m = Market(
        chain=chain,
        compiled=compiled,
        vault=vault_at(w3, d.vault),
        usdc=token_at(w3, d.settlement_token),
        weth=token_at(w3, d.collateral["WETH"]),
        owner=funder,
        signers=signers,
        perp=perp,
        call=call,
        call_expiry=call_expiry,
        **actors,
    )
    # one subaccount per trader, in this order: alice 1, bob 2, carol 3
    m.accounts = {a.address: m.new_account(a) for a in actors.values()}
    return m


@pytest.fixture(scope="session")
def _market_cache() -> dict[str, tuple[Market, Any]]:
    return {}


def _use_market(
    chain: Chain, compiled: CompileResult, cache: dict[str, tuple[Market, Any]]
) -> Iterator[Market]:
    if chain.kind not in cache:
        m = _build_market(chain, compiled)
        cache[chain.kind] = (m, chain.snapshot())
    m, snap = cache[chain.kind]
    m.epoch, m.tree, m.gas = 0, None, {}
    try:
        yield m
    finally:
        chain.revert(snap)
        if chain.kind == "anvil":
            # evm_revert consumes the snapshot on Anvil: take a new one at the same state.
            cache[chain.kind] = (m, chain.snapshot())


@pytest.fixture
def market(
    chain: Chain, compiled: CompileResult, _market_cache: dict[str, tuple[Market, Any]]
) -> Iterator[Market]:
    """A fresh deployed market per test, on each chain: deployed once per chain, then reset
    to the deployed state by a chain snapshot after every test."""
    yield from _use_market(chain, compiled, _market_cache)


@pytest.fixture
def anvil_market(
    request: pytest.FixtureRequest,
    compiled: CompileResult,
    _chains: dict[str, Chain],
    _market_cache: dict[str, tuple[Market, Any]],
) -> Iterator[Market]:
    """The market on Anvil only (mark the test ``@pytest.mark.anvil``)."""
    yield from _use_market(_get_chain("anvil", request, _chains), compiled, _market_cache)


@pytest.fixture
def tester_market(
    request: pytest.FixtureRequest,
    compiled: CompileResult,
    _chains: dict[str, Chain],
    _market_cache: dict[str, tuple[Market, Any]],
) -> Iterator[Market]:
    """The market on eth-tester only."""
    yield from _use_market(_get_chain("eth-tester", request, _chains), compiled, _market_cache)


RevertCheck = Callable[[Market], VaultRevert]
__all__ = ["Chain", "Market", "RevertCheck", "USDC6", "Who", "as_vault_revert"]
