"""Configuration of the liquidator bot: what it decides with, and what its process needs.

:class:`LiquidatorSettings` are the bot's decision limits (USD floats, converted DOWN to
WAD); :class:`LiquidatorConfig` is everything the process needs, from
:func:`load_liquidator_config`. Configuration is the keeper's TOML file plus ``PM_*``
environment (same ``[chain]``, ``[fees]``, ``[api]``, ``[keeper]`` tables and variables, see
:mod:`keeper.config`), and a ``[liquidator]`` table:

=============================  ==================================  ===========================
``[liquidator]`` key           environment                         default
=============================  ==================================  ===========================
``interval_seconds``           ``PM_LIQUIDATOR_INTERVAL_SECONDS``  1.0
``source``                     ``PM_LIQUIDATOR_SOURCE``            ``api``, ``store``, ``watchlist``
``api_url``                    ``PM_LIQUIDATOR_API_URL``           ``http://<api.host>:<api.port>``
``data_dir``                   ``PM_LIQUIDATOR_DATA_DIR``          ``<keeper.data_dir>/liquidator``
``metrics_port``               ``PM_LIQUIDATOR_METRICS_PORT``      9109
``slippage_usd``                                                   10.0
``slippage_fraction``                                              0.01
``min_profit_usd``                                                 0.0
``backstop``                                                       false (true: no profit floor)
``min_headroom_usd``                                               0.0
``max_per_tick``                                                   5
``receipt_timeout_seconds``                                        30.0
``dry_run``                    ``PM_LIQUIDATOR_DRY_RUN``           false
=============================  ==================================  ===========================

The liquidator's key never comes from a file: ``PM_LIQUIDATOR_KEY`` (hex) or
``PM_LIQUIDATOR_KEYSTORE`` (an encrypted eth-account keystore) with
``PM_LIQUIDATOR_KEYSTORE_PASSWORD`` (or ``PM_KEYSTORE_PASSWORD``). ``source = "store"``
reads the keeper's sqlite store at ``<keeper.data_dir>/keeper.sqlite`` (same machine);
``api`` asks the keeper's proof API (one ``/proof`` per subaccount with positions);
``watchlist`` asks its ``GET /liquidatable`` once a tick, with the keeper's margin
(keeper/liquidator/sources.py:WatchListLeafSource says what that may miss). The bot's own
transactions are recorded in ``<data_dir>/liquidator.sqlite`` (so that a restart takes
back a liquidation in flight).

The keeper's ``load_config`` accepts the ``[liquidator]`` table and ignores it, so the keeper and
the bot can share one file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from keeper.config import (
    ChainConfig,
    FeesConfig,
    load_keystores,
    parse_api_section,
    parse_chain_section,
    parse_fees_section,
    parse_float,
    parse_int,
    parse_port,
    parse_private_key,
    parse_str,
    parse_url,
    pick_setting,
    read_toml,
    section_table,
)
from keeper.errors import ConfigError
from risk_engine.units import WAD

__all__ = [
    "LiquidatorConfig",
    "LiquidatorSettings",
    "load_liquidator_config",
    "usd_to_wad_down",
    "wad_to_usd",
]


def wad_to_usd(value: int) -> float:
    """WAD USD -> float USD (logs and metrics only, never for a decision)."""
    return value / WAD


def usd_to_wad_down(usd: float) -> int:
    """A USD float setting -> WAD USD, truncated toward zero (settings are >= 0: down)."""
    return int(usd * WAD)


# --------------------------------------------------------------------------- bot settings


@dataclass(frozen=True)
class LiquidatorSettings:
    """What the bot accepts. USD amounts are floats here and converted (down) to WAD.

    ``slippage_usd`` / ``slippage_fraction``: ``maxCashOut`` is the view's net cash plus the
    larger of the two (absolute USD, fraction of ``|netCashPaid|``); ``min_profit_usd``:
    skip a liquidation expected to earn less (``None``: take losses too, a backstop);
    ``min_headroom_usd``: IM surplus the bot deposits on top of the IM deficit into each
    subaccount it takes over; ``max_per_tick``: most
    liquidations sent per tick (most under-margined first); ``dry_run``: simulate only;
    ``max_rereads``: re-reads of the epoch and leaves per tick after the vault's root moved
    under an attempt (0: leave it to the next tick); ``reread_wait_seconds``: how long a
    re-read waits for a leaf source that does not serve the new epoch yet (about one keeper
    interval; the API publishes an epoch once it is mined).
    """

    slippage_usd: float = 10.0
    slippage_fraction: float = 0.01
    min_profit_usd: float | None = 0.0
    min_headroom_usd: float = 0.0
    max_per_tick: int = 5
    dry_run: bool = False
    max_rereads: int = 2
    reread_wait_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.slippage_usd < 0 or self.slippage_fraction < 0:
            raise ValueError("slippage must be >= 0")
        if self.min_headroom_usd < 0:
            raise ValueError("min_headroom_usd must be >= 0")
        if self.max_per_tick < 1:
            raise ValueError("max_per_tick must be >= 1")
        if self.max_rereads < 0:
            raise ValueError("max_rereads must be >= 0")
        if self.reread_wait_seconds < 0:
            raise ValueError("reread_wait_seconds must be >= 0")

    def max_cash_out(self, net_cash_paid: int) -> int:
        """``netCashPaid`` + slippage (WAD): the limit passed to ``liquidate``."""
        slip = max(
            usd_to_wad_down(self.slippage_usd),
            abs(net_cash_paid) * int(self.slippage_fraction * 1_000_000) // 1_000_000,
        )
        return net_cash_paid + slip


# --------------------------------------------------------------------------- process config


SourceKind = Literal["api", "store", "watchlist"]

_LIQ_KEYS = {
    "interval_seconds",
    "source",
    "api_url",
    "data_dir",
    "metrics_port",
    "slippage_usd",
    "slippage_fraction",
    "min_profit_usd",
    "backstop",
    "min_headroom_usd",
    "max_per_tick",
    "receipt_timeout_seconds",
    "dry_run",
}


@dataclass(frozen=True)
class LiquidatorConfig:
    """Everything the bot process needs (see the module docstring). The key is never in
    ``repr``."""

    chain: ChainConfig
    fees: FeesConfig
    key: str = field(repr=False)
    source: SourceKind
    api_url: str
    keeper_db: Path
    data_dir: Path
    interval_seconds: float
    metrics_port: int
    receipt_timeout_seconds: float
    slippage_usd: float = 10.0
    slippage_fraction: float = 0.01
    min_profit_usd: float | None = 0.0
    min_headroom_usd: float = 0.0
    max_per_tick: int = 5
    dry_run: bool = False


def _bool(raw: object, name: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("1", "true", "yes", "0", "false", "no"):
        return raw.strip().lower() in ("1", "true", "yes")
    raise ConfigError(name, f"expected true or false, got {raw!r}")


def _liquidator_key(env: Mapping[str, str]) -> str:
    if env.get("PM_LIQUIDATOR_KEY"):
        return parse_private_key(env["PM_LIQUIDATOR_KEY"], "PM_LIQUIDATOR_KEY")
    if env.get("PM_LIQUIDATOR_KEYSTORE"):
        password = env.get("PM_LIQUIDATOR_KEYSTORE_PASSWORD", env.get("PM_KEYSTORE_PASSWORD"))
        (key,) = load_keystores([env["PM_LIQUIDATOR_KEYSTORE"]], password)
        return key
    raise ConfigError(
        "PM_LIQUIDATOR_KEY", "the liquidator key is required (PM_LIQUIDATOR_KEY or a keystore)"
    )


def load_liquidator_config(
    path: Path | str | None = None, env: Mapping[str, str] | None = None
) -> LiquidatorConfig:
    """Read ``path`` (the keeper's TOML, optional) and ``env`` (default ``os.environ``).

    Raises :class:`~keeper.errors.ConfigError` naming the first bad field.
    """
    env = dict(os.environ if env is None else env)
    data = read_toml(path)
    chain_t = section_table(data, "chain")
    keeper_t = section_table(data, "keeper")
    fees_t = section_table(data, "fees")
    api_t = section_table(data, "api")
    liq = section_table(data, "liquidator")
    if "key" in liq or "keystore" in liq:
        raise ConfigError(
            "liquidator.key",
            "keys are never read from a file; use PM_LIQUIDATOR_KEY or PM_LIQUIDATOR_KEYSTORE",
        )
    for k in liq:
        if k not in _LIQ_KEYS:
            raise ConfigError(
                f"liquidator.{k}", f"unknown key (known: {', '.join(sorted(_LIQ_KEYS))})"
            )

    def pick(table: Mapping[str, Any], key: str, var: str) -> object:
        return pick_setting(table, key, var, env)

    chain = parse_chain_section(chain_t, env)
    if chain.vault_address is None and chain.deployments_file is None:
        raise ConfigError("chain.vault_address", "required: vault_address or deployments_file")
    fees = parse_fees_section(fees_t, env)
    keeper_dir_raw = pick(keeper_t, "data_dir", "PM_DATA_DIR")
    keeper_dir = (
        Path(parse_str(keeper_dir_raw, "keeper.data_dir")) if keeper_dir_raw else Path("var/keeper")
    )
    api = parse_api_section(api_t, env)
    source = pick(liq, "source", "PM_LIQUIDATOR_SOURCE") or "api"
    if source not in ("api", "store", "watchlist"):
        raise ConfigError(
            "liquidator.source", f"expected 'api', 'store' or 'watchlist', got {source!r}"
        )
    api_url = pick(liq, "api_url", "PM_LIQUIDATOR_API_URL") or f"http://{api.host}:{api.port}"
    data_dir = pick(liq, "data_dir", "PM_LIQUIDATOR_DATA_DIR")
    interval = pick(liq, "interval_seconds", "PM_LIQUIDATOR_INTERVAL_SECONDS")
    metrics_port = pick(liq, "metrics_port", "PM_LIQUIDATOR_METRICS_PORT")
    dry_run = pick(liq, "dry_run", "PM_LIQUIDATOR_DRY_RUN")
    backstop = _bool(liq.get("backstop", False), "liquidator.backstop")
    cfg = LiquidatorConfig(
        chain=chain,
        fees=fees,
        key=_liquidator_key(env),
        source="store" if source == "store" else "watchlist" if source == "watchlist" else "api",
        api_url=parse_url(api_url, "liquidator.api_url", ("http", "https")),
        keeper_db=keeper_dir / "keeper.sqlite",
        data_dir=Path(parse_str(data_dir, "liquidator.data_dir"))
        if data_dir
        else keeper_dir / "liquidator",
        interval_seconds=parse_float(
            1.0 if interval is None else interval,
            "liquidator.interval_seconds",
            minimum=0.0,
            strict_min=True,
        ),
        metrics_port=parse_port(
            9109 if metrics_port is None else metrics_port, "liquidator.metrics_port"
        ),
        receipt_timeout_seconds=parse_float(
            liq.get("receipt_timeout_seconds", 30.0),
            "liquidator.receipt_timeout_seconds",
            minimum=0.0,
            strict_min=True,
        ),
        slippage_usd=parse_float(
            liq.get("slippage_usd", 10.0), "liquidator.slippage_usd", minimum=0.0
        ),
        slippage_fraction=parse_float(
            liq.get("slippage_fraction", 0.01),
            "liquidator.slippage_fraction",
            minimum=0.0,
            maximum=1.0,
        ),
        min_profit_usd=None
        if backstop
        else parse_float(liq.get("min_profit_usd", 0.0), "liquidator.min_profit_usd"),
        min_headroom_usd=parse_float(
            liq.get("min_headroom_usd", 0.0), "liquidator.min_headroom_usd", minimum=0.0
        ),
        max_per_tick=parse_int(liq.get("max_per_tick", 5), "liquidator.max_per_tick", minimum=1),
        dry_run=False if dry_run is None else _bool(dry_run, "liquidator.dry_run"),
    )
    if cfg.source == "store" and not cfg.keeper_db.is_file():
        raise ConfigError(
            "liquidator.source", f"source 'store' but no keeper store at {cfg.keeper_db}"
        )
    return cfg
