"""Without Debian's chromium or chromedriver the browser helper raises, naming the fix:
the dashboard's browser test then fails instead of being skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.errors import ToolchainError
from scripts.toolchain import browser


@pytest.mark.parametrize("binary", ["CHROMIUM", "CHROMEDRIVER"])
def test_a_missing_browser_binary_raises_naming_make_setup(
    binary: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browser, binary, tmp_path / "absent")
    with pytest.raises(ToolchainError, match="make setup"):
        browser.headless_chromium(tmp_path / "profile")


def test_the_flags_keep_the_browser_headless_and_off_the_network() -> None:
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        assert flag in browser.FLAGS
