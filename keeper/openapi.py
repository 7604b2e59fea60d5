"""The keeper HTTP server's route table and the OpenAPI 3.1 document built from it.

:data:`ROUTES` is the one list of what the server answers (docs/operations.md, section 5):
:class:`keeper.api.ProofApi` answers a request only when :func:`match` finds its method and
path here (anything else is 404 / 405 before any handler runs), and ``GET /openapi.json`` is
:func:`document` of the same entries. A new route is one :class:`Route` entry plus its
branch in ``keeper/api.py`` or ``keeper/web/routes.py``.

Response schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect), inlined so that any
validator reads one route's schema without resolving references. Amounts follow one rule:
USD amounts are JSON numbers; an integer the chain holds in WAD (1e18) is
``{"wad": "<decimal string>", "decimal": <number>}`` (:data:`WAD_AMOUNT`), and a leaf's
``fields`` (exact decimal strings, what a proof hashes; the bytes32 ``stateWord`` and
``vectorHash`` as ``0x`` hex) come with ``decimal``: the WAD
fields as numbers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["GROUPS", "ROUTES", "WAD_AMOUNT", "Param", "Route", "document", "match"]

#: Route groups: ``proof`` (keeper/api.py, always served), ``metrics`` (when a
#: :class:`~keeper.metrics.KeeperMetrics` is attached), ``web`` (keeper/web/routes.py).
GROUPS = ("proof", "metrics", "web")

Schema = Mapping[str, Any]

_INT: Schema = {"type": "integer"}
_NUM: Schema = {"type": "number"}
_STR: Schema = {"type": "string"}
_BOOL: Schema = {"type": "boolean"}
_HEX: Schema = {"type": "string", "pattern": "^0x[0-9a-fA-F]*$"}
_DEC_STR: Schema = {"type": "string", "pattern": "^-?[0-9]+$"}
_HTML = "text/html; charset=utf-8"


def _null(s: Schema) -> Schema:
    return {"anyOf": [s, {"type": "null"}]}


def _obj(required: Mapping[str, Schema], optional: Mapping[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


def _arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


#: An integer the chain holds in WAD: exact string and its value as a JSON number.
WAD_AMOUNT: Schema = _obj({"wad": _DEC_STR, "decimal": _NUM})

_ERROR = _obj({"error": _STR})

_LEAF = _obj(
    {
        "kind": {"enum": ["account", "instrument"]},
        "key": _DEC_STR,
        # integers as exact decimal strings; the bytes32 words (stateWord, vectorHash) as 0x hex
        "fields": {"type": "object", "additionalProperties": {"anyOf": [_DEC_STR, _HEX]}},
        "decimal": {"type": "object", "additionalProperties": _NUM},
        "leaf": _HEX,
        "proof": _arr(_HEX),
    }
)

_HEALTH = _obj(
    {
        "status": {"enum": ["ok", "degraded"]},
        "latestEpoch": _null(_INT),
        "latestEpochStatus": _null(_STR),
        "latestMinedEpoch": _null(_INT),
        "lastMinedTimestamp": _null(_INT),
        "ageSeconds": _null(_NUM),
    },
    {
        "reason": _STR,
        "refusedInRow": _INT,
        "lastResult": _null(_STR),
        "lastRefusal": _null(_STR),
        "indexedBlock": _null(_INT),
        "accountsKnown": _INT,
    },
)

_EPOCH = _obj(
    {
        "epoch": _INT,
        "root": _HEX,
        "snapshotBlock": _INT,
        "timestamp": _INT,
        "status": _STR,
        "txHash": _null(_HEX),
        "header": _null({"type": "object"}),
        "signatures": _arr(_HEX),
        "reason": _null(_STR),
        "accounts": _INT,
        "instruments": _INT,
    }
)

_ACCOUNT_ROW = _obj(
    {
        "account": _INT,
        "owner": _HEX,
        "createdBlock": _INT,
        "latest": _null(_obj({"equity": WAD_AMOUNT, "im": WAD_AMOUNT, "mm": WAD_AMOUNT})),
    }
)

_SMILE = _obj({"expiry": _INT, "forward": _NUM, "atm_vol": _NUM, "skew": _NUM, "curvature": _NUM})

_MARKET_STATE = _obj(
    {
        "timestamp": _INT,
        "source_time": _NUM,
        "source": _STR,
        "rate": _NUM,
        "underlyings": _arr(
            _obj(
                {
                    "symbol": _STR,
                    "spot": _NUM,
                    "perp_mark": _NUM,
                    "iv_source": _STR,
                    "smiles": _arr(_SMILE),
                }
            )
        ),
        "token_prices": {"type": "object", "additionalProperties": _NUM},
        "return_symbols": _arr(_STR),
        "return_interval_seconds": _INT,
        "returns": _arr(_arr(_NUM)),
    },
    {"confidence": {"type": "object", "additionalProperties": _NUM}},
)

_KIND = {"enum": ["perp", "call", "put"]}

_MARKET_ROW = _obj(
    {
        "instrument": _INT,
        "name": _STR,
        "kind": _KIND,
        "underlying": _STR,
        "mark": WAD_AMOUNT,
        "iv": _null(_NUM),
        "fundingPerHour": _null(_NUM),
        "cumFunding": _null(WAD_AMOUNT),
    },
    {"strike": WAD_AMOUNT, "expiry": _INT},
)

_INSTRUMENT_ROW = _obj(
    {
        "instrument": _INT,
        "name": _STR,
        "kind": _KIND,
        "underlying": _STR,
        "strike": WAD_AMOUNT,
        "expiry": _INT,
    }
)

_GREEKS = _obj({"delta": _NUM, "deltaUsd": _NUM, "gamma": _NUM, "vega": _NUM, "theta": _null(_NUM)})

_RISK = {
    "equity": _NUM,
    "im": _NUM,
    "mm": _NUM,
    "imSurplus": _NUM,
    "mmSurplus": _NUM,
    "imUsage": _null(_NUM),
    "mmUsage": _null(_NUM),
    "liquidation": _arr(
        _obj(
            {
                "underlying": _STR,
                "spot": _NUM,
                "moveDown": _null(_NUM),
                "moveUp": _null(_NUM),
                "priceDown": _null(_NUM),
                "priceUp": _null(_NUM),
            }
        )
    ),
}

_POSITION = _obj(
    {
        "instrument": _INT,
        "name": _STR,
        "underlying": _STR,
        "size": WAD_AMOUNT,
        "entryPrice": _null(_NUM),
        "mark": _null(_NUM),
        "unrealizedPnl": _null(_NUM),
        "realizedPnl": _NUM,
        "fundingPaid": _NUM,
        "greeks": _null(_GREEKS),
    }
)

_ACCOUNT_VIEW = _obj(
    {
        "account": _INT,
        "owner": _HEX,
        "epoch": _INT,
        "marketTimestamp": _INT,
        "cash": WAD_AMOUNT,
        "positions": _arr(_POSITION),
        "collateral": _arr(_obj({"token": _STR, "balance": _NUM})),
        "greeks": {"type": "object", "additionalProperties": _GREEKS},
        **_RISK,
        "attested": _null(_obj({"equity": WAD_AMOUNT, "im": WAD_AMOUNT, "mm": WAD_AMOUNT})),
        "imSurplusLo": _null(WAD_AMOUNT),
        "maxWithdrawableCash": _null(_NUM),
        "riskArray": _obj(
            {
                "underlyings": _arr(_STR),
                "scenarios": _arr(
                    _obj(
                        {
                            "index": _INT,
                            "words": _STR,
                            "pnlByUnderlying": _arr(_NUM),
                            "pnl": _NUM,
                            "inMmGrid": _BOOL,
                        }
                    )
                ),
                "worst": _INT,
            }
        ),
    }
)

_LEG = _obj({"instrument": _INT, "size": _NUM})

_HISTORY_EVENT = _obj(
    {
        "event": {
            "enum": [
                "Trade",
                "CashDeposited",
                "CashWithdrawn",
                "Deposited",
                "Withdrawn",
                "Liquidated",
                "FundingApplied",
            ]
        },
        "time": _INT,
        "block": _INT,
        "tx": _HEX,
    },
    {
        "instrument": _INT,
        "size": WAD_AMOUNT,
        "price": WAD_AMOUNT,
        "side": {"enum": ["maker", "taker"]},
        "amount": _null(_NUM),
        "amountRaw": _DEC_STR,
        "token": _HEX,
        "symbol": _null(_STR),
        "liquidator": _HEX,
        "mmSurplusHi": WAD_AMOUNT,
        "payment": WAD_AMOUNT,
    },
)


@dataclass(frozen=True)
class Param:
    """A path or query parameter (a path one is always required)."""

    name: str
    where: Literal["path", "query"]
    schema: Schema
    description: str
    required: bool = False


@dataclass(frozen=True)
class Route:
    """One route: ``method`` and ``path`` (OpenAPI template: ``/proof/{id}``), its group
    (:data:`GROUPS`), the 200 answer's content types and schema, the error statuses it
    answers (each with ``{"error"}``), and for a POST its JSON request body's schema."""

    method: Literal["GET", "POST"]
    path: str
    group: str
    summary: str
    response: Schema
    params: tuple[Param, ...] = ()
    content_types: tuple[str, ...] = ("application/json",)
    errors: tuple[int, ...] = ()
    request: Schema | None = None

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(p for p in self.path.split("/") if p)

    def matches(self, parts: Sequence[str]) -> bool:
        segs = self.segments
        return len(segs) == len(parts) and all(
            s.startswith("{") or s == p for s, p in zip(segs, parts, strict=True)
        )


