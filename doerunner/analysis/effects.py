"""After the run: which parameter matters (main effects) and what changed between two runs
(compare). Both read metrics.csv files with pandas (SPEC §3) and never write anything;
``render_effects`` / ``render_compare`` turn a result into a text or Markdown table.

Only OK rows count: the metrics of a FAIL or TIMEOUT row describe the failure, not the
configuration. Errors are ``InputError`` (exit 4 in the CLI).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from doerunner.cells import round_half_away
from doerunner.columns import decimals_for
from doerunner.errors import InputError

# --- reading -------------------------------------------------------------------------------


def read_metrics(path: str | Path) -> pd.DataFrame:
    """A metrics.csv as a DataFrame of strings (missing = ``""``), one row per case.

    Raises ``InputError`` when the file is missing, unreadable or has no ``case_id``.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file" if not p.exists() else f"{path}: not a file")
    try:
        # object, not pandas 3's arrow strings: row-wise access is 5x faster at 100k rows.
        df = pd.read_csv(p, dtype=object, keep_default_na=False, na_filter=False,
                         encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file, not a metrics.csv") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{path}: cannot be read as CSV: {first}") from None
    if "case_id" not in df.columns:
        raise InputError(f"{path}: no case_id column, not a metrics.csv")
    return df


def numeric(df: pd.DataFrame, column: str) -> pd.Series:
    """``df[column]`` as floats; empty, non-numeric and infinite cells are NaN."""
    v = pd.to_numeric(df[column], errors="coerce").astype(float)
    return v.where(np.isfinite(v))


def _ok(df: pd.DataFrame) -> pd.Series:
    if "status" not in df.columns:
        return pd.Series(True, index=df.index)
    return df["status"].astype(str) == "OK"


def _has_values(df: pd.DataFrame, column: str) -> bool:
    return column in df.columns and bool(numeric(df, column).notna().any())


def spread_column(metric: str) -> str:
    """The column holding the spread over repetitions of ``metric``: ``run_seconds_std``
    for ``run_seconds``, else ``<metric>_std``."""
    return "run_seconds_std" if metric == "run_seconds" else f"{metric}_std"


# --- main effects ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelStats:
    """The response at one level of a factor, over the OK rows that have a value.

    ``std``: sample standard deviation (ddof=1) of the response across those rows, NaN
    with fewer than 2 rows. ``pooled_std``: the repetition spread of the rows pooled,
    sqrt(Σ(runs−1)·s² / Σ(runs−1)) with ``s`` = the ``run_seconds_std`` (for
    ``run_seconds``) or ``<response>_std`` column; weights 1 when ``runs`` is absent; NaN
    when no row has one.
    """

    level: str
    n: int
    mean: float
    std: float
    pooled_std: float


@dataclass(frozen=True)
class FactorEffect:
    """One factor: its levels in order and the effect size max(mean) − min(mean)."""

    factor: str
    effect: float
    levels: tuple[LevelStats, ...]


@dataclass(frozen=True)
class EffectsTable:
    """The main effects on ``response``, ranked by effect size (largest first)."""

    response: str
    rows_used: int
    rows_total: int
    factors: tuple[FactorEffect, ...]

    @property
    def has_spread(self) -> bool:
        """True when some level has two rows or more (so ``std`` means something)."""
        return any(lv.n >= 2 for f in self.factors for lv in f.levels)

    @property
    def has_pooled(self) -> bool:
        """True when the rows carry a repetition spread of the response."""
        return any(not math.isnan(lv.pooled_std) for f in self.factors for lv in f.levels)

    def to_frame(self) -> pd.DataFrame:
        """One row per (factor, level): rank, factor, level, n, mean, std, pooled_std,
        effect."""
        return pd.DataFrame(
            [(rank, f.factor, lv.level, lv.n, lv.mean, lv.std, lv.pooled_std, f.effect)
             for rank, f in enumerate(self.factors, 1) for lv in f.levels],
            columns=["rank", "factor", "level", "n", "mean", "std", "pooled_std", "effect"])


def default_response(df: pd.DataFrame) -> str:
    """``p95`` when an OK row has a value of it, else ``run_seconds``."""
    return "p95" if _has_values(df[_ok(df)], "p95") else "run_seconds"


