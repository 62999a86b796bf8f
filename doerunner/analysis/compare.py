"""What changed between two runs: each metric of the cases two metrics.csv files share,
with a verdict that a CI can gate on. Rows are paired by ``analysis.pairing``; a change
beyond the tolerance is put through ``analysis.significance`` when both runs kept their
repetitions. ``outputs.compare_table`` turns a ``CompareResult`` into text or Markdown.
Errors are ``InputError`` (exit 4 in the CLI)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from doerunner.analysis.metrics import has_values, numeric, spread_column
from doerunner.analysis.pairing import BY_ID, Pairing, pair_rows
from doerunner.analysis.significance import DEFAULT_ALPHA, Samples, significance
from doerunner.errors import InputError
from doerunner.outputs.tables import fmt_number
from doerunner.repstats import MAD_TO_STD

LOWER = "lower"
HIGHER = "higher"
# Rates first: ``tokens_per_s`` ends in ``_s`` but is higher-is-better.
_HIGHER_IS_BETTER = re.compile(r"throughput_.*|tokens_per_s|.*_rps|.*_per_s")
_LOWER_IS_BETTER = re.compile(
    r"p[0-9]+|(?:latency|ttft|tpot|energy|gpu_power)_.*|run_seconds.*"
    r"|.*_(?:s|sec|seconds|j|mb)|errors")
# A change at exactly --max-regression is not "more than" it: allow for float rounding.
_EPS = 1e-9
NOISY = "noisy: cannot tell"
VERDICTS = ("ok", "improved", "REGRESSION", NOISY, "missing", "new", "BROKEN", "MISMATCH")
_GONE = "\x00"  # the index label of a side a row does not have


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
    ``noise`` (2·sqrt(std_base² + std_new²), NaN without a spread), ``p`` (the test's p,
    NaN when not tested), ``verdict`` (one of ``VERDICTS``) and ``note`` (why a value is
    missing, the test's figures). ``broken``: cases OK in base that are FAIL or TIMEOUT in
    new; ``gone``: cases OK in base that new does not have. ``tested``: both runs kept
    their repetitions.
    """

    table: pd.DataFrame
    metrics: tuple[tuple[str, str], ...]
    max_regression: float
    pairing: Pairing
    broken: tuple[str, ...] = field(default=())
    gone: tuple[str, ...] = field(default=())
    alpha: float = DEFAULT_ALPHA
    tested: bool = False

    @property
    def common(self) -> int:
        """How many cases are in both files."""
        return self.pairing.common

    @property
    def only_base(self) -> tuple[str, ...]:
        p = self.pairing
        return tuple(b for b, n in zip(p.base_ids, p.new_ids, strict=True)
                     if n is None and b is not None)

    @property
    def only_new(self) -> tuple[str, ...]:
        p = self.pairing
        return tuple(n for b, n in zip(p.base_ids, p.new_ids, strict=True)
                     if b is None and n is not None)

    def count(self, verdict: str) -> int:
        """How many (case, metric) rows have ``verdict``."""
        return int((self.table["verdict"] == verdict).sum())

    @property
    def has_regression(self) -> bool:
        """True when some metric of some case regressed."""
        return self.count("REGRESSION") > 0

    def exit_code(self, allow_missing: bool = False) -> int:
        """What a CI gates on (FORMAT.md §1, ``srd compare``): 4 when a pair was refused
        (the same case_id names different parameters), 3 when a case OK in base is FAIL or
        TIMEOUT in new, or absent from it (unless ``allow_missing``), 2 when a metric
        regressed, else 0."""
        if self.pairing.mismatched:
            return 4
        if self.broken or (self.gone and not allow_missing):
            return 3
        return 2 if self.has_regression else 0


