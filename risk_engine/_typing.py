"""Array aliases used across the engine (shapes are documented at each use)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Float64Array = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]

__all__ = ["BoolArray", "Float64Array", "Int8Array", "Int64Array"]
