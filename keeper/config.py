"""Typed keeper configuration: a TOML file plus environment overrides.

The file holds everything that may be committed (URLs, intervals, fee caps, ports). Keys
never come from a file: they come from ``PM_SIGNER_KEYS`` (comma-separated hex private
keys) or from encrypted eth-account keystores (``PM_KEYSTORE``, comma-separated paths,
decrypted with ``PM_KEYSTORE_PASSWORD``). A ``keys`` entry in the TOML file is an error,
so that a key pasted into a committed file is refused rather than used.

Environment overrides (each wins over the file):

=========================  ===================================================
``PM_RPC_URL``             ``chain.rpc_url``
``PM_CHAIN_ID``            ``chain.chain_id``
``PM_VAULT_ADDRESS``       ``chain.vault_address``
``PM_DEPLOYMENTS_FILE``    ``chain.deployments_file``
``PM_CONFIRMATIONS``       ``chain.confirmations``
``PM_START_BLOCK``         ``chain.start_block``
``PM_INTERVAL_SECONDS``    ``keeper.interval_seconds``
``PM_EPOCH_MAX_AGE``       ``keeper.epoch_max_age_seconds``
``PM_DATA_DIR``            ``keeper.data_dir``
``PM_SIGNER_MODE``         ``signers.mode`` (``local`` / ``remote``)
``PM_SIGNER_URLS``         ``signers.remote_urls`` (comma-separated)
``PM_SIGNER_KEYS``         signer private keys (comma-separated hex)
``PM_KEYSTORE``            keystore JSON paths (comma-separated)
``PM_KEYSTORE_PASSWORD``   password of those keystores
``PM_SENDER_KEY``          key that sends transactions (default: first signer key)
``PM_MAX_FEE_GWEI``        ``fees.max_fee_gwei``
``PM_API_HOST``            ``api.host``
``PM_API_PORT``            ``api.port``
``PM_FEED_KIND``           ``feed.kind`` (``sim`` / ``replay`` / ``composite``)
``PM_FEED_SEED``           ``feed.seed``
``PM_FEED_PATH``           ``feed.path``
``PM_METRICS_PORT``        ``metrics_port``
``PM_COMPUTE_BACKEND``     ``compute.backend`` (``local`` / ``dask``)
``PM_COMPUTE_SCHEDULER``   ``compute.scheduler`` (``tcp://host:8786``)
=========================  ===================================================

``load_config(path, env)`` returns a frozen :class:`Config` or raises
:class:`~keeper.errors.ConfigError` naming the first bad field.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from eth_account import Account
from eth_utils.address import is_hex_address, to_checksum_address

from keeper.epoch_build import DEFAULT_FUNDING_RULE
from keeper.epoch_check import MarketTolerances
from keeper.errors import ConfigError
from keeper.feeds.composite import CompositeSettings
from keeper.post_policy import PostPolicy
from keeper.store import Retention

__all__ = [
    "ApiConfig",
    "ChainConfig",
    "ComputeConfig",
    "Config",
    "FeedConfig",
    "FeesConfig",
    "KeeperConfig",
    "SignersConfig",
    "SourceConfig",
    "load_config",
    "load_keystores",
    "parse_api_section",
    "parse_chain_section",
    "parse_compute_section",
    "parse_feed_section",
    "parse_fees_section",
    "parse_float",
    "parse_int",
    "parse_port",
    "parse_private_key",
    "parse_str",
    "parse_url",
    "pick_setting",
    "read_toml",
    "section_table",
]

SignerMode = Literal["local", "remote"]
FeedKind = Literal["sim", "replay", "composite"]
SourceKind = Literal["deribit", "binance", "coinbase", "chainlink"]
_SOURCE_KINDS = ("deribit", "binance", "coinbase", "chainlink")
ComputeBackend = Literal["local", "dask"]

ANVIL_CHAIN_ID = 31337

# `liquidator` is read by keeper/liquidator/config.py from the same file; the keeper ignores it.
_SECTIONS = {
    "chain",
    "keeper",
    "signers",
    "fees",
    "api",
    "feed",
    "compute",
    "store",
    "post",
    "metrics_port",
    "liquidator",
}


@dataclass(frozen=True)
class ChainConfig:
    """Where the vault lives.

    ``vault_address`` (checksummed) wins; otherwise ``deployments_file`` is a JSON file
    written by the deploy script holding the address under ``"vault"`` or
    ``"MarginVault"`` (top level or inside ``"contracts"``).
    ``confirmations`` is the depth below the head at which the keeper reads state (0 on
    Anvil, where blocks are final); ``start_block`` is where event indexing starts when the
    deployments file does not say; ``state_check_epochs``: every this many epochs the
    account state kept from events is compared with ``accountStates`` (0 = never;
    docs/operations.md, "Account state from events").
    """

    rpc_url: str
    chain_id: int
    vault_address: str | None = None
    deployments_file: Path | None = None
    confirmations: int = 0
    start_block: int = 0
    state_check_epochs: int = 600

    def resolve_vault_address(self) -> str:
        """The vault address, from the config or the deployments file (checksummed)."""
        if self.vault_address is not None:
            return self.vault_address
        if self.deployments_file is None:
            raise ConfigError("chain.vault_address", "neither vault_address nor deployments_file")
        try:
            data = json.loads(self.deployments_file.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError("chain.deployments_file", f"cannot read: {exc}") from exc
        for scope in (data, data.get("contracts", {}) if isinstance(data, dict) else {}):
            if not isinstance(scope, dict):
                continue
            for name in ("vault", "MarginVault", "marginVault"):
                value = scope.get(name)
                if isinstance(value, dict):
                    value = value.get("address")
                if isinstance(value, str) and is_hex_address(value):
                    return to_checksum_address(value)
        raise ConfigError("chain.deployments_file", "no vault address ('vault' or 'MarginVault')")


@dataclass(frozen=True)
class KeeperConfig:
    """Epoch loop: job interval (seconds), the oldest epoch the keeper tolerates before it
    considers itself late (seconds, should be below the vault's ``maxAge``), and the data
    directory (sqlite store, per-epoch JSON files)."""

    interval_seconds: float = 1.0
    epoch_max_age_seconds: int = 300
    data_dir: Path = Path("var/keeper")
    # /health says degraded after this many refused epochs in a row: a feed that refuses
    # every tick would otherwise look healthy until the last epoch ages out
    max_refused_in_row: int = 3

    @property
    def db_path(self) -> Path:
        return self.data_dir / "keeper.sqlite"

    @property
    def epochs_dir(self) -> Path:
        return self.data_dir / "epochs"


@dataclass(frozen=True)
class SignersConfig:
    """Who signs epochs.

    ``local``: this process holds the quorum's keys (``keys``, hex ``0x`` + 64).
    ``remote``: separate signer processes at ``remote_urls`` sign and an aggregator here
    collects their signatures; ``keys`` may be empty. ``sender_key`` pays for and sends
    the transactions (defaults to the first signer key). Keys never appear in ``repr``.
    """

    mode: SignerMode = "local"
    keys: tuple[str, ...] = field(default=(), repr=False)
    remote_urls: tuple[str, ...] = ()
    sender_key: str | None = field(default=None, repr=False)

    @property
    def addresses(self) -> tuple[str, ...]:
        """Checksummed addresses of ``keys``, in the order given."""
        return tuple(Account.from_key(k).address for k in self.keys)


@dataclass(frozen=True)
class FeesConfig:
    """EIP-1559 fee policy. ``max_fee_gwei`` caps ``maxFeePerGas`` (the keeper refuses to
    pay more); ``priority_fee_gwei`` is the tip; a transaction pending longer than
    ``stuck_after_seconds`` is replaced with both fees raised by ``replacement_bump_pct``
    percent (>= 10, the EIP-1559 replacement rule of geth and Anvil)."""

    max_fee_gwei: float = 200.0
    priority_fee_gwei: float = 1.0
    replacement_bump_pct: float = 12.5
    stuck_after_seconds: float = 30.0
    receipt_timeout_seconds: float = 180.0

    @property
    def max_fee_wei(self) -> int:
        return int(self.max_fee_gwei * 10**9)

    @property
    def priority_fee_wei(self) -> int:
        return int(self.priority_fee_gwei * 10**9)


@dataclass(frozen=True)
class ApiConfig:
    """Proof API listen address (``port = 0`` picks a free port) and the origins a browser
    front-end may call it from (``cors_origins``: exact origins or ``"*"``; empty, the
    default, sends no CORS header so only same-origin pages such as the keeper's own
    dashboard can read the answers)."""

    host: str = "127.0.0.1"
    port: int = 9545
    cors_origins: tuple[str, ...] = ()
    #: ``GET /liquidatable`` also lists subaccounts whose MM surplus upper bound is below
    #: this many USD (not only below zero); a request's ``?margin_usd=`` overrides it
    liquidatable_margin_usd: float = 0.0


@dataclass(frozen=True)
class SourceConfig:
    """One provider of a composite feed (``[[feed.sources]]``).

    ``kind``: its API format (``deribit``, ``binance``, ``coinbase``, ``chainlink``);
    ``url``: its base URL (for ``chainlink``, a JSON-RPC node); ``symbols``: underlying
    symbol -> the provider's name for it (Deribit currency ``BTC``, Binance pair
    ``BTCUSDT``, Coinbase product ``BTC-USD``, Chainlink aggregator address);
    ``timeout_seconds`` per request; ``max_age_seconds``: this source's staleness limit
    when it differs from the composite's (an on-chain feed updating on a heartbeat).
    """

    name: str
    kind: SourceKind
    url: str
    symbols: Mapping[str, str]
    timeout_seconds: float = 5.0
    max_age_seconds: int | None = None


@dataclass(frozen=True)
class FeedConfig:
    """Market feed: ``sim`` (seeded simulator, ``seed``), ``replay`` (CSV directory in
    the ../shared/data layout at ``path``) or ``composite`` (live providers, ``sources``
    combined by ``composite``, keeper/feeds/composite.py). ``time_scale`` speeds up the
    simulator's market clock (simulated seconds per clock second). ``check``: how far a
    keeper's market may be from this feed's when ``keeper signer`` uses it as its own
    (keeper/epoch_check.py)."""

    kind: FeedKind = "sim"
    seed: int = 0
    path: Path | None = None
    time_scale: float = 1.0
    sources: tuple[SourceConfig, ...] = ()
    composite: CompositeSettings | None = None
    check: MarketTolerances = MarketTolerances()


@dataclass(frozen=True)
class ComputeConfig:
    """Where the epoch's risk engine runs (``keeper/compute.py``; docs/operations.md, "A
    compute cluster"): ``local`` (this process) or ``dask`` (the Dask scheduler at
    ``scheduler``, e.g. ``tcp://10.0.0.5:8786``)."""

    backend: ComputeBackend = "local"
    scheduler: str | None = None