def compare(base: pd.DataFrame, new: pd.DataFrame, metrics: Sequence[str] | None = None,
            max_regression: float = 0.05, *, base_name: str = "base",
            new_name: str = "new", match: str = BY_ID, base_samples: Samples | None = None,
            new_samples: Samples | None = None,
            alpha: float = DEFAULT_ALPHA) -> CompareResult:
    """Compare the metrics of the cases two metrics.csv files share.

    Rows pair by case_id, their parameters checked (``match="id"``), or by their
    parameters alone (``match="params"``): ``analysis.pairing``. ``metrics``: names, each
    optionally suffixed ``:lower`` or ``:higher`` to say which is better when
    ``metric_direction`` cannot tell; default ``p95`` and ``run_seconds``, those that have
    values. Only OK rows' values count.

    Verdicts, with change = (new − base)/|base| and the tolerance ``max_regression``:

    * ``MISMATCH``: the same case_id names different parameters (the pair is refused);
      ``BROKEN``: OK in base, FAIL or TIMEOUT in new; ``missing``: in base only, or a side
      has no value; ``new``: in new only;
    * a change within the tolerance (not strictly more than it) is ``ok``;
    * a change beyond it, worse or better, is a ``REGRESSION`` or ``improved`` only when it
      is also significant: with two repetitions or more a side in the samples (the runs'
      ``repetitions.csv``), the test of ``analysis.significance`` at level ``alpha``;
      without them, when either file has a repetition spread for the metric
      (``run_seconds_std`` for ``run_seconds``, else a ``<metric>_std`` column),
      |new − base| > 2·sqrt(std_base² + std_new²) (a missing std counts as 0); else it is
      ``noisy: cannot tell``, with the figures in the note. A change with neither samples
      nor spread is judged on the tolerance alone (the note says ``untested``).

    Raises ``InputError`` for a duplicate case_id, a metric in neither file, a metric of
    unknown direction, a negative ``max_regression``, nothing in common, or what
    ``pair_rows`` refuses.
    """
    if not (max_regression >= 0 and math.isfinite(max_regression)):
        raise InputError(f"max regression must be >= 0, not {max_regression!r}")
    if not 0 < alpha < 1:
        raise InputError(f"the significance level must be between 0 and 1, not {alpha!r}")
    pairing = pair_rows(base, new, match, base_name=base_name, new_name=new_name)
    specs = _metric_specs(base, new, metrics)
    b = base.set_index(base["case_id"].astype(str))
    n = new.set_index(new["case_id"].astype(str))
    b_ids = pd.Index([_GONE if i is None else i for i in pairing.base_ids])
    n_ids = pd.Index([_GONE if i is None else i for i in pairing.new_ids])
    b_status, n_status = _status(b, b_ids), _status(n, n_ids)
    judge = _Judge(max_regression, alpha, base_samples, new_samples, base_name, new_name)
    frames = [judge.metric(b, n, b_ids, n_ids, b_status, n_status, pairing, m, d)
              for m, d in specs]
    table = pd.concat(frames, ignore_index=True)
    rows = len(pairing.labels)
    order = np.tile(np.arange(rows), len(frames)) * len(frames) + np.repeat(
        np.arange(len(frames)), rows)
    table = table.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    base_ok = b_status == "OK"
    broken = tuple(pairing.labels[i] for i in np.flatnonzero(
        base_ok & np.isin(n_status, ("FAIL", "TIMEOUT"))))
    gone = tuple(pairing.base_ids[i] or "" for i in np.flatnonzero(
        base_ok & (n_ids == _GONE)))
    return CompareResult(table, tuple(specs), max_regression, pairing, broken, gone, alpha,
                         base_samples is not None and new_samples is not None)


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


def _status(df: pd.DataFrame, ids: pd.Index) -> np.ndarray:
    """The status of each row (``""`` for a side the row does not have)."""
    status = (df["status"].astype(str) if "status" in df.columns
              else pd.Series("OK", index=df.index))
    return status.reindex(ids).fillna("").to_numpy(dtype=object)


def _values(df: pd.DataFrame, ids: pd.Index, column: str, ok: np.ndarray) -> np.ndarray:
    if column not in df.columns:
        return np.full(len(ids), np.nan)
    return numeric(df, column).reindex(ids).where(ok).to_numpy(dtype=float)


def _spread(df: pd.DataFrame, ids: pd.Index, metric: str, ok: np.ndarray) -> np.ndarray:
    """The repetitions' standard deviation of ``metric`` per row: its std column, else
    1.4826 × its MAD column (the MAD's estimate of a normal sample's std), else NaN."""
    std = _values(df, ids, spread_column(metric), ok)
    mad = _values(df, ids, f"{metric}_mad", ok) * MAD_TO_STD
    return np.where(np.isnan(std), mad, std)


