"""Readable decoding of vault reverts.

``decode_revert(data, abi)`` turns the raw revert data of any vault call into one line:
the custom error's name, what it means, and its arguments with their units
(``InsufficientMargin: IM surplus lower bound would be negative (account=0xAb..,
imSurplusLo=-12.5 USD [-12500000000000000000])``). ``Error(string)`` and ``Panic(uint256)``
are decoded too; unknown selectors are reported as such, never guessed.
:func:`as_vault_revert` wraps a web3 exception carrying revert data into a
:class:`~keeper.errors.VaultRevert` (the error class lives with the others in
``keeper/errors.py``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from keeper.errors import VaultRevert

__all__ = [
    "ERROR_DESCRIPTIONS",
    "DecodedRevert",
    "as_vault_revert",
    "decode_revert",
    "decode_revert_data",
    "error_selectors",
    "error_signature",
    "revert_data_of",
]


@dataclass(frozen=True)
class DecodedRevert:
    """A decoded revert: ``name`` of the error, its ``args`` by parameter name, and the
    one-line readable ``message``."""

    name: str
    args: tuple[tuple[str, Any], ...]
    message: str
    selector: bytes


# What each vault error means, in words a trader or an operator can act on. Unit hints:
# parameters listed in _WAD_PARAMS are printed as USD / WAD amounts next to the raw value.
ERROR_DESCRIPTIONS: dict[str, str] = {
    # configuration
    "ZeroAddress": "an address argument is zero",
    "InvalidQuorum": "quorum must be between 1 and the number of signers",
    "TooManySigners": "the signer set is larger than the vault accepts",
    "InvalidSignerSet": "a signer is the zero address or listed twice",
    "InvalidRiskConfig": "risk config out of range (0 < maxAge <= 1 day, penalty and share "
    "<= 100%)",
    "InvalidFutureTolerance": "futureTolerance must be <= 5 minutes and <= maxAge",
    "RenounceOwnershipDisabled": "renounceOwnership is disabled: without an owner the signer "
    "set could never be rotated",
    "TokenAlreadyRegistered": "this token is already registered as collateral",
    "TooManyTokens": "the collateral token table is full",
    "InvalidToken": "token cannot be collateral (settlement token or unsupported decimals)",
    "InvalidModule": "module {module} has no code, or is an exchange module built for another "
    "settlement token",
    "InvalidInstrument": "instrument spec invalid (perp: no strike/expiry; option: strike > 0 "
    "and future expiry)",
    "DuplicateInstrument": "an instrument with this kind, underlying, strike and expiry is "
    "already registered as existingId",
    "NotDelegated": "a vault module was called directly; call the vault",
    "InvalidPriceReference": "reference feed refused: an AggregatorV3 contract with <= 18 "
    "decimals, 0 < maxDeviation <= 100% and 0 < maxStaleness <= 3 days",
    "PriceReferencesForAnotherVault": "that PriceReferences contract checks another vault's "
    "prices (its vault())",
    # subaccounts
    "UnknownSubaccount": "no subaccount with this id (ids start at 1; `pm account list` "
    "shows yours)",
    "NotAuthorized": "the sender is neither the subaccount's owner nor an operator of its owner",
    # lookups
    "UnknownToken": "token is not registered collateral",
    "UnknownInstrument": "no instrument with this id",
    # amounts
    "ZeroAmount": "amount must be > 0",
    "InsufficientBalance": "account holds less of the token than asked",
    "InsufficientInsurance": "insurance fund holds less than asked",
    # margin
    "SafeMode": "no fresh attestation (older than maxAge): only deposits, repayments, "
    "settlement and flat-account withdrawals work",
    "InsufficientMargin": "IM surplus lower bound would be negative after this action",
    "LeafAccountMismatch": "the ACCOUNT leaf is for another account",
    "StaleStateNonce": "the ACCOUNT leaf's stateNonce is not the subaccount's now (an older "
    "leaf); wait for the next epoch's leaf",
    "InvalidAccountProof": "ACCOUNT leaf/proof does not verify against the current root "
    "(wrong epoch?)",
    "InvalidInstrumentProof": "INSTRUMENT leaf/proof does not verify against the current root",
    "InstrumentLeafMismatch": "the INSTRUMENT leaf is for another instrument than the leg",
    "TooManyPositions": "account has the maximum number of open positions",
    "BoundsFromPreviousPrices": "account changed between the current epoch's snapshot and its "
    "post (bounds at the previous prices): withdrawals and trades wait for epoch {untilEpoch}",
    # attestation
    "InvalidSignature": "epoch signature at this index is malformed",
    "UnknownSigner": "epoch signed by an address outside the current signer set",
    "DuplicateSigner": "the same signer signed twice",
    "SignersNotSorted": "epoch signatures must be sorted by signer address, strictly ascending",
    "BelowQuorum": "fewer valid signatures than the quorum",
    "WrongConfigVersion": "epoch signed for another signer-set version",
    "EpochNotIncreasing": "epoch number must be greater than the last posted",
    "InvalidSnapshotBlock": "snapshot block must be < the current block and >= the last epoch's",
    "TimestampBeforeLast": "epoch timestamp is before the last epoch's",
    "TimestampInFuture": "epoch timestamp is too far ahead of the block time",
    "StaleTimestamp": "epoch timestamp is older than maxAge",
    "TokenTableMismatch": "epoch token table must list every registered token in "
    "registration order",
    "TokenCountMismatch": "epoch token table must have one entry per registered token",
    "InvalidTokenPrice": "token price must be > 0 and downShock <= 100%",
    "NotAPerp": "funding update for an instrument that is not a perp",
    "NotAnOption": "settlement for an instrument that is not an option",
    "NotExpired": "settlement for an option that has not expired at the epoch timestamp",
    "SettlementAlreadySet": "settlement price already posted (it is final)",
    "EmptyRoot": "epoch root is zero",
    "PriceDeviatesFromReference": "epoch refused: the token's price is further than "
    "maxDeviation from its on-chain reference feed (check the market feed, or the reference: "
    "docs/operations.md)",
    # quotes
    "QuoteExpired": "quote deadline has passed",
    "WrongTaker": "quote is reserved for another taker",
    "SelfTrade": "maker and taker are the same subaccount",
    "NonceUsed": "quote nonce already filled or cancelled",
    "InvalidQuoteSignature": "quote not signed by its maker",
    "InvalidLegs": "need at least one leg and one INSTRUMENT proof per leg",
    "ZeroSize": "a leg has size 0",
    "InstrumentExpired": "cannot trade an expired option",
    # settlement
    "SettlementPriceNotSet": "option settlement price not posted yet",
    "NoPosition": "account has no position in this instrument",
    # liquidation
    "SelfLiquidation": "the owner of a subaccount (or its operator) cannot liquidate it",
    "AccountHealthy": "MM surplus upper bound is >= 0: the account is not liquidatable",
    "NothingToLiquidate": "account has no position and no debt: it is never liquidatable",
    "LiquidationCostTooHigh": "liquidation would cost more net cash than maxCashOut",
    "LiquidationDepositTooSmall": "the deposit does not bring the subaccount to its IM "
    "after the liquidation; deposit at least minDeposit6 (settlement token units)",
    "NothingToClaim": "no liquidation payout to claim for this address",
    # state commitment (docs/protocol.md §9): StateLens.proveStateAt
    "NonCanonicalState": "the state is not canonical: positions by ascending instrument and "
    "collateral by ascending token, none zero (index counts positions, then collateral)",
    "StateChainMismatch": "the deltas from this sequence number do not lead to the vault's "
    "state chain now: a delta is missing, extra or altered, or the start is wrong",
    "StateDeltaMismatch": "this delta's old value is not the value the state and the earlier "
    "deltas give: the state is not the account's state at that sequence number",
    "StateMismatch": "the state with the deltas applied is not the account's live state",
    # finality and disputes (docs/protocol.md §10): FinalityModule, EpochModule._checkFinality
    "InvalidChallengeWindow": "challenge window {window} s is above the maximum {max} s",
    "BondTooLow": "the signers' bond {bond} USD is below the minimum {minBond} USD: post a bond "
    "(postBond) before posting epochs",
    "BondLocked": "{amount} USD of the bond cannot be withdrawn now: {withdrawable} USD can (the "
    "minimum stays while a root is disputable, none in a fraud's safe mode)",
    "EpochHistoryFull": "the ring slot of this epoch still holds epoch {epochInSlot}, inside its "
    "challenge window: post later or with a shorter window",
    "SignersNotRotated": "after a proven fraud the next epoch needs a rotated signer set: "
    "{oldSignersInSet} members of the caught set remain, quorum {quorum}",
    "EpochNotDisputable": "epoch {epoch} has no recorded root (posted with the window off, or "
    "overwritten in the ring)",
    "EpochAlreadyJudged": "epoch {epoch} was judged by an earlier fraud declaration (through "
    "epoch {judgedThrough}): it cannot be disputed again",
    "ChallengeWindowOver": "the challenge window of epoch {epoch} closed at {closedAt}: the root "
    "is final",
    "NotADuplicate": "the two leaves of subaccount {account} are the same leaf",
    "UnknownWithdrawal": "no pending withdrawal {id}: never queued, or already claimed or returned",
    "WithdrawalNotReady": "pending withdrawal {id} can be claimed from {readyAt} (its challenge "
    "window)",
    "WithdrawalVoid": "pending withdrawal {id} is void (a fraud was declared during its window): "
    "returnWithdrawal credits it back",
    "WithdrawalNotVoid": "pending withdrawal {id} is not void: claim it once it is ready",
    "InputsMismatch": "the parameters, token vectors and market hash given do not hash to the "
    "inputs epoch {epoch} committed ({committed}; given {given})",
    "LeafIsHonest": "the leaf of subaccount {account} follows from its state: recomputed equity "
    "{equity} USD, IM {im} USD, MM {mm} USD, each posted number within the tolerance {tolerance} "
    "USD",
    "StateWordIsReal": "the leaf's state word {stateWord} is subaccount {account}'s real word at "
    "its sequence number: dispute its numbers with disputeAccount instead",
    "ClaimShapeMismatch": "the dispute's lists do not match the state: {count} given, {expected} "
    "expected (one instrument leaf per live position, one vector per size, one hash per token)",
    "VectorMismatch": "risk vector {index} does not hash to the committed one (its INSTRUMENT "
    "leaf's, or its token's in the epoch's inputs)",
    "SizeMismatch": "engine size {index} is {given}, the state's is {expected}",
    "EngineCashMismatch": "the engine cash given is {given} USD; the state's cash after pending "
    "funding and expired options' payoffs is {expected} USD",
    "FundingListMismatch": "the funding updates given are not epoch {epoch}'s header's",
    "ScanRangeIsHonest": "underlying {underlying}'s committed scan range follows from its "
    "committed returns: recomputed {recomputed}, within the tolerance {tolerance}",
    "ReturnsMismatch": "the returns given for underlying {underlying} do not hash to its committed "
    "returnsHash",
    "InstrumentLeafIsHonest": "instrument {instrument}'s leaf follows from the committed market: "
    "every field of its vector, its mark and its per-unit losses are within the tolerance "
    "({tolerance} USD) of the chain's recomputation",
    # OpenZeppelin Ownable2Step, inherited by the vault (docs/security.md §3)
    "OwnableUnauthorizedAccount": "only the vault's owner may do this; the sender {account} is "
    "not the owner",
}

#: Parameter names whose value is a WAD (1e18) fixed-point number (USD, price or fraction).
_WAD_PARAMS: set[str] = {
    "imSurplusLo",
    "mmSurplusHi",
    "netCashPaid",
    "maxCashOut",
    "price",
    "downShock",
    "strike",
    "liquidationPenalty",
    "insuranceShare",
    "referencePrice",
    "deviation",
    "maxDeviation",
    "bond",
    "minBond",
}

_PANIC_CODES = {
    0x00: "generic compiler panic",
    0x01: "assert failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "bad storage byte array encoding",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialised internal function",
}
_ERROR_STRING = keccak(text="Error(string)")[:4]
_PANIC = keccak(text="Panic(uint256)")[:4]


def _canonical_type(param: Mapping[str, Any]) -> str:
    t = str(param["type"])
    if t.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in param["components"])
        return f"({inner}){t[len('tuple') :]}"
    return t


def error_signature(entry: Mapping[str, Any]) -> str:
    """``Name(type1,type2)`` of an ABI ``error`` entry."""
    return f"{entry['name']}({','.join(_canonical_type(p) for p in entry.get('inputs', []))})"


def error_selectors(abi: Iterable[Mapping[str, Any]]) -> dict[bytes, Mapping[str, Any]]:
    """4-byte selector -> ABI entry for every ``error`` in ``abi``."""
    return {keccak(text=error_signature(e))[:4]: e for e in abi if e.get("type") == "error"}


def _wad(value: int) -> str:
    d = Decimal(value) / Decimal(10**18)
    return f"{d.normalize():f}" if d == d.to_integral_value() else f"{d:.6f}".rstrip("0")


#: Per-error WAD parameters whose names are ambiguous elsewhere (``amount`` is in token
#: units in ``InsufficientBalance``, in WAD USD here).
_WAD_PARAMS_BY_ERROR: dict[str, set[str]] = {
    "InsufficientInsurance": {"fund", "amount"},
    "BondLocked": {"amount", "withdrawable"},
    "LeafIsHonest": {"equity", "im", "mm", "tolerance"},
    "EngineCashMismatch": {"expected", "given"},
    "InstrumentLeafIsHonest": {"tolerance"},
    "ScanRangeIsHonest": {"recomputed", "tolerance"},
}


def _fmt(name: str, typ: str, value: Any, wad: bool = False) -> str:
    if typ == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        if typ == "bytes32" and value[:28] != bytes(28) and value.rstrip(b"\0").isascii():
            text = value.rstrip(b"\0").decode()
            if text.isprintable() and text:
                return f"0x{value.hex()} ({text!r})"
        return "0x" + value.hex()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and (wad or name in _WAD_PARAMS):
        return f"{_wad(value)} [{value}]"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(name, typ.rstrip("[]"), v) for v in value) + "]"
    # from 2001 on: a small number is a test value or a count, not a date
    if isinstance(value, int) and name in _TIME_PARAMS and 10**9 <= value < 2**40:
        when = datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{value} ({when})"
    return str(value)


#: Arguments that are unix seconds: shown with their UTC date as well.
_TIME_PARAMS = frozenset({"deadline", "expiry", "timestamp", "blockTimestamp", "lastTimestamp"})


def _as_bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, str):
        s = data[2:] if data.startswith(("0x", "0X")) else data
        try:
            return bytes.fromhex(s)
        except ValueError:
            return b""
    return bytes(data)


def decode_revert_data(data: bytes | str | None, abi: Iterable[Mapping[str, Any]]) -> DecodedRevert:
    """Decode revert ``data`` against the custom errors of ``abi`` (see :func:`decode_revert`)."""
    raw = _as_bytes(data)
    if not raw:
        return DecodedRevert("", (), "reverted without data (out of gas, or a bare revert)", b"")
    selector, body = raw[:4], raw[4:]
    if selector == _ERROR_STRING:
        try:
            (reason,) = abi_decode(["string"], body)
        except DecodingError:
            reason = f"<undecodable 0x{body.hex()}>"
        return DecodedRevert("Error", (("reason", reason),), f"Error: {reason}", selector)
    if selector == _PANIC:
        try:
            (code,) = abi_decode(["uint256"], body)
        except DecodingError:
            code = -1
        what = _PANIC_CODES.get(code, "unknown panic code")
        return DecodedRevert("Panic", (("code", code),), f"Panic(0x{code:02x}): {what}", selector)
    entry = error_selectors(abi).get(selector)
    if entry is None:
        return DecodedRevert(
            "",
            (),
            f"unknown error selector 0x{selector.hex()} (data 0x{raw.hex()})",
            selector,
        )
    inputs = list(entry.get("inputs", []))
    name = str(entry["name"])
    try:
        values = abi_decode([_canonical_type(p) for p in inputs], body)
    except DecodingError:
        return DecodedRevert(name, (), f"{name}: <undecodable arguments 0x{body.hex()}>", selector)
    values = tuple(
        to_checksum_address(v) if p["type"] == "address" else v
        for p, v in zip(inputs, values, strict=True)
    )
    names = [str(p.get("name") or f"arg{i}") for i, p in enumerate(inputs)]
    args = tuple(zip(names, values, strict=True))
    shown = ", ".join(
        f"{n}={_fmt(n, str(p['type']), v, n in _WAD_PARAMS_BY_ERROR.get(name, set()))}"
        for n, p, v in zip(names, inputs, values, strict=True)
    )
    description = ERROR_DESCRIPTIONS.get(name)
    if description and "{" in description:  # a field named in the text shows its value
        description = description.format(**{n: v for n, v in args})
    message = f"{name}({shown})" + (f": {description}" if description else "")
    return DecodedRevert(name, args, message, selector)


def decode_revert(data: bytes | str | None, abi: Iterable[Mapping[str, Any]]) -> str:
    """One readable line for revert ``data`` (bytes or 0x-hex) of a contract with ``abi``."""
    return decode_revert_data(data, abi).message


def _data_in(exc: BaseException) -> bytes | None:
    for candidate in (getattr(exc, "data", None), *getattr(exc, "args", ())):
        if isinstance(candidate, dict):
            candidate = candidate.get("data")
        if isinstance(candidate, bytes | bytearray) and candidate:
            return bytes(candidate)
        if not isinstance(candidate, str):
            continue
        if candidate.startswith("0x") and len(candidate) >= 10:
            try:
                return bytes.fromhex(candidate[2:])
            except ValueError:
                continue
        # web3's eth-tester provider re-raises with the bytes' repr in the message.
        prefix = "execution reverted: b"
        if candidate.startswith(prefix):
            try:
                value = ast.literal_eval(candidate[len("execution reverted: ") :])
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, bytes) and value:
                return value
    return None


def revert_data_of(exc: BaseException) -> bytes | None:
    """The raw revert data carried by a web3 (Anvil) or eth-tester exception, if any.

    Follows the exception chain: web3's eth-tester provider re-raises eth-tester's
    ``TransactionFailed`` (which holds the bytes) inside its ``except`` block.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        data = _data_in(current)
        if data is not None:
            return data
        current = current.__cause__ or current.__context__
    return None


def as_vault_revert(exc: BaseException, abi: Iterable[Mapping[str, Any]]) -> VaultRevert | None:
    """A :class:`VaultRevert` for a web3 exception that carries revert data, else ``None``."""
    data = revert_data_of(exc)
    if data is None:
        return None
    return VaultRevert(decode_revert_data(data, abi), data)
