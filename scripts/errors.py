"""Errors raised only by ``scripts`` (the ``pm`` CLI, deploy, demo), under one root.

Errors of the keeper machinery the scripts call stay keeper errors
(:class:`keeper.errors.KeeperError`); ``pm`` prints both kinds as one line
(``scripts/cli.py:main``).
"""

from __future__ import annotations

__all__ = [
    "AnvilError",
    "BuildError",
    "CliError",
    "CompileError",
    "DeploymentError",
    "ScenarioError",
    "ScriptError",
    "StaleLeafError",
    "ToolchainError",
    "TxSentError",
]


class ScriptError(Exception):
    """Root of every error raised by ``scripts``."""


class CliError(ScriptError):
    """A user-facing failure: ``str(exc)`` is the one-line reason printed on stderr."""


class TxSentError(CliError):
    """A transaction was sent and then failed or was not confirmed: never sent again by a
    retry (it may still be mined)."""


class StaleLeafError(CliError):
    """The keeper API's leaf is of another root than the vault's: the keeper is still
    recording the epoch the vault just accepted (a moment), or is behind."""


class DeploymentError(ScriptError):
    """A deployment or setup transaction failed."""


class AnvilError(ScriptError):
    """Anvil did not start or did not answer RPC in time."""


class ScenarioError(ScriptError):
    """The scenario could not go on, or its outcome is wrong: ``str(exc)`` says why."""


# --------------------------------------------------------------------------- build side


class BuildError(ScriptError):
    """Root of the build side's errors (``scripts/toolchain``: compile, ABI export)."""


class ToolchainError(BuildError):
    """A pinned tool (solc shim, anvil, forge) is missing: run ``make setup``."""


class CompileError(BuildError):
    """The contracts do not compile, or a requested contract does not exist."""
