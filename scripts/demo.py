"""``make demo``: portfolio margin end to end on a private chain, in well under 3 minutes.

1. Anvil on a free port; the vault, mock tokens, instruments and a 2-of-3 signer set
   deployed; the keeper (epoch pipeline on the seeded simulated feed, proof API) and the
   liquidator bot started in this process (:func:`scripts.demo_stack.start_stack`).
2. Three traders open their books with signed RFQ quotes from a dealer: a delta-hedged
   options market maker, a cash-and-carry trader and a naked short-put seller; the cash
   books then keep twice their portfolio IM (:func:`scripts.crash.open_books`).
3. A table of every posted epoch: each book's ACCOUNT leaf (equity, IM, MM, surpluses).
4. The crash: BTC and ETH -30 % with +40 vol points pushed into the simulated feed; the bot
   takes the naked book's subaccount over by transfer, depositing only what brings it to IM
   from a modest wallet; the hedged books stay open.
5. The summary: each book's outcome, the liquidation transaction (the subaccount that
   changed owner, the amounts, the liquidator's capital used), the IM each book needs under
   portfolio margin against isolated (per-position) margin, the on-chain checks, the HTML
   reports and a JSON summary; then everything is stopped.

Exit code 0 only when the on-chain checks pass (the naked book was liquidated, the hedged
books were not), 1 with the reason otherwise, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

from scripts.crash import (
    Book,
    CapitalRow,
    Check,
    CrashResult,
    EpochRow,
    Liquidation,
    Participants,
    Settings,
    capital_table,
    epoch_row,
    open_books,
    run_crash,
    verify_outcome,
    write_reports,
)
from scripts.demo_stack import Stack, StackSettings, start_stack
from scripts.errors import ScenarioError

RULE = "-" * 104


def _usd(x: float) -> str:
    return f"{round(x, 2) + 0.0:,.2f}"  # + 0.0: no "-0.00"


class Printer:
    """Prints the steps with their wall time and, once the books are open, a table row per
    book for every posted epoch."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.parts: Participants | None = None
        self.rows: list[EpochRow] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def section(self, title: str) -> None:
        print(f"\n== {title} ==", flush=True)

    def step(self, text: str) -> None:
        print(f"[{self.elapsed():6.1f}s] {text}", flush=True)

    def detail(self, text: str) -> None:
        print(f"{'':10}{text}", flush=True)

    def header(self) -> None:
        print(
            f"{'epoch':>5} {'block':>6} {'ETH':>9} {'BTC':>10}  {'book':<11}"
            f"{'equity':>11} {'IM':>10} {'MM':>10} {'eq - IM':>11} {'eq - MM':>11}",
            flush=True,
        )
        print(RULE, flush=True)

    def epoch(self, stack: Stack, number: int) -> None:
        if self.parts is None:
            return
        row = epoch_row(stack, self.parts, number)
        prev = self.rows[-1] if self.rows else None
        if prev and row.spot.get("ETH", 0) < 0.85 * prev.spot.get("ETH", 0):
            print(f"{'':5} {'':6} crash priced in from here", flush=True)
        self.rows.append(row)
        for i, (label, nums) in enumerate(row.leaves.items()):
            lead = (
                f"{row.epoch:>5} {row.snapshot_block:>6} {row.spot.get('ETH', 0):>9,.2f} "
                f"{row.spot.get('BTC', 0):>10,.2f}"
                if i == 0
                else f"{'':>5} {'':>6} {'':>9} {'':>10}"
            )
            if nums is None:
                print(f"{lead}  {label:<11}{'(no leaf)':>11}", flush=True)
                continue
            eq, im, mm = nums
            flag = ""
            if label in row.taken_over:
                flag = "  <- the liquidator's subaccount now"
            elif eq - mm < 0:
                flag = "  <- below maintenance"
            print(
                f"{lead}  {label:<11}{eq:>11,.2f} {im:>10,.2f} {mm:>10,.2f} "
                f"{eq - im:>11,.2f} {eq - mm:>11,.2f}{flag}",
                flush=True,
            )


