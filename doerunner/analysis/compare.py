"""What changed between two runs: each metric of the cases two metrics.csv files share,
with a verdict that a CI can gate on. Rows are paired by ``analysis.pairing``; a change
beyond the tolerance is put through ``analysis.significance`` when both runs kept their
repetitions. ``outputs.compare_table`` turns a ``CompareResult`` into text or Markdown.
Errors are ``InputError`` (exit 4 in the CLI)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from doerunner.analysis.metrics import has_values, spread_column
from doerunner.analysis.pairing import BY_ID, Pairing, pair_rows
from doerunner.analysis.significance import DEFAULT_ALPHA, Repetitions
from doerunner.analysis.verdicts import FAILED, GONE, HIGHER, LOWER, NOISY, VERDICTS, Judge
from doerunner.errors import InputError
from doerunner.results import OK

__all__ = ["HIGHER", "LOWER", "NOISY", "VERDICTS", "CompareResult", "compare",
           "metric_direction", "parse_ratio"]
# Rates first: ``tokens_per_s`` ends in ``_s`` but is higher-is-better.
_HIGHER_IS_BETTER = re.compile(r"throughput_.*|tokens_per_s|.*_rps|.*_per_s")
_LOWER_IS_BETTER = re.compile(
    r"p[0-9]+|(?:latency|ttft|tpot|energy|gpu_power)_.*|run_seconds.*"
    r"|.*_(?:s|sec|seconds|j|mb)|errors")


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
    new, and new cases that are; ``gone``: cases OK in base that new does not have;
    ``lost``: ``case_id:metric`` of values base had and new (OK too) has not. ``tested``:
    both runs kept their repetitions; ``notes``: why repetitions were not used.
    """

    table: pd.DataFrame
    metrics: tuple[tuple[str, str], ...]
    max_regression: float
    pairing: Pairing
    broken: tuple[str, ...] = field(default=())
    gone: tuple[str, ...] = field(default=())
    lost: tuple[str, ...] = field(default=())
    alpha: float = DEFAULT_ALPHA
    tested: bool = False
    allow_missing: bool = False

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

    def exit_code(self) -> int:
        """What a CI gates on (FORMAT.md §1, ``srd compare``): 4 when a pair was refused
        (the same case_id names different parameters), 3 when a case OK in base is FAIL or
        TIMEOUT in new (or a new case is), or a case or a value of base is missing from new
        (unless ``allow_missing``), 2 when a metric regressed, else 0."""
        if self.pairing.mismatched:
            return 4
        if self.broken or ((self.gone or self.lost) and not self.allow_missing):
            return 3
        return 2 if self.has_regression else 0


def compare(base: pd.DataFrame, new: pd.DataFrame, metrics: Sequence[str] | None = None,
            max_regression: float = 0.05, *, base_name: str = "base",
            new_name: str = "new", match: str = BY_ID, base_reps: Repetitions | None = None,
            new_reps: Repetitions | None = None, alpha: float = DEFAULT_ALPHA,
            allow_missing: bool = False) -> CompareResult:
    """Compare the metrics of the cases two metrics.csv files share.

    Rows pair by case_id, their parameters checked (``match="id"``), or by their
    parameters alone (``match="params"``): ``analysis.pairing``. ``metrics``: names, each
    optionally suffixed ``:lower`` or ``:higher`` to say which is better when
    ``metric_direction`` cannot tell; default ``p95`` and ``run_seconds``, those that have
    values. Only OK rows' values count. ``base_reps``/``new_reps``: the runs' repetitions.

    Verdicts, with change = (new − base)/|base| and the tolerance ``max_regression``:

    * ``MISMATCH``: the same case_id names different parameters (the pair is refused);
      ``BROKEN``: OK in base, FAIL or TIMEOUT in new; ``missing``: in base only, or a side
      has no value; ``new``: in new only (its status in the note when not OK);
    * a change within the tolerance (not strictly more than it) is ``ok``;
    * a change beyond it, worse or better, is a ``REGRESSION`` or ``improved`` only when it
      is also significant: with two repetitions or more a side in the runs'
      ``repetitions.csv``, the test of ``analysis.significance`` at level ``alpha``, in the
      direction of the change;
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
    judge = Judge(max_regression, alpha, (base_reps, new_reps), (base_name, new_name),
                  pairing, b, n)
    frames = [judge.metric(m, d) for m, d in specs]
    table = pd.concat(frames, ignore_index=True)
    rows = len(pairing.labels)
    order = np.tile(np.arange(rows), len(frames)) * len(frames) + np.repeat(
        np.arange(len(frames)), rows)
    table = table.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    lost_rows = table["lost"].to_numpy(dtype=bool)
    lost = tuple(f"{c}:{m}" for c, m in zip(table["case_id"][lost_rows],
                                            table["metric"][lost_rows], strict=True))
    table = table.drop(columns="lost")
    base_ok = judge.b_status == OK
    failed_new = np.isin(judge.n_status, FAILED)
    refused = np.isin(np.arange(rows), list(pairing.mismatched))
    broken = tuple(pairing.labels[i] for i in np.flatnonzero(
        ~refused & failed_new & (base_ok | (judge.b_ids == GONE))))
    gone = tuple(pairing.base_ids[i] or "" for i in np.flatnonzero(
        base_ok & (judge.n_ids == GONE)))
    return CompareResult(table, tuple(specs), max_regression, pairing, broken, gone, lost,
                         alpha, base_reps is not None and new_reps is not None, allow_missing)


def compared_columns(metrics: Sequence[str] | None) -> Callable[[str], bool]:
    """Which columns of a metrics.csv a comparison of ``metrics`` (as ``compare`` takes
    them) reads: status, runs, the parameters, each metric with its spread columns."""
    names = {m.partition(":")[0] for m in metrics} if metrics else {"p95", "run_seconds"}
    wanted = {"status", "runs", "run_seconds"} | names | {spread_column(m) for m in names} \
        | {f"{m}_mad" for m in names}
    return lambda c: c in wanted or c.startswith("param_")


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


