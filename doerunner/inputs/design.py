"""design.yaml → cases.csv: designs of experiments for ``srd design``.

A YAML file names factors with their levels, a design, and a template for the other columns of
cases.csv (FORMAT.md §2). ``load_design`` reports every problem of the file at once, each
with the line of its YAML key (``design_check``); ``generate`` (``design_points``) builds the
points and adds only what needs them (every point excluded, pyDOE3 refusing a generator or a
resolution); ``design_to_csv`` writes cases.csv (``outputs.cases_csv``).

Why randomise the run order: benchmarks drift (a GPU heats up and throttles, caches fill, a
neighbour starts a job). Run in standard order, a factor that changes slowly — the last column
of a full factorial changes once, half way through — would take the blame for the drift.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from doerunner.errors import InputError, Problem
from doerunner.inputs.bounded import MAX_DESIGN_BYTES, read_bounded
from doerunner.inputs.design_check import Checker
from doerunner.inputs.design_model import Design, Generated
from doerunner.inputs.design_points import generate

__all__ = ["Design", "Generated", "design_to_csv", "generate", "load_design"]


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
    raw = read_bounded(path, file, MAX_DESIGN_BYTES)  # never /dev/zero read for good
    try:
        # as text mode read it: universal newlines
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError:
        raise InputError([Problem(file, 0, 0, "cannot read: not UTF-8 text")]) from None
    try:
        loader = _loader()
        root = yaml.compose(text, Loader=loader)
        data = loader("").construct_document(root) if root is not None else None
    except _Refused as e:
        raise InputError([Problem(file, e.line, 0, e.message)]) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = ": ".join(x for x in (e.context, e.problem) if x)
        raise InputError([Problem(file, mark.line + 1 if mark else 0, 0,
                                  f"YAML syntax error: {what}")]) from None
    except yaml.YAMLError as e:
        raise InputError([Problem(file, 0, 0, f"YAML syntax error: {e}")]) from None
    checker = Checker(file, _Lines(root))
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


# A design is a few dozen values. What YAML aliases (``*name``) may add to it once expanded,
# in nodes: a "billion laughs" document — aliases of aliases of a list — expands to
# billions, and everything that walks the data (checks, duplicate keys) would walk them all.
ALIAS_EXPANSION_LIMIT = 10_000
MAX_DEPTH = 64  # nested collections: deeper is no design, and would exhaust the stack


class _Refused(Exception):
    """A YAML document srd will not expand: ``line`` (1-based) and the message."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def _expanded(node: Any, cap: int) -> int:
    """How many nodes ``node`` stands for with its aliases expanded, counted up to ``cap``
    at most (the count stops there: a bomb costs ``cap`` steps, not billions)."""
    import yaml

    count, stack = 0, [node]
    while stack and count < cap:
        n = stack.pop()
        count += 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack += (k, v)
        elif isinstance(n, yaml.SequenceNode):
            stack += n.value
    return count


def _loader() -> type:
    """yaml's SafeLoader, but only true/false are booleans (YAML 1.2): levels such as `on`,
    `off`, `yes`, `no` stay the text the user wrote instead of turning into true/false.
    Aliases are expanded up to ``ALIAS_EXPANSION_LIMIT`` nodes in all, collections nested up
    to ``MAX_DEPTH``; beyond, and for an alias inside its own anchor, ``_Refused``."""
    import yaml

    class Loader(yaml.SafeLoader):
        def compose_document(self) -> Any:
            self.alias_budget, self.depth = ALIAS_EXPANSION_LIMIT, 0
            return super().compose_document()

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            line = event.start_mark.line + 1
            if not isinstance(event, yaml.AliasEvent):
                self.depth += 1
                if self.depth > MAX_DEPTH:
                    raise _Refused(line, f"YAML nested deeper than {MAX_DEPTH} levels")
                try:
                    return super().compose_node(parent, index)
                finally:
                    self.depth -= 1
            node = super().compose_node(parent, index)
            if node.end_mark is None:  # its anchor's collection is not finished: a cycle
                raise _Refused(line, f"YAML alias *{event.anchor} is inside the node its "
                                     "anchor names (a recursive document)")
            self.alias_budget -= _expanded(node, self.alias_budget + 1)
            if self.alias_budget < 0:
                raise _Refused(line, f"YAML alias *{event.anchor} expands the document beyond "
                                     f"{ALIAS_EXPANSION_LIMIT} values (aliases of aliases?); "
                                     "write the values out")
            return node

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                 re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    return Loader


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
    from doerunner.outputs.base import write_output
    from doerunner.outputs.cases_csv import CasesCsv

    write_output(CasesCsv(), generated, out, f"--out {os.fsdecode(out)}")
    return generated


