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

What the scenario asserts on chain (:func:`verify_outcome`): a ``Liquidated`` event for the
naked book, whose positions now sit with the liquidator; none for the hedged books, which
still hold what they opened and which ``checkLiquidation`` (with their leaf of the last
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
from scripts.funds import deposit_cash, withdraw_cash
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
LIQUIDATOR_CASH_USD = 250_000
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
    spec: BookSpec
    account: LocalAccount
    session: Session
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


def _fund(stack: Stack, who: Session, plan: SeedPlan) -> None:
    try:
        seed_account(who, plan)
    except CliError as exc:
        raise ScenarioError(f"funding {who.address}: {exc}") from None


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
            dealer.session, texts, taker=book.address, nonce=nonce, ttl_seconds=600, out=path
        )
        take_quote(book.session, stack.api, path)
        book.fills = fills

    stack.retrying(f"{book.label} trade", fill)
    (ev,) = stack.vault.events.QuoteExecuted().get_logs(
        from_block=stack.deployment.block,
        argument_filters={"maker": dealer.address, "taker": book.address},
    )
    book.trade_tx = "0x" + bytes(ev["transactionHash"]).hex()
    book.trade_block = int(ev["blockNumber"])


def _leaf_numbers(
    stack: Stack, address: str, epoch: int | None = None
) -> tuple[int, int, int] | None:
    leaf = stack.api.account(address, epoch=epoch)
    if leaf is None:
        return None
    f = leaf.fields
    return int(f["equity"]), int(f["im"]), int(f["mm"])


def _set_capital(stack: Stack, book: Book, settings: Settings) -> None:
    """Keep ``capital_multiple`` x the portfolio IM as equity: withdraw the rest of the
    opening cash, or deposit what is missing."""
    nums = _leaf_numbers(stack, book.address)
    if nums is None:
        raise ScenarioError(f"no ACCOUNT leaf for {book.label} after its trade")
    equity, im, _ = nums
    target = Decimal(im) / WAD * settings.capital_multiple
    move = (Decimal(equity) / WAD - target).quantize(Decimal("0.01"), ROUND_FLOOR)
    if move > 0:
        stack.retrying(
            f"{book.label} withdraw",
            lambda: withdraw_cash(book.session, stack.api, str(move)),
        )
    elif move < 0:
        try:
            deposit_cash(book.session, str(-move))
        except CliError as exc:
            raise ScenarioError(f"{book.label} deposit: {exc}") from None
    book.capital_move_usd = move


def open_books(
    stack: Stack, settings: Settings, echo: Callable[[str], None] | None = None
) -> Participants:
    """Fund the dealer, the liquidator and the three traders, fill the books, then set each
    cash book's capital to ``capital_multiple`` x its portfolio IM (see the module doc)."""
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
    _fund(stack, dealer.session, SeedPlan(cash=str(DEALER_CASH_USD)))
    _fund(stack, _session(stack, liq, quiet), SeedPlan(cash=str(LIQUIDATOR_CASH_USD)))
    say.step(
        f"dealer {dealer.address} deposited {DEALER_CASH_USD:,} USD; "
        f"liquidator deposited {LIQUIDATOR_CASH_USD:,} USD"
    )
    planned: dict[str, list[tuple[InstrumentInfo, Decimal]]] = {}
    for book in books:
        legs = _legs(stack, book.spec)
        planned[book.label] = legs
        book.opening_cash_usd = _opening_cash_usd(stack, book.spec, legs)
        _fund(
            stack,
            book.session,
            SeedPlan(deposit=dict(book.spec.collateral), cash=str(book.opening_cash_usd)),
        )
        what = [f"{v} {k}" for k, v in book.spec.collateral.items()]
        if book.opening_cash_usd:
            what.append(f"{book.opening_cash_usd:,} USD")
        say.step(f"{book.label:<10} {book.address} deposited {' + '.join(what)}")
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
        nums = _leaf_numbers(stack, book.address, epoch)
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
    """One epoch as posted: its market (spot USD per underlying) and each book's ACCOUNT
    leaf (equity, IM, MM in USD; None when the book has no leaf)."""

    epoch: int
    snapshot_block: int
    timestamp: int
    spot: Mapping[str, float]
    leaves: Mapping[str, tuple[float, float, float] | None]


