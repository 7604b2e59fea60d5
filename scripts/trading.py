"""RFQ between two subaccounts: the maker signs a quote to a file, the taker submits it.

Quote file (JSON, every integer a decimal string so that no JSON reader rounds it)::

    {"format": "pm-quote/2", "chainId": "31337", "vault": "0x..",
     "quote": {"maker": "0x..", "makerAccount": "3", "taker": "0x00..", "nonce": "..",
               "deadline": "..",
               "legs": [{"instrument": "1", "size": "500000000000000000",
                         "price": "65000000000000000000000", "name": "BTC-PERP"}]},
     "signature": "0x..", "digest": "0x.."}

``size`` is from the maker's side (docs/protocol.md §7): the maker's subaccount
``makerAccount`` gets ``+size`` at ``price`` (WAD), the taker's subaccount ``-size``. The
signer (``maker``) must own or operate ``makerAccount`` when the quote is filled; ``taker``
(an address, 0 = anyone) is who may send the fill. Two subaccounts of one owner may trade
with each other; a subaccount cannot trade with itself.

The taker re-checks everything that does not need the chain (domain, signature, deadline)
before asking the keeper API for the ACCOUNT leaf of each party that holds positions (a
party without any needs none: the vault values it on chain) and each leg's INSTRUMENT leaf,
then simulates ``executeQuote``.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import click
from eth_utils.address import to_checksum_address

from keeper.attestation import ZERO_ADDRESS
from keeper.eip712 import Domain, Leg, Quote, quote_digest, recover_signer, sign_quote
from keeper.errors import AttestationError
from risk_engine.units import WAD
from scripts.client import (
    DEFAULT_MARK_TOLERANCE,
    KeeperApi,
    Session,
    account_proof,
    check_fresh,
    current_root,
    format_units,
    parse_units,
    require_not_safe_mode,
    retry_on_new_root,
    utc,
)
from scripts.errors import CliError

__all__ = [
    "DEFAULT_MARK_TOLERANCE",
    "QUOTE_FORMAT",
    "cancel",
    "leg_vs_mark",
    "load_quote",
    "make_quote",
    "parse_leg",
    "take_quote",
]

QUOTE_FORMAT = "pm-quote/2"  # /2: the maker names its subaccount (makerAccount)
MAX_LEGS = 8  # keep in line with the vault's MAX_LEGS; the vault has the last word


def leg_vs_mark(price: int, mark: int | None, tolerance: float) -> tuple[str, str | None]:
    """(``"mark M, +d.dd%"``, a warning or None) for a leg at ``price`` against the
    INSTRUMENT leaf's ``mark`` (both WAD USD per unit; None: no mark to compare with)."""
    if mark is None:
        return "no mark", None
    m = f"mark {format_units(mark, 18, 2)}"
    if mark == 0:
        off = price != 0
        return m, (f"priced at {format_units(price, 18, 2)} against a mark of 0" if off else None)
    dev = (price - mark) / mark
    text = f"{m}, {dev:+.2%}"
    if abs(dev) <= tolerance:
        return text, None
    return text, f"{dev:+.1%} from its mark {format_units(mark, 18, 2)} (tolerance {tolerance:.0%})"


def _mark(api: KeeperApi, instrument: int) -> int | None:
    """The INSTRUMENT leaf's mark of the latest epoch, or None when the keeper has none."""
    leaf = api.instrument(instrument)
    return None if leaf is None else int(leaf.fields["mark"])


