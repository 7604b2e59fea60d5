"""Provider payloads in their public formats, for the adapters' tests and the mock venues.

The builders write what each provider's public API answers (field names, string-quoted
prices, millisecond or microsecond times, row layouts) for a given price, time and close
history. ``python -m tests.keeper.feeds.payloads`` writes the recorded fixtures under
``fixtures/`` at 2024-06-30 12:00 UTC from the Binance daily closes of ../shared/data
(BTCUSDT, ETHUSDT) and a smile around the BTC DVOL of that day (45.4 %); the mock venues
(``mock_venue.py``) render the same builders live. No test reaches the internet.
"""

from __future__ import annotations

import calendar
import csv
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_abi.abi import encode

FIXTURES = Path(__file__).with_name("fixtures")
RECORDED_AT = 1_719_748_800  # 2024-06-30T12:00:00Z
DAY = 86_400
#: Chainlink's mainnet ETH/USD and BTC/USD aggregators (proxies).
AGGREGATORS = {
    "ETH": "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419",
    "BTC": "0xF4030086522a5bEEa4988F8cA5B36dbC97BeE88c",
}

Closes = Sequence[tuple[int, float]]


def envelope(result: Any, t: float) -> dict[str, Any]:
    """Deribit's JSON-RPC envelope (``usIn`` / ``usOut`` in microseconds)."""
    us = int(t * 1_000_000)
    return {
        "jsonrpc": "2.0",
        "result": result,
        "usIn": us - 412,
        "usOut": us,
        "usDiff": 412,
        "testnet": False,
    }


def deribit_index(price: float, t: float) -> dict[str, Any]:
    return envelope(
        {"index_price": round(price, 2), "estimated_delivery_price": round(price, 2)}, t
    )


def deribit_ticker(currency: str, mark: float, index: float, t: float) -> dict[str, Any]:
    ms = int(t * 1000)
    return envelope(
        {
            "timestamp": ms,
            "stats": {"volume_usd": 412_553_120.0, "volume": 6741.2, "price_change": 0.61},
            "state": "open",
            "settlement_price": round(mark * 0.9994, 2),
            "open_interest": 1_142_663_120,
            "min_price": round(mark * 0.975, 1),
            "max_price": round(mark * 1.025, 1),
            "mark_price": round(mark, 2),
            "last_price": round(mark, 1),
            "interest_value": 0.0,
            "instrument_name": f"{currency}-PERPETUAL",
            "index_price": round(index, 2),
            "funding_8h": 0.00004612,
            "estimated_delivery_price": round(index, 2),
            "current_funding": 0.0,
            "best_bid_price": round(mark - 0.5, 1),
            "best_bid_amount": 41_230.0,
            "best_ask_price": round(mark + 0.5, 1),
            "best_ask_amount": 12_900.0,
        },
        t,
    )


def option_name(currency: str, expiry: int, strike: float, call: bool) -> str:
    d = datetime.fromtimestamp(expiry, UTC)
    return f"{currency}-{d.day}{d.strftime('%b').upper()}{d.strftime('%y')}-{int(strike)}-" + (
        "C" if call else "P"
    )


def expiry_at(day: str) -> int:
    """``2024-07-26`` -> 08:00 UTC that day (Deribit's expiry time)."""
    y, m, d = (int(x) for x in day.split("-"))
    return calendar.timegm((y, m, d, 8, 0, 0))


def smile_iv(atm: float, skew: float, curvature: float, k: float) -> float:
    return atm + skew * k + curvature * k * k


