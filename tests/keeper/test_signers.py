"""Signers: local keys, remote signer services with their own rules, the aggregator."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from eth_account import Account

from keeper.eip712 import Domain, Epoch, TokenPrice, epoch_digest, recover_signer
from keeper.errors import SignerError, SignerRefusedError
from keeper.signers import (
    LocalSigner,
    RemoteSigners,
    SignerPolicy,
    SignerService,
)
from keeper.store import Store
from scripts.pipeline_world import World, make_pipeline, signer_keys

VAULT = "0x" + "11" * 20
DOMAIN = Domain(31337, VAULT)


def header(epoch: int = 5, *, root: bytes = b"\x01" * 32, ts: int | None = None) -> Epoch:
    return Epoch(
        epoch=epoch,
        snapshot_block=10,
        timestamp=int(time.time()) if ts is None else ts,
        root=root,
        config_version=1,
        tokens=(TokenPrice("0x" + "22" * 20, 3_000 * 10**18, 10**17, 2 * 10**17),),
    )


def addresses(keys: list[str]) -> list[str]:
    return [Account.from_key(k).address for k in keys]


def test_header_json_round_trip() -> None:
    h = header()
    assert Epoch.from_json(h.to_json()) == h
    as_strings = {k: (str(v) if isinstance(v, int) else v) for k, v in h.to_json().items()}
    assert Epoch.from_json(as_strings) == h


def test_local_signer_sorts_and_needs_quorum_of_the_vault_set() -> None:
    keys = signer_keys()
    h = header()  # once: header() stamps the clock, and the digest must be of the signed one
    sigs = LocalSigner(keys).sign(h, DOMAIN, quorum=2, signers=addresses(keys))
    digest = epoch_digest(h, DOMAIN)
    signers = [int(recover_signer(digest, s), 16) for s in sigs]
    assert len(sigs) == 3 and signers == sorted(signers)
    with pytest.raises(SignerError, match="quorum is 3"):
        LocalSigner(keys[:2]).sign(h, DOMAIN, quorum=3, signers=addresses(keys))
    with pytest.raises(SignerError):  # keys not in the vault's set do not count
        LocalSigner(keys).sign(h, DOMAIN, quorum=1, signers=[])


def test_signer_service_rules(tmp_path: Path) -> None:
    key = signer_keys()[0]
    state = tmp_path / "signed.json"
    s = SignerService(key, SignerPolicy(chain_id=31337, vault=VAULT), state_path=state)
    now = int(time.time())
    s.sign(header(5, ts=now), DOMAIN)
    s.sign(header(5, ts=now), DOMAIN)  # the same (epoch, root) again: fine (keeper resumed)
    with pytest.raises(SignerRefusedError, match="already signed"):
        s.sign(header(5, root=b"\x02" * 32, ts=now), DOMAIN)
    with pytest.raises(SignerRefusedError, match="below the last signed"):
        s.sign(header(4, ts=now), DOMAIN)
    with pytest.raises(SignerRefusedError, match="future"):
        s.sign(header(6, ts=now + 3600), DOMAIN)
    with pytest.raises(SignerRefusedError, match="old"):
        s.sign(header(6, ts=now - 3600), DOMAIN)
    with pytest.raises(SignerRefusedError, match="chain"):
        s.sign(header(6, ts=now), Domain(1, VAULT))
    with pytest.raises(SignerRefusedError, match="vault"):
        s.sign(header(6, ts=now), Domain(31337, "0x" + "33" * 20))
    # the record survives a restart
    s2 = SignerService(key, SignerPolicy(), state_path=state)
    with pytest.raises(SignerRefusedError, match="already signed"):
        s2.sign(header(5, root=b"\x03" * 32, ts=now), DOMAIN)


def test_aggregator_collects_quorum_and_survives_one_signer_down() -> None:
    keys = signer_keys()
    services = [SignerService(k) for k in keys]
    for s in services:
        s.start()
    try:
        urls = [s.url for s in services]
        assert requests.get(f"{urls[0]}/health", timeout=5).json()["signer"] == services[0].address
        agg = RemoteSigners(urls)
        h = header()  # once: header() stamps the clock, and the digest must be of the signed one
        sigs = agg.sign(h, DOMAIN, quorum=2, signers=addresses(keys))
        digest = epoch_digest(h, DOMAIN)
        rec = [int(recover_signer(digest, s), 16) for s in sigs]
        assert len(sigs) == 3 and rec == sorted(rec)
        services[1].stop()
        sigs = agg.sign(h, DOMAIN, quorum=2, signers=addresses(keys))
        assert len(sigs) == 2 and urls[1] in agg.last_errors
        services[2].stop()
        with pytest.raises(SignerError, match="1 valid signature"):
            agg.sign(h, DOMAIN, quorum=2, signers=addresses(keys))
        # a signer outside the vault's set does not count toward the quorum
        with pytest.raises(SignerError, match="not in the vault's signer set"):
            agg.sign(h, DOMAIN, quorum=1, signers=addresses(keys[1:]))
    finally:
        for s in services:
            s.stop()


def test_signer_service_refuses_over_http() -> None:
    s = SignerService(signer_keys()[0], SignerPolicy(max_future_seconds=10))
    s.start()
    try:
        agg = RemoteSigners([s.url])
        with pytest.raises(SignerError, match="future"):
            agg.sign(header(ts=int(time.time()) + 600), DOMAIN, quorum=1, signers=[s.address])
        r = requests.post(f"{s.url}/sign", json={"header": {}}, timeout=5)
        assert r.status_code == 400
    finally:
        s.stop()


@pytest.mark.anvil
def test_pipeline_posts_with_remote_signers(world: World, store: Store) -> None:
    services = [
        SignerService(k, SignerPolicy(chain_id=31337, vault=world.vault.address))
        for k in world.signer_keys
    ]
    for s in services:
        s.start()
    try:
        p = make_pipeline(world, store, signer=RemoteSigners([s.url for s in services]))
        alice = world.actor("alice")
        world.fund_cash(alice, 1_000)
        r = p.run_epoch()
        assert r.status == "mined", r
        assert world.vault.functions.currentEpoch().call()[0] == 1
        assert all(1 in s.signed for s in services)
    finally:
        for s in services:
            s.stop()
