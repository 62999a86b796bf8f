"""Which parameter matters: the main effects of each factor on a response, over the OK rows
of a metrics.csv. ``outputs.effects_table`` turns an ``EffectsTable`` into text or Markdown.
Errors are ``InputError`` (exit 4 in the CLI)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from doerunner.analysis.metrics import has_values, numeric, ok_rows, spread_column
from doerunner.errors import InputError


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
    return "p95" if has_values(df[ok_rows(df)], "p95") else "run_seconds"


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
    ok = ok_rows(df)
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
