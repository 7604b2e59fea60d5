"""What the trader's commands add on top of the chain's numbers: a leg's price against its
mark (scripts/trading.py), heat-map cells readable for any book size that fit the page
(scripts/report.py), and a command re-run when a new root lands under it
(scripts/client.py:retry_on_new_root)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from risk_engine.units import WAD
from scripts import client
from scripts.errors import CliError, StaleLeafError, TxSentError
from scripts.margin_view import RiskGrid
from scripts.report import PAGE_WIDTH, cell_unit, heatmap_svg
from scripts.trading import leg_vs_mark


def test_a_leg_within_the_tolerance_shows_its_deviation_without_a_warning() -> None:
    text, warn = leg_vs_mark(101 * WAD, 100 * WAD, 0.05)
    assert text == "mark 100.00, +1.00%" and warn is None


def test_a_leg_beyond_the_tolerance_is_warned_about_with_its_deviation() -> None:
    text, warn = leg_vs_mark(60 * WAD, 130 * WAD, 0.05)
    assert "-53.85%" in text
    assert warn is not None and "-53.8% from its mark 130.00 (tolerance 5%)" in warn


def test_a_leg_without_a_mark_is_not_compared() -> None:
    assert leg_vs_mark(5 * WAD, None, 0.05) == ("no mark", None)
    assert leg_vs_mark(5 * WAD, 0, 0.05)[1] is not None  # a price against a worthless mark
    assert leg_vs_mark(0, 0, 0.05)[1] is None


def _grid(pnl: np.ndarray) -> RiskGrid:
    cols = pnl.shape[1]
    fractions = tuple(float(x) for x in np.linspace(-1.0, 1.0, cols))
    return RiskGrid(fractions, (-1, 0, 1), pnl, (False,) * cols, {"BTC": 0.15})


def _cells(svg: str) -> list[str]:
    return re.findall(r'text-anchor="middle">([^<]*)</text>', svg)


def test_a_small_book_shows_whole_dollars_never_a_tenth_of_a_thousand() -> None:
    pnl = np.linspace(-180.0, 150.0, 3 * 23).reshape(3, 23)
    cells = _cells(heatmap_svg(_grid(pnl)))
    assert "-180" in cells and "150" in cells
    assert not any(c.endswith("k") for c in cells)
    assert "cells: P&amp;L in USD" in heatmap_svg(_grid(pnl))


@pytest.mark.parametrize(
    ("scale", "unit"),
    [
        (999.0, (1.0, "", 0)),
        (5_000.0, (1e3, "k", 2)),
        (250_000.0, (1e3, "k", 0)),
        (3e6, (1e6, "M", 2)),
    ],
)
def test_the_cell_unit_follows_the_largest_value(
    scale: float, unit: tuple[float, str, int]
) -> None:
    assert cell_unit(scale) == unit


def test_a_large_book_is_in_thousands_and_no_cell_reads_minus_zero() -> None:
    pnl = np.array([[-52_345.0, -0.2, 12_000.0]] * 3)
    cells = _cells(heatmap_svg(_grid(pnl)))
    assert "-52.3k" in cells and "12.0k" in cells and "0" in cells
    assert not any(c.startswith("-0") for c in cells)


def test_the_heat_map_fits_the_page_and_scales_down_with_the_window() -> None:
    svg = heatmap_svg(_grid(np.zeros((3, 23))))  # the 23-column template was 1,546 px wide
    width = int(re.search(r'<svg[^>]* width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    assert width <= PAGE_WIDTH
    assert 'viewBox="0 0 ' in svg and "max-width:100%" in svg


class _Chain:
    """current_root's answers in turn, then the last one for ever."""

    def __init__(self, epochs: list[int]) -> None:
        self.epochs = epochs

    def __call__(self, _session: Any) -> tuple[int, str]:
        e = self.epochs.pop(0) if len(self.epochs) > 1 else self.epochs[0]
        return e, "0x"


class _Session:
    def echo(self, _text: str) -> None:
        pass


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client.time, "sleep", lambda _s: None)


def test_a_command_is_read_again_when_a_new_root_lands_during_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # attempt 1: epoch 5 before, 6 after (moved: retry); attempt 2: 6 and 6 (done)
    monkeypatch.setattr(client, "current_root", _Chain([5, 6, 6, 6]))
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise CliError("InvalidAccountProof")
        return "sent"

    assert client.retry_on_new_root(_Session(), attempt) == "sent"  # type: ignore[arg-type]
    assert len(calls) == 2


