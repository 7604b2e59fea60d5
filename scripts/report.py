"""A self-contained HTML risk report of one account (no external file, script or font).

Sections: the headline numbers (attested leaf, the vault's bounds now, the engine's
recomputation) with their sources; the risk array as a price x vol heat map (inline SVG:
red = loss, green = gain, the worst cell outlined); the margin history (attested equity,
IM and MM per epoch, inline SVG lines); the position list; the IM breakdown and the worst
scenario. Built from a :class:`scripts.margin_view.MarginView` and its history.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from risk_engine.units import WAD
from scripts.margin_view import HistoryPoint, MarginView, RiskGrid

__all__ = ["heatmap_svg", "history_svg", "render_report", "write_report"]


def _usd(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:,.2f}"


def _wad_usd(x: int | None) -> str:
    return "n/a" if x is None else f"{x / WAD:,.2f}"


def _color(v: float, scale: float) -> str:
    """Red for losses, green for gains, white at zero; ``scale`` = the largest |P&L|."""
    if not math.isfinite(v):
        return "#dddddd"
    t = min(1.0, abs(v) / scale) if scale > 0 else 0.0
    fade = int(255 * (1 - t))
    return f"rgb(255,{fade},{fade})" if v < 0 else f"rgb({fade},255,{fade})"


#: The page's content width (px, the ``max-width`` of ``_CSS``'s body): every figure fits it.
PAGE_WIDTH = 1000


def cell_unit(scale: float) -> tuple[float, str, int]:
    """(divisor, suffix, decimals) for the heat map's cells, chosen by the largest |P&L|
    ``scale`` (USD): at most ~6 characters a cell, and a small book keeps its digits (a
    150 USD book shows ``-123``, not ``-0.1k``)."""
    if scale < 1e3:
        return 1.0, "", 0
    if scale < 1e6:
        return 1e3, "k", 2 if scale < 1e4 else 1 if scale < 1e5 else 0
    return 1e6, "M", 2 if scale < 1e7 else 1 if scale < 1e8 else 0


def _cell_text(v: float, unit: tuple[float, str, int]) -> str:
    if not math.isfinite(v):
        return ""
    div, suffix, decimals = unit
    text = f"{v / div:,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return "0"  # never "-0" or "-0.00k"
    return text + suffix


def heatmap_svg(grid: RiskGrid) -> str:
    """The risk array: columns = price moves (x scan range), rows = vol down / flat / up.
    Cells are as wide as the page allows (``PAGE_WIDTH``), and the SVG scales down with a
    narrower window (``viewBox``, ``max-width: 100%``)."""
    left, top, cell_h = 70, 40, 32
    cols, rows = len(grid.fractions), len(grid.vol_states)
    cell_w = max(36, min(62, (PAGE_WIDTH - left - 10) // max(cols, 1)))
    width, height = left + cols * cell_w + 10, top + rows * cell_h + 50
    finite = grid.pnl[np.isfinite(grid.pnl)]
    scale = float(np.max(np.abs(finite))) if finite.size else 0.0
    unit = cell_unit(scale)
    worst = np.unravel_index(np.nanargmin(grid.pnl), grid.pnl.shape) if finite.size else None
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" '
        'font-family="sans-serif" font-size="10" role="img" aria-label="risk array heat map">'
    ]
    labels = {-1: "vol down", 0: "vol flat", 1: "vol up"}
    for r, state in enumerate(reversed(grid.vol_states)):
        ri = len(grid.vol_states) - 1 - r
        y = top + r * cell_h
        parts.append(
            f'<text x="{left - 8}" y="{y + cell_h / 2 + 4}" text-anchor="end">'
            f"{labels[state]}</text>"
        )
        for c, _ in enumerate(grid.fractions):
            v = float(grid.pnl[ri, c])
            x = left + c * cell_w
            stroke = (
                ' stroke="#000" stroke-width="3"'
                if worst is not None and (int(worst[0]), int(worst[1])) == (ri, c)
                else ' stroke="#fff"'
            )
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell_w}" height="{cell_h}" '
                f'fill="{_color(v, scale)}"{stroke}><title>P&amp;L {_usd(v)} USD</title></rect>'
            )
            txt = _cell_text(v, unit)
            parts.append(
                f'<text x="{x + cell_w / 2}" y="{y + cell_h / 2 + 4}" '
                f'text-anchor="middle">{txt}</text>'
            )
    for c, f in enumerate(grid.fractions):
        xc = left + c * cell_w + cell_w / 2
        mark = "*" if grid.extreme[c] else ""
        parts.append(
            f'<text x="{xc}" y="{top + rows * cell_h + 16}" text-anchor="middle">'
            f"{f:+.2f}x{mark}</text>"
        )
    parts.append(
        f'<text x="{left}" y="{top + rows * cell_h + 36}">price move in multiples of the scan '
        f"range (* extreme move, P&amp;L at its cover fraction); cells: P&amp;L in {unit[1]}USD"
        "</text>"
    )
    parts.append(
        f'<text x="{left}" y="20" font-weight="bold">Risk array: P&amp;L by price x '
        "implied vol (all underlyings move together)</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def history_svg(points: Sequence[HistoryPoint]) -> str:
    """Attested equity, IM and MM per epoch as three lines."""
    if not points:
        return "<p>No attested history for this account yet.</p>"
    width, height, pad = 640, 260, 50
    xs = [p.epoch for p in points]
    series = {
        "equity": ([p.equity for p in points], "#1f77b4"),
        "IM": ([p.im for p in points], "#d62728"),
        "MM": ([p.mm for p in points], "#ff7f0e"),
    }
    lo = min(min(v) for v, _ in series.values())
    hi = max(max(v) for v, _ in series.values())
    if hi == lo:
        hi = lo + 1.0
    x0, x1 = min(xs), max(xs)

    def sx(e: int) -> float:
        return pad + (e - x0) / (x1 - x0 or 1) * (width - 2 * pad)

    def sy(v: float) -> float:
        return height - pad - (v - lo) / (hi - lo) * (height - 2 * pad)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11" role="img" aria-label="margin history">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#999"/>',
        f'<text x="{pad}" y="{height - pad + 16}">epoch {x0}</text>',
        f'<text x="{width - pad}" y="{height - pad + 16}" text-anchor="end">epoch {x1}</text>',
        f'<text x="4" y="{sy(hi) + 4}">{hi:,.0f}</text>',
        f'<text x="4" y="{sy(lo) + 4}">{lo:,.0f}</text>',
    ]
    for i, (name, (vals, color)) in enumerate(series.items()):
        pts = " ".join(f"{sx(e):.1f},{sy(v):.1f}" for e, v in zip(xs, vals, strict=True))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        for e, v in zip(xs, vals, strict=True):
            parts.append(
                f'<circle cx="{sx(e):.1f}" cy="{sy(v):.1f}" r="2.5" fill="{color}">'
                f"<title>{name} epoch {e}: {_usd(v)}</title></circle>"
            )
        parts.append(f'<text x="{width - pad + 4}" y="{pad + 14 * i}" fill="{color}">{name}</text>')
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font-family:sans-serif;max-width:%dpx;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.note{color:#666;font-size:90%}
""".replace("%dpx", f"{PAGE_WIDTH}px")