def main_effects(df: pd.DataFrame, response: str | None = None,
                 factors: Sequence[str] | None = None) -> EffectsTable:
    """The main effect of each factor on ``response`` (default: ``default_response``).

    Uses the OK rows with a value of ``response``. ``factors`` (names with or without the
    ``param_`` prefix) default to the ``param_*`` columns that take two levels or more in
    those rows. Per level: count, mean, spread (see ``LevelStats``); levels in numeric
    order when every level is a number, else in order of first appearance; a row with no
    value for a factor is left out of that factor. Effect = max(mean) − min(mean).

    Raises ``InputError`` for a response column that is not there, no OK rows, no value
    of the response, an unknown factor, or no factor with two levels.
    """
    ok = _ok(df)
    if not ok.any():
        raise InputError("no OK rows: nothing to analyse")
    response = response or default_response(df)
    if response not in df.columns:
        raise InputError(f"response {response!r} is not a column of the metrics file")
    y = numeric(df, response)
    used = ok & y.notna()
    if not used.any():
        raise InputError(f"no OK row has a value of {response}")
    sub = df[used]
    y = y[used]
    weight = pd.Series(np.nan, index=sub.index)
    weighted_var = pd.Series(np.nan, index=sub.index)
    if spread_column(response) in sub.columns:
        s = numeric(sub, spread_column(response))
        w = numeric(sub, "runs") - 1 if "runs" in sub.columns else pd.Series(1.0, sub.index)
        w = w.where(s.notna() & (w > 0))
        weight, weighted_var = w, w * s * s

    names = _resolve_factors(sub, factors)
    effects = []
    for name in names:
        key = sub[name].astype(str).where(sub[name].notna(), "")
        has = key != ""
        g = pd.DataFrame({"key": key[has], "y": y[has], "w": weight[has],
                          "wv": weighted_var[has]}).groupby("key", sort=False)
        stats = g.agg(n=("y", "size"), mu=("y", "mean"), sd=("y", "std"),
                      w=("w", "sum"), wv=("wv", "sum"))
        levels = [LevelStats(str(r.Index), int(r.n), float(r.mu), float(r.sd),
                             math.sqrt(r.wv / r.w) if r.w > 0 else math.nan)
                  for r in stats.itertuples()]
        levels = _ordered(levels)
        means = [lv.mean for lv in levels]
        effects.append(FactorEffect(name, max(means) - min(means) if means else math.nan,
                                    tuple(levels)))
    effects.sort(key=lambda f: -f.effect if not math.isnan(f.effect) else math.inf)
    return EffectsTable(response, int(used.sum()), len(df), tuple(effects))


def _resolve_factors(sub: pd.DataFrame, factors: Sequence[str] | None) -> list[str]:
    if not factors:
        names = [c for c in sub.columns if c.startswith("param_")
                 and sub[c].replace("", np.nan).nunique(dropna=True) >= 2]
        if not names:
            raise InputError("no parameter takes two or more levels in the OK rows: "
                             "no effect to show")
        return names
    names, unknown = [], []
    for f in factors:
        name = f if f in sub.columns else f"param_{f}"
        if name in sub.columns:
            if name not in names:
                names.append(name)
        else:
            unknown.append(f)
    if unknown:
        known = ", ".join(c for c in sub.columns if c.startswith("param_")) or "none"
        raise InputError(f"unknown factor {', '.join(unknown)} (parameters: {known})")
    return names


def _ordered(levels: list[LevelStats]) -> list[LevelStats]:
    try:
        values = [float(lv.level) for lv in levels]
    except ValueError:
        return levels  # as first seen
    return [lv for _, lv in sorted(zip(values, levels, strict=True), key=lambda t: t[0])]


# --- compare --------------------------------------------------------------------------------

LOWER = "lower"
HIGHER = "higher"
# Rates first: ``tokens_per_s`` ends in ``_s`` but is higher-is-better.
_HIGHER_IS_BETTER = re.compile(r"throughput_.*|tokens_per_s|.*_rps|.*_per_s")
_LOWER_IS_BETTER = re.compile(
    r"p[0-9]+|(?:latency|ttft|tpot|energy|gpu_power)_.*|run_seconds.*"
    r"|.*_(?:s|sec|seconds|j|mb)|errors")
# A change at exactly --max-regression is not "more than" it: allow for float rounding.
_EPS = 1e-9
VERDICTS = ("ok", "improved", "REGRESSION", "within noise", "missing")


