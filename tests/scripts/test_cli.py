"""Every ``pm`` command against a real Anvil, through a subprocess, with its failure messages.

Every test passes alone and in any order: a test that needs funded accounts, positions or
an epoch asks for the session fixture that makes them (``funded``, ``traded``) or funds
accounts of its own (``_fund``) when it asserts exact balances; a test that needs a vault
before its first epoch deploys one of its own; the stale-attestation test moves chain time
inside an Anvil snapshot and reverts it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account.signers.local import LocalAccount

from risk_engine.units import WAD
from scripts.cli import pm

from .cli_support import SIGNER, CliEnv, KeeperHandle, key

pytestmark = pytest.mark.anvil

MAKER = key("maker")
TAKER = key("taker")
FLAT = key("flat")
USDC6 = 10**6


def _vault(ce: CliEnv):  # type: ignore[no-untyped-def]
    from keeper.abi import vault_abi

    return ce.w3.eth.contract(address=ce.deployment["vault"], abi=vault_abi())


def _subaccounts(ce: CliEnv, who: LocalAccount, deployment: Path | None = None) -> list[int]:
    """``who``'s subaccount ids now, lowest first (the CLI's own lookup)."""
    from scripts.client import Session, load_deployment

    dep = load_deployment(ce.w3, deployment or ce.deployments / "31337.json")
    return Session(ce.w3, dep, None).subaccounts_of(who.address)


def _first(ce: CliEnv, who: LocalAccount) -> int:
    return _subaccounts(ce, who)[0]


def _state(ce: CliEnv, who: LocalAccount | int) -> tuple:  # type: ignore[type-arg]
    account = who if isinstance(who, int) else _first(ce, who)
    return tuple(_vault(ce).functions.accountState(account).call())


def _fund(
    ce: CliEnv, who: LocalAccount, *deposits: tuple[str, ...], deployment: Path | None = None
) -> None:
    """Faucet to ``who`` and the given deposits (``("deposit", "WETH", "5")``,
    ``("deposit-cash", "1000")``), in process: the CLI's own code path, without the
    interpreter start of a subprocess. ``deployment``: another deployment file."""
    where = ("--deployment", str(deployment)) if deployment is not None else ()
    for args in (("faucet",), *deposits):
        r = ce.inproc(*args, *where, key=who)
        assert r.code == 0, (args, r.err)


@pytest.fixture(scope="session")
def funded(cli_env: CliEnv) -> None:
    """MAKER (5 WETH, 50,000 cash), TAKER (50,000 cash, 0.5 WBTC) and FLAT (1,000 cash)."""
    _fund(cli_env, MAKER, ("deposit", "WETH", "5"), ("deposit-cash", "50000"))
    _fund(cli_env, TAKER, ("deposit-cash", "50000"), ("deposit", "WBTC", "0.5"))
    _fund(cli_env, FLAT, ("deposit-cash", "1000"))


@pytest.fixture(scope="session")
def traded(
    cli_env: CliEnv, keeper: KeeperHandle, funded: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """MAKER short 1 ETH-PERP and long 2 ETH calls against TAKER, with an epoch after it."""
    keeper.epoch()
    q = tmp_path_factory.mktemp("traded") / "q.json"
    _two_leg_quote(cli_env, q)
    r = cli_env.inproc("trade", str(q), key=TAKER)
    assert r.code == 0, r.err
    keeper.epoch()


# ------------------------------------------------------------------ deploy and help


def test_deploy_wrote_the_deployment_file(cli_env: CliEnv) -> None:
    d = cli_env.deployment
    assert d["chain_id"] == 31337
    assert [t["symbol"] for t in d["tokens"]] == ["USDC", "WETH", "WBTC", "GOV"]
    assert [t["decimals"] for t in d["tokens"]] == [6, 18, 8, 18]
    names = [i["name"] for i in d["instruments"]]
    assert names[:3] == ["BTC-PERP", "ETH-PERP", "SOL-PERP"]
    assert len(names) == 7 and names[3].startswith("BTC-C-70000-")
    assert d["abi_hash"].startswith("sha256:") and len(d["abi_hash"]) == 71
    assert d["block"] >= 1
    vault = _vault(cli_env)
    assert vault.functions.instrumentCount().call() == 7
    assert vault.functions.signers().call() == list(d["signers"])
    assert vault.functions.quorum().call() == 1
    # a liquidator receives the whole subaccount: no takeover buffer to set
    assert not any(e.get("name") == "takeoverBuffer" for e in vault.abi)


def test_help_on_every_command() -> None:
    runner = CliRunner()
    top = runner.invoke(pm, ["--help"])
    assert top.exit_code == 0
    for name in (
        "deploy",
        "faucet",
        "deposit",
        "deposit-cash",
        "withdraw",
        "withdraw-cash",
        "quote",
        "trade",
        "cancel",
        "margin",
        "report",
        "markets",
        "wait",
        "account",
        "liquidate",
        "keeper",
        "liquidator",
    ):
        assert name in top.output
        r = runner.invoke(pm, [name, "--help"])
        assert r.exit_code == 0, (name, r.output)
        assert "Usage: pm" in r.output or "Usage:" in r.output


def test_help_through_the_entry_point(cli_env: CliEnv) -> None:
    r = cli_env.ok("--help")
    assert "deposit-cash" in r.out


# ------------------------------------------------------------------ plumbing failures


def test_unreachable_rpc(cli_env: CliEnv) -> None:
    cli_env.fails(
        "deposit",
        "WETH",
        "1",
        "--rpc-url",
        "http://127.0.0.1:9",
        key=MAKER,
        match="RPC unreachable at http://127.0.0.1:9",
    )


def test_no_deployment_file(cli_env: CliEnv, tmp_path: Path) -> None:
    cli_env.fails(
        "faucet", key=MAKER, env={"PM_DEPLOYMENTS_DIR": str(tmp_path)}, match="no deployment file"
    )


def test_wrong_chain(cli_env: CliEnv, tmp_path: Path) -> None:
    d = cli_env.deployment
    d["chain_id"] = 11155111
    f = tmp_path / "other.json"
    f.write_text(json.dumps(d))
    cli_env.fails("faucet", "--deployment", str(f), key=MAKER, match="wrong chain")


def test_stale_deployment_file(cli_env: CliEnv, tmp_path: Path) -> None:
    d = cli_env.deployment
    d["vault"] = "0x" + "12" * 20
    f = tmp_path / "stale.json"
    f.write_text(json.dumps(d))
    cli_env.fails("faucet", "--deployment", str(f), key=MAKER, match="no vault code")


def test_bad_key_and_no_key(cli_env: CliEnv) -> None:
    r = cli_env.fails("faucet", env={"PM_PRIVATE_KEY": "0x1234"}, sub=True, match="bad key")
    assert "0x1234" not in r.err  # a key, even a broken one, is never echoed
    cli_env.fails("faucet", match="no key")
    cli_env.fails(
        "faucet",
        "--keystore",
        "/nonexistent.json",
        env={"PM_KEYSTORE_PASSWORD": "x"},
        match="cannot read keystore",
    )


def test_keystore_key(cli_env: CliEnv, tmp_path: Path) -> None:
    from eth_account import Account

    who = key("keystore")
    ks = tmp_path / "ks.json"
    ks.write_text(json.dumps(Account.encrypt(who.key, "pw", iterations=2)))
    cli_env.fails(
        "faucet",
        "--keystore",
        str(ks),
        env={"PM_KEYSTORE_PASSWORD": "wrong"},
        match="cannot decrypt keystore",
    )
    r = cli_env.ok("faucet", "--keystore", str(ks), env={"PM_KEYSTORE_PASSWORD": "pw"})
    assert who.address in r.out


def test_deploy_with_a_key_and_dry_run(cli_env: CliEnv, tmp_path: Path) -> None:
    deployer = key("deployer")
    out = tmp_path / "keyed.json"
    cli_env.fails("deploy", "--out", str(out), key=deployer, match="no ETH for gas")
    cli_env.w3.provider.make_request("anvil_setBalance", [deployer.address, hex(100 * WAD)])  # type: ignore[arg-type]
    cli_env.fails(
        "deploy",
        "--signer",
        SIGNER.address,
        "--quorum",
        "2",
        key=deployer,
        match="--quorum must be between 1 and 1",
    )
    r = cli_env.ok("deploy", "--dry-run", "--signer", SIGNER.address, key=deployer)
    assert "nothing sent" in r.out and "BTC" in r.out
    assert cli_env.w3.eth.get_transaction_count(deployer.address) == 0
    cli_env.ok("deploy", "--out", str(out), "--signer", SIGNER.address, key=deployer)
    d = json.loads(out.read_text())
    assert d["owner"] == deployer.address
    assert cli_env.w3.eth.get_code(d["vault"])
    assert d["vault"] != cli_env.deployment["vault"]  # the shared deployment is untouched


def test_deploy_with_a_reference_feed(cli_env: CliEnv, tmp_path: Path) -> None:
    from scripts.deploy import deploy_contract, vault_at
    from scripts.toolchain.compile import compile_contracts

    funder = cli_env.w3.eth.accounts[0]
    feed = deploy_contract(
        cli_env.w3, compile_contracts(), "MockAggregatorV3", [8, 3_500 * 10**8], funder
    )
    out = tmp_path / "referenced.json"
    cli_env.fails(
        "deploy",
        "--out",
        str(out),
        "--reference",
        f"WETH={feed.address}:5%:3600",
        match="max deviation '5%' is not a fraction",
    )
    cli_env.fails(
        "deploy",
        "--out",
        str(out),
        "--reference",
        f"SOL={feed.address}:0.05:3600",
        match="SOL: not a collateral token",
    )
    r = cli_env.ok("deploy", "--dry-run", "--reference", f"WETH={feed.address}:0.05:3600")
    assert "would check WETH against" in r.out and "5.00%" in r.out
    r = cli_env.ok("deploy", "--out", str(out), "--reference", f"weth={feed.address}:0.05:3600")
    d = json.loads(out.read_text())
    refs_address = vault_at(cli_env.w3, d["vault"]).functions.priceReferences().call()
    assert f"references {refs_address}" in r.out
    refs = cli_env.w3.eth.contract(
        address=refs_address, abi=compile_contracts()["PriceReferences"].abi
    )
    weth = d["collateral"]["WETH"]
    assert refs.functions.priceReference(weth).call() == [feed.address, 5 * WAD // 100, 3600, 8]


def test_seed_account_flow(cli_env: CliEnv) -> None:
    from scripts.client import Session, load_deployment
    from scripts.seed import SeedPlan, seed_account

    who = key("seeded")
    dep = load_deployment(cli_env.w3, cli_env.deployments / "31337.json")
    session = Session(cli_env.w3, dep, who, echo=lambda _: None)
    seed_account(session, SeedPlan(deposit={"WETH": "1.5", "GOV": "20000"}, cash="2500"))
    vault = _vault(cli_env)
    # the first deposit created the key's one subaccount; the others went into it
    (account,) = _subaccounts(cli_env, who)
    assert vault.functions.collateralBalance(account, dep.token("WETH").address).call() == (
        3 * WAD // 2
    )
    # more than the faucet table (10,000 GOV) was asked: the plan mints what it deposits
    assert vault.functions.collateralBalance(account, dep.token("GOV").address).call() == (
        20_000 * WAD
    )
    assert _state(cli_env, account)[0] == 2_500 * WAD


# ------------------------------------------------------------------ faucet, deposits


def test_faucet_and_deposits(cli_env: CliEnv) -> None:
    alice, bob = key("deposits alice"), key("deposits bob")
    cli_env.ok("faucet", key=alice)
    assert cli_env.inproc("faucet", key=bob).code == 0
    weth = cli_env.deployment["collateral"]["WETH"]
    wbtc = cli_env.deployment["collateral"]["WBTC"]
    vault = _vault(cli_env)
    count = vault.functions.subaccountCount().call()
    r = cli_env.ok("deposit", "WETH", "2", "--dry-run", key=alice)
    assert "dry run" in r.out and "nothing sent" in r.out and "creating its first" in r.out
    assert vault.functions.subaccountCount().call() == count  # the dry run created nothing
    r = cli_env.ok("deposit", "WETH", "5", key=alice)
    (first,) = _subaccounts(cli_env, alice)
    assert f"subaccount {first} created" in r.out
    cli_env.ok("deposit-cash", "50000", key=alice)  # into the same, lowest subaccount
    for args in (("deposit-cash", "1000"), ("deposit", "WBTC", "0.5")):
        assert cli_env.inproc(*args, key=bob).code == 0
    assert _subaccounts(cli_env, alice) == [first]
    assert vault.functions.collateralBalance(first, weth).call() == 5 * WAD
    bob_first = _first(cli_env, bob)
    assert vault.functions.collateralBalance(bob_first, wbtc).call() == 10**8 // 2  # 8 decimals
    assert _state(cli_env, first)[0] == 50_000 * WAD
    assert _state(cli_env, bob_first)[0] == 1_000 * WAD


def test_deposit_bad_input(cli_env: CliEnv) -> None:
    cli_env.fails("deposit", "WETH", "1000", key=FLAT, sub=True, match="too little WETH in wallet")
    cli_env.fails("deposit", "DOGE", "1", key=FLAT, match="unknown token 'DOGE'")
    cli_env.fails("deposit", "USDC", "1", key=FLAT, match="use `pm deposit-cash`")
    cli_env.fails("deposit", "WBTC", "0.000000001", key=FLAT, match="more than 8 decimals")
    cli_env.fails("deposit", "WETH", "abc", key=FLAT, match="is not a number")
    cli_env.fails("deposit-cash", "0", key=FLAT, match="amount must be > 0")


def test_flat_withdrawals_need_no_keeper(cli_env: CliEnv) -> None:
    # No positions and no debt: the vault needs no leaf and no fresh epoch.
    flat = key("flat withdrawer")
    _fund(cli_env, flat, ("deposit-cash", "1000"))
    cli_env.ok("withdraw-cash", "100", key=flat, env={"PM_API_URL": "http://127.0.0.1:9"})
    assert _state(cli_env, flat)[0] == 900 * WAD
    cli_env.fails("withdraw", "WETH", "1", key=flat, match="too little WETH in subaccount")


# ------------------------------------------------------------------ safe mode (no epoch yet)


def test_safe_mode_before_the_first_epoch(cli_env: CliEnv, tmp_path: Path) -> None:
    # A vault of its own: the shared one may have epochs already.
    fresh = tmp_path / "fresh.json"
    cli_env.ok("deploy", "--out", str(fresh), "--signer", SIGNER.address, "--quorum", "1")
    vault = cli_env.w3.eth.contract(
        address=json.loads(fresh.read_text())["vault"], abi=_vault(cli_env).abi
    )
    flat, maker, taker = key("safe flat"), key("safe maker"), key("safe taker")
    for who in (flat, taker):
        _fund(cli_env, who, ("deposit-cash", "1000"), deployment=fresh)
    (flat_id,) = _subaccounts(cli_env, flat, fresh)
    before = tuple(vault.functions.accountState(flat_id).call())
    where = ("--deployment", str(fresh))
    cli_env.fails("withdraw-cash", "5000", *where, key=flat, sub=True, match="safe mode")
    q = tmp_path / "q.json"
    cli_env.fails(
        "quote",
        "--leg",
        "ETH-PERP:1:3500",
        "--out",
        str(q),
        *where,
        key=maker,
        match="run `pm account new`",
    )
    _fund(cli_env, maker, ("account", "new"), deployment=fresh)
    cli_env.ok("quote", "--leg", "ETH-PERP:1:3500", "--out", str(q), *where, key=maker)
    cli_env.fails("trade", str(q), *where, key=taker, match="safe mode")
    assert tuple(vault.functions.accountState(flat_id).call()) == before


def test_margin_of_unknown_subaccount(cli_env: CliEnv) -> None:
    cli_env.fails("margin", "--account", "999999", sub=True, match="unknown subaccount 999999")
    cli_env.fails("margin", "--owner", key("nobody").address, match="run `pm account new`")
    cli_env.fails("margin", "--owner", "alice", match="is not an address")
    cli_env.fails("margin", match="--account ID, or --owner ADDRESS")


# ------------------------------------------------------------------ subaccounts


def test_account_new_list_and_transfer(cli_env: CliEnv) -> None:
    alice, bob = key("accounts alice"), key("accounts bob")
    cli_env.fails("account", "list", key=alice, match="run `pm account new`")
    _fund(cli_env, alice, ("account", "new"), ("account", "new"))
    low, high = _subaccounts(cli_env, alice)
    assert low < high
    cli_env.ok("deposit-cash", "1234.5", "--account", str(high), key=alice)
    r = cli_env.ok("account", "list", key=alice)
    lines = r.out.splitlines()
    assert lines[0].split()[:3] == ["id", "owner", "cash"]
    assert lines[1].split()[:4] == [str(low), alice.address, "0.00", "0"]
    assert lines[2].split()[:4] == [str(high), alice.address, "1,234.50", "0"]
    vault = _vault(cli_env)
    before = _state(cli_env, high)
    r = cli_env.ok("account", "transfer", str(high), bob.address, key=alice)
    assert f"transfer subaccount {high}" in r.out
    assert vault.functions.ownerOf(high).call() == bob.address
    assert _state(cli_env, high) == before  # nothing in it moved
    assert _subaccounts(cli_env, alice) == [low] and _subaccounts(cli_env, bob) == [high]
    r = cli_env.ok("account", "list", "--owner", bob.address)
    assert r.out.splitlines()[1].split()[:3] == [str(high), bob.address, "1,234.50"]


def test_account_bad_input_sends_nothing(cli_env: CliEnv) -> None:
    owner, stranger = key("guarded owner"), key("guarded stranger")
    _fund(cli_env, owner, ("deposit-cash", "100"))
    _fund(cli_env, stranger, ("deposit-cash", "100"))
    mine = _first(cli_env, owner)
    sent = cli_env.w3.eth.get_transaction_count(stranger.address)
    for args, match in (
        (("deposit-cash", "10", "--account", str(mine)), "neither its owner nor an operator"),
        (("withdraw-cash", "10", "--account", str(mine)), "neither its owner nor an operator"),
        (("account", "transfer", str(mine), stranger.address), "neither its owner nor an operator"),
        (("account", "transfer", str(mine), "0x" + "00" * 20), "zero address"),
        (("withdraw-cash", "10", "--account", "999999"), "unknown subaccount 999999"),
        (("account", "transfer", "999999", owner.address), "unknown subaccount 999999"),
        (("liquidate", str(_first(cli_env, stranger))), "by its owner or an operator"),
        (("liquidate", "999999"), "unknown subaccount 999999"),
    ):
        cli_env.fails(*args, key=stranger, match=match)
    cli_env.fails(
        "account",
        "transfer",
        str(mine),
        "0x" + "00" * 20,
        key=owner,
        sub=True,
        match="cannot transfer a subaccount to the zero address",
    )
    assert cli_env.w3.eth.get_transaction_count(stranger.address) == sent
    assert _vault(cli_env).functions.ownerOf(mine).call() == owner.address


def test_an_operator_acts_for_the_owner_and_withdrawals_pay_the_owner(cli_env: CliEnv) -> None:
    owner, operator = key("operated owner"), key("operator")
    _fund(cli_env, owner, ("deposit-cash", "500"))
    _fund(cli_env, operator, ("faucet",))
    account = _first(cli_env, owner)
    cli_env.fails(
        "withdraw-cash", "100", "--account", str(account), key=operator, match="nor an operator"
    )
    cli_env.ok("account", "operator", operator.address, key=owner)
    from keeper.abi import erc20_abi

    usdc = cli_env.w3.eth.contract(address=cli_env.deployment["settlement_token"], abi=erc20_abi())
    wallets = [usdc.functions.balanceOf(w.address).call() for w in (owner, operator)]
    cli_env.ok("withdraw-cash", "100", "--account", str(account), key=operator)
    assert usdc.functions.balanceOf(owner.address).call() == wallets[0] + 100 * USDC6
    assert usdc.functions.balanceOf(operator.address).call() == wallets[1]
    assert _state(cli_env, account)[0] == 400 * WAD
    cli_env.ok("account", "operator", "--revoke", operator.address, key=owner)
    cli_env.fails(
        "withdraw-cash", "1", "--account", str(account), key=operator, match="nor an operator"
    )


# ------------------------------------------------------------------ keeper: trade, withdraw


def _two_leg_quote(ce: CliEnv, out: Path, maker: LocalAccount = MAKER, **extra: str) -> dict:  # type: ignore[type-arg]
    # "ETH-C-3800": an option name without its date resolves while only one expiry has it
    args = ["quote", "--leg", "ETH-PERP:-1:3500", "--leg", "ETH-C-3800:2:60", "--out", str(out)]
    for k, v in extra.items():
        args += [f"--{k}", v]
    ce.ok(*args, key=maker)
    return dict(json.loads(out.read_text()))


def test_quote_bad_legs(cli_env: CliEnv, tmp_path: Path) -> None:
    q = str(tmp_path / "bad.json")
    cli_env.fails(
        "quote", "--leg", "XRP-PERP:1:1", "--out", q, key=MAKER, match="unknown instrument"
    )
    cli_env.fails("quote", "--leg", "1:1", "--out", q, key=MAKER, match="INSTRUMENT:SIZE:PRICE")
    cli_env.fails("quote", "--leg", "BTC:1:1", "--out", q, key=MAKER, match="is ambiguous")
    cli_env.fails("quote", "--leg", "1:0:100", "--out", q, key=MAKER, match="size must not be 0")


def test_trade_two_legs(cli_env: CliEnv, keeper: KeeperHandle, tmp_path: Path) -> None:
    maker, taker = key("two-leg maker"), key("two-leg taker")
    _fund(cli_env, maker, ("deposit", "WETH", "5"), ("deposit-cash", "50000"))
    _fund(cli_env, taker, ("deposit-cash", "50000"))
    keeper.epoch()
    q = tmp_path / "q2.json"
    doc = _two_leg_quote(cli_env, q, maker=maker)
    assert len(doc["quote"]["legs"]) == 2
    before_maker = _state(cli_env, maker)
    r = cli_env.ok("trade", str(q), "--dry-run", key=taker)
    assert "simulates fine" in r.out
    assert _state(cli_env, maker) == before_maker
    r = cli_env.ok("trade", str(q), key=taker)
    # the taker's side (the maker sells 1 ETH-PERP: the taker buys), price vs mark, IM
    assert "you buy 1 ETH-PERP at 3,500.00 USD (mark " in r.out
    assert re.search(r"subaccount \d+ IM [\d,.]+ -> [\d,.]+ USD", r.out), r.out
    vault = _vault(cli_env)
    call_id = next(
        i["id"] for i in cli_env.deployment["instruments"] if i["name"].startswith("ETH-C-")
    )
    m, t = _first(cli_env, maker), _first(cli_env, taker)
    assert doc["quote"]["makerAccount"] == str(m)
    assert vault.functions.position(m, 2).call()[0] == -1 * WAD
    assert vault.functions.position(t, 2).call()[0] == 1 * WAD
    assert vault.functions.position(m, call_id).call()[0] == 2 * WAD
    # the same file again: the nonce is used
    cli_env.fails("trade", str(q), key=taker, sub=True, match="already filled or cancelled")
    # a price far from the mark is signed all the same, with a warning on stderr
    far = tmp_path / "far.json"
    r = cli_env.ok("quote", "--leg", "ETH-PERP:-1:1", "--out", str(far), key=maker)
    assert "warning: ETH-PERP -100.0% from its mark" in r.err and far.exists()
    assert "(mark " in r.out


def test_trade_bad_files(
    cli_env: CliEnv, keeper: KeeperHandle, funded: None, tmp_path: Path
) -> None:
    q = tmp_path / "q3.json"
    doc = _two_leg_quote(cli_env, q, taker=FLAT.address)
    cli_env.fails("trade", str(q), key=TAKER, match="reserved for taker")
    cli_env.fails("trade", str(q), key=MAKER, match="reserved for taker")
    doc["quote"]["legs"][0]["price"] = str(1 * WAD)  # a cheaper price than the maker signed
    (tmp_path / "altered.json").write_text(json.dumps(doc))
    cli_env.fails(
        "trade", str(tmp_path / "altered.json"), key=FLAT, match="signature is not the maker"
    )
    doc["chainId"] = "1"
    (tmp_path / "chain.json").write_text(json.dumps(doc))
    cli_env.fails("trade", str(tmp_path / "chain.json"), key=FLAT, match="wrong chain")
    (tmp_path / "junk.json").write_text("{")
    cli_env.fails("trade", str(tmp_path / "junk.json"), key=FLAT, match="not JSON")
    cli_env.fails("trade", str(tmp_path / "missing.json"), key=FLAT, match="cannot read quote file")


def test_cancel(cli_env: CliEnv, keeper: KeeperHandle, funded: None, tmp_path: Path) -> None:
    q = tmp_path / "q4.json"
    _two_leg_quote(cli_env, q, nonce="777")
    cli_env.ok("cancel", "777", key=MAKER)
    assert _vault(cli_env).functions.nonceUsed(MAKER.address, 777).call()
    cli_env.fails("trade", str(q), key=TAKER, match="already filled or cancelled")
    cli_env.fails("cancel", "777", key=MAKER, match="already filled or cancelled")


def test_withdraw_with_positions_uses_the_keeper_proof(
    cli_env: CliEnv, keeper: KeeperHandle, traded: None
) -> None:
    keeper.epoch()
    weth = cli_env.deployment["collateral"]["WETH"]
    vault = _vault(cli_env)
    maker = _first(cli_env, MAKER)
    held = vault.functions.collateralBalance(maker, weth).call()
    cli_env.ok("withdraw", "WETH", "0.1", key=MAKER)
    assert vault.functions.collateralBalance(maker, weth).call() == held - WAD // 10
    before = _state(cli_env, TAKER)
    r = cli_env.fails("withdraw-cash", "90000", key=TAKER, sub=True, match="allows at most")
    most = r.err.split("allows at most ")[1].split(" ")[0].replace(",", "")
    assert 0 <= float(most) < 90000  # the maximum itself, not a raw revert
    assert _state(cli_env, TAKER) == before
    cli_env.fails(
        "withdraw",
        "WETH",
        "0.1",
        key=MAKER,
        env={"PM_API_URL": "http://127.0.0.1:9"},
        match="keeper API unreachable",
    )


def test_a_stale_leaf_is_refused_before_sending(
    cli_env: CliEnv, keeper: KeeperHandle, traded: None
) -> None:
    """A keeper API serving the previous epoch's leaf (behind the vault): one line, no tx."""
    from scripts.client import KeeperApi, LeafWithProof, Session, load_deployment
    from scripts.errors import CliError
    from scripts.funds import withdraw_cash

    keeper.epoch()

    class Behind(KeeperApi):
        def account(self, account: int, epoch: int | None = None) -> LeafWithProof | None:
            latest = super().account(account)
            assert latest is not None
            return super().account(account, epoch=latest.epoch - 1)

    dep = load_deployment(cli_env.w3, cli_env.deployments / "31337.json")
    session = Session(cli_env.w3, dep, MAKER, echo=lambda _: None)
    sent = cli_env.w3.eth.get_transaction_count(MAKER.address)
    with pytest.raises(CliError, match="is from epoch .* wait for the keeper"):
        withdraw_cash(session, Behind(keeper.url), "1")
    assert cli_env.w3.eth.get_transaction_count(MAKER.address) == sent


