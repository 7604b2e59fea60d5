"""Prometheus metrics of the liquidator bot (prefix ``pm_liquidator_``), served by its own
process (``keeper/liquidator/daemon.py``) on ``[liquidator] metrics_port``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from keeper.liquidator.config import wad_to_usd
from keeper.liquidator.outcome import Outcome

__all__ = ["LiquidatorMetrics"]


class LiquidatorMetrics:
    """Prometheus metrics of the bot (prefix ``pm_liquidator_``), on ``registry``.

    ``ticks_total``, ``tick_seconds`` (histogram), ``last_epoch`` (epoch seen by the last
    tick), ``candidates`` (subaccounts with a negative bound in the last tick),
    ``outcomes_total{status,reason}``, ``liquidations_total``, ``profit_usd`` (cumulative,
    may go down), ``cash_paid_usd`` (cumulative net cash paid), ``deposited_usd``
    (cumulative capital deposited into the subaccounts taken over: the wallet's outflow),
    ``gas_used_total``, ``root_moved_total{stage}`` (re-reads after the root moved under an
    attempt at ``view`` or ``simulation``).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.ticks = Counter("pm_liquidator_ticks", "Bot ticks", registry=r)
        self.tick_seconds = Histogram(
            "pm_liquidator_tick_seconds",
            "Time per tick",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.last_epoch = Gauge(
            "pm_liquidator_last_epoch", "Epoch seen by the last tick", registry=r
        )
        self.candidates = Gauge(
            "pm_liquidator_candidates", "Accounts with MM upper bound < 0", registry=r
        )
        self.outcomes = Counter(
            "pm_liquidator_outcomes",
            "Liquidation attempts by status and reason",
            ["status", "reason"],
            registry=r,
        )
        self.liquidations = Counter("pm_liquidator_liquidations", "Liquidations mined", registry=r)
        self.profit_usd = Gauge(
            "pm_liquidator_profit_usd",
            "Cumulative profit (equity taken - cash paid), USD",
            registry=r,
        )
        self.cash_paid_usd = Gauge(
            "pm_liquidator_cash_paid_usd", "Cumulative net cash paid, USD", registry=r
        )
        self.deposited_usd = Gauge(
            "pm_liquidator_deposited_usd",
            "Cumulative capital deposited into the subaccounts taken over, USD",
            registry=r,
        )
        self.gas_used = Counter("pm_liquidator_gas_used", "Gas of liquidation txs", registry=r)
        self.root_moved = Counter(
            "pm_liquidator_root_moved",
            "Re-reads of the epoch and leaves after the vault's root moved during a tick",
            ["stage"],
            registry=r,
        )

    def outcome(self, o: Outcome) -> None:
        reason = (o.reason or "").split(":", 1)[0] or "-"
        self.outcomes.labels(status=o.status, reason=reason).inc()
        if o.gas_used:
            self.gas_used.inc(o.gas_used)
        if o.status == "liquidated":
            self.liquidations.inc()
            if o.profit is not None:
                self.profit_usd.inc(wad_to_usd(o.profit))
            if o.net_cash_paid is not None:
                self.cash_paid_usd.inc(wad_to_usd(o.net_cash_paid))
            if o.deposit6 is not None and o.capital is not None:
                self.deposited_usd.inc(wad_to_usd(o.deposit6 * o.capital.scale))
