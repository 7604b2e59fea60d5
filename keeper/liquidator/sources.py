"""Where the liquidator reads the ACCOUNT leaves of an epoch: the keeper's sqlite store
(same machine) or its proof API. Every source serves only the epoch whose root the vault
holds; the bot checks each proof against that root again.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import requests
from eth_utils.address import to_checksum_address

from keeper.attestation import AccountLeaf, MarginProof
from keeper.errors import LeafSourceError
from keeper.pipeline import margin_proof_from_json
from keeper.store import Store

__all__ = ["ApiLeafSource", "LeafSource", "StoreLeafSource", "empty_proof"]


def empty_proof(account: str) -> MarginProof:
    """The proof to pass for an account without a leaf: the vault ignores it when the account
    holds no positions (it is valued on chain)."""
    return MarginProof(AccountLeaf(account, 0, 0, 0, 0, 0, 0))


class LeafSource(abc.ABC):
    """Where the bot reads the ACCOUNT leaves of an epoch."""

    @abc.abstractmethod
    def account_leaves(
        self, epoch: int, root: bytes, accounts: Sequence[str]
    ) -> dict[str, MarginProof]:
        """Leaves of ``accounts`` in ``epoch`` (whose root must be ``root``), keyed by
        lowercase address; accounts without a leaf are absent. Raises
        :class:`~keeper.errors.LeafSourceError` if the source does not hold that epoch with
        that root."""


class StoreLeafSource(LeafSource):
    """The keeper's sqlite store (same machine; sqlite WAL allows a reader beside the keeper)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def account_leaves(
        self, epoch: int, root: bytes, accounts: Sequence[str]
    ) -> dict[str, MarginProof]:
        rec = self.store.get_epoch(epoch)
        if rec is None or rec.root.lower() != "0x" + root.hex():
            raise LeafSourceError(f"store has no epoch {epoch} with root 0x{root.hex()}")
        wanted = {a.lower() for a in accounts}
        return {
            r.key: margin_proof_from_json(r.to_dict())
            for r in self.store.get_leaves(epoch, "account")
            if r.key in wanted
        }


class ApiLeafSource(LeafSource):
    """The keeper's proof API (``GET /account/<address>?epoch=n``), one request per account
    that needs a leaf (only accounts with positions, and the bot itself)."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def _get(self, path: str) -> requests.Response:
        try:
            return self._session.get(f"{self.url}{path}", timeout=self.timeout)
        except requests.RequestException as exc:
            raise LeafSourceError(f"proof API {self.url} unreachable: {exc}") from exc

    def account_leaves(
        self, epoch: int, root: bytes, accounts: Sequence[str]
    ) -> dict[str, MarginProof]:
        r = self._get(f"/epoch/{epoch}")
        if r.status_code != 200:
            raise LeafSourceError(f"proof API has no epoch {epoch} ({r.status_code})")
        if str(r.json().get("root", "")).lower() != "0x" + root.hex():
            raise LeafSourceError(f"proof API epoch {epoch} has another root")
        out: dict[str, MarginProof] = {}
        for a in accounts:
            r = self._get(f"/account/{to_checksum_address(a)}?epoch={epoch}")
            if r.status_code == 404:
                continue
            if r.status_code != 200:
                raise LeafSourceError(f"proof API: {r.status_code} for {a}: {r.text[:200]}")
            out[a.lower()] = margin_proof_from_json(r.json()["leaf"])
        return out

    def close(self) -> None:
        self._session.close()