def test_two_subaccounts_of_one_owner_trade_but_one_cannot_trade_with_itself(
    cli_env: CliEnv, keeper: KeeperHandle, tmp_path: Path
) -> None:
    owner = key("self trader")
    _fund(cli_env, owner, ("deposit-cash", "20000"), ("account", "new"))
    low, high = _subaccounts(cli_env, owner)
    cli_env.ok("deposit-cash", "20000", "--account", str(high), key=owner)
    keeper.epoch()
    q = tmp_path / "self.json"
    cli_env.ok("quote", "--leg", "ETH-PERP:1:3500", "--out", str(q), key=owner)  # for `low`
    cli_env.fails("trade", str(q), key=owner, match="self-trade")
    cli_env.ok("trade", str(q), "--account", str(high), key=owner)
    vault = _vault(cli_env)
    assert vault.functions.position(low, 2).call()[0] == WAD
    assert vault.functions.position(high, 2).call()[0] == -WAD


def test_margin_and_report(
    cli_env: CliEnv, keeper: KeeperHandle, traded: None, tmp_path: Path
) -> None:
    r = cli_env.ok("margin", "--owner", MAKER.address, "--json")
    doc = json.loads(r.out)
    assert doc["account"] == _first(cli_env, MAKER) and doc["owner"] == MAKER.address
    leaf = keeper.keeper.store.get_leaf(doc["epoch"], "account", str(doc["account"]))
    assert int(doc["attested"]["im"]) == leaf.fields["im"] > 0
    assert int(doc["attested"]["equity"]) == leaf.fields["equity"]
    assert doc["engine"]["im"] > 0 and doc["engine"]["worstScenario"]
    assert (
        int(doc["imSurplusLo"])
        <= int(doc["attested"]["equity"]) - int(doc["attested"]["im"]) + 10**15
    )
    names = {p["name"] for p in doc["positions"]}
    assert "ETH-PERP" in names and "WETH" in names
    # keeper/account_view.py: max withdrawable is the IM bound in whole USDC units
    assert int(doc["maxWithdrawableCash6"]) == max(0, int(doc["imSurplusLo"])) // 10**12
    (eth,) = [d for d in doc["liquidation"] if d["underlying"] == "ETH"]
    assert eth["spot"] > 0 and (eth["down"] is None or -0.95 <= eth["down"] <= 0.0)
    assert "ETH" in doc["greeks"] and doc["greeks"]["ETH"]["delta"] != 0.0
    # entry price and P&L from the keeper's GET /positions (the fills replayed)
    (perp,) = [p for p in doc["pnl"] if p["name"] == "ETH-PERP"]
    assert perp["entryPrice"] > 0 and perp["unrealizedPnl"] is not None
    r = cli_env.inproc("margin", key=MAKER)  # the key's lowest subaccount
    assert r.code == 0, r.err
    for word in (
        "attested leaf",
        "engine now",
        "IM surplus lower bound",
        "worst scenario",
        "risk array",
        "vol up",
        "vol down",
        "max withdrawable now",
        "liquidation if ETH moves",
        "greeks",
        "entry ",
        "uP&L",
    ):
        assert word in r.out, word
    out = tmp_path / "maker.html"
    r = cli_env.ok("report", "--account", str(doc["account"]), "--out", str(out))
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    assert html.count("<svg") == 2  # heat map and history
    assert "Risk array" in html and "ETH-PERP" in html and "Margin history" in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # self-contained


