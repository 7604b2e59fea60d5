"""The crash scenario: three books on a fresh chain, the keeper and the liquidator bot running,
then BTC and ETH -30 % with a volatility spike through the simulated feed.

The books (each trader takes an RFQ quote that a dealer signs; sizes are the trader's):

==============  ===============================================================  ========
book            positions                                                        hedged
==============  ===============================================================  ========
``options-mm``  short 2 BTC 65k straddles, long 2 BTC 60k/70k strangles (the     yes
                crash wings), delta-hedged with BTC-PERP at the attested market
``carry``       10 WETH collateral, short 10 ETH-PERP (cash and carry)           yes
``naked``       short 10 ETH 3200 puts                                           no
==============  ===============================================================  ========

A trade must pass the vault's IM lower bound, which adds each leg's standalone loss per unit
(docs/protocol.md §5): opening a book takes about its isolated margin for one epoch. So the
cash books open with that much cash; once the next epoch has netted the book, each keeps
``capital_multiple`` x its portfolio IM as equity (the options book withdraws the rest, the
naked book tops up). The cash-and-carry book keeps its 10 WETH (its long leg) and no cash.

Each participant trades through one subaccount of its key (created by its first deposit).
The liquidator holds no subaccount and no vault balance: only a modest wallet of USDC
(:data:`LIQUIDATOR_WALLET_USD`). The bot takes the naked book over by transfer
(docs/protocol.md §6): the subaccount, its positions and cash change owner in one
transaction, and the bot deposits what brings it to IM (IM deficit + pay + fee - covered).

What the scenario asserts on chain (:func:`verify_outcome`): a ``Liquidated`` event for the
naked book's subaccount, which the liquidator now owns with the positions it opened, at or
above IM after the transaction (``imSurplusLo`` with the same leaf), the previous owner's
payout claimable, the liquidator's deposit within its wallet; none for the hedged books,
which still hold what they opened and which ``checkLiquidation`` (with their leaf of the last
epoch) calls not liquidatable.

Anvil, the keeper and the bot run in this process (scripts/demo_stack.py); the traders act
through the same flows as the ``pm`` commands (scripts/seed.py, funds.py, trading.py). The
one entry point that runs the scenario is ``scripts/demo.py`` (``make demo``, ``pm demo``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3.types import BlockIdentifier

from keeper.bounds import trade_bound, unattested_surplus_lo
from keeper.chain import AccountState, ChainAdapter, Position
from keeper.epoch_build import compute_epoch
from keeper.feeds.base import SECONDS_PER_YEAR, MarketState
from keeper.revert import decode_revert
from risk_engine import black76_spot_delta, load_params
from risk_engine.books import hedge_size
from risk_engine.isolated import IsolatedMargin
from risk_engine.units import WAD
from scripts.client import InstrumentInfo, Session, format_units
from scripts.demo_stack import Stack, StackSettings, demo_key
from scripts.errors import CliError, ScenarioError
from scripts.funds import deposit_cash, withdraw_cash, withdrawable_cash6
from scripts.seed import SeedPlan, seed_account
from scripts.trading import make_quote, take_quote

__all__ = [
    "BOOKS",
    "BookSpec",
    "CapitalRow",
    "Check",
    "CrashResult",
    "EpochRow",
    "Fill",
    "Liquidation",
    "Participants",
    "Settings",
    "capital_table",
    "epoch_row",
    "open_books",
    "run_crash",
    "verify_outcome",
    "write_reports",
]

log = logging.getLogger("scripts.crash")

DEALER_CASH_USD = 2_000_000
#: The liquidator's wallet (USDC, not deposited): what it may deposit into the subaccounts it
#: takes over. A liquidation by transfer needs only the target's IM deficit + pay + fee.
LIQUIDATOR_WALLET_USD = 10_000
#: Opening cash = this x the trade's IM bound (sum of the legs' losses per unit), in
#: whole thousands of USD: the bound moves with the market between quote and fill.
OPENING_MARGIN = Decimal("1.25")


# --------------------------------------------------------------------------- settings, books


@dataclass(frozen=True)
class Settings:
    """Knobs of one run: the stack's (seed, intervals, time scale) and the scenario's."""

    stack: StackSettings = field(default_factory=StackSettings)
    calm_epochs: int = 4  # epochs shown between the books being ready and the crash
    after_epochs: int = 2  # epochs watched after the liquidation
    liquidation_epochs: int = 6  # the naked book must be liquidated within this many epochs
    shock: Mapping[str, float] = field(default_factory=lambda: {"BTC": -0.30, "ETH": -0.30})
    vol_spike: float = 0.40  # ATM vol points added to every shocked underlying
    capital_multiple: Decimal = Decimal(2)  # equity each cash book keeps, x its portfolio IM


@dataclass(frozen=True)
class BookSpec:
    """A trader's book. ``legs``: (instrument name, or its prefix without the date; size in
    units from the trader's side). ``collateral``: token symbol -> whole tokens deposited.
    ``delta_hedge``: the perp that hedges the option legs' delta, or None."""

    label: str
    title: str
    hedged: bool
    legs: tuple[tuple[str, Decimal], ...]
    collateral: Mapping[str, str] = field(default_factory=dict)
    delta_hedge: str | None = None


