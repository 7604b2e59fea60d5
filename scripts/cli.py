"""``pm``: the command-line tool of every role (trader, market maker, deployer, keeper operator).

Each command is a thin wrapper: options -> :func:`scripts.client.open_session` -> one flow
function (``scripts.funds``, ``scripts.trading``, ``scripts.faucet``, ``scripts.margin_view``,
``scripts.report``, ``scripts.protocol_deploy``). Every state change is build -> simulate ->
send, and ``--dry-run`` stops after the simulation. Any failure a user can cause ends with
one line on stderr (``error: ...``) and exit code 1; set ``PM_DEBUG=1`` to see the traceback.
``pm keeper ...`` and ``pm liquidator ...`` are the keeper package's own command groups
(``keeper.cli``, ``keeper.liquidator.cli``), mounted lazily.
docs/cli.md lists the commands per role.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

import click
from eth_utils.address import is_hex_address, to_checksum_address
from web3.middleware import SignAndSendRawMiddlewareBuilder

from keeper.errors import KeeperError
from risk_engine.units import WAD
from scripts import client
from scripts.client import (
    DEFAULT_MARK_TOLERANCE,
    LOCAL_CHAIN_IDS,
    KeeperApi,
    SessionOptions,
    account_option,
    api_option,
    dry_run_option,
    key_options,
    network_options,
    open_session,
)
from scripts.errors import CliError, ScriptError

__all__ = ["main", "pm"]

if TYPE_CHECKING:  # margin_view (the engine) is imported only by the commands that show it
    from scripts.margin_view import MarginView

#: A click command function, decorated in place by an option factory.
F = TypeVar("F", bound=Callable[..., Any])


#: Subgroups owned by the keeper package, imported on first use: ``pm --help`` and every
#: trader command then work without importing the daemons.
_MOUNTED: dict[str, tuple[str, str]] = {
    "keeper": ("keeper.cli", "keeper_cli"),
    "liquidator": ("keeper.liquidator.cli", "liquidator_cli"),
}


class _PmGroup(click.Group):
    """Mounts ``keeper`` (``keeper.cli.keeper_cli``) and ``liquidator``
    (``keeper.liquidator.cli.liquidator_cli``) lazily."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_MOUNTED})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _MOUNTED:
            module, attr = _MOUNTED[name]
            try:
                cmd = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                return _missing(name, f"{module}.{attr}", str(exc))
            return cmd if isinstance(cmd, click.Command) else None
        return super().get_command(ctx, name)


def _missing(name: str, where: str, reason: str) -> click.Command:
    @click.command(name, help=f"({where} is not available in this checkout.)")
    def missing() -> None:
        raise CliError(f"the {name} command group ({where}) is not available: {reason}")

    return missing


@click.group(cls=_PmGroup, context_settings={"help_option_names": ["-h", "--help"]})
def pm() -> None:
    """Portfolio-margin protocol: deploy, fund, trade, withdraw, inspect margin.

    Keys come from an environment variable (--key-env, default PM_PRIVATE_KEY) or an
    encrypted keystore (--keystore + --password-env), never from the command line."""


# ----------------------------------------------------------------------------- deployer


