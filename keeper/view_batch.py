"""Contract view calls read in one JSON-RPC batch, without web3's per-call machinery.

A snapshot reads about sixteen small values (instrument count, tokens, funding indices,
the current epoch, governance...). Through web3's contract API each read was three HTTP
requests (two of them ``eth_chainId`` for web3's validation) and ABI handling in Python:
0.1 s to 0.2 s of the epoch at any number of accounts (docs/benchmarks.md, "Keeper epoch
pipeline"). Here a read is a :class:`ViewCall` (target, calldata, output types), made from
the ABI by :class:`ViewFunctions`, and :func:`read_batch` sends every request of one
snapshot step as one JSON-RPC batch (one HTTP request) and decodes the answers with
``eth_abi``, as web3 does: a function with one output gives that value, with several a
tuple; addresses come back lowercase (the caller checksums them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import (
    function_abi_to_4byte_selector,
    get_abi_input_types,
    get_abi_output_types,
)
from web3 import Web3
from web3.types import RPCEndpoint

from keeper.errors import ChainCallError

__all__ = ["ViewCall", "ViewFunctions", "read_batch"]


@dataclass(frozen=True)
class ViewCall:
    """``eth_call`` of ``data`` on ``to``, its answer decoded as ``outputs`` (ABI types)."""

    to: str
    data: bytes
    outputs: tuple[str, ...]
    what: str

    def request(self, block: str) -> tuple[str, list[Any]]:
        return "eth_call", [{"to": self.to, "data": "0x" + self.data.hex()}, block]

    def decode(self, result: str) -> Any:
        raw = bytes.fromhex(result[2:] if result.startswith("0x") else result)
        if not raw and self.outputs:
            raise ChainCallError(f"{self.what}: empty answer (no contract at {self.to}?)")
        values = abi_decode(list(self.outputs), raw)
        return values[0] if len(values) == 1 else tuple(values)


class ViewFunctions:
    """The view functions of one contract ABI at one address, by name (no overloads)."""

    def __init__(self, address: str, abi: Sequence[Mapping[str, Any]]) -> None:
        self.address = address
        self._fns: dict[str, tuple[bytes, list[str], tuple[str, ...]]] = {}
        for entry in abi:
            if entry.get("type") == "function":
                self._fns[str(entry["name"])] = (
                    function_abi_to_4byte_selector(entry),  # type: ignore[arg-type]
                    get_abi_input_types(entry),  # type: ignore[arg-type]
                    tuple(get_abi_output_types(entry)),  # type: ignore[arg-type]
                )

    def call(self, name: str, *args: Any) -> ViewCall:
        """The read of ``name(*args)``."""
        selector, inputs, outputs = self._fns[name]
        return ViewCall(self.address, selector + abi_encode(inputs, list(args)), outputs, name)


def read_batch(w3: Web3, requests: Sequence[tuple[str, list[Any]]]) -> list[Any]:
    """The ``result`` of every JSON-RPC request, in order, sent as one batch (one request
    each where the provider cannot batch). Raises :class:`ChainCallError` naming the first
    request the node answered with an error; the caller retries transport errors."""
    if not requests:
        return []
    calls = [(RPCEndpoint(method), params) for method, params in requests]
    provider: Any = w3.provider
    try:
        answers = provider.make_batch_request(calls)
    except NotImplementedError:
        answers = [provider.make_request(method, params) for method, params in calls]
    if not isinstance(answers, list):  # the node refused the batch as a whole
        raise ChainCallError(f"batch of {len(calls)} reads: {answers.get('error', answers)}")
    if len(answers) != len(calls):
        raise ChainCallError(f"batch of {len(calls)} reads answered {len(answers)} times")
    out = []
    for (method, params), answer in zip(requests, answers, strict=True):
        if "error" in answer:
            raise ChainCallError(f"{method}{params!r}: {answer['error']}")
        out.append(answer["result"])
    return out
