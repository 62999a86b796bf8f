"""``srd report``: what a finished run says, as a terminal summary, Markdown or one HTML file.

The input is a run directory (``run.json`` names its metrics.csv) or a metrics.csv (its
``<stem>_run/`` beside it, when present, adds the run's metadata and time series). The
summary covers: counts by status, failures, threshold violations (which cases, which
bounds, the measured value), the slowest OK cases, the most energy-hungry cases, throttled
cases, totals of time and energy, and the main effects of the parameters on a response
(``analysis.main_effects``).

``render_text`` / ``render_markdown`` turn a ``Report`` into text; ``write_html`` writes
one self-contained HTML file (inline CSS, plots as base64 PNG ``data:`` URIs, no script,
no network) atomically. Plots use matplotlib's Agg canvas through ``matplotlib.figure``
(no pyplot global state), imported only when HTML is asked for.

Errors are ``InputError`` (exit 4 in the CLI); a plot that cannot be drawn becomes a note.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from doerunner.analysis.effects import (
    EffectsTable,
    default_response,
    main_effects,
    numeric,
    read_metrics,
    render_effects,
    render_table,
)
from doerunner.cells import round_half_away
from doerunner.columns import STATUSES, decimals_for
from doerunner.errors import InputError
from doerunner.outputs.atomic import atomic_open

TIMESERIES_CAP = 24
HTML_TABLE_CAP = 5000
# Clock-event reason bits that count as throttling (telemetry.gpu.THROTTLE_MASK): kept in
# sync by a test; not imported so that reading a report never loads the NVML layer.
_THROTTLE_MASK = None


def _throttle_mask() -> int:
    global _THROTTLE_MASK
    if _THROTTLE_MASK is None:
        from doerunner.telemetry.gpu import THROTTLE_MASK

        _THROTTLE_MASK = THROTTLE_MASK
    return _THROTTLE_MASK


# --- loading --------------------------------------------------------------------------------


@dataclass
class RunInput:
    """A metrics.csv read as strings, and the run directory around it when there is one."""

    df: pd.DataFrame
    metrics_path: Path
    run_dir: Path | None
    run_json: dict[str, Any] | None


def _read_run_json(path: Path) -> dict[str, Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot be read: {e}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not a run.json (no JSON object)")
    doc.pop("cases", None)  # every case's full result: metrics.csv has what a report shows
    return doc


def load_run(path: str | Path) -> RunInput:
    """Read a run directory or a metrics.csv. Raises ``InputError`` for a missing path, a
    directory without run.json, or a metrics file that cannot be read."""
    p = Path(path)
    if p.is_dir():
        rj = p / "run.json"
        if not rj.is_file():
            raise InputError(f"{path}: a directory without run.json, not a run directory")
        doc = _read_run_json(rj)
        metrics = _metrics_of_run_dir(p, doc)
        return RunInput(read_metrics(metrics), metrics, p, doc)
    if not p.exists():
        raise InputError(f"{path}: no such file or directory")
    df = read_metrics(p)
    run_dir = p.with_name(p.stem + "_run")
    doc = _read_run_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else None
    return RunInput(df, p, run_dir if doc is not None else None, doc)


def _metrics_of_run_dir(run_dir: Path, doc: dict[str, Any]) -> Path:
    out = str(doc.get("out") or "")
    candidates = []
    if out:
        o = Path(out)
        candidates.append(o if o.is_absolute() else Path(str(doc.get("cwd") or ".")) / o)
        candidates.append(run_dir.parent / o.name)
    if run_dir.name.endswith("_run"):
        candidates.append(run_dir.parent / (run_dir.name[: -len("_run")] + ".csv"))
    for c in candidates:
        if c.is_file():
            return c
    raise InputError(f"{run_dir}: its metrics file {out or '(unknown)'} is missing")


# --- the summary ----------------------------------------------------------------------------


def report_response(df: pd.DataFrame) -> str:
    """The default response: ``tokens_per_s`` when every OK row is an hf case with a
    value of it, else ``analysis.default_response`` (``p95``, else ``run_seconds``)."""
    ok = df[df["status"] == "OK"] if "status" in df.columns else df
    if ("backend" in ok.columns and len(ok) and (ok["backend"] == "hf").all()
            and "tokens_per_s" in ok.columns and numeric(ok, "tokens_per_s").notna().any()):
        return "tokens_per_s"
    return default_response(df)


def energy_column(df: pd.DataFrame) -> str | None:
    """``energy_adjusted_j`` when it has values, else ``energy_raw_j`` when it has, else
    None."""
    for c in ("energy_adjusted_j", "energy_raw_j"):
        if c in df.columns and numeric(df, c).notna().any():
            return c
    return None


@dataclass
class Report:
    """Everything the summary shows, computed once from a ``RunInput``."""

    source: RunInput
    counts: dict[str, int]
    failures: pd.DataFrame          # case_id, status, message
    violations: pd.DataFrame        # case_id, violation, value
    slowest: pd.DataFrame           # case_id, run_seconds
    energy_col: str | None
    hungriest: pd.DataFrame         # case_id, <energy_col>
    throttled: pd.DataFrame         # case_id, duration_s, reasons
    total_run_seconds: float
    total_energy_j: float
    response: str
    effects: EffectsTable | None
    effects_note: str = ""
    top: int = 5
    notes: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        rj = self.source.run_json or {}
        return str(rj.get("run_id") or "")


_BOUND = re.compile(r"([a-z0-9_]+)(<=|>=|<|>|=)(.*)")


def build_report(src: RunInput, response: str | None = None, top: int = 5) -> Report:
    """Compute the summary of a run. ``response`` defaults to ``report_response``; an
    explicit one that is not a column raises ``InputError``. A run with no parameter
    to analyse (or no OK row) gets a note instead of an effects table."""
    df = src.df
    if response is not None and response not in df.columns:
        raise InputError(f"response {response!r} is not a column of {src.metrics_path}")
    status = df["status"] if "status" in df.columns else pd.Series("OK", index=df.index)
    counts = {s: int((status == s).sum()) for s in STATUSES}
    for s in status.unique():
        if s not in counts:
            counts[str(s)] = int((status == s).sum())
    ok = status == "OK"

    bad = df[~ok]
    failures = pd.DataFrame({"case_id": bad["case_id"], "status": status[~ok],
                             "message": bad["message"] if "message" in df else ""})

    vrows = []
    if "violations" in df.columns:
        has = df["violations"] != ""
        for cid, text, idx in zip(df["case_id"][has], df["violations"][has],
                                  df.index[has], strict=True):
            for v in text.split(";"):
                m = _BOUND.fullmatch(v.strip())
                value = ""
                if m and m.group(1) in df.columns:
                    value = df.at[idx, m.group(1)] or "(no value)"
                vrows.append((cid, v.strip(), value))
    violations = pd.DataFrame(vrows, columns=["case_id", "violation", "value"])

    rs = numeric(df, "run_seconds") if "run_seconds" in df.columns else pd.Series(
        np.nan, index=df.index)
    slow = rs[ok].dropna().sort_values(ascending=False, kind="stable").head(top)
    slowest = pd.DataFrame({"case_id": df["case_id"][slow.index], "run_seconds": slow})

    ecol = energy_column(df)
    if ecol:
        e = numeric(df, ecol)
        hung = e.dropna().sort_values(ascending=False, kind="stable").head(top)
        hungriest = pd.DataFrame({"case_id": df["case_id"][hung.index], ecol: hung})
        total_energy = float(e.sum())
    else:
        hungriest = pd.DataFrame(columns=["case_id"])
        total_energy = math.nan

    if "thermal_throttle_detected" in df.columns:
        th = df[df["thermal_throttle_detected"].isin(("1", "true", "True"))]
        throttled = pd.DataFrame({
            "case_id": th["case_id"],
            "duration_s": th.get("thermal_throttle_duration_sec", ""),
            "reasons": th.get("thermal_throttle_reasons", "")})
    else:
        throttled = pd.DataFrame(columns=["case_id", "duration_s", "reasons"])

    resp = response or report_response(df)
    effects, note = None, ""
    try:
        effects = main_effects(df, resp)
    except InputError as e:
        note = f"no main effects on {resp}: {e}"
    return Report(src, counts, failures, violations, slowest, ecol, hungriest, throttled,
                  float(rs.sum()), total_energy, resp, effects, note, top)


# --- text and Markdown ------------------------------------------------------------------------


def _num(value: Any, column: str) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return round_half_away(v, decimals_for(column)) if math.isfinite(v) else ""


def _headline(r: Report) -> list[str]:
    rj = r.source.run_json or {}
    total = sum(r.counts.values())
    counts = ", ".join(f"{n} {s}" for s, n in r.counts.items())
    head = f"{total} cases: {counts}; {r.violations['case_id'].nunique()} violated thresholds"
    lines = []
    if rj:
        project = (rj.get("options") or {}).get("project")
        lines.append(f"run {rj.get('run_id', '?')}" + (f" (project {project})" if project else "")
                     + f", started {rj.get('started', '?')}")
    lines.append(f"metrics: {r.source.metrics_path}")
    lines.append(head)
    timing = f"time: {_num(r.total_run_seconds, 'run_seconds')} s measured in total"
    elapsed = (rj.get("summary") or {}).get("elapsed_s")
    if isinstance(elapsed, (int, float)):
        timing += f" (the run took {elapsed:.1f} s)"
    lines.append(timing)
    if r.energy_col:
        lines.append(f"energy: {_num(r.total_energy_j, r.energy_col)} J in total "
                     f"({r.energy_col})")
    else:
        lines.append("energy: not measured (no energy column)")
    return lines


def _sections(r: Report, markdown: bool) -> list[tuple[str, str]]:
    """(title, body) of each summary section; bodies are tables or one line."""
    def table(df: pd.DataFrame, right: Sequence[bool]) -> str:
        cols = [[str(v) for v in df[c].tolist()] for c in df.columns]
        return render_table(list(df.columns), cols, list(right), markdown)

    out = []
    if len(r.failures):
        out.append((f"Failed or timed out ({len(r.failures)})",
                    table(r.failures, [False, False, False])))
    if len(r.violations):
        out.append((f"Threshold violations ({len(r.violations)} in "
                    f"{r.violations['case_id'].nunique()} cases)",
                    table(r.violations, [False, False, True])))
    if len(r.slowest):
        s = r.slowest.assign(run_seconds=[_num(v, "run_seconds") for v in r.slowest.run_seconds])
        out.append((f"Slowest OK cases (top {r.top} by run_seconds)", table(s, [False, True])))
    if r.energy_col and len(r.hungriest):
        c = r.energy_col
        e = r.hungriest.assign(**{c: [_num(v, c) for v in r.hungriest[c]]})
        out.append((f"Most energy (top {r.top} by {c})", table(e, [False, True])))
    if len(r.throttled):
        t = r.throttled.assign(duration_s=[_num(v, "duration_s") if v != "" else ""
                                           for v in r.throttled.duration_s])
        out.append((f"Throttled ({len(r.throttled)})", table(t, [False, True, False])))
    if r.effects is not None:
        out.append(("Main effects", render_effects(r.effects, markdown)))
    else:
        out.append(("Main effects", r.effects_note + "\n"))
    return out


def render_text(r: Report) -> str:
    """The terminal summary."""
    lines = _headline(r)
    for title, body in _sections(r, markdown=False):
        lines += ["", title + ":", body.rstrip("\n")]
    return "\n".join(lines) + "\n"


def render_markdown(r: Report) -> str:
    """The same summary as GitHub-flavoured Markdown (a CI job summary)."""
    title = f"## srd report: {r.run_id}" if r.run_id else f"## srd report: {r.source.metrics_path}"
    lines = [title, ""] + [f"- {line}" for line in _headline(r)]
    for t, body in _sections(r, markdown=True):
        lines += ["", f"### {t}", "", body.rstrip("\n")]
    return "\n".join(lines) + "\n"


# --- plots ----------------------------------------------------------------------------------


def _figure(w: float, h: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def plot_effects(t: EffectsTable, max_factors: int = 12) -> str:
    """One small panel per factor: the mean response per level, error bars = std across
    rows (the pooled repetition spread when rows have no spread). A PNG data URI."""
    factors = t.factors[:max_factors]
    n = len(factors)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = _figure(3.0 * cols, 2.6 * rows)
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
    for ax, f in zip(axes.flat, factors, strict=False):
        x = np.arange(len(f.levels))
        means = [lv.mean for lv in f.levels]
        err = [lv.std if not math.isnan(lv.std) else lv.pooled_std for lv in f.levels]
        err = [0.0 if math.isnan(e) else e for e in err]
        ax.errorbar(x, means, yerr=err, marker="o", capsize=3, color="#1f77b4")
        ax.set_xticks(x, [lv.level for lv in f.levels], rotation=30 if len(x) > 4 else 0)
        ax.set_title(f"{f.factor.removeprefix('param_')} (effect {_num(f.effect, t.response)})",
                     fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel(t.response)
    return _png(fig)


def pareto_front(x: np.ndarray, y: np.ndarray, x_higher_better: bool) -> np.ndarray:
    """Indices of the non-dominated points: energy ``y`` lower is better, ``x`` lower is
    better unless ``x_higher_better``. O(n log n)."""
    xs = -x if x_higher_better else x
    order = np.lexsort((y, xs))
    best = math.inf
    keep = []
    for i in order:
        if y[i] < best:
            keep.append(i)
            best = y[i]
    return np.asarray(keep, dtype=int)


def _pareto_axes(df: pd.DataFrame) -> tuple[str, bool] | None:
    ok = df[df["status"] == "OK"] if "status" in df.columns else df
    for col, higher in (("p95", False), ("run_seconds", False), ("tokens_per_s", True),
                        ("throughput_rps", True)):
        if col in ok.columns and numeric(ok, col).notna().any():
            return col, higher
    return None


def plot_pareto(df: pd.DataFrame, ecol: str) -> tuple[str, str]:
    """The Pareto front of ``ecol`` against latency (or throughput) over the OK cases.
    Returns (data URI, caption); raises ``ValueError`` when there is nothing to plot."""
    axes = _pareto_axes(df)
    if axes is None:
        raise ValueError("no latency or throughput column with values")
    xcol, higher = axes
    ok = df[df["status"] == "OK"] if "status" in df.columns else df
    x, y = numeric(ok, xcol).to_numpy(), numeric(ok, ecol).to_numpy()
    has = ~(np.isnan(x) | np.isnan(y))
    x, y, ids = x[has], y[has], ok["case_id"].to_numpy()[has]
    if not len(x):
        raise ValueError(f"no OK case has both {xcol} and {ecol}")
    front = pareto_front(x, y, higher)
    front = front[np.argsort(x[front])]
    fig = _figure(7.5, 4.5)
    ax = fig.subplots()
    ax.scatter(x, y, s=14, color="#9aa5b1", label="cases", rasterized=len(x) > 5000)
    ax.plot(x[front], y[front], "-o", color="#d62728", markersize=5, label="Pareto front")
    if len(front) <= 15:
        for i in front:
            ax.annotate(str(ids[i]), (x[i], y[i]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xlabel(xcol + (" (higher is better)" if higher else " (lower is better)"))
    ax.set_ylabel(ecol + " (lower is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    caption = (f"{len(x)} OK cases; {len(front)} on the front: "
               + ", ".join(str(ids[i]) for i in front[:20])
               + (" …" if len(front) > 20 else ""))
    return _png(fig), caption


def throttled_spans(t: Sequence[float], flags: Sequence[bool]) -> list[tuple[float, float]]:
    """Stretches [start, end) where consecutive samples are throttled; a stretch ends at
    the next sample's time (the last one at its own time)."""
    spans = []
    start = None
    for i, f in enumerate(flags):
        if f and start is None:
            start = t[i]
        elif not f and start is not None:
            spans.append((start, t[i]))
            start = None
    if start is not None:
        spans.append((start, t[-1]))
    return spans


