"""The report's plots, drawn with matplotlib's Agg canvas through ``matplotlib.figure`` (no
pyplot global state; matplotlib imported when a plot is drawn), each returned as a PNG
``data:`` URI for a self-contained HTML page (``*_figure`` gives the figure itself).

Two rules hold for every plot of values (time series aside: power and temperature over time
are read as a shape, on linear axes):

* log scale (``log_scale``) where the plotted values span decades: all of them positive and
  the largest at least ``LOG_SPAN`` (100) times the smallest; the axis label says
  "(log scale)";
* error bars (``error_bars``) are asymmetric where needed: the part below the point is cut
  at 0 when the quantity is never negative (every OK value of it >= 0), so that no bar
  shows a negative time, energy or rate."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Sequence
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


LOG_SPAN = 100.0
PLOT_LIMIT = 1e300
"""The largest magnitude a plot draws: near the float limit (±1.8e308) matplotlib's axis
arithmetic overflows. A value beyond it is left out of the plot (it stays in the tables)."""


def plottable(values: Iterable[float]) -> np.ndarray:
    """``values`` as floats, NaN where a plot cannot draw one (NaN, infinite, beyond
    ``PLOT_LIMIT``)."""
    v = np.array(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    v[~(np.abs(np.nan_to_num(v, nan=np.inf)) <= PLOT_LIMIT)] = np.nan
    return v


def log_scale(values: Iterable[float]) -> bool:
    """True when ``values`` (NaN and infinities ignored) call for a log axis: two values
    or more, all positive, the largest at least ``LOG_SPAN`` times the smallest."""
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v)]
    with np.errstate(over="ignore"):  # 1e300 / 1e-300 is inf: a log axis indeed
        return len(v) > 1 and bool((v > 0).all()) and v.max() / v.min() >= LOG_SPAN


def axis_label(label: str, log: bool) -> str:
    """``label``, with " (log scale)" on a log axis."""
    return f"{label} (log scale)" if log else label


def error_bars(means: Sequence[float], spreads: Sequence[float],
               nonnegative: bool) -> tuple[list[float], list[float]]:
    """(below, above): the length of each error bar under and over its point. A spread
    (NaN: none, 0) either side; under the point cut at 0 for a ``nonnegative`` quantity
    (the bar ends at 0, never below it)."""
    above = [0.0 if math.isnan(s) else float(s) for s in spreads]
    below = [min(s, max(m, 0.0)) if nonnegative else s for m, s in zip(means, above,
                                                                         strict=True)]
    return below, above


def effects_figure(t: EffectsTable, max_factors: int = 12, nonnegative: bool = False) -> Any:
    """One small panel per factor: the mean response per level, error bars = std across
    rows (the pooled repetition spread when rows have no spread), cut at 0 below for a
    ``nonnegative`` response (``error_bars``); a log axis per ``log_scale`` over every
    panel's means and the lower ends of their bars (the panels share it: a bar reaching 0
    or below has no end on a log axis, so the axis stays linear)."""
    factors = t.factors[:max_factors]
    n = len(factors)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = _figure(3.0 * cols, 2.6 * rows)
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
    panels = []
    for f in factors:
        means = list(plottable(lv.mean for lv in f.levels))
        spread = list(plottable(lv.std if not math.isnan(lv.std) else lv.pooled_std
                                for lv in f.levels))
        panels.append((f, means, *error_bars(means, spread, nonnegative)))
    log = log_scale([*(m for _, means, _, _ in panels for m in means),
                     *(m - b for _, means, below, _ in panels
                       for m, b in zip(means, below, strict=True))])
    for ax, (f, means, below, above) in zip(axes.flat, panels, strict=False):
        x = np.arange(len(f.levels))
        ax.errorbar(x, means, yerr=[below, above], marker="o", capsize=3, color="#1f77b4")
        ax.set_xticks(x, [lv.level for lv in f.levels], rotation=30 if len(x) > 4 else 0)
        effect = fmt_number(f.effect, t.response)
        ax.set_title(f"{f.factor.removeprefix('param_')} (effect {effect})", fontsize=9)
        ax.grid(alpha=0.3)
    if log:
        axes.flat[0].set_yscale("log", nonpositive="clip")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel(axis_label(t.response, log))
    return fig


def plot_effects(t: EffectsTable, max_factors: int = 12, nonnegative: bool = False) -> str:
    """``effects_figure`` as a PNG data URI."""
    return _png(effects_figure(t, max_factors, nonnegative))


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


# The Pareto plot's x axis: the first of these with a value; True: higher is better.
PARETO_AXES = {"p95": False, "run_seconds": False, "tokens_per_s": True,
               "throughput_rps": True}


def _pareto_axes(df: pd.DataFrame) -> tuple[str, bool] | None:
    ok = df[df["status"] == "OK"] if "status" in df.columns else df
    for col, higher in PARETO_AXES.items():
        if col in ok.columns and numeric(ok, col).notna().any():
            return col, higher
    return None


def pareto_figure(df: pd.DataFrame, ecol: str) -> tuple[Any, str]:
    """The Pareto front of ``ecol`` against latency (or throughput) over the OK cases, each
    axis logarithmic per ``log_scale``. Returns (figure, caption); raises ``ValueError``
    when there is nothing to plot."""
    axes = _pareto_axes(df)
    if axes is None:
        raise ValueError("no latency or throughput column with values")
    xcol, higher = axes
    ok = df[df["status"] == "OK"] if "status" in df.columns else df
    x, y = numeric(ok, xcol).to_numpy(), numeric(ok, ecol).to_numpy()
    both = int((~(np.isnan(x) | np.isnan(y))).sum())
    x, y = plottable(x), plottable(y)
    has = ~(np.isnan(x) | np.isnan(y))
    x, y, ids = x[has], y[has], ok["case_id"].to_numpy()[has]
    if not both:
        raise ValueError(f"no OK case has both {xcol} and {ecol}")
    if not len(x):
        raise ValueError(f"the values of {xcol} and {ecol} are too large to plot (beyond "
                         f"±{PLOT_LIMIT:g})")
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
    xlog, ylog = log_scale(x), log_scale(y)
    if xlog:
        ax.set_xscale("log")
    if ylog:
        ax.set_yscale("log")
    ax.set_xlabel(xcol + (" (higher is better" if higher else " (lower is better")
                  + (", log scale)" if xlog else ")"))
    ax.set_ylabel(ecol + " (lower is better" + (", log scale)" if ylog else ")"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    caption = (f"{len(x)} OK cases; {len(front)} on the front: "
               + ", ".join(str(ids[i]) for i in front[:20])
               + (" …" if len(front) > 20 else "")
               + (f" ({both - len(x)} with values beyond ±{PLOT_LIMIT:g} not plotted)"
                  if both > len(x) else ""))
    return fig, caption


def plot_pareto(df: pd.DataFrame, ecol: str) -> tuple[str, str]:
    """``pareto_figure`` as (PNG data URI, caption); raises ``ValueError`` as it does."""
    fig, caption = pareto_figure(df, ecol)
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
        ax.plot(t, plottable(s.get("p", np.nan) for s in ss), color="#1f77b4", lw=1.2,
                label=f"{label} power W")
        ax2.plot(t, plottable(s.get("temp_c", np.nan) for s in ss), color="#ff7f0e", lw=1.0,
                 ls="--", label=f"{label} temp °C")
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


def host_figure(df: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> Any:
    """One panel per host column that varies: each OK case's value, in row order (case ids
    on the axis for up to 40 cases); a panel's axis logarithmic per ``log_scale``."""
    ok = df[df["status"] == "OK"] if "status" in df.columns else df
    n = len(columns)
    fig = _figure(min(3.2 * n, 12.0), 2.8 * math.ceil(n / 4))
    axes = fig.subplots(math.ceil(n / 4), min(n, 4), squeeze=False)
    x = np.arange(len(ok))
    for ax, (column, label) in zip(axes.flat, columns, strict=False):
        values = plottable(numeric(ok, column).to_numpy())
        ax.plot(x, values, marker="o", linestyle="", color="#1f77b4")
        ax.set_title(label, fontsize=9)
        if log_scale(values):
            ax.set_yscale("log")
            ax.set_ylabel("log scale", fontsize=8)
        if len(ok) <= 40:
            ax.set_xticks(x, ok["case_id"].tolist(), rotation=90, fontsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig


def plot_host(df: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> str:
    """``host_figure`` as a PNG data URI."""
    return _png(host_figure(df, columns))
