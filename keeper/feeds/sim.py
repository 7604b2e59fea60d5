"""Seeded market simulator: correlated log-price paths with jumps and volatility regimes.

The model (all rates annual, time in years of the simulated market clock):

- log prices of ``symbols`` (BTC, ETH, SOL and the governance token GOV) follow correlated
  Brownian motions, ``d ln S_i = -sigma_i^2/2 dt + sigma_i dW_i``, ``corr(dW) = correlation``;
- a two-state Markov regime (calm / stressed) switches with intensities
  ``calm_to_stress_per_year`` and ``stress_to_calm_per_year``; in the stressed regime every
  vol is multiplied by ``stress_vol_multiplier`` and jumps are more frequent;
- market-wide jumps arrive as a Poisson process; a jump of log size ``J ~ N(mean, sd)``
  moves symbol ``i`` by ``beta_i * J`` (so jumps keep the cross-asset co-movement);
- the implied-vol smile of each derivative underlying moves with an EWMA of its realised
  variance: ``atm(T) = premium * (lr + (rv - lr) * exp(-T/term_tau)) + spike(T)``, skew and
  curvature steeper in the stressed regime; a vol spike from :meth:`SimulatedFeed.push_shock`
  decays with ``spike_half_life_days``;
- the perp basis is an Ornstein-Uhlenbeck process around a regime-dependent mean; forwards
  carry at ``rate + carry`` (annualised);
- every symbol is an underlying of the emitted state; one that is not in
  ``derivative_symbols`` (GOV) has ``perp_mark = spot`` and no smile, as the engine expects
  of a collateral-only asset.

Time: the simulator has no clock of its own. :meth:`tick` receives the caller's ``now``
(unix seconds); ``time_scale`` multiplies the elapsed seconds to get the market time that
drives the diffusion (a demo running at 1 tick per second can move a market hour per
tick). Calendar quantities (expiries, time to expiry, the state's ``timestamp``) always
use the caller's clock.

Randomness comes only from the ``rng`` passed in: same seed, same tick times, same shocks
-> the same states, bit for bit.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from keeper.errors import FeedError
from keeper.feeds.base import (
    DEFAULT_BOUNDS,
    SECONDS_PER_YEAR,
    FeedBounds,
    Float64Array,
    MarketFeed,
    MarketState,
    Smile,
    UnderlyingState,
)

__all__ = ["SimConfig", "SimulatedFeed", "Shock", "default_expiries"]

_DEFAULT_CORR = (
    (1.00, 0.80, 0.70, 0.50),
    (0.80, 1.00, 0.75, 0.50),
    (0.70, 0.75, 1.00, 0.50),
    (0.50, 0.50, 0.50, 1.00),
)


@dataclass(frozen=True)
class SimConfig:
    """Simulator parameters. Tuples are per symbol, in the order of ``symbols``."""

    symbols: tuple[str, ...] = ("BTC", "ETH", "SOL", "GOV")
    #: Symbols with perps and options (the others are collateral-only tokens).
    derivative_symbols: tuple[str, ...] = ("BTC", "ETH", "SOL")
    initial_prices: tuple[float, ...] = (65_000.0, 3_500.0, 150.0, 2.0)  # USD
    calm_vols: tuple[float, ...] = (0.45, 0.60, 0.85, 1.20)  # annualised
    correlation: tuple[tuple[float, ...], ...] = _DEFAULT_CORR
    stress_vol_multiplier: float = 2.5
    calm_to_stress_per_year: float = 4.0
    stress_to_calm_per_year: float = 26.0
    jump_per_year_calm: float = 2.0
    jump_per_year_stressed: float = 12.0
    jump_mean: float = -0.04  # log size of the market-wide jump
    jump_sd: float = 0.06
    jump_betas: tuple[float, ...] = (1.0, 1.2, 1.5, 2.0)
    rate: float = 0.04  # continuously compounded
    iv_premium: float = 1.10  # implied over realised
    rv_halflife_days: float = 10.0  # EWMA of realised variance
    term_tau_days: float = 60.0  # how fast the term structure reverts to long-run vol
    spike_half_life_days: float = 3.0
    skew_calm: float = -0.15
    skew_stressed: float = -0.40
    curvature_calm: float = 0.30
    curvature_stressed: float = 0.60
    basis_mean_calm: float = 0.0003  # perp mark / spot - 1
    basis_mean_stressed: float = -0.0020
    basis_speed_per_year: float = 200.0
    basis_vol: float = 0.02  # per sqrt(year)
    carry_calm: float = 0.06  # annualised forward basis over the rate
    carry_stressed: float = 0.0
    #: (token symbol, priced as symbol; None for a $1 stablecoin)
    tokens: tuple[tuple[str, str | None], ...] = (
        ("WBTC", "BTC"),
        ("WETH", "ETH"),
        ("WSOL", "SOL"),
        ("GOV", "GOV"),
    )
    history_length: int = 365  # return observations kept
    return_interval_seconds: int = 86_400
    time_scale: float = 1.0  # market seconds per clock second
    max_substep_seconds: float = 3_600.0  # market seconds per diffusion step
    max_substeps_per_tick: int = 20_000

    def __post_init__(self) -> None:
        n = len(self.symbols)
        for name in ("initial_prices", "calm_vols", "jump_betas"):
            if len(getattr(self, name)) != n:
                raise FeedError(f"needs {n} values, one per symbol", field=f"sim.{name}")
        corr = np.asarray(self.correlation, dtype=np.float64)
        if (
            corr.shape != (n, n)
            or not np.allclose(corr, corr.T)
            or not np.allclose(np.diag(corr), 1)
        ):
            raise FeedError(
                "must be a symmetric matrix with unit diagonal", field="sim.correlation"
            )
        if np.linalg.eigvalsh(corr).min() <= 0:
            raise FeedError("must be positive definite", field="sim.correlation")
        if not set(self.derivative_symbols) <= set(self.symbols):
            raise FeedError("must be a subset of symbols", field="sim.derivative_symbols")
        if self.time_scale <= 0 or self.history_length < 2 or self.return_interval_seconds <= 0:
            raise FeedError(
                "time_scale, history_length, return_interval must be positive", field="sim"
            )


@dataclass(frozen=True)
class Shock:
    """A scripted move applied at the next tick.

    ``moves``: relative price change per symbol (-0.30 = -30 %); ``vol_spike``: absolute
    ATM vol added (0.40 = +40 vol points) per derivative symbol, decaying afterwards;
    ``stress``: switch to the stressed regime.
    """

    moves: Mapping[str, float]
    vol_spike: Mapping[str, float] = field(default_factory=dict)
    stress: bool = True


def default_expiries(now: int) -> tuple[int, ...]:
    """Fridays 08:00 UTC 1, 2, 3, 4, 8, 13 and 26 weeks after ``now`` (unix seconds)."""
    day = 86_400
    # 1970-01-01 was a Thursday: Friday 08:00 is day 1 of the week + 8 h.
    first = ((now - day - 8 * 3600) // (7 * day) + 1) * 7 * day + day + 8 * 3600
    return tuple(first + (w - 1) * 7 * day for w in (1, 2, 3, 4, 8, 13, 26))


class SimulatedFeed(MarketFeed):
    """The seeded simulator as a :class:`MarketFeed`.

    Parameters
    ----------
    config : SimConfig
    rng : np.random.Generator
        The only source of randomness.
    start_time : int
        Unix seconds where the path starts; the return history (``history_length``
        observations, simulated from the same model) ends here.
    expiries : sequence of int, optional
        Absolute option expiries (unix seconds) to quote; defaults to
        :func:`default_expiries` of ``start_time``. Expired ones are dropped at each tick.
    """

    def __init__(
        self,
        config: SimConfig,
        rng: np.random.Generator,
        *,
        start_time: int,
        expiries: Sequence[int] | None = None,
        bounds: FeedBounds = DEFAULT_BOUNDS,
    ) -> None:
        self.config = config
        self._rng = rng
        self._bounds = bounds
        n = len(config.symbols)
        self._chol = np.linalg.cholesky(np.asarray(config.correlation, dtype=np.float64))
        self._log_price = np.log(np.asarray(config.initial_prices, dtype=np.float64))
        self._calm_vols = np.asarray(config.calm_vols, dtype=np.float64)
        self._betas = np.asarray(config.jump_betas, dtype=np.float64)
        self._stressed = False
        self._rv_var = self._calm_vols**2
        self._spike = np.zeros(n)
        self._basis = np.full(n, config.basis_mean_calm)
        self._carry = config.carry_calm
        self._clock = int(start_time)
        self._market_time = 0.0  # market seconds since start
        self._next_boundary = float(config.return_interval_seconds)
        self._interval_start_log = self._log_price.copy()
        self._history: deque[Float64Array] = deque(maxlen=config.history_length)
        self._pending: list[Shock] = []
        self._faults: dict[str, float] = {}
        self._expiries = (
            tuple(sorted(expiries)) if expiries is not None else default_expiries(start_time)
        )
        self._warm_up()

    # ---------------------------------------------------------------- public API

    @property
    def stressed(self) -> bool:
        """True in the stressed regime."""
        return self._stressed

    @property
    def expiries(self) -> tuple[int, ...]:
        return self._expiries

    def set_expiries(self, expiries: Sequence[int]) -> None:
        """Quote exactly these expiries (unix seconds), e.g. the vault's registered ones."""
        self._expiries = tuple(sorted(set(int(e) for e in expiries)))

    def push_shock(
        self,
        moves: Mapping[str, float],
        *,
        vol_spike: float | Mapping[str, float] = 0.0,
        stress: bool = True,
    ) -> Shock:
        """Schedule a move for the next tick, e.g. ``push_shock({"BTC": -0.3, "ETH": -0.3},
        vol_spike=0.4)``. ``vol_spike`` as a number applies to every shocked derivative
        symbol. Returns the queued :class:`Shock`."""
        for sym, move in moves.items():
            if sym not in self.config.symbols:
                raise FeedError("unknown symbol in shock", field=f"shock.{sym}")
            if not math.isfinite(move) or move <= -1.0:
                raise FeedError(
                    f"move must be finite and > -100 %, got {move}", field=f"shock.{sym}"
                )
        if isinstance(vol_spike, Mapping):
            spikes = dict(vol_spike)
        else:
            spikes = {s: float(vol_spike) for s in moves if s in self.config.derivative_symbols}
        for sym, v in spikes.items():
            if sym not in self.config.symbols or not math.isfinite(v):
                raise FeedError(f"bad vol spike {v}", field=f"shock.vol_spike.{sym}")
        shock = Shock(moves=dict(moves), vol_spike=spikes, stress=stress)
        self._pending.append(shock)
        return shock

    def inject_fault(self, path: str, value: float) -> None:
        """Make the NEXT emitted state carry ``value`` at ``path`` (``"BTC.spot"``,
        ``"ETH.perp_mark"``, ``"SOL.atm_vol"``, ``"tokens.GOV"``, ``"rate"``), so that
        tests and scripts can check that the keeper refuses bad input. The simulator's
        own path is untouched; the tick raises :class:`FeedError` from validation."""
        self._faults[path] = value

    # ---------------------------------------------------------------- the model

    def _warm_up(self) -> None:
        cfg = self.config
        dt = cfg.return_interval_seconds / SECONDS_PER_YEAR
        start = self._log_price.copy()
        for _ in range(cfg.history_length):
            before = self._log_price.copy()
            self._step(dt)
            self._history.append(self._log_price - before)
        # The path starts at the configured prices; the warm-up only provides history,
        # realised-vol and regime state.
        self._log_price = start
        self._interval_start_log = start.copy()

    def _step(self, dt: float) -> None:
        """One diffusion step of ``dt`` market years."""
        cfg = self.config
        rng = self._rng
        # Regime switch first (continuous-time Markov chain sampled per step).
        rate = cfg.stress_to_calm_per_year if self._stressed else cfg.calm_to_stress_per_year
        if rng.random() < 1.0 - math.exp(-rate * dt):
            self._stressed = not self._stressed
        vols = self._calm_vols * (cfg.stress_vol_multiplier if self._stressed else 1.0)
        z = self._chol @ rng.standard_normal(len(vols))
        ret = -0.5 * vols**2 * dt + vols * math.sqrt(dt) * z
        lam = cfg.jump_per_year_stressed if self._stressed else cfg.jump_per_year_calm
        n_jumps = rng.poisson(lam * dt)
        if n_jumps:
            ret = ret + self._betas * rng.normal(cfg.jump_mean, cfg.jump_sd, size=n_jumps).sum()
        self._log_price = self._log_price + ret
        # EWMA of realised variance (annualised), with a half-life in market time.
        w = 1.0 - 0.5 ** (dt * 365.0 / cfg.rv_halflife_days)
        self._rv_var = (1.0 - w) * self._rv_var + w * (ret**2 / dt)
        # Perp basis: OU around the regime mean; forward carry follows the regime.
        mean = cfg.basis_mean_stressed if self._stressed else cfg.basis_mean_calm
        k = math.exp(-cfg.basis_speed_per_year * dt)
        sd = cfg.basis_vol * math.sqrt((1 - k * k) / (2 * cfg.basis_speed_per_year))
        self._basis = mean + (self._basis - mean) * k + sd * rng.standard_normal(len(vols))
        self._carry = cfg.carry_stressed if self._stressed else cfg.carry_calm
        self._spike = self._spike * 0.5 ** (dt * 365.0 / cfg.spike_half_life_days)

    def _advance(self, market_seconds: float) -> None:
        cfg = self.config
        n_steps = max(1, math.ceil(market_seconds / cfg.max_substep_seconds))
        if n_steps > cfg.max_substeps_per_tick:
            raise FeedError(
                f"tick spans {market_seconds:.0f} market seconds ({n_steps} steps), more than "
                f"{cfg.max_substeps_per_tick} steps; lower time_scale or tick more often",
                field="now",
            )
        step = market_seconds / n_steps
        for _ in range(n_steps):
            self._step(step / SECONDS_PER_YEAR)
            self._market_time += step
            while self._market_time >= self._next_boundary:
                self._history.append(self._log_price - self._interval_start_log)
                self._interval_start_log = self._log_price.copy()
                self._next_boundary += cfg.return_interval_seconds

    def _apply_shocks(self) -> None:
        for shock in self._pending:
            for sym, move in shock.moves.items():
                self._log_price[self.config.symbols.index(sym)] += math.log1p(move)
            for sym, v in shock.vol_spike.items():
                self._spike[self.config.symbols.index(sym)] += v
            if shock.stress:
                self._stressed = True
                self._carry = self.config.carry_stressed
        self._pending.clear()

    def _next_state(self, now: int) -> MarketState:
        elapsed = (now - self._clock) * self.config.time_scale
        if elapsed > 0:
            self._advance(elapsed)
        self._clock = now
        self._apply_shocks()
        self._expiries = tuple(e for e in self._expiries if e > now)
        faults, self._faults = self._faults, {}
        return self._build_state(now, faults)

    def _build_state(self, now: int, faults: Mapping[str, float]) -> MarketState:
        cfg = self.config
        prices = np.exp(self._log_price)
        lr_vols = self._calm_vols
        rv = np.sqrt(self._rv_var)
        skew = cfg.skew_stressed if self._stressed else cfg.skew_calm
        curv = cfg.curvature_stressed if self._stressed else cfg.curvature_calm
        tau = cfg.term_tau_days / 365.0
        spike_tau = 3 * cfg.spike_half_life_days / 365.0

        def f(path: str, value: float) -> float:
            return faults.get(path, value)

        underlyings = []
        for i, sym in enumerate(cfg.symbols):
            spot = f(f"{sym}.spot", float(prices[i]))
            if sym not in cfg.derivative_symbols:
                # Collateral-only asset: no perp, no options (the engine's convention).
                underlyings.append(UnderlyingState(sym, spot, spot, (), iv_source="none"))
                continue
            smiles = []
            for e in self._expiries:
                t = (e - now) / SECONDS_PER_YEAR
                decay = math.exp(-t / tau)
                atm = cfg.iv_premium * (lr_vols[i] + (rv[i] - lr_vols[i]) * decay)
                atm += self._spike[i] * math.exp(-t / spike_tau)
                atm = max(atm, 2 * self._bounds.min_vol)
                fwd = spot * math.exp((cfg.rate + self._carry) * t)
                smiles.append(Smile(e, float(fwd), f(f"{sym}.atm_vol", float(atm)), skew, curv))
            underlyings.append(
                UnderlyingState(
                    symbol=sym,
                    spot=spot,
                    perp_mark=f(f"{sym}.perp_mark", float(prices[i] * (1.0 + self._basis[i]))),
                    smiles=tuple(smiles),
                    iv_source="sim",
                )
            )
        tokens = {
            tok: f(f"tokens.{tok}", 1.0 if und is None else float(prices[cfg.symbols.index(und)]))
            for tok, und in cfg.tokens
        }
        return MarketState(
            timestamp=now,
            underlyings=tuple(underlyings),
            rate=f("rate", cfg.rate),
            token_prices=tokens,
            return_symbols=cfg.symbols,
            returns=np.array(self._history),
            return_interval_seconds=cfg.return_interval_seconds,
            source_time=now,
            source="sim",
            bounds=self._bounds,
        )
