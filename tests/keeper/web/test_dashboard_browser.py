"""The risk dashboard in a real browser (Debian's chromium through Selenium) on a live Anvil +
keeper stack (scripts/dashboard_book.py): the page shows the trader's positions, greeks,
margin and liquidation prices as the risk engine computes them, and its what-if simulator
shows the engine's IM for the added legs.

The expected numbers are computed here from the engine (risk_engine.compute_margin and
keeper/account_view.py on the latest mined epoch's stored market and the chain's account
state), and entry prices from the book's own trade prices; the page's text is compared
with them at the precision it displays (USD to cents, greeks to 5 significant digits).

No skip: a missing chromium or chromedriver fails the test (``make setup`` installs them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from keeper.account_view import account_greeks, liquidation_distances
from keeper.chain import AccountState, Position
from keeper.engine_input import EngineInput, engine_input
from keeper.web.views import latest_market
from risk_engine import compute_margin
from risk_engine.units import WAD
from scripts.dashboard_book import TRADER_WETH, TRADES, DashboardStack, start_dashboard_stack
from scripts.toolchain.browser import headless_chromium

pytestmark = pytest.mark.anvil

CENT = 0.0051  # a displayed USD amount is rounded to the cent
WAIT_S = 60.0  # the page's requests run the engine (greeks, liquidation search)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardStack]:
    s = start_dashboard_stack(tmp_path_factory.mktemp("dashboard-keeper"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = headless_chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


def _number(text: str) -> float:
    """A displayed number back to a float ("1,234.56", "-12.34 %")."""
    return float(text.replace(",", "").replace("%", "").strip())


def _cell(row: WebElement, field: str) -> float:
    return _number(row.find_element(By.CSS_SELECTOR, f'[data-field="{field}"]').text)


def _shows(row: WebElement, field: str, usd: float | None) -> None:
    """``row``'s ``field`` cell shows ``usd`` to the cent, or a dash for None."""
    text = row.find_element(By.CSS_SELECTOR, f'[data-field="{field}"]').text
    if usd is None:
        assert text == "—"
    else:
        assert _number(text) == pytest.approx(usd, abs=CENT)


def _engine(stack: DashboardStack, state: AccountState) -> EngineInput:
    lm = latest_market(stack.store, stack.pipeline.chain)
    chain = stack.pipeline.chain
    return engine_input(
        lm.market,
        lm.live,
        chain.tokens(),
        [state],
        token_underlyings=stack.pipeline.token_underlyings,
    )


def _open_account(browser: webdriver.Chrome, stack: DashboardStack, *, show: bool = True) -> None:
    """Open the dashboard and type the trader's id; ``show``: press Show and wait for the
    account view (the what-if reads the id from the box without it)."""
    browser.get(f"{stack.url}/dashboard")
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    box = browser.find_element(By.ID, "account-id")
    box.clear()
    box.send_keys(str(stack.account))
    if not show:
        return
    browser.find_element(By.ID, "load").click()
    wait.until(
        lambda d: (
            d.find_element(By.ID, "account").get_attribute("data-loaded") == str(stack.account)
            or d.find_element(By.ID, "status").get_attribute("class") == "error"
        )
    )
    assert browser.find_element(By.ID, "status").get_attribute("class") != "error", (
        browser.find_element(By.ID, "status").text
    )