def _print_liquidation(liq: Liquidation) -> None:
    print(f"  tx {liq.tx_hash}")
    print(
        f"  block {liq.block}, gas {liq.gas_used:,}, sent by the bot {liq.liquidator} with the "
        f"leaf of epoch {liq.epoch} (MM surplus upper bound {liq.mm_surplus_hi:+,.2f} USD)"
    )
    held = [f"{size:+g} {name}" for name, size in liq.positions.items()]
    held += [f"{amt:g} {sym}" for sym, amt in liq.collateral.items()]
    print(
        f"  subaccount {liq.account} changed owner in one transaction, nothing copied: "
        f"{liq.previous_owner} -> {liq.liquidator}; it holds {', '.join(held) or 'nothing'}"
    )
    print(
        f"  paid to the previous owner (claimable): {_usd(liq.pay)} USD (equity less the "
        f"penalty); insurance fee {_usd(liq.fee)}; bad debt covered {_usd(liq.covered)}, "
        f"uncovered {_usd(liq.uncovered)}"
    )
    print(
        f"  capital need (checkLiquidation's minDeposit6): {_usd(liq.capital_need)} USD = IM "
        f"deficit {_usd(liq.im_deficit)} + pay {_usd(liq.pay)} + fee {_usd(liq.fee)} - covered "
        f"{_usd(liq.covered)}"
    )
    print(
        f"  liquidator's capital used: {_usd(liq.deposit)} USD deposited into the subaccount "
        f"(the need plus the bot's slippage allowance); its cash {_usd(liq.cash_before)} -> "
        f"{_usd(liq.cash_after)} USD; IM surplus lower bound after "
        f"{liq.im_surplus_after:+,.2f} USD"
    )


def _summary(
    p: Printer,
    stack: Stack,
    parts: Participants,
    result: CrashResult,
    capital: Sequence[CapitalRow],
    checks: Sequence[Check],
) -> None:
    calm = next((r for r in p.rows if r.epoch == result.calm_epoch), None)
    last = p.rows[-1] if p.rows else None
    liq = result.liquidation
    liquidated = {
        int(ev["args"]["account"]): ev
        for ev in stack.vault.events.Liquidated().get_logs(from_block=stack.deployment.block)
    }
    p.section("summary")
    print(f"{'book':<11} {'hedged':<7} {'equity before':>14} {'equity after':>13}  outcome")
    for book in parts.books:
        before = calm.leaves.get(book.label) if calm else None
        after = last.leaves.get(book.label) if last else None
        ev = liquidated.get(book.subaccount)
        if ev is not None:
            secs = f", {liq.seconds_after_shock:.1f} s after the shock" if liq else ""
            used = f", liquidator's capital used {_usd(liq.deposit)} USD" if liq else ""
            outcome = f"LIQUIDATED in block {ev['blockNumber']}{secs}{used}"
        elif after and last:
            outcome = (
                f"not liquidated: MM surplus {after[0] - after[2]:+,.2f} USD at epoch {last.epoch}"
            )
        else:
            outcome = "not liquidated"
        eq0 = _usd(before[0]) if before else "n/a"
        eq1 = _usd(after[0]) if after else "n/a"
        hedged = "yes" if book.spec.hedged else "no"
        print(f"{book.label:<11} {hedged:<7} {eq0:>14} {eq1:>13}  {outcome}")
    print(
        f"\nCapital: IM under portfolio margin vs isolated (per-position) margin, epoch "
        f"{result.calm_epoch} (before the crash), USD"
    )
    print(
        f"{'book':<11} {'portfolio IM':>13} {'isolated IM':>12} {'ratio':>7} "
        f"{'extra capital':>14}  isolated IM per position"
    )
    for r in capital:
        legs = "; ".join(f"{name} {_usd(im)}" for name, im in r.legs)
        print(
            f"{r.label:<11} {_usd(r.portfolio_im):>13} {_usd(r.isolated_im):>12} "
            f"{r.ratio:>6.1f}x {_usd(r.extra):>14}  {legs}"
        )
    hedged_books = [r for r in capital if r.hedged]
    extra = sum(r.extra for r in hedged_books)
    isolated = sum(r.isolated_im for r in hedged_books)
    portfolio = sum(r.portfolio_im for r in hedged_books)
    print(
        f"The hedged books would have needed {_usd(extra)} USD more "
        f"capital under isolated margin ({_usd(isolated)} instead of {_usd(portfolio)})."
    )
    mismatch = [
        r.label
        for r in capital
        if abs(r.recomputed_im - r.portfolio_im) > 1e-6 * max(1.0, r.portfolio_im)
    ]
    if mismatch:
        print(f"note: the recomputed IM differs from the posted leaf for {', '.join(mismatch)}")
    print("\nLiquidation transaction")
    if liq is None:
        print("  none: the naked book was not liquidated")
    else:
        _print_liquidation(liq)
    print("\nOn-chain checks")
    for c in checks:
        print(f"  [{'ok' if c.ok else 'FAIL'}] {c.text}")


