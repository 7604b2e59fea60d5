"""The daemon's lifecycle: startup, periodic jobs without overlap, clean shutdown, logs.

As pymaker's ``Lifecycle``: the daemon registers what to do on startup, which callables
to run every N seconds, and what to do on shutdown; :meth:`Lifecycle.run` blocks until
SIGTERM or SIGINT, then lets a running job finish, runs the shutdown callbacks in
reverse order and returns. The periodic job is any callable (the epoch pipeline, the
liquidator bot); it is run by an APScheduler ``BackgroundScheduler`` with
``max_instances=1`` (a run that is still going when the next is due makes the next one
skip, never overlap) and ``coalesce=True`` (missed runs collapse into one).

A job that raises is logged with its reason and counted in
``pm_keeper_failures_total{reason}``; the schedule goes on (the next run may succeed).

Structured logs: :func:`configure_logging` installs a JSON (one object per line) or
``key=value`` formatter; fields passed as ``extra={...}`` become keys.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any, Literal, TextIO

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from keeper.metrics import KeeperMetrics

__all__ = ["JsonFormatter", "KeyValueFormatter", "Lifecycle", "configure_logging"]

log = logging.getLogger("keeper.lifecycle")

# Attributes every LogRecord has; anything else came from ``extra=``.
_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STD_ATTRS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO UTC), ``level``, ``logger``, ``msg``, extras,
    and ``exc`` for an exception."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_extras(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=INFO logger=keeper.tx msg="tx sent" hash=0x.. nonce=3``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        fields = {
            "ts": ts,
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **_extras(record),
        }
        out = " ".join(f"{k}={_kv(v)}" for k, v in fields.items())
        if record.exc_info:
            out += " exc=" + json.dumps(self.formatException(record.exc_info))
        return out


def _kv(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or any(c in text for c in ' "=\n')) else text


def configure_logging(
    level: int | str = "INFO", fmt: Literal["json", "kv"] = "json", stream: TextIO | None = None
) -> logging.Handler:
    """Send the ``keeper`` loggers (and the root logger) to ``stream`` (stderr) with the
    chosen structured format; returns the handler (tests remove it)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    return handler


@dataclass(frozen=True)
class _Job:
    name: str
    fn: Callable[[], object]
    interval_seconds: float


