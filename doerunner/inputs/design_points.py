"""Generating the cases of a validated design: pyDOE3 builds the coded design matrix, which is
mapped onto the real levels; excluded points are dropped, the design is repeated
``replicates`` times, the run order shuffled with ``seed``, and the cases numbered in run
order (so the file order is the run order)."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from doerunner.errors import InputError, Problem
from doerunner.inputs.design_model import (
    MAX_POINTS,
    OPERATORS,
    TEMPLATE_FIRST,
    Design,
    Factor,
    Generated,
    cell,
)
from doerunner.inputs.vocabulary import CASE_ID_RE, CASE_ID_RULE, id_word


def generate(design: Design) -> Generated:
    """The cases of ``design`` in run order.

    Raises ``InputError`` when every point is excluded, or when pyDOE3 cannot build the
    requested resolution.
    """
    points = _points(design)
    kept = [p for p in points if not any(_matches(p, rule) for rule in design.exclude)]
    if not kept:
        raise InputError([Problem(design.file, design.lines.get("exclude", 0), 0,
                                  f"exclude: every one of the {len(points)} design points is "
                                  "excluded")])
    if len(kept) * design.replicates > MAX_POINTS:
        raise InputError([Problem(design.file, design.lines.get("replicates", 0), 0,
                                  f"replicates: {len(kept)} points x {design.replicates} "
                                  f"replicates is more than {MAX_POINTS} cases")])
    # (replicate, point): whole replicates, one after the other
    runs = [(r, j) for r in range(design.replicates) for j in range(len(kept))]
    if design.randomize:
        _shuffle(runs, design.seed)
    ids = _ids(design, kept, runs)
    first = [c for c in TEMPLATE_FIRST if c in design.template]
    rest = [c for c in design.template if c not in first]
    names = [f.name for f in design.factors]
    header = ("case_id", *first, *names, *rest)
    rows = tuple(
        (case_id, *(design.template[c] for c in first),
         *(cell(kept[j][n]) for n in names), *(design.template[c] for c in rest))
        for case_id, (_, j) in zip(ids, runs, strict=True))
    return Generated(header, rows, design.kind, len(kept), len(points) - len(kept),
                     design.replicates, design.randomize, design.seed)


def _ids(design: Design, kept: Sequence[Mapping[str, Any]],
         runs: Sequence[tuple[int, int]]) -> list[str]:
    """The case ids of ``runs`` ((replicate, index in ``kept``), in run order): numbered in
    run order after ``prefix``, or rendered from ``id`` (its ``{factor}`` placeholders
    replaced by the values as cases.csv cells made fit for an id, ``vocabulary.id_word``, as
    sweeps make theirs), then ``-r<replicate>`` with replicates.
    Raises ``InputError`` for an id that is not allowed or that two points share."""
    if design.id_template is None:
        width = max(3, len(str(len(runs))))
        return [f"{design.prefix}-{i:0{width}d}" for i in range(1, len(runs) + 1)]
    rendered = []
    for point in kept:
        text = design.id_template
        for name, value in point.items():
            text = text.replace(f"{{{name}}}", id_word(cell(value)))
        rendered.append(text)
    suffix = "-r{}" if design.replicates > 1 else ""
    problems: list[str] = []
    first: dict[str, int] = {}  # lower-cased id -> the point that gave it first
    told: set[str | int] = set()  # the ids and points already reported
    for r in range(design.replicates):
        for j, text in enumerate(rendered):
            case_id = text + suffix.format(r + 1)
            other = first.setdefault(case_id.lower(), j)
            if not CASE_ID_RE.fullmatch(case_id) or case_id in (".", ".."):
                if j not in told:
                    told.add(j)
                    problems.append(f"point {_show(kept[j])} gives the case id {case_id!r}, "
                                    f"which is not allowed: {CASE_ID_RULE}")
            elif other != j and case_id.lower() not in told:
                told.add(case_id.lower())
                problems.append(f"points {_show(kept[other])} and {_show(kept[j])} both give "
                                f"the case id {case_id!r} (unique ignoring case: put every "
                                "factor that varies in `id`)")
    if problems:
        line = design.lines.get("id", 0)
        shown = problems[:10] + ([f"and {len(problems) - 10} more"] if len(problems) > 10
                                 else [])
        raise InputError([Problem(design.file, line, 0, f"id: {p}") for p in shown])
    return [rendered[j] + suffix.format(r + 1) for r, j in runs]


def _show(point: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{name}: {cell(value)}" for name, value in point.items()) + "}"


def _points(design: Design) -> list[dict[str, Any]]:
    """The design points in pyDOE3's standard order, as {factor: level}."""
    import numpy as np
    import pyDOE3

    factors = design.factors
    n = len(factors)
    if design.kind == "zip":
        count = len(factors[0].levels)  # type: ignore[arg-type]
        return [{f.name: f.levels[i] for f in factors} for i in range(count)]  # type: ignore
    if design.kind == "full":
        matrix = pyDOE3.fullfact([len(f.levels) for f in factors])  # type: ignore[arg-type]
        return [{f.name: f.levels[int(row[j])] for j, f in enumerate(factors)}  # type: ignore
                for row in matrix]
    if design.kind == "lhs":
        kw: dict[str, Any] = {"samples": design.samples, "seed": design.seed}
        if design.criterion:
            kw["criterion"] = design.criterion
        matrix = pyDOE3.lhs(n, **kw)
        return [{f.name: _from_unit(f, float(u)) for f, u in zip(factors, row, strict=True)}
                for row in matrix]
    if design.kind == "plackett-burman":
        matrix = pyDOE3.pbdesign(n)[:, :n]
    elif design.generator is not None:
        try:
            matrix = pyDOE3.fracfact(design.generator)
        except ValueError as e:
            raise InputError([Problem(design.file, design.lines.get("generator", 0), 0,
                                      f"generator: pyDOE3 rejects {design.generator!r}: "
                                      f"{e}")]) from None
    else:
        try:
            matrix = pyDOE3.fracfact_by_res(n, design.resolution)
        except ValueError as e:
            raise InputError([Problem(design.file, design.lines.get("resolution", 0), 0,
                                      f"resolution: pyDOE3 cannot build a resolution "
                                      f"{design.resolution} design for {n} factors ({e}); "
                                      "give a `generator` instead")]) from None
    coded = np.asarray(matrix) > 0  # -1 → first level, +1 → second
    return [{f.name: f.levels[int(row[j])] for j, f in enumerate(factors)}  # type: ignore
            for row in coded]


