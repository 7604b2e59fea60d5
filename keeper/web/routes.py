"""HTTP routes of the front-end API (parsing and validation only; the numbers are
keeper/web/views.py's)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus

from keeper.api import HttpError, Reply
from keeper.chain import ChainAdapter
from keeper.store import Store
from keeper.web import views
from keeper.web.assets import DASHBOARD, asset
from risk_engine import RiskParams

__all__ = ["WebRoutes"]

_JSON = "application/json"


def _uint(text: str, name: str) -> int:
    if not text.isdigit() or len(text) > 78:
        raise HttpError(HTTPStatus.BAD_REQUEST, f"{name} must be a non-negative integer")
    return int(text)


class WebRoutes:
    """The dashboard (``GET /``, ``/dashboard``, ``/static/<file>``), ``GET /markets``,
    ``/instruments``, ``/positions/<id>``, ``/history/<id>[?from=&to=]`` and ``POST /simulate``
    (``{"account": id|null, "legs": [{"instrument", "size"}]}``)."""

    def __init__(
        self,
        store: Store,
        chain: ChainAdapter,
        params: RiskParams,
        token_underlyings: Mapping[str, str],
    ) -> None:
        self.store = store
        self.chain = chain
        self.params = params
        self.token_underlyings = token_underlyings

    def handle(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: bytes
    ) -> Reply | None:
        try:
            return self._route(method, parts, query, body)
        except views.ViewError as exc:
            status = HTTPStatus.NOT_FOUND if exc.not_found else HTTPStatus.BAD_REQUEST
            raise HttpError(status, str(exc)) from None

    def _route(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: bytes
    ) -> Reply | None:
        if method == "POST" and parts == ["simulate"]:
            return HTTPStatus.OK, self._simulate(body), _JSON
        if method != "GET":
            return None
        if parts in ([], ["dashboard"]):
            return self._static(DASHBOARD)
        if len(parts) == 2 and parts[0] == "static":
            return self._static(parts[1])
        if parts == ["markets"]:
            return HTTPStatus.OK, views.markets_body(self.store, self.chain), _JSON
        if parts == ["instruments"]:
            return HTTPStatus.OK, views.instruments_body(self.chain), _JSON
        if len(parts) == 2 and parts[0] == "positions":
            account = _uint(parts[1], "subaccount id")
            body_out = views.account_body(
                self.store, self.chain, self.params, self.token_underlyings, account
            )
            return HTTPStatus.OK, body_out, _JSON
        if len(parts) == 2 and parts[0] == "history":
            account = _uint(parts[1], "subaccount id")
            start = _uint(query["from"][0], "from") if "from" in query else None
            end = _uint(query["to"][0], "to") if "to" in query else None
            return HTTPStatus.OK, views.history_body(self.chain, account, start, end), _JSON
        return None

    @staticmethod
    def _static(name: str) -> Reply:
        found = asset(name)
        if found is None:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no static file {name!r}")
        content, content_type = found
        return HTTPStatus.OK, content, content_type

    def _simulate(self, body: bytes) -> object:
        try:
            req = json.loads(body or b"{}")
            account = req.get("account")
            legs = [views.Leg(int(x["instrument"]), float(x["size"])) for x in req["legs"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HttpError(
                HTTPStatus.BAD_REQUEST,
                f'body must be {{"account": id|null, "legs": [{{"instrument", "size"}}]}}: {exc}',
            ) from None
        if account is not None and (not isinstance(account, int) or account < 0):
            raise HttpError(HTTPStatus.BAD_REQUEST, f"account must be an id or null: {account!r}")
        return views.simulate_body(
            self.store, self.chain, self.params, self.token_underlyings, account, legs
        )
