"""An on-chain price feed read over JSON-RPC: Chainlink's ``AggregatorV3Interface``.

Per symbol, one aggregator address. Two ``eth_call``s at ``latest``:

- ``decimals()`` (selector ``0x313ce567``) -> ``uint8``, read once and kept;
- ``latestRoundData()`` (selector ``0xfeaf968c``) -> ``(uint80 roundId, int256 answer,
  uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)``; the price is
  ``answer / 10**decimals`` USD and its time is ``updatedAt``.

A round with ``answer <= 0``, ``updatedAt == 0`` (never completed) or ``answeredInRound <
roundId`` (carried over from an older round) is refused. Staleness against the feed's
heartbeat is judged by the composite (its ``max_age_seconds``), like every other source's.
The reader speaks raw JSON-RPC on the standard library, so any node URL works and tests
replay recorded answers from a local server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_abi.abi import decode
from eth_utils.address import is_hex_address, to_checksum_address

from keeper.errors import FeedError
from keeper.feeds.http import JsonHttp
from keeper.feeds.sources import MarketSource, Observation

__all__ = ["DECIMALS", "LATEST_ROUND_DATA", "ChainlinkSource"]

DECIMALS = "0x313ce567"
LATEST_ROUND_DATA = "0xfeaf968c"


class ChainlinkSource(MarketSource):
    """AggregatorV3 reader on the node at ``url``; ``feeds``: symbol -> aggregator address."""

    def __init__(
        self, name: str, url: str, feeds: Mapping[str, str], *, timeout: float = 5.0
    ) -> None:
        for sym, addr in feeds.items():
            if not is_hex_address(addr):
                raise ValueError(f"{name}: aggregator of {sym} is not an address: {addr!r}")
        self.name = name
        self.http = JsonHttp(url, source=name, timeout=timeout)
        self.feeds = {sym: to_checksum_address(a) for sym, a in feeds.items()}
        self._decimals: dict[str, int] = {}
        self._id = 0

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.feeds)

    def _eth_call(self, to: str, data: str) -> bytes:
        self._id += 1
        body = self.http.post(
            "",
            {
                "jsonrpc": "2.0",
                "id": self._id,
                "method": "eth_call",
                "params": [{"to": to, "data": data}, "latest"],
            },
        )
        if not isinstance(body, dict):
            raise FeedError(f"{self.name}: JSON-RPC answer is not an object")
        if "error" in body:
            raise FeedError(f"{self.name}: eth_call to {to} failed: {body['error']}")
        result: Any = body.get("result")
        if not isinstance(result, str) or not result.startswith("0x"):
            raise FeedError(f"{self.name}: eth_call to {to} returned {result!r}")
        try:
            return bytes.fromhex(result[2:])
        except ValueError:
            raise FeedError(f"{self.name}: eth_call to {to} returned non-hex data") from None

    def _decimals_of(self, addr: str) -> int:
        if addr not in self._decimals:
            raw = self._eth_call(addr, DECIMALS)
            try:
                (dec,) = decode(["uint8"], raw)
            except Exception as exc:  # eth_abi raises several decoding errors
                raise FeedError(f"{self.name}: decimals() of {addr} undecodable") from exc
            self._decimals[addr] = int(dec)
        return self._decimals[addr]

    def fetch(self, now: int) -> Observation:
        spots: dict[str, float] = {}
        times: list[int] = []
        for sym, addr in self.feeds.items():
            dec = self._decimals_of(addr)
            raw = self._eth_call(addr, LATEST_ROUND_DATA)
            try:
                round_id, answer, _, updated_at, answered_in = decode(
                    ["uint80", "int256", "uint256", "uint256", "uint80"], raw
                )
            except Exception as exc:  # eth_abi raises several decoding errors
                raise FeedError(f"{self.name}: latestRoundData() of {sym} undecodable") from exc
            if answer <= 0:
                raise FeedError(f"{self.name}: {sym} answer {answer} is not a price")
            if updated_at == 0:
                raise FeedError(f"{self.name}: {sym} round {round_id} is not complete")
            if answered_in < round_id:
                raise FeedError(
                    f"{self.name}: {sym} answer carried from round {answered_in} < {round_id}"
                )
            spots[sym] = answer / 10**dec
            times.append(int(updated_at))
        return Observation(source=self.name, time=min(times), spots=spots)