@pm.command()
@click.option("--rpc-url", default=client.DEFAULT_RPC_URL, show_default=True, envvar="PM_RPC_URL")
@key_options
@click.option(
    "--signer",
    "signers",
    multiple=True,
    help="Attestation signer address (repeat). Default: the addresses of $PM_SIGNER_KEYS, or "
    "on a local chain the deployer.",
)
@click.option("--quorum", type=int, default=None, help="Signatures needed (default: majority).")
@click.option(
    "--max-age", type=int, default=3600, show_default=True, help="Seconds before safe mode."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Deployment file (default: deployments/<chainId>.json).",
)
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML file of EXISTING token addresses ([settlement], [[collateral]]) to register "
    "instead of deploying mocks (a live chain; docs/operations.md).",
)
@click.option(
    "--collateral",
    "collateral_symbols",
    default=None,
    help="Mock collateral to deploy, comma-separated (default: WETH,WBTC,GOV). The replay "
    "feed has no GOV data: deploy --collateral WETH,WBTC for it (docs/operations.md §2).",
)
@click.option(
    "--reference",
    "references",
    multiple=True,
    metavar="SYMBOL=AGGREGATOR:MAX_DEVIATION:MAX_STALENESS",
    help="On-chain reference feed of a collateral token (repeat), e.g. "
    "WETH=0x5f4e...:0.05:3900: postEpoch refuses a price more than 5% from the Chainlink "
    "answer, and skips an answer older than 3,900 s (docs/operations.md).",
)
@click.option(
    "--force", is_flag=True, help="Overwrite a deployment file whose vault is still live."
)
@dry_run_option
def deploy(
    rpc_url: str,
    key_env: str,
    keystore: Path | None,
    password_env: str,
    signers: tuple[str, ...],
    quorum: int | None,
    max_age: int,
    out: Path | None,
    dry_run: bool,
    max_fee_gwei: float,
    tokens_file: Path | None,
    collateral_symbols: str | None,
    references: tuple[str, ...],
    force: bool,
) -> None:
    """Deploy mock tokens (USDC 6, WETH 18, WBTC 8, GOV 18), the vault, the default
    instruments (perps BTC/ETH/SOL, calls and puts on BTC/ETH) and the signer set; write
    deployments/<chainId>.json. With --tokens, the existing tokens of that file are
    registered instead of mocks. On a local chain without a key, the node's first unlocked
    account deploys."""
    from scripts.protocol_deploy import (
        COLLATERAL,
        default_instruments,
        deploy_protocol,
        load_token_config,
        parse_reference,
        write_deployment,
    )
    from scripts.toolchain.compile import compile_contracts

    reference_specs = [parse_reference(r) for r in references]  # DeploymentError: a CLI error

    w3 = client.connect(rpc_url)
    chain_id = int(w3.eth.chain_id)
    local = chain_id in LOCAL_CHAIN_IDS
    if keystore is not None or os.environ.get(key_env):
        account = client.load_key(key_env, keystore, password_env)
        owner = account.address
        w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
    elif local:
        owner = w3.eth.accounts[0]
    else:
        raise CliError(
            f"chain {chain_id} is not local: set ${key_env} or pass --keystore to deploy"
        )
    signer_list = [_address(s, "--signer") for s in signers]
    if not signer_list and os.environ.get("PM_SIGNER_KEYS"):
        from eth_account import Account

        from keeper.config import parse_private_key

        signer_list = [
            Account.from_key(parse_private_key(k, "PM_SIGNER_KEYS")).address
            for k in os.environ["PM_SIGNER_KEYS"].split(",")
            if k.strip()
        ]
    if not signer_list:
        if not local:
            raise CliError("no signers: pass --signer ADDRESS (repeat) or set PM_SIGNER_KEYS")
        signer_list = [owner]
    q = quorum if quorum is not None else len(signer_list) // 2 + 1
    if not 1 <= q <= len(signer_list):
        raise CliError(f"--quorum must be between 1 and {len(signer_list)}, got {q}")
    balance = int(w3.eth.get_balance(owner))
    if balance == 0:
        raise CliError(f"deployer {owner} has no ETH for gas on chain {chain_id}")
    existing = None if tokens_file is None else load_token_config(w3, tokens_file)
    collateral = COLLATERAL
    if collateral_symbols is not None:
        if existing is not None:
            raise CliError("--collateral picks mocks; with --tokens the file lists the collateral")
        wanted = [x.strip().upper() for x in collateral_symbols.split(",") if x.strip()]
        known = {spec[0]: spec for spec in COLLATERAL}
        unknown = [x for x in wanted if x not in known]
        if unknown or not wanted or len(set(wanted)) != len(wanted):
            raise CliError(
                f"--collateral {collateral_symbols!r}: give distinct symbols among "
                f"{', '.join(known)}"
            )
        collateral = tuple(known[x] for x in wanted)
    symbols = [t.symbol for t in existing.collateral] if existing else [c[0] for c in collateral]
    unknown = sorted({r.symbol for r in reference_specs} - {s.upper() for s in symbols})
    if unknown:  # before anything is sent
        raise CliError(f"--reference for {', '.join(unknown)}: not a collateral token")
    compiled = compile_contracts()
    if dry_run:
        art = compiled["MockERC20"]
        factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        gas = factory.constructor("USD Coin (mock)", "USDC", 6).estimate_gas({"from": owner})
        now = int(w3.eth.get_block("latest")["timestamp"])
        click.echo(f"dry run: chain {chain_id}, deployer {owner} ({balance / WAD:.4f} ETH)")
        if existing is None:
            mocks = "/".join(["USDC", *(spec[0] for spec in collateral)])
            click.echo(f"  would deploy {mocks} mocks (first: gas {gas}) and the vault")
        else:
            for t in (existing.settlement, *existing.collateral):
                click.echo(f"  would register existing {t.symbol} {t.address} ({t.decimals} dp)")
        for spec in default_instruments(now):
            click.echo(
                f"  would register instrument kind {spec.kind} {spec.underlying} "
                f"strike {spec.strike // WAD} expiry {client.utc(spec.expiry)}"
            )
        for r in reference_specs:
            click.echo(
                f"  would check {r.symbol} against {r.aggregator} (max deviation "
                f"{r.max_deviation / WAD:.2%}, max staleness {r.max_staleness} s)"
            )
        click.echo(f"  would set signers {', '.join(signer_list)} with quorum {q}; nothing sent")
        return
    if not force:  # after the dry run: a rehearsal writes nothing, so it overwrites nothing
        _refuse_live_deployment(w3, out or client.deployments_dir() / f"{chain_id}.json")
    dep = deploy_protocol(
        w3,
        owner=owner,
        signers=signer_list,
        quorum=q,
        max_age=max_age,
        compiled=compiled,
        existing=existing,
        collateral=collateral,
        references=reference_specs,
    )
    path = write_deployment(dep, out)
    click.echo(f"vault      {dep.vault}")
    for t in dep.tokens:
        click.echo(f"{t.symbol:<10} {t.address} ({t.decimals} decimals)")
    for i in dep.instruments:
        click.echo(f"instrument {i.id}: {i.name}")
    click.echo(f"signers    {', '.join(dep.signers)} (quorum {dep.quorum})")
    if reference_specs:
        from scripts.deploy import vault_at

        references_at = vault_at(w3, dep.vault).functions.priceReferences().call()
        click.echo(f"references {references_at}")
        for r in reference_specs:
            click.echo(f"  {r.symbol:<8} {r.aggregator} max deviation {r.max_deviation / WAD:.2%}")
    click.echo(f"wrote {path}")


