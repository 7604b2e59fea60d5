"""The acceptance of issue 15 on Anvil (docs/protocol.md §10, §11), with the real keeper:

1. a quorum posts a root in which one account's equity is inflated (the keeper's engine is
   wrapped to add 1,000,000 USD to the first subaccount's equity; the local signer signs
   what it is given, as a colluding quorum would);
2. a watcher with only a node and the keeper API runs ``pm dispute`` and wins half the bond;
3. the vault is in safe mode;
4. an honest epoch from a rotated signer set (a second keeper with a new key) restores it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from risk_engine.units import WAD

from .cli_support import SIGNER, CliEnv, KeeperHandle, Result, key, start_keeper

pytestmark = pytest.mark.anvil

OWNER = key("dispute owner")
MAKER = key("dispute maker")
TAKER = key("dispute taker")
WATCHER = key("dispute watcher")
NEW_SIGNER = key("dispute new signer")
WINDOW = 3600
INFLATION_USD = 1_000_000.0


@pytest.fixture
def world(
    cli_env: CliEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, KeeperHandle, Path]]:
    """A fresh deployment (each test ends in safe mode) with its keeper."""
    tmp = tmp_path_factory.mktemp("dispute")
    out = tmp / "deployment.json"
    for who in (OWNER, WATCHER, NEW_SIGNER):
        cli_env.w3.provider.make_request("anvil_setBalance", [who.address, hex(100 * WAD)])  # type: ignore[arg-type]
    cli_env.ok(
        "deploy", "--out", str(out), "--signer", SIGNER.address, "--quorum", "1",
        "--max-age", "3600", key=OWNER,
    )  # fmt: skip
    k = start_keeper(cli_env.node.url, out, SIGNER, tmp / "keeper")
    try:
        yield out, KeeperHandle(k, k.api.url), tmp
    finally:
        k.api.stop()
        k.store.close()


def _pm(ce: CliEnv, where: Path, url: str, *args: str, **kw: Any) -> Result:
    return ce.ok_at(where, url, *args, **kw)


def _assert_proven(vault: Any, epoch: int) -> None:
    """The fraud in ``epoch`` is declared: safe mode, and half the 150 USDC bond is the
    watcher's."""
    assert vault.functions.isSafeMode().call()
    assert vault.functions.fraudState().call()[0] == epoch
    assert vault.functions.payoutOf(WATCHER.address).call() == 75 * WAD


def _open_books(cli_env: CliEnv, where: Path, kp: KeeperHandle, tmp_path: Path) -> Any:
    """The window on, the signer's bond posted, a maker (WETH and cash) short 1 ETH-PERP to a
    taker, two epochs mined; the vault contract."""
    from keeper.abi import vault_abi

    w3 = cli_env.w3
    vault = w3.eth.contract(address=json.loads(where.read_text())["vault"], abi=vault_abi())
    _pm(cli_env, where, kp.url, "dispute-config", str(WINDOW), "100", key=OWNER)
    _pm(cli_env, where, kp.url, "faucet", key=SIGNER)
    _pm(cli_env, where, kp.url, "bond", "post", "150", key=SIGNER)
    for who, deposits in (
        (MAKER, (("deposit", "WETH", "5"), ("deposit-cash", "50000"))),
        (TAKER, (("deposit-cash", "50000"),)),
    ):
        for args in (("faucet",), *deposits):
            _pm(cli_env, where, kp.url, *args, key=who)
    kp.epoch()
    q = tmp_path / "q.json"
    _pm(cli_env, where, kp.url, "quote", "--leg", "ETH-PERP:-1:3500", "--out", str(q), key=MAKER)
    _pm(cli_env, where, kp.url, "trade", str(q), key=TAKER)
    kp.epoch()
    return vault


