"""The backtest's implied-vol rule: sources, windows, gaps, no look-ahead."""

import math

import numpy as np
import pytest

from risk_engine.backtest.vol import (
    SOURCE_DVOL,
    SOURCE_NONE,
    SOURCE_REALIZED,
    VolRule,
    realized_vol,
    vol_path,
)


def test_realized_vol_matchesHandComputed() -> None:
    # closes alternate x1.01, /1.01: every log return is +-ln 1.01
    close = 100.0 * 1.01 ** np.array([0, 1, 0, 1, 0, 1], dtype=float)
    out = realized_vol(close, window_days=3, annualisation_days=365.0)
    assert np.isnan(out[:3]).all()
    assert out[3:] == pytest.approx(math.log(1.01) * math.sqrt(365.0))


def test_realized_vol_windowWithMissingDayIsNaN() -> None:
    close = np.array([100.0, 101.0, np.nan, 102.0, 103.0, 104.0, 105.0, 106.0])
    out = realized_vol(close, window_days=2, annualisation_days=365.0)
    # returns at days 2 and 3 are missing; windows touching them are NaN
    assert np.isnan(out[:5]).all()
    assert not np.isnan(out[5:]).any()


def test_vol_path_prefersIndexThenFallsBackToRealized() -> None:
    n = 12
    close = 100.0 * np.exp(0.02 * np.arange(n) * (-1) ** np.arange(n))
    index = np.full(n, np.nan)
    index[5] = 0.5
    path = vol_path(close, index, VolRule(window_days=3, max_stale_days=2))
    assert path.source[0] == SOURCE_NONE
    assert path.source[4] == SOURCE_REALIZED
    # day 5 and the 2 stale days after it use the index, then realized again
    assert list(path.source[5:9]) == [SOURCE_DVOL, SOURCE_DVOL, SOURCE_DVOL, SOURCE_REALIZED]
    assert path.vol[7] == 0.5
    assert path.vol[8] == pytest.approx(realized_vol(close, 3, 365.0)[8])


def test_vol_path_pastUnchangedByFutureData() -> None:
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.03, 200)))
    index = rng.uniform(0.4, 0.9, 200)
    base = vol_path(close, index)
    close2, index2 = close.copy(), index.copy()
    close2[150:] *= 3.0
    index2[150:] = 5.0
    other = vol_path(close2, index2)
    np.testing.assert_array_equal(base.vol[:150], other.vol[:150])


def test_vol_path_revertsWhenShapesDiffer() -> None:
    with pytest.raises(ValueError, match="index_vol"):
        vol_path(np.ones(5), np.ones(4))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window_days": 1}, "window_days"),
        ({"annualisation_days": 0.0}, "annualisation_days"),
        ({"max_stale_days": -1}, "max_stale_days"),
    ],
)
def test_VolRule_revertsWhenBadField(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        VolRule(**kwargs)  # type: ignore[arg-type]
