"""Where the epoch's risk engine runs: in this process, or sharded on a Dask cluster.

:func:`~keeper.epoch_build.compute_epoch` calls a :data:`MarginFn`; ``compute.backend`` of
the keeper config (docs/operations.md, "A compute cluster") picks it:

- ``local``: :func:`risk_engine.compute_margin` in this process;
- ``dask``: :class:`DaskMargin` on the scheduler at ``compute.scheduler``. The instrument
  risk arrays are built once, here, and broadcast to every worker (one copy each); the
  accounts are cut into shards of consecutive rows, each shard is margined on a worker
  with those arrays, and the per-account results come back in order.

A cluster run equals a local run bit for bit: the engine computes every account from its
own row and the shared arrays only, in a fixed order (``risk_engine/margin.py``:
``weighted_sum``, and ``compute_margin``'s ``chunk_size`` that "results do not depend
on"), so where the rows are cut does not change a bit (tests/keeper/test_compute.py).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from risk_engine import (
    MarginResult,
    MarketSnapshot,
    Portfolios,
    RiskArrays,
    RiskParams,
    build_risk_arrays,
    compute_margin,
)

if TYPE_CHECKING:  # keeper.config imports the epoch build, which imports this module
    from keeper.config import ComputeConfig

__all__ = [
    "MIN_SHARD_ACCOUNTS",
    "DaskMargin",
    "MarginFn",
    "Shard",
    "join_shards",
    "margin_fn",
    "margin_shard",
]

MarginFn = Callable[[Portfolios, MarketSnapshot, RiskParams], MarginResult]

#: No shard is cut smaller: below this a task's overhead (a few ms) outweighs its work.
MIN_SHARD_ACCOUNTS = 4096

#: The per-account fields of :class:`~risk_engine.MarginResult` (all but the shared arrays).
_PER_ACCOUNT = tuple(f.name for f in dataclasses.fields(MarginResult) if f.name != "arrays")


Shard = tuple[sp.csr_array, np.ndarray]


def margin_shard(shard: Shard, arrays: RiskArrays, market: MarketSnapshot) -> dict[str, np.ndarray]:
    """A worker's task: ``compute_margin`` of one shard of accounts (positions, cash) with
    the broadcast arrays; the per-account fields only (the arrays stay on the worker)."""
    positions, cash = shard
    book = Portfolios(arrays.instruments, positions, cash)
    result = compute_margin(book, market, arrays.params, arrays=arrays)
    return {f: getattr(result, f) for f in _PER_ACCOUNT}


def join_shards(parts: list[dict[str, np.ndarray]], arrays: RiskArrays) -> MarginResult:
    """The shards' fields concatenated in order, as one :class:`MarginResult`."""
    fields = {f: np.concatenate([p[f] for p in parts]) for f in _PER_ACCOUNT}
    return MarginResult(**fields, arrays=arrays)


class DaskMargin:
    """:data:`MarginFn` on a Dask cluster (see the module docstring).

    ``client`` is a connected ``distributed.Client``; the caller owns it (and closes it).
    ``shard_accounts`` fixes the shard size; by default two shards per worker, none
    below :data:`MIN_SHARD_ACCOUNTS` (so a small book is one task).
    """

    def __init__(self, client: Any, *, shard_accounts: int | None = None) -> None:
        if shard_accounts is not None and shard_accounts <= 0:
            raise ValueError(f"shard_accounts must be > 0, got {shard_accounts}")
        self.client = client
        self.shard_accounts = shard_accounts

    def _shard_size(self, n: int) -> int:
        if self.shard_accounts is not None:
            return self.shard_accounts
        workers = max(len(self.client.scheduler_info()["workers"]), 1)
        return max(MIN_SHARD_ACCOUNTS, math.ceil(n / (2 * workers)))

    def __call__(
        self, portfolios: Portfolios, market: MarketSnapshot, params: RiskParams
    ) -> MarginResult:
        arrays = build_risk_arrays(portfolios.instruments, market, params)
        n = portfolios.n_accounts
        if n == 0:
            return compute_margin(portfolios, market, params, arrays=arrays)
        # one copy of the arrays (about 2 MB) and of the market on every worker
        shared = self.client.scatter([arrays, market], broadcast=True, hash=False)
        pos = portfolios.positions
        size = self._shard_size(n)
        shards: list[Shard] = [
            (sp.csr_array(pos[start : start + size]), portfolios.cash[start : start + size])
            for start in range(0, n, size)
        ]
        futures = [
            self.client.submit(margin_shard, shard, *shared, pure=False)
            for shard in self.client.scatter(shards, hash=False)
        ]
        return join_shards(self.client.gather(futures), arrays)


@contextmanager
def margin_fn(config: ComputeConfig) -> Iterator[MarginFn]:
    """The :data:`MarginFn` of ``config``; a ``dask`` backend holds a client connected to
    ``config.scheduler`` until the block ends."""
    if config.backend == "local":
        yield _local
        return
    # the cluster's client only where one is configured (distributed is not typed)
    from distributed import Client

    connect: Any = Client
    with connect(config.scheduler, set_as_default=False) as client:
        yield DaskMargin(client)


def _local(portfolios: Portfolios, market: MarketSnapshot, params: RiskParams) -> MarginResult:
    return compute_margin(portfolios, market, params)