def parse_leg(session: Session, text: str) -> tuple[Leg, str]:
    """``INSTRUMENT:SIZE:PRICE`` (instrument id or name, size signed from the maker's side in
    units, price in USD per unit) -> (Leg in WAD, instrument name)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise CliError(
            f"leg {text!r} must look like INSTRUMENT:SIZE:PRICE (e.g. BTC-PERP:0.5:65000)"
        )
    info = session.deployment.instrument(parts[0])
    size = parse_units(parts[1], 18, f"leg size {parts[1]!r}")
    price = parse_units(parts[2], 18, f"leg price {parts[2]!r}")
    if size == 0:
        raise CliError(f"leg {text!r}: size must not be 0")
    if price < 0:
        raise CliError(f"leg {text!r}: price must be >= 0")
    if info.expiry and info.expiry <= int(time.time()):
        raise CliError(f"leg {text!r}: {info.name} has expired")
    return Leg(info.id, size, price), info.name


def _domain(session: Session) -> Domain:
    return Domain(session.deployment.chain_id, session.deployment.vault)


def make_quote(
    session: Session,
    legs: list[str],
    *,
    taker: str | None,
    nonce: int | None,
    ttl_seconds: int,
    out: Path,
    account: int | None = None,
    api: KeeperApi | None = None,
    mark_tolerance: float = DEFAULT_MARK_TOLERANCE,
) -> dict[str, Any]:
    """Sign a quote of ``legs`` for subaccount ``account`` (default: the key's lowest) with
    the session's key (the maker) and write it to ``out``. Nothing is sent: a quote is an
    off-chain promise until a taker fills it. With ``api``, each leg's price is shown against
    its mark and a leg beyond ``mark_tolerance`` is warned about (stderr); the keeper API
    unreachable only drops that comparison (signing needs no keeper)."""
    if not legs:
        raise CliError("a quote needs at least one --leg")
    if len(legs) > MAX_LEGS:
        raise CliError(f"a quote has at most {MAX_LEGS} legs, got {len(legs)}")
    if ttl_seconds <= 0:
        raise CliError("--ttl must be > 0 seconds")
    parsed = [parse_leg(session, text) for text in legs]
    maker = session.address
    maker_account = session.resolve_account(account)
    session.require_can_act(maker_account)
    nonce = secrets.randbits(64) if nonce is None else nonce
    if nonce < 0:
        raise CliError("--nonce must be >= 0")
    if session.vault.functions.nonceUsed(maker, nonce).call():
        raise CliError(f"nonce {nonce} of {maker} is already used or cancelled")
    chain_now = int(session.w3.eth.get_block("latest")["timestamp"])
    quote = Quote(
        maker=maker,
        maker_account=maker_account,
        taker=to_checksum_address(taker) if taker else ZERO_ADDRESS,
        legs=tuple(leg for leg, _ in parsed),
        nonce=nonce,
        deadline=max(chain_now, int(time.time())) + ttl_seconds,
    )
    assert session.account is not None
    sig = sign_quote(quote, session.account, _domain(session))
    doc = {
        "format": QUOTE_FORMAT,
        "chainId": str(session.deployment.chain_id),
        "vault": session.deployment.vault,
        "quote": {
            "maker": quote.maker,
            "makerAccount": str(quote.maker_account),
            "taker": quote.taker,
            "nonce": str(quote.nonce),
            "deadline": str(quote.deadline),
            "legs": [
                {
                    "instrument": str(leg.instrument),
                    "size": str(leg.size),
                    "price": str(leg.price),
                    "name": name,
                }
                for leg, name in parsed
            ],
        },
        "signature": "0x" + sig.hex(),
        "digest": "0x" + quote_digest(quote, _domain(session)).hex(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    marks: dict[int, int | None] = {}
    if api is not None:
        try:
            marks = {leg.instrument: _mark(api, leg.instrument) for leg, _ in parsed}
        except CliError as exc:
            session.echo(f"  marks unavailable ({exc}): prices not compared")
    for leg, name in parsed:
        side = "buys" if leg.size > 0 else "sells"
        vs, warn = leg_vs_mark(leg.price, marks.get(leg.instrument), mark_tolerance)
        session.echo(
            f"  maker {side} {format_units(abs(leg.size), 18)} {name} at "
            f"{format_units(leg.price, 18)} USD ({vs})"
        )
        if warn is not None:
            click.echo(f"warning: {name} {warn}", err=True)
    session.echo(
        f"quote nonce {nonce} signed by {maker} for subaccount {maker_account}, valid until "
        f"{utc(quote.deadline)}: {out}"
    )
    return doc


def load_quote(session: Session, path: Path) -> tuple[Quote, bytes]:
    """Read and check a quote file against this chain and vault; verify the signature."""
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read quote file {path}: {exc.strerror}") from None
    except ValueError:
        raise CliError(f"quote file {path} is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != QUOTE_FORMAT:
        raise CliError(f"{path} is not a {QUOTE_FORMAT} quote file")
    dep = session.deployment
    if str(doc.get("chainId")) != str(dep.chain_id):
        raise CliError(
            f"wrong chain: the quote is for chain {doc.get('chainId')}, "
            f"the RPC is chain {dep.chain_id}"
        )
    if str(doc.get("vault", "")).lower() != dep.vault.lower():
        raise CliError(
            f"the quote is for vault {doc.get('vault')}, this deployment's is {dep.vault}"
        )
    try:
        q = doc["quote"]
        quote = Quote(
            maker=q["maker"],
            maker_account=int(q["makerAccount"]),
            taker=q["taker"],
            legs=tuple(
                Leg(int(x["instrument"]), int(x["size"]), int(x["price"])) for x in q["legs"]
            ),
            nonce=int(q["nonce"]),
            deadline=int(q["deadline"]),
        )
        sig = bytes.fromhex(str(doc["signature"]).removeprefix("0x"))
    except (KeyError, TypeError, ValueError, AttestationError) as exc:
        raise CliError(f"quote file {path} is malformed: {exc}") from None
    try:
        signer = recover_signer(quote_digest(quote, _domain(session)), sig)
    except Exception:  # noqa: BLE001 - eth-keys raises several types on a bad signature
        signer = None
    if signer != quote.maker:
        raise CliError(f"the quote's signature is not the maker's ({quote.maker}): file altered?")
    return quote, sig


def take_quote(
    session: Session,
    api: KeeperApi,
    path: Path,
    account: int | None = None,
    mark_tolerance: float = DEFAULT_MARK_TOLERANCE,
) -> None:
    """Fill the quote in ``path`` into subaccount ``account`` (default: the key's lowest),
    the session's key sending as the taker. Before sending it shows the taker's side of each
    leg, its price against the mark (a warning beyond ``mark_tolerance``) and the taker's
    IM before and after (the keeper's ``POST /simulate``: the engine on the latest epoch's
    market, legs at the mark)."""
    quote, sig = load_quote(session, path)
    taker = session.address
    if quote.taker not in (ZERO_ADDRESS, taker):
        raise CliError(f"the quote is reserved for taker {quote.taker}, not {taker}")
    taker_account = session.resolve_account(account)
    session.require_can_act(taker_account)
    if taker_account == quote.maker_account:
        raise CliError(
            f"the quote's maker subaccount is {taker_account}, the one you fill into "
            "(self-trade): pass --account with another subaccount"
        )
    maker_owner = session.owner_of(quote.maker_account)
    if (
        maker_owner != quote.maker
        and not session.vault.functions.isOperator(maker_owner, quote.maker).call()
    ):
        raise CliError(
            f"the quote's signer {quote.maker} no longer owns or operates its subaccount "
            f"{quote.maker_account} (owner {maker_owner})"
        )
    chain_now = int(session.w3.eth.get_block("latest")["timestamp"])
    if quote.deadline < chain_now:
        raise CliError(f"the quote expired at {utc(quote.deadline)} (chain time {utc(chain_now)})")
    if session.vault.functions.nonceUsed(quote.maker, quote.nonce).call():
        raise CliError(f"quote nonce {quote.nonce} of {quote.maker} is already filled or cancelled")

    require_not_safe_mode(session, "trade")
    for leg in quote.legs:
        shown = api.instrument(leg.instrument)
        _show_taker_leg(
            session, leg, None if shown is None else int(shown.fields["mark"]), mark_tolerance
        )
    _show_im_change(session, api, taker_account, quote)

    def attempt() -> None:
        require_not_safe_mode(session, "trade")
        legs = []
        for leg in quote.legs:
            lp = api.instrument(leg.instrument)
            if lp is None:
                epoch, _ = current_root(session)
                raise CliError(
                    f"the keeper API has no INSTRUMENT leaf for {leg.instrument} in epoch {epoch}"
                )
            check_fresh(session, lp, f"leaf of instrument {leg.instrument}")
            legs.append(lp.instrument_proof())
        # A side that holds positions needs its leaf of the current root; a side without any is
        # valued on chain before the fill plus the legs' bounds (docs/protocol.md §5): no leaf,
        # so an account funded after the epoch's snapshot can trade at once.
        maker_mp = account_proof(
            session,
            api,
            quote.maker_account,
            required=session.has_positions(quote.maker_account),
        )
        taker_mp = account_proof(
            session, api, taker_account, required=session.has_positions(taker_account)
        )
        notional = sum(abs(leg.size) * leg.price for leg in quote.legs) // WAD
        session.send(
            session.vault.functions.executeQuote(
                quote.to_abi(),
                sig,
                [p.to_abi() for p in legs],
                maker_mp.to_abi(),
                taker_account,
                taker_mp.to_abi(),
            ),
            f"trade quote {quote.nonce} of {quote.maker} (subaccount {quote.maker_account} -> "
            f"{taker_account}, {len(quote.legs)} legs, "
            f"{format_units(notional, 18, 2)} USD notional)",
        )

    retry_on_new_root(session, attempt)


def _show_taker_leg(session: Session, leg: Leg, mark: int | None, tolerance: float) -> None:
    try:
        name = session.deployment.instrument(str(leg.instrument)).name
    except CliError:  # registered after the deployment file was written
        name = f"instrument {leg.instrument}"
    side = "sell" if leg.size > 0 else "buy"  # the taker gets -size (docs/protocol.md §7)
    vs, warn = leg_vs_mark(leg.price, mark, tolerance)
    session.echo(
        f"  you {side} {format_units(abs(leg.size), 18)} {name} at "
        f"{format_units(leg.price, 18, 2)} USD ({vs})"
    )
    if warn is not None:
        click.echo(f"warning: {name} {warn}", err=True)


def _show_im_change(session: Session, api: KeeperApi, account: int, quote: Quote) -> None:
    legs = [(leg.instrument, -leg.size / WAD) for leg in quote.legs]
    try:
        sim = api.simulate(account, legs)
    except CliError as exc:
        session.echo(f"  IM before/after unavailable ({exc})")
        return
    b, a = sim["before"], sim["after"]
    session.echo(
        f"  subaccount {account} IM {b['im']:,.2f} -> {a['im']:,.2f} USD, MM {b['mm']:,.2f} -> "
        f"{a['mm']:,.2f} USD (engine, epoch {sim['epoch']} market, legs at the mark; equity "
        f"now {b['equity']:,.2f})"
    )


def cancel(session: Session, nonce: int) -> None:
    """Mark the session account's quote nonce used: no quote with it can be filled."""
    if nonce < 0:
        raise CliError("nonce must be >= 0")
    if session.vault.functions.nonceUsed(session.address, nonce).call():
        raise CliError(f"nonce {nonce} of {session.address} is already filled or cancelled")
    session.send(session.vault.functions.cancelQuote(nonce), f"cancel quote nonce {nonce}")
