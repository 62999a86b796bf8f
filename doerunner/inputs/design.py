"""design.yaml → cases.csv: designs of experiments for ``srd design``.

A YAML file names factors with their levels, a design, and a template for the other columns of
cases.csv (SPEC §2). pyDOE3 builds the coded design matrix; this module maps it onto the real
levels, drops excluded points, repeats the design ``replicates`` times, shuffles the run order
with ``seed`` and numbers the cases in run order (so the file order is the run order).
``load_design`` reports every problem of the file at once, each with the line of its YAML key;
``generate`` adds only what needs the points themselves (every point excluded, pyDOE3 refusing
a generator or a resolution).

Why randomise the run order: benchmarks drift (a GPU heats up and throttles, caches fill, a
neighbour starts a job). Run in standard order, a factor that changes slowly — the last column
of a full factorial changes once, half way through — would take the blame for the drift.
"""

from __future__ import annotations

import csv
import difflib
import math
import os
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doerunner.errors import InputError, Problem
from doerunner.inputs.cases import RESERVED

DESIGNS = ("full", "fractional", "plackett-burman", "lhs", "zip")
CRITERIA = ("maximin", "center", "centermaximin", "correlation")
TOP_KEYS = ("design", "factors", "generator", "resolution", "samples", "criterion",
            "replicates", "randomize", "seed", "prefix", "exclude", "template")
MAX_POINTS = 1_000_000  # more rows than anyone runs; stops a typo from eating the memory
DEFAULT_SEED = 0
DEFAULT_PREFIX = "case"

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_ENV_UNSAFE = re.compile(r"[^A-Z0-9_]")
_PREFIXES = ("param", "tag", "note", "threshold", "ext")
_TEMPLATE_FIRST = RESERVED[1:]  # backend, cmd, timeout_s, repeat, warmup, tags
_RANGE_KEYS = ("min", "max", "integer")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "==": lambda a, b: _same(a, b), "!=": lambda a, b: not _same(a, b),
    "in": lambda a, b: any(_same(a, x) for x in b),
}
_ORDERING = ("<", "<=", ">", ">=")


# --- the validated design -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Range:
    """A continuous factor for ``lhs``: ``low``..``high``; integers only when ``integer``."""

    low: float
    high: float
    integer: bool


@dataclass(frozen=True, slots=True)
class Factor:
    """One factor: its levels (YAML scalars, in order) or a ``Range``."""

    name: str
    levels: tuple[Any, ...] | Range
    line: int


@dataclass(frozen=True, slots=True)
class Design:
    """A validated design.yaml. ``exclude`` holds rules as {factor: [(operator, value)]};
    ``template`` maps column names to their cell text, in YAML order."""

    file: str
    kind: str
    factors: tuple[Factor, ...]
    generator: str | None = None
    resolution: int | None = None
    samples: int | None = None
    criterion: str | None = None
    replicates: int = 1
    randomize: bool = True
    seed: int = DEFAULT_SEED
    prefix: str = DEFAULT_PREFIX
    exclude: tuple[dict[str, list[tuple[str, Any]]], ...] = ()
    template: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # top-level key -> line


@dataclass(frozen=True, slots=True)
class Generated:
    """The cases of a design, in run order: ``header`` and one tuple of cells per case."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    kind: str
    points: int  # design points kept after exclusions, before replicates
    excluded: int
    replicates: int
    randomized: bool
    seed: int

    def summary(self) -> str:
        """One line: how many cases, which design, how they are ordered."""
        kind = {"full": "full factorial", "lhs": "Latin hypercube"}.get(self.kind, self.kind)
        parts = [f"{len(self.rows)} {'case' if len(self.rows) == 1 else 'cases'}",
                 f"design {kind}: {self.points} points"]
        if self.excluded:
            parts.append(f"{self.excluded} excluded")
        if self.replicates > 1:
            parts.append(f"{self.replicates} replicates")
        parts.append(f"run order randomized with seed {self.seed}" if self.randomized
                     else "design order")
        return ", ".join(parts)


# --- locating YAML keys ---------------------------------------------------------------------


class _Lines:
    """Line numbers of keys in the composed YAML node tree (1-based; 0 when unknown)."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def __call__(self, *path: str | int) -> int:
        import yaml

        node, line = self.root, 0
        if not path:
            return node.start_mark.line + 1 if node is not None else 0
        for step in path:
            if isinstance(node, yaml.MappingNode):
                found = None
                for k, v in node.value:  # the last one wins, as in the constructed data
                    if isinstance(k, yaml.ScalarNode) and k.value == str(step):
                        found = (k, v)
                if found is None:
                    break
                line, node = found[0].start_mark.line + 1, found[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) \
                    and 0 <= step < len(node.value):
                node = node.value[step]
                line = node.start_mark.line + 1
            else:
                break
        return line


