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
            yield {"{{": "{", "}}": "}"}.get(token, token), None
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


def shell_problems(template: str) -> list[str]:
    """Why ``template`` cannot be run safely by ``sh``: one message per placeholder that
    stands where no quoting makes a value safe (inside backquotes or a here-document), each
    saying how to write it instead (``inputs.shellquote``)."""
    if "{" not in template:
        return []
    from doerunner.inputs import shellquote

    return list(dict.fromkeys(
        shellquote.refusal(name, ctx) for _, name, ctx in _plan(template)
        if name is not None and ctx in (shellquote.BACKQUOTE, shellquote.HEREDOC)))


def render(template: str, params: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` replaced by the value of ``params[name]`` quoted for
    the shell context it stands in (``inputs.shellquote``: unquoted, inside ``'...'`` or
    ``"..."``; a value is always text to ``sh``, never code), and ``{{``/``}}`` by single
    braces. Raises ``TemplateError`` for a placeholder that names no parameter or stands
    where no quoting is safe (``shell_problems``)."""
    if "{" not in template and "}" not in template:
        return template  # nothing to replace (every token holds a brace)
    from doerunner.inputs import shellquote

    out: list[str] = []
    for text, name, ctx in _plan(template):
        if name is None:
            out.append(text)
            continue
        if name not in params:
            raise TemplateError(f"cmd uses {{{name}}} but there is no parameter '{name}'")
        try:
            out.append(shellquote.quote_in(ctx, params[name]))
        except ValueError:
            raise TemplateError(shellquote.refusal(name, ctx)) from None
    return "".join(out)
