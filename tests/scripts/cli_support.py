"""Helpers of the ``pm`` CLI tests (fixtures in conftest.py): run ``pm``, check failures.

Successful commands run as a subprocess (``python -m scripts.cli``: exit code, stdout,
stderr, exactly what a user runs); failure messages run through a subprocess for each kind
of failure once (``sub=True``) and otherwise in process through the same ``main()``, to
keep the suite fast on a loaded machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from scripts.anvil import AnvilNode
from scripts.toolchain.paths import REPO_ROOT


def key(label: str) -> LocalAccount:
    acct: LocalAccount = Account.from_key(keccak(text=f"pm cli test key {label}"))
    return acct


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@dataclass
class CliEnv:
    """A deployed chain and a way to run ``pm`` against it."""

    node: AnvilNode
    w3: Web3
    deployments: Path
    tmp: Path
    base_env: dict[str, str]

    @property
    def deployment(self) -> dict[str, Any]:
        return dict(json.loads((self.deployments / "31337.json").read_text()))

    def pm(
        self,
        *args: str,
        key: LocalAccount | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 90,
    ) -> Result:
        e = dict(self.base_env)
        if key is not None:
            e["PM_PRIVATE_KEY"] = "0x" + bytes(key.key).hex()
        e.update(env or {})
        p = subprocess.run(
            [sys.executable, "-m", "scripts.cli", *args],
            cwd=REPO_ROOT,
            env=e,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(p.returncode, p.stdout, p.stderr)

    def inproc(
        self, *args: str, key: LocalAccount | None = None, env: dict[str, str] | None = None
    ) -> Result:
        """``scripts.cli.main(args)`` in this process (same code path as the entry point,
        without the ~2-4 s interpreter start), with the same environment as :meth:`pm`."""
        from scripts.cli import main

        e = dict(self.base_env)
        if key is not None:
            e["PM_PRIVATE_KEY"] = "0x" + bytes(key.key).hex()
        e.update(env or {})
        saved = dict(os.environ)
        out, err = io.StringIO(), io.StringIO()
        try:
            os.environ.clear()
            os.environ.update(e)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return Result(code, out.getvalue(), err.getvalue())

    def ok_at(self, deployment: Path, api_url: str, *args: str, **kw: Any) -> Result:
        """``pm args`` in process against another deployment file and keeper API, which
        must succeed."""
        env = {"PM_API_URL": api_url}
        r = self.inproc(*args, "--deployment", str(deployment), env=env, **kw)
        assert r.code == 0, f"pm {' '.join(args)} failed ({r.code}): {r.err}\n{r.out}"
        return r

    def ok(self, *args: str, **kw: Any) -> Result:
        r = self.pm(*args, **kw)
        assert r.code == 0, f"pm {' '.join(args)} failed ({r.code}): {r.err}\n{r.out}"
        assert "Traceback" not in r.err
        return r

    def fails(self, *args: str, match: str, sub: bool = False, **kw: Any) -> Result:
        """``pm args`` must exit non-zero with one line on stderr containing ``match``
        (in process, or through a subprocess with ``sub=True``)."""
        r = self.pm(*args, **kw) if sub else self.inproc(*args, **kw)
        assert r.code != 0, f"pm {' '.join(args)} unexpectedly succeeded: {r.out}"
        assert "Traceback" not in r.err, r.err
        lines = [ln for ln in r.err.splitlines() if ln.strip()]
        assert len(lines) == 1, f"expected one stderr line, got: {r.err!r}"
        assert match.lower() in lines[0].lower(), f"{match!r} not in {lines[0]!r}"
        return r


SIGNER = key("signer")


@dataclass
class KeeperHandle:
    keeper: Any
    url: str

    def epoch(self) -> int:
        result = self.keeper.pipeline.run_epoch()
        assert result.status == "mined", result
        return int(result.epoch)


def start_keeper(node_url: str, deployment: Path, signer: LocalAccount, data_dir: Path) -> Any:
    """helper-7's keeper assembled in process (``keeper.daemon.build_keeper``: real pipeline,
    sim feed seed 7) for ``deployment``, signing with ``signer``, its proof API started on a
    free port. The caller stops the API and closes the store."""
    from keeper.config import load_config
    from keeper.daemon import build_keeper

    config = load_config(
        None,
        {
            "PM_RPC_URL": node_url,
            "PM_DEPLOYMENTS_FILE": str(deployment),
            "PM_SIGNER_KEYS": "0x" + bytes(signer.key).hex(),
            "PM_DATA_DIR": str(data_dir),
            "PM_API_PORT": "0",
            "PM_FEED_SEED": "7",
        },
    )
    k = build_keeper(config, serve_metrics=False)
    k.api.start()
    return k