def test_liquidator_run_once_takes_no_healthy_account(
    cli_env: CliEnv, keeper: KeeperHandle, traded: None, tmp_path: Path
) -> None:
    liq = key("liquidator")
    env = {
        "PM_DEPLOYMENTS_FILE": str(cli_env.deployments / "31337.json"),
        "PM_LIQUIDATOR_KEY": "0x" + bytes(liq.key).hex(),
        "PM_LIQUIDATOR_API_URL": keeper.url,
        "PM_DATA_DIR": str(tmp_path / "liq"),
    }
    r = cli_env.ok("liquidator", "--log-level", "WARNING", "run", "--once", env=env)
    report = json.loads(r.out[r.out.index("{") :])
    assert report["accountsWithPositions"] >= 2  # maker and taker
    assert report["outcomes"] == [] and report["candidates"] == []
    r = cli_env.fails(
        "liquidator", "run", "--once", env={**env, "PM_LIQUIDATOR_KEY": "0x12"}, match="key"
    )


def test_stale_attestation_is_safe_mode(
    cli_env: CliEnv, keeper: KeeperHandle, traded: None
) -> None:
    """Moves chain time past maxAge inside an Anvil snapshot, and reverts it after."""
    w3 = cli_env.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[attr-defined]
    try:
        now = int(w3.eth.get_block("latest")["timestamp"])
        w3.provider.make_request("evm_mine", [now + 3601 + 60])  # type: ignore[attr-defined]
        before = _state(cli_env, MAKER)
        cli_env.fails("withdraw", "WETH", "0.1", key=MAKER, match="safe mode")
        assert _state(cli_env, MAKER) == before
        r = cli_env.ok("margin", "--owner", MAKER.address)
        assert "safe mode: YES" in r.out
        cli_env.ok("deposit-cash", "10", key=MAKER)  # deposits still work in safe mode
    finally:
        reverted = w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[attr-defined]
        assert reverted["result"] is True