BOOKS: tuple[BookSpec, ...] = (
    BookSpec(
        "options-mm",
        "delta-hedged options market maker",
        True,
        (
            ("BTC-C-65000", Decimal(-2)),
            ("BTC-P-65000", Decimal(-2)),
            ("BTC-C-70000", Decimal(2)),
            ("BTC-P-60000", Decimal(2)),
        ),
        delta_hedge="BTC-PERP",
    ),
    BookSpec(
        "carry",
        "cash-and-carry trader",
        True,
        (("ETH-PERP", Decimal(-10)),),
        collateral={"WETH": "10"},
    ),
    BookSpec("naked", "naked short-put seller", False, (("ETH-P-3200", Decimal(-10)),)),
)


@dataclass(frozen=True)
class Fill:
    """One leg as filled: the trader's size (units) at ``price`` (USD per unit)."""

    instrument: str
    instrument_id: int
    size: Decimal
    price: Decimal


@dataclass
class Book:
    """A participant: its key (``account``), the session acting with it and the subaccount
    it trades through (``subaccount``, set by its first deposit)."""

    spec: BookSpec
    account: LocalAccount
    session: Session
    subaccount: int = 0
    fills: list[Fill] = field(default_factory=list)
    trade_tx: str = ""
    trade_block: int = 0
    opening_cash_usd: int = 0
    capital_move_usd: Decimal = Decimal(0)  # > 0 withdrawn after netting, < 0 deposited

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def label(self) -> str:
        return self.spec.label


@dataclass
class Participants:
    dealer: Book
    liquidator: LocalAccount
    books: list[Book]

    def book(self, label: str) -> Book:
        return next(b for b in self.books if b.label == label)


# --------------------------------------------------------------------------- opening the books


def _session(stack: Stack, account: LocalAccount, echo: Callable[[str], None]) -> Session:
    return Session(stack.w3, stack.deployment, account, echo=echo)


def _wad(value: Decimal) -> int:
    return int(value * WAD)


def _instrument_leaf(stack: Stack, ins: InstrumentInfo) -> Mapping[str, Any]:
    leaf = stack.api.instrument(ins.id)
    if leaf is None:
        raise ScenarioError(f"the keeper API has no INSTRUMENT leaf for {ins.name}")
    return leaf.fields


def _delta(market: MarketState, ins: InstrumentInfo) -> float:
    """dV/dS per unit of an option on the attested smile (the engine's Black-76)."""
    smile = market.underlying(ins.underlying).smile_at(ins.expiry, market.timestamp)
    strike = ins.strike / WAD
    tenor = (ins.expiry - market.timestamp) / SECONDS_PER_YEAR
    spot = market.underlying(ins.underlying).spot
    return float(
        black76_spot_delta(
            spot, smile.forward, strike, tenor, smile.vol(strike), market.rate, ins.kind == 1
        )
    )


def _legs(stack: Stack, spec: BookSpec) -> list[tuple[InstrumentInfo, Decimal]]:
    dep = stack.deployment
    try:
        legs = [(dep.instrument(name), size) for name, size in spec.legs]
        if spec.delta_hedge is None:
            return legs
        hedge = dep.instrument(spec.delta_hedge)
    except CliError as exc:
        raise ScenarioError(str(exc)) from None
    market = stack.market(stack.synced_epoch())
    units = hedge_size((float(size), _delta(market, ins)) for ins, size in legs if ins.kind != 0)
    size = Decimal(units).quantize(Decimal("0.001"))
    return legs + ([(hedge, size)] if size else [])


