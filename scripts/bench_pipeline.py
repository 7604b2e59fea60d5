"""Epoch pipeline time by stage for N accounts on Anvil, and gas per epoch.

    python -m scripts.bench_pipeline --accounts 1000 10000 --epochs 3

For each N: a fresh Anvil (high block gas limit), the world of ``scripts/pipeline_world``,
N keys with one subaccount each holding USDC cash (mint, approve, createSubaccount,
depositCash), one epoch, then each
account takes a 2-leg quote (1 ETH perp + 1 ETH call) from one market maker, then
``--epochs`` epochs are timed. Setup transactions are signed locally and sent in JSON-RPC
batches with automine off (one ``evm_mine`` per batch) so that setting up 10,000 accounts
takes minutes, not an hour; the timed epochs run with automine on, as the keeper does.

Stages (seconds, median over the timed epochs): index (incremental event scan), snapshot
(``accountStates`` in batches + instruments, tokens, funding, epoch), market (feed tick),
compute (engine: risk arrays + aggregation + WAD conversion), tree (Merkle tree), store
(sqlite leaves + proofs + the epoch JSON file), sign (2-of-3 EIP-712), post (simulate,
send, receipt). Also the full index rebuild from the deployment block and postEpoch gas.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from eth_utils.crypto import keccak
from web3.contract import Contract

from keeper.attestation import InstrumentProof
from keeper.chain import ChainAdapter
from keeper.pipeline import STAGES, EpochResult
from keeper.store import Store
from risk_engine.units import WAD
from scripts.anvil import start_anvil
from scripts.pipeline_world import (
    USDC6,
    World,
    build_world,
    leaves_from_store,
    make_pipeline,
)

BATCH = 200


def _rpc_batch(url: str, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    body: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)
    ]
    out = requests.post(url, json=body, timeout=600).json()
    if not isinstance(out, list):
        raise RuntimeError(f"batch refused: {out}")
    errors = [r["error"] for r in out if "error" in r]
    if errors:
        raise RuntimeError(f"{len(errors)} RPC errors, first: {errors[0]}")
    return [r["result"] for r in sorted(out, key=lambda r: r["id"])]


def _send_all(url: str, raw: list[bytes]) -> None:
    """Send raw transactions in batches, mining one block per batch."""
    for i in range(0, len(raw), BATCH):
        chunk = raw[i : i + BATCH]
        _rpc_batch(url, [("eth_sendRawTransaction", ["0x" + r.hex()]) for r in chunk])
        _rpc_batch(url, [("evm_mine", [])])


_ENCODERS: dict[tuple[str, str], tuple[bytes, list[str]]] = {}


def _encode(contract: Contract, fn: str, args: list[Any]) -> bytes:
    """Calldata via eth_abi with a cached selector (web3's encode_abi is ~20 ms a call)."""
    key = (contract.address, fn)
    if key not in _ENCODERS:
        fn_abi = next(
            e for e in contract.abi if e.get("type") == "function" and e.get("name") == fn
        )
        _ENCODERS[key] = (
            function_abi_to_4byte_selector(fn_abi),
            list(get_abi_input_types(fn_abi)),
        )
    selector, types = _ENCODERS[key]
    return selector + abi_encode(types, args)


def _tx(
    acct: LocalAccount, nonce: int, contract: Contract, fn: str, args: list[Any], gas: int
) -> bytes:
    """A signed EIP-1559 call of ``contract.fn(*args)`` (no RPC: encoded locally)."""
    tx: TransactionDictType = {
        "type": 2,
        "to": contract.address,
        "data": _encode(contract, fn, args),
        "value": 0,
        "nonce": nonce,
        "gas": gas,
        "maxFeePerGas": 10 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "chainId": 31337,
    }
    return bytes(acct.sign_transaction(tx).raw_transaction)


def setup_accounts(world: World, url: str, n: int) -> list[LocalAccount]:
    """N keys, each with one subaccount holding cash (automine off during the bulk sends).
    The ids are read back from ``SubaccountTransferred`` (the mining order of many senders'
    ``createSubaccount`` is the node's) and recorded in ``world.first_accounts``."""
    accts = [Account.from_key(keccak(text=f"bench account {i}")) for i in range(n)]
    for i in range(0, n, BATCH):
        _rpc_batch(
            url, [("anvil_setBalance", [a.address, hex(10 * WAD)]) for a in accts[i : i + BATCH]]
        )
    _rpc_batch(url, [("evm_setAutomine", [False])])
    raw: list[bytes] = []
    amount6 = 20_000 * USDC6
    for a in accts:
        raw.append(_tx(a, 0, world.usdc, "mint", [a.address, amount6], 80_000))
        raw.append(_tx(a, 1, world.usdc, "approve", [world.vault.address, 2**255], 60_000))
        raw.append(_tx(a, 2, world.vault, "createSubaccount", [], 120_000))
    _send_all(url, raw)
    _rpc_batch(url, [("evm_setAutomine", [True])])
    created = world.vault.events.SubaccountTransferred().get_logs(from_block=world.deployment.block)
    ids = {str(ev["args"]["to"]): int(ev["args"]["account"]) for ev in created}
    for a in accts:
        world.first_accounts[a.address] = ids[a.address]
    _rpc_batch(url, [("evm_setAutomine", [False])])
    raw = [_tx(a, 3, world.vault, "depositCash", [ids[a.address], amount6], 150_000) for a in accts]
    _send_all(url, raw)
    _rpc_batch(url, [("evm_setAutomine", [True])])
    return accts


def trade_all(
    world: World,
    url: str,
    accts: list[LocalAccount],
    maker: LocalAccount,
    epoch_leaves: dict[str, Any],
) -> None:
    """Each account buys 1 ETH perp and 1 ETH call from ``maker`` (one quote each)."""
    _rpc_batch(url, [("evm_setAutomine", [False])])
    raw = []
    for i, a in enumerate(accts):
        q, sig = world.quote(
            maker, a, [("ETH-PERP", -1, 3_500), ("ETH-C-3500", -1, 150)], nonce=i + 1
        )
        legs = [world_proof(epoch_leaves, f"instrument:{leg.instrument}") for leg in q.legs]
        args = [
            q.to_abi(),
            sig,
            legs,
            world.margin_proof(epoch_leaves, world.account(maker)).to_abi(),
            world.account(a),
            world.margin_proof(epoch_leaves, world.account(a)).to_abi(),
        ]
        raw.append(_tx(a, 4, world.vault, "executeQuote", args, 900_000))
    _send_all(url, raw)
    _rpc_batch(url, [("evm_setAutomine", [True])])


def world_proof(leaves: dict[str, Any], key: str) -> Any:
    return InstrumentProof.from_json(leaves[key]).to_abi()


def bench(n: int, epochs: int, data_dir: Path) -> dict[str, Any]:
    node = start_anvil(extra_args=("--gas-limit", "1000000000", "--code-size-limit", "100000"))
    try:
        w3 = node.web3()
        world = build_world(w3)
        maker = world.actor("market maker")
        world.fund_cash(maker, 10**9)
        t0 = time.perf_counter()
        accts = setup_accounts(world, node.url, n)
        _rpc_batch(node.url, [("evm_mine", [])])  # the last deposits below the snapshot
        setup_s = time.perf_counter() - t0
        store = Store(data_dir / f"bench-{n}.sqlite")
        p = make_pipeline(world, store, batch_size=200)
        first = p.run_epoch()
        assert first.status == "mined", first
        t0 = time.perf_counter()
        trade_all(world, node.url, accts, maker, leaves_from_store(store, first.epoch or 0))
        trade_s = time.perf_counter() - t0
        results: list[EpochResult] = []
        for _ in range(epochs + 1):
            r = p.run_epoch()
            assert r.status == "mined", r
            results.append(r)
        timed = results[1:]  # the first one still had the trade blocks to index
        with_positions = sum(1 for a in p.chain.account_states(p.chain.accounts) if a.has_positions)
        if with_positions != n + 1:
            raise RuntimeError(f"only {with_positions} of {n + 1} accounts hold positions")
        fresh = ChainAdapter(w3, world.vault.address)
        t0 = time.perf_counter()
        fresh.rebuild()
        rebuild_s = time.perf_counter() - t0
        stages = {s: statistics.median(r.timings.get(s, 0.0) for r in timed) for s in STAGES}
        return {
            "accounts": results[-1].accounts,
            "with_positions": with_positions,
            "stages": stages,
            "total": statistics.median(sum(r.timings.values()) for r in timed),
            "gas": [r.gas_used for r in timed],
            "rebuild_index": rebuild_s,
            "setup_s": setup_s,
            "trade_s": trade_s,
        }
    finally:
        node.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, nargs="+", default=[1_000, 10_000])
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.accounts:
            r = bench(n, args.epochs, Path(tmp))
            rows.append(r)
            print(
                f"N={n}: {r['accounts']} leaves ({r['with_positions']} with positions); "
                f"setup {r['setup_s']:.0f} s, trades {r['trade_s']:.0f} s",
                flush=True,
            )
    header = "| accounts | " + " | ".join(STAGES) + " | total | index rebuild | gas/epoch |"
    print()
    print(header)
    print("|" + "---|" * (len(STAGES) + 5))
    for r in rows:
        cells = [f"{r['stages'][s]:.3f}" for s in STAGES]
        print(
            f"| {r['accounts']:,} | " + " | ".join(cells) + f" | {r['total']:.2f} | "
            f"{r['rebuild_index']:.2f} | {statistics.median(r['gas']):,.0f} |"
        )
    print("\nseconds, median of the timed epochs; gas of postEpoch (2 signatures)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
