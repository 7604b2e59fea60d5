"""risk_engine.isolated: portfolio IM against the sum of the positions' IMs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from risk_engine.errors import InvalidInputError
from risk_engine.isolated import IsolatedMargin


def test_isolated_im_sums_each_accounts_positions_and_ratio_is_nan_for_a_zero_im() -> None:
    m = IsolatedMargin(np.array([10.0, 0.0, 4.0]), np.array([30.0, 5.0, 4.0]), np.array([0, 0, 2]))
    np.testing.assert_allclose(m.isolated_im, [35.0, 0.0, 4.0])
    np.testing.assert_allclose(m.extra, [25.0, 0.0, 0.0])
    assert m.ratio[0] == pytest.approx(3.5) and math.isnan(m.ratio[1]) and m.ratio[2] == 1.0


@given(st.lists(st.tuples(st.integers(0, 4), st.floats(0.0, 1e7)), max_size=30))
def test_the_isolated_ims_add_up_to_the_positions_ims(pos: list[tuple[int, float]]) -> None:
    owner = np.array([o for o, _ in pos], dtype=np.int64)
    im = np.array([x for _, x in pos], dtype=np.float64)
    m = IsolatedMargin(np.ones(5), im, owner)
    assert m.isolated_im.shape == (5,)
    assert m.isolated_im.sum() == pytest.approx(im.sum(), rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(
    ("portfolio", "positions", "owner", "field"),
    [
        ([1.0], [1.0, 2.0], [0], "isolated.owner"),  # lengths differ
        ([1.0], [1.0], [1], "isolated.owner"),  # no account 1
        ([1.0], [-1.0], [0], "isolated.position_im"),  # an IM is >= 0
        ([np.nan], [1.0], [0], "isolated.portfolio_im"),
    ],
)
def test_inconsistent_inputs_raise_with_the_field(
    portfolio: list[float], positions: list[float], owner: list[int], field: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        IsolatedMargin(np.array(portfolio), np.array(positions), np.array(owner))
    assert info.value.field == field