def _opening_cash_usd(
    stack: Stack, spec: BookSpec, legs: Sequence[tuple[InstrumentInfo, Decimal]]
) -> int:
    """Cash that lets the fill pass the vault's IM lower bound of a first trade
    (docs/protocol.md §5; :func:`keeper.bounds.trade_bound` of each leg at its mark plus
    :func:`keeper.bounds.unattested_surplus_lo` of the book's collateral), times
    OPENING_MARGIN, in whole thousands of USD (rounded up)."""
    legs_lo = 0
    for ins, size in legs:
        f = _instrument_leaf(stack, ins)
        mark = int(f["mark"])  # the dealer quotes at the mark
        long_, short = int(f["lossPerUnitLong"]), int(f["lossPerUnitShort"])
        legs_lo += trade_bound(_wad(size), mark, mark, long_, short).lo
    prices: dict[str, Any] = {
        to_checksum_address(t[0]): t for t in stack.vault.functions.tokenPrices().call()
    }
    balances = []
    for sym, whole in spec.collateral.items():
        tok = stack.deployment.token(sym)
        _, price, down, _up = prices[tok.address]
        amount = int(Decimal(whole) * 10**tok.decimals)  # token units
        balances.append((amount, price, tok.decimals, down))
    need = -(unattested_surplus_lo(0, balances) + legs_lo)  # WAD USD the cash must cover
    cash = max(Decimal(0), Decimal(need) / WAD * OPENING_MARGIN)
    return int((cash / 1000).to_integral_value(ROUND_CEILING)) * 1000


def _fund(stack: Stack, who: Session, plan: SeedPlan) -> int:
    """Mint and deposit per ``plan`` (the first deposit creates the key's subaccount): the
    key's lowest subaccount, 0 when it holds none (nothing deposited)."""
    try:
        seed_account(who, plan)
    except CliError as exc:
        raise ScenarioError(f"funding {who.address}: {exc}") from None
    mine = who.subaccounts_of(who.address)
    return mine[0] if mine else 0


def _trade(
    stack: Stack,
    dealer: Book,
    book: Book,
    legs: Sequence[tuple[InstrumentInfo, Decimal]],
    nonce: int,
) -> None:
    """The dealer quotes every leg at its attested mark (one atomic RFQ); the trader fills."""
    quote_dir = stack.out_dir / "quotes"
    path = quote_dir / f"{book.label}.json"

    def fill() -> None:
        texts, fills = [], []
        for ins, size in legs:
            mark = int(_instrument_leaf(stack, ins)["mark"])
            price = Decimal(format_units(mark, 18))
            # The quote's sizes are the maker's: the dealer takes the other side.
            texts.append(f"{ins.id}:{-size}:{price}")
            fills.append(Fill(ins.name, ins.id, size, price))
        make_quote(
            dealer.session,
            texts,
            taker=book.address,
            nonce=nonce,
            ttl_seconds=600,
            out=path,
            account=dealer.subaccount,
        )
        take_quote(book.session, stack.api, path, book.subaccount)
        book.fills = fills

    stack.retrying(f"{book.label} trade", fill)
    (ev,) = stack.vault.events.QuoteExecuted().get_logs(
        from_block=stack.deployment.block,
        argument_filters={"makerAccount": dealer.subaccount, "takerAccount": book.subaccount},
    )
    book.trade_tx = "0x" + bytes(ev["transactionHash"]).hex()
    book.trade_block = int(ev["blockNumber"])


def _leaf_numbers(
    stack: Stack, account: int, epoch: int | None = None
) -> tuple[int, int, int] | None:
    leaf = stack.api.account(account, epoch=epoch)
    if leaf is None:
        return None
    f = leaf.fields
    return int(f["equity"]), int(f["im"]), int(f["mm"])


def _set_capital(stack: Stack, book: Book, settings: Settings) -> None:
    """Keep ``capital_multiple`` x the portfolio IM as equity: withdraw the rest of the
    opening cash, or deposit what is missing."""

    def excess() -> Decimal:
        nums = _leaf_numbers(stack, book.subaccount)
        if nums is None:
            raise ScenarioError(f"no ACCOUNT leaf for {book.label} after its trade")
        equity, im, _ = nums
        target = Decimal(im) / WAD * settings.capital_multiple
        return (Decimal(equity) / WAD - target).quantize(Decimal("0.01"), ROUND_FLOOR)

    def withdraw_excess() -> Decimal:
        # Recomputed on every attempt from the latest leaf, and capped by the vault's own
        # bound: on a loaded machine the epoch (and the bound) can move between the two.
        move = excess()
        most = withdrawable_cash6(book.session, stack.api, book.subaccount)
        if most is not None:
            unit = Decimal(10) ** stack.deployment.settlement.decimals
            move = min(move, (Decimal(most) / unit).quantize(Decimal("0.01"), ROUND_FLOOR))
        if move <= 0:
            return Decimal(0)
        withdraw_cash(book.session, stack.api, str(move), book.subaccount)
        return move

    move = excess()
    if move > 0:
        move = stack.retrying(f"{book.label} withdraw", withdraw_excess)
    elif move < 0:
        try:
            deposit_cash(book.session, str(-move), book.subaccount)
        except CliError as exc:
            raise ScenarioError(f"{book.label} deposit: {exc}") from None
    book.capital_move_usd = move


