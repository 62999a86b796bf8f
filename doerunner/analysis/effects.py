"""Which parameter matters: the main effects of each factor on a response, over the OK rows
of a metrics.csv, and the two-factor view (the response's mean in each cell of two factors'
levels), both over the rows a ``where`` selects. ``outputs.effects_table`` turns an
``EffectsTable`` or an ``InteractionTable`` into text or Markdown. Errors are ``InputError``
(exit 4 in the CLI)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from doerunner.analysis.metrics import has_values, numeric, ok_rows, spread_column
from doerunner.errors import InputError
from doerunner.listing import listed


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
    where: str = ""  # the rows' selection as ``select_rows`` states it; "" all rows

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
                 factors: Sequence[str] | None = None,
                 where: Sequence[str] = ()) -> EffectsTable:
    """The main effect of each factor on ``response`` (default: ``default_response``).

    Uses the rows ``where`` selects (``select_rows``), of those the OK rows with a value of
    ``response``. ``factors`` (names with or without the ``param_`` prefix) default to the
    ``param_*`` columns that take two levels or more in those rows. Per level: count, mean,
    spread (see ``LevelStats``); levels in ``level_order``; a row with no value for a factor
    is left out of that factor. Effect = max(mean) − min(mean).

    Raises ``InputError`` for a bad ``where``, a response column that is not there, no OK
    rows, no value of the response, an unknown factor, or no factor with two levels.
    """
    df, condition = select_rows(df, where)
    response, sub, y = _response_rows(df, response)
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
        key = _level_keys(sub, name)
        has = key != ""
        g = pd.DataFrame({"key": key[has], "y": y[has], "w": weight[has],
                          "wv": weighted_var[has]}).groupby("key", sort=False)
        stats = g.agg(n=("y", "size"), mu=("y", "mean"), sd=("y", "std"),
                      w=("w", "sum"), wv=("wv", "sum"))
        levels = [LevelStats(str(r.Index), int(r.n), float(r.mu), float(r.sd),
                             math.sqrt(r.wv / r.w) if r.w > 0 else math.nan)
                  for r in stats.itertuples()]
        order = level_order([lv.level for lv in levels])
        levels = [levels[i] for i in order]
        means = [lv.mean for lv in levels]
        effects.append(FactorEffect(name, max(means) - min(means) if means else math.nan,
                                    tuple(levels)))
    effects.sort(key=lambda f: -f.effect if not math.isnan(f.effect) else math.inf)
    return EffectsTable(response, len(sub), len(df), tuple(effects), condition)


def _response_rows(df: pd.DataFrame,
                   response: str | None) -> tuple[str, pd.DataFrame, pd.Series]:
    """The response's name, the OK rows of ``df`` with a value of it, and those values."""
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
    return response, df[used], y[used]


def _level_keys(df: pd.DataFrame, column: str) -> pd.Series:
    """A factor's level of each row as text; ``""``: no value."""
    return df[column].astype(str).where(df[column].notna(), "")


def select_rows(df: pd.DataFrame, where: Sequence[str]) -> tuple[pd.DataFrame, str]:
    """The rows of ``df`` that ``where`` selects, and the selection in words (``""`` when
    ``where`` is empty): ``param_batch=8|16 and param_mode=fast``.

    Each condition is ``FACTOR=VALUE``; FACTOR is a column, with or without the ``param_``
    prefix; VALUE is compared as text, surrounding spaces aside (the command received the
    text: ``2.0`` is not ``2``), over every row whatever its status. Conditions on one
    factor are alternatives; conditions on different factors must all hold.

    Raises ``InputError`` for a condition without ``=``, an unknown factor (the message
    lists the parameters) or a value no row has (it lists the values there are).
    """
    wanted: dict[str, list[str]] = {}
    for cond in where:
        factor, eq, value = cond.partition("=")
        factor = factor.strip()
        if not eq or not factor:
            raise InputError(f"--where takes FACTOR=VALUE, got {cond!r}")
        column = factor if factor in df.columns else f"param_{factor}"
        if column not in df.columns:
            known = ", ".join(c for c in df.columns if str(c).startswith("param_")) or "none"
            raise InputError(f"--where {cond}: unknown factor {factor} (parameters: {known})")
        cells = df[column].astype(str).str.strip()
        if not (cells == value.strip()).any():
            levels = [v for v in dict.fromkeys(cells) if v != ""]
            shown = [levels[i] for i in level_order(levels)]
            raise InputError(f"--where {cond}: no row has {column}={value.strip()} "
                             f"(values: {listed(shown) or 'none'})")
        values = wanted.setdefault(column, [])
        if value.strip() not in values:
            values.append(value.strip())
    keep = pd.Series(True, index=df.index)
    for column, values in wanted.items():
        keep &= df[column].astype(str).str.strip().isin(values)
    condition = " and ".join(f"{c}={'|'.join(v)}" for c, v in wanted.items())
    return df[keep], condition