_EPOCH_Q = Param(
    "epoch", "query", {"type": "integer", "minimum": 0}, "an epoch number (default: last mined)"
)
_ACCOUNT_ID = Param(
    "id", "path", {"type": "string", "pattern": "^[0-9]{1,78}$"}, "subaccount id (uint256)"
)

#: Everything the keeper's HTTP server answers (docs/operations.md, section 5).
ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/health",
        "proof",
        "ok (200) or degraded (503): last mined epoch too old, or the daemon degraded "
        "(e.g. keeper.max_refused_in_row epochs refused in a row)",
        _HEALTH,
        errors=(503,),
    ),
    Route("GET", "/epoch/latest", "proof", "the last mined epoch", _EPOCH, errors=(404,)),
    Route(
        "GET",
        "/epoch/{n}",
        "proof",
        "epoch n in any status",
        _EPOCH,
        params=(Param("n", "path", {"type": "integer", "minimum": 0}, "epoch number"),),
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/proof/{id}",
        "proof",
        "a subaccount's ACCOUNT leaf and Merkle proof",
        _obj({"epoch": _INT, "root": _HEX, "account": _INT, "leaf": _LEAF}),
        params=(_ACCOUNT_ID, _EPOCH_Q),
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/instrument/{id}",
        "proof",
        "an instrument's INSTRUMENT leaf and Merkle proof",
        _obj({"epoch": _INT, "root": _HEX, "leaf": _LEAF}),
        params=(
            Param("id", "path", {"type": "integer", "minimum": 0}, "instrument id"),
            _EPOCH_Q,
        ),
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/accounts",
        "proof",
        "subaccounts as last indexed, lowest id first, with their leaf numbers in the "
        "last mined epoch (null: no leaf there)",
        _obj(
            {
                "total": _INT,
                "limit": _INT,
                "offset": _INT,
                "epoch": _null(_INT),
                "accounts": _arr(_ACCOUNT_ROW),
            },
            {"owner": _HEX},
        ),
        params=(
            Param(
                "owner",
                "query",
                {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
                "only this owner's subaccounts",
            ),
            Param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                "page size (default 100)",
            ),
            Param("offset", "query", {"type": "integer", "minimum": 0}, "rows to skip"),
        ),
        errors=(400,),
    ),
    Route(
        "GET",
        "/epoch/{n}/inputs",
        "proof",
        "the dispute inputs epoch n committed in its header's inputsHash (docs/protocol.md §11): "
        "the market inputs, vector, range and aggregation parameters ABI-encoded, the returns, "
        "the token vectors' hashes; only for an epoch posted with the challenge window on",
        _obj(
            {
                "snapshotHash": _HEX,
                "market": _HEX,
                "returns": _arr(_arr(_DEC_STR)),
                "vectorParams": _HEX,
                "rangeParams": _HEX,
                "aggregationParams": _HEX,
                "tokenVectorHashes": _arr(_HEX),
            }
        ),
        params=(Param("n", "path", {"type": "integer", "minimum": 0}, "epoch number"),),
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/epoch/{n}/market",
        "proof",
        "the MarketState JSON epoch n was computed from, as stored (keeper verify's input)",
        _MARKET_STATE,
        params=(Param("n", "path", {"type": "integer", "minimum": 0}, "epoch number"),),
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/liquidatable",
        "proof",
        "the liquidators' watch list: subaccounts whose MM surplus upper bound in the last "
        "mined epoch is below margin_usd, most negative first, each with its leaf and proof",
        _obj(
            {
                "epoch": _INT,
                "root": _HEX,
                "snapshotBlock": _INT,
                "marginUsd": _NUM,
                "marginWad": _DEC_STR,
                "accounts": _arr(_obj({"account": _INT, "mmSurplusHi": WAD_AMOUNT, "leaf": _LEAF})),
            }
        ),
        params=(
            Param(
                "margin_usd",
                "query",
                {"type": "string", "pattern": "^[0-9]{1,15}(\\.[0-9]{1,18})?$"},
                "also list bounds below this many USD (default [api] liquidatable_margin_usd)",
            ),
            Param("limit", "query", {"type": "integer", "minimum": 0}, "at most this many (1000)"),
        ),
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/market",
        "proof",
        "the market snapshot an epoch was computed on (spot, perp mark, smiles, rate, "
        "token prices, returns), by default the last mined epoch's",
        _obj({"epoch": _INT, "root": _HEX, "market": _MARKET_STATE}),
        params=(_EPOCH_Q,),
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/openapi.json",
        "proof",
        "this document: every route the server answers",
        {"type": "object", "required": ["openapi", "paths"]},
    ),
    Route(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus text exposition (docs/operations.md, section 6)",
        _STR,
        content_types=("text/plain; version=0.0.4",),
    ),
    Route("GET", "/", "web", "the risk dashboard (HTML)", _STR, content_types=(_HTML,)),
    Route("GET", "/dashboard", "web", "the risk dashboard (HTML)", _STR, content_types=(_HTML,)),
    Route(
        "GET",
        "/static/{name}",
        "web",
        "a dashboard file (keeper/web/static/)",
        _STR,
        params=(Param("name", "path", _STR, "file name"),),
        content_types=(_HTML, "text/javascript; charset=utf-8", "text/css; charset=utf-8"),
        errors=(404,),
    ),
    Route(
        "GET",
        "/markets",
        "web",
        "mark, IV and funding per live instrument; spot and perp mark per underlying, on "
        "the last mined epoch's market",
        _obj(
            {
                "epoch": _INT,
                "timestamp": _INT,
                "source": _STR,
                "underlyings": _arr(
                    _obj({"symbol": _STR, "spot": _NUM, "perpMark": _NUM, "ivSource": _STR})
                ),
                "tokenPrices": {"type": "object", "additionalProperties": _NUM},
                "markets": _arr(_MARKET_ROW),
            }
        ),
        errors=(404,),
    ),
    Route(
        "GET",
        "/instruments",
        "web",
        "every registered instrument",
        _obj({"instruments": _arr(_INSTRUMENT_ROW)}),
    ),
    Route(
        "GET",
        "/positions/{id}",
        "web",
        "a subaccount's positions (entry, mark, P&L, funding, greeks), margin, maximum "
        "withdrawable, distance to liquidation and risk array, now",
        _ACCOUNT_VIEW,
        params=(_ACCOUNT_ID,),
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/history/{id}",
        "web",
        "a subaccount's vault events with block times, within [from, to]",
        _obj(
            {
                "account": _INT,
                "from": _null(_INT),
                "to": _null(_INT),
                "events": _arr(_HISTORY_EVENT),
            }
        ),
        params=(
            _ACCOUNT_ID,
            Param("from", "query", {"type": "integer", "minimum": 0}, "unix seconds, inclusive"),
            Param("to", "query", {"type": "integer", "minimum": 0}, "unix seconds, inclusive"),
        ),
        errors=(400,),
    ),
    Route(
        "POST",
        "/simulate",
        "web",
        "what-if: margin and liquidation prices before and after legs taken at the mark",
        _obj(
            {
                "account": _null(_INT),
                "epoch": _INT,
                "legs": _arr(_LEG),
                "before": _obj(_RISK),
                "after": _obj(_RISK),
            }
        ),
        request=_obj({"legs": _arr(_LEG)}, {"account": _null({"type": "integer", "minimum": 0})}),
        errors=(400, 404),
    ),
)