def test_dashboard_shows_the_engines_positions_greeks_and_liquidation_prices(
    stack: DashboardStack, browser: webdriver.Chrome
) -> None:
    _open_account(browser, stack)
    chain = stack.pipeline.chain
    params = stack.pipeline.params
    (state,) = chain.account_states([stack.account])
    ei = _engine(stack, state)
    res = compute_margin(ei.portfolios, ei.market, params)
    greeks = account_greeks(ei.portfolios, ei.market, params, 0)
    dist = liquidation_distances(ei.portfolios, ei.market, params, 0)
    live = latest_market(stack.store, chain).live
    # columns past the instruments are the collateral tokens (WETH: in the ETH totals)
    greeks_by_id = {live[g.column].id: g for g in greeks.positions if g.column < len(live)}

    # positions: the book traded, at its prices, with the engine's greeks
    fills = {name: (size, price) for legs in TRADES for name, size, price in legs}
    rows = browser.find_elements(By.CSS_SELECTOR, "#positions tbody tr[data-instrument]")
    assert len(rows) == len(fills)
    for row in rows:
        instrument = int(row.get_attribute("data-instrument") or -1)
        name = next(n for n, i in stack.world.instruments.items() if i == instrument)
        size, price = fills[name]
        assert _cell(row, "size") == size
        assert _cell(row, "entryPrice") == pytest.approx(price, abs=CENT)
        g = greeks_by_id[instrument]
        assert _cell(row, "mark") == pytest.approx(g.mark, abs=CENT)
        assert _cell(row, "unrealizedPnl") == pytest.approx(size * (g.mark - price), abs=CENT)
        assert _cell(row, "delta") == pytest.approx(g.delta, rel=1e-4, abs=1e-9)
        assert _cell(row, "deltaUsd") == pytest.approx(g.delta_usd, abs=CENT)
        assert _cell(row, "gamma") == pytest.approx(g.gamma, rel=1e-4, abs=1e-9)
        assert _cell(row, "vega") == pytest.approx(g.vega, abs=CENT)
        assert g.theta is not None
        assert _cell(row, "theta") == pytest.approx(g.theta, abs=CENT)

    totals = browser.find_elements(By.CSS_SELECTOR, "#greek-totals tbody tr")
    assert (
        {t.get_attribute("data-underlying") for t in totals}
        == set(greeks.totals)
        == {
            "BTC",
            "ETH",
        }
    )
    for row in totals:
        delta, delta_usd, gamma, vega, _ = greeks.totals[row.get_attribute("data-underlying")]
        assert _cell(row, "delta") == pytest.approx(delta, rel=1e-4)
        assert _cell(row, "deltaUsd") == pytest.approx(delta_usd, abs=CENT)
        assert _cell(row, "gamma") == pytest.approx(gamma, rel=1e-4, abs=1e-9)
        assert _cell(row, "vega") == pytest.approx(vega, abs=CENT)

    # margin: the engine's equity, IM and MM
    summary = browser.find_element(By.ID, "summary")
    assert _cell(summary, "equity") == pytest.approx(float(res.equity[0]), abs=CENT)
    assert _cell(summary, "im") == pytest.approx(float(res.im[0]), abs=CENT)
    assert _cell(summary, "mm") == pytest.approx(float(res.mm[0]), abs=CENT)
    assert float(res.im[0]) > 0

    # distance to liquidation: the spot moves and prices that take equity - MM to zero
    liq = browser.find_elements(By.CSS_SELECTOR, "#liquidation tbody tr")
    assert [r.get_attribute("data-underlying") for r in liq] == [d.underlying for d in dist]
    for row, d in zip(liq, dist, strict=True):
        assert d.price_down is not None and d.down is not None
        assert _cell(row, "priceDown") == pytest.approx(d.price_down, abs=CENT)
        assert _cell(row, "moveDown") == pytest.approx(100 * d.down, abs=0.0051)
        _shows(row, "priceUp", d.price_up)  # None: no up move in the searched range liquidates

    # the risk array has every scenario; the history marks trades, deposits, withdrawals
    n_scenarios = len(browser.find_elements(By.CSS_SELECTOR, "#risk-array tbody tr"))
    assert n_scenarios == res.arrays.n_scenarios
    markers = browser.find_elements(By.CSS_SELECTOR, "#history svg .marker")
    kinds = sorted(m.get_attribute("data-event") or "" for m in markers)
    n_legs = sum(len(legs) for legs in TRADES)
    assert kinds == sorted(["Trade"] * n_legs + ["CashDeposited", "Deposited", "CashWithdrawn"])