def deribit_book_summary(
    currency: str,
    spot: float,
    t: float,
    expiries: Sequence[tuple[int, float, float, float, float]],
    strike_step: float,
) -> dict[str, Any]:
    """``get_book_summary_by_currency(kind=option)``: ``expiries`` = (expiry, annual carry,
    atm vol, skew, curvature); 9 strikes around the forward per expiry, calls and puts."""
    rows = []
    ms = int(t * 1000)
    for expiry, carry, atm, skew, curv in expiries:
        tau = (expiry - t) / (365 * DAY)
        fwd = spot * math.exp(carry * tau)
        centre = round(fwd / strike_step) * strike_step
        for j in range(-4, 5):
            strike = centre + j * strike_step
            k = math.log(strike / fwd)
            iv = smile_iv(atm, skew, curv, k)
            for call in (True, False):
                mark = _black_price(fwd, strike, tau, iv, call) / fwd  # in the coin
                rows.append(
                    {
                        "volume_usd": round(1200.0 + 40 * abs(j), 2),
                        "volume": round(1.0 + 0.1 * abs(j), 1),
                        "underlying_price": round(fwd, 2),
                        "underlying_index": option_name(currency, expiry, 0, True).rsplit("-", 2)[
                            0
                        ],
                        "quote_currency": currency,
                        "price_change": None,
                        "open_interest": round(25.0 + 3 * abs(j), 1),
                        "mid_price": round(mark, 4),
                        "mark_price": round(mark, 8),
                        "mark_iv": round(iv * 100, 2),
                        "low": None,
                        "last": None,
                        "interest_rate": 0.0,
                        "instrument_name": option_name(currency, expiry, strike, call),
                        "high": None,
                        "estimated_delivery_price": round(spot, 2),
                        "creation_timestamp": ms,
                        "bid_price": round(max(mark - 0.0005, 0.0001), 4),
                        "base_currency": currency,
                        "ask_price": round(mark + 0.0005, 4),
                    }
                )
    return envelope(rows, t)


def _black_price(f: float, k: float, tau: float, vol: float, call: bool) -> float:
    sd = vol * math.sqrt(tau)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd

    def n(x: float) -> float:
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    return f * n(d1) - k * n(d2) if call else k * n(-d2) - f * n(-d1)


def deribit_chart(closes: Closes, t: float) -> dict[str, Any]:
    """``get_tradingview_chart_data``: columns, ticks in ms (completed bars + the open one)."""
    return envelope(
        {
            "volume": [round(1000 + 7 * i % 300, 3) for i in range(len(closes))],
            "ticks": [b * 1000 for b, _ in closes],
            "status": "ok",
            "open": [round(c * 0.998, 1) for _, c in closes],
            "low": [round(c * 0.97, 1) for _, c in closes],
            "high": [round(c * 1.03, 1) for _, c in closes],
            "cost": [round(c * 1000, 0) for _, c in closes],
            "close": [round(c, 1) for _, c in closes],
        },
        t,
    )


def binance_ticker(pair: str, price: float, t: float) -> dict[str, Any]:
    ms = int(t * 1000)
    return {
        "symbol": pair,
        "priceChange": f"{price * 0.0061:.8f}",
        "priceChangePercent": "0.610",
        "weightedAvgPrice": f"{price * 0.999:.8f}",
        "prevClosePrice": f"{price * 0.994:.8f}",
        "lastPrice": f"{price:.8f}",
        "lastQty": "0.00512000",
        "bidPrice": f"{price - 0.01:.8f}",
        "bidQty": "3.21876000",
        "askPrice": f"{price:.8f}",
        "askQty": "1.90412000",
        "openPrice": f"{price * 0.994:.8f}",
        "highPrice": f"{price * 1.012:.8f}",
        "lowPrice": f"{price * 0.988:.8f}",
        "volume": "11842.61230000",
        "quoteVolume": f"{11842.6123 * price:.8f}",
        "openTime": ms - DAY * 1000,
        "closeTime": ms,
        "firstId": 3_664_112_001,
        "lastId": 3_665_012_554,
        "count": 900_554,
    }


def binance_klines(closes: Closes, bar: int) -> list[list[Any]]:
    """Rows ``[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades,
    takerBuyBase, takerBuyQuote, "0"]``, oldest first."""
    rows = []
    prev = closes[0][1]
    for b, c in closes:
        o = prev
        rows.append(
            [
                b * 1000,
                f"{o:.8f}",
                f"{max(o, c) * 1.011:.8f}",
                f"{min(o, c) * 0.989:.8f}",
                f"{c:.8f}",
                "21345.11200000",
                (b + bar) * 1000 - 1,
                f"{21345.112 * c:.8f}",
                1_412_338,
                "10611.90200000",
                f"{10611.902 * c:.8f}",
                "0",
            ]
        )
        prev = c
    return rows


def coinbase_ticker(price: float, t: float) -> dict[str, Any]:
    iso = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "ask": f"{price + 0.01:.2f}",
        "bid": f"{price:.2f}",
        "volume": "9512.80174336",
        "trade_id": 672_004_118,
        "price": f"{price:.2f}",
        "size": "0.00150000",
        "time": iso,
        "rfq_volume": "112.401233",
    }


def coinbase_candles(closes: Closes) -> list[list[float]]:
    """Rows ``[time, low, high, open, close, volume]``, NEWEST first."""
    rows = []
    prev = closes[0][1]
    for b, c in closes:
        o = prev
        rows.append([b, round(min(o, c) * 0.989, 2), round(max(o, c) * 1.011, 2), o, c, 8412.33])
        prev = c
    return rows[::-1]