def _json_summary(
    stack: Stack,
    parts: Participants,
    settings: Settings,
    result: CrashResult | None,
    capital: Sequence[CapitalRow],
    checks: Sequence[Check],
    rows: Sequence[EpochRow],
    reports: dict[str, Path],
    *,
    ok: bool,
    reason: str | None,
    kept: bool,
    wall: float,
) -> dict[str, Any]:
    def book_doc(b: Book) -> dict[str, Any]:
        return {
            "address": b.address,
            "subaccount": b.subaccount,
            "title": b.spec.title,
            "hedged": b.spec.hedged,
            "fills": [
                {
                    "instrument": f.instrument,
                    "id": f.instrument_id,
                    "size": str(f.size),
                    "price": str(f.price),
                }
                for f in b.fills
            ],
            "tradeTx": b.trade_tx,
            "openingCashUsd": b.opening_cash_usd,
            "capitalMovedUsd": str(b.capital_move_usd),
        }

    return {
        "ok": ok,
        "reason": reason,
        "rpcUrl": stack.node.url,
        "anvilPid": stack.node.process.pid,
        "anvilKept": kept,
        "chainId": stack.deployment.chain_id,
        "vault": stack.deployment.vault,
        "deploymentFile": str(stack.deployment_file),
        "deploymentBlock": stack.deployment.block,
        "dealer": parts.dealer.address,
        "liquidator": parts.liquidator.address,
        "liquidatorCapitalUsedUsd": (
            result.liquidation.deposit if result is not None and result.liquidation else None
        ),
        "books": {b.label: book_doc(b) for b in parts.books},
        "settings": {
            k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(settings).items()
        },
        "crash": None
        if result is None
        else {
            "calmEpoch": result.calm_epoch,
            "shockEpoch": result.shock_epoch,
            "lastEpoch": result.last_epoch,
            "liquidation": asdict(result.liquidation) if result.liquidation else None,
        },
        "capital": [asdict(r) for r in capital],
        "checks": [asdict(c) for c in checks],
        "epochs": [asdict(r) for r in rows],
        "reports": {k: str(v) for k, v in reports.items()},
        "wallSeconds": round(wall, 2),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m scripts.demo",
        description="Portfolio margin end to end on a private Anvil: three books (a delta-hedged "
        "options market maker, a cash-and-carry trader, a naked short-put seller), a per-epoch "
        "margin table, a BTC/ETH -30% crash with a vol spike, the naked book liquidated by the "
        "bot, the hedged books surviving, and portfolio vs isolated margin side by side. "
        "Exits 0 only if the naked book was liquidated and the hedged books were not (checked "
        "on chain).",
    )
    ap.add_argument(
        "--fast", action="store_true", help="fewer epochs before and after the crash (CI)"
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="output directory (default: a new temp dir)"
    )
    ap.add_argument(
        "--keep",
        action="store_true",
        help="leave Anvil running after a successful run (its URL and pid are printed and in "
        "summary.json); a failed run stops it",
    )
    ap.add_argument("--seed", type=int, default=7, help="seed of the simulated market (default 7)")
    ap.add_argument(
        "--capital-multiple",
        type=Decimal,
        default=Decimal(2),
        help="equity each cash book keeps, in multiples of its portfolio IM (default 2)",
    )
    ap.add_argument("--verbose", action="store_true", help="also print every transaction sent")
    return ap.parse_args(argv)


