"""One self-contained HTML page: the runs table, the sample grids of the top runs with
their scores, and the plots. Images are embedded as base64 data URIs and the CSS is
inline, so the file can be mailed or archived alone; it needs no JavaScript.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape

import pandas as pd

from gansweep.report.diagnose import HEALTHY
from gansweep.report.plots import Plot
from gansweep.report.table import MISSING, format_value, is_higher_better, score_columns, status_style
from gansweep.rundir import RunFolder

# Sample grids shown side by side: the best runs only, the page stays light.
SAMPLE_RUNS = 6
# Scores printed under each sample grid.
CARD_SCORES = 4
# Badge colours of the rich styles statuses have in the terminal (rundir.Status.style).
STYLE_COLOURS = {
    "green": "#1a7f37",
    "cyan": "#0969da",
    "bold red": "#cf222e",
    "red": "#cf222e",
    "magenta": "#8250df",
    "yellow": "#9a6700",
    "dim": "#6e7781",
}


@dataclass
class Page:
    """Everything the HTML page shows."""

    runs: pd.DataFrame
    """Rows to list, already filtered, sorted and cut to --top."""
    columns: list[str]
    sort_key: str | None
    roots: list[str]
    found: int
    skipped: int
    warnings: list[str] = field(default_factory=list)
    groups: pd.DataFrame | None = None
    plots: list[Plot] = field(default_factory=list)


def render_page(page: Page) -> str:
    """The whole report as one HTML document."""
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    order = ""
    if page.sort_key:
        order = f", sorted by <b>{escape(page.sort_key)}</b> ({'higher' if is_higher_better(page.sort_key) else 'lower'} is better)"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>gansweep report</title><style>{_CSS}</style></head><body><main>",
        "<h1>gansweep report</h1>",
        f'<p class="meta">{page.found} run folders found, {page.skipped} skipped, '
        f"{len(page.runs)} listed{order} &middot; {escape(', '.join(page.roots))} &middot; {created}</p>",
    ]
    if page.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in page.warnings)
        parts.append(f'<div class="warnings"><b>Warnings</b><ul>{items}</ul></div>')
    parts.append(_samples_section(page))
    parts.append('<section><h2>Runs</h2><div class="scroll">')
    parts.append(_table(page.runs, page.columns, page.sort_key, "runs"))
    parts.append("</div></section>")
    if page.groups is not None:
        parts.append('<section><h2>Groups</h2><div class="scroll">')
        parts.append(_table(page.groups, list(page.groups.columns), None, "groups"))
        parts.append("</div></section>")
    if page.plots:
        parts.append('<section><h2>Plots</h2><div class="plots">')
        for plot in page.plots:
            wide = ' class="wide"' if plot.wide else ""
            parts.append(
                f'<figure id="plot-{escape(plot.name)}"{wide}><img alt="{escape(plot.title)}" '
                f'src="{_data_uri(plot.png)}"><figcaption>{escape(plot.title)}</figcaption></figure>'
            )
        parts.append("</div></section>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _samples_section(page: Page) -> str:
    cards = []
    scores = score_columns(page.runs, page.sort_key)[:CARD_SCORES]
    for row in page.runs.head(SAMPLE_RUNS).to_dict("records"):
        sample = RunFolder(row["path"]).latest_sample()
        if sample is None:
            continue
        lines = "".join(
            f"<dt>{escape(s)}</dt><dd>{escape(format_value(s, row.get(s)))}</dd>"
            for s in scores if format_value(s, row.get(s)) != MISSING
        )
        cards.append(
            f'<div class="card"><img alt="samples of {escape(row["run"])}" src="{_data_uri(sample.read_bytes())}">'
            f'<div class="card-body"><div class="run">{escape(row["run"])}</div>'
            f"{_status_badge(row.get('status'))} <span class=\"small\">step {int(sample.stem.removeprefix('step_'))}</span>"
            f'<dl>{lines}</dl><div class="small">{escape(str(row.get("diagnosis") or ""))}</div></div></div>'
        )
    if not cards:
        return ""
    return f'<section><h2>Samples of the top runs</h2><div class="cards">{"".join(cards)}</div></section>'


def _table(frame: pd.DataFrame, columns: list[str], sort_key: str | None, css_class: str) -> str:
    numeric = {c for c in columns if pd.api.types.is_numeric_dtype(frame[c])}
    head = "".join(
        f'<th class="{"num" if c in numeric else ""}{" key" if c == sort_key else ""}">{escape(c)}</th>'
        for c in columns
    )
    rows = []
    for record in frame[columns].itertuples(index=False, name=None):
        cells = []
        for column, value in zip(columns, record):
            if column == "status":
                cells.append(f"<td>{_status_badge(value)}</td>")
                continue
            classes = " ".join(
                c for c in ("num" if column in numeric else "", "key" if column == sort_key else "",
                            "warn" if column in ("diagnosis", "flags") and value not in (HEALTHY, "", None) else "")
                if c
            )
            cells.append(f'<td class="{classes}">{escape(format_value(column, value))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _status_badge(status: object) -> str:
    text = format_value("status", status)
    colour = STYLE_COLOURS.get(status_style(status), "#57606a")
    return f'<span class="badge" style="background:{colour}">{escape(text)}</span>'


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


_CSS = """
:root { color-scheme: light; --border: #d0d7de; --muted: #57606a; --bg-alt: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; background: #fff; }
main { max-width: 1360px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--border); }
.meta, .small { color: var(--muted); font-size: 12px; }
.warnings { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 14px; margin: 14px 0; }
.warnings ul { margin: 4px 0 0; padding-left: 20px; }
.scroll { overflow-x: auto; border: 1px solid var(--border); border-radius: 6px; max-height: 640px; overflow-y: auto; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { padding: 5px 9px; text-align: left; white-space: nowrap; border-bottom: 1px solid #eaeef2; }
th { position: sticky; top: 0; background: var(--bg-alt); font-weight: 600; border-bottom: 1px solid var(--border); }
tbody tr:nth-child(even) { background: #fbfcfd; }
tbody tr:hover { background: #eef5ff; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.key { font-weight: 700; }
th.key { color: #0969da; }
td.warn { color: #9a3412; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 11.5px; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 14px; }
.card { border: 1px solid var(--border); border-radius: 8px; overflow: hidden; background: #fff; }
.card img { display: block; width: 100%; aspect-ratio: 1; object-fit: contain; background: #f0f0f0; image-rendering: pixelated; }
.card-body { padding: 8px 10px 10px; }
.card .run { font-weight: 600; font-size: 12.5px; word-break: break-all; margin-bottom: 4px; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 1px 10px; margin: 6px 0 4px; font-size: 12.5px; }
dt { color: var(--muted); } dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); grid-auto-flow: dense; gap: 16px; }
figure.wide { grid-column: 1 / -1; }
figure { margin: 0; border: 1px solid var(--border); border-radius: 8px; padding: 8px; background: #fff; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { color: var(--muted); font-size: 12px; text-align: center; margin-top: 4px; }
"""