def open_books(
    stack: Stack, settings: Settings, echo: Callable[[str], None] | None = None
) -> Participants:
    """Fund the dealer and the three traders (one subaccount each) and the liquidator's
    wallet, fill the books, then set each cash book's capital to ``capital_multiple`` x its
    portfolio IM (see the module doc)."""
    say = stack.narrator
    quiet = echo or (lambda _text: None)
    stack.wait(lambda: stack.synced_epoch() >= 1, "the keeper's first epoch")
    dealer_acct, liq = demo_key("dealer"), demo_key("liquidator")
    dealer = Book(
        BookSpec("dealer", "RFQ dealer (counterparty)", False, ()),
        dealer_acct,
        _session(stack, dealer_acct, quiet),
    )
    books = [
        Book(spec, demo_key(spec.label), _session(stack, demo_key(spec.label), quiet))
        for spec in BOOKS
    ]
    dealer.subaccount = _fund(stack, dealer.session, SeedPlan(cash=str(DEALER_CASH_USD)))
    usdc = stack.deployment.settlement.symbol
    _fund(stack, _session(stack, liq, quiet), SeedPlan(mint={usdc: str(LIQUIDATOR_WALLET_USD)}))
    say.step(
        f"dealer {dealer.address} deposited {DEALER_CASH_USD:,} USD into subaccount "
        f"{dealer.subaccount}; liquidator {liq.address} holds {LIQUIDATOR_WALLET_USD:,} USD in "
        "its wallet, nothing in the vault"
    )
    planned: dict[str, list[tuple[InstrumentInfo, Decimal]]] = {}
    for book in books:
        legs = _legs(stack, book.spec)
        planned[book.label] = legs
        book.opening_cash_usd = _opening_cash_usd(stack, book.spec, legs)
        book.subaccount = _fund(
            stack,
            book.session,
            SeedPlan(deposit=dict(book.spec.collateral), cash=str(book.opening_cash_usd)),
        )
        what = [f"{v} {k}" for k, v in book.spec.collateral.items()]
        if book.opening_cash_usd:
            what.append(f"{book.opening_cash_usd:,} USD")
        say.step(
            f"{book.label:<10} {book.address} deposited {' + '.join(what)} into subaccount "
            f"{book.subaccount}"
        )
    funded = stack.w3.eth.block_number
    stack.wait_epoch_after(funded, "an epoch with the new accounts' leaves")
    for n, book in enumerate(books, start=1):
        _trade(stack, dealer, book, planned[book.label], nonce=n)
        legs_text = ", ".join(
            f"{'sold' if f.size < 0 else 'bought'} {abs(f.size)} {f.instrument} @ {f.price:,.2f}"
            for f in book.fills
        )
        tx = f"{book.trade_tx[:12]}.. (block {book.trade_block})"
        say.step(f"{book.label:<10} filled RFQ {tx}: {legs_text}")
    epoch = stack.wait_epoch_after(max(b.trade_block for b in books), "an epoch netting the books")
    for book in books:
        if book.spec.collateral:
            say.step(f"{book.label:<10} keeps its collateral as the long leg, no cash")
            continue
        _set_capital(stack, book, settings)
        nums = _leaf_numbers(stack, book.subaccount, epoch)
        im = Decimal(nums[1]) / WAD if nums else Decimal(0)
        verb = "withdrew" if book.capital_move_usd > 0 else "deposited"
        say.step(
            f"{book.label:<10} {verb} {abs(book.capital_move_usd):,.2f} USD: keeps "
            f"{settings.capital_multiple} x its portfolio IM ({im:,.2f} USD at epoch {epoch})"
        )
    stack.wait_epoch_after(stack.w3.eth.block_number, "an epoch after the capital moves")
    return Participants(dealer, liq, books)


# --------------------------------------------------------------------------- per-epoch numbers


