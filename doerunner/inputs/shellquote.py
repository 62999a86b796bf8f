"""Where each placeholder of a shell command template stands, in the shell's quoting: the
decision of how a parameter value is quoted so that it is text and nothing else, whatever
the template's own quotes (FORMAT.md §2).

``shlex.quote`` output is only safe where the shell reads it unquoted: written inside a
template's double quotes (``echo "x={x}"``, the most common style) its single quotes are
literal characters and ``$(...)`` in the value runs. So a template is scanned as POSIX
``sh`` reads it and each placeholder gets the context it stands in:

- ``UNQUOTED`` (also inside ``$(...)`` and ``$((...))``): the quoted value as is;
- ``SINGLE`` (inside ``'...'``): the quote is closed, the quoted value follows, the quote
  reopens: ``'a{x}b'`` → ``'a''<value>''b'``;
- ``DOUBLE`` (inside ``"..."``): the same with double quotes: ``"a"'<value>'"b"``;
- ``COMMENT``: the value with its newlines made spaces (a newline would end the comment);
- ``BACKQUOTE`` (inside ```...```, where backslashes and quotes are read twice) and
  ``HEREDOC`` (a here-document's body, where a value holding a line equal to the delimiter
  would end it): no quoting is safe there, so such a template is refused (``problems``),
  with a message that says how to write it.

The scanner follows ``\\`` escapes, ``'...'``, ``"..."``, nested ``$(...)`` and ``$((...))``,
backquotes, comments and here-documents (``<<WORD``, ``<<-WORD``, quoted delimiters). It
reads the template, never the values: the contexts are the same for every case.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

UNQUOTED, SINGLE, DOUBLE, COMMENT = "unquoted", "single", "double", "comment"
BACKQUOTE, HEREDOC = "backquote", "heredoc"

_WORD_START = frozenset(" \t\n;&|()<>")
_HEREDOC_RE = re.compile(r"<<(-?)[ \t]*(?:'([^']*)'|\"([^\"]*)\"|\\?([A-Za-z0-9_.-]+))")


def quote_in(context: str, value: str) -> str:
    """``value`` written so that the shell reads it as exactly that text where a placeholder
    stands in ``context``. Raises ``ValueError`` for a context where nothing is safe."""
    if context == COMMENT:  # never run, but a newline would end the comment
        return value.replace("\n", " ")
    q = shlex.quote(value)
    if context == UNQUOTED:
        return q
    if context == SINGLE:
        return f"'{q}'"
    if context == DOUBLE:
        return f'"{q}"'
    raise ValueError(f"no safe quoting inside a {context}")


def refusal(name: str, context: str) -> str:
    """Why a placeholder ``{name}`` in ``context`` (``BACKQUOTE``, ``HEREDOC``) is refused,
    and what to write instead."""
    if context == BACKQUOTE:
        return (f"cmd: {{{name}}} is inside backquotes, where no quoting makes a value safe: "
                f"write $(...) instead of `...`")
    return (f"cmd: {{{name}}} is inside a here-document, where no quoting makes a value safe: "
            f"pass it as an argument or read ${_env(name)} instead")


def _env(name: str) -> str:
    from doerunner.inputs.vocabulary import param_env_name

    return param_env_name(name)


class _Scan:
    """The quoting state of a template read left to right: a stack of contexts, each with
    the nesting depth of its parentheses (``$(`` ... ``)``)."""

    def __init__(self) -> None:
        self.stack: list[list] = [[UNQUOTED, 0, False]]  # context, paren depth, arithmetic
        self.pending: list[tuple[str, bool]] = []  # here-documents opened on this line
        self.heredoc: tuple[str, bool] | None = None  # (delimiter, strip tabs) being read
        self.comment = False  # in a comment, until the end of the line
        self.prev = "\n"  # the character before the next one fed

    @property
    def context(self) -> str:
        return HEREDOC if self.heredoc is not None else self.stack[-1][0]

    def feed(self, text: str) -> None:
        """Advance over ``text`` (template text that is not a placeholder)."""
        i, n = 0, len(text)
        while i < n:
            if self.comment:
                end = text.find("\n", i)
                if end < 0:
                    break
                self.comment = False
                i = end
            if self.heredoc is not None:
                i = self._heredoc_line(text, i)
                continue
            c = text[i]
            top = self.stack[-1]
            kind = top[0]
            if kind == SINGLE:
                if c == "'":
                    self.stack.pop()
                i += 1
            elif c == "\\":
                i += 2
            elif kind == BACKQUOTE:
                if c == "`":
                    self.stack.pop()
                i += 1
            elif kind == DOUBLE:
                if c == '"':
                    self.stack.pop()
                    i += 1
                else:
                    i = self._expansion(text, i)
            else:
                i = self._unquoted(text, i, top)
        if text:
            self.prev = text[-1]

    def _expansion(self, text: str, i: int) -> int:
        """``$(``, ``$((`` or a backquote at ``i`` opens a context; anything else is one
        character."""
        if text.startswith("$((", i):
            self.stack.append([UNQUOTED, 0, True])
            return i + 3
        if text.startswith("$(", i):
            self.stack.append([UNQUOTED, 0, False])
            return i + 2
        if text[i] == "`":
            self.stack.append([BACKQUOTE, 0, False])
        return i + 1

    def _unquoted(self, text: str, i: int, top: list) -> int:
        c = text[i]
        word_start = (text[i - 1] if i else self.prev) in _WORD_START
        if c == "'":
            self.stack.append([SINGLE, 0, False])
        elif c == '"':
            self.stack.append([DOUBLE, 0, False])
        elif c in "$`":
            return self._expansion(text, i)
        elif c == "(":
            top[1] += 1
        elif c == ")" and len(self.stack) > 1:
            if top[1]:
                top[1] -= 1
            elif top[2]:  # $(( ... )): the second ) closes it
                self.stack.pop()
                return i + 2
            else:
                self.stack.pop()
        elif c == "#" and word_start:
            self.comment = True
        elif c == "<" and text.startswith("<<", i) and not text.startswith("<<<", i):
            m = _HEREDOC_RE.match(text, i)
            if m:
                self.pending.append((m.group(2) or m.group(3) or m.group(4) or "",
                                     m.group(1) == "-"))
                return m.end()
        elif c == "\n" and self.pending:
            self.heredoc = self.pending.pop(0)
        return i + 1

    def _heredoc_line(self, text: str, i: int) -> int:
        """Read one body line of the here-document being read (from ``i``, a line start)."""
        end = text.find("\n", i)
        line = text[i:] if end < 0 else text[i:end]
        assert self.heredoc is not None
        delimiter, strip = self.heredoc
        if (line.lstrip("\t") if strip else line) == delimiter:
            self.heredoc = self.pending.pop(0) if self.pending else None
        return len(text) if end < 0 else end + 1


def contexts(pieces: Iterable[tuple[str, str | None]]) -> list[str]:
    """The context of each placeholder of a template given as pieces: ``(text, None)`` for
    template text, ``(token, name)`` for a placeholder. One context per placeholder, in
    order."""
    scan = _Scan()
    found: list[str] = []
    for text, name in pieces:
        if name is None:
            scan.feed(text)
        else:
            found.append(COMMENT if scan.comment else scan.context)
            scan.prev = "x"
    return found
