"""Portfolio-margin risk engine: pure numpy/scipy, no I/O, no clock, no chain.

Typical use::

    from risk_engine import (InstrumentTable, Portfolios, MarketSnapshot, VolSurface,
                             load_params, build_risk_arrays, compute_margin, explain)
    params = load_params()                                  # shipped default.toml
    arrays = build_risk_arrays(instruments, market, params)  # shared, small
    result = compute_margin(portfolios, market, params, arrays=arrays)
    result.im, result.mm, result.equity                      # per account (USD floats)
    result.leaves.to_wad(), result.tokens.to_wad()           # chain numbers (WAD ints)
    result.to_wad(account)                                   # (equity down, im up, mm up)
    arrays.capped                                            # values capped in a crash (log them)

The method is in docs/margin-method.md, the parameters in docs/risk-parameters.md.
"""

from __future__ import annotations

from .errors import InvalidInputError, InvalidParamsError, RiskEngineError, UnsoundBoundError
from .instruments import InstrumentKind, InstrumentTable, Portfolios
from .leaves import InstrumentLeaves, TokenTable, WadInstrumentLeaves, WadTokenTable
from .margin import MarginResult, compute_margin
from .market import MarketSnapshot, VolSurface
from .params import RiskParams, load_params, params_from_dict, parse_params
from .pricing import black76, black76_delta, black76_spot_delta
from .report import AccountReport, explain
from .risk_arrays import RiskArrays, build_risk_arrays
from .scenarios import CappedValue, ScenarioSet
from .units import (
    WAD,
    to_signed_wad_down,
    to_signed_wad_up,
    to_wad_down,
    to_wad_up,
)

__all__ = [
    "WAD",
    "AccountReport",
    "CappedValue",
    "InstrumentKind",
    "InstrumentLeaves",
    "InstrumentTable",
    "InvalidInputError",
    "InvalidParamsError",
    "MarginResult",
    "MarketSnapshot",
    "Portfolios",
    "RiskArrays",
    "RiskEngineError",
    "RiskParams",
    "ScenarioSet",
    "TokenTable",
    "UnsoundBoundError",
    "VolSurface",
    "WadInstrumentLeaves",
    "WadTokenTable",
    "black76",
    "black76_delta",
    "black76_spot_delta",
    "build_risk_arrays",
    "compute_margin",
    "explain",
    "load_params",
    "params_from_dict",
    "parse_params",
    "to_signed_wad_down",
    "to_signed_wad_up",
    "to_wad_down",
    "to_wad_up",
]
