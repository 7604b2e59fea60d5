"""Debian's headless chromium driven by Selenium through Debian's chromedriver, for the
dashboard's browser test and its screenshot. Both binaries are installed by ``make setup``
(apt packages ``chromium`` and ``chromium-driver``); nothing is ever downloaded: Selenium
is handed the driver's path, so its own driver manager never runs.

The flags keep the browser off the network (no component updates, sync, QUIC or
background requests) and in a fresh profile (``user_data_dir``), so that a run depends on
nothing but the page it opens.
"""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from scripts.errors import ToolchainError

__all__ = ["CHROMEDRIVER", "CHROMIUM", "FLAGS", "headless_chromium"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

FLAGS = (
    "--headless",
    "--no-sandbox",  # we run as root in CI, where chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def headless_chromium(
    user_data_dir: Path, *, width: int = 1280, height: int = 1000
) -> webdriver.Chrome:
    """A new headless chromium with a fresh profile in ``user_data_dir``; the caller quits
    it. Raises :class:`ToolchainError` naming ``make setup`` when a binary is missing."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.is_file():
            raise ToolchainError(
                f"{path} is missing: `make setup` installs Debian's chromium and chromium-driver"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
