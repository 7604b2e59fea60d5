"""The dashboard's files: served from the package by bare name only, and the page loads
nothing from elsewhere (no CDN, every script and style sheet under /static/)."""

from __future__ import annotations

import re

import pytest

from keeper.web.assets import DASHBOARD, asset


def test_the_page_its_script_and_its_style_sheet_are_served_with_their_types() -> None:
    page = asset(DASHBOARD)
    assert page is not None and page[1].startswith("text/html")
    refs = re.findall(rb'(?:src|href)="([^"]+)"', page[0])
    assert sorted(refs) == [b"/static/dashboard.css", b"/static/dashboard.js"]
    for ref in refs:
        found = asset(ref.decode().removeprefix("/static/"))
        assert found is not None and len(found[0]) > 0


@pytest.mark.parametrize(
    "name", ["../api.py", "..", ".hidden.js", "routes.py", "missing.js", "static/dashboard.js"]
)
def test_a_name_outside_the_static_files_is_not_served(name: str) -> None:
    assert asset(name) is None


def test_the_script_fetches_only_the_keepers_own_routes() -> None:
    found = asset("dashboard.js")
    assert found is not None
    script = found[0].decode()
    assert "http://" not in script.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in script
    assert "import " not in script