@dataclass(frozen=True)
class StoreConfig:
    """Data directory retention and memory (docs/operations.md, "Data directory").

    ``keep_last``: the newest epochs kept (0: keep every epoch, nothing is deleted);
    ``keep_every``: also keep each epoch whose number is a multiple of this (0: none);
    ``cache_epochs``: epochs whose leaves and tree stay in memory for the proof API.
    """

    keep_last: int = 600
    keep_every: int = 3600
    cache_epochs: int = 4

    @property
    def retention(self) -> Retention:
        return Retention(self.keep_last or None, self.keep_every or None)


@dataclass(frozen=True)
class Config:
    """The whole keeper configuration. Build it with :func:`load_config`."""

    chain: ChainConfig
    keeper: KeeperConfig = KeeperConfig()
    signers: SignersConfig = SignersConfig()
    fees: FeesConfig = FeesConfig()
    api: ApiConfig = ApiConfig()
    feed: FeedConfig = FeedConfig()
    compute: ComputeConfig = ComputeConfig()
    store: StoreConfig = StoreConfig()
    post: PostPolicy = PostPolicy()
    metrics_port: int = 9108

    @property
    def sender_key(self) -> str:
        """Private key that sends transactions: ``PM_SENDER_KEY`` or the first signer key."""
        if self.signers.sender_key is not None:
            return self.signers.sender_key
        if not self.signers.keys:
            raise ConfigError("signers.sender_key", "no sender key (set PM_SENDER_KEY)")
        return self.signers.keys[0]