def test_honest_instrument_leaves_and_ranges_are_judged_honest_and_a_low_loss_is_proven(
    cli_env: CliEnv, world: tuple[Path, KeeperHandle, Path], tmp_path: Path
) -> None:
    from eth_utils.crypto import keccak
    from web3.exceptions import ContractCustomError

    from risk_engine import load_params
    from scripts.client import KeeperApi, Session, load_deployment
    from scripts.dispute import instrument_claim, range_claim, recompute_epoch

    where, kp, _tmp = world
    w3 = cli_env.w3
    vault = _open_books(cli_env, where, kp, tmp_path)
    session = Session(w3, load_deployment(w3, where), None)
    api = KeeperApi(kp.url)

    # every live instrument's leaf of an honest epoch: the chain's recomputation from the
    # committed market agrees with the keeper's engine (the call reverts InstrumentLeafIsHonest)
    honest = kp.epoch()
    build, _snapshot, header = recompute_epoch(session, api, load_params(), honest)
    honest_selector = keccak(b"InstrumentLeafIsHonest(uint32,uint256)")[:4]
    assert len(build.instrument_leaves) >= 3
    for leaf in build.instrument_leaves:
        got = api.instrument(leaf.instrument, honest)
        assert got is not None
        claim = instrument_claim(build, honest, leaf, got.proof, header)
        with pytest.raises(ContractCustomError) as exc:
            vault.functions.disputeInstrument(claim).call({"from": WATCHER.address})
        data = exc.value.data if isinstance(exc.value.data, str) else str(exc.value.args[0])
        assert bytes.fromhex(data.removeprefix("0x"))[:4] == honest_selector, data
    # and every underlying's committed scan range follows from its committed returns
    commit = build.commitments
    assert commit is not None and commit.market_inputs is not None
    range_selector = keccak(b"ScanRangeIsHonest(uint256,uint256,uint256)")[:4]
    assert len(commit.market_inputs.underlyings) >= 2
    for u in range(len(commit.market_inputs.underlyings)):
        with pytest.raises(ContractCustomError) as exc:
            vault.functions.disputeRange(range_claim(build, honest, u)).call(
                {"from": WATCHER.address}
            )
        data = exc.value.data if isinstance(exc.value.data, str) else str(exc.value.args[0])
        assert bytes.fromhex(data.removeprefix("0x"))[:4] == range_selector, data
    assert not vault.functions.isSafeMode().call()

    # the quorum halves the first instrument's per-unit loss of a short unit: the account
    # leaves are the same, the INSTRUMENT leaf is not; the watcher proves it
    pipeline = kp.keeper.pipeline
    engine = pipeline.margin

    def understated(portfolios: Any, snapshot: Any, params: Any) -> Any:
        result = engine(portfolios, snapshot, params)
        result.leaves.loss_short[0] *= 0.5
        return result

    pipeline.margin = understated
    try:
        bad = kp.epoch()
    finally:
        pipeline.margin = engine
    r = _pm(cli_env, where, kp.url, "dispute", "--epoch", str(bad), key=WATCHER)
    assert "instrument " in r.out and "'s leaf differs" in r.out, r.out
    assert "fraud proven" in r.out, r.out
    _assert_proven(vault, bad)


def test_a_watcher_proves_an_inflated_equity_and_a_rotated_set_restores(
    cli_env: CliEnv, world: tuple[Path, KeeperHandle, Path], tmp_path: Path
) -> None:

    where, kp, tmp = world
    w3 = cli_env.w3
    vault = _open_books(cli_env, where, kp, tmp_path)
    from scripts.client import Session, load_deployment

    maker = Session(w3, load_deployment(w3, where), None).subaccounts_of(MAKER.address)[0]

    # An honest epoch: nothing to dispute.
    honest = kp.epoch()
    r = _pm(cli_env, where, kp.url, "dispute", "--epoch", str(honest), key=WATCHER)
    assert "nothing to dispute" in r.out

    # 1. the quorum signs a root with the first subaccount's equity inflated
    pipeline = kp.keeper.pipeline
    engine = pipeline.margin

    def inflated(portfolios: Any, snapshot: Any, params: Any) -> Any:
        result = engine(portfolios, snapshot, params)
        result.equity[0] += INFLATION_USD
        return result

    pipeline.margin = inflated
    try:
        bad = kp.epoch()
    finally:
        pipeline.margin = engine
    leaf = kp.keeper.store.get_leaf(bad, "account", maker)
    assert leaf is not None and int(leaf.fields["equity"]) > 900_000 * WAD

    # 2. the watcher proves it and takes half the bond
    r = _pm(cli_env, where, kp.url, "dispute", "--epoch", str(bad), key=WATCHER)
    assert f"subaccount {maker}'s leaf differs" in r.out, r.out
    assert "fraud proven" in r.out
    assert vault.functions.payoutOf(WATCHER.address).call() == 75 * WAD

    # 3. safe mode: the caught set cannot post again, the epoch cannot be disputed twice
    assert vault.functions.isSafeMode().call()
    assert vault.functions.fraudState().call()[0] == bad
    with pytest.raises(AssertionError, match="SignersNotRotated"):
        kp.epoch()
    r = cli_env.inproc(
        "dispute", "--epoch", str(bad), "--deployment", str(where),
        env={"PM_API_URL": kp.url}, key=WATCHER,
    )  # fmt: skip
    assert r.code != 0

    # 4. the owner rotates the signers; the new set posts its bond and an honest epoch
    fn = vault.functions.setSigners([NEW_SIGNER.address], 1)
    tx = fn.build_transaction(
        {"from": OWNER.address, "nonce": w3.eth.get_transaction_count(OWNER.address)}
    )
    signed = OWNER.sign_transaction(tx)
    assert (
        w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))[
            "status"
        ]
        == 1
    )
    _pm(cli_env, where, kp.url, "faucet", key=NEW_SIGNER)
    _pm(cli_env, where, kp.url, "bond", "post", "100", key=NEW_SIGNER)
    k2 = start_keeper(cli_env.node.url, where, NEW_SIGNER, tmp / "keeper2")
    try:
        restored = KeeperHandle(k2, k2.api.url).epoch()
    finally:
        k2.api.stop()
        k2.store.close()
    assert restored > bad
    assert not vault.functions.isSafeMode().call()
    assert vault.functions.fraudState().call()[0] == 0
    _pm(cli_env, where, kp.url, "claim-payout", key=WATCHER)
    assert vault.functions.payoutOf(WATCHER.address).call() == 0


