"""Screenshot of the risk dashboard with a real book: docs/img/dashboard.png.

Starts the stack of scripts/dashboard_book.py (Anvil, the deployed world, the trader's
options-and-perps book, mined epochs, the keeper's HTTP server), opens the dashboard in
Debian's headless chromium (scripts/toolchain/browser.py) on the trader's subaccount, runs
one what-if leg (buy 2 ETH-PERP), and saves the whole page.

    .venv/bin/python -m scripts.screenshot_dashboard [--out docs/img/dashboard.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from scripts.dashboard_book import start_dashboard_stack
from scripts.toolchain.browser import headless_chromium
from scripts.toolchain.paths import REPO_ROOT

WIDTH_PX = 1280
WAIT_S = 60.0


def screenshot(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_dashboard_stack(Path(tmp) / "keeper")
        driver = headless_chromium(Path(tmp) / "chromium", width=WIDTH_PX)
        try:
            driver.get(f"{stack.url}/dashboard?account={stack.account}")
            wait = WebDriverWait(driver, WAIT_S)
            wait.until(
                lambda d: (
                    d.find_element(By.ID, "account").get_attribute("data-loaded")
                    == str(stack.account)
                )
            )
            leg = driver.find_element(By.CSS_SELECTOR, "#legs .leg")
            Select(leg.find_element(By.CSS_SELECTOR, ".leg-instrument")).select_by_value(
                str(stack.world.instruments["ETH-PERP"])
            )
            size = leg.find_element(By.CSS_SELECTOR, ".leg-size")
            size.clear()
            size.send_keys("2")
            driver.find_element(By.ID, "simulate").click()
            wait.until(lambda d: d.find_element(By.ID, "sim-result").get_attribute("data-done"))
            # the window as tall as the page (its size counts the browser's frame too)
            height = int(driver.execute_script("return document.documentElement.scrollHeight"))
            frame = driver.get_window_size()["height"] - int(
                driver.execute_script("return window.innerHeight")
            )
            driver.set_window_size(WIDTH_PX, height + frame)
            driver.execute_script("window.scrollTo(0, 0)")
            out.parent.mkdir(parents=True, exist_ok=True)
            if not driver.save_screenshot(str(out)):
                raise RuntimeError(f"chromium did not write {out}")
        finally:
            driver.quit()
            stack.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "img" / "dashboard.png")
    args = ap.parse_args()
    screenshot(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
