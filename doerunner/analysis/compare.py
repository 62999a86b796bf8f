"""What changed between two runs: each metric of the cases two metrics.csv files share,
with a verdict. ``outputs.compare_table`` turns a ``CompareResult`` into text or Markdown.
Errors are ``InputError`` (exit 4 in the CLI)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from doerunner.analysis.metrics import has_values, numeric, spread_column
from doerunner.errors import InputError
from doerunner.outputs.tables import fmt_number

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
                   if has_values(base, m) or has_values(new, m)]
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




def _fmt_series(values: pd.Series, metric: str) -> pd.Series:
    return values.map(lambda v: fmt_number(v, metric))
