"""Prometheus metrics of the keeper, on their own registry (no global state).

Every metric (all prefixed ``pm_keeper_``) with its type, unit and meaning is in
docs/operations.md, section 6; tests/keeper/test_metrics_doc.py checks that table against
this registry, both ways.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

__all__ = ["STAGE_BUCKETS", "KeeperMetrics"]

#: Seconds; from 1 ms (tree of a few leaves) to 2 min (10k accounts on a slow RPC).
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class KeeperMetrics:
    """All keeper metrics, registered on ``registry`` (a fresh one by default, so that
    several keepers or tests in one process do not collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.epoch_last = Gauge("pm_keeper_epoch_last", "Last epoch mined", registry=r)
        self.epoch_last_timestamp = Gauge(
            "pm_keeper_epoch_last_timestamp_seconds",
            "Timestamp of the last epoch mined",
            registry=r,
        )
        self.epoch_lag = Gauge(
            "pm_keeper_epoch_lag_seconds",
            "Seconds since the last mined epoch's timestamp",
            registry=r,
        )
        self.stage_seconds = Histogram(
            "pm_keeper_stage_seconds",
            "Time per pipeline stage",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.accounts = Gauge(
            "pm_keeper_accounts", "ACCOUNT leaves (subaccounts) in the last epoch", registry=r
        )
        self.gas_used = Counter(
            "pm_keeper_gas_used", "Gas used by mined transactions", ["purpose"], registry=r
        )
        self.tx = Counter(
            "pm_keeper_tx", "Transactions by outcome", ["purpose", "outcome"], registry=r
        )
        self.failures = Counter(
            "pm_keeper_failures", "Failed jobs by reason", ["reason"], registry=r
        )
        self.capped_values = Counter(
            "pm_keeper_capped_values",
            "Values capped instead of refusing an epoch, by name",
            ["name"],
            registry=r,
        )
        self.capped_last_epoch = Gauge(
            "pm_keeper_capped_values_last_epoch",
            "Values capped in the last epoch built",
            registry=r,
        )
        self.feed_dropped = Counter(
            "pm_keeper_feed_source_dropped",
            "Source values left out of the composite feed, by source and reason",
            ["source", "reason"],
            registry=r,
        )
        self.feed_confidence = Gauge(
            "pm_keeper_feed_confidence",
            "Composite feed confidence per symbol (0..1)",
            ["symbol"],
            registry=r,
        )
        self.feed_refusals = Counter(
            "pm_keeper_feed_refusals",
            "Composite feed ticks refused, by reason",
            ["reason"],
            registry=r,
        )
        self.post_refusals = Counter(
            "pm_keeper_post_refusals",
            "postEpoch refused by the vault when simulated, by custom error",
            ["error"],
            registry=r,
        )
        self.posts = Counter(
            "pm_keeper_posts", "Epochs sent to be posted, by reason", ["reason"], registry=r
        )
        self.epochs_skipped = Counter(
            "pm_keeper_epochs_skipped", "Epochs built and not posted (nothing moved)", registry=r
        )
        self.state_checks = Counter(
            "pm_keeper_state_checks", "Full re-reads of the state kept from events", registry=r
        )
        self.state_mismatches = Counter(
            "pm_keeper_state_mismatches",
            "Accounts whose state from events differed from accountStates at a check",
            registry=r,
        )
        self.rpc_retries = Counter("pm_keeper_rpc_retries", "RPC calls retried", registry=r)
        self.job_runs = Counter("pm_keeper_job_runs", "Periodic job runs", ["job"], registry=r)
        self._last_timestamp = 0.0
        self._server: WSGIServer | None = None
        self._thread: Thread | None = None

    @contextmanager
    def time_stage(self, stage: str) -> Iterator[None]:
        """``with metrics.time_stage("compute"): ...`` observes the block's duration
        (also when it raises)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds.labels(stage=stage).observe(time.perf_counter() - start)

    def epoch_mined(self, number: int, timestamp: int, accounts: int) -> None:
        self.epoch_last.set(number)
        self.epoch_last_timestamp.set(timestamp)
        self._last_timestamp = float(timestamp)
        self.accounts.set(accounts)
        self.update_lag()

    def seed(self, number: int, timestamp: int) -> None:
        """At start, from the store's last mined epoch: ``epoch_last`` and the lag are
        right from the first scrape after a restart, not 0 until a new epoch is mined
        (the failure "alert on lag" exists for)."""
        self.epoch_last.set(number)
        self.epoch_last_timestamp.set(timestamp)
        self._last_timestamp = float(timestamp)
        self.update_lag()

    def update_lag(self, now: float | None = None) -> None:
        """Set ``epoch_lag_seconds`` from the last mined timestamp (call on every tick so
        the lag grows while nothing is posted)."""
        if self._last_timestamp > 0:
            self.epoch_lag.set((time.time() if now is None else now) - self._last_timestamp)

    def tx_outcome(self, purpose: str, outcome: str, gas_used: int = 0) -> None:
        self.tx.labels(purpose=purpose, outcome=outcome).inc()
        if gas_used:
            self.gas_used.labels(purpose=purpose).inc(gas_used)

    def epoch_capped(self, names: Sequence[str]) -> None:
        """Count the values one epoch capped (``names``, one per value)."""
        for name in names:
            self.capped_values.labels(name=name).inc()
        self.capped_last_epoch.set(len(names))

    def failure(self, reason: str) -> None:
        self.failures.labels(reason=reason).inc()

    def render(self) -> bytes:
        """The text exposition format (what ``/metrics`` serves)."""
        return generate_latest(self.registry)

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``addr:port`` (0 = a free port) in a daemon thread;
        returns the bound port."""
        self._server, self._thread = start_http_server(port, addr=addr, registry=self.registry)
        return int(self._server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
