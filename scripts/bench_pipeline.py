"""Epoch pipeline time by stage for N accounts on Anvil, and gas per epoch.

    python -m scripts.bench_pipeline --accounts 1000 10000 --epochs 3

For each N: a fresh Anvil (high block gas limit), the world of ``scripts/pipeline_world``,
N subaccounts each holding 20,000 USDC cash, one epoch, then each account takes a 2-leg
quote (1 ETH perp + 1 ETH call) from one market maker, then ``--epochs`` epochs are
timed. The N subaccounts are opened and their quotes filled by the helper contract
``scripts/contracts/BulkWorld.sol`` (it owns them): 200 accounts or 100 fills per
transaction, the transactions sent in JSON-RPC batches with automine off (20 per block),
and the maker's N quote signatures computed from one EIP-712 preimage (checked against
``keeper.eip712.sign_quote``), so that 100,000 accounts are set up in minutes; the timed
epochs run with automine on, as the keeper does.

Stages (seconds, median over the timed epochs): index (incremental event scan), snapshot
(``accountStates`` in batches + instruments, tokens, funding, epoch), market (feed tick),
compute (engine: risk arrays + aggregation + WAD conversion), tree (Merkle tree), store
(sqlite leaves + proofs + the epoch JSON file), sign (2-of-3 EIP-712), post (simulate,
send, receipt; "post: keeper CPU" is the keeper process's own CPU time in it, the rest
being the node's simulation and mining). Also the full index rebuild from the deployment
block (owners, then every account's state seeded by ``accountStates``), postEpoch gas and
the process's peak RSS. ``--disputes`` then turns the vault's challenge window on and times
as many epochs again on the same world (a second row per N): the keeper then also hashes
the engine rows, commits the market inputs and stores the published dispute inputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import coincurve
import numpy as np
import requests
from eth_abi.abi import encode as abi_encode
from eth_account._utils.encode_typed_data.encoding_and_hashing import encode_data
from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from eth_typing import HexStr
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from eth_utils.crypto import keccak
from web3.contract import Contract
from web3.types import RPCEndpoint

from keeper.attestation import InstrumentProof
from keeper.chain import ChainAdapter
from keeper.eip712 import QUOTE_TYPES, Leg, Quote, quote_typed_data, sign_quote
from keeper.pipeline import STAGES, EpochResult
from keeper.store import Store
from risk_engine.units import WAD
from scripts.anvil import start_anvil
from scripts.deploy import deploy_contract
from scripts.pipeline_world import (
    USDC6,
    World,
    build_world,
    labelled_key,
    leaves_from_store,
    make_pipeline,
)
from scripts.toolchain.compile import compile_contracts

BATCH = 200
#: The helper contract that opens accounts and fills quotes in bulk.
BULK_SOURCE = Path(__file__).resolve().parent / "contracts" / "BulkWorld.sol"


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


def _send_all(url: str, raw: list[bytes], per_block: int = BATCH) -> None:
    """Send raw transactions in batches, mining one block per batch."""
    for i in range(0, len(raw), per_block):
        chunk = raw[i : i + per_block]
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


#: Accounts opened, and quotes filled, per ``BulkWorld`` transaction (~25M gas of 1e9).
OPEN_PER_TX = 200
TAKE_PER_TX = 100


def deploy_bulk(world: World) -> Contract:
    """The benchmark's ``BulkWorld`` helper (scripts/contracts/BulkWorld.sol)."""
    compiled = compile_contracts(contracts_dir=BULK_SOURCE.parent)
    return deploy_contract(
        world.w3, compiled, "BulkWorld", [world.vault.address, world.usdc.address], world.owner
    )


