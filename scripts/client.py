"""Shared plumbing of the ``pm`` commands: deployment file, web3, keys, sending, the keeper API.

Every command builds one :class:`Session` from its options (ape-style option factories
below, shared by all commands) and talks to the chain only through it:

- :func:`load_deployment` reads ``deployments/<chainId>.json`` and refuses a file for
  another chain or one whose vault has no code (an Anvil restarted empty);
- :func:`load_key` takes the signing key from an environment variable (``--key-env``,
  default ``PM_PRIVATE_KEY``) or an encrypted keystore (``--keystore`` + ``--password-env``),
  never from a command-line argument (it would end up in the shell history);
- :meth:`Session.send` is build -> simulate (``eth_call`` + ``eth_estimateGas``) -> send
  through :class:`keeper.txmanager.TxManager`; a revert in simulation is decoded with
  :func:`keeper.revert.decode_revert` and nothing is sent; ``--dry-run`` stops after the
  simulation;
- :class:`KeeperApi` fetches ACCOUNT / INSTRUMENT leaves with their proofs and checks that
  they belong to the root the vault holds now.

Every failure a user can cause is a :class:`CliError` with a one-line reason; ``scripts.cli``
prints it to stderr and exits 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypedDict, TypeVar

import click
import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_hex_address, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from keeper.abi import erc20_abi, mock_erc20_abi, vault_abi
from keeper.attestation import (
    AccountLeaf,
    InstrumentLeaf,
    InstrumentProof,
    MarginProof,
    proof_from_json,
)
from keeper.config import parse_private_key
from keeper.errors import ConfigError, SimulationError, TxError
from keeper.gas import FeeHistoryStrategy
from keeper.retry import RetryPolicy
from keeper.revert import decode_revert
from keeper.txmanager import TxManager, TxRequest, TxResult
from scripts.errors import CliError, StaleLeafError, TxSentError
from scripts.toolchain.paths import REPO_ROOT

__all__ = [
    "DEFAULT_MARK_TOLERANCE",
    "ROOT_RETRIES",
    "retry_on_new_root",
    "wait_for_epoch",
    "wait_for_leaf",
    "DEFAULT_API_URL",
    "DEFAULT_RPC_URL",
    "LOCAL_CHAIN_IDS",
    "DeploymentInfo",
    "InstrumentInfo",
    "KeeperApi",
    "LeafWithProof",
    "Session",
    "TokenInfo",
    "abi_hash",
    "account_option",
    "api_option",
    "connect",
    "deployments_dir",
    "dry_run_option",
    "format_units",
    "utc",
    "key_options",
    "load_deployment",
    "load_key",
    "network_options",
    "parse_units",
    "VaultAccountState",
    "read_account_state",
    "SessionOptions",
]

DEFAULT_RPC_URL = "http://127.0.0.1:8545"
#: The keeper's proof API default (keeper.config.ApiConfig: 127.0.0.1:9545).
DEFAULT_API_URL = "http://127.0.0.1:9545"
#: Anvil / Hardhat / Ganache: mock tokens and the faucet are deployed only here by default.
LOCAL_CHAIN_IDS = frozenset({31337, 1337})
#: A user command must fail fast when the node is down, not back off for a minute.
CLI_RETRY = RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=1.0, deadline_seconds=5.0)
HTTP_TIMEOUT = 10.0  # seconds, per RPC / API request

F = TypeVar("F", bound=Callable[..., Any])


# ------------------------------------------------------------------------------ units


def parse_units(text: str, decimals: int, what: str = "amount") -> int:
    """``"1.5"`` with 6 decimals -> ``1500000``; refuses more digits than ``decimals`` (a
    silent truncation would move less than the user typed), NaN, and non-numbers."""
    try:
        d = Decimal(text.strip().replace("_", ""))
    except (InvalidOperation, AttributeError):
        raise CliError(f"{what} {text!r} is not a number") from None
    if not d.is_finite():
        raise CliError(f"{what} {text!r} is not a finite number")
    scaled = d.scaleb(decimals)
    if scaled != scaled.to_integral_value(rounding=ROUND_DOWN):
        raise CliError(f"{what} {text} has more than {decimals} decimals")
    return int(scaled)


#: A leg priced further than this from its mark (a fraction of the mark) gets a warning: a
#: fat finger, or a mark the keeper has since moved. Only a warning: an RFQ may be meant
#: off the mark, and the vault prices the fill at the quote (docs/protocol.md §7).
DEFAULT_MARK_TOLERANCE = 0.05


def utc(ts: int) -> str:
    """Unix seconds as a UTC date: ``1733338702`` -> ``"2024-12-04 18:58:22 UTC"``."""
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_units(value: int, decimals: int, places: int | None = None) -> str:
    """``1500000`` with 6 decimals -> ``"1.5"`` (exact unless ``places`` rounds it)."""
    d = Decimal(value).scaleb(-decimals)
    if places is not None:
        return f"{d:,.{places}f}"
    text = f"{d:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# ------------------------------------------------------------------------------ deployment


@dataclass(frozen=True)
class TokenInfo:
    """A token of the deployment. ``underlying``: the engine underlying it is priced as
    (``WETH`` -> ``ETH``), ``None`` for the settlement token (USD cash)."""

    symbol: str
    address: str
    decimals: int
    underlying: str | None = None


@dataclass(frozen=True)
class InstrumentInfo:
    """A registered instrument: id (from 1), kind 0 PERP / 1 CALL / 2 PUT, underlying,
    strike (WAD USD per unit, 0 for a perp), expiry (unix seconds, 0 for a perp) and its
    CLI name (``BTC-PERP``, ``ETH-C-3500-20261229``)."""

    id: int
    kind: int
    underlying: str
    strike: int
    expiry: int
    name: str


@dataclass(frozen=True)
class DeploymentInfo:
    """``deployments/<chainId>.json``: what ``pm deploy`` wrote
    (:func:`scripts.protocol_deploy.deploy_protocol`; ``vault``, ``settlement_token``,
    ``collateral``, ``block`` are the names ``keeper.config`` reads)."""

    chain_id: int
    owner: str
    vault: str
    settlement_token: str
    collateral: dict[str, str]
    block: int
    tokens: tuple[TokenInfo, ...] = ()
    instruments: tuple[InstrumentInfo, ...] = ()
    abi_hash: str = ""
    faucet: dict[str, str] = field(default_factory=dict)  # symbol -> amount (whole tokens)
    signers: tuple[str, ...] = ()
    quorum: int = 0
    path: Path | None = None

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("path")
        return json.dumps(d, indent=2) + "\n"

    @staticmethod
    def from_dict(d: Mapping[str, Any], path: Path | None = None) -> DeploymentInfo:
        try:
            return DeploymentInfo(
                chain_id=int(d["chain_id"]),
                owner=str(d["owner"]),
                vault=to_checksum_address(d["vault"]),
                settlement_token=to_checksum_address(d["settlement_token"]),
                collateral={str(k): str(v) for k, v in dict(d.get("collateral", {})).items()},
                block=int(d.get("block", 0)),
                tokens=tuple(TokenInfo(**t) for t in d.get("tokens", ())),
                instruments=tuple(InstrumentInfo(**i) for i in d.get("instruments", ())),
                abi_hash=str(d.get("abi_hash", "")),
                faucet={str(k): str(v) for k, v in dict(d.get("faucet", {})).items()},
                signers=tuple(d.get("signers", ())),
                quorum=int(d.get("quorum", 0)),
                path=path,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CliError(f"deployment file {path} is malformed: {exc}") from None

    def token(self, name: str) -> TokenInfo:
        """Token by symbol (case-insensitive) or address; the settlement token is ``USDC``."""
        for t in self.tokens:
            if t.symbol.lower() == name.lower() or (
                is_hex_address(name) and t.address.lower() == name.lower()
            ):
                return t
        known = ", ".join(t.symbol for t in self.tokens)
        raise CliError(f"unknown token {name!r} (this deployment has: {known})")

    @property
    def settlement(self) -> TokenInfo:
        for t in self.tokens:
            if t.address == self.settlement_token:
                return t
        return TokenInfo("USDC", self.settlement_token, 6, None)

    def instrument(self, name: str) -> InstrumentInfo:
        """Instrument by id (``"3"``) or name (``"BTC-PERP"``, case-insensitive); an option
        name without its date (``"ETH-C-3800"``) works while only one expiry has it."""
        for i in self.instruments:
            if name.strip().isdigit() and int(name) == i.id or i.name.lower() == name.lower():
                return i
        prefixed = [i for i in self.instruments if i.name.lower().startswith(name.lower() + "-")]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            names = ", ".join(i.name for i in prefixed)
            raise CliError(f"instrument {name!r} is ambiguous ({names}): give the full name or id")
        known = ", ".join(f"{i.id}={i.name}" for i in self.instruments)
        raise CliError(f"unknown instrument {name!r} (known: {known or 'none'})")


def deployments_dir() -> Path:
    """``$PM_DEPLOYMENTS_DIR`` or ``<repo>/deployments``."""
    env = os.environ.get("PM_DEPLOYMENTS_DIR")
    return Path(env) if env else REPO_ROOT / "deployments"


def abi_hash(abi: Sequence[Mapping[str, Any]]) -> str:
    """sha256 of the canonical JSON of an ABI: a client built against another vault
    version sees a different hash in the deployment file."""
    blob = json.dumps(list(abi), sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def load_deployment(w3: Web3, path: Path | None = None) -> DeploymentInfo:
    """The deployment of the chain ``w3`` is connected to.

    Raises :class:`CliError` when the file is missing, is for another chain, or its vault
    has no code on this chain."""
    chain_id = int(w3.eth.chain_id)
    file = path or deployments_dir() / f"{chain_id}.json"
    if not file.is_file():
        raise CliError(f"no deployment file {file} for chain {chain_id}: run `pm deploy` first")
    try:
        data = json.loads(file.read_text())
    except ValueError as exc:
        raise CliError(f"deployment file {file} is not JSON: {exc}") from None
    dep = DeploymentInfo.from_dict(data, file)
    if dep.chain_id != chain_id:
        raise CliError(
            f"wrong chain: {file} is for chain {dep.chain_id} but the RPC is chain {chain_id}"
        )
    if not bytes(w3.eth.get_code(to_checksum_address(dep.vault))):
        raise CliError(
            f"no vault code at {dep.vault} on chain {chain_id}: {file} is stale "
            "(node restarted?); run `pm deploy` again"
        )
    return dep


# ------------------------------------------------------------------------------ web3, keys


def connect(rpc_url: str) -> Web3:
    """A connected Web3, or :class:`CliError` naming the URL when the node does not answer."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": HTTP_TIMEOUT}))
    try:
        w3.eth.chain_id  # noqa: B018 - the cheapest call that proves the node answers
    except requests.exceptions.ConnectionError:
        raise CliError(f"RPC unreachable at {rpc_url}: connection refused") from None
    except requests.exceptions.Timeout:
        raise CliError(f"RPC unreachable at {rpc_url}: no answer in {HTTP_TIMEOUT:g} s") from None
    except Exception as exc:  # noqa: BLE001 - web3 and the OS raise many types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(f"RPC unreachable at {rpc_url}: {reason[:120]}") from None
    return w3