def _stop_on_sigterm() -> None:
    """SIGTERM (a CI timeout, ``kill``) unwinds like Ctrl-C, so that the cleanup stops
    Anvil, the keeper and the bot instead of leaving an orphaned node."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _stop_on_sigterm()
    p = Printer()
    out = args.out or Path(tempfile.mkdtemp(prefix="pm-demo-"))
    settings = Settings(
        StackSettings(seed=args.seed),
        calm_epochs=1 if args.fast else 5,
        after_epochs=1 if args.fast else 2,
        capital_multiple=args.capital_multiple,
    )
    print("Portfolio-margin demo: three books, one crash.")
    print(f"Output directory: {out}")
    p.section("1. the protocol comes up")
    try:
        stack = start_stack(settings.stack, out, p)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        print(f"demo failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    parts: Participants | None = None
    result: CrashResult | None = None
    capital: list[CapitalRow] = []
    checks: list[Check] = []
    reports: dict[str, Path] = {}
    reason: str | None = None
    code = 1
    try:
        p.section("2. three traders open their books (RFQ quotes signed by a dealer)")
        parts = open_books(stack, settings, echo=p.detail if args.verbose else None)
        p.section("3. every posted epoch: the books' ACCOUNT leaves (USD)")
        p.header()
        p.parts = parts
        stack.poll()
        result = run_crash(stack, parts, settings)
        p.parts = None  # the table ends here; later epochs are not printed
        checks = verify_outcome(stack, parts, result.liquidation)
        capital = capital_table(stack, parts, result.calm_epoch)
        _summary(p, stack, parts, result, capital, checks)
        reports = write_reports(stack, parts, out)
        failed = [c.text for c in checks if not c.ok]
        if failed:
            reason = "; ".join(failed)
        else:
            code = 0
    except ScenarioError as exc:
        reason = str(exc)
    except KeyboardInterrupt:
        reason = "interrupted"
        code = 130
    except Exception as exc:  # a bug or an unexpected node failure: one line + the log
        logging.getLogger("scripts.demo").exception("demo failed")
        reason = f"{type(exc).__name__}: {exc} (traceback in {stack.log_file})"
    finally:
        # A failed run stops its Anvil too: nothing else would (the summary may not exist).
        kept = args.keep and code == 0
        stack.stop(keep_chain=kept)
    wall = p.elapsed()
    if parts is not None:
        doc = _json_summary(
            stack,
            parts,
            settings,
            result,
            capital,
            checks,
            p.rows,
            reports,
            ok=code == 0,
            reason=reason,
            kept=kept,
            wall=wall,
        )
        (out / "summary.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print()
    for label, path in reports.items():
        print(f"HTML report ({label}): {path}")
    print(f"JSON summary: {out / 'summary.json'}")
    if kept:
        pid = stack.node.process.pid
        print(f"Anvil left running at {stack.node.url} (pid {pid}); stop it with: kill {pid}")
    else:
        print("Stopped the liquidator bot, the keeper and Anvil.")
    if reason:
        print(f"DEMO FAILED: {reason}", file=sys.stderr)
    else:
        print("OK: the naked book was liquidated, the hedged books were not (checked on chain).")
    print(f"Total wall time {wall:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
