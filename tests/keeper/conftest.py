"""Fixtures of the keeper's Anvil tests: a private Anvil per test (stopped in teardown by its
own handle), one that can be restarted from its state file, a funded sender, a deployed world
(scripts/pipeline_world.py), a store in a temp dir, and a TCP proxy that can cut the keeper
off the node."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from keeper.store import Store
from scripts.anvil import AnvilNode, free_port, start_anvil
from scripts.pipeline_world import World, build_world


@pytest.fixture
def anvil() -> Iterator[AnvilNode]:
    node = start_anvil()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def world(anvil: AnvilNode) -> World:
    return build_world(anvil.web3())


class RestartableAnvil:
    """An Anvil on a fixed port that can be stopped and started again from its state
    file (``--state``: loaded on start, dumped on exit)."""

    def __init__(self, tmp: Path, *extra: str) -> None:
        self.port = free_port()
        self.state = tmp / "anvil-state.json"
        self.extra = extra
        self.node: AnvilNode | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.node = start_anvil(
            port=self.port, extra_args=("--state", str(self.state), *self.extra)
        )

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()
            self.node = None


@pytest.fixture
def restartable_anvil(tmp_path: Path) -> Iterator[RestartableAnvil]:
    node = RestartableAnvil(tmp_path)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def w3(restartable_anvil: RestartableAnvil) -> Web3:
    return Web3(Web3.HTTPProvider(restartable_anvil.url, request_kwargs={"timeout": 5}))


def fund(w3: Web3, address: str, wei: int = 10**21) -> None:
    w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]


@pytest.fixture
def sender(w3: Web3) -> LocalAccount:
    """A fresh test key (derived from a label, not a real key), funded on the node."""
    acct: LocalAccount = Account.from_key(keccak(text="keeper txmanager test sender"))
    fund(w3, acct.address)
    return acct


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "keeper.sqlite")
    try:
        yield s
    finally:
        s.close()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target port. :meth:`down` closes the listener and
    every open connection (so pooled keep-alive connections fail too); :meth:`up` listens
    again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            if self._listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone does not.
                try:
                    self._listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._listener.close()
                self._listener = None
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass


@pytest.fixture
def proxy(anvil: AnvilNode) -> Iterator[TcpProxy]:
    p = TcpProxy(anvil.port)
    p.up()
    try:
        yield p
    finally:
        p.down()
