"""Write the on-chain recomputation vectors ``tests/vectors/black76/*.json`` (deterministic).

Every expected value comes from the Python engine: single premiums from
``risk_engine.pricing.black76``, and every instrument's whole risk vector (its row of
``risk_engine.build_risk_arrays`` on seeded markets: underlying, mark, per-unit scenario
losses, continuous-range pads, basis losses, delta notional, minimum charge with the
confidence add-on, short option minimum and unit notional). Forge
(``tests/contracts/unit/Black76Vectors.t.sol``) recomputes each with ``Black76`` and
``InstrumentVector`` and reports the largest differences per field; pytest
(``tests/scripts/test_gen_black76_vectors.py``) checks the file is current. The tolerance
that follows is in docs/margin-method.md §10.

Inputs are drawn as floats, written as the nearest WAD integer (an error below 1e-18
absolute, far under the tolerance) and the engine is run on the same floats. Arrays are
stored column-wise (one JSON array per field, every integer a decimal string) so that forge
parses each field once, and one file per market (``instruments_NN.json``, ~200 kB): forge
copies the whole file into memory at every parse, so a single 2 MB file would exhaust it.

Run: ``python -m scripts.gen_black76_vectors`` (``--check`` exits 1 if a file would change).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from risk_engine import build_risk_arrays, load_params
from risk_engine.instruments import InstrumentKind, InstrumentTable
from risk_engine.market import MarketSnapshot, VolSurface
from risk_engine.params import RiskParams
from risk_engine.pricing import black76
from risk_engine.synthetic import returns_with_correlation
from scripts.gen_vectors import VECTORS_DIR

DIR = VECTORS_DIR / "black76"
SEED = 20261205
#: Single premiums: moneyness K/F in [0.3, 3], tenor 1 hour to 3 years (and expired), vol
#: 5 % to 300 %, rate -5 % to 10 %: the grid of docs/margin-method.md §2 and beyond.
N_PRICES = 2_000
N_MARKETS = 12
INSTRUMENTS_PER_MARKET = 90
#: Slice expiries (days): inside the 1-day horizon (valued at the payoff), just beyond it,
#: and out to three years.
EXPIRY_DAYS = (1 / 24, 0.5, 1.0, 1.0 + 1 / 24, 2.0, 7.0, 30.0, 45.0, 90.0, 365.0, 1095.0)
UNDERLYINGS = ("BTC", "ETH", "SOL", "GOV")
SPOTS = (60_000.0, 3_000.0, 150.0, 10.0)
CHAIN_KIND = {
    InstrumentKind.PERP: 0,
    InstrumentKind.CALL: 1,
    InstrumentKind.PUT: 2,
    InstrumentKind.SPOT: 3,
}
WAD = 10**18
#: Feed confidence of the markets ``m % 3 == 2`` (BTC, ETH, SOL, GOV): below the threshold
#: (0.55), exactly at it (no add-on: the engine's test is strict), none at all, above it.
LOW_CONFIDENCE = (0.3, 0.55, 0.0, 0.9)


def _wad(x: float) -> int:
    """The WAD integer nearest to the float ``x`` (exact rational arithmetic)."""
    return round(Fraction(x) * WAD)


def _s(values: Any) -> list[str]:
    return [str(int(v)) for v in values]


@dataclass
class _Columns:
    """Column-wise instrument vectors (each list one JSON array)."""

    kind: list[int] = field(default_factory=list)
    price: list[int] = field(default_factory=list)
    strike: list[int] = field(default_factory=list)
    expiry: list[int] = field(default_factory=list)
    timestamp: list[int] = field(default_factory=list)
    forward: list[int] = field(default_factory=list)
    atm_vol: list[int] = field(default_factory=list)
    skew: list[int] = field(default_factory=list)
    curvature: list[int] = field(default_factory=list)
    rate: list[int] = field(default_factory=list)
    range_: list[int] = field(default_factory=list)
    mark: list[int] = field(default_factory=list)
    loss: list[int] = field(default_factory=list)
    basis_up: list[int] = field(default_factory=list)
    basis_down: list[int] = field(default_factory=list)
    delta: list[int] = field(default_factory=list)
    pad: list[int] = field(default_factory=list)
    underlying: list[int] = field(default_factory=list)
    minimum_charge: list[int] = field(default_factory=list)
    short_option_charge: list[int] = field(default_factory=list)
    notional: list[int] = field(default_factory=list)
    leaf_mark: list[int] = field(default_factory=list)
    loss_long: list[int] = field(default_factory=list)
    loss_short: list[int] = field(default_factory=list)


def price_vectors(rng: np.random.Generator) -> dict[str, Any]:
    """``N_PRICES`` premiums of :func:`risk_engine.pricing.black76` on random inputs."""
    forward = np.exp(rng.uniform(np.log(0.5), np.log(200_000.0), N_PRICES))
    moneyness = np.exp(rng.uniform(np.log(0.3), np.log(3.0), N_PRICES))
    strike = forward * moneyness
    tenor = np.exp(rng.uniform(np.log(1 / (365 * 24)), np.log(3.0), N_PRICES))
    tenor[rng.random(N_PRICES) < 0.02] = 0.0  # expired: intrinsic value
    vol = np.exp(rng.uniform(np.log(0.05), np.log(3.0), N_PRICES))
    rate = rng.uniform(-0.05, 0.10, N_PRICES)
    is_call = rng.random(N_PRICES) < 0.5
    # the engine sees exactly the floats whose WAD is written
    f_w, k_w, t_w, v_w = (list(map(_wad, a.tolist())) for a in (forward, strike, tenor, vol))
    r_w = list(map(_wad, rate.tolist()))
    fl = np.array([w / WAD for w in f_w])
    kl = np.array([w / WAD for w in k_w])
    tl = np.array([w / WAD for w in t_w])
    vl = np.array([w / WAD for w in v_w])
    rl = [w / WAD for w in r_w]
    premium = [
        float(black76(fl[i], kl[i], tl[i], vl[i], rl[i], bool(is_call[i]))) for i in range(N_PRICES)
    ]
    return {
        "n": N_PRICES,
        "forward": _s(f_w),
        "strike": _s(k_w),
        "tenor": _s(t_w),
        "vol": _s(v_w),
        "rate": [str(r) for r in r_w],
        "isCall": [bool(c) for c in is_call.tolist()],
        "premium": _s(map(_wad, premium)),
    }


def seeded_market(rng: np.random.Generator, m: int) -> MarketSnapshot:
    """A seeded market: random spots, rate, smiles; market 0 is a crash (wide, capped ranges)."""
    timestamp = 1_719_792_000 + 7 * 86_400 * m + int(rng.integers(0, 86_400))
    n_u = len(UNDERLYINGS)
    spot = np.array(SPOTS) * rng.uniform(0.5, 1.5, n_u)
    perp = spot * (1.0 + rng.uniform(-0.003, 0.003, n_u))
    rate = float(rng.uniform(-0.02, 0.08))
    scale = 8.0 if m == 0 else float(rng.uniform(0.3, 2.0))
    dvol = np.array([0.03, 0.04, 0.055, 0.08]) * scale
    corr = np.full((n_u, n_u), 0.6) + 0.4 * np.eye(n_u)
    returns = returns_with_correlation(rng, corr, dvol, 250, 0.94)
    s_und: list[str] = []
    s_exp: list[int] = []
    fwd: list[float] = []
    atm: list[float] = []
    skew: list[float] = []
    curv: list[float] = []
    for ui, u in enumerate(UNDERLYINGS):
        for d in EXPIRY_DAYS:
            t = d / 365.0
            s_und.append(u)
            s_exp.append(timestamp + int(round(d * 86_400)))
            fwd.append(float(spot[ui] * np.exp((rate + rng.uniform(-0.02, 0.08)) * t)))
            atm.append(float(np.exp(rng.uniform(np.log(0.06), np.log(2.0)))))
            skew.append(float(rng.uniform(-0.5, 0.3)))
            curv.append(float(rng.uniform(0.0, 1.0)))
    surface = VolSurface(
        tuple(s_und),
        np.array(s_exp, dtype=np.int64),
        np.array(fwd),
        np.array(atm),
        np.array(skew),
        np.array(curv),
    )
    return MarketSnapshot(timestamp, UNDERLYINGS, spot, perp, rate, surface, returns)


def exact_market(market: MarketSnapshot) -> MarketSnapshot:
    """The same market with every input replaced by the float of its WAD (what the chain sees)."""

    def q(a: np.ndarray) -> np.ndarray:
        return np.array([_wad(float(x)) / WAD for x in a.tolist()])

    s = market.surface
    surface = VolSurface(
        s.underlying, s.expiry, q(s.forward), q(s.atm_vol), q(s.skew), q(s.curvature)
    )
    return MarketSnapshot(
        market.timestamp,
        market.underlyings,
        q(market.spot),
        q(market.perp_mark),
        _wad(market.rate) / WAD,
        surface,
        market.returns,
    )


def seeded_instruments(rng: np.random.Generator, market: MarketSnapshot) -> InstrumentTable:
    """Mostly options at a random slice and strike (K/F in [0.3, 3]), some perps and spots."""
    kinds: list[int] = []
    unds: list[str] = []
    strikes: list[float] = []
    expiries: list[int] = []
    s = market.surface
    for _ in range(INSTRUMENTS_PER_MARKET):
        r = rng.random()
        u = int(rng.integers(0, len(UNDERLYINGS)))
        if r < 0.06:
            kinds.append(InstrumentKind.PERP)
        elif r < 0.12:
            kinds.append(InstrumentKind.SPOT)
        else:
            sl = [j for j in range(s.n_slices) if s.underlying[j] == UNDERLYINGS[u]]
            j = sl[int(rng.integers(0, len(sl)))]
            kinds.append(InstrumentKind.CALL if r < 0.56 else InstrumentKind.PUT)
            k = float(s.forward[j] * np.exp(rng.uniform(np.log(0.3), np.log(3.0))))
            if rng.random() < 0.05:
                k = float(s.forward[j])  # at the money
            strikes.append(_wad(k) / WAD)
            expiries.append(int(s.expiry[j]))
            unds.append(UNDERLYINGS[u])
            continue
        strikes.append(0.0)
        expiries.append(0)
        unds.append(UNDERLYINGS[u])
    return InstrumentTable(
        np.array(kinds, dtype=np.int8), tuple(unds), np.array(strikes), np.array(expiries)
    )


def instrument_vectors(rng: np.random.Generator, params: RiskParams, m: int) -> dict[str, Any]:
    """Every instrument's risk vector of ``build_risk_arrays`` for seeded market ``m``: marks,
    scenario loss rows, continuous-range pads (every scan column, zeros for a perp or spot),
    basis losses, delta notionals and the per-unit charges, with the inputs they follow from."""
    cols = _Columns()
    market = exact_market(seeded_market(rng, m))
    if m % 3 == 2:
        market = dataclasses.replace(market, confidence=np.array(LOW_CONFIDENCE))
    inst = seeded_instruments(rng, market)
    arrays = build_risk_arrays(inst, market, params)
    scen = arrays.scenarios
    fraction = scen.fraction.tolist()
    vol_state = scen.vol_state.tolist()
    cover = scen.cover.tolist()
    n_t = scen.n_scenarios
    s = market.surface
    for i in range(inst.n_instruments):
        kind = InstrumentKind(int(inst.kind[i]))
        u = arrays.underlying_index[i]
        cols.kind.append(CHAIN_KIND[kind])
        cols.timestamp.append(market.timestamp)
        cols.rate.append(_wad(market.rate))
        cols.range_.append(_wad(float(scen.ranges[u])))
        if kind in (InstrumentKind.CALL, InstrumentKind.PUT):
            j = next(
                j
                for j in range(s.n_slices)
                if s.underlying[j] == inst.underlying[i] and s.expiry[j] == inst.expiry[i]
            )
            cols.price.append(0)
            cols.strike.append(_wad(float(inst.strike[i])))
            cols.expiry.append(int(inst.expiry[i]))
            cols.forward.append(_wad(float(s.forward[j])))
            cols.atm_vol.append(_wad(float(s.atm_vol[j])))
            cols.skew.append(_wad(float(s.skew[j])))
            cols.curvature.append(_wad(float(s.curvature[j])))
        else:
            spot = kind == InstrumentKind.SPOT
            p = market.spot[u] if spot else market.perp_mark[u]
            cols.price.append(_wad(float(p)))
            for c in (
                cols.strike,
                cols.expiry,
                cols.forward,
                cols.atm_vol,
                cols.skew,
                cols.curvature,
            ):
                c.append(0)
        cols.mark.append(_wad(float(arrays.mark[i])))
        cols.loss.extend(_wad(float(x)) for x in arrays.loss[i, :n_t].tolist())
        cols.basis_up.append(_wad(float(arrays.loss[i, arrays.col_basis_up])))
        cols.basis_down.append(_wad(float(arrays.loss[i, arrays.col_basis_down])))
        cols.delta.append(_wad(float(arrays.loss[i, arrays.col_delta])))
        cols.pad.extend(_wad(float(x)) for x in arrays.pad[i, : scen.n_scan_columns].tolist())
        cols.underlying.append(int(u))
        cols.minimum_charge.append(_wad(float(arrays.minimum_charge[i])))
        cols.short_option_charge.append(_wad(float(arrays.short_option_charge[i])))
        cols.notional.append(_wad(float(arrays.unit_notional[i])))
        # the INSTRUMENT leaf's numbers as the keeper posts them (mark down, losses up); a
        # spot row has no leaf
        leaves = arrays.leaves
        cols.leaf_mark.append(math.floor(Fraction(float(leaves.mark[i])) * WAD))
        cols.loss_long.append(math.ceil(Fraction(float(leaves.loss_long[i])) * WAD))
        cols.loss_short.append(math.ceil(Fraction(float(leaves.loss_short[i])) * WAD))
    v = params.vol
    confidence = market.confidence_or_full()
    return {
        "n": len(cols.kind),
        "nScenarios": len(fraction),
        "grid": {
            "fraction": _s(map(_wad, fraction)),
            "volState": [str(x) for x in vol_state],
            "cover": _s(map(_wad, cover)),
            "maxDownMove": str(_wad(params.scan.max_down_move)),
            "horizonSeconds": str(round(params.horizon_days * 86_400)),
        },
        "padLayout": {
            "lo": [str(int(k)) for k in scen.interval_lo.tolist()],
            "hi": [str(int(k)) for k in scen.interval_hi.tolist()],
            "nMm": scen.n_mm,
            "nMmIntervals": scen.n_mm_intervals,
            "imCopies": [str(int(k)) for k in scen.mm_boundary.tolist()],
        },
        "basis": {
            "perp": str(_wad(params.basis.perp)),
            "forwardPerSqrtYear": str(_wad(params.basis.forward_per_sqrt_year)),
        },
        "volShock": {
            "up": str(_wad(v.up)),
            "down": str(_wad(v.down)),
            "referenceDays": str(_wad(v.reference_days)),
            "exponentShort": str(_wad(v.exponent_short)),
            "exponentLong": str(_wad(v.exponent_long)),
            "minTenorDays": str(_wad(v.min_tenor_days)),
            "floor": str(_wad(v.floor)),
        },
        "charges": {
            "minimumRate": str(_wad(params.minimum.rate)),
            "shortOptionMinimum": str(_wad(params.addons.short_option_minimum)),
            "confidenceThreshold": str(_wad(params.confidence.threshold)),
            "confidenceRate": str(_wad(params.confidence.rate)),
        },
        "underlyings": {
            "spot": _s(map(_wad, market.spot.tolist())),
            "confidence": _s(map(_wad, confidence.tolist())),
            "concentrationRate": _s(map(_wad, arrays.concentration_rate.tolist())),
            # the scan range of each underlying and what it follows from (contracts/libraries/
            # ScanRange.sol): the floor, the daily log returns (oldest first, underlying-major)
            "range": _s(map(_wad, scen.ranges.tolist())),
            "scanRangeFloor": _s(_wad(params.underlying(u).scan_range) for u in market.underlyings),
            "returns": [str(_wad(float(x))) for x in market.returns.T.ravel().tolist()],
            "nReturns": market.returns.shape[0],
        },
        "rangeParams": {
            "ewmaLambda": str(_wad(params.correlation.ewma_lambda)),
            "rangeVolMultiple": str(_wad(params.scan.range_vol_multiple)),
            "horizonDays": str(_wad(params.horizon_days)),
            "apcBuffer": str(_wad(params.apc.buffer)),
            "apcStressRatio": str(_wad(params.apc.stress_ratio)),
            "maxRange": str(_wad(params.scan.max_range)),
        },
        "kind": [str(k) for k in cols.kind],
        "price": _s(cols.price),
        "strike": _s(cols.strike),
        "expiry": _s(cols.expiry),
        "timestamp": _s(cols.timestamp),
        "forward": _s(cols.forward),
        "atmVol": _s(cols.atm_vol),
        "skew": [str(x) for x in cols.skew],
        "curvature": [str(x) for x in cols.curvature],
        "rate": [str(x) for x in cols.rate],
        "range": _s(cols.range_),
        "mark": _s(cols.mark),
        "loss": [str(x) for x in cols.loss],
        "basisUp": [str(x) for x in cols.basis_up],
        "basisDown": [str(x) for x in cols.basis_down],
        "delta": [str(x) for x in cols.delta],
        "pad": [str(x) for x in cols.pad],
        "underlying": [str(x) for x in cols.underlying],
        "minimumCharge": _s(cols.minimum_charge),
        "shortOptionCharge": _s(cols.short_option_charge),
        "notional": _s(cols.notional),
        "leafMark": _s(cols.leaf_mark),
        "lossLong": _s(cols.loss_long),
        "lossShort": _s(cols.loss_short),
    }


_COMMENT = (
    "written by scripts/gen_black76_vectors.py; checked by "
    "tests/contracts/unit/Black76Vectors.t.sol (docs/margin-method.md §10)"
)


def render() -> dict[str, str]:
    """File name -> content of every vector file (deterministic: one seeded generator)."""
    rng = np.random.default_rng(SEED)
    params = load_params()
    files = {"prices.json": {"_comment": _COMMENT, "prices": price_vectors(rng)}}
    for m in range(N_MARKETS):
        files[f"instruments_{m:02d}.json"] = {
            "_comment": _COMMENT,
            "instruments": instrument_vectors(rng, params, m),
        }
    return {name: json.dumps(body, indent=1) + "\n" for name, body in files.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    args = parser.parse_args(argv)
    files = render()
    if args.check:
        stale = [
            n for n, t in files.items() if not (DIR / n).exists() or (DIR / n).read_text() != t
        ]
        for name in stale:
            print(f"stale: tests/vectors/black76/{name}", file=sys.stderr)
        return 1 if stale else 0
    DIR.mkdir(exist_ok=True)
    for name, text in files.items():
        (DIR / name).write_text(text)
    print(f"wrote {len(files)} files to {DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
