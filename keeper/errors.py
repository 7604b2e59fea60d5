"""Errors of the keeper side, under one root, and readable decoding of vault reverts."""

from __future__ import annotations


class KeeperError(Exception):
    """Root of every error raised by ``keeper``."""


class ToolchainError(KeeperError):
    """A pinned tool (solc shim, anvil, forge) is missing: run ``make setup``."""


class CompileError(KeeperError):
    """The contracts do not compile, or a requested contract does not exist."""


class AttestationError(KeeperError):
    """A leaf, tree, epoch or quote is malformed, or cannot be signed as asked."""
