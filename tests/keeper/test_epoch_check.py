"""Signer services recompute the epoch from their own node before signing (docs/security.md §14 #1),
and answer only authenticated keepers."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from eth_account import Account

from keeper.attestation import AccountLeaf, InstrumentLeaf, MerkleTree
from keeper.chain import ChainAdapter
from keeper.cli import keeper_cli
from keeper.eip712 import Domain, Epoch, FundingUpdate, Settlement, epoch_digest, recover_signer
from keeper.epoch_check import EpochRecomputer
from keeper.errors import FeedError, SignerError, SignerRefusedError
from keeper.feeds.base import MarketState
from keeper.signers import (
    AUTH_HEADER,
    RemoteSigners,
    SignerPolicy,
    SignerService,
    request_signature,
)
from keeper.store import Store
from risk_engine import load_params
from scripts.anvil import AnvilNode
from scripts.pipeline_world import World, make_pipeline

pytestmark = pytest.mark.anvil


def recomputer(world: World) -> EpochRecomputer:
    """A checker on its own adapter (its own index), as ``keeper signer`` builds one."""
    return EpochRecomputer(ChainAdapter(world.w3, world.vault.address), load_params())


def service(world: World, key: str, **policy: object) -> SignerService:
    return SignerService(
        key,
        SignerPolicy(chain_id=world.w3.eth.chain_id, vault=world.vault.address, **policy),  # type: ignore[arg-type]
        checker=recomputer(world),
    )


def built_epoch(world: World, store: Store) -> tuple[Epoch, str, Domain]:
    """An honest epoch 1 built and stored by a dry-run pipeline (header, market JSON)."""
    alice, bob = world.actor("alice"), world.actor("bob")
    world.fund_cash(alice, 1_000)
    world.fund_cash(bob, 5_000)
    p = make_pipeline(world, store, send_tx=False)
    r = p.run_epoch()
    assert r.status == "built", r
    rec = store.get_epoch(1)
    assert rec is not None and rec.header is not None
    market = store.get_market_snapshot(1)
    assert market is not None
    return Epoch.from_json(rec.header), market, p.domain


def lying_root(store: Store, raise_equity: int) -> bytes:
    """The root over the stored leaves with the first account's equity raised."""
    leaves: list[AccountLeaf | InstrumentLeaf] = []
    for r in store.get_leaves(1):
        if r.kind == "account":
            leaves.append(AccountLeaf.from_json(r.fields))
        else:
            leaves.append(InstrumentLeaf.from_json(r.fields))
    honest = MerkleTree(leaves).root
    first = next(i for i, x in enumerate(leaves) if isinstance(x, AccountLeaf))
    a = leaves[first]
    assert isinstance(a, AccountLeaf)
    leaves[first] = dataclasses.replace(a, equity=a.equity + raise_equity)
    lie = MerkleTree(leaves).root
    assert lie != honest
    return lie


def test_service_signs_honest_epoch_and_refuses_every_altered_header(
    world: World, store: Store
) -> None:
    header, market, domain = built_epoch(world, store)
    s = service(world, world.signer_keys[0])
    # Altered headers first: a refusal records nothing, so the honest one still signs after.
    with pytest.raises(SignerRefusedError, match=r"header\.root"):
        s.sign(dataclasses.replace(header, root=lying_root(store, 10**30)), domain, market)
    t = header.tokens[0]
    with pytest.raises(SignerRefusedError, match=r"header\.tokens\[0\]"):
        s.sign(
            dataclasses.replace(
                header, tokens=(dataclasses.replace(t, price=t.price * 2), *header.tokens[1:])
            ),
            domain,
            market,
        )
    with pytest.raises(SignerRefusedError, match=r"header\.tokens\[0\]"):  # shocks too
        s.sign(
            dataclasses.replace(
                header, tokens=(dataclasses.replace(t, down_shock=0), *header.tokens[1:])
            ),
            domain,
            market,
        )
    assert header.funding, "the world has perps: funding updates are posted"
    f0 = header.funding[0]
    with pytest.raises(SignerRefusedError, match=r"header\.funding\[0\]"):
        s.sign(
            dataclasses.replace(
                header,
                funding=(
                    FundingUpdate(f0.instrument, f0.cum_funding + 10**18),
                    *header.funding[1:],
                ),
            ),
            domain,
            market,
        )
    with pytest.raises(SignerRefusedError, match=r"header\.settlements\[0\]"):
        s.sign(dataclasses.replace(header, settlements=(Settlement(3, 1),)), domain, market)
    with pytest.raises(SignerRefusedError, match="configVersion"):
        s.sign(
            dataclasses.replace(header, config_version=header.config_version + 1), domain, market
        )
    with pytest.raises(SignerRefusedError, match="no market snapshot"):
        s.sign(header, domain, None)
    # a market other than the header's: the recomputed token table differs
    m = json.loads(market)
    eth = next(u for u in m["underlyings"] if u["symbol"] == "ETH")
    eth["spot"] *= 1.5
    other = MarketState.from_json(json.dumps(m)).to_json()
    with pytest.raises(SignerRefusedError, match="differs"):  # WETH is priced at ETH spot
        s.sign(header, domain, other)
    with pytest.raises(SignerRefusedError, match="above this node's head"):
        s.sign(dataclasses.replace(header, snapshot_block=10**9), domain, market)
    with pytest.raises(SignerRefusedError, match="vault"):
        s.sign(header, Domain(domain.chain_id, "0x" + "33" * 20), market)
    with pytest.raises(SignerRefusedError, match="chain"):
        s.sign(header, Domain(1, domain.verifying_contract), market)
    assert s.signed == {}
    sig = s.sign(header, domain, market)
    assert recover_signer(epoch_digest(header, domain), sig) == s.address
    assert s.signed == {1: "0x" + header.root.hex()}


