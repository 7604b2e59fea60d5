"""Errors of the build side (``scripts.toolchain``), under one root."""

from __future__ import annotations


class BuildError(Exception):
    """Root of every error raised by ``scripts.toolchain``."""


class ToolchainError(BuildError):
    """A pinned tool (solc shim, anvil, forge) is missing: run ``make setup``."""


class CompileError(BuildError):
    """The contracts do not compile, or a requested contract does not exist."""
