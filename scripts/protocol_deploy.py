"""The protocol's deployment: one function, :func:`deploy_protocol`, for ``pm deploy``, the
demo, the benchmark world (scripts/pipeline_world.py) and the test fixtures
(tests/vault/conftest.py).

It puts the settlement mock (USDC, 6 decimals), the collateral mocks and the vault on chain
(bytecode from a fresh compile, :mod:`scripts.toolchain`), registers the collateral, then
adds what a usable market needs and returns what the deployment file holds:

1. the instruments, by default the set of ``pm deploy``: perps on BTC, ETH, SOL and four
   options (a call and a put on BTC and on ETH, expiring on the Friday 08:00 UTC four weeks
   out, the simulator's expiry grid);
2. the attestation signer set and quorum (``setSigners``);
3. ``deployments/<chainId>.json`` (:class:`scripts.client.DeploymentInfo`): addresses,
   the block the deployment started at (where the keeper's event index starts), the ABI
   hash, tokens with decimals and the underlying each is priced as, instruments with their
   names, the faucet amounts, the signers.

Reference prices (docs/protocol.md §4): ``references`` (``pm deploy --reference
WETH=<aggregator>:<max deviation>:<max staleness>``, :func:`parse_reference`) deploys a
``PriceReferences`` contract for the vault, sets each token's Chainlink feed in it and has the
vault check every epoch's prices against them (:func:`deploy_price_references`).

On a live chain the tokens already exist: :func:`load_token_config` reads their addresses
from a deployment config file (``pm deploy --tokens FILE``), with each token's symbol and
decimals read from the chain, and :func:`deploy_protocol` registers them instead of
deploying mocks (and the deployment file lists no faucet: real tokens have no ``mint``).

Runnable on its own: ``python -m scripts.protocol_deploy --rpc-url URL`` (the node's first
unlocked account deploys); ``pm deploy`` adds keys from the environment or a keystore.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from eth_utils.address import is_hex_address, to_checksum_address
from web3 import Web3
from web3.contract import Contract

from keeper.abi import erc20_abi
from keeper.chain import instrument_name
from keeper.feeds.sim import default_expiries
from risk_engine.units import WAD
from scripts.client import (
    DeploymentInfo,
    InstrumentInfo,
    TokenInfo,
    abi_hash,
    deployments_dir,
)
from scripts.deploy import (
    DEFAULT_FUTURE_TOLERANCE,
    DEFAULT_MAX_AGE,
    deploy_contract,
    send,
)
from scripts.errors import DeploymentError
from scripts.toolchain.abi import vault_abi_of
from scripts.toolchain.compile import CompileResult, compile_contracts

__all__ = [
    "COLLATERAL",
    "CollateralSpec",
    "DEFAULT_OPTIONS",
    "ExistingTokens",
    "FAUCET_AMOUNTS",
    "PERP_UNDERLYINGS",
    "InstrumentSpec",
    "PriceReferenceSpec",
    "default_instruments",
    "deploy_price_references",
    "deploy_protocol",
    "instrument_name",
    "load_token_config",
    "parse_reference",
    "write_deployment",
]

#: A collateral mock: (symbol, decimals, underlying it is priced as).
CollateralSpec = tuple[str, int, str]
COLLATERAL: tuple[CollateralSpec, ...] = (
    ("WETH", 18, "ETH"),
    ("WBTC", 8, "BTC"),
    ("GOV", 18, "GOV"),
)
PERP_UNDERLYINGS: tuple[str, ...] = ("BTC", "ETH", "SOL")
#: (kind 1 CALL / 2 PUT, underlying, strike USD): around the simulator's start prices
#: (BTC 65,000, ETH 3,500), so that the demo books have at- and out-of-the-money legs.
DEFAULT_OPTIONS: tuple[tuple[int, str, int], ...] = (
    (1, "BTC", 70_000),
    (2, "BTC", 60_000),
    (1, "ETH", 3_800),
    (2, "ETH", 3_200),
)
#: What one `pm faucet` call mints, in whole tokens.
FAUCET_AMOUNTS: dict[str, str] = {
    "USDC": "100000",
    "WETH": "10",
    "WBTC": "1",
    "GOV": "10000",
}
OPTION_EXPIRY_WEEKS_INDEX = 3  # default_expiries(now)[3]: the Friday four weeks out


@dataclass(frozen=True)
class InstrumentSpec:
    kind: int
    underlying: str
    strike: int  # WAD USD per unit
    expiry: int  # unix seconds


def default_instruments(now: int) -> tuple[InstrumentSpec, ...]:
    expiry = default_expiries(now)[OPTION_EXPIRY_WEEKS_INDEX]
    perps = tuple(InstrumentSpec(0, u, 0, 0) for u in PERP_UNDERLYINGS)
    options = tuple(InstrumentSpec(k, u, s * WAD, expiry) for k, u, s in DEFAULT_OPTIONS)
    return perps + options


@dataclass(frozen=True)
class PriceReferenceSpec:
    """A collateral token's on-chain reference feed (docs/protocol.md §4, "Reference
    prices"): postEpoch refuses a price further than ``max_deviation`` from the feed's
    answer, and skips a feed whose answer is older than ``max_staleness``."""

    symbol: str
    aggregator: str  # Chainlink AggregatorV3Interface, USD per whole token
    max_deviation: int  # WAD fraction, 0 < . <= 1e18
    max_staleness: int  # seconds, 0 < . <= 3 days


def parse_reference(text: str) -> PriceReferenceSpec:
    """``SYMBOL=AGGREGATOR:MAX_DEVIATION:MAX_STALENESS``, e.g. ``WETH=0x5f4e...:0.05:3900``
    (deviation a fraction: 0.05 is 5 %; staleness in seconds). Raises
    :class:`DeploymentError` naming what is wrong (the vault checks the ranges again)."""
    symbol, sep, rest = text.partition("=")
    parts = rest.split(":")
    if not sep or not symbol.strip() or len(parts) != 3:
        raise DeploymentError(
            f"--reference {text!r}: expected SYMBOL=AGGREGATOR:MAX_DEVIATION:MAX_STALENESS"
        )
    aggregator, deviation, staleness = (p.strip() for p in parts)
    if not is_hex_address(aggregator):
        raise DeploymentError(f"--reference {text!r}: {aggregator!r} is not an address")
    try:
        dev_wad = Decimal(deviation) * WAD
    except InvalidOperation as exc:
        raise DeploymentError(
            f"--reference {text!r}: max deviation {deviation!r} is not a fraction (0.05 is 5 %)"
        ) from exc
    try:
        seconds = int(staleness)
    except ValueError as exc:
        raise DeploymentError(
            f"--reference {text!r}: max staleness {staleness!r} is not whole seconds"
        ) from exc
    if dev_wad != dev_wad.to_integral_value() or not 0 < dev_wad <= WAD:
        raise DeploymentError(f"--reference {text!r}: max deviation must be in (0, 1]")
    if not 0 < seconds <= 3 * 86_400:
        raise DeploymentError(f"--reference {text!r}: max staleness must be 1..259200 seconds")
    return PriceReferenceSpec(
        symbol.strip().upper(), to_checksum_address(aggregator), int(dev_wad), seconds
    )


def deploy_price_references(
    w3: Web3,
    compiled: CompileResult,
    *,
    vault: Contract,
    owner: str,
    references: Sequence[PriceReferenceSpec],
    tokens: Mapping[str, str],
) -> str:
    """Deploy a ``PriceReferences`` contract for ``vault`` owned by ``owner``, set each
    reference (``tokens``: symbol -> address of a registered token), then the vault's
    ``setPriceReferences``. Returns its address. A reverted setting raises with the
    vault's readable reason (``InvalidPriceReference``...). Symbols match in any case."""
    by_symbol = {symbol.upper(): address for symbol, address in tokens.items()}
    unknown = sorted({r.symbol for r in references} - set(by_symbol))
    if unknown:
        raise DeploymentError(f"--reference for {', '.join(unknown)}: not a collateral token")
    abi = vault_abi_of(compiled)
    refs = deploy_contract(w3, compiled, "PriceReferences", [vault.address, owner], owner)
    for r in references:
        fn = refs.functions.setPriceReference(
            by_symbol[r.symbol], r.aggregator, r.max_deviation, r.max_staleness
        )
        send(fn, owner, abi)
    send(vault.functions.setPriceReferences(refs.address), owner, abi)
    return str(refs.address)