def test_service_refuses_an_epoch_the_vault_already_has(world: World, store: Store) -> None:
    p = make_pipeline(world, store)
    world.fund_cash(world.actor("alice"), 1_000)
    assert p.run_epoch().status == "mined"
    rec = store.get_epoch(1)
    market = store.get_market_snapshot(1)
    assert rec is not None and rec.header is not None and market is not None
    s = service(world, world.signer_keys[0])
    with pytest.raises(SignerRefusedError, match="not above the vault's epoch 1"):
        s.sign(Epoch.from_json(rec.header), p.domain, market)


def test_service_authenticates_the_keeper(world: World, store: Store) -> None:
    header, market, domain = built_epoch(world, store)
    keeper = world.sender
    s = service(world, world.signer_keys[0], allowed_keepers=(keeper.address,))
    s.start()
    try:
        agg = RemoteSigners([s.url], auth_key=keeper.key)
        sigs = agg.sign(header, domain, quorum=1, signers=[s.address], market=market)
        assert recover_signer(epoch_digest(header, domain), sigs[0]) == s.address

        def post(body: bytes, signature: str | None) -> requests.Response:
            headers = {"Content-Type": "application/json"}
            if signature is not None:
                headers[AUTH_HEADER] = signature
            return requests.post(f"{s.url}/sign", data=body, headers=headers, timeout=30)

        body = json.dumps(
            {
                "chainId": domain.chain_id,
                "verifyingContract": domain.verifying_contract,
                "header": header.to_json(),
                "market": market,
                "timestamp": int(time.time()),
            }
        ).encode()
        assert post(body, request_signature(body, keeper.key)).status_code == 200
        r = post(body, None)
        assert r.status_code == 401 and AUTH_HEADER in r.json()["error"]
        stranger = Account.create()
        r = post(body, request_signature(body, stranger.key))
        assert r.status_code == 401 and "not an allowed keeper" in r.json()["error"]
        # a signature over another body (tampered after signing) recovers to another address
        r = post(body.replace(b'"timestamp"', b'"timestamp" '), request_signature(body, keeper.key))
        assert r.status_code == 401 and "not an allowed keeper" in r.json()["error"]
        old = json.loads(body)
        old["timestamp"] -= 3600
        stale = json.dumps(old).encode()
        r = post(stale, request_signature(stale, keeper.key))
        assert r.status_code == 401 and "from this service's clock" in r.json()["error"]
        with pytest.raises(SignerError, match="not an allowed keeper"):
            RemoteSigners([s.url], auth_key=stranger.key).sign(
                header, domain, quorum=1, signers=[s.address], market=market
            )
    finally:
        s.stop()


def test_pipeline_posts_with_two_recomputing_services(world: World, store: Store) -> None:
    keeper = world.sender
    services = [service(world, k, allowed_keepers=(keeper.address,)) for k in world.signer_keys[:2]]
    for s in services:
        s.start()
    try:
        assert world.vault.functions.quorum().call() == 2
        agg = RemoteSigners([s.url for s in services], auth_key=keeper.key)
        p = make_pipeline(world, store, signer=agg)
        world.fund_cash(world.actor("alice"), 1_000)
        for n in (1, 2):
            r = p.run_epoch()
            assert r.status == "mined", r
            assert world.vault.functions.currentEpoch().call()[0] == n
            assert all(s.signed.get(n) == r.root for s in services)
        # a keeper that alters the root after computing it gets no signature at all
        calls: list[str] = []
        real_sign = agg.sign

        def lying_sign(header: Epoch, domain: Domain, **kw: object) -> list[bytes]:
            calls.append("x")
            return real_sign(dataclasses.replace(header, root=b"\x42" * 32), domain, **kw)  # type: ignore[arg-type]

        agg.sign = lying_sign  # type: ignore[method-assign]
        with pytest.raises(SignerError, match=r"0 valid signature.*header\.root"):
            p.run_epoch()
        assert calls and world.vault.functions.currentEpoch().call()[0] == 2
    finally:
        for s in services:
            s.stop()


