"""The Python side of the on-chain recomputation vectors (tests/vectors/black76/; forge checks
the Solidity side in tests/contracts/unit/Black76Vectors.t.sol): the files are the engine's
current output, the stored charges follow from the stored inputs as the engine charges them,
and the files reach every branch of the on-chain code (docs/margin-method.md §10)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from risk_engine.addons import confidence_rate
from risk_engine.pricing import black76
from scripts import gen_black76_vectors as gen
from tests.vector_files import assert_current

WAD = 10**18


def _load(name: str) -> Any:
    return json.loads((gen.DIR / name).read_text())


def _floats(values: list[str]) -> np.ndarray:
    return np.array([int(v) / WAD for v in values])


def _instruments() -> list[dict[str, Any]]:
    return [_load(f"instruments_{m:02d}.json")["instruments"] for m in range(gen.N_MARKETS)]


def test_vector_files_are_the_engines_current_output() -> None:
    files = gen.render()
    assert sorted(files) == sorted(p.name for p in gen.DIR.glob("*.json"))
    for name, text in files.items():
        assert_current(
            (gen.DIR / name).read_text(), text, name, "python -m scripts.gen_black76_vectors"
        )


def test_stored_premiums_are_black76_of_the_stored_inputs() -> None:
    p = _load("prices.json")["prices"]
    assert p["n"] == len(p["premium"]) >= 1_000
    f, k, t, v, r = (_floats(p[x]) for x in ("forward", "strike", "tenor", "vol", "rate"))
    want = _floats(p["premium"])
    for i in range(p["n"]):
        got = float(black76(f[i], k[i], t[i], v[i], float(r[i]), p["isCall"][i]))
        assert abs(got - want[i]) <= 1e-15 * max(1.0, got)  # a few ulp: see tests/vector_files.py


def test_premium_vectors_reach_both_branches_of_the_normal_cdf() -> None:
    p = _load("prices.json")["prices"]
    f, k, t, v = (_floats(p[x]) for x in ("forward", "strike", "tenor", "vol"))
    live = t > 0
    sd = v[live] * np.sqrt(t[live])
    d1 = (np.log(f[live] / k[live]) + 0.5 * sd * sd) / sd
    assert np.any(np.abs(d1) < 1.0)
    assert np.any(np.abs(d1) > 7.0710678)  # Hart's continued-fraction branch
    assert np.any(~live)  # expired: the intrinsic value
    assert np.any(_floats(p["rate"]) < 0)


def test_instrument_vectors_reach_every_branch_of_the_scenario_loss() -> None:
    files = _instruments()
    kinds = np.concatenate([np.array([int(x) for x in f["kind"]]) for f in files])
    assert kinds.size >= 1_000
    assert {0, 1, 2, 3} <= set(kinds.tolist())
    within_horizon = floored = at_floor = 0
    for f in files:
        n_t = f["nScenarios"]
        assert len(f["loss"]) == n_t * f["n"]
        grid, shock = f["grid"], f["volShock"]
        horizon = int(grid["horizonSeconds"])
        fraction = _floats(grid["fraction"])
        max_down = int(grid["maxDownMove"]) / WAD
        floor = int(shock["floor"]) / WAD
        for i, kind in enumerate(int(x) for x in f["kind"]):
            if int(f["range"][i]) / WAD * fraction.min() < -max_down:
                floored += 1
            if kind not in (1, 2):
                continue
            if int(f["expiry"][i]) - int(f["timestamp"][i]) <= horizon:
                within_horizon += 1
            lm = np.log(int(f["strike"][i]) / int(f["forward"][i]))
            smile = (
                int(f["atmVol"][i]) / WAD
                + int(f["skew"][i]) / WAD * lm
                + int(f["curvature"][i]) / WAD * lm * lm
            )
            at_floor += smile <= floor
    # options valued at their payoff, moves floored at -max_down_move, smiles at the vol floor
    assert within_horizon > 0 and floored > 0 and at_floor > 0


def test_stored_charges_follow_from_the_stored_spot_confidence_and_parameters() -> None:
    for f in _instruments():
        c, und = f["charges"], f["underlyings"]
        spot = _floats(und["spot"])
        conf = confidence_rate(
            _floats(und["confidence"]),
            int(c["confidenceThreshold"]) / WAD,
            int(c["confidenceRate"]) / WAD,
        )
        u = np.array([int(x) for x in f["underlying"]])
        option = np.isin(np.array([int(k) for k in f["kind"]]), (1, 2))
        minimum = int(c["minimumRate"]) / WAD * spot[u] + conf[u] * spot[u]
        short = np.where(option, int(c["shortOptionMinimum"]) / WAD * spot[u], 0.0)
        np.testing.assert_allclose(_floats(f["minimumCharge"]), minimum, rtol=1e-15, atol=1e-18)
        np.testing.assert_allclose(_floats(f["shortOptionCharge"]), short, rtol=1e-15, atol=1e-18)
        np.testing.assert_array_equal(_floats(f["notional"]), spot[u])


def test_instrument_vectors_reach_every_branch_of_the_charges() -> None:
    files = _instruments()
    threshold = {int(f["charges"]["confidenceThreshold"]) for f in files}
    assert len(threshold) == 1
    conf = {int(x) for f in files for x in f["underlyings"]["confidence"]}
    # the add-on charged (below), not charged at the threshold exactly (strict) and above it
    assert min(conf) < min(threshold) and min(threshold) in conf and WAD in conf
    for f in files:
        u = {int(x) for x in f["underlying"]}
        assert u == set(range(len(f["underlyings"]["spot"])))
    kinds = [int(k) for f in files for k in f["kind"]]
    short = [int(x) for f in files for x in f["shortOptionCharge"]]
    assert any(k in (1, 2) and s > 0 for k, s in zip(kinds, short, strict=True))
    assert all(s == 0 for k, s in zip(kinds, short, strict=True) if k in (0, 3))
