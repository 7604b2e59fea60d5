"""Read-only HTTP API serving epochs, leaves and Merkle proofs from the store.

Standard library only (``ThreadingHTTPServer`` in a daemon thread); every response is
JSON except ``/metrics``. Integers of leaves are decimal strings (full precision).

=====================================  =====================================================
``GET /health``                        ``{"status": "ok"|"degraded", "latestEpoch",
                                       "latestMinedEpoch", "lastMinedTimestamp",
                                       "ageSeconds", ...}``; 503 when degraded
``GET /epoch/latest``                  the last MINED epoch (the root the vault holds)
``GET /epoch/<n>``                     epoch ``n`` in any status
``GET /epoch/<n>/inputs``              the dispute inputs epoch ``n`` committed (its header's
                                      ``inputsHash``; docs/protocol.md §11)
``GET /epoch/<n>/market``              the ``MarketState`` JSON epoch ``n`` was computed
                                       from (``keeper verify``'s input)
``GET /proof/<id>[?epoch=n]``          ``{"epoch", "root", "account", "leaf": {kind, key,
                                       fields, leaf, proof}}``: subaccount ``id``'s ACCOUNT
                                       leaf in the last mined epoch (or ``n``)
``GET /instrument/<id>[?epoch=n]``     ``{"epoch", "root", "leaf"}`` for an instrument
``GET /accounts[?owner=<address>]``    ``{"total", "limit", "offset", "epoch", "accounts":
``[&limit=n][&offset=k]``              [{"account", "owner", "createdBlock", "latest"}]}``:
                                       subaccounts (every one, or the owner's) as the
                                       indexer last read them, lowest id first, a page of
                                       ``limit`` (100, at most 1000) from ``offset``;
                                       ``latest``: equity / im / mm of the leaf in the last
                                       mined epoch (null: none)
``GET /liquidatable[?margin_usd=x]``   ``{"epoch", "root", "snapshotBlock", "marginUsd",
``[&limit=n]``                         "marginWad", "accounts": [{"account",
                                       "mmSurplusHi", "leaf"}]}``: subaccounts whose MM
                                       surplus upper bound in the last mined epoch is below
                                       ``margin_usd`` (default ``[api]
                                       liquidatable_margin_usd``, 0: below zero), most
                                       negative first, at most ``limit`` (1000)
``GET /market[?epoch=n]``              ``{"epoch", "root", "market"}``: the stored market
                                       snapshot the epoch was computed on
``GET /openapi.json``                  the OpenAPI 3.1 document of every route served
``GET /metrics``                       Prometheus text, when metrics are attached
=====================================  =====================================================

``/liquidatable`` is for liquidators that do not index the chain. ``mmSurplusHi`` is
``equity - mm`` of the leaf (WAD USD), the vault's bound ``(equity - mm) + (cumHi_now -
leaf.cumHi)`` at the snapshot block (docs/protocol.md §5): a loss booked since (funding,
a trade) moves it on chain only, so the list is where to look, ``checkLiquidation`` is
what decides. A leaf without a maintenance requirement (no positions) is never listed.
Each ``leaf`` is the ``/proof`` leaf: ``MarginProof.from_json(leaf)`` is the
``liquidate`` / ``checkLiquidation`` argument (keeper/liquidator/bot.py).

The dashboard, the front-end endpoints and ``POST /simulate`` are in keeper/web/, handed
in as ``extra`` (consulted first). A request is answered only when its method and path are
in keeper/openapi.py's route table (404 / 405 otherwise), the table ``/openapi.json`` is
built from. With ``cors_origins`` set (``[api] cors_origins``) an allowed ``Origin`` gets
``Access-Control-Allow-Origin`` and ``OPTIONS`` preflights are answered; by default none.

Ids are JSON integers in ``/accounts`` and ``"account"``; a leaf's ``fields`` hold decimal
strings (full precision for any client, what the proof hashes) and its ``decimal`` the WAD
fields as JSON numbers; other WAD amounts are ``{"wad": "<decimal string>", "decimal"}``.
Errors: 400 (malformed address / id / epoch / page), 404 (no such route or epoch, an
unknown subaccount id, or a subaccount created after the epoch's snapshot block: it has a
leaf from the next epoch on), 405 (a method the path has no route for); the body is
``{"error": "<one line>"}``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

from eth_utils.address import to_checksum_address

from keeper.attestation import LeafRecord
from keeper.errors import HttpError
from keeper.metrics import KeeperMetrics
from keeper.openapi import document, match
from keeper.store import EpochRecord, Store
from risk_engine.units import WAD, to_wad_up

__all__ = ["ExtraRoutes", "HttpError", "ProofApi", "Reply"]

log = logging.getLogger("keeper.api")

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_UINT = re.compile(r"^[0-9]{1,10}$")
_UINT256 = re.compile(r"^[0-9]{1,78}$")
# a POST body larger than this is refused unread (a what-if request is a few legs)
_MAX_BODY_BYTES = 64 * 1024
# /liquidatable answers at most this many subaccounts by default (a proof is ~1 KB)
_LIQUIDATABLE_LIMIT = 1000
_DECIMAL_USD = re.compile(r"^[0-9]{1,15}(\.[0-9]{1,18})?$")
# /accounts pages: a row with its leaf numbers is ~300 bytes
_ACCOUNTS_LIMIT, _ACCOUNTS_MAX_LIMIT = 100, 1000
# the leaf fields in WAD (docs/protocol.md §1), given again as JSON numbers in ``decimal``
_WAD_FIELDS = (
    "cumLo",
    "cumHi",
    "equity",
    "im",
    "mm",
    "mark",
    "lossPerUnitLong",
    "lossPerUnitShort",
)


_HttpError = HttpError

#: ``(status, body, content_type)``: a JSON-able body, or bytes sent as they are.
Reply = tuple[HTTPStatus, Any, str]


class ExtraRoutes(Protocol):
    """More routes, consulted before the proof routes (keeper/web/)."""

    def handle(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: bytes
    ) -> Reply | None:
        """The reply, or None when no route of these matches. Raises :class:`HttpError`."""
        ...


class ProofApi:
    """The proof API over a :class:`Store`.

    Parameters
    ----------
    store : Store
    host, port : str, int
        Listen address; ``port=0`` takes a free port (see :attr:`port` after :meth:`start`).
    health : callable, optional
        Extra health fields (e.g. ``{"rpc": "ok", "lastError": ...}``); a key ``"ok"`` set
        to False marks the keeper degraded.
    max_epoch_age : float, optional
        Seconds; a last mined epoch older than this marks the keeper degraded.
    metrics : KeeperMetrics, optional
        Also serve ``/metrics`` here.
    extra : ExtraRoutes, optional
        More routes (the dashboard and front-end API, keeper/web/), consulted first.
    cors_origins : sequence of str
        Origins (or ``"*"``) allowed to read answers from a browser; empty: no CORS.
    liquidatable_margin_usd : float
        ``GET /liquidatable`` lists MM surplus upper bounds below this (USD, >= 0).
    """

    def __init__(
        self,
        store: Store,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        health: Callable[[], Mapping[str, Any]] | None = None,
        max_epoch_age: float | None = None,
        metrics: KeeperMetrics | None = None,
        clock: Callable[[], float] = time.time,
        extra: ExtraRoutes | None = None,
        cors_origins: Sequence[str] = (),
        liquidatable_margin_usd: float = 0.0,
    ) -> None:
        self.store = store
        self.liquidatable_margin_usd = liquidatable_margin_usd
        self.host = host
        self._port = port
        self._health = health
        self.max_epoch_age = max_epoch_age
        self.metrics = metrics
        self._clock = clock
        self.extra = extra
        self.cors_origins = tuple(cors_origins)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def groups(self) -> frozenset[str]:
        """The route groups of keeper/openapi.py this server answers."""
        return frozenset(
            {"proof"}
            | ({"metrics"} if self.metrics is not None else set())
            | ({"web"} if self.extra is not None else set())
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1]) if self._server else self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> int:
        """Bind and serve in a daemon thread; returns the port."""
        if self._server is not None:
            return self.port
        api = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "pm-keeper"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                api._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                api._handle(self, "POST")

            def do_OPTIONS(self) -> None:  # noqa: N802 - a browser's CORS preflight
                api._preflight(self)

            def _refuse(self) -> None:  # no route has these methods: 405 or 404
                api._handle(self, self.command)

            do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                log.debug("http %s", format % args)

        self._server = ThreadingHTTPServer((self.host, self._port), Handler)
        self._server.daemon_threads = True
        server = self._server
        self._thread = threading.Thread(
            # A short poll interval makes stop() return quickly.
            target=lambda: server.serve_forever(poll_interval=0.05),
            name="proof-api",
            daemon=True,
        )
        self._thread.start()
        log.info("api listening", extra={"url": self.url})
        return self.port

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ProofApi:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- routing

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: HTTPStatus,
        body: Any,
        content_type: str = "application/json",
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, sort_keys=True).encode()
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Cache-Control", "no-store")
        self._cors_headers(h)
        h.end_headers()
        h.wfile.write(data)

    def _allowed_origin(self, h: BaseHTTPRequestHandler) -> str | None:
        origin = h.headers.get("Origin")
        if not origin or not self.cors_origins:
            return None
        if "*" in self.cors_origins:
            return "*"
        return origin if origin in self.cors_origins else None

    def _cors_headers(self, h: BaseHTTPRequestHandler) -> None:
        origin = self._allowed_origin(h)
        if origin is not None:
            h.send_header("Access-Control-Allow-Origin", origin)
            h.send_header("Vary", "Origin")

    def _preflight(self, h: BaseHTTPRequestHandler) -> None:
        if self._allowed_origin(h) is None:
            self._send(h, HTTPStatus.METHOD_NOT_ALLOWED, {"error": "CORS is not enabled"})
            return
        h.send_response(HTTPStatus.NO_CONTENT)
        self._cors_headers(h)
        h.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        h.send_header("Access-Control-Allow-Headers", "Content-Type")
        h.send_header("Access-Control-Max-Age", "600")
        h.send_header("Content-Length", "0")
        h.end_headers()

    def _handle(self, h: BaseHTTPRequestHandler, method: str = "GET") -> None:
        url = urlparse(h.path)
        parts = [p for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        content_type = "application/json"
        try:
            # only the routes of the table are answered: /openapi.json lists them all
            route, path_known = match(method, parts, self.groups)
            if route is None and path_known:
                raise _HttpError(
                    HTTPStatus.METHOD_NOT_ALLOWED, f"no {method} route /{'/'.join(parts)}"
                )
            if route is None:
                raise _HttpError(HTTPStatus.NOT_FOUND, self._no_route(parts))
            body_in = self._read_body(h) if method == "POST" else b""
            reply = None if self.extra is None else self.extra.handle(method, parts, query, body_in)
            if reply is not None:
                status, body, content_type = reply
            elif parts == ["metrics"] and self.metrics is not None:
                self._send(h, HTTPStatus.OK, self.metrics.render(), "text/plain; version=0.0.4")
                return
            else:
                status, body = self._route(parts, query)
        except _HttpError as exc:
            status, body, content_type = exc.status, {"error": str(exc)}, "application/json"
        except Exception as exc:  # the API must answer, never kill its thread
            log.exception("api error")
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": type(exc).__name__}
            content_type = "application/json"
        self._send(h, status, body, content_type)

    @staticmethod
    def _read_body(h: BaseHTTPRequestHandler) -> bytes:
        try:
            n = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            raise _HttpError(HTTPStatus.BAD_REQUEST, "Content-Length is not a number") from None
        if n > _MAX_BODY_BYTES:
            raise _HttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body of {n} bytes > {_MAX_BODY_BYTES}"
            )
        return h.rfile.read(n) if n > 0 else b""

    def _route(self, parts: list[str], query: dict[str, list[str]]) -> tuple[HTTPStatus, Any]:
        if parts == ["health"]:
            return self._health_body()
        if len(parts) == 2 and parts[0] == "epoch":
            if parts[1] == "latest":
                rec = self.store.latest_epoch(status="mined")
                if rec is None:
                    raise _HttpError(HTTPStatus.NOT_FOUND, "no epoch mined yet")
            else:
                rec = self.store.get_epoch(self._uint(parts[1], "epoch"))
                if rec is None:
                    raise _HttpError(HTTPStatus.NOT_FOUND, f"no epoch {parts[1]}")
            return HTTPStatus.OK, self._epoch_body(rec)
        if len(parts) == 3 and parts[0] == "epoch" and parts[2] == "inputs":
            n = self._uint(parts[1], "epoch")
            inputs = self.store.get_dispute_inputs(n)
            if inputs is None:
                raise _HttpError(
                    HTTPStatus.NOT_FOUND,
                    f"no dispute inputs for epoch {n} (posted with the challenge window off?)",
                )
            return HTTPStatus.OK, json.loads(inputs)
        if len(parts) == 3 and parts[0] == "epoch" and parts[2] == "market":
            n = self._uint(parts[1], "epoch")
            market = self.store.get_market_snapshot(n)
            if market is None:
                raise _HttpError(HTTPStatus.NOT_FOUND, f"no market snapshot for epoch {n}")
            return HTTPStatus.OK, json.loads(market)
        if len(parts) == 2 and parts[0] == "proof":
            return HTTPStatus.OK, self._proof_body(self._account_id(parts[1]), query)
        if len(parts) == 2 and parts[0] == "instrument":
            key = self._uint(parts[1], "instrument")
            rec = self._epoch_from_query(query)
            leaf = self.store.get_leaf(rec.number, "instrument", key)
            if leaf is None:
                raise _HttpError(
                    HTTPStatus.NOT_FOUND, f"no instrument leaf for {key} in epoch {rec.number}"
                )
            return HTTPStatus.OK, {"epoch": rec.number, "root": rec.root, "leaf": _leaf(leaf)}
        if parts == ["accounts"]:
            return HTTPStatus.OK, self._accounts_body(query)
        if parts == ["liquidatable"]:
            return HTTPStatus.OK, self._liquidatable_body(query)
        if parts == ["market"]:
            return HTTPStatus.OK, self._market_body(query)
        if parts == ["openapi.json"]:
            return HTTPStatus.OK, document(self.groups)
        raise _HttpError(HTTPStatus.NOT_FOUND, self._no_route(parts))

    @staticmethod
    def _no_route(parts: list[str]) -> str:
        if parts and parts[0] == "account":
            return (
                f"no route /{'/'.join(parts)}: leaves are per subaccount, GET /proof/<id> "
                "(GET /accounts?owner=<address> lists an owner's ids)"
            )
        return f"no route /{'/'.join(parts)} (GET /openapi.json lists every route)"

    @staticmethod
    def _account_id(text: str) -> int:
        if not _UINT256.match(text) or int(text) >= 2**256:
            raise _HttpError(
                HTTPStatus.BAD_REQUEST, f"subaccount id must be a uint256 in decimal: {text!r}"
            )
        return int(text)

    def _proof_body(self, account: int, query: dict[str, list[str]]) -> dict[str, Any]:
        rec = self._epoch_from_query(query)
        leaf = self.store.get_leaf(rec.number, "account", account)
        if leaf is None:
            known = self.store.get_subaccount(account)
            if known is None:
                raise _HttpError(
                    HTTPStatus.NOT_FOUND,
                    f"unknown subaccount {account}: the vault has not created it (as far as "
                    "the keeper indexed)",
                )
            why = (
                f": created at block {known.created_block}, after the epoch's snapshot block "
                f"{rec.snapshot_block}; the next epoch attests it"
                if known.created_block > rec.snapshot_block
                else ""
            )
            raise _HttpError(
                HTTPStatus.NOT_FOUND, f"subaccount {account} has no leaf in epoch {rec.number}{why}"
            )
        return {
            "epoch": rec.number,
            "root": rec.root,
            "account": account,
            "leaf": _leaf(leaf),
        }

    def _liquidatable_body(self, query: dict[str, list[str]]) -> dict[str, Any]:
        # rounded up: a margin is a watch list's width, wider is the safe side
        margin_usd = self.liquidatable_margin_usd
        margin_wad = int(to_wad_up(margin_usd, field="margin_usd"))
        if "margin_usd" in query:
            text = query["margin_usd"][0]
            if not _DECIMAL_USD.match(text):
                raise _HttpError(
                    HTTPStatus.BAD_REQUEST, f"margin_usd must be a non-negative decimal: {text!r}"
                )
            # exact from the decimal text (18 places at most: nothing to round)
            whole, _, frac = text.partition(".")
            margin_usd, margin_wad = float(text), int(whole) * WAD + int(frac.ljust(18, "0"))
        limit = _LIQUIDATABLE_LIMIT
        if "limit" in query:
            limit = self._uint(query["limit"][0], "limit")
        rec = self.store.latest_epoch(status="mined")
        if rec is None:
            raise _HttpError(HTTPStatus.NOT_FOUND, "no epoch mined yet")
        leaves = self.store.epoch_leaves(rec.number)
        if leaves is None:
            raise _HttpError(HTTPStatus.NOT_FOUND, f"epoch {rec.number} has no stored leaves")
        surplus = leaves.mm_surplus()
        rows = sorted(
            (i for i, s in enumerate(surplus) if s < margin_wad and leaves.mm(i) > 0),
            key=lambda i: surplus[i],
        )[:limit]
        accounts = []
        for i in rows:
            record = leaves.record("account", i)
            accounts.append(
                {
                    "account": int(record.key),
                    "mmSurplusHi": {"wad": str(surplus[i]), "decimal": surplus[i] / WAD},
                    "leaf": _leaf(record),
                }
            )
        return {
            "epoch": rec.number,
            "root": rec.root,
            "snapshotBlock": rec.snapshot_block,
            "marginUsd": margin_usd,
            "marginWad": str(margin_wad),
            "accounts": accounts,
        }

    def _accounts_body(self, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = self._uint(query.get("limit", [str(_ACCOUNTS_LIMIT)])[0], "limit")
        offset = self._uint(query.get("offset", ["0"])[0], "offset")
        if not 1 <= limit <= _ACCOUNTS_MAX_LIMIT:
            raise _HttpError(
                HTTPStatus.BAD_REQUEST, f"limit must be 1..{_ACCOUNTS_MAX_LIMIT}, got {limit}"
            )
        body: dict[str, Any] = {}
        if "owner" in query:
            owner = query["owner"][0]
            if not _ADDRESS.match(owner):
                raise _HttpError(
                    HTTPStatus.BAD_REQUEST, f"owner must be a 0x address, got {owner!r}"
                )
            body["owner"] = to_checksum_address(owner)
            every = self.store.subaccounts_of(owner)
            total, rows = len(every), every[offset : offset + limit]
        else:
            total = self.store.count_subaccounts()
            rows = self.store.subaccounts(limit=limit, offset=offset)
        mined = self.store.latest_epoch(status="mined")
        accounts = []
        for r in rows:
            leaf = (
                None if mined is None else self.store.get_leaf(mined.number, "account", r.account)
            )
            accounts.append(
                {
                    **r.to_dict(),
                    "latest": None
                    if leaf is None
                    else {k: _wad(int(leaf.fields[k])) for k in ("equity", "im", "mm")},
                }
            )
        body.update(
            {
                "total": total,
                "limit": limit,
                "offset": offset,
                "epoch": None if mined is None else mined.number,
                "accounts": accounts,
            }
        )
        return body

    def _market_body(self, query: dict[str, list[str]]) -> dict[str, Any]:
        rec = self._epoch_from_query(query)
        raw = self.store.get_market_snapshot(rec.number)
        if raw is None:
            raise _HttpError(HTTPStatus.NOT_FOUND, f"epoch {rec.number} has no stored market")
        return {"epoch": rec.number, "root": rec.root, "market": json.loads(raw)}

    @staticmethod
    def _uint(text: str, name: str) -> int:
        if not _UINT.match(text):
            raise _HttpError(HTTPStatus.BAD_REQUEST, f"{name} must be a non-negative integer")
        return int(text)

    def _epoch_from_query(self, query: dict[str, list[str]]) -> EpochRecord:
        if "epoch" in query:
            n = self._uint(query["epoch"][0], "epoch")
            rec = self.store.get_epoch(n)
            if rec is None:
                raise _HttpError(HTTPStatus.NOT_FOUND, f"no epoch {n}")
            return rec
        rec = self.store.latest_epoch(status="mined")
        if rec is None:
            raise _HttpError(HTTPStatus.NOT_FOUND, "no epoch mined yet")
        return rec

    def _epoch_body(self, rec: EpochRecord) -> dict[str, Any]:
        body = rec.to_dict()
        body["accounts"], body["instruments"] = self.store.leaf_counts(rec.number) or (0, 0)
        return body

    def _health_body(self) -> tuple[HTTPStatus, dict[str, Any]]:
        latest = self.store.latest_epoch()
        mined = self.store.latest_epoch(status="mined")
        body: dict[str, Any] = {
            "latestEpoch": latest.number if latest else None,
            "latestEpochStatus": latest.status if latest else None,
            "latestMinedEpoch": mined.number if mined else None,
            "lastMinedTimestamp": mined.timestamp if mined else None,
            "ageSeconds": (self._clock() - mined.timestamp) if mined else None,
        }
        ok = True
        if self._health is not None:
            extra = dict(self._health())
            ok = bool(extra.pop("ok", True))
            body.update(extra)
        if self.max_epoch_age is not None and (
            mined is None or body["ageSeconds"] > self.max_epoch_age
        ):
            ok = False
            body["reason"] = body.get("reason") or "no recent mined epoch"
        body["status"] = "ok" if ok else "degraded"
        return (HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE), body


def _wad(value: int) -> dict[str, Any]:
    """A WAD integer as the exact decimal string and its value as a JSON number."""
    return {"wad": str(value), "decimal": value / WAD}


def _leaf(record: LeafRecord) -> dict[str, Any]:
    """A leaf on the wire: ``fields`` exact (decimal strings, what the proof hashes), and
    ``decimal``: its WAD fields as JSON numbers."""
    body = record.to_dict()
    body["decimal"] = {k: int(record.fields[k]) / WAD for k in _WAD_FIELDS if k in record.fields}
    return body
