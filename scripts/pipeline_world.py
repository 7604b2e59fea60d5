"""A deployed market for the keeper pipeline (tests, benchmark, demos).

``build_world(w3)`` deploys the mocks and the vault (USDC cash, WETH and WBTC collateral),
registers an ETH perp, a BTC perp, an ETH call and an ETH put, sets 3 signers with quorum
2, and funds a keeper sender. An actor (a key) acts through its first subaccount, created on
first use. ``make_pipeline(world, store)`` returns an
:class:`~keeper.pipeline.EpochPipeline` on a seeded simulator whose prices start where the
instruments were struck. Keys are derived from labels (test keys, never real ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.types import RPCEndpoint, TxReceipt

from keeper.abi import vault_abi
from keeper.attestation import InstrumentProof, MarginProof
from keeper.chain import ChainAdapter
from keeper.eip712 import Domain, Leg, Quote, sign_quote
from keeper.feeds import SimConfig, SimulatedFeed
from keeper.gas import Fees, FixedFeeStrategy
from keeper.metrics import KeeperMetrics
from keeper.pipeline import EpochPipeline, Hook
from keeper.signers import EpochSigner, LocalSigner
from keeper.store import Store
from keeper.txmanager import TxManager
from risk_engine import load_params
from risk_engine.units import WAD
from scripts.client import DeploymentInfo, VaultAccountState, read_account_state
from scripts.deploy import send, token_at, vault_at
from scripts.protocol_deploy import CollateralSpec, InstrumentSpec, deploy_protocol
from scripts.toolchain.compile import CompileResult

USDC6 = 10**6
#: Prices the simulator starts at (USD) and the strikes are set around.
START_PRICES = {"BTC": 65_000.0, "ETH": 3_500.0, "SOL": 150.0, "GOV": 2.0}


def labelled_key(label: str) -> LocalAccount:
    acct: LocalAccount = Account.from_key(keccak(text=f"portfolio-margin keeper world {label}"))
    return acct


#: An actor of the world (its key) or one of its subaccounts (an id).
Who = LocalAccount | int


@dataclass
class World:
    """The deployed market and its actors. An actor is a key; what it trades with is its
    first subaccount (:meth:`account`, created on first use), unless a method is given an
    id."""

    w3: Web3
    deployment: DeploymentInfo
    vault: Contract
    usdc: Contract
    tokens: dict[str, Contract]
    owner: str
    signer_keys: list[str]
    sender: LocalAccount
    instruments: dict[str, int]
    expiry: int
    actors: dict[str, LocalAccount] = field(default_factory=dict)
    first_accounts: dict[str, int] = field(default_factory=dict)  # actor address -> id

    @property
    def abi(self) -> list[dict[str, Any]]:
        return vault_abi()

    @property
    def domain(self) -> Domain:
        return Domain(self.w3.eth.chain_id, self.vault.address)

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def tx(self, fn: ContractFunction, sender: str | LocalAccount) -> TxReceipt:
        who = sender.address if isinstance(sender, LocalAccount) else sender
        return send(fn, who, self.abi)

    def actor(self, label: str) -> LocalAccount:
        """A funded key whose transactions the Web3 middleware signs."""
        if label not in self.actors:
            acct = labelled_key(label)
            self.w3.provider.make_request(
                RPCEndpoint("anvil_setBalance"), [acct.address, hex(100 * WAD)]
            )
            self.w3.middleware_onion.inject(
                SignAndSendRawMiddlewareBuilder.build([acct]), name=f"sign-{label}", layer=0
            )
            self.actors[label] = acct
        return self.actors[label]

    def new_account(self, owner: LocalAccount) -> int:
        """A new subaccount of ``owner`` (``createSubaccount``): its id."""
        receipt = self.tx(self.vault.functions.createSubaccount(), owner)
        (ev,) = self.vault.events.SubaccountTransferred().process_receipt(receipt, errors=DISCARD)
        account = int(ev["args"]["account"])
        self.first_accounts.setdefault(owner.address, account)
        return account

    def account(self, who: Who) -> int:
        """``who`` if it is an id, else the actor's first subaccount (created on first use)."""
        if isinstance(who, int):
            return who
        if who.address not in self.first_accounts:
            self.new_account(who)
        return self.first_accounts[who.address]

    def owner_of(self, account: int) -> str:
        return str(self.vault.functions.ownerOf(account).call())

    def _sender(self, who: Who) -> LocalAccount:
        """The key that acts for ``who``: the actor, or the owner of the id among the actors."""
        if isinstance(who, LocalAccount):
            return who
        owner = self.owner_of(who).lower()
        for acct in self.actors.values():
            if acct.address.lower() == owner:
                return acct
        raise KeyError(f"subaccount {who} is owned by {owner}, not by an actor of this world")

    def fund_cash(self, who: Who, usd: int) -> None:
        """Mint ``usd`` USDC to the owner of ``who`` and deposit it as cash into ``who``."""
        acct, account = self._sender(who), self.account(who)
        amount6 = usd * USDC6
        self.tx(self.usdc.functions.mint(acct.address, amount6), acct)
        self.tx(self.usdc.functions.approve(self.vault.address, 2**256 - 1), acct)
        self.tx(self.vault.functions.depositCash(account, amount6), acct)

    def disputes_on(self, window: int = 3_600, bond_usd: int = 100) -> None:
        """The owner turns the challenge window on (``window`` seconds, a ``bond_usd`` minimum
        bond) and an actor posts that bond: epochs are disputable from the next one
        (docs/protocol.md §10)."""
        self.tx(self.vault.functions.setDisputeConfig(window, bond_usd * USDC6), self.owner)
        bonder = self.actor("bonder")
        self.tx(self.usdc.functions.mint(bonder.address, bond_usd * USDC6), bonder)
        self.tx(self.usdc.functions.approve(self.vault.address, bond_usd * USDC6), bonder)
        self.tx(self.vault.functions.postBond(bond_usd * USDC6), bonder)

    def fund_wallet(self, who: LocalAccount, usd: int) -> None:
        """Mint ``usd`` USDC to ``who``'s wallet (not deposited): a liquidator's capital."""
        self.tx(self.usdc.functions.mint(who.address, usd * USDC6), who)

    def fund_token(self, who: Who, symbol: str, amount: int) -> None:
        acct, account = self._sender(who), self.account(who)
        t = self.tokens[symbol]
        self.tx(t.functions.mint(acct.address, amount), acct)
        self.tx(t.functions.approve(self.vault.address, 2**256 - 1), acct)
        self.tx(self.vault.functions.deposit(account, t.address, amount), acct)

    def state(self, who: Who) -> VaultAccountState:
        return read_account_state(self.vault, self.account(who))

    def quote(
        self,
        maker: Who,
        taker: Who,
        legs: Sequence[tuple[str, float, float]],
        *,
        nonce: int = 1,
    ) -> tuple[Quote, bytes]:
        """A quote signed by the owner of ``maker`` for its subaccount; legs are
        ``(instrument name, maker size, price)`` (floats, converted exactly enough for
        tests). Only the taker's key may fill it."""
        signer = self._sender(maker)
        q = Quote(
            maker=signer.address,
            maker_account=self.account(maker),
            taker=self._sender(taker).address,
            legs=tuple(
                Leg(self.instruments[n], int(round(size * WAD)), int(round(price * WAD)))
                for n, size, price in legs
            ),
            nonce=nonce,
            deadline=self.now() + 3600,
        )
        return q, sign_quote(q, signer, self.domain)

    def execute(
        self,
        q: Quote,
        sig: bytes,
        taker: Who,
        leaves: dict[str, Any],
    ) -> Any:
        """Fill ``q`` into ``taker`` with proofs taken from ``leaves`` (``{"instrument:<id>":
        leafjson, "account:<id>": leafjson}`` as the store holds them); a missing account
        leaf is an empty proof (an account with no positions)."""
        legs = [
            InstrumentProof.from_json(leaves[f"instrument:{leg.instrument}"]).to_abi()
            for leg in q.legs
        ]
        taker_account = self.account(taker)
        return self.tx(
            self.vault.functions.executeQuote(
                q.to_abi(),
                sig,
                legs,
                self.margin_proof(leaves, q.maker_account).to_abi(),
                taker_account,
                self.margin_proof(leaves, taker_account).to_abi(),
            ),
            self._sender(taker),
        )

    @staticmethod
    def margin_proof(leaves: dict[str, Any], account: int) -> MarginProof:
        key = f"account:{account}"
        if key in leaves:
            return MarginProof.from_json(leaves[key])
        return MarginProof.empty(account)