def _duplicate_keys(node: Any, path: str, out: list[tuple[int, str]]) -> None:
    """Report keys given twice in one mapping (safe_load would keep the last silently)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            sub = f"{path}.{key}" if path else str(key)
            if key is not None and key in seen:
                out.append((k.start_mark.line + 1, f"{sub}: key given twice"))
            if key is not None:
                seen.add(key)
            _duplicate_keys(v, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicate_keys(item, f"{path}[{i}]", out)


# --- loading ---------------------------------------------------------------------------------


def load_design(path: str | os.PathLike[str]) -> Design:
    """Read and validate a design.yaml.

    Raises ``InputError`` holding every problem found, each as ``file:line:0: key.path:
    message`` (line 0 where the YAML gives none).
    """
    import yaml

    file = os.fsdecode(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise InputError([Problem(file, 0, 0, "cannot read: no such file")]) from None
    except IsADirectoryError:
        raise InputError([Problem(file, 0, 0, "cannot read: is a directory")]) from None
    except UnicodeDecodeError:
        raise InputError([Problem(file, 0, 0, "cannot read: not UTF-8 text")]) from None
    except OSError as e:
        raise InputError([Problem(file, 0, 0, f"cannot read: {e.strerror or e}")]) from None
    try:
        loader = _loader()
        root = yaml.compose(text, Loader=loader)
        data = loader("").construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = ": ".join(x for x in (e.context, e.problem) if x)
        raise InputError([Problem(file, mark.line + 1 if mark else 0, 0,
                                  f"YAML syntax error: {what}")]) from None
    except yaml.YAMLError as e:
        raise InputError([Problem(file, 0, 0, f"YAML syntax error: {e}")]) from None
    checker = _Checker(file, _Lines(root))
    if root is not None:
        dups: list[tuple[int, str]] = []
        _duplicate_keys(root, "", dups)
        for line, message in dups:
            checker.problems.append(Problem(file, line, 0, message))
    design = checker.check(data)
    if checker.problems:
        raise InputError(sorted(checker.problems, key=lambda p: p.line))
    assert design is not None
    return design


def _loader() -> type:
    """yaml's SafeLoader, but only true/false are booleans (YAML 1.2): levels such as `on`,
    `off`, `yes`, `no` stay the text the user wrote instead of turning into true/false."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                 re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    return Loader


