"""A local HTTP server that plays a provider: recorded payloads or live ones, with faults.

:class:`MockServer` answers with ``route(method, path, query, body) -> JSON`` and can be
told to fail: ``timeout`` (sleeps past the client's timeout), ``http_error`` (HTTP 502),
``malformed`` (a truncated JSON body). :func:`replay_route` serves the recorded fixtures
(``fixtures/``) by path and query. :class:`LiveVenue` renders a venue in one provider's
format from a price that the test moves, freezes or makes lie, with times on the wall
clock (or ``stale_by`` seconds behind it).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from . import payloads as P

Route = Callable[[str, str, Mapping[str, str], Any], Any]


class MockServer:
    def __init__(self, route: Route) -> None:
        self.route = route
        self.fault: str | None = None
        self.delay = 1.5  # seconds a "timeout" fault sleeps before answering
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                outer.requests.append(f"{method} {self.path}")
                fault = outer.fault
                if fault == "timeout":
                    time.sleep(outer.delay)
                if fault == "http_error":
                    self.send_response(502)
                    self.end_headers()
                    self.wfile.write(b"<html>502 Bad Gateway</html>")
                    return
                try:
                    payload = outer.route(method, url.path, query, body)
                except KeyError:
                    self.send_response(404)
                    self.end_headers()
                    return
                raw = json.dumps(payload).encode()
                if fault == "malformed":
                    raw = raw[: len(raw) // 2]
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                try:
                    self.wfile.write(raw)
                except OSError:
                    pass  # the client gave up (timeout test)

            def do_GET(self) -> None:  # noqa: N802
                self._answer("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._answer("POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _fixture(name: str) -> Any:
    return json.loads((P.FIXTURES / name).read_text())


def replay_route(method: str, path: str, query: Mapping[str, str], body: Any) -> Any:
    """The recorded payload for a request (KeyError = 404)."""
    if method == "POST":  # JSON-RPC eth_call to an aggregator
        to, data = body["params"][0]["to"], body["params"][0]["data"]
        if data == "0x313ce567":
            return {**_fixture("chainlink/decimals.json"), "id": body["id"]}
        return {**_fixture(f"chainlink/latestRoundData_{to}.json"), "id": body["id"]}
    if path.startswith("/api/v2/public/"):
        method_name = path.rsplit("/", 1)[1]
        arg = {
            "get_index_price": lambda: query["index_name"],
            "ticker": lambda: query["instrument_name"],
            "get_book_summary_by_currency": lambda: f"{query['currency']}_{query['kind']}",
            "get_tradingview_chart_data": lambda: query["instrument_name"],
        }[method_name]()
        return _fixture(f"deribit/{method_name}_{arg}.json")
    if path == "/api/v3/ticker/24hr":
        return _fixture(f"binance/ticker_24hr_{query['symbol']}.json")
    if path == "/api/v3/klines":
        return _fixture(f"binance/klines_{query['symbol']}.json")
    if path.startswith("/products/"):
        _, _, pair, what = path.split("/")
        return _fixture(f"coinbase/{what}_{pair}.json")
    raise KeyError(path)


@dataclass
class LiveVenue:
    """One venue in ``kind``'s format (``deribit``, ``binance``, ``coinbase``,
    ``chainlink``) quoting ``prices`` (USD) now.

    ``frozen``: the prices stop at their value when frozen (the venue's clock runs on);
    ``lie``: every price it quotes is multiplied by ``1 + lie``; ``stale_by``: its times lag
    the wall clock by that many seconds. ``closes`` (bar time, close) per symbol: daily
    history ending with the open bar, scaled to the current price.
    """

    kind: str
    prices: dict[str, float]
    clock: Callable[[], float] = time.time
    lie: float = 0.0
    stale_by: float = 0.0
    _frozen: dict[str, float] | None = None
    history: dict[str, list[float]] = field(default_factory=dict)

    def freeze(self) -> None:
        self._frozen = dict(self.prices)

    def quoted(self, sym: str) -> float:
        p = (self._frozen or self.prices)[sym]
        return p * (1.0 + self.lie)

    def closes(self, sym: str, now: float) -> list[tuple[int, float]]:
        """Daily closes (the shape of ../shared/data's last 120 days) scaled so that the
        open bar closes at the quoted price; bar times end at today's bar."""
        base = self.history.setdefault(sym, [c for _, c in P.shared_closes(sym)])
        today = int(now) // P.DAY * P.DAY
        scale = self.quoted(sym) / base[-1]
        n = len(base)
        return [(today - (n - 1 - i) * P.DAY, c * scale) for i, c in enumerate(base)]

    def route(self, method: str, path: str, query: Mapping[str, str], body: Any) -> Any:
        now = self.clock()
        t = now - self.stale_by
        if self.kind == "chainlink":
            to, data = body["params"][0]["to"], body["params"][0]["data"]
            if data == "0x313ce567":
                return P.rpc_result(P.chainlink_decimals(), body["id"])
            sym = next(s for s, a in P.AGGREGATORS.items() if a.lower() == to.lower())
            return P.rpc_result(P.chainlink_round(self.quoted(sym), int(t)), body["id"])
        if self.kind == "deribit":
            name = path.rsplit("/", 1)[1]
            if name == "get_index_price":
                sym = query["index_name"].split("_")[0].upper()
                return P.deribit_index(self.quoted(sym), t)
            if name == "ticker":
                sym = query["instrument_name"].split("-")[0]
                return P.deribit_ticker(sym, self.quoted(sym) * 1.0005, self.quoted(sym), t)
            if name == "get_book_summary_by_currency":
                sym = query["currency"]
                smiles = [
                    (int(t) + days * P.DAY + 3600, carry, atm, skew, curv)
                    for days, (_, carry, atm, skew, curv) in zip(
                        (5, 26, 89, 180), P.SMILES[sym], strict=True
                    )
                ]
                step = P.STRIKE_STEP[sym] * self.quoted(sym) / P.SPOTS[sym]
                return P.deribit_book_summary(sym, self.quoted(sym), t, smiles, round(step, -1))
            if name == "get_tradingview_chart_data":
                sym = query["instrument_name"].split("-")[0]
                return P.deribit_chart(self.closes(sym, now), t)
        if self.kind == "binance":
            sym = query["symbol"].removesuffix("USDT")
            if path == "/api/v3/ticker/24hr":
                return P.binance_ticker(query["symbol"], self.quoted(sym), t)
            return P.binance_klines(self.closes(sym, now), P.DAY)
        if self.kind == "coinbase":
            _, _, pair, what = path.split("/")
            sym = pair.split("-")[0]
            if what == "ticker":
                return P.coinbase_ticker(self.quoted(sym), t)
            return P.coinbase_candles(self.closes(sym, now))
        raise KeyError(path)
