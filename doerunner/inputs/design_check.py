"""Validating a design.yaml: every problem at once, each with the line of its YAML key
(``load_design`` in ``inputs.design`` composes the YAML and calls ``Checker.check``)."""

from __future__ import annotations

import difflib
import math
from typing import Any

from doerunner.backends import BACKENDS
from doerunner.errors import Problem
from doerunner.inputs.design_model import (
    CRITERIA,
    DEFAULT_PREFIX,
    DEFAULT_SEED,
    DESIGNS,
    MAX_POINTS,
    OPERATORS,
    ORDERING,
    RANGE_KEYS,
    TOP_KEYS,
    Design,
    Factor,
    Range,
    cell,
    is_int,
    is_number,
    is_scalar,
    same,
    show,
)
from doerunner.inputs.template import placeholders, unknown_placeholders
from doerunner.inputs.vocabulary import (
    DEFAULT_BACKEND,
    NAME_RE,
    classify_column,
    near_miss,
    param_env_name,
)


class Checker:
    """One validation of one file: the problems found so far."""

    def __init__(self, file: str, lines: Any) -> None:
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
            self.add(("design",), f"unknown design {show(kind)} ({', '.join(DESIGNS)})")
            kind = None
        factors = self._factors(data.get("factors"), kind)
        opts = self._options(data, kind, factors)
        names = [f.name for f in factors]
        declared = data.get("factors") if isinstance(data.get("factors"), dict) else {}
        exclude = self._exclude(data.get("exclude"), {f.name: f for f in factors},
                                [str(k) for k in declared])
        template = self._template(data.get("template"), names)
        prefix = data.get("prefix", DEFAULT_PREFIX)
        if not isinstance(prefix, str) or not NAME_RE.fullmatch(prefix) or len(prefix) > 100:
            self.add(("prefix",), "must be 1-100 characters of A-Z a-z 0-9 . _ -")
        id_template = self._id(data, [str(k) for k in declared])
        if self.problems or kind is None:
            return None
        return Design(self.file, kind, tuple(factors), exclude=tuple(exclude),
                      template=template, prefix=prefix, id_template=id_template,
                      lines={k: self.lines(k) for k in data}, **opts)

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
            env = param_env_name(name)
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
            if not is_scalar(level):
                self.add((*path, i), "a level must be a number, a string or true/false "
                                     "(quote dates and other values)")
                ok = False
            elif any(same(level, s) for s in seen):
                self.add((*path, i), f"level {cell(level)} is listed twice")
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
            if key not in RANGE_KEYS:
                self.add((*path, str(key)), f"unknown key in a range ({', '.join(RANGE_KEYS)})")
                ok = False
        low, high, integer = raw.get("min"), raw.get("max"), raw.get("integer", False)
        for key, value in (("min", low), ("max", high)):
            if key not in raw:
                self.add((*path, key), "missing: a range needs both min and max", at=path)
                ok = False
            elif not is_number(value) or not math.isfinite(value):
                self.add((*path, key), "must be a number")
                ok = False
        if not isinstance(integer, bool):
            self.add((*path, "integer"), "must be true or false")
            ok = False
        if ok and low > high:
            self.add(path, f"range min {cell(low)} is above max {cell(high)}")
            ok = False
        if ok and integer and math.ceil(low) > math.floor(high):
            self.add(path, f"no integer between {cell(low)} and {cell(high)}")
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
            elif not is_int(res) or res < 3:
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
            elif not is_int(samples) or not 1 <= samples <= MAX_POINTS:
                self.add(("samples",), f"must be an integer from 1 to {MAX_POINTS}")
            else:
                opts["samples"] = samples
            if "criterion" in data:
                if data["criterion"] not in CRITERIA:
                    self.add(("criterion",), f"unknown criterion {show(data['criterion'])} "
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
        if not is_int(replicates) or not 1 <= replicates <= 1000:
            self.add(("replicates",), "must be an integer from 1 to 1000")
        else:
            opts["replicates"] = replicates
        randomize = data.get("randomize", True)
        if not isinstance(randomize, bool):
            self.add(("randomize",), "must be true or false")
        else:
            opts["randomize"] = randomize
        seed = data.get("seed", DEFAULT_SEED)
        if not is_int(seed) or not 0 <= seed < 2**32:
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
                    self.add(sub, f"unknown factor {show(name)} ({hint})")
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
        if is_scalar(cond):
            return [("==", cond)]
        if not isinstance(cond, dict) or not cond:
            self.add(path, "must be a value, or a mapping of operators to values "
                           f"({', '.join(OPERATORS)})")
            return None
        tests = []
        numeric = isinstance(factor.levels, Range) or all(is_number(x) for x in factor.levels)
        for op, value in cond.items():
            sub = (*path, str(op))
            if op not in OPERATORS:
                self.add(sub, f"unknown operator {show(op)} ({', '.join(OPERATORS)})")
            elif op == "in" and not (isinstance(value, list) and all(map(is_scalar, value))):
                self.add(sub, "`in` needs a list of values")
            elif op in ORDERING and not is_number(value):
                self.add(sub, f"{op!r} needs a number")
            elif op in ORDERING and not numeric:
                self.add(sub, f"{op!r} needs a factor with numeric levels; {factor.name} has "
                              "others")
            elif op not in ("in", *ORDERING) and not is_scalar(value):
                self.add(sub, f"{op!r} needs a number or a string")
            else:
                tests.append((op, value))
        return tests if len(tests) == len(cond) else None

    # -- case ids ------------------------------------------------------------------------------

    def _id(self, data: dict[str, Any], factors: list[str]) -> str | None:
        """The ``id`` template: ``{factor}`` placeholders (``inputs.template``'s syntax)
        and case id characters; ``design_points`` checks the ids it renders."""
        if "id" not in data:
            return None
        raw = data["id"]
        if not isinstance(raw, str) or not raw:
            self.add(("id",), 'must be a string of {factor} placeholders, like '
                              '"{compressor}-l{level}"')
            return None
        if "prefix" in data:
            self.add(("prefix",), "the case ids are made by `id`: drop `prefix`")
        for name in unknown_placeholders(raw, factors):
            close = difflib.get_close_matches(name, factors, n=1)
            hint = f"did you mean {{{close[0]}}}?" if close else f"factors: {', '.join(factors)}"
            self.add(("id",), f"uses {{{name}}} but there is no factor {name!r} ({hint})")
        literal = raw
        for name in set(placeholders(raw)):
            literal = literal.replace(f"{{{name}}}", "")
        bad = sorted({c for c in literal if not NAME_RE.fullmatch(c)})
        if bad:
            self.add(("id",), "may hold {factor} placeholders and A-Z a-z 0-9 . _ - only, not "
                              + " ".join(map(repr, bad)))
        return raw

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
            if key == "case_id":
                self.add(path, "case ids are made by srd design (see `prefix`)")
                continue
            column = classify_column(key)
            prefix, rest = column.kind, column.name
            if prefix == "ext":
                self.add(path, "ext_* columns are reserved for backend output")
                continue
            if prefix == "unnamed":
                self.add(path, f"needs a name after {column.prefix + '_'!r}")
                continue
            if prefix in ("param", "tag") and not NAME_RE.fullmatch(rest):
                self.add(path, "a column name must use A-Z a-z 0-9 . _ -")
                continue
            meant = near_miss(key) if prefix == "param" and not column.prefix else None
            if meant is not None:
                self.add(path, f"would be read as a parameter: did you mean {meant!r}? (a "
                               f"parameter of that name is written 'param_{key}')")
                continue
            if prefix == "param":
                if rest in params:
                    self.add(path, f"parameter {rest!r} is also a factor" if rest in factors
                             else f"parameter {rest!r} is given twice")
                    continue
                params[rest] = key
            if isinstance(value, list) and key == "tags":
                if not all(isinstance(t, str) and NAME_RE.fullmatch(t) for t in value):
                    self.add(path, "tag names must use A-Z a-z 0-9 . _ -")
                    continue
                out[key] = ";".join(value)
            elif value is None:
                out[key] = ""
            elif is_scalar(value):
                out[key] = cell(value)
            else:
                self.add(path, "must be a number, a string or true/false"
                         + (" (or a list of tag names)" if key == "tags" else ""))
        backend = BACKENDS.get(out.get("backend") or DEFAULT_BACKEND)
        for column in backend.TEMPLATE_COLUMNS if backend is not None else ():
            if column in out:
                self._placeholders(column, out[column], list(params))
        return out

    def _placeholders(self, column: str, template: str, params: list[str]) -> None:
        """Report ``{name}`` in a template column that names no factor or parameter: srd
        would refuse every case at run time, with a line of the cases.csv rather than this
        file."""
        for name in unknown_placeholders(template, params):
            close = difflib.get_close_matches(name, params, n=1)
            hint = f"did you mean {{{close[0]}}}? " if close else ""
            self.add(("template", column), f"uses {{{name}}} but there is no factor or "
                                           f"parameter {name!r} ({hint}write {{{{{name}}}}} "
                                           "for literal braces)")


def _path(path: tuple[str | int, ...]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def _factor_name_problem(name: Any) -> str | None:
    if not isinstance(name, str):
        return "a factor name must be a string"
    if not NAME_RE.fullmatch(name):
        return "a factor name must use A-Z a-z 0-9 . _ -"
    column = classify_column(name)
    if column.kind == "reserved":
        return f"{name!r} is a reserved column of cases.csv; put it under `template`"
    if column.kind != "param":
        return f"a factor name cannot start with {column.prefix + '_'!r} (put such columns " \
               "under `template`)"
    meant = near_miss(name) if not column.prefix else None
    if meant is not None:
        return f"{name!r} is too close to {meant!r}, which cases.csv reserves: did you mean " \
               f"{meant!r} (then put it under `template`), or name the factor otherwise"
    return None