def epoch_row(stack: Stack, participants: Participants, epoch: int) -> EpochRow:
    rec = stack.api.epoch(epoch) or {}
    try:
        market = stack.market(epoch)
        spot = {u: market.underlying(u).spot for u in ("ETH", "BTC")}
    except (OSError, ValueError, KeyError):
        spot = {}
    leaves: dict[str, tuple[float, float, float] | None] = {}
    for book in participants.books:
        nums = _leaf_numbers(stack, book.address, epoch)
        if nums is None:
            leaves[book.label] = None
        else:
            equity, im, mm = nums
            leaves[book.label] = (equity / WAD, im / WAD, mm / WAD)
    return EpochRow(
        epoch, int(rec.get("snapshotBlock", 0)), int(rec.get("timestamp", 0)), spot, leaves
    )


# --------------------------------------------------------------------------- the crash


@dataclass(frozen=True)
class Liquidation:
    """The ``liquidate`` transaction and what it moved. USD floats; sizes in units."""

    tx_hash: str
    block: int
    gas_used: int
    liquidator: str
    epoch: int  # whose leaf the liquidation used
    mm_surplus_hi: float
    pay: float
    fee: float
    covered: float
    uncovered: float
    positions_moved: Mapping[str, float]  # instrument name -> size now with the liquidator
    collateral_moved: Mapping[str, float]
    cash_before: float  # the account's cash before
    cash_after: float  # = pay
    seconds_after_shock: float


@dataclass(frozen=True)
class CrashResult:
    calm_epoch: int  # last epoch before the shock (the capital table's)
    shock_epoch: int  # first epoch priced after the shock
    liquidation: Liquidation | None  # of the naked book; None: not liquidated (a failure)
    last_epoch: int


def _names(stack: Stack) -> dict[int, str]:
    return {i.id: i.name for i in stack.deployment.instruments}


def _state(stack: Stack, address: str, block: int | str = "latest") -> AccountState:
    chain = ChainAdapter(stack.w3, stack.deployment.vault)
    (state,) = chain.account_states([address], block)
    return state