def _refuse_live_deployment(w3: Any, path: Path) -> None:
    """Refuse to overwrite ``path`` while its vault still has code on this chain: the file
    is how every user and the keeper find that vault. A stale file (an Anvil restarted
    empty) is overwritten."""
    if not path.is_file():
        return
    try:
        vault = json.loads(path.read_text())["vault"]
        live = bool(bytes(w3.eth.get_code(to_checksum_address(vault))))
    except (OSError, ValueError, KeyError, TypeError):
        live = True  # unreadable: not ours to destroy either
    if live:
        raise CliError(
            f"{path} already holds a live deployment on this chain: pass --force to "
            "overwrite it, or --out FILE to write another"
        )


# ----------------------------------------------------------------------------- trader


def _session(kw: SessionOptions, *, need_key: bool = True) -> client.Session:
    return open_session(
        kw["rpc_url"],
        kw["deployment_file"],
        key_env=kw.get("key_env"),
        keystore=kw.get("keystore"),
        password_env=kw.get("password_env", "PM_KEYSTORE_PASSWORD"),
        dry_run=kw.get("dry_run", False),
        max_fee_gwei=kw.get("max_fee_gwei", 200.0),
        need_key=need_key,
    )


def _address(text: str, what: str) -> str:
    if not is_hex_address(text):
        raise CliError(f"{what} {text!r} is not an address")
    return to_checksum_address(text)


@pm.command()
@network_options
@key_options
@dry_run_option
@click.option("--to", default=None, help="Recipient (default: the key's address).")
def faucet(to: str | None, **kw: Unpack[SessionOptions]) -> None:
    """Mint the mock tokens of a test deployment (and gas ETH on a local chain)."""
    from scripts.faucet import drip

    drip(_session(kw), _address(to, "--to") if to else None)


def _approve_max_option(fn: F) -> F:
    return click.option(
        "--approve-max",
        is_flag=True,
        help="Approve the vault for unlimited spending (default: exactly the amount).",
    )(fn)


@pm.command()
@network_options
@key_options
@dry_run_option
@account_option
@_approve_max_option
@click.argument("token")
@click.argument("amount")
def deposit(
    token: str,
    amount: str,
    account: int | None,
    approve_max: bool,
    **kw: Unpack[SessionOptions],
) -> None:
    """Deposit AMOUNT of collateral TOKEN (symbol or address; approves the vault for
    exactly AMOUNT first) into a subaccount you own or operate. Without --account: your
    lowest subaccount, or a new first one if you hold none."""
    from scripts.funds import deposit as run

    run(_session(kw), token, amount, account, approve_max=approve_max)


@pm.command("deposit-cash")
@network_options
@key_options
@dry_run_option
@account_option
@_approve_max_option
@click.argument("amount")
def deposit_cash(
    amount: str, account: int | None, approve_max: bool, **kw: Unpack[SessionOptions]
) -> None:
    """Deposit AMOUNT of the settlement token (USDC) as cash; repays debt if cash < 0.
    Without --account: your lowest subaccount, or a new first one if you hold none."""
    from scripts.funds import deposit_cash as run

    run(_session(kw), amount, account, approve_max=approve_max)


@pm.command()
@network_options
@key_options
@dry_run_option
@api_option
@account_option
@click.argument("token")
@click.argument("amount")
def withdraw(
    token: str, amount: str, api_url: str, account: int | None, **kw: Unpack[SessionOptions]
) -> None:
    """Withdraw AMOUNT of collateral TOKEN from a subaccount to its owner; with open
    positions its leaf and proof come from the keeper API and the vault checks the IM
    surplus lower bound."""
    from scripts.funds import withdraw as run

    run(_session(kw), KeeperApi(api_url), token, amount, account)