class _Checker:
    """One validation of one file: the problems found so far."""

    def __init__(self, file: str, lines: _Lines) -> None:
        self.file = file
        self.lines = lines
        self.problems: list[Problem] = []

    def add(self, path: tuple[str | int, ...], message: str,
            at: tuple[str | int, ...] | None = None) -> None:
        """Report ``message`` for the key ``path``, on the line of ``at`` (default: ``path``;
        for a missing key, the key that asks for it)."""
        self.problems.append(Problem(self.file, self.lines(*(path if at is None else at)), 0,
                                     f"{_path(path)}: {message}"))

    def check(self, data: Any) -> Design | None:
        if data is None:
            self.problems.append(Problem(self.file, 0, 0, "the file is empty: it needs at "
                                                          "least `design` and `factors`"))
            return None
        if not isinstance(data, dict):
            self.problems.append(Problem(self.file, self.lines(), 0,
                                         "the top level must be a mapping of keys (design, "
                                         "factors, template, ...)"))
            return None
        for key in data:
            if key not in TOP_KEYS:
                close = difflib.get_close_matches(str(key), TOP_KEYS, n=1)
                hint = (f"did you mean {close[0]!r}?" if close
                        else f"known keys: {', '.join(TOP_KEYS)}")
                self.add((str(key),), f"unknown key ({hint})")

        kind = data.get("design", "full")
        if kind not in DESIGNS:
            self.add(("design",), f"unknown design {_show(kind)} ({', '.join(DESIGNS)})")
            kind = None
        factors = self._factors(data.get("factors"), kind)
        opts = self._options(data, kind, factors)
        names = [f.name for f in factors]
        declared = data.get("factors") if isinstance(data.get("factors"), dict) else {}
        exclude = self._exclude(data.get("exclude"), {f.name: f for f in factors},
                                [str(k) for k in declared])
        template = self._template(data.get("template"), names)
        prefix = data.get("prefix", DEFAULT_PREFIX)
        if not isinstance(prefix, str) or not _NAME_RE.fullmatch(prefix) or len(prefix) > 100:
            self.add(("prefix",), "must be 1-100 characters of A-Z a-z 0-9 . _ -")
        if self.problems or kind is None:
            return None
        return Design(self.file, kind, tuple(factors), exclude=tuple(exclude),
                      template=template, prefix=prefix, lines={k: self.lines(k) for k in data},
                      **opts)

    # -- factors --------------------------------------------------------------------------------

    def _factors(self, raw: Any, kind: str | None) -> list[Factor]:
        if raw is None:
            self.add(("factors",), "missing: name each factor with its levels")
            return []
        if not isinstance(raw, dict) or not raw:
            self.add(("factors",), "must be a mapping of factor names to their levels")
            return []
        out: list[Factor] = []
        envs: dict[str, str] = {}
        for name, levels in raw.items():
            path: tuple[str | int, ...] = ("factors", str(name))
            bad = _factor_name_problem(name)
            if bad:
                self.add(path, bad)
                continue
            env = "SRD_PARAM_" + _ENV_UNSAFE.sub("_", name.upper())
            if env in envs:
                self.add(path, f"factors {envs[env]!r} and {name!r} both become {env}")
                continue
            envs[env] = name
            factor = self._levels(path, name, levels, kind)
            if factor is not None:
                out.append(factor)
        return out

    def _levels(self, path: tuple[str | int, ...], name: str, levels: Any,
                kind: str | None) -> Factor | None:
        line = self.lines(*path)
        if isinstance(levels, dict):
            return self._range(path, name, levels, kind, line)
        if not isinstance(levels, list) or not levels:
            self.add(path, "levels must be a non-empty list or a range {min, max}")
            return None
        ok = True
        seen: list[Any] = []
        for i, level in enumerate(levels):
            if not _is_scalar(level):
                self.add((*path, i), "a level must be a number, a string or true/false "
                                     "(quote dates and other values)")
                ok = False
            elif any(_same(level, s) for s in seen):
                self.add((*path, i), f"level {_cell(level)} is listed twice")
                ok = False
            else:
                seen.append(level)
        if ok and kind in ("fractional", "plackett-burman") and len(levels) != 2:
            self.problems.append(Problem(self.file, line, 0, f"design: {kind} needs 2 levels "
                                         f"per factor; {name} has {len(levels)}"))
            ok = False
        return Factor(name, tuple(levels), line) if ok else None

    def _range(self, path: tuple[str | int, ...], name: str, raw: dict[str, Any],
               kind: str | None, line: int) -> Factor | None:
        ok = True
        for key in raw:
            if key not in _RANGE_KEYS:
                self.add((*path, str(key)), f"unknown key in a range ({', '.join(_RANGE_KEYS)})")
                ok = False
        low, high, integer = raw.get("min"), raw.get("max"), raw.get("integer", False)
        for key, value in (("min", low), ("max", high)):
            if key not in raw:
                self.add((*path, key), "missing: a range needs both min and max", at=path)
                ok = False
            elif not _is_number(value) or not math.isfinite(value):
                self.add((*path, key), "must be a number")
                ok = False
        if not isinstance(integer, bool):
            self.add((*path, "integer"), "must be true or false")
            ok = False
        if ok and low > high:
            self.add(path, f"range min {_cell(low)} is above max {_cell(high)}")
            ok = False
        if ok and integer and math.ceil(low) > math.floor(high):
            self.add(path, f"no integer between {_cell(low)} and {_cell(high)}")
            ok = False
        if kind is not None and kind != "lhs":
            self.add(path, f"a range {{min, max}} needs design lhs; design {kind} needs a "
                           "list of levels")
            ok = False
        return Factor(name, Range(low, high, integer), line) if ok else None

    # -- the design's options ----------------------------------------------------------------

    def _options(self, data: dict[str, Any], kind: str | None,
                 factors: list[Factor]) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        own = {"generator": "fractional", "resolution": "fractional", "samples": "lhs",
               "criterion": "lhs"}
        for key, needs in own.items():
            if key in data and kind is not None and kind != needs:
                self.add((key,), f"only for design {needs} (this is design {kind})")
        if kind == "fractional":
            gen, res = data.get("generator"), data.get("resolution")
            if ("generator" in data) == ("resolution" in data):
                self.add(("design",), "fractional needs either `generator` (like \"a b c abc\")"
                                      " or `resolution` (3, 4, 5...)")
            elif "generator" in data:
                words = gen.split() if isinstance(gen, str) else []
                if not words:
                    self.add(("generator",), "must be a string of words like \"a b c abc\"")
                elif len(words) != len(data.get("factors") or {}):
                    self.add(("generator",), f"has {len(words)} words but there are "
                                             f"{len(data.get('factors') or {})} factors")
                else:
                    opts["generator"] = gen
            elif not _is_int(res) or res < 3:
                self.add(("resolution",), "must be an integer >= 3")
            else:
                opts["resolution"] = res
        if kind == "plackett-burman" and len(data.get("factors") or {}) < 2:
            self.add(("factors",), "plackett-burman needs at least 2 factors")
        if kind == "lhs":
            samples = data.get("samples")
            if "samples" not in data:
                self.add(("samples",), f"lhs needs `samples`: an integer from 1 to "
                                       f"{MAX_POINTS}", at=("design",))
            elif not _is_int(samples) or not 1 <= samples <= MAX_POINTS:
                self.add(("samples",), f"must be an integer from 1 to {MAX_POINTS}")
            else:
                opts["samples"] = samples
            if "criterion" in data:
                if data["criterion"] not in CRITERIA:
                    self.add(("criterion",), f"unknown criterion {_show(data['criterion'])} "
                                             f"({', '.join(CRITERIA)})")
                else:
                    opts["criterion"] = data["criterion"]
        if kind == "zip":
            lengths = {f.name: len(f.levels) for f in factors if isinstance(f.levels, tuple)}
            if len(set(lengths.values())) > 1:
                counts = ", ".join(f"{n} has {k}" for n, k in lengths.items())
                self.add(("factors",), f"zip takes levels in lockstep: every factor needs the "
                                       f"same number of levels ({counts})")
        if kind == "full" and factors and len(factors) == len(data.get("factors") or {}):
            points = math.prod(len(f.levels) for f in factors if isinstance(f.levels, tuple))
            if points > MAX_POINTS:
                self.add(("factors",), f"a full factorial of these levels has {points} points "
                                       f"(at most {MAX_POINTS})")
        replicates = data.get("replicates", 1)
        if not _is_int(replicates) or not 1 <= replicates <= 1000:
            self.add(("replicates",), "must be an integer from 1 to 1000")
        else:
            opts["replicates"] = replicates
        randomize = data.get("randomize", True)
        if not isinstance(randomize, bool):
            self.add(("randomize",), "must be true or false")
        else:
            opts["randomize"] = randomize
        seed = data.get("seed", DEFAULT_SEED)
        if not _is_int(seed) or not 0 <= seed < 2**32:
            self.add(("seed",), "must be an integer from 0 to 4294967295")
        else:
            opts["seed"] = seed
        return opts

    # -- exclusions ------------------------------------------------------------------------------

    def _exclude(self, raw: Any, factors: dict[str, Factor],
                 declared: list[str]) -> list[dict[str, Any]]:
        """Rules as {factor: [(operator, value)]}; ``declared`` names every factor of the
        file, valid or not (a rule naming a broken factor is not "unknown")."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.add(("exclude",), "must be a list of rules like {batch_size: 8, dtype: "
                                   "float32}")
            return []
        rules = []
        for i, rule in enumerate(raw):
            path: tuple[str | int, ...] = ("exclude", i)
            if not isinstance(rule, dict) or not rule:
                self.add(path, "a rule must be a non-empty mapping of factor names to values")
                continue
            parsed: dict[str, list[tuple[str, Any]]] = {}
            for name, cond in rule.items():
                sub = (*path, str(name))
                if str(name) not in declared:
                    close = difflib.get_close_matches(str(name), declared, n=1)
                    hint = f"did you mean {close[0]!r}?" if close else \
                        f"factors: {', '.join(declared)}"
                    self.add(sub, f"unknown factor {_show(name)} ({hint})")
                    continue
                if name not in factors:
                    continue  # the factor's own problem is reported
                tests = self._conditions(sub, factors[name], cond)
                if tests is not None:
                    parsed[name] = tests
            if len(parsed) == len(rule):
                rules.append(parsed)
        return rules

    def _conditions(self, path: tuple[str | int, ...], factor: Factor,
                    cond: Any) -> list[tuple[str, Any]] | None:
        if _is_scalar(cond):
            return [("==", cond)]
        if not isinstance(cond, dict) or not cond:
            self.add(path, "must be a value, or a mapping of operators to values "
                           f"({', '.join(_OPERATORS)})")
            return None
        tests = []
        numeric = isinstance(factor.levels, Range) or all(_is_number(x) for x in factor.levels)
        for op, value in cond.items():
            sub = (*path, str(op))
            if op not in _OPERATORS:
                self.add(sub, f"unknown operator {_show(op)} ({', '.join(_OPERATORS)})")
            elif op == "in" and not (isinstance(value, list) and all(map(_is_scalar, value))):
                self.add(sub, "`in` needs a list of values")
            elif op in _ORDERING and not _is_number(value):
                self.add(sub, f"{op!r} needs a number")
            elif op in _ORDERING and not numeric:
                self.add(sub, f"{op!r} needs a factor with numeric levels; {factor.name} has "
                              "others")
            elif op not in ("in", *_ORDERING) and not _is_scalar(value):
                self.add(sub, f"{op!r} needs a number or a string")
            else:
                tests.append((op, value))
        return tests if len(tests) == len(cond) else None

    # -- template --------------------------------------------------------------------------------

    def _template(self, raw: Any, factors: list[str]) -> dict[str, str]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.add(("template",), "must be a mapping of cases.csv columns to values")
            return {}
        out: dict[str, str] = {}
        params = {name: name for name in factors}
        for key, value in raw.items():
            path: tuple[str | int, ...] = ("template", str(key))
            if not isinstance(key, str):
                self.add(path, "a column name must be a string")
                continue
            prefix, sep, rest = key.partition("_")
            if key == "case_id":
                self.add(path, "case ids are made by srd design (see `prefix`)")
                continue
            if key not in RESERVED and sep and prefix in _PREFIXES:
                if prefix == "ext":
                    self.add(path, "ext_* columns are reserved for backend output")
                    continue
                if not rest:
                    self.add(path, f"needs a name after {prefix + '_'!r}")
                    continue
            elif key not in RESERVED:
                prefix, rest = "param", key
            if key not in RESERVED and prefix in ("param", "tag") \
                    and not _NAME_RE.fullmatch(rest):
                self.add(path, "a column name must use A-Z a-z 0-9 . _ -")
                continue
            if prefix == "param" and key not in RESERVED:
                if rest in params:
                    self.add(path, f"parameter {rest!r} is also a factor" if rest in factors
                             else f"parameter {rest!r} is given twice")
                    continue
                params[rest] = key
            if isinstance(value, list) and key == "tags":
                if not all(isinstance(t, str) and _NAME_RE.fullmatch(t) for t in value):
                    self.add(path, "tag names must use A-Z a-z 0-9 . _ -")
                    continue
                out[key] = ";".join(value)
            elif value is None:
                out[key] = ""
            elif _is_scalar(value):
                out[key] = _cell(value)
            else:
                self.add(path, "must be a number, a string or true/false"
                         + (" (or a list of tag names)" if key == "tags" else ""))
        if "cmd" in out and out.get("backend", "shell") in ("shell", ""):
            self._placeholders(out["cmd"], list(params))
        return out

    def _placeholders(self, cmd: str, params: list[str]) -> None:
        """Report ``{name}`` in the command that names no factor or parameter: srd would
        refuse every case at run time, with a line of the cases.csv rather than this file."""
        from doerunner.backends.shell import _unknown_placeholders  # the one parser of placeholders

        for name in dict.fromkeys(_unknown_placeholders(cmd, params)):
            close = difflib.get_close_matches(name, params, n=1)
            hint = f"did you mean {{{close[0]}}}? " if close else ""
            self.add(("template", "cmd"), f"uses {{{name}}} but there is no factor or "
                                          f"parameter {name!r} ({hint}write {{{{{name}}}}} for "
                                          "literal braces)")


# --- generating --------------------------------------------------------------------------


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
    runs = kept * design.replicates  # whole replicates, one after the other
    if design.randomize:
        _shuffle(runs, design.seed)
    width = max(3, len(str(len(runs))))
    first = [c for c in _TEMPLATE_FIRST if c in design.template]
    rest = [c for c in design.template if c not in first]
    names = [f.name for f in design.factors]
    header = ("case_id", *first, *names, *rest)
    rows = tuple(
        (f"{design.prefix}-{i:0{width}d}", *(design.template[c] for c in first),
         *(_cell(p[n]) for n in names), *(design.template[c] for c in rest))
        for i, p in enumerate(runs, 1))
    return Generated(header, rows, design.kind, len(kept), len(points) - len(kept),
                     design.replicates, design.randomize, design.seed)


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
    return all(_OPERATORS[op](point[name], value)
               for name, tests in rule.items() for op, value in tests)


def _shuffle(items: list[Any], seed: int) -> None:
    """Fisher-Yates from ``random.Random(seed).random()``: Python keeps that stream the same
    across versions, so a seed gives the same run order everywhere (``random.shuffle`` makes
    no such promise)."""
    rng = random.Random(seed)
    for i in range(len(items) - 1, 0, -1):
        j = int(rng.random() * (i + 1))
        items[i], items[j] = items[j], items[i]


# --- writing ---------------------------------------------------------------------------------


def write_cases_csv(generated: Generated, out: str | os.PathLike[str]) -> None:
    """Write ``generated`` as cases.csv (UTF-8, LF, minimal quoting) atomically."""
    from doerunner.outputs.atomic import atomic_open

    with atomic_open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(generated.header)
        writer.writerows(generated.rows)


def design_to_csv(design_path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                  force: bool = False) -> Generated:
    """Read ``design_path``, generate its cases and write them to ``out``.

    Refuses to replace an existing ``out`` unless ``force``. Raises ``InputError`` with every
    problem found (the existing file and the YAML's problems together); ``out`` is untouched
    then.
    """
    target = Path(out)
    problems = []
    if target.is_dir():
        problems.append(Problem("", 0, 0, f"--out {os.fsdecode(out)}: is a directory"))
    elif target.exists() and not force:
        problems.append(Problem("", 0, 0, f"--out {os.fsdecode(out)} exists; "
                                          "pass --force to replace it"))
    elif not target.parent.is_dir():
        problems.append(Problem("", 0, 0, f"--out {os.fsdecode(out)}: no such directory "
                                          f"{os.fsdecode(target.parent)}"))
    try:
        design = load_design(design_path)
    except InputError as e:
        raise InputError(problems + e.problems) from None
    if problems:
        raise InputError(problems)
    generated = generate(design)
    write_cases_csv(generated, out)
    return generated


# --- small helpers -------------------------------------------------------------------------


def _path(path: tuple[str | int, ...]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def _factor_name_problem(name: Any) -> str | None:
    if not isinstance(name, str):
        return "a factor name must be a string"
    if not _NAME_RE.fullmatch(name):
        return "a factor name must use A-Z a-z 0-9 . _ -"
    if name in RESERVED:
        return f"{name!r} is a reserved column of cases.csv; put it under `template`"
    prefix, sep, _ = name.partition("_")
    if sep and prefix in _PREFIXES:
        return f"a factor name cannot start with {prefix + '_'!r} (put such columns under " \
               "`template`)"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, bool))


def _same(a: Any, b: Any) -> bool:
    """Equal as YAML values, or as the cells they become (8 and "8", 0.5 and "0.5")."""
    if _is_number(a) and _is_number(b):
        return a == b
    return (type(a) is type(b) and a == b) or _cell(a) == _cell(b)


def _cell(value: Any) -> str:
    """A YAML scalar as a cases.csv cell: numbers in their shortest form (``8``, ``0.5``,
    ``2.0`` → ``2``), booleans as ``true``/``false``, strings verbatim."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        text = repr(value)
        if "e" in text:  # positional, not 1e-05: commands rarely parse exponents
            import numpy as np

            text = np.format_float_positional(value, trim="-")
        return text
    return str(value)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else _cell(value) if _is_scalar(value) \
        else repr(value)
