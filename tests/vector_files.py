"""Are the committed vector files (tests/vectors/) the engine's current output?

The generators derive WAD integers from float64 results of ``exp``, ``log`` and ``erf``, and
numpy picks its SIMD code for those at run time: on a CPU with AVX-512 some results differ from
an AVX2 machine's in the last bit, which moves an integer by a few wei. The files are therefore
compared number by number, within ``1e-12 x |value| + 1e-9 USD``: far below any change of the
engine or a generator, far above a last-bit difference. Everything else (keys, lengths,
counts, words) must be equal. A hash (``0x`` and 64 hex digits) is a function of the numbers:
it must be equal when every number is, and is not compared otherwise (each test file checks
that the stored hashes are those of the stored numbers).
"""

from __future__ import annotations

import json
import re
from typing import Any

WAD = 10**18
REL = 1e-12
ABS_WEI = 10**9  # 1e-9 USD

_INT = re.compile(r"-?\d+")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def _close(a: int, b: int) -> bool:
    return abs(a - b) <= REL * max(abs(a), abs(b)) + ABS_WEI


def _walk(
    stored: Any, rendered: Any, path: str, moved: list[str], hashes: list[tuple[str, str, str]]
) -> None:
    if isinstance(stored, dict) and isinstance(rendered, dict):
        assert sorted(stored) == sorted(rendered), f"{path}: keys differ"
        for k in stored:
            _walk(stored[k], rendered[k], f"{path}.{k}", moved, hashes)
    elif isinstance(stored, list) and isinstance(rendered, list):
        assert len(stored) == len(rendered), f"{path}: {len(stored)} != {len(rendered)} items"
        for i, (s, r) in enumerate(zip(stored, rendered, strict=True)):
            _walk(s, r, f"{path}[{i}]", moved, hashes)
    elif isinstance(stored, str) and isinstance(rendered, str) and _HASH.fullmatch(stored):
        hashes.append((path, stored, rendered))
    elif isinstance(stored, str) and isinstance(rendered, str) and _INT.fullmatch(stored):
        assert _INT.fullmatch(rendered), f"{path}: {stored!r} != {rendered!r}"
        a, b = int(stored), int(rendered)
        assert _close(a, b), f"{path}: {a} != {b}"
        if a != b:
            moved.append(path)
    elif isinstance(stored, float) and isinstance(rendered, float):
        assert abs(stored - rendered) <= REL * max(abs(stored), abs(rendered)), path
        if stored != rendered:
            moved.append(path)
    else:
        assert stored == rendered, f"{path}: {stored!r} != {rendered!r}"


def assert_current(stored: str, rendered: str, name: str, generator: str) -> None:
    """``stored`` (the committed file's text) holds ``rendered``'s numbers within the last
    bits; fails with the first difference and the command that rewrites the file."""
    moved: list[str] = []
    hashes: list[tuple[str, str, str]] = []
    try:
        _walk(json.loads(stored), json.loads(rendered), name, moved, hashes)
        if not moved:
            for path, s, r in hashes:
                assert s == r, f"{path}: {s} != {r}"
    except AssertionError as exc:
        raise AssertionError(f"{name} is stale ({exc}): run {generator}") from None