@pm.command("withdraw-cash")
@network_options
@key_options
@dry_run_option
@api_option
@account_option
@click.argument("amount")
def withdraw_cash(
    amount: str, api_url: str, account: int | None, **kw: Unpack[SessionOptions]
) -> None:
    """Withdraw AMOUNT of USDC from a subaccount's cash to its owner (cash may go negative
    if the margin allows)."""
    from scripts.funds import withdraw_cash as run

    run(_session(kw), KeeperApi(api_url), amount, account)


# ------------------------------------------------------ finality (docs/protocol.md §10)


@pm.command()
@network_options
@key_options
@click.option("--owner", default=None, help="whose withdrawals (default: your key's address)")
@click.option("--all", "everyone", is_flag=True, help="every pending withdrawal")
def withdrawals(owner: str | None, everyone: bool, **kw: Unpack[SessionOptions]) -> None:
    """List pending withdrawals (queued while the challenge window is on): id, subaccount,
    amount, and whether it is waiting, ready to claim, or void."""
    from scripts.finality import list_withdrawals

    who = _address(owner, "--owner") if owner else None
    list_withdrawals(_session(kw, need_key=who is None and not everyone), who, everyone=everyone)


@pm.command("claim-withdrawal")
@network_options
@key_options
@dry_run_option
@click.argument("withdrawal_id", type=int)
def claim_withdrawal(withdrawal_id: int, **kw: Unpack[SessionOptions]) -> None:
    """Pay pending withdrawal ID to the owner it was made for, once its challenge window
    has passed (anyone may send it)."""
    from scripts.finality import claim_withdrawal as run

    run(_session(kw), withdrawal_id)


@pm.command("return-withdrawal")
@network_options
@key_options
@dry_run_option
@click.argument("withdrawal_id", type=int)
def return_withdrawal(withdrawal_id: int, **kw: Unpack[SessionOptions]) -> None:
    """Credit void withdrawal ID (a fraud was proven during its window) back to its
    subaccount (anyone may send it)."""
    from scripts.finality import return_withdrawal as run

    run(_session(kw), withdrawal_id)


@pm.command()
@network_options
@key_options
@dry_run_option
@api_option
@click.option("--epoch", type=int, default=None, help="the epoch to check (default: the latest)")
def dispute(api_url: str, epoch: int | None, **kw: Unpack[SessionOptions]) -> None:
    """Check an epoch as `keeper verify` does (your node, the market snapshot the keeper
    published, the default risk parameters) and prove the first wrong ACCOUNT leaf, else the
    first wrong INSTRUMENT leaf, on chain: the bond's reward is yours, the vault goes to safe
    mode (docs/protocol.md §11)."""
    from risk_engine import load_params
    from scripts.dispute import dispute as run

    run(_session(kw), KeeperApi(api_url), load_params(), epoch=epoch)


@pm.command("claim-payout")
@network_options
@key_options
@dry_run_option
def claim_payout(**kw: Unpack[SessionOptions]) -> None:
    """Pay your key what a liquidation of your subaccount or a won dispute credited to it."""
    from scripts.finality import claim_payout as run

    run(_session(kw))


@pm.group()
def bond() -> None:
    """The signers' bond that a proven fraud slashes (docs/protocol.md §10)."""


@bond.command("show")
@network_options
def bond_show(**kw: Unpack[SessionOptions]) -> None:
    """The challenge window, the bond and its minimum, and any fraud's safe mode."""
    from scripts.finality import bond_status

    bond_status(_session(kw, need_key=False))


@bond.command("post")
@network_options
@key_options
@dry_run_option
@_approve_max_option
@click.argument("amount")
def bond_post(amount: str, approve_max: bool, **kw: Unpack[SessionOptions]) -> None:
    """Add AMOUNT of USDC from your wallet to the signers' bond."""
    from scripts.finality import post_bond

    post_bond(_session(kw), amount, approve_max=approve_max)


@bond.command("withdraw")
@network_options
@key_options
@dry_run_option
@click.option("--to", default=None, help="recipient (default: your key's address)")
@click.argument("amount")
def bond_withdraw(amount: str, to: str | None, **kw: Unpack[SessionOptions]) -> None:
    """Owner: take AMOUNT of USDC of the bond (above the minimum while a root is
    disputable; all of it once the newest root is final)."""
    from scripts.finality import withdraw_bond

    withdraw_bond(_session(kw), amount, _address(to, "--to") if to else None)


@pm.command("dispute-config")
@network_options
@key_options
@dry_run_option
@click.argument("window", type=int)
@click.argument("min_bond")
def dispute_config(window: int, min_bond: str, **kw: Unpack[SessionOptions]) -> None:
    """Owner: set the challenge window (seconds, 0 = off) and the minimum bond (USDC) that
    postEpoch requires while the window is on."""
    from scripts.finality import set_dispute_config

    set_dispute_config(_session(kw), window, min_bond)


# ----------------------------------------------------------------------------- subaccounts


@pm.group()
def account() -> None:
    """Subaccounts: create, list, transfer, operators. Every other command takes --account
    ID (default: your lowest subaccount)."""