def metric_direction(name: str) -> str | None:
    """``"lower"`` or ``"higher"`` (which is better) for a metric name, ``None`` when the
    name says nothing: lower for times, latencies, energy, memory and errors (``p<N>``,
    ``latency_*``, ``ttft_*``, ``tpot_*``, ``run_seconds*``, ``*_s``, ``*_sec``,
    ``*_seconds``, ``energy_*``, ``*_j``, ``*_mb``, ``errors``, ``gpu_power_*``), higher
    for rates (``throughput_*``, ``tokens_per_s``, ``*_rps``, ``*_per_s``)."""
    if _HIGHER_IS_BETTER.fullmatch(name):
        return HIGHER
    if _LOWER_IS_BETTER.fullmatch(name):
        return LOWER
    return None


def parse_ratio(text: str) -> float:
    """``"5%"`` or ``"0.05"`` → 0.05. A bare number above 1 is refused (``5`` would mean
    500 %). Raises ``InputError``."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise InputError(f"{text!r} is not a ratio like 5% or 0.05") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{text!r}: the ratio must be a number >= 0, like 5% or 0.05")
    if not t.endswith("%") and value > 1:
        raise InputError(f"{text!r} would be {value:.0%}; write {t}% or {value / 100:g}")
    return value


@dataclass(frozen=True)
class CompareResult:
    """What changed from a base run to a new one.

    ``table``: one row per (case, metric), cases in base order then the new-only ones:
    ``case_id, metric, direction, base, new, change`` (relative, (new − base)/|base|),
    ``noise`` (2·sqrt(std_base² + std_new²), NaN without a spread), ``verdict`` (one of
    ``VERDICTS``) and ``note`` (why a value is missing, how the noise decided).
    """

    table: pd.DataFrame
    metrics: tuple[tuple[str, str], ...]
    max_regression: float
    common: int
    only_base: tuple[str, ...] = field(default=())
    only_new: tuple[str, ...] = field(default=())

    def count(self, verdict: str) -> int:
        """How many (case, metric) rows have ``verdict``."""
        return int((self.table["verdict"] == verdict).sum())

    @property
    def has_regression(self) -> bool:
        """True when some metric of some case regressed (what CI gates on)."""
        return self.count("REGRESSION") > 0


def compare(base: pd.DataFrame, new: pd.DataFrame, metrics: Sequence[str] | None = None,
            max_regression: float = 0.05, *, base_name: str = "base",
            new_name: str = "new") -> CompareResult:
    """Compare the metrics of the cases two metrics.csv files share, matched by case_id.

    ``metrics``: names, each optionally suffixed ``:lower`` or ``:higher`` to say which
    is better when ``metric_direction`` cannot tell; default ``p95`` and ``run_seconds``,
    those that have values. Only OK rows' values count; others are ``missing``.

    Verdicts, with change = (new − base)/|base|:

    * ``missing``: the case is in one file only, or a side has no value;
    * a change worse than ``max_regression`` (bad direction, strictly more than it) is a
      ``REGRESSION`` — unless either file has a repetition spread for the metric
      (``run_seconds_std`` for ``run_seconds``, else a ``<metric>_std`` column) and
      |new − base| <= 2·sqrt(std_base² + std_new²) (a missing std counts as 0): then it
      is ``within noise``;
    * a change better than ``max_regression`` is ``improved``, or ``within noise`` under
      the same noise test;
    * anything smaller is ``ok``.

    Raises ``InputError`` for a duplicate case_id, a metric in neither file, a metric of
    unknown direction, a negative ``max_regression`` or no case in common.
    """
    if not (max_regression >= 0 and math.isfinite(max_regression)):
        raise InputError(f"max regression must be >= 0, not {max_regression!r}")
    for df, name in ((base, base_name), (new, new_name)):
        dup = df["case_id"][df["case_id"].duplicated()]
        if len(dup):
            raise InputError(f"{name}: case_id {dup.iloc[0]!r} appears more than once")
    specs = _metric_specs(base, new, metrics)
    base_ids = base["case_id"].astype(str)
    new_ids = new["case_id"].astype(str)
    in_new = base_ids.isin(set(new_ids))
    in_base = new_ids.isin(set(base_ids))
    if not in_new.any():
        raise InputError(f"{base_name} and {new_name} have no case_id in common")
    ids = pd.Index(list(base_ids) + list(new_ids[~in_base]))
    b = base.set_index(base_ids)
    n = new.set_index(new_ids)
    frames = [_compare_metric(b, n, ids, m, d, max_regression, base_name, new_name)
              for m, d in specs]
    table = pd.concat(frames, ignore_index=True)
    order = np.tile(np.arange(len(ids)), len(frames)) * len(frames) + np.repeat(
        np.arange(len(frames)), len(ids))
    table = table.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    return CompareResult(table, tuple(specs), max_regression, int(in_new.sum()),
                         tuple(base_ids[~in_new]), tuple(new_ids[~in_base]))


def _metric_specs(base: pd.DataFrame, new: pd.DataFrame,
                  metrics: Sequence[str] | None) -> list[tuple[str, str]]:
    if not metrics:
        metrics = [m for m in ("p95", "run_seconds")
                   if _has_values(base, m) or _has_values(new, m)]
        if not metrics:
            raise InputError("neither p95 nor run_seconds has values: choose metrics with "
                             "--metric")
    specs: list[tuple[str, str]] = []
    for text in metrics:
        name, _, said = text.partition(":")
        if said not in ("", LOWER, HIGHER):
            raise InputError(f"metric {text!r}: write NAME, NAME:lower or NAME:higher")
        if name not in base.columns and name not in new.columns:
            raise InputError(f"metric {name!r} is in neither file")
        direction = said or metric_direction(name)
        if direction is None:
            raise InputError(f"which way is better for {name!r} is unknown: write "
                             f"{name}:lower or {name}:higher")
        if all(name != m for m, _ in specs):
            specs.append((name, direction))
    return specs


def _side(df: pd.DataFrame, ids: pd.Index, metric: str) -> tuple[pd.Series, pd.Series,
                                                                  pd.Series, pd.Series]:
    """Values (OK rows only), spreads, presence and status of ``metric`` for ``ids``."""
    present = pd.Series(ids.isin(df.index), index=ids)
    status = (df["status"].astype(str) if "status" in df.columns
              else pd.Series("OK", index=df.index)).reindex(ids).fillna("")
    if metric in df.columns:
        value = numeric(df, metric).reindex(ids).where(status == "OK")
    else:
        value = pd.Series(np.nan, index=ids)
    spread = spread_column(metric)
    std = (numeric(df, spread).reindex(ids) if spread in df.columns
           else pd.Series(np.nan, index=ids))
    return value, std.where(status == "OK"), present, status


def _compare_metric(b: pd.DataFrame, n: pd.DataFrame, ids: pd.Index, metric: str,
                    direction: str, tol: float, base_name: str,
                    new_name: str) -> pd.DataFrame:
    bv, bs, b_in, b_status = _side(b, ids, metric)
    nv, ns, n_in, n_status = _side(n, ids, metric)
    delta = nv - bv
    with np.errstate(divide="ignore", invalid="ignore"):
        change = delta / bv.abs()
    change = change.where(~((delta == 0) & (bv == 0)), 0.0)
    worse = change > tol + _EPS if direction == LOWER else change < -tol - _EPS
    better = change < -tol - _EPS if direction == LOWER else change > tol + _EPS
    noise_known = bs.notna() | ns.notna()
    noise = (2 * np.sqrt(bs.fillna(0) ** 2 + ns.fillna(0) ** 2)).where(noise_known)
    beyond = ~noise_known | (delta.abs() > noise)
    missing = bv.isna() | nv.isna()
    verdict = np.select([missing, worse & beyond, better & beyond, worse | better],
                        ["missing", "REGRESSION", "improved", "within noise"], "ok")
    note = np.select(
        [~b_in, ~n_in, b_status != "OK", n_status != "OK", bv.isna(), nv.isna()],
        [f"only in {new_name}", f"only in {base_name}", f"{base_name}: " + b_status,
         f"{new_name}: " + n_status, f"no value in {base_name}", f"no value in {new_name}"],
        "")
    note = pd.Series(note, index=ids)
    noisy = noise_known.to_numpy() & np.isin(verdict, ("REGRESSION", "improved", "within noise"))
    if noisy.any():
        dfmt = _fmt_series(delta.abs()[noisy], metric)
        nfmt = _fmt_series(noise[noisy], metric)
        op = np.where(verdict[noisy] == "within noise", " <= noise ", " > noise ")
        note[noisy] = "diff " + dfmt + op + nfmt
    return pd.DataFrame({
        "case_id": ids, "metric": metric, "direction": direction,
        "base": bv.to_numpy(), "new": nv.to_numpy(), "change": change.to_numpy(),
        "noise": noise.to_numpy(), "verdict": verdict, "note": note.to_numpy()})


# --- rendering -------------------------------------------------------------------------------


def _fmt(value: float, metric: str) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return round_half_away(value, decimals_for(metric))


def _fmt_series(values: pd.Series, metric: str) -> pd.Series:
    return values.map(lambda v: _fmt(v, metric))


def _fmt_list(values: Sequence[float], metric: str) -> list[str]:
    places = decimals_for(metric)
    return [round_half_away(v, places) if math.isfinite(v) else "" for v in values]


def _pct(change: float) -> str:
    if math.isnan(change):
        return ""
    if math.isinf(change):
        return "+inf%" if change > 0 else "-inf%"
    text = round_half_away(change * 100, 2)
    return text + "%" if text.startswith("-") else "+" + text + "%"


def render_table(headers: Sequence[str], columns: Sequence[Sequence[str]],
                 right: Sequence[bool], markdown: bool = False) -> str:
    """Aligned plain-text columns, or a GitHub-flavoured Markdown table. ``columns`` holds
    the cells column by column; ``right`` says which columns are right-aligned (numbers)."""
    if markdown:
        def cell(s: str) -> str:
            return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

        cols = [[cell(c) for c in col] for col in columns]
        lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
                 "|" + "|".join("---:" if r else "---" for r in right) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in zip(*cols, strict=True)]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), max(map(len, col), default=0))
              for h, col in zip(headers, columns, strict=True)]
    padded = [[c.rjust(w) for c in col] if r else [c.ljust(w) for c in col]
              for col, w, r in zip(columns, widths, right, strict=True)]
    head = [[h.rjust(w) if r else h.ljust(w)]
            for h, w, r in zip(headers, widths, right, strict=True)]
    rule = [["-" * w] for w in widths]
    lines = ["  ".join(cells).rstrip()
             for part in (head, rule, padded) for cells in zip(*part, strict=True)]
    return "\n".join(lines) + "\n"


def render_effects(table: EffectsTable, markdown: bool = False) -> str:
    """The effects table: a title line, then one line per level; rank, factor and effect
    on the first line of each factor. Numbers with the response's decimals (SPEC §3)."""
    r = table.response
    headers = ["rank", "factor", "level", "n", "mean"]
    if table.has_spread:
        headers.append("std")
    if table.has_pooled:
        headers.append("pooled_std")
    headers.append("effect")
    rows = []
    for rank, f in enumerate(table.factors, 1):
        for i, lv in enumerate(f.levels):
            row = [str(rank) if i == 0 else "", f.factor if i == 0 else "", lv.level,
                   str(lv.n), _fmt(lv.mean, r)]
            if table.has_spread:
                row.append(_fmt(lv.std, r))
            if table.has_pooled:
                row.append(_fmt(lv.pooled_std, r))
            row.append(_fmt(f.effect, r) if i == 0 else "")
            rows.append(row)
    right = [h in ("rank", "n", "mean", "std", "pooled_std", "effect") for h in headers]
    title = (f"Main effects on {r}: {table.rows_used} OK rows with a value, of "
             f"{table.rows_total}; effect = max - min of the level means")
    if table.has_pooled:
        title += f"; pooled_std = pooled {spread_column(r)} of the level's rows"
    sep = "\n\n" if markdown else "\n"
    columns = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in headers]
    return title + sep + render_table(headers, columns, right, markdown)


