"""The report's plots, drawn with matplotlib's Agg canvas through ``matplotlib.figure`` (no
pyplot global state; matplotlib imported when a plot is drawn), each returned as a PNG
``data:`` URI for a self-contained HTML page."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from doerunner.analysis.effects import EffectsTable
from doerunner.analysis.metrics import numeric
from doerunner.outputs.tables import fmt_number
from doerunner.telemetry.throttle import THROTTLE_MASK


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
        effect = fmt_number(f.effect, t.response)
        ax.set_title(f"{f.factor.removeprefix('param_')} (effect {effect})", fontsize=9)
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
    mask = THROTTLE_MASK
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




# What a case cost the host (FORMAT.md §3, "Host columns"), with the unit shown on the plot.
HOST_PLOTTED = (("cpu_util", "CPU (% of one core)"), ("mem_peak_mb", "peak RSS (MiB)"),
                ("threads_active", "threads"), ("disk_io_mb", "disk I/O (MiB)"),
                ("network_io_mb", "network, host-wide (MiB)"), ("cpu_energy_j", "CPU energy (J)"),
                ("dram_energy_j", "DRAM energy (J)"))


def host_columns_that_vary(df: pd.DataFrame) -> list[tuple[str, str]]:
    """The host columns whose values differ between the OK rows: (column, label)."""
    ok = df["status"] == "OK" if "status" in df.columns else pd.Series(True, index=df.index)
    out = []
    for column, label in HOST_PLOTTED:
        if column in df.columns:
            values = numeric(df[ok], column).dropna()
            if values.nunique() > 1:
                out.append((column, label))
    return out


def plot_host(df: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> str:
    """One panel per host column that varies: each OK case's value, in row order (case ids
    on the axis for up to 40 cases). A PNG data URI."""
    ok = df[df["status"] == "OK"] if "status" in df.columns else df
    n = len(columns)
    fig = _figure(min(3.2 * n, 12.0), 2.8 * math.ceil(n / 4))
    axes = fig.subplots(math.ceil(n / 4), min(n, 4), squeeze=False)
    x = np.arange(len(ok))
    for ax, (column, label) in zip(axes.flat, columns, strict=False):
        ax.plot(x, numeric(ok, column).to_numpy(), marker="o", linestyle="", color="#1f77b4")
        ax.set_title(label, fontsize=9)
        if len(ok) <= 40:
            ax.set_xticks(x, ok["case_id"].tolist(), rotation=90, fontsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return _png(fig)