def signer_keys(n: int = 3) -> list[str]:
    """The world's signer keys (derived from labels: test keys only)."""
    return ["0x" + keccak(text=f"keeper world signer {i}").hex() for i in range(n)]


def leaves_from_store(store: Store, epoch: int) -> dict[str, Any]:
    """``{"account:<id>"|"instrument:<id>": leaf JSON}`` of an epoch, as the API serves."""
    return {f"{r.kind}:{r.key}": r.to_dict() for r in store.get_leaves(epoch)}


#: The world's instruments: (name, kind 0 PERP / 1 CALL / 2 PUT, underlying, strike USD);
#: the options expire ``expiry_days`` after the deployment.
WORLD_INSTRUMENTS: tuple[tuple[str, int, str, int], ...] = (
    ("ETH-PERP", 0, "ETH", 0),
    ("BTC-PERP", 0, "BTC", 0),
    ("ETH-C-3500", 1, "ETH", 3_500),
    ("ETH-P-3000", 2, "ETH", 3_000),
)


def build_world(
    w3: Web3,
    *,
    compiled: CompileResult | None = None,
    expiry_days: int = 30,
    max_age: int = 3600,
    collateral: Sequence[CollateralSpec] = (("WETH", 18, "ETH"), ("WBTC", 8, "BTC")),
) -> World:
    """Deploy the world through :func:`scripts.protocol_deploy.deploy_protocol` (the one
    deployment of ``pm deploy``, the demo and the tests): its instruments, 3 signers with
    quorum 2."""
    owner = w3.eth.accounts[0]
    expiry = int(w3.eth.get_block("latest")["timestamp"]) + expiry_days * 86_400
    keys = signer_keys()
    d = deploy_protocol(
        w3,
        owner=owner,
        signers=[Account.from_key(k).address for k in keys],
        quorum=2,
        collateral=collateral,
        instruments=[
            InstrumentSpec(kind, u, strike * WAD, expiry if kind else 0)
            for _, kind, u, strike in WORLD_INSTRUMENTS
        ],
        max_age=max_age,
        future_tolerance=60,
        compiled=compiled,
    )
    sender = labelled_key("keeper sender")
    w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [sender.address, hex(10_000 * WAD)])
    return World(
        w3=w3,
        deployment=d,
        vault=vault_at(w3, d.vault),
        usdc=token_at(w3, d.settlement_token),
        tokens={s: token_at(w3, a) for s, a in d.collateral.items()},
        owner=owner,
        signer_keys=keys,
        sender=sender,
        instruments={w[0]: i.id for w, i in zip(WORLD_INSTRUMENTS, d.instruments, strict=True)},
        expiry=expiry,
    )