def _from_unit(factor: Factor, u: float) -> Any:
    """A Latin hypercube coordinate u in [0, 1) → a level of ``factor``.

    A list of k levels and an integer range of k integers are both cut into k equal strata
    (index = floor(u × k)), so each level is equally likely; a continuous range is linear and
    rounded to 6 significant digits so the file stays readable.
    """
    levels = factor.levels
    if isinstance(levels, tuple):
        return levels[min(int(u * len(levels)), len(levels) - 1)]
    if levels.integer:
        low, high = math.ceil(levels.low), math.floor(levels.high)
        return min(low + int(u * (high - low + 1)), high)
    value = levels.low + u * (levels.high - levels.low)
    return float(f"{value:.6g}")


def _matches(point: Mapping[str, Any], rule: Mapping[str, Sequence[tuple[str, Any]]]) -> bool:
    """Whether ``point`` meets every condition of ``rule`` (then it is excluded)."""
    return all(OPERATORS[op](point[name], value)
               for name, tests in rule.items() for op, value in tests)


def _shuffle(items: list[Any], seed: int) -> None:
    """Fisher-Yates from ``random.Random(seed).random()``: Python keeps that stream the same
    across versions, so a seed gives the same run order everywhere (``random.shuffle`` makes
    no such promise)."""
    rng = random.Random(seed)
    for i in range(len(items) - 1, 0, -1):
        j = int(rng.random() * (i + 1))
        items[i], items[j] = items[j], items[i]