def test_cli_signer_requires_chain_vault_state_rpc_and_keeper(tmp_path: Path) -> None:
    full = [
        "signer",
        "--port",
        "1",
        "--rpc-url",
        "http://127.0.0.1:1",
        "--chain-id",
        "31337",
        "--vault",
        "0x" + "11" * 20,
        "--allow-keeper",
        "0x" + "22" * 20,
        "--state",
        str(tmp_path / "s.json"),
    ]
    for option, arity in (
        ("--rpc-url", 1),
        ("--chain-id", 1),
        ("--vault", 1),
        ("--allow-keeper", 1),
        ("--state", 1),
    ):
        i = full.index(option)
        args = full[:i] + full[i + 1 + arity :]
        r = CliRunner().invoke(keeper_cli, args, obj={})
        assert r.exit_code == 2, (option, r.output)
        assert f"Missing option '{option}'" in r.output


def test_cli_signer_refuses_a_bad_address_and_a_node_of_another_chain(
    world: World, anvil: AnvilNode, tmp_path: Path
) -> None:
    def args(vault: str, chain_id: int) -> list[str]:
        return [
            "signer",
            "--port",
            "0",
            "--rpc-url",
            anvil.url,
            "--chain-id",
            str(chain_id),
            "--vault",
            vault,
            "--allow-keeper",
            world.sender.address,
            "--state",
            str(tmp_path / "signed.json"),
        ]

    env = {"PM_SIGNER_KEYS": world.signer_keys[0], "PM_KEYSTORE": ""}
    r = CliRunner().invoke(keeper_cli, args("0x1234", 31337), env=env, obj={})
    assert r.exit_code == 1 and "not an address: 0x1234" in r.output
    r = CliRunner().invoke(keeper_cli, args(world.vault.address, 1), env=env, obj={})
    assert r.exit_code == 1 and "serves chain 31337, not 1" in r.output


def test_service_with_own_feed_refuses_a_market_that_deviates(world: World, store: Store) -> None:
    header, market, domain = built_epoch(world, store)

    def shifted(symbol: str, factor: float) -> MarketState:
        m = json.loads(market)
        next(u for u in m["underlyings"] if u["symbol"] == symbol)["spot"] *= factor
        return MarketState.from_json(json.dumps(m))

    def with_reference(reference: Callable[[int], MarketState]) -> SignerService:
        chain = ChainAdapter(world.w3, world.vault.address)
        checker = EpochRecomputer(chain, load_params(), reference=reference)
        return SignerService(
            world.signer_keys[0],
            SignerPolicy(chain_id=domain.chain_id, vault=domain.verifying_contract),
            checker=checker,
        )

    asked: list[int] = []

    def five_pct_above(ts: int) -> MarketState:
        asked.append(ts)
        return shifted("ETH", 1.05)

    with pytest.raises(SignerRefusedError, match=r"ETH spot .* deviates 4\.76% .*max 2\.00%"):
        with_reference(five_pct_above).sign(header, domain, market)
    assert asked == [header.timestamp]
    m = json.loads(market)
    assert m["token_prices"], "the world's market prices a token-only underlying"
    tok = sorted(m["token_prices"])[0]
    del m["token_prices"][tok]
    without_token = MarketState.from_json(json.dumps(m))
    with pytest.raises(SignerRefusedError, match=f"token {tok}: this service's feed does not"):
        with_reference(lambda ts: without_token).sign(header, domain, market)

    def down(ts: int) -> MarketState:
        raise FeedError("source unreachable")

    with pytest.raises(SignerRefusedError, match="feed failed: source unreachable"):
        with_reference(down).sign(header, domain, market)
    with pytest.raises(ValueError, match="max_price_deviation"):
        EpochRecomputer(
            ChainAdapter(world.w3, world.vault.address),
            load_params(),
            max_price_deviation=1.0,
        )
    # within 2 % (1.5 % off): signs
    sig = with_reference(lambda ts: shifted("ETH", 1.015)).sign(header, domain, market)
    assert (
        recover_signer(epoch_digest(header, domain), sig)
        == Account.from_key(world.signer_keys[0]).address
    )