@dataclass(frozen=True)
class EpochRow:
    """One epoch as posted: its market (spot USD per underlying), each book's ACCOUNT leaf
    (equity, IM, MM in USD; None when the book has no leaf) and which books' subaccounts
    had changed owner by its snapshot block (taken over)."""

    epoch: int
    snapshot_block: int
    timestamp: int
    spot: Mapping[str, float]
    leaves: Mapping[str, tuple[float, float, float] | None]
    taken_over: frozenset[str] = frozenset()


def epoch_row(stack: Stack, participants: Participants, epoch: int) -> EpochRow:
    rec = stack.api.epoch(epoch) or {}
    try:
        market = stack.market(epoch)
        spot = {u: market.underlying(u).spot for u in ("ETH", "BTC")}
    except (OSError, ValueError, KeyError):
        spot = {}
    leaves: dict[str, tuple[float, float, float] | None] = {}
    snapshot = int(rec.get("snapshotBlock", 0))
    taken: set[str] = set()
    for book in participants.books:
        nums = _leaf_numbers(stack, book.subaccount, epoch)
        if nums is None:
            leaves[book.label] = None
        else:
            equity, im, mm = nums
            leaves[book.label] = (equity / WAD, im / WAD, mm / WAD)
        owner = stack.vault.functions.ownerOf(book.subaccount).call(block_identifier=snapshot)
        if to_checksum_address(owner) != book.address:
            taken.add(book.label)
    return EpochRow(epoch, snapshot, int(rec.get("timestamp", 0)), spot, leaves, frozenset(taken))


# --------------------------------------------------------------------------- the crash


@dataclass(frozen=True)
class Liquidation:
    """The ``liquidate`` transaction: the subaccount that changed owner, what it holds (it
    changed hands as it was), the amounts, and the liquidator's capital used (its deposit).
    USD floats; sizes in units."""

    tx_hash: str
    block: int
    gas_used: int
    account: int  # the subaccount
    previous_owner: str
    liquidator: str
    epoch: int  # whose leaf the liquidation used
    mm_surplus_hi: float
    pay: float  # credited to the previous owner as a claimable payout
    fee: float
    covered: float
    uncovered: float
    deposit: float  # the liquidator's capital used: what it deposited into the subaccount
    capital_need: float  # checkLiquidation's minDeposit6 just before: IM deficit + pay + fee
    im_deficit: float  # capital_need - (pay + fee - covered)
    positions: Mapping[str, float]  # instrument name -> size, now the liquidator's
    collateral: Mapping[str, float]
    cash_before: float  # the subaccount's cash before
    cash_after: float  # = before + deposit - (pay + fee - covered)
    im_surplus_after: float  # imSurplusLo with the same leaf, right after: >= 0
    payout_claimable: float  # the previous owner's payoutOf right after
    seconds_after_shock: float


@dataclass(frozen=True)
class CrashResult:
    calm_epoch: int  # last epoch before the shock (the capital table's)
    shock_epoch: int  # first epoch priced after the shock
    liquidation: Liquidation | None  # of the naked book; None: not liquidated (a failure)
    last_epoch: int


def _names(stack: Stack) -> dict[int, str]:
    return {i.id: i.name for i in stack.deployment.instruments}


def _state(stack: Stack, account: int, block: int | str = "latest") -> AccountState:
    chain = ChainAdapter(stack.w3, stack.deployment.vault)
    (state,) = chain.account_states([account], block)
    return state


def _owner(stack: Stack, account: int, block: BlockIdentifier = "latest") -> str:
    owner = stack.vault.functions.ownerOf(account).call(block_identifier=block)
    return to_checksum_address(owner)


