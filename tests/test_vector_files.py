"""tests/vector_files.py tells a last-bit difference from a stale file."""

from __future__ import annotations

import json

import pytest

from tests.vector_files import assert_current

H1, H2 = "0x" + "ab" * 32, "0x" + "cd" * 32


def _file(value: int, digest: str = H1, n: int = 3) -> str:
    return json.dumps({"n": n, "mark": ["0", str(value)], "hash": digest, "vol": 0.5})


def test_equal_files_and_a_few_wei_apart_are_current() -> None:
    big = 1543930049994019600000
    assert_current(_file(big), _file(big), "f.json", "gen")
    assert_current(_file(big), _file(big + 227_373), "f.json", "gen")  # 1 ulp of 1543.93 USD
    assert_current(_file(big), _file(big + 1, H2), "f.json", "gen")  # the hash follows the number


@pytest.mark.parametrize(
    "rendered",
    [
        _file(1543930049994019600000 + 10**10),  # 1e-8 USD on a 1,544 USD premium
        _file(1543930049994019600000, H2),  # the same numbers, another hash
        _file(1543930049994019600000, n=4),  # a count
        json.dumps({"n": 3, "mark": ["0"], "hash": H1, "vol": 0.5}),  # a length
    ],
)
def test_a_changed_number_hash_count_or_length_is_stale(rendered: str) -> None:
    with pytest.raises(AssertionError, match="f.json is stale .*: run gen"):
        assert_current(_file(1543930049994019600000), rendered, "f.json", "gen")