class Lifecycle:
    """Owns startup, the periodic jobs and shutdown (see the module docstring).

    Usage::

        life = Lifecycle(metrics=metrics)
        life.on_startup(api.start)
        life.every(config.keeper.interval_seconds, pipeline.run_epoch, name="epoch")
        life.every(2.0, bot.tick, name="liquidator")
        life.on_shutdown(api.stop)
        life.run()  # blocks until SIGTERM / SIGINT
    """

    def __init__(
        self,
        *,
        metrics: KeeperMetrics | None = None,
        shutdown_timeout: float = 60.0,
        misfire_grace_seconds: float = 30.0,
    ) -> None:
        self.metrics = metrics
        self.shutdown_timeout = shutdown_timeout
        self.misfire_grace_seconds = misfire_grace_seconds
        self._startup: list[Callable[[], object]] = []
        self._shutdown: list[Callable[[], object]] = []
        self._jobs: list[_Job] = []
        self._stop = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self._stopped = False
        #: Completed runs and failures per job name (also in metrics).
        self.runs: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.last_error: dict[str, str] = {}

    # ---------------------------------------------------------------- registration

    def on_startup(self, fn: Callable[[], object]) -> None:
        self._startup.append(fn)

    def on_shutdown(self, fn: Callable[[], object]) -> None:
        """Shutdown callbacks run in reverse registration order, each guarded."""
        self._shutdown.append(fn)

    def every(self, interval_seconds: float, fn: Callable[[], object], *, name: str) -> None:
        """Run ``fn`` every ``interval_seconds`` (first run at start), never overlapping."""
        if interval_seconds <= 0:
            raise ValueError(f"interval must be > 0, got {interval_seconds}")
        if any(j.name == name for j in self._jobs):
            raise ValueError(f"duplicate job name {name!r}")
        self._jobs.append(_Job(name, fn, interval_seconds))

    # ---------------------------------------------------------------- running

    @property
    def running(self) -> bool:
        return self._scheduler is not None and not self._stopped

    def _wrap(self, job: _Job) -> Callable[[], None]:
        def run() -> None:
            start = time.perf_counter()
            try:
                job.fn()
            except Exception as exc:
                reason = getattr(exc, "reason", None) or type(exc).__name__
                self.failures[job.name] = self.failures.get(job.name, 0) + 1
                self.last_error[job.name] = f"{type(exc).__name__}: {exc}"
                if self.metrics is not None:
                    self.metrics.failure(str(reason))
                log.error(
                    "job failed",
                    extra={"job": job.name, "reason": str(reason), "error": str(exc)},
                    exc_info=not _expected(exc),
                )
            finally:
                self.runs[job.name] = self.runs.get(job.name, 0) + 1
                if self.metrics is not None:
                    self.metrics.job_runs.labels(job=job.name).inc()
                log.debug(
                    "job done",
                    extra={"job": job.name, "seconds": round(time.perf_counter() - start, 4)},
                )

        return run

    def start(self) -> None:
        """Run the startup callbacks, then start the scheduler (non-blocking)."""
        if self._scheduler is not None:
            raise RuntimeError("lifecycle already started")
        for fn in self._startup:
            fn()
        scheduler = BackgroundScheduler(timezone="UTC")
        for job in self._jobs:
            scheduler.add_job(
                self._wrap(job),
                IntervalTrigger(seconds=job.interval_seconds, timezone="UTC"),
                id=job.name,
                name=job.name,
                max_instances=1,  # never two runs of one job at once
                coalesce=True,  # missed runs collapse into one
                misfire_grace_time=int(self.misfire_grace_seconds),
                next_run_time=datetime.now(UTC),
            )
        scheduler.start()
        self._scheduler = scheduler
        log.info("lifecycle started", extra={"jobs": [j.name for j in self._jobs]})

    def request_stop(self) -> None:
        """Ask :meth:`run` to return (thread- and signal-safe)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop scheduling, wait for running jobs, run shutdown callbacks (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        if self._scheduler is not None:
            # A running job finishes its epoch, but a job hung on I/O must not keep the
            # process alive for ever: give up waiting after ``shutdown_timeout``.
            waiter = threading.Thread(
                target=self._scheduler.shutdown, kwargs={"wait": True}, daemon=True
            )
            waiter.start()
            waiter.join(self.shutdown_timeout)
            if waiter.is_alive():
                log.error(
                    "job still running at shutdown; not waiting longer",
                    extra={"timeout": self.shutdown_timeout},
                )
        for fn in reversed(self._shutdown):
            try:
                fn()
            except Exception:
                log.exception("shutdown callback failed")
        log.info("lifecycle stopped")

    def run(self, *, install_signals: bool = True) -> None:
        """Start, block until SIGTERM / SIGINT (or :meth:`request_stop`), then stop."""
        previous: dict[int, Any] = {}
        if install_signals and threading.current_thread() is threading.main_thread():

            def handler(signum: int, frame: FrameType | None) -> None:
                log.info("signal received", extra={"signal": signal.Signals(signum).name})
                self._stop.set()

            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[int(sig)] = signal.signal(sig, handler)
        try:
            self.start()
            while not self._stop.wait(0.2):
                pass
        finally:
            self.stop()
            for signum, old in previous.items():
                signal.signal(signum, old)


def _expected(exc: BaseException) -> bool:
    """Keeper errors are reasons, not bugs: log them without a traceback."""
    from keeper.errors import KeeperError

    return isinstance(exc, KeeperError)
