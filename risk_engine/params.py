"""Risk parameters: typed, frozen, validated on load (the SPAN risk-parameter file).

``load_params()`` reads ``risk_engine/params/default.toml`` (package data);
``load_params(path)`` another file; ``params_from_dict`` / ``parse_params`` do the same
without touching the file system. Every bad field raises :class:`InvalidParamsError`
naming the TOML key (e.g. ``"scan.price_points"``). Units and the reason for each default
are in docs/risk-parameters.md.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .errors import InvalidParamsError


@dataclass(frozen=True)
class ScanParams:
    """Price scan grid (fractions of price; ``extreme_moves`` in multiples of the range)."""

    price_points: int
    mm_range_fraction: float
    extreme_moves: tuple[float, ...]
    extreme_cover: float
    max_down_move: float
    range_vol_multiple: float
    max_range: float


@dataclass(frozen=True)
class VolShockParams:
    """Implied-vol shocks with tenor scaling ``mult(T) = (ref / max(T, min))^p``."""

    up: float
    down: float
    reference_days: float
    exponent_short: float
    exponent_long: float
    min_tenor_days: float
    floor: float


@dataclass(frozen=True)
class BasisParams:
    """Basis shocks: perp mark vs spot, and option forwards vs spot (x sqrt(T years))."""

    perp: float
    forward_per_sqrt_year: float


@dataclass(frozen=True)
class AddOnParams:
    """Add-ons other than concentration (which is per underlying)."""

    short_option_minimum: float


@dataclass(frozen=True)
class MinimumChargeParams:
    """Floor of the requirement: ``rate`` x gross notional of every position (USD per USD).

    Charged on top of the scan so that no book with positions (a perfect hedge included)
    is at zero margin; MM charges ``mm_scale`` of it (docs/risk-parameters.md).
    """

    rate: float


@dataclass(frozen=True)
class CorrelationParams:
    """EWMA correlation used for cross-underlying offsets."""

    ewma_lambda: float
    credit_factor: float
    min_observations: int


@dataclass(frozen=True)
class TokenParams:
    """Standalone collateral-token shocks (the epoch's token table)."""

    vol_multiple: float


@dataclass(frozen=True)
class UnderlyingParams:
    """Per-underlying parameters (``[underlying.<NAME>]``, fallback ``default``)."""

    scan_range: float
    concentration_threshold_usd: float
    concentration_rate: float
    token_haircut_floor: float


@dataclass(frozen=True)
class AntiProcyclicalityParams:
    """Anti-procyclicality buffer on the scan range (``[apc]``; docs/risk-parameters.md).

    EMIR RTS 153/2013 art. 28(1)(a): a buffer of ``buffer`` (0.25 = 25 %) on the range in
    calm markets, released as the short-term (EWMA) vol rises above the long-run vol of
    the snapshot's returns, and fully released at ``stress_ratio`` times the long-run vol.
    ``buffer = 0`` is the rule without a buffer.
    """

    buffer: float
    stress_ratio: float


NO_APC = AntiProcyclicalityParams(buffer=0.0, stress_ratio=2.0)


@dataclass(frozen=True)
class ConfidenceParams:
    """Confidence add-on (``[confidence]``, optional; docs/risk-parameters.md).

    The market feed attaches a confidence in [0, 1] to each underlying's price (how many
    sources agree and how fresh they are, ``keeper/feeds/composite.py``). Below
    ``threshold`` every position on that underlying is charged ``rate * (1 - confidence)``
    x spot per unit of ``|size|`` on top of the requirement, as Derive adds IM when its
    feeds' confidence falls below 0.55. At confidence 1 (the default input) it is zero.
    """

    threshold: float
    rate: float


DEFAULT_CONFIDENCE = ConfidenceParams(threshold=0.55, rate=0.02)


@dataclass(frozen=True)
class RiskParams:
    """All risk parameters. Frozen; derive variants with ``dataclasses.replace``."""

    horizon_days: float
    mm_scale: float
    scan: ScanParams
    vol: VolShockParams
    basis: BasisParams
    addons: AddOnParams
    correlation: CorrelationParams
    tokens: TokenParams
    underlyings: Mapping[str, UnderlyingParams]
    minimum: MinimumChargeParams
    apc: AntiProcyclicalityParams = NO_APC
    confidence: ConfidenceParams = DEFAULT_CONFIDENCE

    def underlying(self, name: str) -> UnderlyingParams:
        """Parameters of underlying ``name`` (its own section, else ``default``)."""
        found = self.underlyings.get(name)
        return found if found is not None else self.underlyings["default"]

    @property
    def horizon_years(self) -> float:
        """Liquidation horizon in years (365-day year)."""
        return self.horizon_days / 365.0


# ---------------------------------------------------------------- validation helpers


def _section(d: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    v = d.get(key)
    if not isinstance(v, Mapping):
        raise InvalidParamsError(f"{where}{key}", "missing section")
    return v


def _check_keys(d: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for k in d:
        if k not in allowed:
            raise InvalidParamsError(f"{where}{k}", "unknown key")
    for k in allowed:
        if k not in d:
            raise InvalidParamsError(f"{where}{k}", "missing")


def _num(
    d: Mapping[str, Any],
    key: str,
    where: str,
    *,
    lo: float,
    hi: float = math.inf,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    field = f"{where}{key}"
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise InvalidParamsError(field, f"must be a number, got {v!r}")
    x = float(v)
    if not math.isfinite(x):
        raise InvalidParamsError(field, "must be finite")
    if x < lo or (lo_open and x == lo):
        raise InvalidParamsError(field, f"must be {'>' if lo_open else '>='} {lo}, got {x}")
    if x > hi or (hi_open and x == hi):
        raise InvalidParamsError(field, f"must be {'<' if hi_open else '<='} {hi}, got {x}")
    return x


def _int(d: Mapping[str, Any], key: str, where: str, *, lo: int) -> int:
    field = f"{where}{key}"
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvalidParamsError(field, f"must be an integer, got {v!r}")
    if v < lo:
        raise InvalidParamsError(field, f"must be >= {lo}, got {v}")
    return v


def params_from_dict(d: Mapping[str, Any]) -> RiskParams:
    """Validate a parsed TOML mapping and build :class:`RiskParams`.

    Raises
    ------
    InvalidParamsError
        With ``field`` = the dotted TOML key of the first bad value.
    """
    # [apc] and [confidence] are optional (absent = no buffer, the default confidence
    # add-on) so that older parameter files stay valid
    top = {
        "general",
        "scan",
        "vol",
        "basis",
        "addons",
        "correlation",
        "tokens",
        "underlying",
        "minimum_charge",
    }
    _check_keys({k: v for k, v in d.items() if k not in ("apc", "confidence")}, top, "")
    g = _section(d, "general", "")
    _check_keys(g, {"horizon_days", "mm_scale"}, "general.")
    horizon = _num(g, "horizon_days", "general.", lo=0.0, hi=30.0, lo_open=True)
    mm_scale = _num(g, "mm_scale", "general.", lo=0.0, hi=1.0, lo_open=True, hi_open=True)

    s = _section(d, "scan", "")
    w = "scan."
    _check_keys(
        s,
        {
            "price_points",
            "mm_range_fraction",
            "extreme_moves",
            "extreme_cover",
            "max_down_move",
            "range_vol_multiple",
            "max_range",
        },
        w,
    )
    points = _int(s, "price_points", w, lo=3)
    if points % 2 == 0:
        raise InvalidParamsError(w + "price_points", "must be odd (the grid includes 0)")
    mm_frac = _num(s, "mm_range_fraction", w, lo=0.0, hi=1.0, lo_open=True)
    raw_ext = s["extreme_moves"]
    if not isinstance(raw_ext, list):
        raise InvalidParamsError(w + "extreme_moves", "must be a list of numbers")
    ext: list[float] = []
    for i, e in enumerate(raw_ext):
        if isinstance(e, bool) or not isinstance(e, int | float) or not math.isfinite(e):
            raise InvalidParamsError(f"{w}extreme_moves[{i}]", f"not a finite number: {e!r}")
        if abs(e) <= 1.0:
            raise InvalidParamsError(f"{w}extreme_moves[{i}]", "must lie beyond the range (|x|>1)")
        ext.append(float(e))
    cover = _num(s, "extreme_cover", w, lo=0.0, hi=1.0)
    max_down = _num(s, "max_down_move", w, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    rvm = _num(s, "range_vol_multiple", w, lo=0.0)
    max_range = _num(s, "max_range", w, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    if max_range > max_down:
        # inside the range no move is floored, so its grid points are evenly spaced and
        # the continuous-range pads of docs/margin-method.md §3 hold on every segment
        raise InvalidParamsError(w + "max_range", f"must be <= max_down_move ({max_down})")
    scan = ScanParams(points, mm_frac, tuple(ext), cover, max_down, rvm, max_range)

    v = _section(d, "vol", "")
    w = "vol."
    _check_keys(
        v,
        {
            "up",
            "down",
            "reference_days",
            "exponent_short",
            "exponent_long",
            "min_tenor_days",
            "floor",
        },
        w,
    )
    vol = VolShockParams(
        up=_num(v, "up", w, lo=0.0),
        down=_num(v, "down", w, lo=0.0, hi=1.0, hi_open=True),
        reference_days=_num(v, "reference_days", w, lo=0.0, lo_open=True),
        exponent_short=_num(v, "exponent_short", w, lo=0.0, hi=1.0),
        exponent_long=_num(v, "exponent_long", w, lo=0.0, hi=1.0),
        min_tenor_days=_num(v, "min_tenor_days", w, lo=0.0, lo_open=True),
        floor=_num(v, "floor", w, lo=0.0, hi=5.0, lo_open=True),
    )

    b = _section(d, "basis", "")
    _check_keys(b, {"perp", "forward_per_sqrt_year"}, "basis.")
    basis = BasisParams(
        perp=_num(b, "perp", "basis.", lo=0.0, hi=0.5),
        forward_per_sqrt_year=_num(b, "forward_per_sqrt_year", "basis.", lo=0.0, hi=0.5),
    )

    a = _section(d, "addons", "")
    _check_keys(a, {"short_option_minimum"}, "addons.")
    addons = AddOnParams(_num(a, "short_option_minimum", "addons.", lo=0.0, hi=0.5))

    c = _section(d, "correlation", "")
    w = "correlation."
    _check_keys(c, {"ewma_lambda", "credit_factor", "min_observations"}, w)
    corr = CorrelationParams(
        ewma_lambda=_num(c, "ewma_lambda", w, lo=0.0, hi=1.0, lo_open=True, hi_open=True),
        credit_factor=_num(c, "credit_factor", w, lo=0.0, hi=1.0),
        min_observations=_int(c, "min_observations", w, lo=2),
    )

    t = _section(d, "tokens", "")
    _check_keys(t, {"vol_multiple"}, "tokens.")
    tokens = TokenParams(_num(t, "vol_multiple", "tokens.", lo=0.0))

    m = _section(d, "minimum_charge", "")
    _check_keys(m, {"rate"}, "minimum_charge.")
    minimum = MinimumChargeParams(_num(m, "rate", "minimum_charge.", lo=0.0, hi=0.1, lo_open=True))

    u = _section(d, "underlying", "")
    if "default" not in u:
        raise InvalidParamsError("underlying.default", "missing section")
    unders: dict[str, UnderlyingParams] = {}
    for name, sec in u.items():
        w = f"underlying.{name}."
        if not isinstance(sec, Mapping):
            raise InvalidParamsError(f"underlying.{name}", "must be a section")
        _check_keys(
            sec,
            {
                "scan_range",
                "concentration_threshold_usd",
                "concentration_rate",
                "token_haircut_floor",
            },
            w,
        )
        unders[name] = UnderlyingParams(
            scan_range=_num(sec, "scan_range", w, lo=0.0, hi=max_range, lo_open=True),
            concentration_threshold_usd=_num(sec, "concentration_threshold_usd", w, lo=0.0),
            concentration_rate=_num(sec, "concentration_rate", w, lo=0.0, hi=0.5),
            token_haircut_floor=_num(sec, "token_haircut_floor", w, lo=0.0, hi=1.0),
        )
        # a token's required downShock is at most its worst in-range or extreme loss per
        # unit of price plus the per-unit add-ons (concentration slope, minimum charge):
        # keeping that below 1 means a crash only ever CAPS the vol terms (scenarios.py),
        # it never makes the token table unpublishable
        worst = max(max_range, cover * max_down)
        total = worst + unders[name].concentration_rate + minimum.rate
        if total >= 1.0 - 1e-6:
            raise InvalidParamsError(
                w + "concentration_rate",
                f"max(scan.max_range, extreme_cover * max_down_move) + concentration_rate + "
                f"minimum_charge.rate = {total} must be < 1 (token downShock)",
            )
    apc = NO_APC
    if "apc" in d:
        ap = _section(d, "apc", "")
        _check_keys(ap, {"buffer", "stress_ratio"}, "apc.")
        apc = AntiProcyclicalityParams(
            buffer=_num(ap, "buffer", "apc.", lo=0.0, hi=1.0),
            stress_ratio=_num(ap, "stress_ratio", "apc.", lo=1.0, hi=10.0, lo_open=True),
        )
    confidence = DEFAULT_CONFIDENCE
    if "confidence" in d:
        cf = _section(d, "confidence", "")
        _check_keys(cf, {"threshold", "rate"}, "confidence.")
        confidence = ConfidenceParams(
            threshold=_num(cf, "threshold", "confidence.", lo=0.0, hi=1.0),
            rate=_num(cf, "rate", "confidence.", lo=0.0, hi=0.1),
        )
    for name in unders:
        # the confidence add-on is a per-unit charge like the minimum charge: it enters a
        # token's downShock, which must stay below 1 (see the check above)
        worst = max(max_range, cover * max_down)
        total = worst + unders[name].concentration_rate + minimum.rate + confidence.rate
        if total >= 1.0 - 1e-6:
            raise InvalidParamsError(
                "confidence.rate",
                f"max range + concentration_rate + minimum_charge.rate + confidence.rate = "
                f"{total} must be < 1 (token downShock)",
            )
    return RiskParams(
        horizon_days=horizon,
        mm_scale=mm_scale,
        scan=scan,
        vol=vol,
        basis=basis,
        addons=addons,
        correlation=corr,
        tokens=tokens,
        underlyings=MappingProxyType(unders),
        minimum=minimum,
        apc=apc,
        confidence=confidence,
    )


def parse_params(text: str) -> RiskParams:
    """Parse and validate TOML text (no file access)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParamsError("<toml>", str(exc)) from exc
    return params_from_dict(data)


def default_params_text() -> str:
    """The shipped ``risk_engine/params/default.toml`` as text."""
    return (resources.files("risk_engine") / "params" / "default.toml").read_text("utf-8")


def load_params(path: str | Path | None = None) -> RiskParams:
    """Load and validate risk parameters from a TOML file (default: the shipped one)."""
    text = default_params_text() if path is None else Path(path).read_text("utf-8")
    return parse_params(text)


__all__ = [
    "NO_APC",
    "AddOnParams",
    "ConfidenceParams",
    "AntiProcyclicalityParams",
    "BasisParams",
    "CorrelationParams",
    "MinimumChargeParams",
    "RiskParams",
    "ScanParams",
    "TokenParams",
    "UnderlyingParams",
    "VolShockParams",
    "default_params_text",
    "load_params",
    "params_from_dict",
    "parse_params",
]
