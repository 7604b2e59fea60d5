"""The RPC retry policy (keeper/retry.py) with a fake clock: backoff, deadline, refusals."""

from __future__ import annotations

import pytest
import requests

from keeper.errors import RpcUnavailableError
from keeper.retry import RetryPolicy, call_with_retry, is_transient


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def test_retry_backsOffExponentially_thenSucceeds():
    clock = Clock()
    failures = iter([requests.exceptions.ConnectionError("refused")] * 4)

    def fn() -> str:
        exc = next(failures, None)
        if exc is not None:
            raise exc
        return "ok"

    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=3.0, deadline_seconds=60)
    assert call_with_retry(fn, policy, clock=clock.now, sleep=clock.sleep) == "ok"
    assert clock.sleeps == [0.5, 1.0, 2.0, 3.0]


def test_retry_givesUpAtDeadline_andDoesNotRetryRefusals():
    clock = Clock()

    def down() -> None:
        raise requests.exceptions.Timeout("slow")

    with pytest.raises(RpcUnavailableError):
        call_with_retry(
            down,
            RetryPolicy(base_delay=1, max_delay=1, deadline_seconds=5),
            clock=clock.now,
            sleep=clock.sleep,
        )
    assert sum(clock.sleeps) <= 5
    calls = []

    def refused() -> None:
        calls.append(1)
        raise ValueError("execution reverted")

    with pytest.raises(ValueError):
        call_with_retry(refused, RetryPolicy(), clock=clock.now, sleep=clock.sleep)
    assert len(calls) == 1
    assert is_transient(ConnectionRefusedError()) and not is_transient(ValueError())
