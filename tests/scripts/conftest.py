"""Fixtures of the ``pm`` CLI tests: one Anvil for the session, ``pm deploy`` run through a
subprocess into a temporary deployments directory, and helper-7's keeper
(``keeper.daemon.build_keeper``: real pipeline, sim feed, proof API) in process, whose
epochs the tests run on demand with ``keeper.pipeline.run_epoch()``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from risk_engine.units import WAD
from scripts.anvil import start_anvil
from scripts.toolchain.paths import REPO_ROOT

from .cli_support import SIGNER, CliEnv, KeeperHandle, start_keeper


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliEnv]:
    tmp = tmp_path_factory.mktemp("pm-cli")
    node = start_anvil()
    try:
        w3 = node.web3()
        # The keeper's sender (= the signer key) pays for postEpoch.
        w3.provider.make_request("anvil_setBalance", [SIGNER.address, hex(1000 * WAD)])  # type: ignore[attr-defined]
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PM_") and k not in ("PYTHONPATH",)
        }
        env.update(
            {
                "PM_RPC_URL": node.url,
                "PM_DEPLOYMENTS_DIR": str(tmp / "deployments"),
                "PM_API_URL": "http://127.0.0.1:9",  # replaced once the keeper API starts
                "PM_DATA_DIR": str(tmp / "keeper"),
                "PYTHONPATH": str(REPO_ROOT),
            }
        )
        ce = CliEnv(node, w3, tmp / "deployments", tmp, env)
        ce.ok("deploy", "--signer", SIGNER.address, "--quorum", "1", "--max-age", "3600")
        yield ce
    finally:
        node.stop()


@pytest.fixture(scope="session")
def keeper(cli_env: CliEnv) -> Iterator[KeeperHandle]:
    """helper-7's keeper assembled in process; its API serves the CLI subprocesses."""
    k = start_keeper(
        cli_env.node.url, cli_env.deployments / "31337.json", SIGNER, cli_env.tmp / "keeper"
    )
    url = k.api.url
    cli_env.base_env["PM_API_URL"] = url
    try:
        yield KeeperHandle(k, url)
    finally:
        k.api.stop()
        k.store.close()
