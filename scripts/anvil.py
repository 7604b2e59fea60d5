"""Start and stop a local Anvil node on a free port (tests, demo).

Only the process this module started is ever stopped, by its own handle.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from web3 import Web3

from scripts.errors import AnvilError
from scripts.toolchain import paths as toolchain

ANVIL_CHAIN_ID = 31337


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class AnvilNode:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def web3(self) -> Web3:
        return Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 30}))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_anvil(
    *, port: int | None = None, timeout: float = 20.0, extra_args: tuple[str, ...] = ()
) -> AnvilNode:
    """Start ``anvil --port P --silent`` and wait until it answers ``eth_chainId``."""
    port = port or free_port()
    # stderr goes to a file, not a pipe: an unread pipe that fills up would block anvil.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [str(toolchain.anvil()), "--port", str(port), "--silent", *extra_args],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    node = AnvilNode(port=port, process=proc)
    w3 = node.web3()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise AnvilError(f"anvil exited with code {proc.returncode}: {err.strip()}")
        try:
            if w3.eth.chain_id == ANVIL_CHAIN_ID:
                return node
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        time.sleep(0.1)
    node.stop()
    raise AnvilError(f"anvil did not answer on port {port} within {timeout:.0f}s")


@contextmanager
def anvil(
    *, port: int | None = None, timeout: float = 20.0, extra_args: tuple[str, ...] = ()
) -> Iterator[AnvilNode]:
    """Context manager around :func:`start_anvil` that always stops the node."""
    node = start_anvil(port=port, timeout=timeout, extra_args=extra_args)
    try:
        yield node
    finally:
        node.stop()