def make_feed_at(
    start_time: int, *, seed: int = 7, time_scale: float = 1.0, expiries: Sequence[int] = ()
) -> SimulatedFeed:
    """The seeded simulator starting at :data:`START_PRICES` at ``start_time``."""
    cfg = SimConfig(
        initial_prices=tuple(START_PRICES[s] for s in SimConfig().symbols),
        time_scale=time_scale,
    )
    return SimulatedFeed(
        cfg, np.random.default_rng(seed), start_time=start_time, expiries=list(expiries) or None
    )


def make_feed(world: World, *, seed: int = 7, time_scale: float = 1.0) -> SimulatedFeed:
    return make_feed_at(world.now(), seed=seed, time_scale=time_scale, expiries=[world.expiry])


def make_pipeline(
    world: World,
    store: Store,
    *,
    w3: Web3 | None = None,
    feed: SimulatedFeed | None = None,
    signer: EpochSigner | None = None,
    send_tx: bool = True,
    hook: Hook | None = None,
    metrics: KeeperMetrics | None = None,
    batch_size: int = 200,
    receipt_timeout: float = 30.0,
    stuck_after: float = 30.0,
) -> EpochPipeline:
    """A pipeline on ``world`` (``w3`` may be another connection, e.g. through a proxy)."""
    w3 = w3 or world.w3
    chain = ChainAdapter(w3, world.vault.address, store=store, batch_size=batch_size)
    tx = (
        TxManager(
            w3,
            world.sender,
            gas=FixedFeeStrategy(Fees(20 * 10**9, 10**9)),
            fee_cap_wei=500 * 10**9,
            store=store,
            receipt_timeout=receipt_timeout,
            stuck_after=stuck_after,
            poll_interval=0.05,
        )
        if send_tx
        else None
    )
    return EpochPipeline(
        chain,
        feed or make_feed(world),
        store,
        signer or LocalSigner(world.signer_keys),
        load_params(),
        tx=tx,
        metrics=metrics,
        hook=hook,
    )