def test_a_leaf_behind_the_vaults_root_is_read_again_while_the_keeper_records_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the vault accepted epoch 6 before the keeper's store marked it mined: the API still
    # serves epoch 5's leaf, with the vault's epoch unchanged during the attempt
    monkeypatch.setattr(client, "current_root", _Chain([6]))
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise StaleLeafError("the keeper API's leaf of instrument 1 is from epoch 5")
        return "sent"

    assert client.retry_on_new_root(_Session(), attempt) == "sent"  # type: ignore[arg-type]
    assert len(calls) == 3


def test_a_refusal_with_the_root_unchanged_is_the_users_error_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client, "current_root", _Chain([5]))
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise CliError("the margin allows at most 3 USDC now")

    with pytest.raises(CliError, match="allows at most"):
        client.retry_on_new_root(_Session(), attempt)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_a_sent_transaction_that_failed_is_never_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client, "current_root", _Chain([5, 6, 7, 8]))
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise TxSentError("withdraw failed: receipt timeout")

    with pytest.raises(TxSentError):
        client.retry_on_new_root(_Session(), attempt)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_a_root_that_keeps_moving_ends_as_one_error_after_the_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client, "current_root", _Chain(list(range(100))))
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise CliError("InvalidInstrumentProof")

    with pytest.raises(CliError, match="new root during each of 5 tries"):
        client.retry_on_new_root(_Session(), attempt)  # type: ignore[arg-type]
    assert len(calls) == client.ROOT_RETRIES + 1


_TAINTED = (
    "withdraw 0.5 WETH from subaccount 2 would revert: BoundsFromPreviousPrices(account=2, "
    "untilEpoch=14): withdrawals and trades wait for epoch 14"
)


def test_bounds_at_the_previous_prices_wait_for_the_epoch_they_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the subaccount acted between epoch 13's snapshot and its post: the vault refuses until
    # epoch 14, which the command waits for (the vault at 13, 13, then 14), then sends
    monkeypatch.setattr(client, "current_root", _Chain([13, 13, 13, 14]))
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise CliError(_TAINTED)
        return "sent"

    assert client.tainted_until(_TAINTED) == 14
    assert client.tainted_until("InsufficientMargin(account=2, surplus=-1)") is None
    assert client.retry_on_new_root(_Session(), attempt) == "sent"  # type: ignore[arg-type]
    assert len(calls) == 2


def test_an_epoch_that_does_not_come_ends_the_wait_with_the_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client, "current_root", _Chain([13]))
    monkeypatch.setattr(client, "TAINT_WAIT_SECONDS", 0.0)
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise CliError(_TAINTED)

    with pytest.raises(CliError, match="untilEpoch=14"):
        client.retry_on_new_root(_Session(), attempt)  # type: ignore[arg-type]
    assert len(calls) == 1


class _BoundVault:
    """``vault.functions.boundChange(account).call()`` answering taintedEpoch 13."""

    class functions:  # noqa: N801 - the web3 attribute name
        @staticmethod
        def boundChange(_account: int) -> Any:  # noqa: N802 - the contract's name
            class _Call:
                def call(self) -> tuple[int, int, int]:
                    return (100, 12, 13)

            return _Call()


class _WaitSession(_Session):
    vault = _BoundVault()


def test_wait_for_leaf_waits_past_an_epoch_that_holds_the_bounds_at_old_prices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the leaf is in epoch 13's root, but the subaccount changed after 13's snapshot: the
    # wait goes on until epoch 14 (taintedEpoch 13 no longer current)
    monkeypatch.setattr(client, "account_proof", lambda *_a, **_k: None)
    monkeypatch.setattr(client, "current_root", _Chain([13, 13, 14]))
    assert client.wait_for_leaf(_WaitSession(), None, 2, timeout=5) == 14  # type: ignore[arg-type]


def test_wait_for_leaf_gives_up_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "account_proof", lambda *_a, **_k: None)
    monkeypatch.setattr(client, "current_root", _Chain([13]))
    with pytest.raises(CliError, match="after 0 s: subaccount 2 changed after epoch 13's snapshot"):
        client.wait_for_leaf(_WaitSession(), None, 2, timeout=0)  # type: ignore[arg-type]