def render_compare(result: CompareResult, markdown: bool = False) -> str:
    """The compare table (case_id, metric, base, new, change, verdict, note) and a
    summary line of the verdict counts."""
    t = result.table
    metric = t["metric"].tolist()
    base, new = t["base"].tolist(), t["new"].tolist()
    names = list(dict.fromkeys(metric))
    if len(names) == 1:  # one metric: format each column in one pass
        base_s, new_s = _fmt_list(base, names[0]), _fmt_list(new, names[0])
    else:
        base_s = [_fmt(v, m) for v, m in zip(base, metric, strict=True)]
        new_s = [_fmt(v, m) for v, m in zip(new, metric, strict=True)]
    columns = [t["case_id"].tolist(), metric, base_s, new_s,
               [_pct(c) for c in t["change"].tolist()], t["verdict"].tolist(),
               t["note"].tolist()]
    headers = ["case_id", "metric", "base", "new", "change", "verdict", "note"]
    right = [False, False, True, True, True, False, False]
    summary = (f"{result.common} cases in both files; {result.count('REGRESSION')} "
               f"regression(s), {result.count('improved')} improved, "
               f"{result.count('within noise')} within noise, {result.count('missing')} "
               f"missing; max regression {result.max_regression * 100:g}%")
    for label, ids in (("only in base", result.only_base), ("only in new", result.only_new)):
        if ids:
            more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
            summary += f"\n{label}: {', '.join(ids[:10])}{more}"
    sep = "\n" if markdown else ""
    return render_table(headers, columns, right, markdown) + sep + summary + "\n"
