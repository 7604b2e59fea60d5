"""Command line: ``keeper run``, ``keeper verify --epoch N``, ``keeper signer --port P ...``.

The click group is :data:`keeper_cli`; :func:`main` is the console entry point.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from keeper._click import common_group_options, setup_logging
from keeper.errors import ConfigError

if TYPE_CHECKING:  # the commands import the heavy modules only when they run
    from keeper.config import Config
    from keeper.feeds.base import MarketState

__all__ = ["keeper_cli", "main"]

_HELP = """Portfolio-margin keeper: attests every subaccount's margin once per epoch.

\b
Configuration: a TOML file (--config, see keeper.example.toml) plus PM_* environment
variables, which win over the file. The important ones:
  PM_RPC_URL            node URL (chain.rpc_url)
  PM_VAULT_ADDRESS      the vault (or chain.deployments_file / PM_DEPLOYMENTS_FILE)
  PM_DATA_DIR           sqlite store and epochs/ (keeper.data_dir)
  PM_INTERVAL_SECONDS   epoch period (keeper.interval_seconds, 1 s default)
  PM_SIGNER_MODE        local (keys here) or remote (PM_SIGNER_URLS, comma-separated)
  PM_FEED_KIND          sim (PM_FEED_SEED) or replay (PM_FEED_PATH)
  PM_API_PORT, PM_METRICS_PORT

\b
Keys never come from a file:
  PM_SIGNER_KEYS        comma-separated hex private keys of the signers (local mode)
  PM_KEYSTORE           comma-separated encrypted keystore JSON paths, with
  PM_KEYSTORE_PASSWORD  their password
  PM_SENDER_KEY         the key that pays for postEpoch (default: first signer key)
