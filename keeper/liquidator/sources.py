"""Where the liquidator reads the ACCOUNT leaves of an epoch (one per subaccount id): the
keeper's sqlite store (same machine), its proof API (one ``/proof`` request per subaccount
with positions) or its watch list (``GET /liquidatable``: one request for the subaccounts
whose leaf is below maintenance, or within a margin of it). Every source serves only the
epoch whose root the vault holds; the bot checks each proof against that root again.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import requests

from keeper.attestation import MarginProof
from keeper.errors import LeafSourceError
from keeper.store import Store

__all__ = ["ApiLeafSource", "LeafSource", "StoreLeafSource", "WatchListLeafSource"]


class LeafSource(abc.ABC):
    """Where the bot reads the ACCOUNT leaves of an epoch."""

    @abc.abstractmethod
    def account_leaves(
        self, epoch: int, root: bytes, accounts: Sequence[int]
    ) -> dict[int, MarginProof]:
        """Leaves of subaccounts ``accounts`` in ``epoch`` (whose root must be ``root``),
        keyed by id; subaccounts without a leaf are absent. Raises
        :class:`~keeper.errors.LeafSourceError` if the source does not hold that epoch with
        that root."""


class StoreLeafSource(LeafSource):
    """The keeper's sqlite store (same machine; sqlite WAL allows a reader beside the keeper)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def account_leaves(
        self, epoch: int, root: bytes, accounts: Sequence[int]
    ) -> dict[int, MarginProof]:
        rec = self.store.get_epoch(epoch)
        if rec is None or rec.root.lower() != "0x" + root.hex():
            raise LeafSourceError(f"store has no epoch {epoch} with root 0x{root.hex()}")
        out: dict[int, MarginProof] = {}
        for a in accounts:  # one binary search and log2(n) tree rows each (keeper/store.py)
            r = self.store.get_leaf(epoch, "account", int(a))
            if r is not None:
                out[int(a)] = MarginProof.from_json(r.to_dict())
        return out


class ApiLeafSource(LeafSource):
    """The keeper's proof API (``GET /proof/<id>?epoch=n``), one request per subaccount that
    needs a leaf (only subaccounts with positions)."""

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
        self, epoch: int, root: bytes, accounts: Sequence[int]
    ) -> dict[int, MarginProof]:
        r = self._get(f"/epoch/{epoch}")
        if r.status_code != 200:
            raise LeafSourceError(f"proof API has no epoch {epoch} ({r.status_code})")
        if str(r.json().get("root", "")).lower() != "0x" + root.hex():
            raise LeafSourceError(f"proof API epoch {epoch} has another root")
        out: dict[int, MarginProof] = {}
        for a in accounts:
            r = self._get(f"/proof/{int(a)}?epoch={epoch}")
            if r.status_code == 404:
                continue
            if r.status_code != 200:
                raise LeafSourceError(
                    f"proof API: {r.status_code} for subaccount {a}: {r.text[:200]}"
                )
            out[int(a)] = MarginProof.from_json(r.json()["leaf"])
        return out

    def close(self) -> None:
        self._session.close()


class WatchListLeafSource(ApiLeafSource):
    """The keeper's watch list, ``GET /liquidatable?margin_usd=`` (keeper/api.py): one
    request per tick, only the leaves whose MM surplus ``equity - mm`` is below
    ``margin_usd`` (USD; None: the keeper's ``[api] liquidatable_margin_usd``). A
    subaccount whose bound fell since the snapshot (a withdrawal lowers ``cumHi``) is
    missed unless the margin covers the fall, so a bot that must not miss one keeps a
    margin, or uses :class:`ApiLeafSource`."""

    def __init__(self, url: str, *, margin_usd: float | None = None, timeout: float = 5.0) -> None:
        super().__init__(url, timeout=timeout)
        self.margin_usd = margin_usd

    def account_leaves(
        self, epoch: int, root: bytes, accounts: Sequence[int]
    ) -> dict[int, MarginProof]:
        margin = "" if self.margin_usd is None else f"&margin_usd={self.margin_usd:.6f}"
        r = self._get(f"/liquidatable?limit=100000{margin}")
        if r.status_code != 200:
            raise LeafSourceError(f"keeper watch list: {r.status_code}: {r.text[:200]}")
        body = r.json()
        if int(body["epoch"]) != epoch or str(body["root"]).lower() != "0x" + root.hex():
            raise LeafSourceError(
                f"keeper watch list is of epoch {body['epoch']}, the vault holds {epoch}"
            )
        wanted = set(accounts)
        out: dict[int, MarginProof] = {}
        for entry in body["accounts"]:
            proof = MarginProof.from_json(entry["leaf"])
            if proof.leaf.account in wanted:
                out[proof.leaf.account] = proof
        return out
