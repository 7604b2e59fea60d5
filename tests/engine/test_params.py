"""Risk parameters: the shipped file loads; every bad field is named."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from risk_engine import InvalidParamsError, load_params, params_from_dict, parse_params
from risk_engine.params import default_params_text


def _raw() -> dict[str, Any]:
    return tomllib.loads(default_params_text())


def test_default_file_loads_and_matches_anchors() -> None:
    p = load_params()
    # ranges x0.8 with a 25 % APC buffer by the intraday calibration (docs/calibration.md):
    # in calm markets the range is today's (0.136 x 1.25 = 0.17), released to 0.136 in stress
    assert p.underlying("BTC").scan_range == 0.136
    assert p.underlying("ETH").scan_range == 0.144
    assert p.scan.range_vol_multiple == 3.6
    assert p.apc.buffer >= 0.25  # EMIR RTS 153/2013 art. 28(1)(a) minimum
    assert p.underlying("UNLISTED") == p.underlyings["default"]
    assert p.scan.price_points % 2 == 1
    assert 0 < p.mm_scale < 1
    assert p.vol.exponent_short == 0.3 and p.vol.exponent_long == 0.13  # Derive


def test_load_from_path(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text(default_params_text().replace("mm_scale = 0.98", "mm_scale = 0.9"))
    assert load_params(f).mm_scale == 0.9


BAD: list[tuple[str, Any, str]] = [
    ("general.mm_scale", 1.0, "general.mm_scale"),
    ("general.mm_scale", 0.0, "general.mm_scale"),
    ("general.horizon_days", -1.0, "general.horizon_days"),
    ("general.horizon_days", "1", "general.horizon_days"),
    ("scan.price_points", 20, "scan.price_points"),
    ("scan.price_points", 1, "scan.price_points"),
    ("scan.price_points", 2.5, "scan.price_points"),
    ("scan.mm_range_fraction", 1.5, "scan.mm_range_fraction"),
    ("scan.extreme_moves", [0.5], "scan.extreme_moves[0]"),
    ("scan.extreme_moves", [2.0, float("nan")], "scan.extreme_moves[1]"),
    ("scan.extreme_moves", 2.0, "scan.extreme_moves"),
    ("scan.extreme_cover", 1.2, "scan.extreme_cover"),
    ("scan.max_down_move", 1.0, "scan.max_down_move"),
    ("vol.down", 1.0, "vol.down"),
    ("vol.floor", 0.0, "vol.floor"),
    ("vol.up", float("inf"), "vol.up"),
    ("basis.perp", -0.01, "basis.perp"),
    ("addons.short_option_minimum", True, "addons.short_option_minimum"),
    ("correlation.ewma_lambda", 1.0, "correlation.ewma_lambda"),
    ("correlation.credit_factor", 1.1, "correlation.credit_factor"),
    ("correlation.min_observations", 1, "correlation.min_observations"),
    ("tokens.vol_multiple", -1, "tokens.vol_multiple"),
    ("underlying.BTC.scan_range", 0.0, "underlying.BTC.scan_range"),
    ("underlying.BTC.scan_range", 0.9, "underlying.BTC.scan_range"),  # above max_range
    ("underlying.ETH.concentration_rate", 0.9, "underlying.ETH.concentration_rate"),
    ("underlying.GOV.token_haircut_floor", 1.5, "underlying.GOV.token_haircut_floor"),
    ("scan.max_range", 1.0, "scan.max_range"),  # a 100 % range prices at zero
    ("scan.max_range", 0.96, "scan.max_range"),  # above max_down_move: floored in-range moves
    ("minimum_charge.rate", 0.0, "minimum_charge.rate"),  # a perfect hedge at zero margin
    ("minimum_charge.rate", "0.001", "minimum_charge.rate"),
    # max_range + rate + minimum >= 1: a crash could not be capped below a 100 % downShock
    ("underlying.GOV.concentration_rate", 0.3, "underlying.GOV.concentration_rate"),
]


@pytest.mark.parametrize(("key", "value", "field"), BAD)
def test_bad_field_is_named(key: str, value: Any, field: str) -> None:
    raw = _raw()
    node = raw
    *path, last = key.split(".")
    for k in path:
        node = node[k]
    node[last] = value
    with pytest.raises(InvalidParamsError) as e:
        params_from_dict(raw)
    assert e.value.field == field


def test_unknown_and_missing_keys_are_named() -> None:
    raw = _raw()
    raw["scan"]["price_pionts"] = 21
    with pytest.raises(InvalidParamsError) as e:
        params_from_dict(raw)
    assert e.value.field == "scan.price_pionts"
    raw = _raw()
    del raw["vol"]["up"]
    with pytest.raises(InvalidParamsError) as e:
        params_from_dict(raw)
    assert e.value.field == "vol.up"
    raw = _raw()
    del raw["underlying"]["default"]
    with pytest.raises(InvalidParamsError) as e:
        params_from_dict(raw)
    assert e.value.field == "underlying.default"
    raw = copy.deepcopy(_raw())
    del raw["basis"]
    with pytest.raises(InvalidParamsError) as e:
        params_from_dict(raw)
    assert e.value.field == "basis"


def test_bad_toml_syntax() -> None:
    with pytest.raises(InvalidParamsError) as e:
        parse_params("[general\nmm_scale = 0.9")
    assert e.value.field == "<toml>"
