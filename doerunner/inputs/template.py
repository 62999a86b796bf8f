"""Command templates: ``{name}`` placeholders filled with parameter values (FORMAT.md §2).

The one parser of placeholders, used by the shell backend (rendering and checking), ``srd
design`` (checking a template's command) and ``srd run --dry-run`` (showing the command).

Syntax: ``{name}`` (``name`` of ``A-Za-z0-9_.-``) is a placeholder; ``{{`` and ``}}`` are
literal braces; ``${...}`` is shell syntax and left alone, and so is anything else in braces
that is not a ``{name}`` (awk's ``{print $1}``). Scanned left to right, so ``{{x}}`` is the
literal text ``{x}`` and ``${x}`` is never a placeholder.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Collection, Iterator, Mapping

_TOKEN = re.compile(r"\{\{|\}\}|\$\{[^}]*\}|\{([A-Za-z0-9_.-]+)\}")


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


def render(template: str, params: Mapping[str, str],
           quote: Callable[[str], str] = shlex.quote) -> str:
    """``template`` with each ``{name}`` replaced by ``quote(params[name])`` and ``{{``/``}}``
    by single braces. Raises ``TemplateError`` for a placeholder that names no parameter."""
    if "{" not in template and "}" not in template:
        return template  # nothing to replace (every token holds a brace)

    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = m.group(1)
        if name is None:
            return token  # ${...}
        if name not in params:
            raise TemplateError(f"cmd uses {{{name}}} but there is no parameter '{name}'")
        return quote(params[name])

    return _TOKEN.sub(sub, template)
