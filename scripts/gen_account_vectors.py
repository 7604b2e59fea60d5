"""Write the account recomputation vectors ``tests/vectors/accounts/*.json`` (deterministic).

For each of ``N_MARKETS`` seeded markets (the generator of ``scripts/gen_black76_vectors.py``:
four underlyings, options from 1 hour to 3 years, a crash market with capped ranges, and here
also markets whose feed confidence is low), the file holds the epoch's aggregation parameters,
the risk vector of every instrument (its row of ``RiskArrays``: mark, template losses, pads,
basis, delta notional, per-unit charges) and ``ACCOUNTS_PER_MARKET`` random accounts (1 to 20
positions over the market's instruments, collateral tokens as SPOT positions, cash) with the
engine's ``compute_margin`` numbers. Forge (``tests/contracts/unit/AccountMarginVectors.t.sol``)
recomputes every account with ``AccountMargin`` and reports the largest differences; pytest
(``tests/scripts/test_gen_account_vectors.py``) checks the files are current. The tolerance
that follows is in docs/margin-method.md §10.

Every input is written as the nearest WAD integer; the engine runs on the floats of the
written sizes and cash, and on its own float risk arrays (the WAD rounding of a vector entry,
at most 5e-19 per unit, is far below the tolerance). Arrays are column-wise, one file per
market (~0.4 MB; forge copies a whole file into memory at every parse).

Run: ``python -m scripts.gen_account_vectors`` (``--check`` exits 1 if a file would change).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

import numpy as np
import scipy.sparse as sp

from risk_engine import build_risk_arrays, compute_margin, load_params
from risk_engine.instruments import InstrumentKind, Portfolios
from risk_engine.margin import MarginResult
from risk_engine.market import MarketSnapshot
from risk_engine.params import RiskParams
from risk_engine.risk_arrays import RiskArrays
from scripts.gen_black76_vectors import (
    N_MARKETS,
    exact_market,
    seeded_instruments,
    seeded_market,
)
from scripts.gen_vectors import VECTORS_DIR

DIR = VECTORS_DIR / "accounts"
SEED = 20261206
ACCOUNTS_PER_MARKET = 100
MAX_POSITIONS = 20
#: Position notionals (USD), log-uniform: from dust to above every concentration threshold.
NOTIONAL_RANGE = (10.0, 2e7)
#: Feed confidence of the markets ``m % 3 == 1`` (BTC, ETH, SOL, GOV): two below the threshold.
LOW_CONFIDENCE = (1.0, 0.4, 0.9, 0.2)
WAD = 10**18


def _wad(x: float) -> int:
    """The WAD integer nearest to the float ``x`` (exact: a float is a dyadic rational)."""
    num, den = float(x).as_integer_ratio()
    q, r = divmod(num * WAD, den)
    return q + (1 if 2 * r >= den else 0)


def _s(values: Any) -> list[str]:
    return [str(_wad(float(v))) for v in values]


def _market(rng: np.random.Generator, m: int) -> MarketSnapshot:
    market = exact_market(seeded_market(rng, m))
    if m % 3 == 1:
        market = dataclasses.replace(market, confidence=np.array(LOW_CONFIDENCE))
    return market


def _params(arrays: RiskArrays) -> dict[str, Any]:
    """The aggregation weights and add-on parameters (AccountMargin's AggregationParams)."""
    tree = arrays.tree
    n_u = arrays.n_underlyings
    merges = [c for c in tree.children[n_u:] if c is not None]
    assert len(merges) == len(tree.members) - n_u
    return {
        "nMm": arrays.scenarios.n_mm,
        "imCopies": [str(int(k)) for k in arrays.scenarios.mm_boundary.tolist()],
        "mmScale": str(_wad(arrays.mm_scale)),
        "concentrationRate": _s(arrays.concentration_rate),
        "concentrationThreshold": _s(arrays.concentration_threshold),
        "nodeWeight": _s(tree.weight),
        "left": [str(a) for a, _ in merges],
        "right": [str(b) for _, b in merges],
    }


def _instrument_vectors(arrays: RiskArrays) -> dict[str, Any]:
    """Every instrument's risk vector (``RiskVector``), column-wise; pads flat, zeros when none."""
    n_t = arrays.n_scenarios
    n_scan = arrays.n_scan_columns
    loss = arrays.loss
    return {
        "n": arrays.n_instruments,
        "nScenarios": n_t,
        "nScan": n_scan,
        "underlying": [str(int(u)) for u in arrays.underlying_index.tolist()],
        "mark": _s(arrays.mark),
        "loss": _s(loss[:, :n_t].ravel()),
        "hasPad": [bool(b) for b in arrays.has_pad.tolist()],
        "pad": _s(arrays.pad[:, :n_scan].ravel()),
        "basisUp": _s(loss[:, arrays.col_basis_up]),
        "basisDown": _s(loss[:, arrays.col_basis_down]),
        "delta": _s(loss[:, arrays.col_delta]),
        "minimumCharge": _s(arrays.minimum_charge),
        "shortOptionCharge": _s(arrays.short_option_charge),
        "notional": _s(arrays.unit_notional),
    }


def _portfolios(rng: np.random.Generator, arrays: RiskArrays) -> Portfolios:
    """Random accounts: 1 to 20 distinct instruments each, long tokens, signed derivatives."""
    n_i = arrays.n_instruments
    kind = arrays.instruments.kind
    rows: list[int] = []
    cols: list[int] = []
    data: list[float] = []
    cash: list[float] = []
    for a in range(ACCOUNTS_PER_MARKET):
        # every count from 1 to 20 appears, the rest at random
        k = a % MAX_POSITIONS + 1
        if a >= 2 * MAX_POSITIONS:
            k = int(rng.integers(1, MAX_POSITIONS + 1))
        chosen = np.sort(rng.choice(n_i, size=k, replace=False))
        gross = 0.0
        for i in chosen.tolist():
            notional = float(np.exp(rng.uniform(*np.log(NOTIONAL_RANGE))))
            size = notional / float(arrays.unit_notional[i])
            if kind[i] != InstrumentKind.SPOT and rng.random() < 0.5:
                size = -size  # a token balance is never negative
            rows.append(a)
            cols.append(i)
            data.append(_wad(size) / WAD)
            gross += notional
        cash.append(_wad(float(rng.uniform(-0.5, 1.0)) * gross) / WAD)
    positions = sp.csr_array(
        (np.array(data), (np.array(rows), np.array(cols))), shape=(ACCOUNTS_PER_MARKET, n_i)
    )
    return Portfolios(arrays.instruments, positions, np.array(cash))


def _accounts(p: Portfolios, result: MarginResult) -> dict[str, Any]:
    pos = p.positions
    return {
        "n": p.n_accounts,
        "start": [str(int(x)) for x in pos.indptr.tolist()],
        "instrument": [str(int(x)) for x in pos.indices.tolist()],
        "size": _s(pos.data),
        "cash": _s(p.cash),
        "equity": _s(result.equity),
        "im": _s(result.im),
        "mm": _s(result.mm),
        "scanIm": _s(result.scan_im),
        "scanMm": _s(result.scan_mm),
        "basis": _s(result.basis),
        "shortOption": _s(result.short_option),
        "minimum": _s(result.minimum),
        "concentration": _s(result.concentration),
        "grossNotional": _s(result.gross_notional),
    }


def market_vectors(rng: np.random.Generator, params: RiskParams, m: int) -> dict[str, Any]:
    """Parameters, instrument risk vectors and accounts with the engine's numbers, market ``m``."""
    market = _market(rng, m)
    instruments = seeded_instruments(rng, market)
    arrays = build_risk_arrays(instruments, market, params)
    portfolios = _portfolios(rng, arrays)
    result = compute_margin(portfolios, market, params, arrays=arrays)
    return {
        "params": _params(arrays),
        "instruments": _instrument_vectors(arrays),
        "accounts": _accounts(portfolios, result),
    }


_COMMENT = (
    "written by scripts/gen_account_vectors.py; checked by "
    "tests/contracts/unit/AccountMarginVectors.t.sol (docs/margin-method.md §10)"
)


def render() -> dict[str, str]:
    """File name -> content of every vector file (deterministic: one seeded generator)."""
    rng = np.random.default_rng(SEED)
    params = load_params()
    return {
        f"accounts_{m:02d}.json": json.dumps(
            {"_comment": _COMMENT, **market_vectors(rng, params, m)}, separators=(",", ":")
        )
        + "\n"
        for m in range(N_MARKETS)
    }


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
            print(f"stale: tests/vectors/accounts/{name}", file=sys.stderr)
        return 1 if stale else 0
    DIR.mkdir(exist_ok=True)
    for name, text in files.items():
        (DIR / name).write_text(text)
    print(f"wrote {len(files)} files to {DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
