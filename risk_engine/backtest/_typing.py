"""Array aliases of the backtest (shapes are in each docstring)."""

import numpy as np
import numpy.typing as npt

Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
DateArray = npt.NDArray[np.datetime64]

__all__ = ["BoolArray", "DateArray", "Float64Array"]