def load_key(
    key_env: str = "PM_PRIVATE_KEY",
    keystore: Path | None = None,
    password_env: str = "PM_KEYSTORE_PASSWORD",
    env: Mapping[str, str] | None = None,
) -> LocalAccount:
    """The signing key: an encrypted keystore when given, else the hex key in ``$key_env``.

    The key is never echoed, not even in an error."""
    env = os.environ if env is None else env
    if keystore is not None:
        password = env.get(password_env)
        if password is None:
            raise CliError(f"keystore {keystore} needs its password in ${password_env}")
        try:
            blob = json.loads(Path(keystore).read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read keystore {keystore}: {exc}") from None
        try:
            raw = Account.decrypt(blob, password)
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"cannot decrypt keystore {keystore}: {exc}") from None
        acct: LocalAccount = Account.from_key(raw)
        return acct
    value = env.get(key_env)
    if not value:
        raise CliError(f"no key: set ${key_env} to a hex private key, or pass --keystore FILE")
    try:
        key = parse_private_key(value, f"${key_env}")
    except ConfigError as exc:
        raise CliError(f"bad key in {exc}") from None
    acct = Account.from_key(key)
    return acct


def _message_of(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


@dataclass
class Session:
    """One command's connection: web3, the deployment and (for state changes) the sender's
    key; the ABIs are the exported ones (:mod:`keeper.abi`). ``dry_run``: :meth:`send`
    simulates and stops."""

    w3: Web3
    deployment: DeploymentInfo
    account: LocalAccount | None = None
    dry_run: bool = False
    max_fee_gwei: float = 200.0
    echo: Callable[[str], None] = click.echo
    _tx: TxManager | None = None

    @property
    def vault(self) -> Contract:
        return self.w3.eth.contract(
            address=to_checksum_address(self.deployment.vault), abi=vault_abi()
        )

    @property
    def vault_abi(self) -> list[dict[str, Any]]:
        return vault_abi()

    def token(self, address: str) -> Contract:
        """Any ERC20 of the deployment (balance, allowance, approve)."""
        return self.w3.eth.contract(address=to_checksum_address(address), abi=erc20_abi())

    def mock_token(self, address: str) -> Contract:
        """A test token of a mock deployment, with its ``mint`` (the faucet's)."""
        return self.w3.eth.contract(address=to_checksum_address(address), abi=mock_erc20_abi())

    @property
    def address(self) -> str:
        if self.account is None:
            raise CliError("this command needs a key (--key-env or --keystore)")
        return str(self.account.address)

    def txm(self) -> TxManager:
        if self._tx is None:
            if self.account is None:
                raise CliError("this command needs a key (--key-env or --keystore)")
            self._tx = TxManager(
                self.w3,
                self.account,
                gas=FeeHistoryStrategy(priority_fee_wei=10**9),
                fee_cap_wei=int(self.max_fee_gwei * 10**9),
                chain_id=self.deployment.chain_id,
                retry=CLI_RETRY,
                receipt_timeout=120.0,
                stuck_after=60.0,
                poll_interval=0.1,
            )
        return self._tx

    def send(self, fn: ContractFunction, purpose: str) -> TxResult | None:
        """Build -> simulate -> send ``fn`` from the session's key and wait for the receipt.

        A simulated revert raises :class:`CliError` with the decoded custom error and sends
        nothing. With ``dry_run`` returns ``None`` after a successful simulation."""
        txm = self.txm()
        data = bytes.fromhex(fn._encode_transaction_data()[2:])
        req = TxRequest(to=fn.address, data=data, purpose=purpose)
        abi = list(fn.contract_abi) + self.vault_abi
        if self.dry_run:
            try:
                gas = txm.simulate(req)
            except SimulationError as exc:
                raise CliError(f"{purpose} would revert: {self._reason(exc, abi)}") from None
            self.echo(f"dry run: {purpose} simulates fine (gas estimate {gas}); nothing sent")
            return None
        try:
            result = txm.send(req)
        except SimulationError as exc:
            raise CliError(f"{purpose} would revert: {self._reason(exc, abi)}") from None
        except TxError as exc:
            raise TxSentError(f"{purpose} failed: {_message_of(exc)}") from None
        self.echo(
            f"{purpose}: tx {result.tx_hash} mined in block {result.block_number} "
            f"(gas {result.gas_used})"
        )
        return result

    @staticmethod
    def _reason(exc: SimulationError, abi: Sequence[Mapping[str, Any]]) -> str:
        if exc.data:
            return decode_revert(exc.data, abi)
        msg = _message_of(exc)
        return msg.split("simulation reverted: ", 1)[-1]

    # ---------------------------------------------------------------- reads

    def account_state(self, account: int) -> VaultAccountState:
        """The vault's ``accountState`` of subaccount ``account`` (see
        :class:`VaultAccountState`)."""
        return read_account_state(self.vault, account)

    def has_positions(self, account: int) -> bool:
        return bool(self.account_state(account)["instruments"])

    def owner_of(self, account: int) -> str:
        """The owner of subaccount ``account``; :class:`CliError` for an unknown id (checked
        before anything is sent, instead of an ``UnknownSubaccount`` revert)."""
        if account <= 0 or account > int(self.vault.functions.subaccountCount().call()):
            raise CliError(
                f"unknown subaccount {account} in vault {self.deployment.vault} "
                "(`pm account list` shows yours)"
            )
        return to_checksum_address(self.vault.functions.ownerOf(account).call())

    def subaccounts_of(self, owner: str) -> list[int]:
        """The ids ``owner`` holds now, lowest first: every id ever transferred to it
        (``SubaccountTransferred`` with ``to = owner``, creation included) that it still
        owns."""
        owner = to_checksum_address(owner)
        logs = self.vault.events.SubaccountTransferred().get_logs(
            from_block=self.deployment.block, argument_filters={"to": owner}
        )
        seen = sorted({int(ev["args"]["account"]) for ev in logs})
        return [a for a in seen if self.owner_of(a) == owner]

    def resolve_account(self, account: int | None, owner: str | None = None) -> int:
        """``account`` if given, else the lowest id ``owner`` (default: the key's address)
        holds; :class:`CliError` when it holds none."""
        if account is not None:
            self.owner_of(account)  # unknown id: one line
            return account
        who = owner or self.address
        mine = self.subaccounts_of(who)
        if not mine:
            raise CliError(f"{who} has no subaccount in this vault: run `pm account new`")
        return mine[0]

    def require_can_act(self, account: int) -> str:
        """The owner of ``account``; :class:`CliError` unless the key is that owner or one of
        its operators (the vault would revert ``NotAuthorized``)."""
        owner = self.owner_of(account)
        me = self.address
        if owner != me and not self.vault.functions.isOperator(owner, me).call():
            raise CliError(
                f"subaccount {account} is owned by {owner}; {me} is neither its owner nor an "
                "operator of it"
            )
        return owner


# ------------------------------------------------------------------------------ account state


class VaultAccountState(TypedDict):
    """The vault's ``accountState(uint256)`` under its return names: cash (WAD USD),
    stateNonce, cumLo / cumHi (WAD USD), instruments (ids), sizes (WAD units), funding
    (WAD USD per unit, the index each position last paid at), coll (token units, in
    collateral registration order)."""

    cash: int
    stateNonce: int
    cumLo: int
    cumHi: int
    instruments: Sequence[int]
    sizes: Sequence[int]
    funding: Sequence[int]
    coll: Sequence[int]


def read_account_state(vault: Contract, account: int) -> VaultAccountState:
    """``vault.accountState(account)`` of subaccount ``account`` at the latest block."""
    cash, nonce, lo, hi, ids, sizes, funding, coll = vault.functions.accountState(account).call()
    return {
        "cash": cash,
        "stateNonce": nonce,
        "cumLo": lo,
        "cumHi": hi,
        "instruments": ids,
        "sizes": sizes,
        "funding": funding,
        "coll": coll,
    }


# ------------------------------------------------------------------------------ keeper API


@dataclass(frozen=True)
class LeafWithProof:
    """A leaf served by the keeper API, in the epoch ``epoch`` with root ``root``."""

    epoch: int
    root: str
    fields: Mapping[str, Any]
    proof: tuple[bytes, ...]

    def margin_proof(self) -> MarginProof:
        return MarginProof(AccountLeaf.from_json(self.fields), self.proof)

    def instrument_proof(self) -> InstrumentProof:
        return InstrumentProof(InstrumentLeaf.from_json(self.fields), self.proof)


class KeeperApi:
    """Client of the keeper's proof API (``keeper/api.py``)."""

    def __init__(self, url: str, *, timeout: float = HTTP_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str) -> tuple[int, Any]:
        try:
            r = requests.get(f"{self.url}{path}", timeout=self.timeout)
        except requests.RequestException as exc:
            raise CliError(
                f"keeper API unreachable at {self.url}: {type(exc).__name__} "
                "(start it with `pm keeper run`, or pass --api-url)"
            ) from None
        try:
            body = r.json()
        except ValueError:
            raise CliError(
                f"keeper API at {self.url}{path} answered non-JSON ({r.status_code})"
            ) from None
        return r.status_code, body

    def latest_epoch(self) -> dict[str, Any] | None:
        status, body = self._get("/epoch/latest")
        if status == 404:
            return None
        if status != 200:
            raise CliError(f"keeper API /epoch/latest: {body.get('error', status)}")
        return dict(body)

    def epoch(self, n: int) -> dict[str, Any] | None:
        status, body = self._get(f"/epoch/{n}")
        if status == 404:
            return None
        if status != 200:
            raise CliError(f"keeper API /epoch/{n}: {body.get('error', status)}")
        return dict(body)

    def dispute_inputs(self, n: int) -> dict[str, Any] | None:
        """The dispute inputs epoch ``n`` committed (``GET /epoch/<n>/inputs``); None when the
        keeper published none."""
        status, body = self._get(f"/epoch/{n}/inputs")
        if status == 404:
            return None
        if status != 200:
            raise CliError(f"keeper API /epoch/{n}/inputs: {body.get('error', status)}")
        return dict(body)

    def market_snapshot(self, n: int) -> str | None:
        """The market snapshot epoch ``n`` was computed on, as JSON text
        (``GET /epoch/<n>/market``); None when the keeper has none."""
        status, body = self._get(f"/epoch/{n}/market")
        if status == 404:
            return None
        if status != 200:
            raise CliError(f"keeper API /epoch/{n}/market: {body.get('error', status)}")
        return json.dumps(body)

    def _leaf(self, path: str) -> LeafWithProof | None:
        status, body = self._get(path)
        if status == 404:
            return None
        if status != 200:
            raise CliError(f"keeper API {path}: {body.get('error', status)}")
        leaf = body["leaf"]
        return LeafWithProof(
            epoch=int(body["epoch"]),
            root=str(body["root"]).lower(),
            fields=dict(leaf["fields"]),
            proof=proof_from_json(leaf["proof"]),
        )

    def account(self, account: int, epoch: int | None = None) -> LeafWithProof | None:
        """The ACCOUNT leaf of subaccount ``account`` (``GET /proof/<id>``)."""
        q = f"?epoch={epoch}" if epoch is not None else ""
        return self._leaf(f"/proof/{int(account)}{q}")

    def instrument(self, instrument_id: int, epoch: int | None = None) -> LeafWithProof | None:
        q = f"?epoch={epoch}" if epoch is not None else ""
        return self._leaf(f"/instrument/{int(instrument_id)}{q}")

    def markets(self) -> dict[str, Any]:
        """Mark, IV and funding per live instrument at the latest mined epoch
        (``GET /markets``, keeper/web/views.py)."""
        status, body = self._get("/markets")
        if status != 200:
            raise CliError(f"keeper API /markets: {body.get('error', status)}")
        return dict(body)

    def positions(self, account: int) -> dict[str, Any] | None:
        """Subaccount ``account``'s positions with entry price, P&L and funding paid
        (``GET /positions/<id>``); None before the first epoch."""
        status, body = self._get(f"/positions/{int(account)}")
        if status == 404:
            return None
        if status != 200:
            raise CliError(f"keeper API /positions/{account}: {body.get('error', status)}")
        return dict(body)

    def simulate(self, account: int | None, legs: list[tuple[int, float]]) -> dict[str, Any]:
        """IM / MM of ``account`` before and after ``legs`` ((instrument id, size in units
        from the account's side)) on the latest epoch's market (``POST /simulate``)."""
        doc = {"account": account, "legs": [{"instrument": i, "size": s} for i, s in legs]}
        try:
            r = requests.post(f"{self.url}/simulate", json=doc, timeout=self.timeout)
            body = r.json()
        except requests.RequestException as exc:
            raise CliError(f"keeper API unreachable at {self.url}: {type(exc).__name__}") from None
        except ValueError:
            raise CliError(f"keeper API at {self.url}/simulate answered non-JSON") from None
        if r.status_code != 200:
            raise CliError(f"keeper API /simulate: {body.get('error', r.status_code)}")
        return dict(body)


def current_root(session: Session) -> tuple[int, str]:
    """(epoch, root as lowercase 0x hex) the vault holds now."""
    epoch, _, _, root = session.vault.functions.currentEpoch().call()
    return int(epoch), "0x" + bytes(root).hex()


#: Times a command that read keeper leaves is run again when the vault's root moved under it.
ROOT_RETRIES = 4
#: How long a command waits for the epoch a ``BoundsFromPreviousPrices`` refusal names.
TAINT_WAIT_SECONDS = 60.0
T = TypeVar("T")


def tainted_until(message: str) -> int | None:
    """The epoch a ``BoundsFromPreviousPrices`` refusal says to wait for, else None: the
    subaccount changed between the current epoch's snapshot and its post, so its bounds are
    at the previous prices until the next epoch (docs/protocol.md §5)."""
    if "BoundsFromPreviousPrices" not in message:
        return None
    m = re.search(r"untilEpoch=(\d+)", message)
    return int(m.group(1)) if m else None


def _wait_for_epoch(session: Session, epoch: int, timeout: float) -> bool:
    """Poll the vault until it holds ``epoch`` or later; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while current_root(session)[0] < epoch:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def retry_on_new_root(session: Session, attempt: Callable[[], T]) -> T:
    """Run ``attempt`` (read the leaves, check, simulate, send) again while a new epoch
    lands during it: the leaf it read is then stale (a ``stale`` refusal, or the simulation's
    ``InvalidAccountProof``), through no fault of the user. Also while the keeper API serves
    a leaf of another root than the vault's (:class:`StaleLeafError`): the vault accepts an
    epoch a moment before the keeper records it as mined. A refusal with the epoch
    unchanged, a sent transaction that failed (:class:`TxSentError`), or ``ROOT_RETRIES``
    re-reads end as the one-line error. A ``BoundsFromPreviousPrices`` refusal (the subaccount
    acted between the current epoch's snapshot and its post) waits, at most
    :data:`TAINT_WAIT_SECONDS`, for the epoch it names, then tries again."""
    for i in range(ROOT_RETRIES + 1):
        epoch, _ = current_root(session)
        try:
            return attempt()
        except TxSentError:
            raise
        except CliError as exc:
            until = tainted_until(str(exc))
            if until is not None and i < ROOT_RETRIES:
                session.echo(
                    f"  the subaccount changed since the current epoch's snapshot: waiting for "
                    f"epoch {until}"
                )
                if not _wait_for_epoch(session, until, TAINT_WAIT_SECONDS):
                    raise
                continue
            moved = current_root(session)[0] != epoch
            if not (moved or isinstance(exc, StaleLeafError)) or i == ROOT_RETRIES:
                if moved:
                    raise CliError(
                        f"{exc} (the keeper posted a new root during each of "
                        f"{ROOT_RETRIES + 1} tries)"
                    ) from None
                raise
            session.echo(f"  {exc}: reading the leaves again")
        time.sleep(0.5)
    raise AssertionError("unreachable")


def check_fresh(session: Session, leaf: LeafWithProof, what: str) -> None:
    """Refuse a leaf whose root is not the vault's current one (the keeper is behind, or
    serves another deployment): the transaction would revert with an invalid proof."""
    epoch, root = current_root(session)
    if leaf.root != root:
        raise StaleLeafError(
            f"the keeper API's {what} is from epoch {leaf.epoch} (root {leaf.root[:10]}..) but "
            f"the vault holds epoch {epoch} (root {root[:10]}..): wait for the keeper, or check "
            "--api-url"
        )


def require_not_safe_mode(session: Session, action: str) -> None:
    """One clear line instead of a ``SafeMode()`` revert for actions that need a leaf."""
    if session.vault.functions.isSafeMode().call():
        raise CliError(
            f"{action} refused: the vault is in safe mode (no attestation younger than maxAge "
            f"= {session.vault.functions.maxAge().call()} s); only deposits and repayments "
            "work until the keeper posts a fresh epoch"
        )


def account_proof(session: Session, api: KeeperApi, account: int, *, required: bool) -> MarginProof:
    """Subaccount ``account``'s ACCOUNT leaf + proof in the vault's current root, or the
    empty proof when it needs none (no open positions) and the keeper has none. A leaf of
    another root, or whose ``stateNonce`` is not the subaccount's now, is refused in one
    line (the vault would revert ``InvalidAccountProof`` / ``StaleStateNonce``)."""
    leaf = api.account(account)
    if leaf is None:
        if required:
            epoch, _ = current_root(session)
            raise CliError(
                f"the keeper API has no ACCOUNT leaf for subaccount {account} in epoch {epoch}; "
                "a subaccount with open positions needs one (wait for the next epoch)"
            )
        return MarginProof.empty(account)
    check_fresh(session, leaf, f"leaf of subaccount {account}")
    mp = leaf.margin_proof()
    nonce = int(session.account_state(account)["stateNonce"])
    if mp.leaf.state_nonce != nonce:
        raise CliError(
            f"the keeper's leaf of subaccount {account} is stale (stateNonce "
            f"{mp.leaf.state_nonce}, the vault's is {nonce}): wait for the next epoch"
        )
    return mp


def wait_for_epoch(session: Session, after: int, timeout: float) -> int:
    """Block until the vault holds an epoch above ``after``; the new epoch number."""
    deadline = time.monotonic() + timeout
    while True:
        epoch, _ = current_root(session)
        if epoch > after:
            return epoch
        if time.monotonic() > deadline:
            raise CliError(f"no epoch after {after} within {timeout:.0f} s: is the keeper running?")
        time.sleep(0.2)


def wait_for_leaf(session: Session, api: KeeperApi, account: int, timeout: float) -> int:
    """Block until the keeper API serves subaccount ``account``'s leaf in the vault's current
    root with its current ``stateNonce``, and that epoch does not hold its bounds at the
    previous prices (``boundChange``'s ``taintedEpoch``: the change came after the epoch's
    snapshot, docs/protocol.md §5): what a withdrawal, a trade or a liquidation of it needs
    after a change. The epoch of that leaf."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            account_proof(session, api, account, required=True)
            epoch = current_root(session)[0]
            tainted = int(session.vault.functions.boundChange(account).call()[2])
            if tainted != epoch:
                return epoch
            exc = CliError(
                f"subaccount {account} changed after epoch {epoch}'s snapshot: its bounds are "
                f"at the previous prices until epoch {epoch + 1}"
            )
        except CliError as err:
            exc = err
        if time.monotonic() > deadline:
            raise CliError(f"after {timeout:.0f} s: {exc}") from None
        time.sleep(0.2)


# ------------------------------------------------------------------------------ options


def _compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(fn: F) -> F:
        for d in reversed(decorators):
            fn = d(fn)
        return fn

    return apply


class SessionOptions(TypedDict, total=False):
    """The keyword arguments the option factories below give a command:
    :func:`network_options` always, :func:`key_options` and :func:`dry_run_option` when the
    command has them."""

    rpc_url: str
    deployment_file: Path | None
    key_env: str
    keystore: Path | None
    password_env: str
    dry_run: bool
    max_fee_gwei: float


def network_options(fn: F) -> F:
    """``--rpc-url`` and ``--deployment`` (shared by every command that reads the chain)."""
    return _compose(
        click.option(
            "--rpc-url",
            default=DEFAULT_RPC_URL,
            show_default=True,
            envvar="PM_RPC_URL",
            help="JSON-RPC endpoint (env PM_RPC_URL).",
        ),
        click.option(
            "--deployment",
            "deployment_file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Deployment JSON (default: $PM_DEPLOYMENTS_DIR or deployments/<chainId>.json).",
        ),
    )(fn)


def key_options(fn: F) -> F:
    """``--key-env``, ``--keystore``, ``--password-env``: where the signing key comes from."""
    return _compose(
        click.option(
            "--key-env",
            default="PM_PRIVATE_KEY",
            show_default=True,
            help="Environment variable holding the hex private key.",
        ),
        click.option(
            "--keystore",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Encrypted JSON keystore (wins over --key-env).",
        ),
        click.option(
            "--password-env",
            default="PM_KEYSTORE_PASSWORD",
            show_default=True,
            help="Environment variable holding the keystore password.",
        ),
    )(fn)


def dry_run_option(fn: F) -> F:
    return _compose(
        click.option(
            "--dry-run",
            is_flag=True,
            help="Build and simulate the transaction(s), print the result, send nothing.",
        ),
        click.option(
            "--max-fee-gwei",
            type=float,
            default=200.0,
            show_default=True,
            help="Refuse to pay more than this maxFeePerGas.",
        ),
    )(fn)


def account_option(fn: F) -> F:
    """``--account ID``: the subaccount a command acts on or reads (default: the lowest id
    the key's address holds)."""
    return click.option(
        "--account",
        "account",
        type=click.IntRange(min=1),
        default=None,
        help="Subaccount id (default: your lowest; `pm account list` shows them).",
    )(fn)


def api_option(fn: F) -> F:
    return click.option(
        "--api-url",
        default=DEFAULT_API_URL,
        show_default=True,
        envvar="PM_API_URL",
        help="Keeper proof API (env PM_API_URL).",
    )(fn)


def open_session(
    rpc_url: str,
    deployment_file: Path | None,
    *,
    key_env: str | None = None,
    keystore: Path | None = None,
    password_env: str = "PM_KEYSTORE_PASSWORD",
    dry_run: bool = False,
    max_fee_gwei: float = 200.0,
    need_key: bool = True,
) -> Session:
    """Connect, load the deployment and (if ``need_key``) the key; in this order so that the
    first thing wrong is the one reported."""
    w3 = connect(rpc_url)
    dep = load_deployment(w3, deployment_file)
    account = None
    if need_key:
        account = load_key(key_env or "PM_PRIVATE_KEY", keystore, password_env)
    return Session(w3, dep, account, dry_run=dry_run, max_fee_gwei=max_fee_gwei)