def _liquidation(stack: Stack, account: int, t_shock: float, t_seen: float) -> Liquidation:
    (ev,) = stack.vault.events.Liquidated().get_logs(
        from_block=stack.deployment.block, argument_filters={"account": account}
    )
    a = ev["args"]
    block = int(ev["blockNumber"])
    receipt = stack.w3.eth.get_transaction_receipt(ev["transactionHash"])
    before = _state(stack, account, block - 1)
    after = _state(stack, account, block)
    names = _names(stack)
    symbols = [t.symbol for t in stack.deployment.tokens if t.underlying]
    decimals = {t.symbol: t.decimals for t in stack.deployment.tokens}
    epoch = int(stack.vault.functions.currentEpoch().call(block_identifier=block)[0])
    # the IM check of the transaction, read back: the same leaf, right after it
    leaf = stack.api.account(account, epoch=epoch)
    im_after = (
        int(
            stack.vault.functions.imSurplusLo(account, leaf.margin_proof().to_abi()).call(
                block_identifier=block
            )
        )
        if leaf is not None
        else 0
    )
    need6 = 0
    if leaf is not None:
        view = stack.vault.functions.checkLiquidation(account, leaf.margin_proof().to_abi())
        need6 = int(view.call(block_identifier=block - 1)[6])
    previous = to_checksum_address(a["previousOwner"])
    payout = int(stack.vault.functions.payoutOf(previous).call(block_identifier=block))
    scale = 10 ** (18 - stack.deployment.settlement.decimals)
    return Liquidation(
        tx_hash="0x" + bytes(ev["transactionHash"]).hex(),
        block=block,
        gas_used=int(receipt["gasUsed"]),
        account=account,
        previous_owner=previous,
        liquidator=to_checksum_address(a["liquidator"]),
        epoch=epoch,
        mm_surplus_hi=int(a["mmSurplusHi"]) / WAD,
        pay=int(a["pay"]) / WAD,
        fee=int(a["fee"]) / WAD,
        covered=int(a["covered"]) / WAD,
        uncovered=int(a["uncovered"]) / WAD,
        deposit=int(a["deposit6"]) * scale / WAD,
        capital_need=need6 * scale / WAD,
        im_deficit=(need6 * scale - int(a["pay"]) - int(a["fee"]) + int(a["covered"])) / WAD,
        positions={names[p.instrument]: p.size / WAD for p in after.positions if p.size},
        collateral={
            sym: bal / 10 ** decimals[sym]
            for sym, bal in zip(symbols, after.collateral, strict=False)
            if bal
        },
        cash_before=before.cash / WAD,
        cash_after=after.cash / WAD,
        im_surplus_after=im_after / WAD,
        payout_claimable=payout / WAD,
        seconds_after_shock=t_seen - t_shock,
    )


def run_crash(stack: Stack, participants: Participants, settings: Settings) -> CrashResult:
    """Calm epochs, the shock into the simulated feed, the bot's liquidation of the naked
    book, then ``after_epochs`` more epochs with the hedged books still open."""
    s = settings
    naked = participants.book("naked")
    start = stack.synced_epoch()
    stack.wait(
        lambda: stack.synced_epoch() >= start + s.calm_epochs, f"{s.calm_epochs} calm epochs"
    )
    calm = stack.synced_epoch()
    moves = ", ".join(f"{k} {v:+.0%}" for k, v in s.shock.items())
    stack.narrator.step(
        f"CRASH: {moves}, ATM vol +{s.vol_spike * 100:.0f} points, pushed into the simulated feed"
    )
    before = stack.vault_epoch()
    t_shock = time.monotonic()
    stack.feed.push_shock(dict(s.shock), vol_spike=s.vol_spike)
    seen: list[float] = []

    def gone() -> bool:
        if _owner(stack, naked.subaccount) != naked.address:
            seen.append(time.monotonic())
            return True
        return False

    last = before + s.liquidation_epochs
    stack.wait(
        lambda: gone() or stack.synced_epoch() >= last,
        f"the naked book's liquidation (at most {s.liquidation_epochs} epochs)",
    )
    liq = _liquidation(stack, naked.subaccount, t_shock, seen[0]) if seen else None
    if liq is not None:
        stack.narrator.step(
            f"the bot took {naked.label}'s subaccount {liq.account} over in block {liq.block} "
            f"(tx {liq.tx_hash[:12]}..) on the leaf of epoch {liq.epoch}, "
            f"{liq.seconds_after_shock:.1f} s after the shock, depositing {liq.deposit:,.2f} USD"
        )
    else:
        stack.narrator.step(
            f"{naked.label} was NOT liquidated within {s.liquidation_epochs} epochs of the crash"
        )
    target = max(liq.epoch if liq else 0, stack.vault_epoch()) + s.after_epochs
    stack.wait(
        lambda: stack.synced_epoch() >= target, f"{s.after_epochs} epochs after the liquidation"
    )
    end = liq.epoch if liq else stack.synced_epoch()
    shock_epoch = next(
        (e for e in range(before + 1, end + 1) if _shocked(stack, e, calm)), before + 1
    )
    return CrashResult(calm, shock_epoch, liq, stack.synced_epoch())


def _shocked(stack: Stack, epoch: int, calm: int) -> bool:
    try:
        return (
            stack.market(epoch).underlying("ETH").spot
            < 0.85 * stack.market(calm).underlying("ETH").spot
        )
    except (OSError, ValueError, KeyError):
        return False


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