class _Judge:
    """The verdicts of one comparison, metric by metric."""

    def __init__(self, tol: float, alpha: float, base_samples: Samples | None,
                 new_samples: Samples | None, base_name: str, new_name: str) -> None:
        self.tol, self.alpha = tol, alpha
        self.samples = (base_samples or {}, new_samples or {})
        self.names = (base_name, new_name)

    def metric(self, b: pd.DataFrame, n: pd.DataFrame, b_ids: pd.Index, n_ids: pd.Index,
               b_status: np.ndarray, n_status: np.ndarray, pairing: Pairing, metric: str,
               direction: str) -> pd.DataFrame:
        base_name, new_name = self.names
        b_ok, n_ok = b_status == "OK", n_status == "OK"
        bv, nv = _values(b, b_ids, metric, b_ok), _values(n, n_ids, metric, n_ok)
        bs, ns = _spread(b, b_ids, metric, b_ok), _spread(n, n_ids, metric, n_ok)
        delta = nv - bv
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.where((delta == 0) & (bv == 0), 0.0, delta / np.abs(bv))
        tol = self.tol + _EPS
        worse = change > tol if direction == LOWER else change < -tol
        better = change < -tol if direction == LOWER else change > tol
        noise_known = ~np.isnan(bs) | ~np.isnan(ns)
        noise = np.where(noise_known, 2 * np.sqrt(np.nan_to_num(bs) ** 2
                                                  + np.nan_to_num(ns) ** 2), np.nan)
        rows = len(pairing.labels)
        verdict = np.where(worse, "REGRESSION", np.where(better, "improved", "ok")).astype(object)
        note = np.full(rows, "", dtype=object)
        p = np.full(rows, np.nan)
        for i in np.flatnonzero(worse | better):
            verdict[i], note[i], p[i] = self._judge(
                pairing.base_ids[i], pairing.new_ids[i], metric, verdict[i], abs(delta[i]),
                noise[i])
        gone_b, gone_n = b_ids == _GONE, n_ids == _GONE
        # (rows, verdict, note): a row takes the first that applies; a note of None is
        # the mismatch, of a status array "<side>: <status>".
        reasons: list[tuple[np.ndarray, str, str | np.ndarray | None]] = [
            (np.isin(np.arange(rows), list(pairing.mismatched)), "MISMATCH", None),
            (gone_n, "missing", f"only in {base_name}"),
            (gone_b, "new", f"only in {new_name}"),
            (b_ok & np.isin(n_status, ("FAIL", "TIMEOUT")), "BROKEN", n_status),
            (~b_ok, "missing", b_status),
            (~n_ok, "missing", n_status),
            (np.isnan(bv), "missing", f"no value in {base_name}"),
            (np.isnan(nv), "missing", f"no value in {new_name}"),
        ]
        decided = np.zeros(rows, dtype=bool)
        for mask, what, why in reasons:
            hit = mask & ~decided
            if not hit.any():
                continue
            verdict[hit] = what
            p[hit] = np.nan
            where = np.flatnonzero(hit)
            if why is None:  # a refused pair: no change between two different points
                note[hit] = [pairing.mismatched[i] for i in where]
                change[hit] = np.nan
            elif isinstance(why, str):
                note[hit] = why
            else:
                side = base_name if why is b_status else new_name
                note[hit] = [f"{side}: {why[i]}" for i in where]
            decided |= hit
        for i, old in pairing.renamed.items():
            note[i] = f"{base_name} id {old}" + (f"; {note[i]}" if note[i] else "")
        return pd.DataFrame({
            "case_id": pairing.labels, "metric": metric, "direction": direction,
            "base": bv, "new": nv, "change": change, "noise": noise, "p": p,
            "verdict": verdict, "note": note})

    def _judge(self, base_id: str | None, new_id: str | None, metric: str, verdict: str,
               diff: float, noise: float) -> tuple[str, str, float]:
        """A change beyond the tolerance: the verdict, its note and the test's p."""
        sb = self.samples[0].get((base_id or "", metric))
        sn = self.samples[1].get((new_id or "", metric))
        if sb is not None and sn is not None and len(sb) > 1 and len(sn) > 1:
            test = significance(sb, sn, self.alpha)
            spread = _cvs(sb, sn)
            if test.p < self.alpha:
                return verdict, test.describe(), test.p
            return NOISY, f"{test.describe()}: not significant at {self.alpha:g}{spread}", test.p
        if not math.isnan(noise):
            figures = f"diff {fmt_number(diff, metric)} %s noise {fmt_number(noise, metric)}"
            if diff > noise:
                return verdict, figures % ">", math.nan
            return NOISY, figures % "<=", math.nan
        return verdict, "untested: no repetitions to test", math.nan


def _cvs(base: np.ndarray, new: np.ndarray) -> str:
    """``; CV base 80%, new 4%`` for the sides whose CV is high, else ``""``."""
    from doerunner.repstats import HIGH_CV, cv

    shown = [f"{side} {c:.0%}" for side, c in (("base", cv(base)), ("new", cv(new)))
             if c > HIGH_CV]
    return "; CV " + ", ".join(shown) if shown else ""