def render_report(view: MarginView, history: Sequence[HistoryPoint]) -> str:
    """The whole HTML document."""
    e = html.escape
    when = (
        datetime.fromtimestamp(view.epoch_timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if view.epoch_timestamp
        else "never"
    )
    leaf = view.leaf
    rep = view.report
    rows = [
        ("equity", _wad_usd(leaf["equity"]) if leaf else "n/a", _usd(rep.equity) if rep else "n/a"),
        ("IM", _wad_usd(leaf["im"]) if leaf else "n/a", _usd(rep.im) if rep else "n/a"),
        ("MM", _wad_usd(leaf["mm"]) if leaf else "n/a", _usd(rep.mm) if rep else "n/a"),
        (
            "surplus over IM",
            _wad_usd(leaf["equity"] - leaf["im"]) if leaf else "n/a",
            _usd(rep.equity - rep.im) if rep else "n/a",
        ),
        (
            "surplus over MM",
            _wad_usd(leaf["equity"] - leaf["mm"]) if leaf else "n/a",
            _usd(rep.equity - rep.mm) if rep else "n/a",
        ),
    ]
    body = [
        f"<h1>Margin report: subaccount {view.account} of {e(view.owner)}</h1>",
        f"<p>Vault epoch {view.epoch} (snapshot block {view.snapshot_block}, {e(when)}); "
        f"safe mode: {'YES' if view.safe_mode else 'no'}; cash now {_usd(view.cash)} USD.</p>",
        "<h2>Numbers and where they come from</h2>",
        "<table><tr><th>USD</th><th>attested (keeper leaf, epoch "
        f"{view.epoch})</th><th>engine now (current positions, epoch market)</th></tr>",
        *[f"<tr><td>{n}</td><td>{a}</td><td>{b}</td></tr>" for n, a, b in rows],
        "</table>",
        f"<p>Vault bounds now: IM surplus lower bound <b>{_wad_usd(view.im_surplus_lo)}</b>, "
        f"MM surplus upper bound <b>{_wad_usd(view.mm_surplus_hi)}</b> USD. "
        f'<span class="note">{e(view.bounds_note)}</span></p>',
    ]
    if rep is not None and view.grid is not None:
        ranges = ", ".join(f"{u} {r:.1%}" for u, r in view.grid.ranges.items())
        body += [
            f"<p>Worst scenario: <b>{e(rep.worst_words)}</b></p>",
            "<table><tr><th>IM component</th><th>USD</th></tr>",
            *[f"<tr><td>{e(k)}</td><td>{_usd(v)}</td></tr>" for k, v in rep.breakdown.items()],
            "</table>",
            heatmap_svg(view.grid),
            f'<p class="note">Scan ranges: {e(ranges)}.</p>',
        ]
    else:
        body.append(f'<p class="note">Risk array unavailable: {e(view.engine_note)}</p>')
    body += ["<h2>Margin history (attested)</h2>", history_svg(history)]
    body += [
        "<h2>Positions</h2>",
        "<table><tr><th>holding</th><th>kind</th><th>size</th><th>mark USD</th>"
        "<th>value USD</th></tr>",
        *[
            f"<tr><td>{e(p.name)}</td><td>{p.kind}</td><td>{p.size:,.6g}</td>"
            f"<td>{_usd(p.mark)}</td><td>{_usd(p.value)}</td></tr>"
            for p in view.positions
        ],
        f"<tr><td>cash</td><td>USD</td><td></td><td></td><td>{_usd(view.cash)}</td></tr>",
        "</table>",
        '<p class="note">Marks: the attested INSTRUMENT leaves (options: premium per unit); '
        "collateral: the epoch's token price.</p>",
    ]
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>Margin report subaccount {view.account}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def write_report(view: MarginView, history: Sequence[HistoryPoint], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(view, history))
    return out