def _liquidation_view(stack: Stack, account: int) -> tuple[int, bool, int]:
    """(epoch, liquidatable, mmSurplusHi WAD) from the vault's ``checkLiquidation`` view with
    the subaccount's leaf of the current epoch (fetched again if an epoch lands in between)."""

    def call() -> tuple[int, bool, int]:
        leaf = stack.api.account(account)
        if leaf is None:
            raise CliError(f"no ACCOUNT leaf for subaccount {account}")
        try:
            ok, mm_hi, *_ = stack.vault.functions.checkLiquidation(
                account, leaf.margin_proof().to_abi()
            ).call()
        except Exception as exc:  # noqa: BLE001 - a stale proof reverts; retried above
            data = getattr(exc, "data", None)
            why = decode_revert(data, stack.vault.abi) if isinstance(data, str) else str(exc)
            raise CliError(f"checkLiquidation reverted: {why}") from None
        return leaf.epoch, bool(ok), int(mm_hi)

    return stack.retrying(f"checkLiquidation of subaccount {account}", call)


def _taken_over_checks(
    stack: Stack, book: Book, liq: Liquidation | None, liquidator: str, held_ok: bool
) -> list[Check]:
    """What a liquidation by transfer must leave on chain (docs/protocol.md §6)."""
    if liq is None:
        return [Check(False, f"{book.label}: Liquidated event MISSING")]
    wallet_used = liq.deposit <= LIQUIDATOR_WALLET_USD
    return [
        Check(True, f"{book.label}: Liquidated event in tx {liq.tx_hash}"),
        Check(
            _owner(stack, book.subaccount) == liquidator and liq.previous_owner == book.address,
            f"{book.label}: subaccount {book.subaccount} now owned by the liquidator {liquidator}",
        ),
        Check(held_ok, f"{book.label}: the subaccount still holds the positions it opened"),
        Check(
            liq.im_surplus_after >= 0,
            f"{book.label}: at or above IM after the transaction (IM surplus lower bound "
            f"{liq.im_surplus_after:+,.2f} USD with the same leaf)",
        ),
        Check(
            abs(liq.payout_claimable - liq.pay) < 1e-9 * max(1.0, liq.pay),
            f"{book.label}: the previous owner's payout is claimable "
            f"({liq.payout_claimable:,.2f} USD = pay)",
        ),
        Check(
            wallet_used,
            f"{book.label}: the liquidator's capital used {liq.deposit:,.2f} USD <= its wallet "
            f"{LIQUIDATOR_WALLET_USD:,} USD",
        ),
    ]


def verify_outcome(
    stack: Stack, participants: Participants, liquidation: Liquidation | None = None
) -> list[Check]:
    """What must hold on chain after the crash (see the module doc); ``liquidation`` is the
    naked book's (:attr:`CrashResult.liquidation`)."""
    vault = stack.vault
    checks: list[Check] = []
    liquidated: dict[int, Any] = {
        int(ev["args"]["account"]): ev
        for ev in vault.events.Liquidated().get_logs(from_block=stack.deployment.block)
    }
    names = _names(stack)
    for book in participants.books:
        state = _state(stack, book.subaccount)
        held = {names[p.instrument]: p.size for p in state.positions if p.size}
        opened = {f.instrument: _wad(f.size) for f in book.fills}
        if not book.spec.hedged:
            liq = liquidation if liquidation and liquidation.account == book.subaccount else None
            checks += _taken_over_checks(
                stack, book, liq, participants.liquidator.address, held == opened
            )
            continue
        ev = liquidated.get(book.subaccount)
        checks.append(
            Check(
                ev is None,
                f"{book.label}: no Liquidated event"
                if ev is None
                else f"{book.label}: LIQUIDATED in tx 0x{bytes(ev['transactionHash']).hex()}",
            )
        )
        checks.append(
            Check(
                held == opened,
                f"{book.label}: still holds the {len(opened)} position(s) it opened",
            )
        )
        if ev is not None:
            continue  # taken over: not the healthy book this check is about
        try:
            epoch, liquidatable, mm_hi = _liquidation_view(stack, book.subaccount)
        except ScenarioError as exc:
            checks.append(Check(False, f"{book.label}: {exc}"))
            continue
        checks.append(
            Check(
                not liquidatable and mm_hi >= 0,
                f"{book.label}: checkLiquidation with its leaf of epoch {epoch}: "
                f"{'LIQUIDATABLE' if liquidatable else 'not liquidatable'}, "
                f"MM surplus upper bound {mm_hi / WAD:+,.2f} USD",
            )
        )
    return checks


