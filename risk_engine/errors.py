"""One exception root for the engine.

Every error the engine raises derives from :class:`RiskEngineError`, so a caller (the
keeper) can refuse an epoch on any engine failure with one ``except`` and keep its last
good state (docs/security.md §4, "the keeper posts numbers from bad input").
"""

from __future__ import annotations


class RiskEngineError(Exception):
    """Root of every error raised by ``risk_engine``."""


class InvalidInputError(RiskEngineError, ValueError):
    """An input (market, portfolio, parameter) is unusable; nothing was computed.

    Attributes
    ----------
    field : str
        Dotted name of the offending input, e.g. ``"market.spot[2]"``.
    reason : str
        Human-readable reason.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class InvalidParamsError(InvalidInputError):
    """A risk-parameter file or object failed validation (``field`` names the key)."""


class UnsoundBoundError(RiskEngineError):
    """The engine cannot publish a number that keeps the on-chain bounds sound.

    Raised, for example, when a collateral token's required ``downShock`` would exceed
    100 % (the contract rejects it, and clipping it would break protocol §5).
    """


__all__ = ["InvalidInputError", "InvalidParamsError", "RiskEngineError", "UnsoundBoundError"]
