"""JSON over HTTP for the provider adapters, on the standard library (no extra dependency).

Every failure a provider can produce becomes a :class:`~keeper.errors.FeedError` naming the
source: a timeout, a refused connection, an HTTP status other than 200, a body that is not
JSON. A caller (an adapter, then the composite feed) never sees another exception type, so
one bad venue drops that venue, not the epoch.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from keeper.errors import FeedError

__all__ = ["JsonHttp"]

#: The body of a provider's answer is small (a ticker, a book summary); a larger one is
#: not what we asked for.
MAX_BODY_BYTES = 8 * 1024 * 1024


class JsonHttp:
    """GET / POST JSON at ``base_url`` with a per-request ``timeout`` (seconds).

    ``source`` names the provider in every error (``deribit: HTTP 502 at /api/v2/...``).
    """

    def __init__(self, base_url: str, *, source: str, timeout: float = 5.0) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout {timeout} must be > 0")
        self.base_url = base_url.rstrip("/")
        self.source = source
        self.timeout = timeout

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """The decoded JSON of ``GET base_url + path?params``."""
        query = f"?{urlencode(dict(params))}" if params else ""
        return self._request(urllib.request.Request(self.base_url + path + query), path)

    def post(self, path: str, body: Any) -> Any:
        """The decoded JSON of ``POST base_url + path`` with a JSON ``body`` (JSON-RPC)."""
        req = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return self._request(req, path or "/")

    def _request(self, req: urllib.request.Request, path: str) -> Any:
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", "portfolio-margin-keeper")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                raw = resp.read(MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise FeedError(f"{self.source}: HTTP {exc.code} at {path}") from None
        except TimeoutError as exc:
            raise FeedError(f"{self.source}: timeout after {self.timeout} s at {path}") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise FeedError(f"{self.source}: timeout after {self.timeout} s at {path}") from exc
            raise FeedError(f"{self.source}: cannot reach {path}: {exc.reason}") from exc
        except (OSError, ValueError) as exc:  # reset connection, bad status line
            raise FeedError(f"{self.source}: {type(exc).__name__} at {path}: {exc}") from exc
        if len(raw) > MAX_BODY_BYTES:
            raise FeedError(f"{self.source}: answer above {MAX_BODY_BYTES} bytes at {path}")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise FeedError(f"{self.source}: malformed JSON at {path}: {exc}") from None
