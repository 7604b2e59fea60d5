"""Loss-vs-IM plots: a PNG per underlying, and the guard for an unknown underlying."""

from pathlib import Path

import numpy as np
import pytest

from risk_engine.backtest.plots import plot_loss_vs_im
from risk_engine.backtest.results import BookSeries


def _series(underlying: str) -> BookSeries:
    n = 40
    return BookSeries(
        book="naked_short_put",
        underlying=underlying,
        horizon_days=1,
        dates=np.arange(np.datetime64("2020-03-01"), np.datetime64("2020-03-01") + n),
        loss=np.linspace(-1.0, 3.0, n),
        im=np.full(n, 2.0),
        mm=np.full(n, 1.6),
        gross_notional=np.full(n, 20.0),
        vol_source=np.zeros(n, dtype=np.int8),
    )


def test_plot_loss_vs_im_writesPng(tmp_path: Path) -> None:
    path = plot_loss_vs_im([_series("BTC"), _series("ETH")], "BTC", tmp_path / "img" / "b.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_loss_vs_im_revertsWhenUnderlyingUnknown(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SOL"):
        plot_loss_vs_im([_series("BTC")], "SOL", tmp_path / "x.png")
