"""Command templates: ``{name}`` placeholders filled with parameter values (FORMAT.md §2).

The one parser of placeholders, used by the shell backend (rendering and checking), ``srd
design`` (checking a template's command) and ``srd run --dry-run`` (showing the command).

Syntax: ``{name}`` (``name`` of ``A-Za-z0-9_.-``) is a placeholder; ``{{`` and ``}}`` are
literal braces; ``${...}`` is shell syntax and left alone, and so is anything else in braces
that is not a ``{name}`` (awk's ``{print $1}``). Scanned left to right, so ``{{x}}`` is the
literal text ``{x}`` and ``${x}`` is never a placeholder.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterator, Mapping

_TOKEN = re.compile(r"\{\{|\}\}|\$\{[^}]*\}|\{([A-Za-z0-9_.-]+)\}")
_BRACES = {"{{": "{", "}}": "}"}  # literal braces; other tokens stay as written


class TemplateError(ValueError):
    """A placeholder names no parameter."""


def placeholders(template: str) -> Iterator[str]:
    """The names of the placeholders in ``template``, in order (repeats included)."""
    for m in _TOKEN.finditer(template):
        if m.group(1) is not None:
            yield m.group(1)


def unknown_placeholders(template: str, names: Collection[str]) -> list[str]:
    """The placeholders of ``template`` that are not in ``names``, each once, in order."""
    return list(dict.fromkeys(n for n in placeholders(template) if n not in names))


def unknown_message(name: str, names: Collection[str] = ()) -> str:
    """The message for a placeholder that names no parameter; "did you mean" when one of the
    parameters ``names`` is close."""
    import difflib

    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.75)
    if close:
        return f"cmd uses {{{name}}} but there is no parameter '{name}': did you mean " \
               f"{{{close[0]}}}?"
    return (f"cmd uses {{{name}}} but there is no parameter '{name}' "
            f"(write {{{{{name}}}}} for literal braces)")


def fill(template: str, params: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` replaced by ``params[name]`` as it is (no quoting:
    text no shell reads, an argument of ``inputs.argv``), ``{{``/``}}`` by single braces,
    ``${...}`` left as written. Raises ``TemplateError`` for a placeholder that names no
    parameter."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name is None:
            return _BRACES.get(m.group(0), m.group(0))
        if name not in params:
            raise TemplateError(f"cmd uses {{{name}}} but there is no parameter '{name}'")
        return params[name]

    return _TOKEN.sub(sub, template)


def _pieces(template: str) -> Iterator[tuple[str, str | None]]:
    """``template`` as ``(text, None)`` pieces of shell text (``{{``/``}}`` already single
    braces, ``${...}`` as is) and ``(token, name)`` placeholders, in order."""
    at = 0
    for m in _TOKEN.finditer(template):
        if m.start() > at:
            yield template[at:m.start()], None
        token = m.group(0)
        if m.group(1) is not None:
            yield token, m.group(1)
        else:
            yield _BRACES.get(token, token), None
        at = m.end()
    if at < len(template):
        yield template[at:], None


@functools.lru_cache(maxsize=1024)
def _plan(template: str) -> tuple[tuple[str, str | None, str], ...]:
    """``template``'s pieces (``_pieces``), each placeholder with the shell context it stands
    in (``inputs.shellquote``): decided once per distinct template (rendering is on the
    per-case path)."""
    from doerunner.inputs import shellquote

    pieces = list(_pieces(template))
    ctxs = iter(shellquote.contexts(pieces))
    return tuple((text, name, "" if name is None else next(ctxs)) for text, name in pieces)


def shell_problems(template: str, params: Mapping[str, str] | None = None) -> list[str]:
    """Why ``template`` cannot be run safely by ``sh``: one message per placeholder that
    stands where nothing can stand for a value (a string another shell reads again, a
    here-document with a quoted delimiter), and, with ``params``, per value that is not an
    integer inside ``$((...))``; each saying what to write instead (``inputs.shellquote``)."""
    if "{" not in template:
        return []
    from doerunner.inputs import shellquote

    found = []
    for _, name, ctx in _plan(template):
        if name is None:
            continue
        if ctx in shellquote.REFUSED:
            found.append(shellquote.refusal(name, ctx))
        elif ctx == shellquote.ARITH and params is not None and name in params:
            bad = shellquote.arith_problem(name, params[name])
            if bad:
                found.append(bad)
    return list(dict.fromkeys(found))


def render(template: str, params: Mapping[str, str]) -> str:
    """The script ``sh`` runs for ``template``: each ``{name}`` replaced by a reference to
    the environment variable that carries the value of ``params[name]``
    (``SRD_PARAM_<NAME>``, quoted for the context it stands in: ``inputs.shellquote``; the
    value itself is never in the script, so it is always text to ``sh``, never code), and
    ``{{``/``}}`` by single braces. The caller puts every parameter in the environment.
    Raises ``TemplateError`` for a placeholder that names no parameter or that cannot stand
    where it is (``shell_problems``)."""
    return _fill(template, params, display=False)


def display(template: str, params: Mapping[str, str]) -> str:
    """``template`` with the values themselves, quoted for each placeholder's context, as a
    person reads the command (``--dry-run``); ``render`` is what runs."""
    return _fill(template, params, display=True)


def _fill(template: str, params: Mapping[str, str], display: bool) -> str:
    if "{" not in template and "}" not in template:
        return template  # nothing to replace (every token holds a brace)
    from doerunner.inputs import shellquote
    from doerunner.inputs.vocabulary import param_env_name

    out: list[str] = []
    for text, name, ctx in _plan(template):
        if name is None:
            out.append(text)
            continue
        if name not in params:
            raise TemplateError(f"cmd uses {{{name}}} but there is no parameter '{name}'")
        if ctx in shellquote.REFUSED:
            raise TemplateError(shellquote.refusal(name, ctx))
        if ctx == shellquote.ARITH and (bad := shellquote.arith_problem(name, params[name])):
            raise TemplateError(bad)
        out.append(shellquote.display(ctx, params[name]) if display
                   else shellquote.reference(ctx, param_env_name(name)))
    return "".join(out)
