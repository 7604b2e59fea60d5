"""``keeper verify --epoch N``: recompute an epoch's root from public data and compare.

The inputs are exactly what anyone can get: the chain state at the epoch's
``snapshotBlock`` (read through a fresh index rebuilt up to that block) and the market
snapshot the keeper published with the epoch (the store, or the ``market`` entry of the
epoch JSON file). The same :func:`keeper.epoch_build.compute_epoch` the daemon runs
recomputes every leaf; the result is compared with the stored header and leaves and with
the root the vault recorded in ``EpochPosted``.

A mismatch names the first differing leaf (ACCOUNT leaves by subaccount id, then
INSTRUMENT leaves by instrument id) with both values, or the first differing header field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keeper.chain import ChainAdapter
from keeper.eip712 import Epoch
from keeper.epoch_build import (
    DEFAULT_FUNDING_RULE,
    DEFAULT_TOKEN_UNDERLYINGS,
    EpochBuild,
    FundingRule,
    compute_epoch,
)
from keeper.errors import VerifyError
from keeper.feeds.base import MarketState
from keeper.store import Store
from risk_engine import CappedValue, RiskParams

__all__ = ["VerifyResult", "verify_epoch"]


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify_epoch`. Roots are ``0x`` hex; ``onchain_root`` is None if
    the epoch was never mined."""

    epoch: int
    snapshot_block: int
    stored_root: str
    recomputed_root: str
    onchain_root: str | None
    accounts: int
    instruments: int
    first_difference: str | None
    #: Values the recomputation capped instead of refusing (docs/operations.md).
    capped: tuple[CappedValue, ...] = ()

    @property
    def match(self) -> bool:
        return (
            self.first_difference is None
            and self.recomputed_root == self.stored_root
            and (self.onchain_root is None or self.onchain_root == self.stored_root)
        )

    def render(self) -> str:
        lines = [
            f"epoch {self.epoch} at snapshot block {self.snapshot_block}: "
            f"{self.accounts} account leaves, {self.instruments} instrument leaves",
            f"  stored root     {self.stored_root}",
            f"  recomputed root {self.recomputed_root}",
            f"  on-chain root   {self.onchain_root or '(not posted)'}",
        ]
        lines += [f"  capped {c.name}: {c.raw:.6g} -> {c.capped:.6g}" for c in self.capped]
        if self.match:
            lines.append("MATCH")
        else:
            lines.append("MISMATCH: " + (self.first_difference or "roots differ"))
        return "\n".join(lines)


def _leaf_key(kind: str, key: str) -> tuple[int, int]:
    return (0 if kind == "account" else 1, int(key))


def _first_difference(
    build: EpochBuild,
    stored_header: Mapping[str, Any],
    stored: Mapping[tuple[int, int], tuple[str, str, dict[str, Any]]],
) -> str | None:
    mine = build.header.to_json()
    theirs = Epoch.from_json(stored_header).to_json()
    for name in (
        "epoch",
        "snapshotBlock",
        "timestamp",
        "inputsHash",
        "configVersion",
        "tokens",
        "funding",
        "settlements",
    ):
        if mine[name] != theirs[name]:
            return f"header.{name}: stored {theirs[name]} recomputed {mine[name]}"
    recomputed = {
        _leaf_key(r.kind, r.key): (r.kind, r.key, dict(r.fields)) for r in build.leaf_records()
    }
    for k in sorted(set(recomputed) | set(stored)):
        if k not in stored:
            b = recomputed[k]
            return f"{b[0]} leaf {b[1]} recomputed but not stored: {b[2]}"
        if k not in recomputed:
            a = stored[k]
            return f"{a[0]} leaf {a[1]} stored but not recomputed: {a[2]}"
        a, b = stored[k], recomputed[k]
        fa = {n: _field_value(v) for n, v in a[2].items()}
        fb = {n: _field_value(v) for n, v in b[2].items()}
        if fa != fb:
            diff = {n: (fa.get(n), fb.get(n)) for n in fa if fa.get(n) != fb.get(n)}
            return f"{a[0]} leaf {a[1]} differs (field: stored, recomputed): {diff}"
    return None


def _field_value(v: object) -> int:
    """A leaf field on the wire as an integer: a decimal string or int, or a ``0x`` hex
    word (``stateWord``, ``vectorHash``)."""
    text = str(v)
    return int(text, 16) if text.startswith("0x") else int(text)


def verify_epoch(
    chain: ChainAdapter,
    store: Store,
    number: int,
    params: RiskParams,
    *,
    token_underlyings: Mapping[str, str] = DEFAULT_TOKEN_UNDERLYINGS,
    funding_rule: FundingRule = DEFAULT_FUNDING_RULE,
) -> VerifyResult:
    """Recompute epoch ``number`` (see the module docstring).

    ``chain`` should be a fresh adapter (its index is rebuilt up to the snapshot block).
    Raises :class:`VerifyError` when the store lacks the epoch or its market snapshot.
    """
    rec = store.get_epoch(number)
    if rec is None or rec.header is None:
        raise VerifyError(f"no stored epoch {number} with a header")
    market_json = store.get_market_snapshot(number)
    if market_json is None:
        raise VerifyError(f"epoch {number} has no stored market snapshot")
    market = MarketState.from_json(market_json)
    chain.connect()
    chain.rebuild_to(rec.snapshot_block)
    # configVersion names the signer set at POST time, not a margin input: take the stored one.
    snapshot = dataclasses.replace(
        chain.snapshot(rec.snapshot_block), config_version=int(rec.header["configVersion"])
    )
    build = compute_epoch(
        snapshot,
        market,
        params,
        epoch=number,
        token_underlyings=token_underlyings,
        funding_rule=funding_rule,
    )
    stored = {
        _leaf_key(r.kind, r.key): (r.kind, r.key, dict(r.fields)) for r in store.get_leaves(number)
    }
    onchain = chain.epoch_posted_root(number)
    return VerifyResult(
        epoch=number,
        snapshot_block=rec.snapshot_block,
        stored_root=rec.root,
        recomputed_root="0x" + build.header.root.hex(),
        onchain_root=None if onchain is None else "0x" + onchain.hex(),
        accounts=len(build.account_leaves),
        instruments=len(build.instrument_leaves),
        first_difference=_first_difference(build, rec.header, stored),
        capped=build.capped,
    )