A `keys` entry in the TOML file is refused.
"""


@click.group(help=_HELP)
@common_group_options("TOML configuration file (optional; PM_* variables override it).")
@click.pass_context
def keeper_cli(
    ctx: click.Context, config_path: Path | None, log_format: str, log_level: str
) -> None:
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    setup_logging(log_format, log_level)


def _config(
    ctx: click.Context, config_path: Path | None = None, *, require_keys: bool = True
) -> Config:
    """The configuration from the subcommand's ``--config`` if given, else the group's:
    ``keeper run --config F`` and ``keeper --config F run`` mean the same."""
    from keeper.config import load_config

    try:
        return load_config(config_path or ctx.obj["config_path"], require_keys=require_keys)
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def _config_option(fn: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="TOML configuration file (same as the group's --config, which it overrides).",
    )(fn)


@keeper_cli.command(help="Run the daemon: epochs every interval, proof API, metrics.")
@click.option("--dry-run", is_flag=True, help="Build, store and sign every epoch; send nothing.")
@_config_option
@click.pass_context
def run(ctx: click.Context, dry_run: bool, config_path: Path | None) -> None:
    from keeper.daemon import EXIT_CHAIN_RESET, build_keeper
    from keeper.errors import ChainResetError

    config = _config(ctx, config_path)
    keeper = build_keeper(config, dry_run=dry_run)
    node_chain = int(keeper.w3.eth.chain_id)
    if node_chain != config.chain.chain_id:  # transactions signed for another chain are dropped
        keeper.close()
        raise click.ClickException(
            f"configuration: chain.chain_id is {config.chain.chain_id} but the node at "
            f"{config.chain.rpc_url} serves chain {node_chain}"
        )
    try:
        code = keeper.run()
    except ChainResetError as exc:
        click.echo(f"chain reset detected, refusing to post: {exc}", err=True)
        sys.exit(EXIT_CHAIN_RESET)
    if code == EXIT_CHAIN_RESET:
        click.echo("chain reset detected, refusing to post (see the log)", err=True)
    sys.exit(code)


@keeper_cli.command(help="Recompute epoch N's root from chain state and the stored market.")
@click.option("--epoch", "number", type=int, required=True, help="Epoch number.")
@_config_option
@click.pass_context
def verify(ctx: click.Context, number: int, config_path: Path | None) -> None:
    from web3 import Web3

    from keeper.chain import ChainAdapter
    from keeper.store import Store
    from keeper.verify import verify_epoch
    from risk_engine import load_params

    config = _config(ctx, config_path, require_keys=False)  # an auditor holds no key
    store = Store(config.keeper.db_path, epochs_dir=config.keeper.epochs_dir)
    try:
        chain = ChainAdapter(
            Web3(Web3.HTTPProvider(config.chain.rpc_url, request_kwargs={"timeout": 30})),
            config.chain.resolve_vault_address(),
            store=store,
            deployment_block=config.chain.start_block,
            confirmations=config.chain.confirmations,
        )
        result = verify_epoch(chain, store, number, load_params())
    finally:
        store.close()
    click.echo(result.render())
    sys.exit(0 if result.match else 1)


@keeper_cli.command(
    help="Run one signer service (its key from PM_SIGNER_KEYS / PM_KEYSTORE). Before signing "
    "it recomputes the epoch from its own node (--rpc-url) and the market snapshot sent with "
    "the header, and it answers only the keepers given with --allow-keeper. With "
    "--feed-config it reads the market itself and refuses a snapshot that deviates from its "
    "own feed beyond the [feed.check] tolerances."
)
@click.option("--port", type=int, required=True, help="Listen port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--rpc-url", required=True, help="This service's OWN node (not the keeper's).")
@click.option("--chain-id", type=int, required=True, help="Only sign for this chain id.")
@click.option("--vault", required=True, help="Only sign for this vault address.")
@click.option(
    "--allow-keeper",
    "allow_keeper",
    multiple=True,
    required=True,
    help="Keeper sender address whose signed requests are accepted (repeatable).",
)
@click.option("--start-block", type=int, default=0, show_default=True, help="Vault deployment.")
@click.option("--max-future", type=int, default=60, show_default=True, help="Seconds.")
@click.option("--max-past", type=int, default=600, show_default=True, help="Seconds.")
@click.option("--max-request-age", type=int, default=60, show_default=True, help="Seconds.")
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON file of signed (epoch, root), kept across restarts.",
)
@click.option(
    "--feed-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TOML file whose [feed] table is this service's OWN market feed (docs/operations.md).",
)
def signer(
    port: int,
    host: str,
    rpc_url: str,
    chain_id: int,
    vault: str,
    allow_keeper: tuple[str, ...],
    start_block: int,
    max_future: int,
    max_past: int,
    max_request_age: int,
    state: Path,
    feed_config: Path | None,
) -> None:
    import os
    import signal
    import threading
    import time

    from eth_utils.address import is_address, to_checksum_address
    from web3 import Web3

    from keeper.chain import ChainAdapter
    from keeper.config import (
        load_keystores,
        parse_feed_section,
        parse_private_key,
        read_toml,
        section_table,
    )
    from keeper.epoch_check import EpochRecomputer
    from keeper.feeds import build_feed
    from keeper.signers import SignerPolicy, SignerService
    from risk_engine import load_params

    for a in (vault, *allow_keeper):
        if not is_address(a):
            raise click.ClickException(f"not an address: {a}")
    reference: Callable[[int], MarketState] | None = None
    tolerances = None
    if feed_config is not None:  # before any connection: a bad file fails at once
        try:
            feed_cfg = parse_feed_section(section_table(read_toml(feed_config), "feed"), os.environ)
        except ConfigError as exc:
            raise click.ClickException(f"--feed-config {feed_config}: {exc}") from exc
        own_feed = build_feed(feed_cfg, start_time=int(time.time()))
        tolerances = feed_cfg.check

        def reference(ts: int) -> MarketState:
            # a header older than the last one checked (a resumed epoch) is compared with
            # the market now: a feed's clock never runs backwards
            last = own_feed.latest()
            return own_feed.tick(ts if last is None else max(ts, last.timestamp))

    keys: list[str] = []
    if os.environ.get("PM_SIGNER_KEYS"):
        keys = [
            parse_private_key(k, "PM_SIGNER_KEYS")
            for k in os.environ["PM_SIGNER_KEYS"].split(",")
            if k.strip()
        ]
    elif os.environ.get("PM_KEYSTORE"):
        keys = load_keystores(
            [p for p in os.environ["PM_KEYSTORE"].split(",") if p.strip()],
            os.environ.get("PM_KEYSTORE_PASSWORD"),
        )
    if len(keys) != 1:
        raise click.ClickException("a signer service holds exactly one key (PM_SIGNER_KEYS)")
    chain = ChainAdapter(
        Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30})),
        vault,
        deployment_block=start_block,
    )
    if chain.chain_id != chain_id:
        raise click.ClickException(f"--rpc-url serves chain {chain.chain_id}, not {chain_id}")
    service = SignerService(
        keys[0],
        SignerPolicy(
            chain_id=chain_id,
            vault=vault,
            max_future_seconds=max_future,
            max_past_seconds=max_past,
            allowed_keepers=tuple(to_checksum_address(a) for a in allow_keeper),
            max_request_age_seconds=max_request_age,
        ),
        checker=EpochRecomputer(chain, load_params(), reference=reference, tolerances=tolerances),
        host=host,
        port=port,
        state_path=state,
    )
    service.start()
    click.echo(f"signer {service.address} listening on {service.url}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    service.stop()


def main() -> None:
    keeper_cli(obj={})


if __name__ == "__main__":
    main()
