"""Fixtures of the txmanager integration tests: a private Anvil per test (own port, own
process, stopped in teardown), funded accounts, a store in a temp directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from keeper.store import Store
from scripts.anvil import AnvilNode, free_port, start_anvil


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
def anvil_node(tmp_path: Path) -> Iterator[RestartableAnvil]:
    node = RestartableAnvil(tmp_path)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def w3(anvil_node: RestartableAnvil) -> Web3:
    return Web3(Web3.HTTPProvider(anvil_node.url, request_kwargs={"timeout": 5}))


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