def rpc_result(result: str, ident: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "result": result}


def chainlink_round(price: float, updated_at: int, round_id: int = 110680464442257320164) -> str:
    """ABI-encoded ``latestRoundData()`` answer (8 decimals)."""
    data = encode(
        ["uint80", "int256", "uint256", "uint256", "uint80"],
        [round_id, int(round(price * 1e8)), updated_at, updated_at, round_id],
    )
    return "0x" + data.hex()


def chainlink_decimals(decimals: int = 8) -> str:
    return "0x" + encode(["uint8"], [decimals]).hex()


# ----------------------------------------------------------------------- recorded set

#: (expiry, carry, atm vol, skew, curvature) per currency at RECORDED_AT
SMILES = {
    "BTC": [
        (expiry_at("2024-07-05"), 0.08, 0.424, -0.12, 0.95),
        (expiry_at("2024-07-26"), 0.09, 0.454, -0.10, 0.62),
        (expiry_at("2024-09-27"), 0.10, 0.492, -0.08, 0.38),
        (expiry_at("2024-12-27"), 0.11, 0.527, -0.06, 0.24),
    ],
    "ETH": [
        (expiry_at("2024-07-05"), 0.09, 0.468, -0.10, 0.88),
        (expiry_at("2024-07-26"), 0.10, 0.512, -0.09, 0.58),
        (expiry_at("2024-09-27"), 0.11, 0.553, -0.07, 0.35),
        (expiry_at("2024-12-27"), 0.12, 0.581, -0.05, 0.22),
    ],
}
SPOTS = {"BTC": 61_293.42, "ETH": 3_402.87}
STRIKE_STEP = {"BTC": 1000.0, "ETH": 50.0}


def shared_closes(symbol: str, n: int = 120) -> list[tuple[int, float]]:
    """The last ``n`` daily closes of ../shared/data before RECORDED_AT, plus the open bar
    (its 'close' the recorded spot), as (bar open time, close)."""
    path = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "daily"
    with open(path / f"{symbol}.csv") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        y, m, d = (int(x) for x in r["date"].split("-"))
        t = calendar.timegm((y, m, d, 0, 0, 0))
        if t + DAY <= RECORDED_AT:
            out.append((t, float(r["close"])))
    out = out[-n:]
    out.append((out[-1][0] + DAY, SPOTS[symbol]))
    return out


def write_fixtures() -> None:
    t = RECORDED_AT
    ts = t - 0.35  # the venues answer a moment before the keeper reads them
    files: dict[str, Any] = {}
    for sym, pair_b, pair_c in (("BTC", "BTCUSDT", "BTC-USD"), ("ETH", "ETHUSDT", "ETH-USD")):
        spot = SPOTS[sym]
        closes = shared_closes(sym)
        usd = [(b, round(c * 1.00031, 2)) for b, c in closes]  # Coinbase USD vs Binance USDT
        perp = [(b, c * 1.0004) for b, c in closes]
        files[f"deribit/get_index_price_{sym.lower()}_usd.json"] = deribit_index(spot * 1.0002, ts)
        files[f"deribit/ticker_{sym}-PERPETUAL.json"] = deribit_ticker(
            sym, spot * 1.0006, spot * 1.0002, ts
        )
        files[f"deribit/get_book_summary_by_currency_{sym}_option.json"] = deribit_book_summary(
            sym, spot * 1.0002, ts, SMILES[sym], STRIKE_STEP[sym]
        )
        files[f"deribit/get_tradingview_chart_data_{sym}-PERPETUAL.json"] = deribit_chart(perp, ts)
        files[f"binance/ticker_24hr_{pair_b}.json"] = binance_ticker(pair_b, spot, ts)
        files[f"binance/klines_{pair_b}.json"] = binance_klines(closes, DAY)
        files[f"coinbase/ticker_{pair_c}.json"] = coinbase_ticker(round(spot * 1.00031, 2), ts)
        files[f"coinbase/candles_{pair_c}.json"] = coinbase_candles(usd)
        files[f"chainlink/latestRoundData_{AGGREGATORS[sym]}.json"] = rpc_result(
            chainlink_round(spot * 1.0001, t - 1_740)
        )
    files["chainlink/decimals.json"] = rpc_result(chainlink_decimals())
    for name, payload in files.items():
        path = FIXTURES / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    write_fixtures()
