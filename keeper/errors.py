"""Every error the keeper raises, under one root: :class:`KeeperError`.

A caller catches the whole keeper with one ``except KeeperError``. Each error carries the
value that failed (the field name, the epoch, the transaction hash) as attributes, not only
in its message, so that a caller can branch on it and a log line can quote it. The classes
are grouped by the module that raises them; the decoding of vault reverts into a
:class:`VaultRevert` is in ``keeper/revert.py``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keeper.revert import DecodedRevert

__all__ = [
    "AttestationError",
    "ChainCallError",
    "ChainMismatchError",
    "ChainResetError",
    "ConfigError",
    "EpochConflictError",
    "EpochRefusedError",
    "FeeCapExceededError",
    "FeedError",
    "HttpError",
    "KeeperError",
    "LeafSourceError",
    "NonceError",
    "RpcUnavailableError",
    "SignerError",
    "SignerRefusedError",
    "SimulationError",
    "StoreError",
    "TxError",
    "TxRevertedError",
    "TxTimeoutError",
    "UnauthenticatedError",
    "VaultRevert",
    "VerifyError",
    "ViewError",
]


class KeeperError(Exception):
    """Root of every error raised by ``keeper``."""


# --------------------------------------------------------------------------- config, feeds


class ConfigError(KeeperError):
    """A configuration value is missing or invalid; ``field`` names it (``chain.rpc_url``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class FeedError(KeeperError):
    """The market feed cannot give a usable state.

    ``field`` names the offending value (``BTC.spot``, ``ETH.smiles[0].atm_vol``,
    ``tokens.GOV``) when one value is at fault, or ``None`` when the feed as a whole failed
    (data exhausted, provider down). The keeper refuses the epoch and keeps the last good
    one (docs/security.md §4, "the keeper posts numbers from bad input").
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


# --------------------------------------------------------------------------- store, chain


class StoreError(KeeperError):
    """The sqlite store refused an operation or holds inconsistent data."""


class EpochConflictError(StoreError):
    """A second, different root was offered for an epoch number that already has one.

    Posting two roots for one epoch would let two different sets of leaves be valid; the
    store refuses the second one for ever (docs/security.md §12, "a second root for one epoch
    number").
    """

    def __init__(self, epoch: int, stored_root: str, offered_root: str) -> None:
        self.epoch = epoch
        self.stored_root = stored_root
        self.offered_root = offered_root
        super().__init__(
            f"epoch {epoch} already has root {stored_root}; "
            f"refusing a different root {offered_root}"
        )


class ChainMismatchError(StoreError):
    """The store belongs to another chain (other chain id, genesis block or vault).

    Typically Anvil was restarted with an empty chain: the stored epochs and cursor no
    longer describe this chain, and the keeper must not silently post over them.
    """


class ChainResetError(ChainMismatchError):
    """The node no longer holds the chain the store describes (reset, or wrong node)."""


class ChainCallError(KeeperError):
    """The node answered a read with an error (not a connection problem)."""


# --------------------------------------------------------------------------- transactions


class TxError(KeeperError):
    """A transaction could not be simulated, sent or confirmed."""


class RpcUnavailableError(TxError):
    """The RPC endpoint stayed unreachable after every retry of the backoff policy."""


class SimulationError(TxError):
    """``eth_call`` / ``eth_estimateGas`` says the transaction would revert; it was not sent.

    ``data`` is the raw revert data (hex string, may be ``None``) for decoding against the
    vault's ABI.
    """

    def __init__(self, message: str, *, data: str | None = None) -> None:
        self.data = data
        super().__init__(message)


class TxRevertedError(TxError):
    """The transaction was mined with status 0."""

    def __init__(self, tx_hash: str, gas_used: int) -> None:
        self.tx_hash = tx_hash
        self.gas_used = gas_used
        super().__init__(f"transaction {tx_hash} reverted (gas used {gas_used})")


class TxTimeoutError(TxError):
    """No receipt within the timeout; the transaction may still be pending under ``tx_hash``."""

    def __init__(self, tx_hash: str, nonce: int, waited_seconds: float) -> None:
        self.tx_hash = tx_hash
        self.nonce = nonce
        self.waited_seconds = waited_seconds
        super().__init__(
            f"transaction {tx_hash} (nonce {nonce}) not mined after {waited_seconds:.1f} s"
        )


class FeeCapExceededError(TxError):
    """The fee the network needs is above the configured cap; nothing was sent."""

    def __init__(self, needed_wei: int, cap_wei: int) -> None:
        self.needed_wei = needed_wei
        self.cap_wei = cap_wei
        super().__init__(f"max fee per gas needed {needed_wei} wei is above the cap {cap_wei} wei")


class NonceError(TxError):
    """The node rejected our nonce even after a resync."""


class VaultRevert(KeeperError):
    """A vault call reverted; ``str(exc)`` is the readable message (``keeper/revert.py``
    decodes it)."""

    def __init__(self, decoded: DecodedRevert, data: bytes) -> None:
        super().__init__(decoded.message)
        self.decoded = decoded
        self.name = decoded.name
        self.args_by_name: dict[str, Any] = dict(decoded.args)
        self.data = data


# --------------------------------------------------------------------------- epochs


class AttestationError(KeeperError):
    """A leaf, tree, epoch or quote is malformed, or cannot be signed as asked."""


class EpochRefusedError(KeeperError):
    """The epoch's inputs are unusable; ``reason`` is a short tag (``feed``, ``input``)."""

    def __init__(self, message: str, *, reason: str = "input") -> None:
        self.reason = reason
        super().__init__(message)


class SignerError(KeeperError):
    """Not enough valid signatures for the quorum (the reasons are in the message)."""


class SignerRefusedError(SignerError):
    """A signer service refused the header under its own rules."""


class UnauthenticatedError(SignerRefusedError):
    """The request is not signed by an allowed keeper (HTTP 401)."""


class VerifyError(KeeperError):
    """The epoch cannot be verified (unknown epoch, no market snapshot)."""


# --------------------------------------------------------------------------- liquidator


class LeafSourceError(KeeperError):
    """The leaf source cannot serve the epoch the vault holds (lagging, unreachable)."""


# --------------------------------------------------------------------------- API, views


class HttpError(KeeperError):
    """An API answer other than 200, with its one-line reason (the body's ``error``)."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        self.status = status
        super().__init__(message)


class ViewError(KeeperError):
    """A view that cannot be answered from what the keeper holds (no mined epoch yet, an
    unknown instrument in a what-if leg): the API answers 404 or 400 with the message."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        self.not_found = not_found
        super().__init__(message)
