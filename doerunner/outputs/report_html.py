"""The report as one self-contained HTML page (inline CSS, plots as base64 PNG ``data:``
URIs, no script, nothing fetched from the network)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import IO, Any

import pandas as pd

from doerunner.analysis.report import Report
from doerunner.analysis.runfiles import timeseries_files
from doerunner.outputs.base import OutputFormat
from doerunner.outputs.plots import (
    host_columns_that_vary,
    plot_effects,
    plot_host,
    plot_pareto,
    plot_timeseries,
)
from doerunner.outputs.report_text import headline, sections

TIMESERIES_CAP = 24
HTML_TABLE_CAP = 5000

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1b1f24;
background:#fff;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #d0d7de;padding-bottom:4px;
margin-top:28px}h3{font-size:15px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.FAIL td,tr.TIMEOUT td{background:#ffebe9}
.scroll{overflow-x:auto;max-height:600px;overflow-y:auto}
.note{color:#57606a;font-style:italic}img{max-width:100%;border:1px solid #eaeef2}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:13px}
dt{font-weight:600}dd{margin:0;word-break:break-all}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #d0d7de;border-radius:6px;
padding:8px 14px;min-width:90px}.card b{display:block;font-size:20px}
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _html_table(df: pd.DataFrame, numeric_cols: Sequence[str] = (),
                row_class: str | None = None) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in df.columns)
    nums = [c in numeric_cols for c in df.columns]
    body = []
    classes = df[row_class].tolist() if row_class and row_class in df.columns else None
    for i, row in enumerate(df.itertuples(index=False, name=None)):
        cls = f' class="{_e(classes[i])}"' if classes else ""
        cells = "".join(f'<td class="n">{_e(v)}</td>' if n else f"<td>{_e(v)}</td>"
                        for v, n in zip(row, nums, strict=True))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _dl(items: Sequence[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items) + "</dl>"


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict):
        out = []
        for k, v in d.items():
            out += _flatten(v, f"{prefix}{k}." if not isinstance(v, dict) or v else prefix)
            if isinstance(v, dict) and not v:
                out.append((f"{prefix}{k}", "{}"))
        return out
    if isinstance(d, list):
        if all(not isinstance(x, (dict, list)) for x in d):
            return [(prefix.rstrip("."), " ".join(map(str, d)))]
        out = []
        for i, x in enumerate(d):
            out += _flatten(x, f"{prefix}{i}.")
        return out
    return [(prefix.rstrip("."), "" if d is None else d)]


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">'


def render_html(r: Report) -> str:
    """The self-contained HTML report (see the module docstring)."""
    src, df = r.source, r.source.df
    rj = src.run_json or {}
    parts = [f"<h1>srd report{': ' + _e(r.run_id) if r.run_id else ''}</h1>"]
    cards = "".join(f'<div class="card"><b>{n}</b>{_e(s)}</div>' for s, n in r.counts.items())
    cards += (f'<div class="card"><b>{r.violations["case_id"].nunique()}</b>violated</div>')
    parts.append(f'<div class="cards">{cards}</div>')
    parts.append("<h2>Summary</h2>")
    parts.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in headline(r)) + "</ul>")
    for title, _body in sections(r, markdown=False):
        if title == "Main effects":
            continue
        table = {"Failed": r.failures, "Threshold": r.violations, "Slowest": r.slowest,
                 "Most": r.hungriest, "Throttled": r.throttled}[title.split()[0]]
        parts.append(f"<h3>{_e(title)}</h3>")
        parts.append(_html_table(table, [c for c in table.columns
                                         if c not in ("case_id", "status", "message",
                                                      "violation", "reasons")]))

    parts.append("<h2>Main effects</h2>")
    if r.effects is not None:
        parts.append(f"<p>Mean {_e(r.response)} per level of each parameter (OK rows); error "
                     "bars: standard deviation across rows.</p>")
        parts.append(_img(plot_effects(r.effects), f"main effects on {r.response}"))
        if len(r.effects.factors) > 12:
            parts.append(f'<p class="note">first 12 of {len(r.effects.factors)} factors '
                         "plotted</p>")
        parts.append(_html_table(r.effects.to_frame().astype(object).fillna(""),
                                 ["rank", "n", "mean", "std", "pooled_std", "effect"]))
    else:
        parts.append(f'<p class="note">{_e(r.effects_note)}</p>')

    parts.append("<h2>Pareto front: energy against latency</h2>")
    if r.energy_col is None:
        parts.append('<p class="note">no energy column (energy_adjusted_j / energy_raw_j / '
                     "energy_total_j): run with GPU telemetry, or where RAPL can be read, to "
                     "see the trade-off</p>")
    else:
        try:
            uri, caption = plot_pareto(df, r.energy_col)
            parts.append(_img(uri, "Pareto front") + f"<p>{_e(caption)}</p>")
        except ValueError as e:
            parts.append(f'<p class="note">no Pareto front: {_e(e)}</p>')

    parts.append("<h2>What the cases cost the host</h2>")
    varying = host_columns_that_vary(df)
    if varying:
        parts.append(_img(plot_host(df, varying), "host columns per case"))
    else:
        parts.append('<p class="note">no host column varies between the OK cases</p>')

    parts.append("<h2>GPU power and temperature</h2>")
    parts.append(_timeseries_html(r))

    parts.append("<h2>Run</h2>")
    meta = [("metrics", src.metrics_path)]
    if rj:
        meta += [(k, rj.get(k)) for k in ("run_id", "started", "ended", "cases_file", "cwd",
                                         "srd_version") if k in rj]
        meta.append(("command line", " ".join(map(str, rj.get("command_line") or []))))
        meta += [(f"summary.{k}", v) for k, v in _flatten(rj.get("summary") or {})]
        meta += [(f"options.{k}", v) for k, v in _flatten(rj.get("options") or {})]
    else:
        meta.append(("run directory", "none found beside the metrics file"))
    parts.append(_dl(meta))
    if rj:
        parts.append("<h2>Environment</h2>")
        env = _flatten(rj.get("environment") or {})
        tel = rj.get("telemetry") or {}
        env += [(f"telemetry.{k}", v) for k, v in _flatten(tel)]
        parts.append(_dl(env))

    parts.append(f"<h2>All cases ({len(df)})</h2>")
    shown = df.head(HTML_TABLE_CAP)
    if len(df) > HTML_TABLE_CAP:
        parts.append(f'<p class="note">first {HTML_TABLE_CAP} of {len(df)} rows; the rest are '
                     f"in {_e(src.metrics_path)}</p>")
    parts.append('<div class="scroll">' + _html_table(shown, row_class="status") + "</div>")
    title = _e(f"srd report {r.run_id or src.metrics_path}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def _timeseries_html(r: Report) -> str:
    files, total = timeseries_files(r.source, TIMESERIES_CAP)
    if not files:
        return '<p class="note">no time series (timeseries/&lt;case_id&gt;.json) for this run</p>'
    out = ["<p>Shaded: stretches where the GPU clocks were held down (throttling).</p>"]
    for p in files:
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            out.append(_img(plot_timeseries(doc), f"time series {doc.get('case_id', p.stem)}"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            out.append(f'<p class="note">{_e(p.name)}: cannot be plotted: {_e(e)}</p>')
    if total > len(files):
        out.append(f'<p class="note">the first {len(files)} of {total} cases with a time '
                   "series are plotted</p>")
    return "\n".join(out)




class ReportHtml(OutputFormat):
    """The self-contained HTML report."""

    NAME = "html"

    def write(self, data: Report, stream: IO[str]) -> None:
        stream.write(render_html(data))
