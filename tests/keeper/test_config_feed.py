"""The ``[feed]`` table of keeper.toml for live providers: the worked example of
docs/operations.md parses, builds the composite, and every bad value is named."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from keeper.config import parse_feed_section
from keeper.errors import ConfigError
from keeper.feeds import build_feed
from keeper.feeds.chainlink import ChainlinkSource
from keeper.feeds.composite import CompositeFeed
from keeper.feeds.deribit import DeribitSource

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented_example() -> dict[str, Any]:
    text = DOC.read_text()
    block = re.search(r"<!-- live-feed-example -->\n```toml\n(.*?)```", text, re.S)
    assert block is not None, "docs/operations.md lost its live feed example"
    return dict(tomllib.loads(block.group(1))["feed"])


def test_the_documented_live_feed_example_builds_a_composite_of_four_sources() -> None:
    cfg = parse_feed_section(documented_example(), {})
    assert cfg.kind == "composite" and cfg.composite is not None
    assert cfg.composite.tokens == {"WBTC": "BTC", "WETH": "ETH", "USDC": None}
    assert (cfg.check.price, cfg.check.vol, cfg.check.returns) == (0.02, 0.05, 0.01)
    feed = build_feed(cfg, start_time=0)
    assert isinstance(feed, CompositeFeed)
    assert [type(s).__name__ for s in feed.sources] == [
        "DeribitSource",
        "BinanceSpotSource",
        "CoinbaseSpotSource",
        "ChainlinkSource",
    ]
    assert isinstance(feed.sources[0], DeribitSource) and feed.sources[0].bars == 366
    assert isinstance(feed.sources[3], ChainlinkSource)
    assert feed.max_age == {"deribit": 60, "binance": 60, "coinbase": 60, "chainlink": 3600}


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda f: f["sources"][0].update(kind="kraken"), "feed.sources[0].kind"),
        (lambda f: f["sources"][3]["symbols"].update(ETH="0x12"), "feed.sources[3].symbols.ETH"),
        (lambda f: f["sources"][1].update(url="ftp://x"), "feed.sources[1].url"),
        (lambda f: f["sources"][2].update(symbols={"SOL": "SOL-USD"}), "feed.sources.coinbase"),
        (lambda f: f["sources"][1].update(name="deribit"), "feed.sources"),
        (lambda f: f["composite"].update(max_deviation=0), "feed.composite.max_deviation"),
        (lambda f: f["composite"].update(tokens={"GOV": "GOV"}), "feed.composite"),
        (lambda f: f["composite"].update(surprise=1), "feed.composite.surprise"),
        (lambda f: f["check"].update(max_vol_deviation=-1), "feed.check.max_vol_deviation"),
        (lambda f: f.pop("sources"), "feed.sources"),
    ],
)
def test_a_bad_live_feed_value_is_refused_by_name(edit: Any, field: str) -> None:
    table = documented_example()
    edit(table)
    with pytest.raises(ConfigError) as info:
        parse_feed_section(table, {})
    assert info.value.field.startswith(field), info.value


def test_the_feed_kind_can_be_chosen_from_the_environment() -> None:
    cfg = parse_feed_section(documented_example(), {"PM_FEED_KIND": "sim"})
    assert cfg.kind == "sim" and cfg.composite is None


def test_keeper_signer_refuses_a_bad_feed_config_before_connecting(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from keeper.cli import keeper_cli

    bad = tmp_path / "signer-feed.toml"
    bad.write_text('[feed]\nkind = "composite"\n')
    addr = "0x" + "11" * 20
    r = CliRunner().invoke(
        keeper_cli,
        [
            "signer",
            "--port",
            "0",
            "--rpc-url",
            "http://127.0.0.1:9",  # nothing listens: the file must fail first
            "--chain-id",
            "31337",
            "--vault",
            addr,
            "--allow-keeper",
            addr,
            "--state",
            str(tmp_path / "signed.json"),
            "--feed-config",
            str(bad),
        ],
        env={"PM_SIGNER_KEYS": "0x" + "22" * 32, "PM_KEYSTORE": ""},
        obj={},
    )
    assert r.exit_code == 1
    assert "feed.sources: feed kind 'composite' needs [[feed.sources]]" in r.output
