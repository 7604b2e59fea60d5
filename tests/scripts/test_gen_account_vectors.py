"""The Python side of the account recomputation vectors (tests/vectors/accounts/; forge checks the
Solidity side in tests/contracts/unit/AccountMarginVectors.t.sol): the files are the engine's
current output, the stored vectors and parameters alone give the stored numbers (the layout
forge reads), the stored hashes are those of the stored integers (keeper/dispute_encoding.py;
forge's AccountDispute.t.sol recomputes them with AccountDispute), the stored leaf values are
the engine's widened by its pad, and the accounts reach every term of the aggregation
(docs/margin-method.md §10)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from keeper.dispute_encoding import AggregationParamsWad, RiskVectorWad, hash_params, hash_vector
from scripts import gen_account_vectors as gen
from tests.vector_files import assert_current

WAD = 10**18


def _floats(values: list[str]) -> np.ndarray:
    return np.array([int(v) / WAD for v in values])


@pytest.fixture(scope="module")
def files() -> list[dict[str, Any]]:
    return [
        json.loads((gen.DIR / f"accounts_{m:02d}.json").read_text()) for m in range(gen.N_MARKETS)
    ]


def test_vector_files_are_the_engines_current_output() -> None:
    rendered = gen.render()
    assert sorted(rendered) == sorted(p.name for p in gen.DIR.glob("*.json"))
    for name, text in rendered.items():
        assert_current(
            (gen.DIR / name).read_text(), text, name, "python -m scripts.gen_account_vectors"
        )


def _recompute(f: dict[str, Any]) -> dict[str, np.ndarray]:
    """Every account's equity, IM and MM from the stored integers, as AccountMargin sums them."""
    p, ins, acc = f["params"], f["instruments"], f["accounts"]
    n_i, n_t, n_scan = ins["n"], ins["nScenarios"], ins["nScan"]
    copies = [int(k) for k in p["imCopies"]]
    loss = _floats(ins["loss"]).reshape(n_i, n_t)
    scan_loss = np.hstack([loss, loss[:, copies]])
    pad = _floats(ins["pad"]).reshape(n_i, n_scan)
    und = np.array([int(u) for u in ins["underlying"]])
    n_u = len(p["concentrationRate"])
    weight = _floats(p["nodeWeight"])
    left, right = [int(x) for x in p["left"]], [int(x) for x in p["right"]]
    rate, thr = _floats(p["concentrationRate"]), _floats(p["concentrationThreshold"])
    cols = {k: _floats(ins[k]) for k in ("mark", "basisUp", "basisDown", "delta")}
    cols |= {k: _floats(ins[k]) for k in ("minimumCharge", "shortOptionCharge")}
    start = [int(x) for x in acc["start"]]
    inst = np.array([int(x) for x in acc["instrument"]])
    size = _floats(acc["size"])
    out: dict[str, list[float]] = {"equity": [], "im": [], "mm": []}
    for a, cash in enumerate(_floats(acc["cash"]).tolist()):
        sl = slice(start[a], start[a + 1])
        i, x = inst[sl], size[sl]
        node = [np.zeros(n_scan) for _ in range(n_u)]
        per = np.zeros((n_u, 3))
        for ii, xx in zip(i.tolist(), x.tolist(), strict=True):
            u = und[ii]
            node[u] = node[u] + xx * scan_loss[ii] + max(xx, 0.0) * pad[ii]
            per[u] += xx * np.array([cols["basisUp"][ii], cols["basisDown"][ii], cols["delta"][ii]])
        for a_, b_ in zip(left, right, strict=True):
            node.append(node[a_] + node[b_])
        n_mm = p["nMm"]
        scan_im = sum(w * max(0.0, s.max()) for w, s in zip(weight, node, strict=True))
        scan_mm = sum(w * max(0.0, s[:n_mm].max()) for w, s in zip(weight, node, strict=True))
        add = float(np.maximum(per[:, :2].max(axis=1), 0.0).sum())
        add += float(np.sum(np.maximum(-x, 0.0) * cols["shortOptionCharge"][i]))
        add += float(np.sum(np.abs(x) * cols["minimumCharge"][i]))
        add += float(np.sum(rate * np.maximum(np.abs(per[:, 2]) - thr, 0.0)))
        out["equity"].append(cash + float(np.sum(x * cols["mark"][i])))
        out["im"].append(scan_im + add)
        out["mm"].append(scan_mm + int(p["mmScale"]) / WAD * add)
    return {k: np.array(v) for k, v in out.items()}