def setup_accounts(world: World, url: str, bulk: Contract, n: int) -> list[int]:
    """N subaccounts holding 20,000 USDC cash each, opened by ``bulk`` (it owns them),
    :data:`OPEN_PER_TX` per transaction, the transactions sent in JSON-RPC batches with
    automine off (one ``evm_mine`` per batch). Returns their ids (read back from
    ``SubaccountTransferred``)."""
    sender = _bulk_sender(world)
    nonce = int(world.w3.eth.get_transaction_count(sender.address))
    raw = []
    for i in range(0, n, OPEN_PER_TX):
        k = min(OPEN_PER_TX, n - i)
        raw.append(_tx(sender, nonce, bulk, "open", [k, 20_000 * USDC6], 900_000_000 // 20))
        nonce += 1
    _rpc_batch(url, [("evm_setAutomine", [False])])
    _send_all(url, raw, per_block=20)
    _rpc_batch(url, [("evm_setAutomine", [True])])
    _check_mined(world, raw)
    created = ChainAdapter(world.w3, world.vault.address, deployment_block=world.deployment.block)
    created.rebuild_to(world.w3.eth.block_number)
    return [a for a in created.accounts if created.owner_of(a) == bulk.address]


def _quote_signer(world: World, maker: LocalAccount, base: Quote) -> Callable[[int], bytes]:
    """``sign(nonce)``: the maker's signature of ``base`` with that nonce, computed from
    the EIP-712 preimage with the nonce word replaced (checked against
    :func:`keeper.eip712.sign_quote`), so that 100,000 quotes sign in seconds."""
    typed = quote_typed_data(base, world.domain)
    header = b"\x19" + bytes(typed.version) + bytes(typed.header)
    pre = bytearray(encode_data("Quote", {"EIP712Domain": [], **QUOTE_TYPES}, base.to_eip712()))
    at = 32 * 5  # typeHash, maker, makerAccount, taker, legs, **nonce**, deadline
    key = coincurve.PrivateKey(bytes(maker.key))

    def sign(nonce: int) -> bytes:
        pre[at : at + 32] = nonce.to_bytes(32, "big")
        digest = keccak(header + keccak(bytes(pre)))
        sig = key.sign_recoverable(digest, hasher=None)
        return sig[:64] + bytes([sig[64] + 27])

    probe = dataclasses.replace(base, nonce=base.nonce + 1)
    if sign(probe.nonce) != sign_quote(probe, maker, world.domain):
        raise RuntimeError("fast quote signing disagrees with keeper.eip712.sign_quote")
    return sign


def trade_all(
    world: World,
    url: str,
    bulk: Contract,
    accounts: list[int],
    maker: LocalAccount,
    epoch_leaves: dict[str, Any],
) -> None:
    """Each account buys 1 ETH perp and 1 ETH call from ``maker`` (one quote each, nonces
    1..N), filled by ``bulk`` :data:`TAKE_PER_TX` per transaction."""
    base = Quote(
        maker=maker.address,
        maker_account=world.account(maker),
        taker=bulk.address,
        legs=tuple(
            Leg(world.instruments[name], -WAD, price * WAD)
            for name, price in (("ETH-PERP", 3_500), ("ETH-C-3500", 150))
        ),
        nonce=1,
        deadline=world.now() + 86_400,
    )
    sign = _quote_signer(world, maker, base)
    legs = [world_proof(epoch_leaves, f"instrument:{leg.instrument}") for leg in base.legs]
    maker_proof = world.margin_proof(epoch_leaves, base.maker_account).to_abi()
    sender = _bulk_sender(world)
    nonce = int(world.w3.eth.get_transaction_count(sender.address))
    raw = []
    for i in range(0, len(accounts), TAKE_PER_TX):
        chunk = accounts[i : i + TAKE_PER_TX]
        q = dataclasses.replace(base, nonce=base.nonce + i)
        sigs = b"".join(sign(q.nonce + k) for k in range(len(chunk)))
        args = [q.to_abi(), legs, maker_proof, chunk, sigs]
        raw.append(_tx(sender, nonce, bulk, "take", args, 900_000_000 // 20))
        nonce += 1
    _rpc_batch(url, [("evm_setAutomine", [False])])
    _send_all(url, raw, per_block=20)
    _rpc_batch(url, [("evm_setAutomine", [True])])
    _check_mined(world, raw)


def _bulk_sender(world: World) -> LocalAccount:
    """A funded key of its own for the bulk transactions (the keeper's sender keeps its
    nonces to itself)."""
    acct = labelled_key("bench bulk sender")
    world.w3.provider.make_request(
        RPCEndpoint("anvil_setBalance"), [acct.address, hex(10**6 * WAD)]
    )
    return acct


def _check_mined(world: World, raw: list[bytes]) -> None:
    """Every bulk transaction succeeded (a revert would leave the world short)."""
    for r in raw:
        receipt = world.w3.eth.get_transaction_receipt(HexStr("0x" + keccak(r).hex()))
        if int(receipt["status"]) != 1:
            raise RuntimeError(f"bulk transaction {receipt['transactionHash'].hex()} reverted")


def world_proof(leaves: dict[str, Any], key: str) -> Any:
    return InstrumentProof.from_json(leaves[key]).to_abi()


def _timed_epochs(p: Any, n: int, epochs: int) -> dict[str, Any]:
    """``epochs + 1`` epochs; the medians of the last ``epochs`` (the first still indexes
    what came before)."""
    results: list[EpochResult] = []
    post_cpu: list[float] = []
    for _ in range(epochs + 1):
        cpu_before = p.stage_cpu.get("post", 0.0)
        r = p.run_epoch()
        assert r.status == "mined", r
        results.append(r)
        post_cpu.append(p.stage_cpu.get("post", 0.0) - cpu_before)
        _progress(n, f"epoch {r.epoch}: {_seconds(r):.2f} s")
    timed = results[1:]
    return {
        "accounts": results[-1].accounts,
        "stages": {s: statistics.median(r.timings.get(s, 0.0) for r in timed) for s in STAGES},
        "total": statistics.median(_seconds(r) for r in timed),
        # the keeper's own CPU in the post stage (encode, sign, send, poll); the rest of
        # the stage's wall time is the node simulating and mining the transaction
        "post_cpu": statistics.median(post_cpu[1:]),
        "gas": [r.gas_used for r in timed],
        # ru_maxrss is KiB on Linux; the process's peak so far (N ascending: this N's)
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def bench(n: int, epochs: int, data_dir: Path, *, disputes: bool = False) -> list[dict[str, Any]]:
    """The rows of ``n`` accounts: the challenge window off, then (``disputes``) on."""
    # --prune-history: Anvil keeps every block's state in memory otherwise (8 GB by the
    # first epoch at 100,000 accounts); the keeper reads at most a few blocks back.
    node = start_anvil(
        extra_args=(
            "--gas-limit",
            "1000000000",
            "--code-size-limit",
            "100000",
            "--prune-history",
            "64",
        )
    )
    try:
        w3 = node.web3()
        world = build_world(w3)
        maker = world.actor("market maker")
        world.fund_cash(maker, 10**9)
        t0 = time.perf_counter()
        bulk = deploy_bulk(world)
        accounts = setup_accounts(world, node.url, bulk, n)
        _rpc_batch(node.url, [("evm_mine", [])])  # the last deposits below the snapshot
        setup_s = time.perf_counter() - t0
        _progress(n, f"{len(accounts)} subaccounts opened in {setup_s:.0f} s")
        store = Store(data_dir / f"bench-{n}.sqlite")
        p = make_pipeline(world, store, batch_size=200)
        first = p.run_epoch()
        assert first.status == "mined", first
        t0 = time.perf_counter()
        trade_all(
            world, node.url, bulk, accounts, maker, leaves_from_store(store, first.epoch or 0)
        )
        trade_s = time.perf_counter() - t0
        _progress(n, f"{len(accounts)} fills in {trade_s:.0f} s")
        off = _timed_epochs(p, n, epochs)
        with_positions = sum(1 for a in p.chain.account_states(p.chain.accounts) if a.has_positions)
        if with_positions != n + 1:
            raise RuntimeError(f"only {with_positions} of {n + 1} accounts hold positions")
        fresh = ChainAdapter(w3, world.vault.address)
        t0 = time.perf_counter()
        fresh.rebuild()
        rebuild_s = time.perf_counter() - t0
        common = {
            "with_positions": with_positions,
            "rebuild_index": rebuild_s,
            "setup_s": setup_s,
            "trade_s": trade_s,
        }
        rows = [{**off, **common, "window": "off"}]
        if disputes:  # the same world with the challenge window on: the commitments' cost
            world.disputes_on()
            on = _timed_epochs(p, n, epochs)
            rows.append({**on, **common, "window": "on"})
        return rows
    finally:
        node.stop()


def _seconds(r: EpochResult) -> float:
    """The epoch's time: its stages, and the state audit when one ran ("check"); not the
    compute and tree stages' sub-stages (``columns`` ... ``merkle``), which they contain."""
    return sum(v for k, v in r.timings.items() if k in STAGES or k == "check")


def _progress(n: int, what: str) -> None:
    print(f"  N={n}: {what}", flush=True)


def _blas_line() -> str:
    """numpy's BLAS and its thread setting (``numpy.show_config``), for the table."""
    cfg: Any = np.show_config(mode="dicts")
    blas = cfg.get("Build Dependencies", {}).get("blas", {})
    threads = {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")}
    conf = blas.get("openblas configuration", "")
    return (
        f"BLAS {blas.get('name')} {blas.get('version')} ({conf}); threads env {threads or 'unset'}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, nargs="+", default=[1_000, 10_000])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument(
        "--disputes",
        action="store_true",
        help="then turn the vault's challenge window on and time as many epochs again (the "
        "keeper commits and publishes the dispute inputs, docs/protocol.md §11)",
    )
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.accounts:
            got = bench(n, args.epochs, Path(tmp), disputes=args.disputes)
            rows.extend(got)
            r = got[0]
            print(
                f"N={n}: {r['accounts']} leaves ({r['with_positions']} with positions); "
                f"setup {r['setup_s']:.0f} s, trades {r['trade_s']:.0f} s",
                flush=True,
            )
    header = (
        "| accounts | window | " + " | ".join(STAGES) + " | total | total without post | "
        "post: keeper CPU | peak RSS (MB) | index rebuild | gas/epoch |"
    )
    print()
    print(header)
    print("|" + "---|" * (len(STAGES) + 8))
    for r in rows:
        cells = [f"{r['stages'][s]:.3f}" for s in STAGES]
        print(
            f"| {r['accounts']:,} | {r['window']} | "
            + " | ".join(cells)
            + f" | {r['total']:.2f} | "
            f"{r['total'] - r['stages']['post']:.2f} | {r['post_cpu']:.3f} | "
            f"{r['peak_rss_mb']:.0f} | "
            f"{r['rebuild_index']:.2f} | {statistics.median(r['gas']):,.0f} |"
        )
    print("\nseconds, median of the timed epochs; gas of postEpoch (2 signatures)")
    print(f"numpy {np.__version__}: {_blas_line()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