@dataclass(frozen=True)
class Cell:
    """The response over the rows of one cell (or margin) of an interaction table: how
    many rows, and their mean (NaN for an empty cell)."""

    n: int
    mean: float


@dataclass(frozen=True)
class InteractionTable:
    """The response's mean in each cell of ``factor_a``'s levels × ``factor_b``'s levels
    (``cells[i][j]``: level ``levels_a[i]`` of A and ``levels_b[j]`` of B), with the
    margins: ``by_a[i]`` over every level of B, ``by_b[j]`` over every level of A, and
    ``total``. Over the OK rows with a value of the response and of both factors."""

    response: str
    rows_used: int
    rows_total: int
    factor_a: str
    factor_b: str
    levels_a: tuple[str, ...]
    levels_b: tuple[str, ...]
    cells: tuple[tuple[Cell, ...], ...]
    by_a: tuple[Cell, ...]
    by_b: tuple[Cell, ...]
    total: Cell
    where: str = ""


def interaction(df: pd.DataFrame, factor_a: str, factor_b: str,
                response: str | None = None, where: Sequence[str] = ()) -> InteractionTable:
    """The two-factor table of ``response`` (default: ``default_response``) over
    ``factor_a`` × ``factor_b`` (names with or without the ``param_`` prefix), from the
    rows ``where`` selects (``select_rows``), of those the OK rows with a value of the
    response and of both factors. Levels in ``level_order`` over those rows.

    Raises ``InputError`` for a bad ``where``, the same factor twice, an unknown factor,
    a response column that is not there, no OK rows, or no row with all three values.
    """
    df, condition = select_rows(df, where)
    response, sub, y = _response_rows(df, response)
    names = _resolve_factors(sub, [factor_a, factor_b])
    if len(names) < 2:
        raise InputError(f"the interaction needs two different factors, got {names[0]} "
                         "twice")
    a, b = names
    ka, kb = _level_keys(sub, a), _level_keys(sub, b)
    has = (ka != "") & (kb != "")
    if not has.any():
        raise InputError(f"no OK row has a value of {response}, {a} and {b}")
    # ordered as main_effects orders them: over the rows with a value of that factor
    levels_a, levels_b = (_levels(k, k[has]) for k in (ka, kb))
    ka, kb, y = ka[has], kb[has], y[has]
    g = pd.DataFrame({"a": ka, "b": kb, "y": y}).groupby(["a", "b"], sort=False)["y"]
    stats = g.agg(["size", "mean"])

    def cell(rows: pd.Series) -> Cell:
        return Cell(int(rows.size), float(rows.mean())) if rows.size else Cell(0, math.nan)

    cells = tuple(tuple(Cell(int(stats.loc[(la, lb), "size"]),
                             float(stats.loc[(la, lb), "mean"]))
                        if (la, lb) in stats.index else Cell(0, math.nan)
                        for lb in levels_b) for la in levels_a)
    return InteractionTable(response, int(has.sum()), len(df), a, b, levels_a, levels_b,
                            cells, tuple(cell(y[ka == la]) for la in levels_a),
                            tuple(cell(y[kb == lb]) for lb in levels_b), cell(y),
                            condition)


def _levels(keys: pd.Series, used: pd.Series) -> tuple[str, ...]:
    """The levels in ``used`` (a factor's level per row), in the order ``level_order``
    gives them over ``keys`` (every row with a value of the response)."""
    seen = [k for k in dict.fromkeys(keys.tolist()) if k != ""]
    present = set(used.tolist())
    return tuple(seen[i] for i in level_order(seen) if seen[i] in present)


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


def level_order(levels: Sequence[str]) -> list[int]:
    """The order in which levels are shown, as positions into ``levels`` (given in order of
    first appearance): ascending by value when every level is a number, else as given."""
    try:
        values = [float(lv) for lv in levels]
    except ValueError:
        return list(range(len(levels)))  # as first seen
    return sorted(range(len(levels)), key=lambda i: values[i])
