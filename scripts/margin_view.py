"""One subaccount's margin, from three sources, each number labelled with where it comes from.

1. **Attested** (the keeper API, ``GET /proof/<id>``): the ACCOUNT leaf of the epoch the
   vault holds: equity, IM, MM at that epoch's ``snapshotBlock`` (WAD; equity rounded
   down, requirements up). This is what the vault trusts.
2. **Bounds now** (the vault's views ``imSurplusLo`` / ``mmSurplusHi`` with that leaf): the
   IM surplus lower bound and the MM surplus upper bound after everything the account did
   since the snapshot (docs/protocol.md §5). A withdrawal or trade needs the first >= 0; a
   liquidation needs the second < 0. For an account without positions the vault values
   the IM bound on chain (haircut collateral + cash) and needs no leaf.
3. **Engine now** (``risk_engine.explain``): the account's CURRENT chain positions,
   collateral and cash, in the epoch's market snapshot (the MarketState JSON the keeper
   stored with the epoch: ``--market FILE``, or the keeper's store ``<keeper data
   dir>/keeper.sqlite``, or an older keeper's ``<data dir>/epochs/<n>.json``). It
   gives the worst scenario, the IM breakdown and the risk array (P&L per price x vol
   scenario). Pending perp funding is not counted here (the leaf counts it), so the engine
   equity can differ from the attested one by the funding accrued since the last update.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keeper.account_view import (
    AccountGreeks,
    LiquidationDistance,
    account_greeks,
    liquidation_distances,
    max_withdrawable_cash6,
)
from keeper.attestation import MarginProof
from keeper.chain import AccountState, Position
from keeper.chain import InstrumentInfo as ChainInstrument
from keeper.chain import TokenInfo as ChainToken
from keeper.config import keeper_data_dir
from keeper.engine_input import engine_input
from keeper.errors import ConfigError, FeedError, StoreError
from keeper.feeds.base import MarketState
from keeper.store import Store
from risk_engine import (
    AccountReport,
    RiskEngineError,
    build_risk_arrays,
    explain,
    load_params,
)
from risk_engine.units import WAD
from scripts.client import (
    KeeperApi,
    LeafWithProof,
    Session,
    TokenInfo,
    VaultAccountState,
    current_root,
)
from scripts.errors import CliError
from scripts.protocol_deploy import instrument_name
from scripts.toolchain.paths import REPO_ROOT

__all__ = [
    "HistoryPoint",
    "MarginView",
    "PositionLine",
    "RiskGrid",
    "margin_history",
    "margin_view",
]


@dataclass(frozen=True)
class PositionLine:
    """One holding: an instrument position (size in units) or a collateral balance (whole
    tokens), with the mark from the attested INSTRUMENT leaf (USD, ``None`` if unknown)."""

    name: str
    kind: str  # "perp", "call", "put", "collateral"
    size: float
    mark: float | None

    @property
    def value(self) -> float | None:
        return None if self.mark is None else self.size * self.mark


@dataclass(frozen=True)
class RiskGrid:
    """The risk array as a price x vol grid: ``pnl[v, p]`` USD (scenario covers applied,
    all underlyings together) for vol state ``vol_states[v]`` (-1 down, 0, +1 up) and price
    move ``fractions[p]`` (multiples of each underlying's scan range ``ranges``)."""

    fractions: tuple[float, ...]
    vol_states: tuple[int, ...]
    pnl: np.ndarray
    extreme: tuple[bool, ...]
    ranges: dict[str, float]


@dataclass(frozen=True)
class MarginView:
    account: int  # subaccount id
    owner: str
    epoch: int
    snapshot_block: int
    epoch_timestamp: int
    safe_mode: bool
    cash: float  # USD, chain now
    leaf: dict[str, int] | None  # attested equity/im/mm (WAD) or None without a leaf
    im_surplus_lo: int | None  # WAD, the vault's view now
    mm_surplus_hi: int | None
    bounds_note: str
    positions: tuple[PositionLine, ...]
    report: AccountReport | None
    grid: RiskGrid | None
    engine_note: str
    greeks: AccountGreeks | None = None
    liquidation: tuple[LiquidationDistance, ...] = ()

    @property
    def max_withdrawable_cash6(self) -> int | None:
        """Settlement-token units a ``withdraw-cash`` passes with now (the vault's IM
        surplus bound), ``None`` when the bound is unavailable."""
        if self.im_surplus_lo is None:
            return None
        return max_withdrawable_cash6(self.im_surplus_lo)


def _leaf_numbers(leaf: LeafWithProof | None) -> dict[str, int] | None:
    if leaf is None:
        return None
    f = leaf.fields
    return {k: int(f[k]) for k in ("equity", "im", "mm", "stateNonce", "cumLo", "cumHi")}


def _stored_market(db: Path, epoch: int) -> tuple[MarketState, str] | None:
    """The market snapshot of ``epoch`` in the keeper's store, if it holds one."""
    if not db.is_file():
        return None
    try:
        with Store(db) as store:
            text = store.get_market_snapshot(epoch)
    except StoreError:
        return None
    if text is None:
        return None
    try:
        return MarketState.from_json(text), f"market of epoch {epoch} from {db}"
    except FeedError as exc:
        raise CliError(f"market snapshot of epoch {epoch} in {db} is invalid: {exc}") from None


def _load_market(
    epoch: int, market_file: Path | None, keeper_data: Path | None
) -> tuple[MarketState | None, str]:
    if market_file is not None:
        path = market_file
    else:
        data_dir = keeper_data or _default_data_dir()
        stored = _stored_market(data_dir / "keeper.sqlite", epoch)
        if stored is not None:
            return stored
        # a data directory of a keeper before store schema v4 kept it in the epoch file
        path = data_dir / "epochs" / f"{epoch}.json"
        if not path.is_file():
            return None, (
                f"no market snapshot for epoch {epoch} (looked for {path}; pass --market FILE "
                "or --keeper-data DIR)"
            )
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read market snapshot {path}: {exc}") from None
    if isinstance(doc, dict) and "market" in doc:
        if doc.get("epoch") not in (None, epoch, str(epoch)):
            return None, f"{path} is epoch {doc.get('epoch')}, the vault holds epoch {epoch}"
        doc = doc["market"]
    if doc is None:
        return None, f"{path} holds no market snapshot"
    try:
        return MarketState.from_json(json.dumps(doc)), f"market of epoch {epoch} from {path}"
    except FeedError as exc:
        raise CliError(f"market snapshot {path} is invalid: {exc}") from None


def _default_data_dir() -> Path:
    """The keeper's data directory: from its configuration file ``$PM_CONFIG`` (relative
    paths against that file), else ``$PM_DATA_DIR``, else ``var/keeper`` in the repository
    (never the working directory: ``pm margin`` runs from anywhere)."""
    config = os.environ.get("PM_CONFIG")
    if config:
        try:
            return keeper_data_dir(config, os.environ)
        except ConfigError as exc:
            raise CliError(f"$PM_CONFIG {config}: {exc}") from None
    env = os.environ.get("PM_DATA_DIR")
    return Path(env) if env else REPO_ROOT / "var" / "keeper"


def collateral_order(session: Session) -> list[TokenInfo]:
    """The deployment's collateral tokens in the vault's registration order (the order of
    ``accountState``'s balances)."""
    return [session.deployment.token(a) for a in session.vault.functions.tokens().call()]


def _engine(
    session: Session, state: VaultAccountState, market: MarketState, params_file: Path | None
) -> tuple[AccountReport, RiskGrid, AccountGreeks, tuple[LiquidationDistance, ...]]:
    """Engine inputs from chain state: held instruments + collateral tokens as SPOT, mapped
    by the keeper's own :func:`keeper.engine_input.engine_input` (feed underlyings +
    token-only underlyings at the token price, one smile slice per held option expiry), so
    that both sides price the same inputs."""
    held: list[ChainInstrument] = []
    positions: list[Position] = []
    for iid, size, funding in zip(
        state["instruments"], state["sizes"], state["funding"], strict=True
    ):
        k, und_b, strike, expiry = session.vault.functions.instrument(iid).call()
        und = bytes(und_b).rstrip(b"\0").decode()
        held.append(ChainInstrument(int(iid), int(k), und, int(strike), int(expiry)))
        positions.append(Position(int(iid), int(size), int(funding)))
    collateral = collateral_order(session)
    tokens = [ChainToken(t.address, t.symbol, t.decimals, k) for k, t in enumerate(collateral)]
    account = AccountState(
        0,  # not a leaf: the engine needs only positions, collateral, cash
        int(state["cash"]),
        0,
        0,
        0,
        tuple(positions),
        tuple(int(b) for b in state["coll"]),
    )
    token_underlyings = {t.symbol: str(t.underlying) for t in collateral if t.underlying}
    try:
        inputs = engine_input(market, held, tokens, [account], token_underlyings=token_underlyings)
    except (FeedError, KeyError) as exc:
        raise CliError(f"the epoch's market cannot price this account: {exc}") from None
    ports, snap = inputs.portfolios, inputs.market
    table = ports.instruments
    try:
        params = load_params(params_file)
        arrays = build_risk_arrays(table, snap, params)
        rep = explain(ports, snap, params, 0, arrays=arrays)
        greeks = account_greeks(ports, snap, params, 0)
        distances = liquidation_distances(ports, snap, params, 0)
    except (RiskEngineError, OSError) as exc:
        raise CliError(f"risk engine refused the account: {exc}") from None
    scen = arrays.scenarios
    n = scen.n_scenarios
    fractions = tuple(sorted(set(float(f) for f in scen.fraction)))
    states = (-1, 0, 1)
    pnl = np.full((len(states), len(fractions)), np.nan)
    for s in range(n):
        pnl[states.index(int(scen.vol_state[s])), fractions.index(float(scen.fraction[s]))] = (
            rep.lines[s].pnl
        )
    grid = RiskGrid(
        fractions=fractions,
        vol_states=states,
        pnl=pnl,
        extreme=tuple(abs(f) > 1.0 + 1e-12 for f in fractions),
        ranges={u: float(r) for u, r in zip(scen.underlyings, scen.ranges, strict=True)},
    )
    return rep, grid, greeks, distances


def _positions(session: Session, api: KeeperApi, state: VaultAccountState) -> list[PositionLine]:
    out: list[PositionLine] = []
    for iid, size in zip(state["instruments"], state["sizes"], strict=True):
        k, und_b, strike, expiry = session.vault.functions.instrument(iid).call()
        und = bytes(und_b).rstrip(b"\0").decode()
        lp = api.instrument(int(iid))
        mark = int(lp.fields["mark"]) / WAD if lp is not None else None
        out.append(
            PositionLine(
                instrument_name(int(k), und, int(strike), int(expiry)),
                ("perp", "call", "put")[int(k)],
                int(size) / WAD,
                mark,
            )
        )
    prices = {p[0]: p[1] for p in session.vault.functions.tokenPrices().call()}
    for tok, bal in zip(collateral_order(session), state["coll"], strict=True):
        if int(bal):
            price = prices.get(tok.address)
            out.append(
                PositionLine(
                    tok.symbol,
                    "collateral",
                    int(bal) / 10**tok.decimals,
                    price / WAD if price else None,
                )
            )
    return out


class _RootMoved(Exception):
    """The vault took a new epoch while the view was being read."""


#: Reads of a margin view before giving up when a new root lands mid-read each time.
ROOT_RACE_ATTEMPTS = 4


def margin_view(
    session: Session,
    api: KeeperApi,
    account: int,
    *,
    market_file: Path | None = None,
    keeper_data: Path | None = None,
    params_file: Path | None = None,
) -> MarginView:
    """Collect the three views of ``account`` (see the module docstring). A new root landing
    mid-read (the leaf then fails the vault's proof check, ``InvalidAccountProof``) is read
    again, up to :data:`ROOT_RACE_ATTEMPTS` times; it never shows as a reverted view."""
    for attempt in range(ROOT_RACE_ATTEMPTS):
        try:
            return _margin_view_once(
                session,
                api,
                account,
                market_file=market_file,
                keeper_data=keeper_data,
                params_file=params_file,
            )
        except _RootMoved:
            time.sleep(0.5 * (attempt + 1))  # let the keeper API serve the new epoch
    raise CliError(
        f"subaccount {account}: the keeper API's leaf and the vault's epoch disagreed in each "
        f"of {ROOT_RACE_ATTEMPTS} reads (a new root each time, or an API serving another "
        "deployment): wait for the keeper, or check --api-url"
    )


def _margin_view_once(
    session: Session,
    api: KeeperApi,
    account: int,
    *,
    market_file: Path | None = None,
    keeper_data: Path | None = None,
    params_file: Path | None = None,
) -> MarginView:
    vault = session.vault
    state = session.account_state(account)
    epoch, _ = current_root(session)
    _, snap_block, ts, _ = vault.functions.currentEpoch().call()
    safe = bool(vault.functions.isSafeMode().call())
    leaf = api.account(account) if epoch > 0 else None
    if leaf is not None and leaf.epoch != epoch:
        raise _RootMoved  # the API not yet at the vault's epoch (or past a stale read)
    has_positions = bool(state["instruments"])
    im_lo = mm_hi = None
    note = ""
    if safe:
        note = "safe mode: the vault evaluates no bound until a fresh epoch"
    elif has_positions and leaf is None:
        note = f"no ACCOUNT leaf in epoch {epoch}: bounds unavailable"
    else:
        mp = leaf.margin_proof() if leaf is not None else MarginProof.empty(account)
        try:
            im_lo = int(vault.functions.imSurplusLo(account, mp.to_abi()).call())
            if has_positions:
                mm_hi = int(vault.functions.mmSurplusHi(account, mp.to_abi()).call())
        except Exception as exc:  # noqa: BLE001 - a reverted view: report, do not fail
            if current_root(session)[0] != epoch or "InvalidAccountProof" in str(exc):
                raise _RootMoved from None
            note = f"the vault's bound views reverted: {str(exc).splitlines()[0][:120]}"
        if not has_positions and not note:
            note = "no open positions: IM bound valued on chain (haircut collateral + cash)"
    report = grid = greeks = None
    distances: tuple[LiquidationDistance, ...] = ()
    engine_note = ""
    if epoch == 0:
        engine_note = "no epoch posted yet: nothing to price against"
    elif not has_positions and not any(int(b) for b in state["coll"]):
        engine_note = "the account holds no positions and no collateral: nothing at risk"
    else:
        market, engine_note = _load_market(epoch, market_file, keeper_data)
        if market is not None:
            report, grid, greeks, distances = _engine(session, state, market, params_file)
    return MarginView(
        account=account,
        owner=session.owner_of(account),
        epoch=epoch,
        snapshot_block=int(snap_block),
        epoch_timestamp=int(ts),
        safe_mode=safe,
        cash=int(state["cash"]) / WAD,
        leaf=_leaf_numbers(leaf),
        im_surplus_lo=im_lo,
        mm_surplus_hi=mm_hi,
        bounds_note=note,
        positions=tuple(_positions(session, api, state)),
        report=report,
        grid=grid,
        engine_note=engine_note,
        greeks=greeks,
        liquidation=distances,
    )


@dataclass(frozen=True)
class HistoryPoint:
    epoch: int
    timestamp: int
    equity: float
    im: float
    mm: float


def margin_history(
    api: KeeperApi, account: int, last_epoch: int, limit: int = 50
) -> list[HistoryPoint]:
    """The account's attested equity / IM / MM in the last ``limit`` epochs (API)."""
    out: list[HistoryPoint] = []
    for n in range(max(1, last_epoch - limit + 1), last_epoch + 1):
        leaf = api.account(account, epoch=n)
        if leaf is None:
            continue
        ep = api.epoch(n)
        ts = int(ep["timestamp"]) if ep else 0
        f = leaf.fields
        out.append(
            HistoryPoint(n, ts, int(f["equity"]) / WAD, int(f["im"]) / WAD, int(f["mm"]) / WAD)
        )
    return out
