r"""Where each placeholder of a shell command template stands, in the shell's quoting, and
what is written there so that a parameter value is text and nothing else, whatever the
template's own quotes (FORMAT.md §2, §5).

The value itself is never written into the script ``sh`` runs: a placeholder becomes a
reference to the parameter's environment variable (``SRD_PARAM_<NAME>``, which every case
carries), and the shell substitutes the value as the result of a parameter expansion, which
it never reads again as code — not inside ``$(...)``, backquotes, double quotes or a
here-document. Only the quoting around the reference depends on where it stands:

- ``UNQUOTED`` (also inside ``$(...)``) and ``BACKQUOTE``: ``"${SRD_PARAM_X}"`` — one word,
  exactly the value;
- ``DOUBLE`` (inside ``"..."``), ``HEREDOC`` (an unquoted delimiter), ``COMMENT``:
  ``${SRD_PARAM_X}``;
- ``SINGLE`` (inside ``'...'``): the quote is closed around ``"${SRD_PARAM_X}"``;
- ``ARITH`` (inside ``$((...))``): ``${SRD_PARAM_X}``, and the value must be an integer
  (bash evaluates the text of a variable in arithmetic again: ``a[$(cmd)]``);
- ``QHEREDOC`` (a here-document with a quoted delimiter: nothing is substituted there) and
  ``NESTED`` (a string handed to another shell: ``sh -c '...'``, ``bash -c "..."``,
  ``eval``, which reads the substituted text again as code): refused (``problems``), with
  a message saying what to write instead.

The scanner follows ``\`` escapes, ``'...'``, ``"..."``, nested ``$(...)`` and ``$((...))``,
backquotes, comments and here-documents. A mistake of the scanner (a construct it does not
follow) can only make a value split into words or appear as ``${SRD_PARAM_X}``, never run:
every rendering is a parameter expansion. ``display`` writes the values themselves, quoted
for each context, for people (``--dry-run``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

UNQUOTED, SINGLE, DOUBLE, COMMENT = "unquoted", "single", "double", "comment"
BACKQUOTE, HEREDOC, QHEREDOC, ARITH = "backquote", "heredoc", "quoted here-document", "arith"
NESTED = "nested"
REFUSED = (QHEREDOC, NESTED)

_WORD_START = frozenset(" \t\n;&|(<>")
_HEREDOC_RE = re.compile(r"<<(-?)[ \t]*(?:'([^']*)'|\"([^\"]*)\"|(\\?)([^\s;&|<>()'\"]+))")
# A string handed to another shell: `sh -c '...'`, `bash -lc "..."`, `eval '...'`.
_NESTED_RE = re.compile(r"(?:^|[\s;&|(`])(?:eval|ssh\s[^;&|]*|watch\s[^;&|]*|su\s[^;&|]*-c"
                        r"|(?:\S*/)?(?:ba|da|z|k|a|mk|c|tc|fi)?sh(?:\s+-[A-Za-z]+)*"
                        r"\s+-[A-Za-z]*c[A-Za-z]*)\s+$")
INTEGER_RE = re.compile(r"[-+]?[0-9]+")


def reference(context: str, env: str) -> str:
    """What stands for a placeholder in ``context``: a reference to the environment
    variable ``env`` that holds its value, quoted so that the shell substitutes exactly the
    value. Raises ``ValueError`` for a context where nothing can stand (``REFUSED``)."""
    if context in (UNQUOTED, BACKQUOTE):  # a backquoted command is read again: unquoted
        return f'"${{{env}}}"'
    if context == SINGLE:
        return f"'\"${{{env}}}\"'"
    if context in (DOUBLE, HEREDOC, COMMENT, ARITH):
        return f"${{{env}}}"
    raise ValueError(f"nothing can stand inside a {context}")


def display(context: str, value: str) -> str:
    r"""``value`` as a person reads it where a placeholder stands in ``context`` (``--dry-run``:
    the command with its values; what runs holds ``reference``\ s)."""
    if context in (COMMENT, ARITH, HEREDOC, QHEREDOC):
        return value.replace("\n", " ") if context == COMMENT else value
    q = shlex.quote(value)
    if context == SINGLE:
        return f"'{q}'"
    if context == DOUBLE:
        return f'"{q}"'
    return q


def refusal(name: str, context: str) -> str:
    """Why a placeholder ``{name}`` in ``context`` (``REFUSED``) is refused, and what to
    write instead."""
    env = _env(name)
    if context == NESTED:
        return (f"cmd: {{{name}}} is in a string another shell reads again (sh -c, eval), "
                f"where a value would run as code: write ${env} in that string (the value "
                "is in its environment)")
    return (f"cmd: {{{name}}} is in a here-document with a quoted delimiter, where nothing "
            f"is substituted: unquote the delimiter, or read ${env}")


def arith_problem(name: str, value: str) -> str | None:
    """Why ``value`` cannot stand for ``{name}`` inside ``$((...))``: not an integer."""
    if INTEGER_RE.fullmatch(value.strip()):
        return None
    return (f"cmd: {{{name}}} is inside $((...)), where a value is read as arithmetic: "
            f"{value!r} is not an integer")


def _env(name: str) -> str:
    from doerunner.inputs.vocabulary import param_env_name

    return param_env_name(name)


class _Scan:
    """The quoting state of a template read left to right: a stack of contexts, each with
    the nesting depth of its parentheses (``$(`` ... ``)``)."""

    def __init__(self) -> None:
        self.stack: list[list] = [[UNQUOTED, 0, False]]  # context, paren depth, arithmetic
        self.pending: list[tuple[str, bool, bool]] = []  # here-documents opened on this line
        # (delimiter, strip tabs, quoted) of the here-document being read
        self.heredoc: tuple[str, bool, bool] | None = None
        self.comment = False  # in a comment, until the end of the line
        self.escaped = -1  # the index just after the last escaped character
        self.done = ""  # the template read so far (for what precedes a quote)
        self.prev = "\n"  # the character before the next one fed

    @property
    def context(self) -> str:
        if self.heredoc is not None:
            return QHEREDOC if self.heredoc[2] else HEREDOC
        if any(len(entry) > 3 and entry[3] for entry in self.stack):
            return NESTED  # anything in the string, $(...) included, is read again
        kind, _, arith = self.stack[-1][:3]
        return ARITH if arith else kind

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
                self.escaped = i
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
            self.done = (self.done + text)[-256:]

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
        word_start = (text[i - 1] if i else self.prev) in _WORD_START and self.escaped != i
        if c in "'\"":
            nested = bool(_NESTED_RE.search(self.done + text[:i]))
            self.stack.append([SINGLE if c == "'" else DOUBLE, 0, False, nested])
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
                quoted = m.group(5) is None or bool(m.group(4))
                delimiter = next(g for g in (m.group(2), m.group(3), m.group(5), "")
                                 if g is not None)
                self.pending.append((delimiter, m.group(1) == "-", quoted))
                return m.end()
        elif c == "\n" and self.pending:
            self.heredoc = self.pending.pop(0)
        return i + 1

    def _heredoc_line(self, text: str, i: int) -> int:
        """Read one body line of the here-document being read (from ``i``, a line start)."""
        end = text.find("\n", i)
        line = text[i:] if end < 0 else text[i:end]
        assert self.heredoc is not None
        delimiter, strip, _ = self.heredoc
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
            scan.done += "x"
    return found
