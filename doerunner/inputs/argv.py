"""Command templates run without a shell (``shell`` = false, ``--no-shell``; FORMAT.md §2):
the template → an argument vector, and the checks of a command template in either mode.

The template is split ONCE, before any value is put in, by ``shlex`` in POSIX mode (quotes
and backslashes as ``sh`` reads them; ``#`` is an ordinary character), each word
remembering whether it was written bare (no quote, no backslash). Then the placeholders
(``inputs.template``'s syntax) are filled:

- a bare word that is exactly one placeholder, ``{flags}``, becomes ``shlex.split(value)``:
  zero or more whole arguments (``-O2 -march=native`` is two), on purpose;
- any other word becomes exactly one argument, its placeholders filled with the values as
  text: ``"{name}"`` or ``'{name}'`` (one argument whatever the value), ``--level={level}``.

No value is ever read by a shell: ``$``, ``;``, ``*`` or a quote in a value is just text.
``${...}`` is not expanded (there is no shell to expand it).
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from doerunner.inputs.layout import quoted
from doerunner.inputs.template import (
    TemplateError,
    fill,
    placeholders,
    shell_problems,
    unknown_message,
    unknown_placeholders,
)

_SPACE = " \t\r\n"  # shlex's whitespace


class ArgvError(TemplateError):
    """A template (or a value standing alone in one) that cannot be split into arguments:
    an unbalanced quote, a lone backslash at the end."""


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a template: ``text`` with its quotes and backslashes removed, ``bare``
    when it was written without any (the text is then exactly what the template holds)."""

    text: str
    bare: bool


@functools.lru_cache(maxsize=1024)
def words(template: str) -> tuple[Word, ...]:
    """``template`` split as ``shlex.split`` splits it, each word marked bare or not. Raises
    ``ArgvError`` saying where the template cannot be split (1-based character)."""
    lex = shlex.shlex(template, posix=True)
    lex.whitespace_split = True
    lex.commenters = ""  # as shlex.split: '#' starts no comment
    stream = lex.instream
    out: list[Word] = []
    while True:
        start = stream.tell()
        try:
            text = lex.get_token()
        except ValueError as e:
            raise ArgvError(_split_problem(template, start, str(e))) from None
        if text is None:
            return tuple(out)
        # What the template holds from this word's start to its end (the separator that
        # ended it included, the spaces before it too): the same text when nothing was
        # removed from it, i.e. when it was written bare.
        written = template[start:stream.tell()].strip(_SPACE)
        out.append(Word(text, written == text))


def _split_problem(template: str, start: int, reason: str) -> str:
    """The message for a template that shlex could not split; the word that failed starts
    at ``start`` and runs to the end."""
    if reason == "No escaped character":
        return "ends with a lone backslash (write \\\\ for a backslash)"
    i, quote, at = start, "", 0
    while i < len(template):  # find the quote left open, reading as shlex did
        c = template[i]
        if quote != "'" and c == "\\":
            i += 2
            continue
        if not quote and c in "'\"":
            quote, at = c, i
        elif c == quote:
            quote = ""
        i += 1
    return (f"unbalanced quote: the {quote or 'quote'} at character {at + 1} is not closed "
            "(without a shell, the command is split as sh would split it)")


def sole_placeholder(word: Word) -> str | None:
    """The parameter a bare word consisting of exactly one placeholder names, else None."""
    if not word.bare or not word.text.startswith("{"):
        return None
    names = list(placeholders(word.text))
    return names[0] if len(names) == 1 and word.text == f"{{{names[0]}}}" else None


def argv_placeholders(template: str) -> list[str]:
    """The placeholders of ``template``'s words, in order (repeats included). Raises
    ``ArgvError`` when it cannot be split."""
    return [name for w in words(template) for name in placeholders(w.text)]


def render_argv(template: str, params: Mapping[str, str]) -> list[str]:
    """The arguments ``template`` gives with ``params`` (see the module docstring). Raises
    ``ArgvError`` when the template, or a value standing alone, cannot be split, and
    ``TemplateError`` for a placeholder that names no parameter."""
    argv: list[str] = []
    for word in words(template):
        name = sole_placeholder(word)
        if name is None:
            argv.append(fill(word.text, params))
            continue
        if name not in params:
            raise TemplateError(f"cmd uses {{{name}}} but there is no parameter '{name}'")
        try:
            argv.extend(shlex.split(params[name]))
        except ValueError:
            raise ArgvError(f"cmd: {{{name}}} stands alone, so its value is split into "
                            f"arguments, but {quoted(params[name])} cannot be split (an "
                            f"unbalanced quote or a lone backslash): write \"{{{name}}}\" "
                            "to pass it as one argument") from None
    return argv


def command_problems(column: str, template: str, params: Mapping[str, str],
                     shell: bool) -> list[str]:
    """Why ``template`` (the command of column ``column``: ``cmd``, a hook, or an option
    such as ``--setup``) cannot run with these parameters, one message each, prefixed with
    ``column``: placeholders naming no parameter; with a shell, placeholders where no
    quoting is safe; without one, a template or a standing-alone value that cannot be
    split, and a command that is empty once filled."""
    if shell:
        found = [unknown_message(name, params)
                 for name in unknown_placeholders(template, params)]
        found += shell_problems(template, params)
    else:
        try:
            names = argv_placeholders(template)
        except ArgvError as e:
            return [f"{column}: {e}"]
        unknown = [n for n in dict.fromkeys(names) if n not in params]
        found = [unknown_message(name, params) for name in unknown]
        if not found:
            try:
                if not render_argv(template, params):
                    found = ["cmd: nothing to run: the command is empty once its placeholders "
                             "are filled"]
            except TemplateError as e:
                found = [str(e)]
    return [relabel(message, column) for message in found]


def relabel(message: str, column: str) -> str:
    """A message about ``cmd`` said of ``column`` (a hook, an option) instead."""
    if column != "cmd" and message.startswith("cmd"):
        return column + message[3:]
    return message