@account.command("new")
@network_options
@key_options
@dry_run_option
def account_new(**kw: Unpack[SessionOptions]) -> None:
    """Create a subaccount owned by your key and print its id."""
    from scripts.accounts import new_account

    new_account(_session(kw))


@account.command("list")
@network_options
@key_options
@click.option("--owner", default=None, help="Whose subaccounts (default: the key's address).")
def account_list(owner: str | None, **kw: Unpack[SessionOptions]) -> None:
    """List an owner's subaccounts: id, owner, cash, open positions, collateral tokens."""
    from scripts.accounts import format_rows, list_accounts

    session = _session(kw, need_key=owner is None)
    who = _address(owner, "--owner") if owner else session.address
    rows = list_accounts(session, who)
    if not rows:
        raise CliError(f"{who} has no subaccount in this vault: run `pm account new`")
    for line in format_rows(rows):
        click.echo(line)


@account.command("transfer")
@network_options
@key_options
@dry_run_option
@click.argument("account_id", metavar="ID", type=click.IntRange(min=1))
@click.argument("to")
def account_transfer(account_id: int, to: str, **kw: Unpack[SessionOptions]) -> None:
    """Give subaccount ID (positions, collateral, cash, all of it) to address TO."""
    from scripts.accounts import transfer_account

    transfer_account(_session(kw), account_id, _address(to, "TO"))


@account.command("operator")
@network_options
@key_options
@dry_run_option
@click.option("--revoke", is_flag=True, help="Remove the operator instead.")
@click.argument("operator")
def account_operator(operator: str, revoke: bool, **kw: Unpack[SessionOptions]) -> None:
    """Let OPERATOR act for ALL your subaccounts (trade, withdraw to you, transfer)."""
    from scripts.accounts import set_operator

    set_operator(_session(kw), _address(operator, "OPERATOR"), not revoke)


@pm.command()
@network_options
@api_option
@click.option(
    "--account",
    type=int,
    default=None,
    help="Wait until the keeper has attested this subaccount as it is now (its leaf in the "
    "vault's root carries its current stateNonce, and that epoch's snapshot came after its "
    "last change).",
)
@click.option("--timeout", type=float, default=120, show_default=True, help="Seconds.")
def wait(account: int | None, api_url: str, timeout: float, **kw: Unpack[SessionOptions]) -> None:
    """Wait for the keeper: for the vault's next epoch, or (--account) until the leaf of a
    subaccount you just changed is posted, which a withdrawal or trade with positions needs."""
    session = _session(kw, need_key=False)
    if account is None:
        epoch, _ = client.current_root(session)
        click.echo(f"epoch {client.wait_for_epoch(session, epoch, timeout)}")
        return
    epoch = client.wait_for_leaf(session, KeeperApi(api_url), account, timeout)
    click.echo(f"subaccount {account} attested as it is now in epoch {epoch}")


# ----------------------------------------------------------------------------- market maker


@pm.command()
@network_options
@key_options
@account_option
@click.option(
    "--leg",
    "legs",
    multiple=True,
    required=True,
    help="INSTRUMENT:SIZE:PRICE from the maker's side (+ buys, - sells), instrument id or "
    "name, e.g. --leg BTC-PERP:-0.5:65000. Repeat for a multi-leg quote.",
)
@click.option(
    "--taker", default=None, help="Only this address may send the fill (default: anyone)."
)
@click.option("--nonce", type=int, default=None, help="Quote nonce (default: random 64-bit).")
@click.option("--ttl", type=int, default=300, show_default=True, help="Seconds the quote is valid.")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Quote file."
)
@api_option
@click.option(
    "--mark-tolerance",
    type=click.FloatRange(min=0),
    default=DEFAULT_MARK_TOLERANCE,
    show_default=True,
    help="Warn when a leg's price is further than this fraction from its mark.",
)
def quote(
    legs: tuple[str, ...],
    taker: str | None,
    nonce: int | None,
    ttl: int,
    out: Path,
    account: int | None,
    api_url: str,
    mark_tolerance: float,
    **kw: Unpack[SessionOptions],
) -> None:
    """Sign a (multi-leg) RFQ quote for your subaccount as the maker and write it to a JSON
    file. Sends nothing. Each leg's price is shown against its mark (the keeper API's
    INSTRUMENT leaf), with a warning beyond --mark-tolerance."""
    from scripts.trading import make_quote

    make_quote(
        _session(kw),
        list(legs),
        taker=_address(taker, "--taker") if taker else None,
        nonce=nonce,
        ttl_seconds=ttl,
        out=out,
        account=account,
        api=KeeperApi(api_url),
        mark_tolerance=mark_tolerance,
    )