def test_what_if_trade_in_the_page_shows_the_engines_im(
    stack: DashboardStack, browser: webdriver.Chrome
) -> None:
    _open_account(browser, stack, show=False)
    perp, put = stack.world.instruments["ETH-PERP"], stack.world.instruments["ETH-P-3000"]
    legs = [(perp, 2.0), (put, -4.0)]
    browser.find_element(By.ID, "add-leg").click()  # the page starts with one leg
    rows = browser.find_elements(By.CSS_SELECTOR, "#legs .leg")
    assert len(rows) == 2
    for row, (instrument, size) in zip(rows, legs, strict=True):
        Select(row.find_element(By.CSS_SELECTOR, ".leg-instrument")).select_by_value(
            str(instrument)
        )
        box = row.find_element(By.CSS_SELECTOR, ".leg-size")
        box.clear()
        box.send_keys(str(size))
    browser.find_element(By.ID, "simulate").click()
    out = browser.find_element(By.ID, "sim-result")
    WebDriverWait(browser, WAIT_S).until(lambda d: out.get_attribute("data-done"))
    assert out.get_attribute("data-done") == "1", out.text

    # the engine on the account with the legs added at the mark
    (state,) = stack.pipeline.chain.account_states([stack.account])
    sizes = {p.instrument: p for p in state.positions}
    for instrument, size in legs:
        p = sizes.get(instrument, Position(instrument, 0, 0))
        sizes[instrument] = Position(instrument, p.size + round(size * WAD), p.funding_index)
    after_state = dataclasses.replace(state, positions=tuple(sizes.values()))
    params = stack.pipeline.params
    ei_before, ei_after = _engine(stack, state), _engine(stack, after_state)
    before = compute_margin(ei_before.portfolios, ei_before.market, params)
    after = compute_margin(ei_after.portfolios, ei_after.market, params)

    im_row = out.find_element(By.CSS_SELECTOR, '#sim-margin tr[data-field="im"]')
    assert _cell(im_row, "before") == pytest.approx(float(before.im[0]), abs=CENT)
    assert _cell(im_row, "after") == pytest.approx(float(after.im[0]), abs=CENT)
    assert float(after.im[0]) != pytest.approx(float(before.im[0]), abs=1.0)
    equity_row = out.find_element(By.CSS_SELECTOR, '#sim-margin tr[data-field="equity"]')
    assert _cell(equity_row, "after") == pytest.approx(float(before.equity[0]), abs=CENT)
    mm_row = out.find_element(By.CSS_SELECTOR, '#sim-margin tr[data-field="mm"]')
    assert _cell(mm_row, "after") == pytest.approx(float(after.mm[0]), abs=CENT)

    # the new liquidation prices are POST /simulate's
    api = requests.post(
        f"{stack.url}/simulate",
        json={"account": stack.account, "legs": [{"instrument": i, "size": s} for i, s in legs]},
        timeout=60,
    ).json()
    assert api["after"]["im"] == pytest.approx(float(after.im[0]), rel=1e-12)
    for d in api["after"]["liquidation"]:
        row = out.find_element(
            By.CSS_SELECTOR, f'#sim-liquidation tr[data-underlying="{d["underlying"]}"]'
        )
        _shows(row, "priceDown-after", d["priceDown"])
        _shows(row, "priceUp-after", d["priceUp"])
    eth = next(d for d in api["after"]["liquidation"] if d["underlying"] == "ETH")
    eth_before = next(d for d in api["before"]["liquidation"] if d["underlying"] == "ETH")
    assert eth["priceDown"] > eth_before["priceDown"]  # more long ETH: liquidated sooner


def test_history_names_a_collateral_deposit_by_symbol_and_amount(stack: DashboardStack) -> None:
    body = requests.get(f"{stack.url}/history/{stack.account}", timeout=30).json()
    (dep,) = [e for e in body["events"] if e["event"] == "Deposited"]
    assert dep["symbol"] == "WETH"
    assert dep["amount"] == TRADER_WETH / 10**18
    assert dep["amountRaw"] == str(TRADER_WETH)


def test_the_keepers_server_serves_the_page_at_its_root_and_refuses_unknown_files(
    stack: DashboardStack,
) -> None:
    for path in ("/", "/dashboard"):
        r = requests.get(f"{stack.url}{path}", timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert (
        requests.get(f"{stack.url}/static/dashboard.js", timeout=10)
        .headers["Content-Type"]
        .startswith("text/javascript")
    )
    missing = requests.get(f"{stack.url}/static/nothing.js", timeout=10)
    assert missing.status_code == 404 and "nothing.js" in missing.json()["error"]