# --------------------------------------------------------------------------- parsing


def parse_private_key(value: str, field_name: str) -> str:
    """Normalise a hex private key to ``0x`` + 64 lowercase hex digits, or raise."""
    text = value.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        # Never echo the value: it may be a real key with a typo.
        raise ConfigError(field_name, "not a 32-byte hex private key")
    if int(text, 16) == 0:
        raise ConfigError(field_name, "private key is zero")
    return "0x" + text


def parse_int(
    raw: object, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    if isinstance(raw, bool):
        raise ConfigError(name, f"expected an integer, got {raw!r}")
    if isinstance(raw, str):
        try:
            raw = int(raw.strip(), 0)
        except ValueError:
            raise ConfigError(name, f"expected an integer, got {raw!r}") from None
    if not isinstance(raw, int):
        raise ConfigError(name, f"expected an integer, got {raw!r}")
    if minimum is not None and raw < minimum:
        raise ConfigError(name, f"must be >= {minimum}, got {raw}")
    if maximum is not None and raw > maximum:
        raise ConfigError(name, f"must be <= {maximum}, got {raw}")
    return raw


def parse_float(
    raw: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_min: bool = False,
) -> float:
    if isinstance(raw, bool):
        raise ConfigError(name, f"expected a number, got {raw!r}")
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            raise ConfigError(name, f"expected a number, got {raw!r}") from None
    if not isinstance(raw, int | float):
        raise ConfigError(name, f"expected a number, got {raw!r}")
    value = float(raw)
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(name, "must be finite")
    if minimum is not None and (value <= minimum if strict_min else value < minimum):
        raise ConfigError(name, f"must be {'>' if strict_min else '>='} {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(name, f"must be <= {maximum}, got {value}")
    return value


def parse_str(raw: object, name: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(name, f"expected a non-empty string, got {raw!r}")
    return raw.strip()


def parse_url(
    raw: object, name: str, schemes: tuple[str, ...] = ("http", "https", "ws", "wss")
) -> str:
    text = parse_str(raw, name)
    parsed = urlparse(text)
    if parsed.scheme not in schemes or not parsed.netloc:
        raise ConfigError(name, f"expected a {'/'.join(schemes)} URL, got {text!r}")
    return text


def _address(raw: object, name: str) -> str:
    text = parse_str(raw, name)
    if not is_hex_address(text):
        raise ConfigError(name, f"not an address: {text!r}")
    return to_checksum_address(text)


def parse_port(raw: object, name: str) -> int:
    return parse_int(raw, name, minimum=0, maximum=65535)


def _csv(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def section_table(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(name, "expected a table")
    return dict(value)


def _reject_unknown(table: Mapping[str, Any], section: str, known: set[str]) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(
                f"{section}.{key}", f"unknown key (known: {', '.join(sorted(known))})"
            )


def load_keystores(paths: list[str], password: str | None) -> list[str]:
    if password is None:
        raise ConfigError("PM_KEYSTORE_PASSWORD", "PM_KEYSTORE is set but its password is not")
    keys = []
    for path in paths:
        try:
            blob = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError("PM_KEYSTORE", f"cannot read keystore {path}: {exc}") from exc
        try:
            raw = Account.decrypt(blob, password)
        except ValueError as exc:
            # eth-account raises ValueError("MAC mismatch") on a wrong password.
            raise ConfigError("PM_KEYSTORE", f"cannot decrypt {path}: {exc}") from exc
        keys.append("0x" + bytes(raw).hex())
    return keys


def pick_setting(table: Mapping[str, Any], key: str, var: str, env: Mapping[str, str]) -> object:
    """The value of ``var`` in ``env`` if set, else ``table[key]`` (None when neither)."""
    return env[var] if var in env else table.get(key)


def parse_chain_section(table: Mapping[str, Any], env: Mapping[str, str]) -> ChainConfig:
    """The ``[chain]`` table with its ``PM_*`` overrides (shared by the keeper and the
    liquidator). Does not check that a vault is named; the callers do."""
    rpc = pick_setting(table, "rpc_url", "PM_RPC_URL", env)
    if rpc is None:
        raise ConfigError("chain.rpc_url", "required (file or PM_RPC_URL)")
    chain_id_raw = pick_setting(table, "chain_id", "PM_CHAIN_ID", env)
    vault_raw = pick_setting(table, "vault_address", "PM_VAULT_ADDRESS", env)
    dep_raw = pick_setting(table, "deployments_file", "PM_DEPLOYMENTS_FILE", env)
    return ChainConfig(
        rpc_url=parse_url(rpc, "chain.rpc_url"),
        chain_id=parse_int(
            ANVIL_CHAIN_ID if chain_id_raw is None else chain_id_raw, "chain.chain_id", minimum=1
        ),
        vault_address=None
        if vault_raw in (None, "")
        else _address(vault_raw, "chain.vault_address"),
        deployments_file=None
        if dep_raw in (None, "")
        else Path(parse_str(dep_raw, "chain.deployments_file")),
        confirmations=parse_int(
            pick_setting(table, "confirmations", "PM_CONFIRMATIONS", env) or 0,
            "chain.confirmations",
            minimum=0,
            maximum=1000,
        ),
        start_block=parse_int(
            pick_setting(table, "start_block", "PM_START_BLOCK", env) or 0,
            "chain.start_block",
            minimum=0,
        ),
        state_check_epochs=parse_int(
            table.get("state_check_epochs", 600), "chain.state_check_epochs", minimum=0
        ),
    )


def parse_fees_section(table: Mapping[str, Any], env: Mapping[str, str]) -> FeesConfig:
    """The ``[fees]`` table (``PM_MAX_FEE_GWEI`` overrides ``max_fee_gwei``), shared by the
    keeper and the liquidator."""
    max_fee = pick_setting(table, "max_fee_gwei", "PM_MAX_FEE_GWEI", env)
    fees = FeesConfig(
        max_fee_gwei=parse_float(
            200.0 if max_fee is None else max_fee, "fees.max_fee_gwei", minimum=0.0, strict_min=True
        ),
        priority_fee_gwei=parse_float(
            table.get("priority_fee_gwei", 1.0), "fees.priority_fee_gwei", minimum=0.0
        ),
        # Below 10 % geth and Anvil reject the replacement ("replacement transaction underpriced").
        replacement_bump_pct=parse_float(
            table.get("replacement_bump_pct", 12.5),
            "fees.replacement_bump_pct",
            minimum=10.0,
            maximum=1000.0,
        ),
        stuck_after_seconds=parse_float(
            table.get("stuck_after_seconds", 30.0),
            "fees.stuck_after_seconds",
            minimum=0.0,
            strict_min=True,
        ),
        receipt_timeout_seconds=parse_float(
            table.get("receipt_timeout_seconds", 180.0),
            "fees.receipt_timeout_seconds",
            minimum=0.0,
            strict_min=True,
        ),
    )
    if fees.priority_fee_gwei > fees.max_fee_gwei:
        raise ConfigError("fees.priority_fee_gwei", "above fees.max_fee_gwei")
    return fees


def parse_api_section(table: Mapping[str, Any], env: Mapping[str, str]) -> ApiConfig:
    """The ``[api]`` table with ``PM_API_HOST`` / ``PM_API_PORT``, shared by the keeper and
    the liquidator (which derives its default ``api_url`` from it)."""
    port = pick_setting(table, "port", "PM_API_PORT", env)
    return ApiConfig(
        host=parse_str(
            pick_setting(table, "host", "PM_API_HOST", env) or ApiConfig.host, "api.host"
        ),
        port=parse_port(ApiConfig.port if port is None else port, "api.port"),
        cors_origins=_cors_origins(table.get("cors_origins", [])),
        liquidatable_margin_usd=parse_float(
            table.get("liquidatable_margin_usd", ApiConfig.liquidatable_margin_usd),
            "api.liquidatable_margin_usd",
            minimum=0.0,
        ),
    )


def _cors_origins(raw: object) -> tuple[str, ...]:
    """``api.cors_origins``: ``"*"`` or ``scheme://host[:port]`` origins, no path."""
    if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
        raise ConfigError("api.cors_origins", f"expected a list of origins, got {raw!r}")
    for o in raw:
        if o != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?", o):
            raise ConfigError("api.cors_origins", f"not an origin (scheme://host[:port]): {o!r}")
    return tuple(raw)


_FEED_KEYS = {"kind", "seed", "path", "time_scale", "sources", "composite", "check"}
_COMPOSITE_KEYS = {
    "symbols",
    "tokens",
    "rate",
    "max_age_seconds",
    "max_future_seconds",
    "max_deviation",
    "freeze_seconds",
    "confidence_floor",
    "bar_seconds",
    "min_bars",
    "max_bars",
}


def _parse_source(raw: object, i: int) -> SourceConfig:
    where = f"feed.sources[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(where, "expected a table")
    _reject_unknown(
        raw, where, {"name", "kind", "url", "symbols", "timeout_seconds", "max_age_seconds"}
    )
    kind = raw.get("kind")
    if kind not in _SOURCE_KINDS:
        raise ConfigError(f"{where}.kind", f"expected one of {', '.join(_SOURCE_KINDS)}")
    symbols = raw.get("symbols")
    if not isinstance(symbols, dict) or not symbols:
        raise ConfigError(f"{where}.symbols", "expected a table: symbol -> provider's name")
    mapped = {str(k): parse_str(v, f"{where}.symbols.{k}") for k, v in symbols.items()}
    if kind == "chainlink":
        mapped = {k: _address(v, f"{where}.symbols.{k}") for k, v in mapped.items()}
    return SourceConfig(
        name=parse_str(raw.get("name", kind), f"{where}.name"),
        kind=kind,
        url=parse_url(raw.get("url"), f"{where}.url", ("http", "https")),
        symbols=mapped,
        timeout_seconds=parse_float(
            raw.get("timeout_seconds", 5.0),
            f"{where}.timeout_seconds",
            minimum=0.0,
            maximum=60.0,
            strict_min=True,
        ),
        max_age_seconds=None
        if raw.get("max_age_seconds") is None
        else parse_int(raw["max_age_seconds"], f"{where}.max_age_seconds", minimum=1),
    )


def _parse_composite(table: Mapping[str, Any]) -> CompositeSettings:
    w = "feed.composite."
    _reject_unknown(table, "feed.composite", _COMPOSITE_KEYS)
    symbols = table.get("symbols")
    if not isinstance(symbols, list) or not symbols:
        raise ConfigError(w + "symbols", "expected a non-empty list of underlying symbols")
    tokens = table.get("tokens", {})
    if not isinstance(tokens, dict):
        raise ConfigError(w + "tokens", 'expected a table: token -> symbol ("" for $1)')
    try:
        return CompositeSettings(
            symbols=tuple(parse_str(x, w + "symbols") for x in symbols),
            tokens={str(t): (str(u) or None) for t, u in tokens.items()},
            rate=parse_float(table.get("rate", 0.0), w + "rate", minimum=-0.5, maximum=1.0),
            max_age_seconds=parse_int(
                table.get("max_age_seconds", 60), w + "max_age_seconds", minimum=1
            ),
            max_future_seconds=parse_int(
                table.get("max_future_seconds", 10), w + "max_future_seconds", minimum=0
            ),
            max_deviation=parse_float(
                table.get("max_deviation", 0.02),
                w + "max_deviation",
                minimum=0.0,
                maximum=0.5,
                strict_min=True,
            ),
            freeze_seconds=parse_int(
                table.get("freeze_seconds", 300), w + "freeze_seconds", minimum=1
            ),
            confidence_floor=parse_float(
                table.get("confidence_floor", 0.25),
                w + "confidence_floor",
                minimum=0.0,
                maximum=1.0,
            ),
            bar_seconds=parse_int(table.get("bar_seconds", 86_400), w + "bar_seconds", minimum=60),
            min_bars=parse_int(table.get("min_bars", 30), w + "min_bars", minimum=2),
            max_bars=parse_int(table.get("max_bars", 365), w + "max_bars", minimum=2),
        )
    except ValueError as exc:
        raise ConfigError("feed.composite", str(exc)) from exc


def parse_feed_section(table: Mapping[str, Any], env: Mapping[str, str]) -> FeedConfig:
    """The ``[feed]`` table (``PM_FEED_*`` overrides), shared by the keeper and ``keeper
    signer --feed-config`` (a signer's own feed)."""
    feed_t = dict(table)
    _reject_unknown(feed_t, "feed", _FEED_KEYS)
    kind = pick_setting(feed_t, "kind", "PM_FEED_KIND", env) or "sim"
    if kind not in ("sim", "replay", "composite"):
        raise ConfigError("feed.kind", f"expected 'sim', 'replay' or 'composite', got {kind!r}")
    seed = pick_setting(feed_t, "seed", "PM_FEED_SEED", env)
    feed_path = pick_setting(feed_t, "path", "PM_FEED_PATH", env)
    check_t = section_table(feed_t, "check")
    _reject_unknown(
        check_t, "feed.check", {"max_price_deviation", "max_vol_deviation", "max_return_deviation"}
    )
    check = MarketTolerances(
        price=parse_float(
            check_t.get("max_price_deviation", 0.02),
            "feed.check.max_price_deviation",
            minimum=0.0,
            maximum=0.5,
        ),
        vol=parse_float(
            check_t.get("max_vol_deviation", 0.05),
            "feed.check.max_vol_deviation",
            minimum=0.0,
            maximum=1.0,
        ),
        returns=parse_float(
            check_t.get("max_return_deviation", 0.01),
            "feed.check.max_return_deviation",
            minimum=0.0,
            maximum=1.0,
        ),
    )
    raw_sources = feed_t.get("sources", [])
    if not isinstance(raw_sources, list):
        raise ConfigError("feed.sources", "expected an array of tables ([[feed.sources]])")
    sources = tuple(_parse_source(raw, i) for i, raw in enumerate(raw_sources))
    if len({s.name for s in sources}) != len(sources):
        raise ConfigError("feed.sources", "two sources share a name")
    composite = None
    if kind == "composite":
        if not sources:
            raise ConfigError("feed.sources", "feed kind 'composite' needs [[feed.sources]]")
        composite = _parse_composite(section_table(feed_t, "composite"))
        for s in sources:
            extra = set(s.symbols) - set(composite.symbols)
            if extra:
                raise ConfigError(
                    f"feed.sources.{s.name}.symbols", f"{sorted(extra)} not in composite.symbols"
                )
    feed = FeedConfig(
        kind="sim" if kind == "sim" else "replay" if kind == "replay" else "composite",
        seed=parse_int(0 if seed is None else seed, "feed.seed", minimum=0),
        path=None if feed_path in (None, "") else Path(parse_str(feed_path, "feed.path")),
        time_scale=parse_float(
            feed_t.get("time_scale", 1.0), "feed.time_scale", minimum=0.0, strict_min=True
        ),
        sources=sources,
        composite=composite,
        check=check,
    )
    if feed.kind == "replay":
        if feed.path is None:
            raise ConfigError("feed.path", "feed kind 'replay' needs a data directory")
        if not feed.path.is_dir():
            raise ConfigError("feed.path", f"not a directory: {feed.path}")
    return feed


def parse_post_section(table: Mapping[str, Any]) -> PostPolicy:
    """The ``[post]`` table: when a built epoch is posted (keeper/post_policy.py)."""
    _reject_unknown(
        table,
        "post",
        {
            "mode",
            "tolerance_rel",
            "tolerance_usd",
            "heartbeat_fraction",
            "funding_interval_seconds",
        },
    )
    mode = parse_str(table.get("mode", "always"), "post.mode")
    if mode not in ("always", "on_change"):
        raise ConfigError("post.mode", f"expected 'always' or 'on_change', got {mode!r}")
    # the funding rule charges at most this many seconds per epoch (keeper/epoch_build.py)
    max_funding = DEFAULT_FUNDING_RULE.max_elapsed_seconds
    return PostPolicy(
        mode="always" if mode == "always" else "on_change",
        tolerance_rel=parse_float(
            table.get("tolerance_rel", 0.001), "post.tolerance_rel", minimum=0.0
        ),
        tolerance_usd=parse_float(
            table.get("tolerance_usd", 1.0), "post.tolerance_usd", minimum=0.0
        ),
        heartbeat_fraction=parse_float(
            table.get("heartbeat_fraction", 0.5),
            "post.heartbeat_fraction",
            minimum=0.0,
            strict_min=True,
            maximum=0.9,
        ),
        funding_interval_seconds=parse_int(
            table.get("funding_interval_seconds", 900),
            "post.funding_interval_seconds",
            minimum=1,
            maximum=max_funding,
        ),
    )


def parse_compute_section(table: Mapping[str, Any], env: Mapping[str, str]) -> ComputeConfig:
    """The ``[compute]`` table with ``PM_COMPUTE_BACKEND`` / ``PM_COMPUTE_SCHEDULER``."""
    _reject_unknown(table, "compute", {"backend", "scheduler"})
    backend = pick_setting(table, "backend", "PM_COMPUTE_BACKEND", env) or "local"
    if backend not in ("local", "dask"):
        raise ConfigError("compute.backend", f"expected 'local' or 'dask', got {backend!r}")
    raw = pick_setting(table, "scheduler", "PM_COMPUTE_SCHEDULER", env)
    scheduler = None if raw in (None, "") else parse_url(raw, "compute.scheduler", ("tcp", "tls"))
    if backend == "dask" and scheduler is None:
        # a keeper that silently computed locally would miss its deadline at cluster scale
        raise ConfigError("compute.scheduler", "backend 'dask' needs the scheduler's address")
    return ComputeConfig(backend="local" if backend == "local" else "dask", scheduler=scheduler)


def parse_store_section(table: Mapping[str, Any]) -> StoreConfig:
    """The ``[store]`` table."""
    _reject_unknown(table, "store", {"keep_last", "keep_every", "cache_epochs"})
    d = StoreConfig()
    return StoreConfig(
        keep_last=parse_int(table.get("keep_last", d.keep_last), "store.keep_last", minimum=0),
        keep_every=parse_int(table.get("keep_every", d.keep_every), "store.keep_every", minimum=0),
        cache_epochs=parse_int(
            table.get("cache_epochs", d.cache_epochs), "store.cache_epochs", minimum=0
        ),
    )


def read_toml(path: Path | str | None) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict (empty when ``path`` is None). Raises
    :class:`~keeper.errors.ConfigError` (field ``config``) when it cannot be read or parsed."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from exc


def resolve_data_dir(raw: object, config_path: Path | str | None, *, from_env: bool) -> Path:
    """``keeper.data_dir``: a relative path in a TOML file is relative to that file's
    directory (so ``pm margin --config F`` finds the keeper's epochs from any working
    directory); from ``PM_DATA_DIR`` or the default it is relative to the working directory."""
    if raw is None:
        return KeeperConfig.data_dir
    d = Path(parse_str(raw, "keeper.data_dir"))
    if not from_env and config_path is not None and not d.is_absolute():
        return Path(config_path).resolve().parent / d
    return d


def keeper_data_dir(config_path: Path | str, env: Mapping[str, str]) -> Path:
    """The data directory a keeper run with ``config_path`` and ``env`` uses (no other
    section is read: a trader's ``pm margin`` needs no vault or key settings)."""
    table = section_table(read_toml(config_path), "keeper")
    return resolve_data_dir(
        pick_setting(table, "data_dir", "PM_DATA_DIR", env),
        config_path,
        from_env="PM_DATA_DIR" in env,
    )


def load_config(
    path: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    require_keys: bool = True,
) -> Config:
    """``require_keys=False``: a local-mode configuration without signer keys is accepted
        (``keeper verify``: a third party audits an epoch without holding any key).

    Read ``path`` (TOML; optional) and apply the ``PM_*`` variables of ``env``.

        ``env`` defaults to ``os.environ``; tests pass a dict. Raises
        :class:`~keeper.errors.ConfigError` naming the first invalid field.
    """
    env = dict(os.environ if env is None else env)
    data = read_toml(path)
    _reject_unknown(data, "config", _SECTIONS)

    chain_t = section_table(data, "chain")
    keeper_t = section_table(data, "keeper")
    signers_t = section_table(data, "signers")
    fees_t = section_table(data, "fees")
    api_t = section_table(data, "api")
    feed_t = section_table(data, "feed")

    if "keys" in signers_t or "sender_key" in signers_t:
        raise ConfigError(
            "signers.keys",
            "private keys are never read from a file; use PM_SIGNER_KEYS or PM_KEYSTORE",
        )
    _reject_unknown(
        chain_t,
        "chain",
        {
            "rpc_url",
            "chain_id",
            "vault_address",
            "deployments_file",
            "confirmations",
            "start_block",
            "state_check_epochs",
        },
    )
    _reject_unknown(
        keeper_t,
        "keeper",
        {"interval_seconds", "epoch_max_age_seconds", "data_dir", "max_refused_in_row"},
    )
    _reject_unknown(signers_t, "signers", {"mode", "remote_urls"})
    _reject_unknown(
        fees_t,
        "fees",
        {
            "max_fee_gwei",
            "priority_fee_gwei",
            "replacement_bump_pct",
            "stuck_after_seconds",
            "receipt_timeout_seconds",
        },
    )
    _reject_unknown(api_t, "api", {"host", "port", "cors_origins", "liquidatable_margin_usd"})

    def pick(table: dict[str, Any], key: str, var: str) -> object:
        return pick_setting(table, key, var, env)

    chain = parse_chain_section(chain_t, env)

    # keeper
    interval = pick(keeper_t, "interval_seconds", "PM_INTERVAL_SECONDS")
    max_age = pick(keeper_t, "epoch_max_age_seconds", "PM_EPOCH_MAX_AGE")
    data_dir = pick(keeper_t, "data_dir", "PM_DATA_DIR")
    keeper = KeeperConfig(
        interval_seconds=parse_float(
            1.0 if interval is None else interval,
            "keeper.interval_seconds",
            minimum=0.0,
            maximum=86400.0,
            strict_min=True,
        ),
        epoch_max_age_seconds=parse_int(
            300 if max_age is None else max_age, "keeper.epoch_max_age_seconds", minimum=1
        ),
        data_dir=resolve_data_dir(data_dir, path, from_env="PM_DATA_DIR" in env),
        max_refused_in_row=parse_int(
            keeper_t.get("max_refused_in_row", KeeperConfig.max_refused_in_row),
            "keeper.max_refused_in_row",
            minimum=1,
        ),
    )

    # signers
    mode = pick(signers_t, "mode", "PM_SIGNER_MODE") or "local"
    if mode not in ("local", "remote"):
        raise ConfigError("signers.mode", f"expected 'local' or 'remote', got {mode!r}")
    urls_raw = env.get("PM_SIGNER_URLS")
    urls_list: list[Any] = (
        _csv(urls_raw) if urls_raw is not None else list(signers_t.get("remote_urls", []))
    )
    urls = tuple(
        parse_url(u, f"signers.remote_urls[{i}]", ("http", "https"))
        for i, u in enumerate(urls_list)
    )
    keys: list[str] = []
    if env.get("PM_SIGNER_KEYS"):
        keys += [
            parse_private_key(k, f"PM_SIGNER_KEYS[{i}]")
            for i, k in enumerate(_csv(env["PM_SIGNER_KEYS"]))
        ]
    if env.get("PM_KEYSTORE"):
        keys += load_keystores(_csv(env["PM_KEYSTORE"]), env.get("PM_KEYSTORE_PASSWORD"))
    addresses = [Account.from_key(k).address for k in keys]
    if len(set(addresses)) != len(addresses):
        raise ConfigError("signers.keys", "the same signer key is given twice")
    if mode == "local" and not keys and require_keys:
        raise ConfigError("signers.keys", "mode 'local' needs keys (PM_SIGNER_KEYS or PM_KEYSTORE)")
    if mode == "remote" and not urls:
        raise ConfigError("signers.remote_urls", "mode 'remote' needs at least one signer URL")
    sender = env.get("PM_SENDER_KEY")
    signers = SignersConfig(
        mode="local" if mode == "local" else "remote",
        keys=tuple(keys),
        remote_urls=urls,
        sender_key=parse_private_key(sender, "PM_SENDER_KEY") if sender else None,
    )

    fees = parse_fees_section(fees_t, env)

    # api, feed, metrics
    api = parse_api_section(api_t, env)
    feed = parse_feed_section(feed_t, env)
    compute = parse_compute_section(section_table(data, "compute"), env)
    store = parse_store_section(section_table(data, "store"))
    post = parse_post_section(section_table(data, "post"))
    metrics_raw = env.get("PM_METRICS_PORT", data.get("metrics_port", 9108))
    metrics_port = parse_port(metrics_raw, "metrics_port")
    if chain.vault_address is None and chain.deployments_file is None:
        raise ConfigError(
            "chain.vault_address",
            "required: vault_address or deployments_file (or PM_VAULT_ADDRESS)",
        )
    return Config(
        chain=chain,
        keeper=keeper,
        signers=signers,
        fees=fees,
        api=api,
        feed=feed,
        compute=compute,
        store=store,
        post=post,
        metrics_port=metrics_port,
    )
