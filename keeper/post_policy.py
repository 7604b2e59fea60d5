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

import numpy as np
import numpy.typing as npt

from keeper import merkle
from keeper.attestation import AccountLeaf, AccountLeafRows, InstrumentLeaf
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
    if isinstance(new, AccountLeafRows) and isinstance(old, AccountLeafRows):
        moved = _rows_moved(new.rows, old.rows, policy)
        if moved is not None:
            return moved
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


def _rows_moved(new: merkle.U8Array, old: merkle.U8Array, policy: PostPolicy) -> bool | None:
    """:func:`_accounts_moved` on two builds' ACCOUNT leaf rows (``abi.encode``, shape
    ``(n, 288)``), the same answer without a leaf object per row: iterating
    :class:`AccountLeafRows` decodes and checks every leaf, ~25x the leaf-by-leaf loop on
    tuples (2 x 100,000 leaves per epoch). Each new row is matched with the old row of its
    account (the last one, as the loop's dict does); equal words are equal values, so only
    the rows whose equity, IM or MM words differ are read as ints. None when an account id
    does not fit 64 bits (the loop decides then)."""
    if len(new) == 0:
        return False
    if len(old) == 0:
        return True
    # words: type tag, account, stateNonce, cumLo, cumHi, equity, im, mm, stateWord (32 each)
    if new[:, 32:56].any() or old[:, 32:56].any():
        return None
    new_ids = new[:, 56:64].copy().view(">u8").ravel()
    old_ids = old[:, 56:64].copy().view(">u8").ravel()
    order = np.argsort(old_ids, kind="stable")
    sorted_ids = old_ids[order]
    at = np.searchsorted(sorted_ids, new_ids, side="right") - 1
    if (at < 0).any() or (sorted_ids[np.maximum(at, 0)] != new_ids).any():
        return True  # a new subaccount needs its leaf
    prev = old[order[at]]
    if (new[:, 64:160] != prev[:, 64:160]).any():
        return True  # stateNonce, cumLo or cumHi changed on chain
    changed = np.flatnonzero((new[:, 160:256] != prev[:, 160:256]).any(axis=1))
    abs_wad = int(policy.tolerance_usd * WAD)
    rel = policy.tolerance_rel
    # in floats first (a few ulps off): a row is read as ints only when its move is within
    # 1e-9 of the tolerance (or past it, to be sure of the answer)
    unsure = np.zeros(len(changed), dtype=bool)
    for w, signed in ((160, True), (192, False), (224, False)):
        a = _word_floats(new[changed, w : w + 32], signed=signed)
        b = _word_floats(prev[changed, w : w + 32], signed=signed)
        move, tolerance = np.abs(a - b), abs_wad + rel * np.abs(b)
        slack = 1e-9 * (np.abs(a) + np.abs(b)) + 1.0
        unsure |= move >= tolerance - slack
    words_new = new[changed[unsure], 160:256].tobytes()
    words_old = prev[changed[unsure], 160:256].tobytes()
    for k in range(0, len(words_new), 96):
        for w, signed in ((0, True), (32, False), (64, False)):
            a_int = int.from_bytes(words_new[k + w : k + w + 32], "big", signed=signed)
            b_int = int.from_bytes(words_old[k + w : k + w + 32], "big", signed=signed)
            if _moved(a_int, b_int, rel, abs_wad):
                return True
    return False


def _word_floats(words: merkle.U8Array, *, signed: bool) -> npt.NDArray[np.float64]:
    """32-byte big-endian words, shape ``(m, 32)``, as the nearest-ish float64 (a few ulps:
    four 64-bit limbs rounded and summed); ``signed``: two's complement (int256)."""
    negative = words[:, 0] >= 0x80 if signed else np.zeros(len(words), dtype=bool)
    # a negative x is -(~x + 1), and ~x is the inverted bytes
    magnitude = np.where(negative[:, None], 0xFF - words, words).astype(np.uint8)
    limbs = np.ascontiguousarray(magnitude).view(">u8").astype(np.float64)
    x = ((limbs[:, 0] * 2.0**64 + limbs[:, 1]) * 2.0**64 + limbs[:, 2]) * 2.0**64 + limbs[:, 3]
    return np.where(negative, -(x + 1.0), x)


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