def plot_timeseries(doc: dict[str, Any]) -> str:
    """Power (left axis) and temperature (right axis) of one case per GPU, throttled
    stretches shaded. A PNG data URI."""
    mask = _throttle_mask()
    fig = _figure(7.5, 2.4)
    ax = fig.subplots()
    ax2 = ax.twinx()
    samples = doc.get("samples") or []
    for g in sorted({s.get("g", 0) for s in samples}):
        ss = [s for s in samples if s.get("g", 0) == g]
        t = [s["t"] for s in ss]
        label = f"GPU {g}"
        ax.plot(t, [s.get("p", np.nan) for s in ss], color="#1f77b4", lw=1.2,
                label=f"{label} power W")
        ax2.plot(t, [s.get("temp_c", np.nan) for s in ss], color="#ff7f0e", lw=1.0, ls="--",
                 label=f"{label} temp °C")
        for a, b in throttled_spans(t, [bool((s.get("throttle") or 0) & mask) for s in ss]):
            ax.axvspan(a, b, color="#d62728", alpha=0.18, lw=0)
    ax.set_xlabel("s since the first sample")
    ax.set_ylabel("power W")
    ax2.set_ylabel("temperature °C")
    ax.set_title(str(doc.get("case_id", "")), fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


def _timeseries_files(src: RunInput, limit: int) -> tuple[list[Path], int]:
    """Up to ``limit`` time-series files of the run's cases, in row order, and how many
    cases have one. A row's ``timeseries_path`` is relative to the metrics file's folder;
    without one, ``<run dir>/timeseries/<case_id>.json``."""
    df = src.df
    rels = df["timeseries_path"].tolist() if "timeseries_path" in df.columns else [""] * len(df)
    found: list[Path] = []
    total = 0
    for cid, rel in zip(df["case_id"].tolist(), rels, strict=True):
        p = None
        if rel:
            p = src.metrics_path.parent / rel
        elif src.run_dir is not None:
            p = src.run_dir / "timeseries" / f"{cid}.json"
        if p is not None and p.is_file():
            total += 1
            if len(found) < limit:
                found.append(p)
    return found, total


# --- HTML -----------------------------------------------------------------------------------

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
    parts.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in _headline(r)) + "</ul>")
    for title, _body in _sections(r, markdown=False):
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
        parts.append('<p class="note">no energy column (energy_adjusted_j / energy_raw_j): '
                     "run with GPU telemetry to see the trade-off</p>")
    else:
        try:
            uri, caption = plot_pareto(df, r.energy_col)
            parts.append(_img(uri, "Pareto front") + f"<p>{_e(caption)}</p>")
        except ValueError as e:
            parts.append(f'<p class="note">no Pareto front: {_e(e)}</p>')

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
    files, total = _timeseries_files(r.source, TIMESERIES_CAP)
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


def write_html(r: Report, path: str | Path) -> None:
    """Write the HTML report atomically. Raises ``OSError`` when it cannot be written."""
    text = render_html(r)
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