@pm.command()
@network_options
@key_options
@dry_run_option
@api_option
@account_option
@click.option(
    "--mark-tolerance",
    type=click.FloatRange(min=0),
    default=DEFAULT_MARK_TOLERANCE,
    show_default=True,
    help="Warn when a leg's price is further than this fraction from its mark.",
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def trade(
    file: Path,
    api_url: str,
    account: int | None,
    mark_tolerance: float,
    **kw: Unpack[SessionOptions],
) -> None:
    """Fill the quote in FILE into your subaccount as the taker (proofs of both subaccounts
    and every leg come from the keeper API). Shows first your side of each leg, its price
    against the mark, and your IM before and after."""
    from scripts.trading import take_quote

    take_quote(_session(kw), KeeperApi(api_url), file, account, mark_tolerance)


@pm.command()
@network_options
@key_options
@dry_run_option
@click.argument("nonce", type=int)
def cancel(nonce: int, **kw: Unpack[SessionOptions]) -> None:
    """Cancel your quote NONCE on chain: no quote with it can be filled afterwards."""
    from scripts.trading import cancel as run

    run(_session(kw), nonce)


# ----------------------------------------------------------------------------- liquidator


@pm.command()
@network_options
@key_options
@dry_run_option
@api_option
@click.option(
    "--deposit",
    default=None,
    help="USDC to deposit into the subaccount (default: the capital need plus the slippage "
    "allowed on the cost).",
)
@click.argument("account_id", metavar="ID", type=click.IntRange(min=1))
def liquidate(
    account_id: int, deposit: str | None, api_url: str, **kw: Unpack[SessionOptions]
) -> None:
    """Take subaccount ID over by hand: it becomes yours, and you deposit from your wallet
    what brings it to IM (capital need = IM deficit + pay + fee - covered). The bot does
    the same automatically (`pm liquidator run`)."""
    from scripts.liquidate import liquidate as run

    run(_session(kw), KeeperApi(api_url), account_id, deposit)


# ----------------------------------------------------------------------------- inspection


class ViewOptions(SessionOptions, total=False):
    """:class:`SessionOptions` plus what :func:`_inspect_options` adds."""

    market_file: Path | None
    keeper_data: Path | None
    params_file: Path | None


def _inspect_options(fn: F) -> F:
    fn = key_options(fn)
    fn = account_option(fn)
    fn = click.option(
        "--owner",
        default=None,
        help="Read the lowest subaccount of this address (default: the key's, if set).",
    )(fn)
    fn = click.option(
        "--market",
        "market_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="MarketState JSON (or a keeper epoch file) to price the account in.",
    )(fn)
    fn = click.option(
        "--keeper-data",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Keeper data dir holding keeper.sqlite (default: keeper.data_dir of the keeper "
        "config $PM_CONFIG, else $PM_DATA_DIR, else <repo>/var/keeper).",
    )(fn)
    fn = click.option(
        "--params",
        "params_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Risk parameter TOML (default: the shipped risk_engine/params/default.toml).",
    )(fn)
    return fn


def _view(
    account: int | None, owner: str | None, api_url: str, kw: ViewOptions
) -> tuple[client.Session, MarginView]:
    """The margin view of ``account``, or of the lowest subaccount of ``owner`` (default: the
    key's address, when a key is set)."""
    from scripts.margin_view import margin_view

    session = _session(kw, need_key=False)
    if account is None and owner is None:
        key_env = kw.get("key_env") or "PM_PRIVATE_KEY"
        if not (os.environ.get(key_env) or kw.get("keystore")):
            raise CliError("name the subaccount: --account ID, or --owner ADDRESS (its lowest)")
        session.account = client.load_key(
            key_env, kw.get("keystore"), kw.get("password_env", "PM_KEYSTORE_PASSWORD")
        )
    target = session.resolve_account(account, _address(owner, "--owner") if owner else None)
    view = margin_view(
        session,
        KeeperApi(api_url),
        target,
        market_file=kw["market_file"],
        keeper_data=kw["keeper_data"],
        params_file=kw["params_file"],
    )
    return session, view


def _fmt_wad(x: int | None) -> str:
    return f"{'n/a':>16}" if x is None else f"{x / WAD:>16,.2f}"


def _fmt(x: float | None) -> str:
    return f"{'n/a':>16}" if x is None else f"{x:>16,.2f}"


def _positions_doc(api_url: str, account: int) -> list[dict[str, Any]] | None:
    """Entry price, unrealized / realized P&L and funding paid per position, from the
    keeper's ``GET /positions/<id>`` (keeper/account_view.py replays the fills); None when
    the keeper API cannot say."""
    try:
        doc = KeeperApi(api_url).positions(account)
    except CliError:
        return None
    return None if doc is None else list(doc["positions"])


def _pnl_by_name(api_url: str, account: int) -> dict[str, str]:
    """``"  entry E  uP&L U  rP&L R  funding paid F"`` per position name, for the text view."""
    rows = _positions_doc(api_url, account) or []

    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:,.2f}"

    return {
        r["name"]: f"  entry {num(r['entryPrice'])}  uP&L {num(r['unrealizedPnl'])}  "
        f"rP&L {num(r['realizedPnl'])}  funding paid {num(r['fundingPaid'])}"
        for r in rows
    }


@pm.command()
@api_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def markets(api_url: str, as_json: bool) -> None:
    """Mark, implied vol and funding per live instrument, and spot per underlying, at the
    keeper's latest mined epoch (the keeper API's GET /markets)."""
    doc = KeeperApi(api_url).markets()
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(
        f"epoch {doc['epoch']}, market of {client.utc(doc['timestamp'])} (feed {doc['source']})"
    )
    for u in doc["underlyings"]:
        click.echo(
            f"  {u['symbol']:<6} spot {u['spot']:>14,.2f}  perp mark {u['perpMark']:>14,.2f}"
        )
    click.echo(f"  {'instrument':<24} {'kind':<5} {'mark USD':>14} {'IV':>8}  funding/h USD")
    for r in doc["markets"]:
        iv = "" if r["iv"] is None else f"{r['iv']:.1%}"
        fh = "" if r["fundingPerHour"] is None else f"{r['fundingPerHour']:+,.4f}"
        expiry = f"  expires {client.utc(r['expiry'])}" if r.get("expiry") else ""
        click.echo(
            f"  {r['name']:<24} {r['kind']:<5} {r['mark']['decimal']:>14,.2f} {iv:>8}  {fh}{expiry}"
        )


@pm.command()
@network_options
@api_option
@_inspect_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def margin(
    account: int | None, owner: str | None, api_url: str, as_json: bool, **kw: Unpack[ViewOptions]
) -> None:
    """Equity, IM, MM, surplus, worst scenario and the risk array of a subaccount (anyone's:
    reading needs no key).

    Attested numbers: the keeper API's ACCOUNT leaf of the epoch the vault holds. Bounds
    now: the vault's imSurplusLo / mmSurplusHi views with that leaf. Engine now: the
    risk engine's explain on the account's current positions in that epoch's market."""
    _, v = _view(account, owner, api_url, kw)
    rep = v.report
    leaf = v.leaf
    if as_json:
        doc = {
            "account": v.account,
            "owner": v.owner,
            "epoch": v.epoch,
            "safeMode": v.safe_mode,
            "attested": None if leaf is None else {k: str(x) for k, x in leaf.items()},
            "imSurplusLo": None if v.im_surplus_lo is None else str(v.im_surplus_lo),
            "mmSurplusHi": None if v.mm_surplus_hi is None else str(v.mm_surplus_hi),
            "engine": None
            if rep is None
            else {
                "equity": rep.equity,
                "im": rep.im,
                "mm": rep.mm,
                "worstScenario": rep.worst_words,
                "breakdown": rep.breakdown,
            },
            "positions": [
                {"name": p.name, "kind": p.kind, "size": p.size, "mark": p.mark}
                for p in v.positions
            ],
            "pnl": _positions_doc(api_url, v.account),
            "maxWithdrawableCash6": None
            if v.max_withdrawable_cash6 is None
            else str(v.max_withdrawable_cash6),
            "liquidation": [
                {"underlying": d.underlying, "spot": d.spot, "down": d.down, "up": d.up}
                for d in v.liquidation
            ],
            "greeks": None
            if v.greeks is None
            else {
                u: {"delta": t[0], "deltaUsd": t[1], "gamma": t[2], "vega": t[3], "theta": t[4]}
                for u, t in v.greeks.totals.items()
            },
        }
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(
        f"subaccount {v.account} (owner {v.owner})   vault epoch {v.epoch} "
        f"(snapshot block {v.snapshot_block})"
        f"   safe mode: {'YES' if v.safe_mode else 'no'}"
    )
    click.echo(f"{'USD':<18}{'attested leaf':>16}  {'engine now':>16}")

    def row(name: str, a: int | None, b: float | None) -> None:
        click.echo(f"{name:<18}{_fmt_wad(a)}  {_fmt(b)}")

    row("equity", leaf["equity"] if leaf else None, rep.equity if rep else None)
    row("IM", leaf["im"] if leaf else None, rep.im if rep else None)
    row("MM", leaf["mm"] if leaf else None, rep.mm if rep else None)
    row(
        "surplus (eq - IM)",
        leaf["equity"] - leaf["im"] if leaf else None,
        rep.equity - rep.im if rep else None,
    )
    row(
        "surplus (eq - MM)",
        leaf["equity"] - leaf["mm"] if leaf else None,
        rep.equity - rep.mm if rep else None,
    )
    click.echo(
        f"bounds now (vault): IM surplus lower bound {_fmt_wad(v.im_surplus_lo).strip()}, "
        f"MM surplus upper bound {_fmt_wad(v.mm_surplus_hi).strip()}"
        + (f"  [{v.bounds_note}]" if v.bounds_note else "")
    )
    mw = v.max_withdrawable_cash6
    if mw is not None:
        click.echo(
            f"max withdrawable now: {mw / 10**6:,.2f} USDC cash (the IM surplus bound; "
            "a token withdrawal costs its value x (1 + upShock))"
        )
    for d in v.liquidation:
        down = "none within -95%" if d.down is None else f"{d.down:+.1%} (at {d.price_down:,.2f})"
        up = "none within +300%" if d.up is None else f"{d.up:+.1%} (at {d.price_up:,.2f})"
        click.echo(
            f"liquidation if {d.underlying} moves (others held, spot {d.spot:,.2f}): "
            f"down {down}, up {up}"
        )
    if v.greeks is not None:
        click.echo("greeks (delta in units, gamma per USD, vega USD/vol pt, theta USD/day):")
        for u, (dl, dusd, gm, vg, th) in v.greeks.totals.items():
            theta = "n/a" if th is None else f"{th:,.2f}"
            click.echo(
                f"  {u:<6} delta {dl:,.4f} ({dusd:,.0f} USD)  gamma {gm:.6f}  "
                f"vega {vg:,.2f}  theta {theta}"
            )
    pnl = _pnl_by_name(api_url, v.account)
    click.echo("positions:")
    for p in v.positions:
        mark = "n/a" if p.mark is None else f"{p.mark:,.2f}"
        click.echo(
            f"  {p.name:<24} {p.kind:<10} {p.size:>14,.6g}  mark {mark}{pnl.get(p.name, '')}"
        )
    click.echo(f"  {'cash':<24} {'USD':<10} {v.cash:>14,.2f}")
    if rep is None or v.grid is None:
        click.echo(f"risk array unavailable: {v.engine_note}")
        return
    click.echo(f"worst scenario: {rep.worst_words}")
    click.echo("IM breakdown: " + ", ".join(f"{k} {x:,.2f}" for k, x in rep.breakdown.items()))
    g = v.grid
    click.echo(
        "risk array, P&L USD (columns: price move x scan range "
        + ", ".join(f"{u} {r:.1%}" for u, r in g.ranges.items())
        + "; * extreme):"
    )
    click.echo(
        f"{'':>10}"
        + "".join(
            f"{f'{f:+.2f}' + ('*' if e else ''):>12}"
            for f, e in zip(g.fractions, g.extreme, strict=True)
        )
    )
    names = {-1: "vol down", 0: "vol flat", 1: "vol up"}
    for r, state in enumerate(g.vol_states):
        cells = "".join(f"{x:>12,.0f}" for x in g.pnl[r])
        click.echo(f"{names[state]:>10}{cells}")
    click.echo(f"(engine: {v.engine_note})")


@pm.command()
@network_options
@api_option
@_inspect_options
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="HTML file."
)
@click.option("--history", type=int, default=50, show_default=True, help="Epochs of history.")
def report(
    account: int | None,
    owner: str | None,
    api_url: str,
    out: Path,
    history: int,
    **kw: Unpack[ViewOptions],
) -> None:
    """Write a self-contained HTML risk report of a subaccount: risk array heat map (price x
    vol), margin history, positions."""
    from scripts.margin_view import margin_history
    from scripts.report import write_report

    _, v = _view(account, owner, api_url, kw)
    hist = margin_history(KeeperApi(api_url), v.account, v.epoch, history) if v.epoch else []
    path = write_report(v, hist, out)
    click.echo(f"wrote {path} ({len(hist)} epochs of history)")


