"""scripts/margin_view.py: a new root mid-read is read again, and a lasting disagreement
ends as one CliError (exit 1), never as a reverted view printed with exit 0."""

from __future__ import annotations

from typing import Any

import pytest

from scripts import margin_view as mv
from scripts.errors import CliError


def test_a_root_moving_mid_read_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def once(*_: Any, **__: Any) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise mv._RootMoved
        return "view"

    monkeypatch.setattr(mv, "_margin_view_once", once)
    monkeypatch.setattr("scripts.margin_view.time.sleep", lambda _s: None)
    view: object = mv.margin_view(None, None, 5)  # type: ignore[arg-type]
    assert view == "view"
    assert len(calls) == 3


def test_a_root_that_keeps_moving_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def once(*_: Any, **__: Any) -> str:
        raise mv._RootMoved

    monkeypatch.setattr(mv, "_margin_view_once", once)
    monkeypatch.setattr("scripts.margin_view.time.sleep", lambda _s: None)
    with pytest.raises(CliError, match="subaccount 5: the keeper API's leaf and the vault"):
        mv.margin_view(None, None, 5)  # type: ignore[arg-type]