def test_a_lowered_scan_range_is_proven_from_the_published_inputs(
    cli_env: CliEnv, world: tuple[Path, KeeperHandle, Path], tmp_path: Path
) -> None:
    """The quorum commits one underlying's scan range 10 % below what its returns give (the
    vectors are still the true range's). The watcher's recomputation commits other inputs,
    so it reads the inputs the keeper published, which hash to the header's ``inputsHash``,
    and proves the range on chain."""
    from keeper.dispute_encoding import PublishedInputs
    from keeper.eip712 import Epoch
    from scripts.client import KeeperApi

    where, kp, _tmp = world
    vault = _open_books(cli_env, where, kp, tmp_path)
    api = KeeperApi(kp.url)
    honest = kp.epoch()
    rec = api.epoch(honest)
    assert rec is not None
    published = api.dispute_inputs(honest)
    assert published is not None
    assert (
        PublishedInputs.from_json(published).inputs_hash()
        == Epoch.from_json(rec["header"]).inputs_hash
    )

    pipeline = kp.keeper.pipeline
    engine = pipeline.margin

    def lowered(portfolios: Any, snapshot: Any, params: Any) -> Any:
        result = engine(portfolios, snapshot, params)
        result.arrays.scenarios.ranges[0] *= 0.9
        return result

    pipeline.margin = lowered
    try:
        bad = kp.epoch()
    finally:
        pipeline.margin = engine
    r = _pm(cli_env, where, kp.url, "dispute", "--epoch", str(bad), key=WATCHER)
    assert "differ from this recomputation's in: market inputs" in r.out, r.out
    assert "scan range of" in r.out and "fraud proven" in r.out, r.out
    _assert_proven(vault, bad)


def test_a_state_word_the_account_never_had_is_proven(
    cli_env: CliEnv, world: tuple[Path, KeeperHandle, Path], tmp_path: Path
) -> None:
    """The quorum posts the maker's leaf naming a state word of the right sequence number
    that the account never had; the watcher replays the account's history from the logs and
    proves it with ``disputeAccountState``."""
    import dataclasses

    from scripts.client import Session, load_deployment

    where, kp, _tmp = world
    w3 = cli_env.w3
    vault = _open_books(cli_env, where, kp, tmp_path)
    maker = Session(w3, load_deployment(w3, where), None).subaccounts_of(MAKER.address)[0]
    chain = kp.keeper.pipeline.chain
    real = chain.snapshot

    def forged(*args: Any, **kwargs: Any) -> Any:
        snap = real(*args, **kwargs)
        accounts = tuple(
            dataclasses.replace(a, state_word=b"\x5a" * 24 + a.state_word[24:])
            if a.account == maker
            else a
            for a in snap.accounts
        )
        return dataclasses.replace(snap, accounts=accounts)

    chain.snapshot = forged  # type: ignore[method-assign]
    try:
        bad = kp.epoch()
    finally:
        chain.snapshot = real  # type: ignore[method-assign]
    r = _pm(cli_env, where, kp.url, "dispute", "--epoch", str(bad), key=WATCHER)
    assert f"subaccount {maker}'s leaf names state word 0x{'5a' * 24}" in r.out, r.out
    assert "which the account never had" in r.out and "fraud proven" in r.out, r.out
    _assert_proven(vault, bad)
