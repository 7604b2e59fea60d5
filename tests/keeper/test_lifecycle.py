"""Lifecycle: periodic jobs that never overlap, failures counted, clean shutdown on SIGTERM;
structured log formats; metrics."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from keeper.errors import FeedError
from keeper.lifecycle import JsonFormatter, KeyValueFormatter, Lifecycle, configure_logging
from keeper.metrics import KeeperMetrics
from scripts.toolchain.paths import REPO_ROOT


def wait_until(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_slowJob_neverOverlaps():
    active = 0
    peak = 0
    lock = threading.Lock()

    def slow() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.35)  # longer than the 0.1 s interval
        with lock:
            active -= 1

    life = Lifecycle()
    life.every(0.1, slow, name="epoch")
    life.start()
    wait_until(lambda: life.runs.get("epoch", 0) >= 3)
    life.stop()
    assert peak == 1
    assert active == 0  # stop waited for the running job


def test_failingJob_isCountedAndScheduleGoesOn():
    metrics = KeeperMetrics()
    calls = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) % 2:
            raise FeedError("NaN spot", field="BTC.spot")

    life = Lifecycle(metrics=metrics)
    life.every(0.05, flaky, name="epoch")
    life.start()
    wait_until(lambda: life.runs.get("epoch", 0) >= 4)
    life.stop()
    assert life.failures["epoch"] >= 2
    assert "BTC.spot" in life.last_error["epoch"]
    text = metrics.render().decode()
    assert 'pm_keeper_failures_total{reason="FeedError"}' in text
    assert 'pm_keeper_job_runs_total{job="epoch"}' in text


def test_callbacks_order_andDuplicateJobRefused():
    order: list[str] = []
    life = Lifecycle()
    life.on_startup(lambda: order.append("start"))
    life.on_shutdown(lambda: order.append("stop-a"))
    life.on_shutdown(lambda: order.append("stop-b"))
    life.on_shutdown(lambda: 1 / 0)  # a failing callback does not stop the others
    life.every(10, lambda: order.append("job"), name="j")
    with pytest.raises(ValueError):
        life.every(10, lambda: None, name="j")
    with pytest.raises(ValueError):
        life.every(0, lambda: None, name="k")
    threading.Timer(0.3, life.request_stop).start()
    life.run(install_signals=False)
    assert order == ["start", "job", "stop-b", "stop-a"]
    assert not life.running


def test_hungJob_doesNotBlockShutdownForever():
    release = threading.Event()
    started = threading.Event()

    def hung() -> None:
        started.set()
        release.wait(10)

    life = Lifecycle(shutdown_timeout=0.3)
    life.every(60, hung, name="epoch")
    life.start()
    assert started.wait(5)
    t0 = time.monotonic()
    life.stop()
    assert time.monotonic() - t0 < 2.0
    release.set()


_DAEMON = """
import sys, time
from keeper.lifecycle import Lifecycle, configure_logging
configure_logging("INFO", "json", sys.stdout)
life = Lifecycle()
def job():
    print("job-start", flush=True)
    time.sleep(0.5)
    print("job-end", flush=True)
life.every(0.2, job, name="epoch")
life.on_shutdown(lambda: print("shutdown-done", flush=True))
life.run()
print("exited", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stopsGracefully_afterRunningJobFinishes(sig):
    proc = subprocess.Popen(
        [sys.executable, "-c", _DAEMON],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while "job-start" not in line:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(sig)  # in the middle of a job
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines.index("job-end") < lines.index("shutdown-done") < lines.index("exited")
    logs = [json.loads(x) for x in lines if x.startswith("{")]
    assert any(r["msg"] == "signal received" and r["signal"] == sig.name for r in logs)


def test_structuredFormats():
    rec = logging.LogRecord("keeper.tx", logging.INFO, __file__, 1, "tx sent", (), None)
    rec.hash = "0xab"
    rec.nonce = 3
    doc = json.loads(JsonFormatter().format(rec))
    assert doc["msg"] == "tx sent" and doc["hash"] == "0xab" and doc["nonce"] == 3
    assert doc["level"] == "INFO" and doc["logger"] == "keeper.tx"
    rec.note = "two words"
    kv = KeyValueFormatter().format(rec)
    assert 'msg="tx sent"' in kv and "nonce=3" in kv and 'note="two words"' in kv
    stream = io.StringIO()
    handler = configure_logging("INFO", "kv", stream)
    try:
        logging.getLogger("keeper.test").info("hello", extra={"epoch": 5})
    finally:
        logging.getLogger().removeHandler(handler)
    assert "epoch=5" in stream.getvalue()


def test_metrics_stageTimer_lag_andHttp():
    m = KeeperMetrics()
    with m.time_stage("compute"):
        time.sleep(0.01)
    with pytest.raises(RuntimeError):
        with m.time_stage("post"):
            raise RuntimeError("x")
    m.epoch_mined(7, 1_000, accounts=1234)
    m.update_lag(now=1_030)
    m.tx_outcome("postEpoch", "mined", gas_used=150_000)
    text = m.render().decode()
    assert 'pm_keeper_stage_seconds_count{stage="compute"} 1.0' in text
    assert 'pm_keeper_stage_seconds_count{stage="post"} 1.0' in text
    assert "pm_keeper_epoch_lag_seconds 30.0" in text
    assert "pm_keeper_accounts 1234.0" in text
    assert 'pm_keeper_gas_used_total{purpose="postEpoch"} 150000.0' in text
    port = m.serve(0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert b"pm_keeper_epoch_last 7.0" in resp.read()
    finally:
        m.stop()
    # Two instances do not collide (own registries).
    KeeperMetrics()