# ----------------------------------------------------------------------------- entry point


# ----------------------------------------------------------------------------- demo


@pm.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def demo(ctx: click.Context) -> None:
    """The end-to-end demo on a private Anvil (same as `make demo`); options as
    `python -m scripts.demo --help` (--fast, --out DIR, --keep, --seed N, ...)."""
    from scripts.demo import main as demo_main  # imported on use: starts no daemon at import

    ctx.exit(demo_main(list(ctx.args)))


def main(argv: list[str] | None = None) -> int:
    """Run ``pm``; every error ends as one line on stderr and a non-zero exit code."""
    try:
        rv = pm.main(args=argv, prog_name="pm", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except CliError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except (KeeperError, ScriptError) as exc:  # DeploymentError, AnvilError: as keeper errors
        if os.environ.get("PM_DEBUG"):
            raise
        click.echo(f"error: {type(exc).__name__}: {str(exc).splitlines()[0]}", err=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - the promise: never a traceback for a user
        if os.environ.get("PM_DEBUG"):
            raise
        if type(exc).__module__.startswith("risk_engine"):  # not imported unless needed
            click.echo(f"error: {type(exc).__name__}: {str(exc).splitlines()[0]}", err=True)
            return 1
        first = (str(exc).splitlines() or [""])[0][:300]
        click.echo(
            f"error: unexpected {type(exc).__name__}: {first} (PM_DEBUG=1 shows the traceback)",
            err=True,
        )
        return 1
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