@dataclass(frozen=True)
class ExistingTokens:
    """Tokens already on chain for a live deployment: the settlement token (USD cash) and
    the collateral, in registration order (symbol and decimals as the chain reports)."""

    settlement: TokenInfo
    collateral: tuple[TokenInfo, ...]


def _token_on_chain(w3: Web3, raw: object, where: str, underlying: str | None) -> TokenInfo:
    if not isinstance(raw, str) or not is_hex_address(raw):
        raise DeploymentError(f"{where}.address: not an address: {raw!r}")
    address = to_checksum_address(raw)
    if not w3.eth.get_code(address):
        raise DeploymentError(f"{where}.address: no contract at {address} on this chain")
    token = w3.eth.contract(address=address, abi=erc20_abi())
    try:
        symbol = str(token.functions.symbol().call())
        decimals = int(token.functions.decimals().call())
    except Exception as exc:  # not an ERC-20 with metadata: refuse before deploying
        raise DeploymentError(f"{where}: {address} has no ERC-20 symbol()/decimals()") from exc
    return TokenInfo(symbol, address, decimals, underlying)


def load_token_config(w3: Web3, path: Path) -> ExistingTokens:
    """The existing tokens named in ``path`` (TOML)::

        [settlement]
        address = "0x..."          # the USD cash token (e.g. USDC)

        [[collateral]]
        address = "0x..."          # e.g. WETH
        underlying = "ETH"         # the engine underlying it is priced as

    Raises :class:`DeploymentError` for a missing or malformed entry, an address without
    code on ``w3``'s chain, a token without ``symbol()``/``decimals()``, or a duplicate."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DeploymentError(f"cannot read the token config {path}: {exc}") from exc
    settlement = data.get("settlement")
    if not isinstance(settlement, dict):
        raise DeploymentError(f"{path}: no [settlement] table")
    cash = _token_on_chain(w3, settlement.get("address"), "settlement", None)
    collateral = []
    for i, entry in enumerate(data.get("collateral", [])):
        where = f"collateral[{i}]"
        und = entry.get("underlying") if isinstance(entry, dict) else None
        if not isinstance(und, str) or not und:
            raise DeploymentError(f"{where}.underlying: required (the engine underlying)")
        collateral.append(_token_on_chain(w3, entry.get("address"), where, und))
    addresses = [cash.address] + [t.address for t in collateral]
    if len(set(addresses)) != len(addresses):
        raise DeploymentError(f"{path}: a token address is listed twice")
    return ExistingTokens(cash, tuple(collateral))


def _bytes32(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


def deploy_protocol(
    w3: Web3,
    *,
    owner: str,
    signers: Sequence[str],
    quorum: int,
    collateral: Sequence[CollateralSpec] = COLLATERAL,
    instruments: Sequence[InstrumentSpec] | None = None,
    max_age: int = DEFAULT_MAX_AGE,
    future_tolerance: int = DEFAULT_FUTURE_TOLERANCE,
    compiled: CompileResult | None = None,
    existing: ExistingTokens | None = None,
    references: Sequence[PriceReferenceSpec] = (),
) -> DeploymentInfo:
    """Deploy the settlement mock (USDC, 6 decimals), one mock per ``collateral`` entry and
    the vault owned by ``owner``; register the collateral in order, the ``instruments``
    (default :func:`default_instruments`), the signers with ``quorum`` (none when
    ``signers`` is empty). A liquidator needs no takeover buffer: it receives the whole
    subaccount and deposits into it (docs/protocol.md §6).

    ``owner`` must be able to send through ``w3`` (an unlocked node account, or a local key
    behind web3's signing middleware). ``compiled`` gives the bytecode (default: compile,
    cached on disk). ``existing``: tokens already on chain (:func:`load_token_config`),
    registered instead of deploying mocks (``collateral`` is then ignored). ``references``:
    reference feeds of collateral tokens by symbol (:func:`deploy_price_references`)."""
    compiled = compiled or compile_contracts()
    owner = to_checksum_address(owner)
    start_block = int(w3.eth.block_number) + 1
    if existing is None:
        usdc = deploy_contract(w3, compiled, "MockERC20", ["USD Coin (mock)", "USDC", 6], owner)
        cash = TokenInfo("USDC", usdc.address, 6, None)
    else:
        cash = existing.settlement
        collateral = [(t.symbol, t.decimals, t.underlying or "") for t in existing.collateral]
    # The modules first: the vault's constructor takes their addresses and checks them
    # (docs/protocol.md §1; created by the vault, their code would push its initcode past
    # EIP-3860's limit).
    epoch_module = deploy_contract(w3, compiled, "EpochModule", [], owner)
    cash_scale = 10 ** max(18 - cash.decimals, 0)
    exchange_module = deploy_contract(
        w3, compiled, "ExchangeModule", [cash.address, cash_scale], owner
    )
    instrument_dispute_module = deploy_contract(w3, compiled, "InstrumentDisputeModule", [], owner)
    dispute_module = deploy_contract(
        w3, compiled, "DisputeModule", [instrument_dispute_module.address], owner
    )
    finality_module = deploy_contract(
        w3, compiled, "FinalityModule", [cash.address, cash_scale, dispute_module.address], owner
    )
    vault = deploy_contract(
        w3,
        compiled,
        "MarginVault",
        [
            owner,
            cash.address,
            max_age,
            future_tolerance,
            epoch_module.address,
            exchange_module.address,
            finality_module.address,
        ],
        owner,
    )
    abi = vault_abi_of(compiled)
    vault = w3.eth.contract(address=vault.address, abi=abi)
    tokens = [cash]
    for i, (symbol, decimals, underlying) in enumerate(collateral):
        address: str
        if existing is None:
            address = deploy_contract(
                w3, compiled, "MockERC20", [f"{symbol} (mock)", symbol, decimals], owner
            ).address
        else:
            address = existing.collateral[i].address
        send(vault.functions.registerToken(address), owner, abi)
        tokens.append(TokenInfo(symbol, address, decimals, underlying))
    if references:
        deploy_price_references(
            w3,
            compiled,
            vault=vault,
            owner=owner,
            references=references,
            tokens={t.symbol: t.address for t in tokens[1:]},
        )
    now = int(w3.eth.get_block("latest")["timestamp"])
    specs = tuple(instruments) if instruments is not None else default_instruments(now)
    infos: list[InstrumentInfo] = []
    for spec in specs:
        send(
            vault.functions.registerInstrument(
                spec.kind, _bytes32(spec.underlying), spec.strike, spec.expiry
            ),
            owner,
            abi,
        )
        iid = int(vault.functions.instrumentCount().call())
        infos.append(
            InstrumentInfo(
                iid,
                spec.kind,
                spec.underlying,
                spec.strike,
                spec.expiry,
                instrument_name(spec.kind, spec.underlying, spec.strike, spec.expiry),
            )
        )
    signer_list = [to_checksum_address(s) for s in signers]
    if signer_list:
        send(vault.functions.setSigners(signer_list, quorum), owner, abi)
    symbols = {t.symbol for t in tokens}
    return DeploymentInfo(
        chain_id=int(w3.eth.chain_id),
        owner=owner,
        vault=vault.address,
        settlement_token=cash.address,
        collateral={t.symbol: t.address for t in tokens[1:]},
        block=start_block,
        tokens=tuple(tokens),
        instruments=tuple(infos),
        abi_hash=abi_hash(abi),
        faucet={}
        if existing is not None
        else {s: amount for s, amount in FAUCET_AMOUNTS.items() if s in symbols},
        signers=tuple(signer_list),
        quorum=quorum if signer_list else 0,
    )


def write_deployment(dep: DeploymentInfo, out: Path | None = None) -> Path:
    """Write ``dep`` to ``out`` (default ``<deployments dir>/<chainId>.json``) atomically."""
    path = out or deployments_dir() / f"{dep.chain_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(dep.to_json())
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deploy the vault, mocks and instruments.")
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8545")
    parser.add_argument("--signer", action="append", default=[], help="signer address")
    parser.add_argument("--quorum", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    w3 = Web3(Web3.HTTPProvider(args.rpc_url))
    owner = w3.eth.accounts[0]
    signers = args.signer or [owner]
    dep = deploy_protocol(
        w3, owner=owner, signers=signers, quorum=args.quorum or len(signers) // 2 + 1
    )
    print(f"wrote {write_deployment(dep, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