def _liquidation(stack: Stack, account: str, t_shock: float, t_seen: float) -> Liquidation:
    (ev,) = stack.vault.events.Liquidated().get_logs(
        from_block=stack.deployment.block, argument_filters={"account": account}
    )
    a = ev["args"]
    block = int(ev["blockNumber"])
    receipt = stack.w3.eth.get_transaction_receipt(ev["transactionHash"])
    before = _state(stack, account, block - 1)
    names = _names(stack)
    symbols = [t.symbol for t in stack.deployment.tokens if t.underlying]
    decimals = {t.symbol: t.decimals for t in stack.deployment.tokens}
    return Liquidation(
        tx_hash="0x" + bytes(ev["transactionHash"]).hex(),
        block=block,
        gas_used=int(receipt["gasUsed"]),
        liquidator=str(a["liquidator"]),
        epoch=int(stack.vault.functions.currentEpoch().call(block_identifier=block)[0]),
        mm_surplus_hi=int(a["mmSurplusHi"]) / WAD,
        pay=int(a["pay"]) / WAD,
        fee=int(a["fee"]) / WAD,
        covered=int(a["covered"]) / WAD,
        uncovered=int(a["uncovered"]) / WAD,
        positions_moved={names[p.instrument]: p.size / WAD for p in before.positions if p.size},
        collateral_moved={
            sym: bal / 10 ** decimals[sym]
            for sym, bal in zip(symbols, before.collateral, strict=False)
            if bal
        },
        cash_before=before.cash / WAD,
        cash_after=_state(stack, account, block).cash / WAD,
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
        if not _state(stack, naked.address).has_positions:
            seen.append(time.monotonic())
            return True
        return False

    last = before + s.liquidation_epochs
    stack.wait(
        lambda: gone() or stack.synced_epoch() >= last,
        f"the naked book's liquidation (at most {s.liquidation_epochs} epochs)",
    )
    liq = _liquidation(stack, naked.address, t_shock, seen[0]) if seen else None
    if liq is not None:
        stack.narrator.step(
            f"the bot liquidated {naked.label} in block {liq.block} (tx {liq.tx_hash[:12]}..) "
            f"on the leaf of epoch {liq.epoch}, {liq.seconds_after_shock:.1f} s after the shock"
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


def _liquidation_view(stack: Stack, address: str) -> tuple[int, bool, int]:
    """(epoch, liquidatable, mmSurplusHi WAD) from the vault's ``checkLiquidation`` view with
    the account's leaf of the current epoch (fetched again if an epoch lands in between)."""

    def call() -> tuple[int, bool, int]:
        leaf = stack.api.account(address)
        if leaf is None:
            raise CliError(f"no ACCOUNT leaf for {address}")
        try:
            ok, mm_hi, *_ = stack.vault.functions.checkLiquidation(
                address, leaf.margin_proof().to_abi()
            ).call()
        except Exception as exc:  # noqa: BLE001 - a stale proof reverts; retried above
            data = getattr(exc, "data", None)
            why = decode_revert(data, stack.vault.abi) if isinstance(data, str) else str(exc)
            raise CliError(f"checkLiquidation reverted: {why}") from None
        return leaf.epoch, bool(ok), int(mm_hi)

    return stack.retrying(f"checkLiquidation of {address}", call)


def verify_outcome(stack: Stack, participants: Participants) -> list[Check]:
    """What must hold on chain after the crash (see the module doc)."""
    vault = stack.vault
    checks: list[Check] = []
    liquidated: dict[str, Any] = {
        to_checksum_address(ev["args"]["account"]): ev
        for ev in vault.events.Liquidated().get_logs(from_block=stack.deployment.block)
    }
    names = _names(stack)
    for book in participants.books:
        state = _state(stack, book.address)
        held = {names[p.instrument]: p.size for p in state.positions if p.size}
        opened = {f.instrument: _wad(f.size) for f in book.fills}
        if not book.spec.hedged:
            ev = liquidated.get(book.address)
            checks.append(
                Check(
                    ev is not None,
                    f"{book.label}: Liquidated event "
                    + (f"in tx 0x{bytes(ev['transactionHash']).hex()}" if ev else "MISSING"),
                )
            )
            checks.append(
                Check(not held, f"{book.label}: no positions left on chain ({len(held)} held)")
            )
            liq_held = {
                names[p.instrument]: p.size
                for p in _state(stack, participants.liquidator.address).positions
                if p.size
            }
            checks.append(
                Check(
                    all(liq_held.get(k) == v for k, v in opened.items()),
                    f"{book.label}: its positions are now the liquidator's",
                )
            )
            continue
        ev = liquidated.get(book.address)
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
            continue  # its old leaves are dead (stateNonce moved): no view to ask
        try:
            epoch, liquidatable, mm_hi = _liquidation_view(stack, book.address)
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
    snap = chain.snapshot(int(rec["snapshotBlock"]), [b.address for b in participants.books])
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
        nums = _leaf_numbers(stack, book.address, epoch)
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


def _single(
    n: int, *, positions: tuple[Position, ...], collateral: tuple[int, ...]
) -> AccountState:
    return AccountState(to_checksum_address(f"0x{n + 1:040x}"), 0, 0, 0, 0, positions, collateral)


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
                margin_view, reader, stack.api, book.address, keeper_data=stack.data_dir
            ),
        )
        history = margin_history(stack.api, book.address, last, limit=200)
        out[book.label] = write_report(view, history, out_dir / f"report-{book.label}.html")
    return out
