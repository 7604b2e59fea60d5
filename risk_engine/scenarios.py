"""The scenario template shared by every underlying.

Scenario ``s`` moves underlying ``u`` by ``fraction[s] * range[u]`` (a simple return,
floored at ``-max_down_move``), shocks implied vols by ``vol_state[s]`` (-1 down, 0 none,
+1 up, tenor-scaled), advances time by the liquidation horizon, and counts its P&L at
``cover[s]`` (1, or ``extreme_cover`` for the fat-tail moves beyond the range).

Because every underlying uses the same template, a JOINT scenario of a cluster of
underlyings is "all members at template ``s``": a co-move of ``fraction[s]`` of each
member's own range (so a pair is beta-matched when its notionals are in inverse
proportion to the ranges). See correlation.py for how clusters are weighted.

Ordering: scenario 0 is "no move, vol unchanged"; the first ``n_mm`` scenarios are the
MM grid (``|fraction| <= mm_range_fraction``, no extremes); the IM grid is all of them.

Intervals: for each vol state, consecutive in-range grid points ``(interval_lo[j],
interval_hi[j])`` (scenario indices) bound a segment of the CONTINUOUS scan range; the
first ``n_mm_intervals`` lie inside the MM range. risk_arrays.py pads each grid point by
the pads of its segments so that the requirement covers every move of the range, not only
the points (docs/margin-method.md §3). The MM points that end a segment outside the MM
range (``mm_boundary``) get a second, IM-only column with the outer segment's pad.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._typing import Float64Array, Int8Array, Int64Array
from .correlation import ewma_volatility
from .market import MarketSnapshot
from .params import AntiProcyclicalityParams, RiskParams, VolShockParams

_VOL_WORD = {-1: "vol down", 0: "vol unchanged", 1: "vol up"}


@dataclass(frozen=True)
class ScenarioSet:
    """Template scenarios and per-underlying ranges.

    Attributes
    ----------
    fraction : Float64Array, shape (n_scenarios,)
        Price move in multiples of the underlying's scan range.
    vol_state : Int8Array, shape (n_scenarios,)
    cover : Float64Array, shape (n_scenarios,)
    n_mm : int
        The first ``n_mm`` scenarios form the MM grid.
    underlyings : tuple[str, ...]
    ranges : Float64Array, shape (n_underlyings,)
        Scan range per underlying (fraction of price).
    moves : Float64Array, shape (n_underlyings, n_scenarios)
        Price move per underlying and scenario (simple return, >= -max_down_move).
    horizon_days : float
    interval_lo, interval_hi : Int64Array, shape (n_intervals,)
        Scenario indices of the two ends of each segment of the continuous range (same vol
        state, consecutive grid fractions, ``fraction[lo] < fraction[hi]``).
    n_mm_intervals : int
        The first ``n_mm_intervals`` segments have both ends in the MM grid.
    """

    fraction: Float64Array
    vol_state: Int8Array
    cover: Float64Array
    n_mm: int
    underlyings: tuple[str, ...]
    ranges: Float64Array
    moves: Float64Array
    horizon_days: float
    interval_lo: Int64Array
    interval_hi: Int64Array
    n_mm_intervals: int

    @property
    def n_scenarios(self) -> int:
        return int(self.fraction.shape[0])

    @property
    def n_intervals(self) -> int:
        return int(self.interval_lo.shape[0])

    @cached_property
    def mm_boundary(self) -> Int64Array:
        """MM-grid points that end a segment outside the MM range (scenario indices)."""
        outer = np.concatenate(
            [self.interval_lo[self.n_mm_intervals :], self.interval_hi[self.n_mm_intervals :]]
        )
        out: Int64Array = np.unique(outer[outer < self.n_mm]).astype(np.int64)
        return out

    @property
    def n_scan_columns(self) -> int:
        """Scan columns of the risk arrays: the template, then the IM copies of ``mm_boundary``."""
        return self.n_scenarios + int(self.mm_boundary.shape[0])

    @property
    def extremes(self) -> Int64Array:
        """Scenario indices of the extreme moves (beyond the range), IM grid only."""
        out: Int64Array = np.flatnonzero(np.abs(self.fraction) > 1.0 + 1e-12).astype(np.int64)
        return out

    def words(self, s: int, underlyings: tuple[int, ...] | None = None) -> str:
        """Describe scenario ``s`` (for the given underlying indices, default all)."""
        idx = range(len(self.underlyings)) if underlyings is None else underlyings
        moves = ", ".join(f"{self.underlyings[u]} {self.moves[u, s]:+.1%}" for u in idx)
        kind = "extreme " if abs(self.fraction[s]) > 1.0 + 1e-12 else ""
        cover = f" at {self.cover[s]:.0%} cover" if self.cover[s] != 1.0 else ""
        vol = _VOL_WORD[int(self.vol_state[s])]
        return (
            f"{kind}price {self.fraction[s]:+.2f}x range ({moves}), {vol}, "
            f"+{self.horizon_days:g}d{cover}"
        )

    def all_words(self) -> tuple[str, ...]:
        """:meth:`words` of every scenario."""
        return tuple(self.words(s) for s in range(self.n_scenarios))


@dataclass(frozen=True)
class CappedValue:
    """A number the engine capped instead of refusing the epoch (the keeper logs and counts it).

    Attributes
    ----------
    name : str
        What was capped, with the underlying: ``"scan_range[GOV]"`` (the vol-scaled scan
        range) or ``"token_vol_haircut[BTC]"`` (the token's vol-scaled shock term).
    raw : float
        The value before the cap (fraction of price).
    capped : float
        The value used (``scan.max_range``).
    """

    name: str
    raw: float
    capped: float


def _cap(
    name: str,
    underlyings: tuple[str, ...],
    raw: Float64Array,
    cap: float,
    report: frozenset[int] | None = None,
) -> tuple[Float64Array, tuple[CappedValue, ...]]:
    out: Float64Array = np.minimum(raw, cap)
    hit = tuple(
        CappedValue(f"{name}[{underlyings[u]}]", float(raw[u]), cap)
        for u in np.flatnonzero(raw > cap).tolist()
        if report is None or u in report
    )
    return out, hit


def apc_buffer_factor(
    short_vol: Float64Array, long_vol: Float64Array, apc: AntiProcyclicalityParams
) -> Float64Array:
    """``1 + buffer * (1 - released)`` per underlying (EMIR RTS 153/2013 art. 28(1)(a)).

    ``released = clip((short/long - 1) / (stress_ratio - 1), 0, 1)``: the whole buffer
    while the EWMA vol is at or below the long-run vol (calm), none of it from
    ``stress_ratio`` times the long-run vol on (stress), linear in between. The buffer
    is built in calm markets and spent when the range would jump, so the range rises
    less in a crash than the vol does.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(long_vol > 0.0, short_vol / long_vol, 1.0)
    released = np.clip((ratio - 1.0) / (apc.stress_ratio - 1.0), 0.0, 1.0)
    out: Float64Array = 1.0 + apc.buffer * (1.0 - released)
    return out


def scan_ranges_capped(
    market: MarketSnapshot, params: RiskParams
) -> tuple[Float64Array, tuple[CappedValue, ...]]:
    """Per-underlying scan range
    ``min(max_range, max(scan_range_u, k * vol_u * sqrt(h)) * apc_buffer_factor)`` and the
    ranges the cap cut (a crash day makes ``k * vol_u`` exceed 100 %).

    ``vol_u`` is the EWMA daily vol; the anti-procyclicality factor (>= 1) compares it with
    the long-run (equally weighted) vol of the same returns (docs/margin-method.md §3).
    """
    vol = ewma_volatility(market.returns, params.correlation.ewma_lambda)
    long_vol = np.sqrt(np.mean(market.returns * market.returns, axis=0))
    floor = np.array([params.underlying(u).scan_range for u in market.underlyings])
    scaled = params.scan.range_vol_multiple * vol * np.sqrt(params.horizon_days)
    buffered = np.maximum(floor, scaled) * apc_buffer_factor(vol, long_vol, params.apc)
    return _cap("scan_range", market.underlyings, buffered, params.scan.max_range)


def scan_ranges(market: MarketSnapshot, params: RiskParams) -> Float64Array:
    """Per-underlying scan range (:func:`scan_ranges_capped` without the capped list)."""
    return scan_ranges_capped(market, params)[0]


def token_vol_haircuts_capped(
    market: MarketSnapshot, params: RiskParams, with_token: frozenset[int]
) -> tuple[Float64Array, tuple[CappedValue, ...]]:
    """Per-underlying ``min(max_range, vol_multiple * vol_u * sqrt(h))`` and the capped ones
    among the underlyings ``with_token`` (indices; the others publish no token shock).

    The cap keeps the token shock below 100 % (params.py validates ``max_range`` plus every
    per-unit add-on < 1), so a crash day yields a capped number instead of a refused epoch.
    """
    vol = ewma_volatility(market.returns, params.correlation.ewma_lambda)
    raw = params.tokens.vol_multiple * vol * np.sqrt(params.horizon_days)
    return _cap("token_vol_haircut", market.underlyings, raw, params.scan.max_range, with_token)


def build_scenarios(market: MarketSnapshot, params: RiskParams) -> ScenarioSet:
    """The template and per-underlying moves for this market (market must be valid)."""
    sp = params.scan
    half = (sp.price_points - 1) // 2
    grid = np.arange(-half, half + 1, dtype=np.float64) / half
    states = (0, -1, 1)
    mm: list[tuple[float, int, float]] = []
    rest: list[tuple[float, int, float]] = []
    for f in sorted(grid.tolist(), key=lambda x: (abs(x), x)):
        for v in states:
            (mm if abs(f) <= sp.mm_range_fraction + 1e-12 else rest).append((f, v, 1.0))
    for f in sp.extreme_moves:
        for v in states:
            rest.append((f, v, sp.extreme_cover))
    rows = mm + rest
    fraction = np.array([r[0] for r in rows], dtype=np.float64)
    vol_state = np.array([r[1] for r in rows], dtype=np.int8)
    cover = np.array([r[2] for r in rows], dtype=np.float64)
    ranges, _ = scan_ranges_capped(market, params)
    moves = np.maximum(ranges[:, None] * fraction[None, :], -sp.max_down_move)
    where = {(f, v): i for i, (f, v, c) in enumerate(rows) if c == 1.0}
    pts = sorted(grid.tolist())
    seg_mm: list[tuple[int, int]] = []
    seg_rest: list[tuple[int, int]] = []
    for v in states:
        for lo, hi in zip(pts[:-1], pts[1:], strict=True):
            inside = max(abs(lo), abs(hi)) <= sp.mm_range_fraction + 1e-12
            (seg_mm if inside else seg_rest).append((where[(lo, v)], where[(hi, v)]))
    segs = seg_mm + seg_rest
    return ScenarioSet(
        fraction=fraction,
        vol_state=vol_state,
        cover=cover,
        n_mm=len(mm),
        underlyings=market.underlyings,
        ranges=ranges,
        moves=moves,
        horizon_days=params.horizon_days,
        interval_lo=np.array([a for a, _ in segs], dtype=np.int64),
        interval_hi=np.array([b for _, b in segs], dtype=np.int64),
        n_mm_intervals=len(seg_mm),
    )


def vol_shock_multiplier(tenor_years: Float64Array, vol: VolShockParams) -> Float64Array:
    """Tenor scaling ``(ref / max(T, min))^p``, ``p`` short below ``ref`` days, long above."""
    days = np.maximum(tenor_years * 365.0, vol.min_tenor_days)
    p = np.where(days <= vol.reference_days, vol.exponent_short, vol.exponent_long)
    out: Float64Array = (vol.reference_days / days) ** p
    return out


def shocked_vols(
    sigma: Float64Array, tenor_years: Float64Array, vol_state: Int8Array, vol: VolShockParams
) -> Float64Array:
    """Shocked vols, shape (n_options, n_scenarios): up ``1 + up*mult``, down ``1 - down*mult``.

    Floored at ``vol.floor``.
    """
    mult = vol_shock_multiplier(tenor_years, vol)[:, None]
    factor = np.where(
        vol_state[None, :] > 0,
        1.0 + vol.up * mult,
        np.where(vol_state[None, :] < 0, 1.0 - vol.down * mult, 1.0),
    )
    out: Float64Array = np.maximum(sigma[:, None] * factor, vol.floor)
    return out


__all__ = [
    "apc_buffer_factor",
    "CappedValue",
    "ScenarioSet",
    "build_scenarios",
    "scan_ranges",
    "scan_ranges_capped",
    "token_vol_haircuts_capped",
    "shocked_vols",
    "vol_shock_multiplier",
]
