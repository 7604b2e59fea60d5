"""The dashboard's files (keeper/web/static/, package data): one HTML page, its script and
its style sheet, served by the keeper's HTTP server itself. No build step and no CDN: the
page loads nothing from elsewhere (docs/operations.md, section 5)."""

from __future__ import annotations

from importlib import resources

__all__ = ["DASHBOARD", "asset"]

#: The page ``GET /`` and ``GET /dashboard`` answer.
DASHBOARD = "dashboard.html"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def asset(name: str) -> tuple[bytes, str] | None:
    """``(content, content type)`` of the static file ``name``, or None when there is no
    such file. Only a bare file name with a known suffix is looked up: no directory part,
    so no path can leave the static folder."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in _TYPES:
        return None
    f = resources.files("keeper.web").joinpath("static", name)
    if not f.is_file():
        return None
    return f.read_bytes(), _TYPES[suffix]