# --------------------------------------------------------------------------- capital table


@dataclass(frozen=True)
class CapitalRow:
    """A book's IM under portfolio margin (the posted leaf) against isolated margin (each
    position and each collateral token margined alone by the same engine on the same
    epoch's chain state and market, summed). USD."""

    label: str
    title: str
    hedged: bool
    equity: float
    portfolio_im: float
    recomputed_im: float  # the engine on the whole book again: equals the leaf's IM
    legs: tuple[tuple[str, float], ...]  # (position, its isolated IM)
    # risk_engine.isolated.IsolatedMargin's figures for this book
    isolated_im: float
    extra: float
    ratio: float


def capital_table(stack: Stack, participants: Participants, epoch: int) -> list[CapitalRow]:
    """Portfolio vs isolated IM of each book at ``epoch``: the keeper's own
    :func:`~keeper.epoch_build.compute_epoch` on that epoch's snapshot block and published
    market, once with the books as they are and once with every leg as its own account."""
    rec = stack.api.epoch(epoch)
    if rec is None:
        raise ScenarioError(f"the keeper API has no epoch {epoch}")
    chain = ChainAdapter(stack.w3, stack.deployment.vault)
    snap = chain.snapshot(int(rec["snapshotBlock"]), [b.subaccount for b in participants.books])
    names = _names(stack)
    symbols = [t.symbol for t in stack.deployment.tokens if t.underlying]
    accounts: list[AccountState] = list(snap.accounts)
    owners: list[tuple[int, str]] = []  # (book index, leg name) of each single-leg account
    zeros = tuple(0 for _ in snap.tokens)
    for i, state in enumerate(snap.accounts):
        for p in state.positions:
            if p.size:
                accounts.append(_single(len(accounts), positions=(p,), collateral=zeros))
                owners.append((i, f"{p.size / WAD:+g} {names[p.instrument]}"))
        for k, bal in enumerate(state.collateral):
            if bal:
                coll = tuple(bal if j == k else 0 for j in range(len(zeros)))
                accounts.append(_single(len(accounts), positions=(), collateral=coll))
                owners.append((i, f"{bal / 10 ** snap.tokens[k].decimals:g} {symbols[k]}"))
    build = compute_epoch(
        replace(snap, accounts=tuple(accounts)), stack.market(epoch), load_params(), epoch=epoch
    )
    ims = [leaf.im / WAD for leaf in build.account_leaves]
    leaves = []
    for book in participants.books:
        nums = _leaf_numbers(stack, book.subaccount, epoch)
        if nums is None:
            raise ScenarioError(f"no leaf of {book.label} in epoch {epoch}")
        leaves.append(nums)
    n = len(snap.accounts)
    isolated = IsolatedMargin(
        np.array([im / WAD for _, im, _ in leaves]),
        np.array(ims[n:]),
        np.array([o for o, _ in owners], dtype=np.int64),
    )
    rows = []
    for i, book in enumerate(participants.books):
        legs = tuple((name, ims[n + j]) for j, (o, name) in enumerate(owners) if o == i)
        rows.append(
            CapitalRow(
                book.label,
                book.spec.title,
                book.spec.hedged,
                leaves[i][0] / WAD,
                leaves[i][1] / WAD,
                ims[i],
                legs,
                float(isolated.isolated_im[i]),
                float(isolated.extra[i]),
                float(isolated.ratio[i]),
            )
        )
    return rows


#: Ids of the single-leg accounts priced off chain: far above any real subaccount id.
_SINGLE_IDS = 2**128


def _single(
    n: int, *, positions: tuple[Position, ...], collateral: tuple[int, ...]
) -> AccountState:
    return AccountState(_SINGLE_IDS + n, 0, 0, 0, 0, positions, collateral)


def write_reports(stack: Stack, participants: Participants, out_dir: Path) -> dict[str, Path]:
    """``pm report`` of each book (scripts/report.py): heat map, margin history, positions."""
    from scripts.margin_view import margin_history, margin_view
    from scripts.report import write_report

    reader = Session(stack.w3, stack.deployment, None, echo=lambda _t: None)
    last = stack.vault_epoch()
    out: dict[str, Path] = {}
    for book in participants.books:
        view = stack.retrying(
            f"report of {book.label}",
            functools.partial(
                margin_view, reader, stack.api, book.subaccount, keeper_data=stack.data_dir
            ),
        )
        history = margin_history(stack.api, book.subaccount, last, limit=200)
        out[book.label] = write_report(view, history, out_dir / f"report-{book.label}.html")
    return out
