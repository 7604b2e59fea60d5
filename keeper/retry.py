"""Retrying RPC calls: exponential backoff on errors that mean "the node is unreachable or
slow", never on a refusal.

:func:`call_with_retry` is how the chain adapter's reads (``keeper/chain.py``) and the
transaction manager's RPC calls (``keeper/txmanager.py``) survive a node that is away for a
few seconds; past the :class:`RetryPolicy` it raises
:class:`~keeper.errors.RpcUnavailableError` and the caller's job simply runs again later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import requests
from web3.exceptions import ProviderConnectionError

from keeper.errors import RpcUnavailableError

__all__ = ["RetryPolicy", "call_with_retry", "is_transient"]

# The retry lines were logged by the transaction manager's logger before this module
# existed; operators filter on it, so it stays.
log = logging.getLogger("keeper.tx")

T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: the node is unreachable or slow, not a refusal."""
    if isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | ProviderConnectionError
        | ConnectionError
        | TimeoutError,
    ):
        return True
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: delays ``base * 2**k`` capped at ``max_delay`` seconds, for at
    most ``max_attempts`` attempts and ``deadline_seconds`` in total."""

    max_attempts: int = 10
    base_delay: float = 0.25
    max_delay: float = 5.0
    deadline_seconds: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        return float(min(self.max_delay, self.base_delay * 2.0**attempt))


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str = "rpc",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[BaseException, int], None] | None = None,
) -> T:
    """Call ``fn``; on a transient error wait and retry per ``policy``.

    Non-transient errors propagate at once. After the last attempt or past the deadline
    raises :class:`RpcUnavailableError` chained to the last error.
    """
    start = clock()
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            attempt += 1
            delay = policy.delay(attempt - 1)
            if attempt >= policy.max_attempts or clock() - start + delay > policy.deadline_seconds:
                raise RpcUnavailableError(
                    f"{what}: RPC unreachable after {attempt} attempts in "
                    f"{clock() - start:.1f} s: {exc}"
                ) from exc
            log.warning(
                "rpc retry",
                extra={"what": what, "attempt": attempt, "delay": delay, "error": str(exc)},
            )
            if on_retry is not None:
                on_retry(exc, attempt)
            sleep(delay)