def test_stored_vectors_and_parameters_give_the_stored_account_numbers(
    files: list[dict[str, Any]],
) -> None:
    for f in files:
        acc = f["accounts"]
        scale = _floats(acc["grossNotional"]) + np.abs(_floats(acc["cash"]))
        got = _recompute(f)
        for k in ("equity", "im", "mm"):
            assert np.all(np.abs(got[k] - _floats(acc[k])) <= 1e-12 * scale + 1e-14), k


def test_stored_hashes_are_those_of_the_stored_integers(files: list[dict[str, Any]]) -> None:
    for f in files:
        p, ins = f["params"], f["instruments"]
        params = AggregationParamsWad(
            n_mm=p["nMm"],
            im_copies=tuple(int(x) for x in p["imCopies"]),
            mm_scale=int(p["mmScale"]),
            concentration_rate=tuple(int(x) for x in p["concentrationRate"]),
            concentration_threshold=tuple(int(x) for x in p["concentrationThreshold"]),
            node_weight=tuple(int(x) for x in p["nodeWeight"]),
            left=tuple(int(x) for x in p["left"]),
            right=tuple(int(x) for x in p["right"]),
        )
        assert "0x" + hash_params(params).hex() == p["hash"]
        n_t, n_scan = ins["nScenarios"], ins["nScan"]
        for i in range(ins["n"]):
            v = RiskVectorWad(
                underlying=int(ins["underlying"][i]),
                mark=int(ins["mark"][i]),
                loss=tuple(int(x) for x in ins["loss"][i * n_t : (i + 1) * n_t]),
                pad=tuple(int(x) for x in ins["pad"][i * n_scan : (i + 1) * n_scan])
                if ins["hasPad"][i]
                else (),
                basis_up=int(ins["basisUp"][i]),
                basis_down=int(ins["basisDown"][i]),
                delta=int(ins["delta"][i]),
                minimum_charge=int(ins["minimumCharge"][i]),
                short_option_charge=int(ins["shortOptionCharge"][i]),
                notional=int(ins["notional"][i]),
            )
            assert "0x" + hash_vector(v).hex() == ins["hash"][i]


def test_stored_leaf_values_are_the_engines_widened_by_its_pad(
    files: list[dict[str, Any]],
) -> None:
    for f in files:
        acc = f["accounts"]
        pad = 1e-12 * (_floats(acc["grossNotional"]) + np.abs(_floats(acc["cash"])))
        for key, leaf, sign in (
            ("equity", "leafEquity", -1),
            ("im", "leafIm", 1),
            ("mm", "leafMm", 1),
        ):
            engine = np.array([int(x) for x in acc[key]], dtype=object)
            posted = np.array([int(x) for x in acc[leaf]], dtype=object)
            moved = (posted - engine) * sign  # equity moves down, requirements up
            # the pad, up to the float rounding of the widened value and two WAD roundings
            slack = np.abs(engine.astype(float)) * 2.0**-52 + 2
            assert np.all(np.abs(moved.astype(float) - pad * gen.WAD) <= slack), key


def test_accounts_reach_every_term_of_the_aggregation(files: list[dict[str, Any]]) -> None:
    accounts = sum(f["accounts"]["n"] for f in files)
    assert accounts >= 1_000
    counts = set()
    for f in files:
        start = [int(x) for x in f["accounts"]["start"]]
        counts |= {b - a for a, b in zip(start, start[1:], strict=False)}
    assert counts == set(range(1, gen.MAX_POSITIONS + 1))

    def positive(key: str) -> int:
        return sum(int(np.count_nonzero(_floats(f["accounts"][key]) > 0)) for f in files)

    for key in ("concentration", "shortOption", "basis", "scanIm", "scanMm"):
        assert positive(key) > 0, key
    # cash of both signs, long option pads, and the confidence add-on above the minimum rate
    cash = np.concatenate([_floats(f["accounts"]["cash"]) for f in files])
    assert np.any(cash < 0) and np.any(cash > 0)
    assert any(any(f["instruments"]["hasPad"]) for f in files)
    low = files[1]["instruments"]
    ratio = _floats(low["minimumCharge"]) / _floats(low["notional"])
    assert ratio.max() > 2 * ratio.min()
    # the IM-only copies of the MM boundary and a tree with merges
    assert all(f["params"]["imCopies"] and f["params"]["left"] for f in files)