def match(
    method: str, parts: Sequence[str], groups: Collection[str], routes: Sequence[Route] = ROUTES
) -> tuple[Route | None, bool]:
    """``(route, path_known)``: the route of ``method`` at ``parts`` among ``groups``, and
    whether any route of those groups has this path (with another method: a 405)."""
    at_path = [r for r in routes if r.group in groups and r.matches(parts)]
    return next((r for r in at_path if r.method == method), None), bool(at_path)


def _operation(r: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {ct: {"schema": dict(r.response)} for ct in r.content_types},
        }
    }
    for status in r.errors:
        schema = _HEALTH if (r.path == "/health" and status == 503) else _ERROR
        responses[str(status)] = {
            "description": "degraded" if status == 503 else "error (one line)",
            "content": {"application/json": {"schema": dict(schema)}},
        }
    name = "".join(s.strip("{}").replace(".", "_").title() for s in r.segments) or "Root"
    op: dict[str, Any] = {
        "operationId": r.method.lower() + name,
        "summary": r.summary,
        "tags": [r.group],
        "responses": responses,
    }
    if r.params:
        op["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path" or p.required,
                "description": p.description,
                "schema": dict(p.schema),
            }
            for p in r.params
        ]
    if r.request is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": dict(r.request)}},
        }
    return op


def document(groups: Collection[str] = GROUPS, routes: Sequence[Route] = ROUTES) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes of ``groups``."""
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        if r.group in groups:
            paths.setdefault(r.path, {})[r.method.lower()] = _operation(r)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pm keeper API",
            "version": "1",
            "description": "Epochs, leaves and proofs; the front-end API and dashboard "
            "(docs/operations.md, section 5). USD amounts are JSON numbers; an integer the "
            "chain holds in WAD is {wad: decimal string, decimal: number}.",
        },
        "paths": paths,
    }
