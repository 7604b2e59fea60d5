"""When an epoch that was built is worth posting (docs/operations.md, "When to post").

Posting every epoch costs ~137k gas whether anything changed or not (docs/benchmarks.md).
With ``post.mode = "on_change"`` the pipeline posts a built epoch only for a reason, the
first that applies in this order:

- ``first``: this process has not posted an epoch yet (after a start, nothing to compare);
- ``settlement``: the header settles an expired option (``settle`` waits for it);
- ``heartbeat``: ``heartbeat_fraction * maxAge`` seconds passed since the epoch on chain
  (the vault refuses leaves older than ``maxAge``);
- ``funding``: ``funding_interval_seconds`` passed since the epoch on chain (the funding
  rule charges at most ``max_elapsed_seconds`` per epoch, so funding must not wait longer);
- ``account``: a subaccount is new, or its stateNonce, cumLo or cumHi changed (a fill, a
  deposit, a withdrawal: the vault's checks wait for a leaf with the new bounds), or its
  equity, IM or MM moved by more than ``tolerance_usd + tolerance_rel * |previous|``;
- ``instrument``: an instrument is new, or its mark or a loss per unit moved by more than
  ``tolerance_rel`` of its previous value;
- ``token``: a collateral price or shock moved by more than ``tolerance_rel``.

Otherwise the epoch is skipped: nothing is stored or signed, and the next tick builds
again from the chain. ``post.mode = "always"`` (the default) posts every epoch built.
Pure: the pipeline passes the last build it posted and the chain's epoch timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from keeper.attestation import AccountLeaf, InstrumentLeaf
from keeper.eip712 import TokenPrice
from keeper.epoch_build import EpochBuild
from risk_engine.units import WAD

__all__ = ["POST_REASONS", "PostMode", "PostPolicy", "post_reason"]

PostMode = Literal["always", "on_change"]

#: Every reason :func:`post_reason` gives (the ``reason`` label of
#: ``pm_keeper_posts_total``).
POST_REASONS = (
    "always",
    "first",
    "settlement",
    "heartbeat",
    "funding",
    "account",
    "instrument",
    "token",
)


@dataclass(frozen=True)
class PostPolicy:
    """The ``[post]`` section (module docstring). ``tolerance_rel`` is a fraction,
    ``tolerance_usd`` USD, ``heartbeat_fraction`` a fraction of the vault's ``maxAge``,
    ``funding_interval_seconds`` seconds."""

    mode: PostMode = "always"
    tolerance_rel: float = 0.001
    tolerance_usd: float = 1.0
    heartbeat_fraction: float = 0.5
    funding_interval_seconds: int = 900


def _moved(new: int, old: int, rel: float, abs_wad: int = 0) -> bool:
    """``|new - old| > abs_wad + rel * |old|`` in WAD integers (rel as a float)."""
    return abs(new - old) > abs_wad + rel * abs(old)


def _accounts_moved(
    new: Sequence[AccountLeaf], old: Sequence[AccountLeaf], policy: PostPolicy
) -> bool:
    before = {leaf.account: leaf for leaf in old}
    abs_wad = int(policy.tolerance_usd * WAD)
    rel = policy.tolerance_rel
    for leaf in new:
        prev = before.get(leaf.account)
        if prev is None or (leaf.state_nonce, leaf.cum_lo, leaf.cum_hi) != (
            prev.state_nonce,
            prev.cum_lo,
            prev.cum_hi,
        ):
            return True
        if (
            _moved(leaf.equity, prev.equity, rel, abs_wad)
            or _moved(leaf.im, prev.im, rel, abs_wad)
            or _moved(leaf.mm, prev.mm, rel, abs_wad)
        ):
            return True
    return False


def _instruments_moved(
    new: Sequence[InstrumentLeaf], old: Sequence[InstrumentLeaf], rel: float
) -> bool:
    before = {leaf.instrument: leaf for leaf in old}
    for leaf in new:
        prev = before.get(leaf.instrument)
        if prev is None or any(
            _moved(a, b, rel)
            for a, b in (
                (leaf.mark, prev.mark),
                (leaf.loss_per_unit_long, prev.loss_per_unit_long),
                (leaf.loss_per_unit_short, prev.loss_per_unit_short),
            )
        ):
            return True
    return False


def _tokens_moved(new: Iterable[TokenPrice], old: Iterable[TokenPrice], rel: float) -> bool:
    before = {t.token: t for t in old}
    for t in new:
        prev = before.get(t.token)
        if prev is None or any(
            _moved(a, b, rel)
            for a, b in (
                (t.price, prev.price),
                (t.down_shock, prev.down_shock),
                (t.up_shock, prev.up_shock),
            )
        ):
            return True
    return False


def post_reason(
    policy: PostPolicy,
    build: EpochBuild,
    last_posted: EpochBuild | None,
    *,
    onchain_timestamp: int,
    max_age: int,
) -> str | None:
    """Why ``build`` should be posted (one of :data:`POST_REASONS`), or None to skip it.

    ``last_posted``: the last build this process posted (None after a start);
    ``onchain_timestamp``: the timestamp of the vault's current epoch (unix seconds);
    ``max_age``: the vault's ``maxAge`` (seconds).
    """
    if policy.mode == "always":
        return "always"
    if last_posted is None:
        return "first"
    header = build.header
    if header.settlements:
        return "settlement"
    elapsed = header.timestamp - onchain_timestamp
    if elapsed >= policy.heartbeat_fraction * max_age:
        return "heartbeat"
    if header.funding and elapsed >= policy.funding_interval_seconds:
        return "funding"
    rel = policy.tolerance_rel
    if _accounts_moved(build.account_leaves, last_posted.account_leaves, policy):
        return "account"
    if _instruments_moved(build.instrument_leaves, last_posted.instrument_leaves, rel):
        return "instrument"
    if _tokens_moved(header.tokens, last_posted.header.tokens, rel):
        return "token"
    return None
