"""keeper.view_batch: the snapshot's small reads in JSON-RPC batches equal web3's contract
calls one by one, and a read the node refuses is named."""

from __future__ import annotations

import pytest
from eth_utils.address import to_checksum_address
from web3.contract import Contract

from keeper.abi import erc20_abi
from keeper.chain import ChainAdapter
from keeper.errors import ChainCallError, ChainResetError
from keeper.view_batch import ViewFunctions, read_batch
from scripts.pipeline_world import World

pytestmark = pytest.mark.anvil


def _one_by_one(world: World, block: int) -> dict[str, object]:
    """The snapshot's small reads through web3's contract API, one call each."""

    def call(contract: Contract, name: str, *args: object) -> object:
        return contract.functions[name](*args).call(block_identifier=block)

    vault = world.vault
    count = int(call(vault, "instrumentCount"))  # type: ignore[call-overload]
    tokens = []
    for raw in call(vault, "tokens"):  # type: ignore[attr-defined]
        erc20 = world.w3.eth.contract(address=to_checksum_address(raw), abi=erc20_abi())
        tokens.append((to_checksum_address(raw), call(erc20, "symbol"), call(erc20, "decimals")))
    return {
        "instruments": [tuple(call(vault, "instrument", i)) for i in range(1, count + 1)],  # type: ignore[arg-type]
        "tokens": tokens,
        "epoch": tuple(call(vault, "currentEpoch")),  # type: ignore[arg-type]
        "governance": (
            call(vault, "configVersion"),
            call(vault, "quorum"),
            tuple(map(to_checksum_address, call(vault, "signers"))),  # type: ignore[call-overload]
        ),
        "max_age": call(vault, "maxAge"),
        "future_tolerance": call(vault, "futureTolerance"),
        "funding": {
            i: call(vault, "cumFunding", i)
            for i in range(1, count + 1)
            if call(vault, "instrument", i)[0] == 0  # type: ignore[index]
        },
    }


def test_snapshot_reads_in_batches_equal_the_contract_calls_one_by_one(world: World) -> None:
    chain = ChainAdapter(world.w3, world.vault.address)
    block = chain.head()
    chain.index(to_block=block)
    snap = chain.snapshot(block)
    ref = _one_by_one(world, block)
    assert [
        (i.kind, i.underlying.encode().ljust(32, b"\0"), i.strike, i.expiry)
        for i in snap.instruments
    ] == ref["instruments"]
    assert [(t.address, t.symbol, t.decimals) for t in snap.tokens] == ref["tokens"]
    assert [t.index for t in snap.tokens] == list(range(len(snap.tokens)))
    e = snap.current_epoch
    assert (e.epoch, e.snapshot_block, e.timestamp, e.root) == ref["epoch"]
    assert (snap.config_version, snap.quorum, snap.signers) == ref["governance"]
    assert (snap.max_age, snap.future_tolerance) == (ref["max_age"], ref["future_tolerance"])
    assert snap.cum_funding == ref["funding"]
    blk = world.w3.eth.get_block(block)
    assert snap.block_hash == "0x" + bytes(blk["hash"]).hex()
    assert snap.block_timestamp == blk["timestamp"]
    # a second snapshot reads the instruments and tokens it knows from memory: the same
    assert chain.snapshot(block) == snap
    assert chain.governance(block) == {
        "config_version": snap.config_version,
        "quorum": snap.quorum,
        "signers": snap.signers,
    }


def test_read_batch_names_the_read_the_node_refuses(world: World) -> None:
    views = ViewFunctions(world.vault.address, world.abi)
    good = views.call("maxAge").request("latest")
    bad = ("eth_call", [{"to": world.vault.address, "data": "0xdeadbeef"}, "latest"])
    assert int(read_batch(world.w3, [good])[0], 16) > 0
    with pytest.raises(ChainCallError, match="0xdeadbeef"):
        read_batch(world.w3, [good, bad])


def test_snapshot_of_a_vault_without_code_raises_chain_reset(world: World) -> None:
    chain = ChainAdapter(world.w3, "0x" + "42" * 20)
    with pytest.raises(ChainResetError, match="no contract at vault"):
        chain.snapshot(chain.head(), accounts=[])
