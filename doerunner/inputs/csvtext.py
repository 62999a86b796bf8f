"""The text of an input CSV file: read, decoded, cut into lines, its separator, and the place
of a CSV fault.

What the cases.csv reader needs below the level of cells: every failure to read or decode a
file becomes an ``InputError`` naming it, the separator is recognised from the header (the
``;`` or tab of spreadsheets' exports in some locales), and a row that the ``csv`` module
rejects is walked again the way strict RFC 4180 reads it, so the problem is reported at its
own line and column.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping

from doerunner.errors import InputError, Problem

MAX_FIELD_CHARS = 1 << 20  # csv's own limit (128 KiB) is too small for long commands or notes

# A quoted field; the look-ahead makes `"abc""` at the end of the file read as unterminated.
_QUOTED = re.compile(r'"[^"]*(?:""[^"]*)*"(?!")')
# What a notice calls each separator srd reads ("read as ;-separated").
SEPARATORS = {",": ",", ";": ";", "\t": "tab"}
_COMMA_NUMBER_TEXT = r"[+-]?\d*,\d+"  # a number written with a decimal comma
_DECIMAL_COMMA = re.compile(r"(?:[<>]=?)?\s*" + _COMMA_NUMBER_TEXT)  # ... or a bound of one
_COMMA_NUMBER = re.compile(_COMMA_NUMBER_TEXT)


def decode(file: str, data: bytes) -> tuple[str, bool]:
    """The text (a leading BOM dropped), and whether it holds undecodable bytes (kept as lone
    surrogates, to be reported per cell). UTF-16 is refused with a hint."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError([Problem(file, 1, 0, "file is UTF-16 encoded: save it as UTF-8")])
    try:
        text, bad = data.decode("utf-8"), False
    except UnicodeDecodeError:
        text, bad = data.decode("utf-8", "surrogateescape"), True
    return (text[1:] if text.startswith("\ufeff") else text), bad


def lines(text: str) -> Iterator[str]:
    """The lines of ``text``, each with its LF. Not ``splitlines``: that also breaks at
    form feeds and U+2028, which may sit inside a cell; not ``StringIO``: it copies the text to
    four bytes a character."""
    find = text.find
    start = 0
    while True:
        end = find("\n", start) + 1
        if not end:
            if start < len(text):
                yield text[start:]
            return
        yield text[start:end]
        start = end


def separator(text: str) -> str:
    """The field separator of ``text``: ``;`` or a tab when the header (the first line that is
    neither a comment nor blank) names ``case_id`` only when cut at that separator, as
    spreadsheets export CSV in locales whose decimal mark is a comma; ``,`` otherwise."""
    for line in lines(text):
        if not line.strip(" \t\r\n,;") or line.lstrip().startswith("#"):
            continue
        for sep in SEPARATORS:
            try:
                cells = next(csv.reader([line], delimiter=sep))
            except csv.Error:  # e.g. a header cell over csv's field size limit
                continue
            if any(cell.strip() == "case_id" for cell in cells):
                return sep
        break
    return ","


def decimal_comma_hint(value: str) -> str:
    """`` (a decimal comma: write '0.5')`` when ``value`` is a number (or a threshold) written
    with a decimal comma, else ``""``: srd reads numbers with a decimal point only, and never
    guesses what a comma in one means."""
    value = value.strip()
    if not _DECIMAL_COMMA.fullmatch(value):
        return ""
    return f" (a decimal comma: write {value.replace(',', '.')!r})"


def decimal_comma_params(params: Iterable[Mapping[str, str]]) -> list[str]:
    """The parameters whose every non-empty value is a number written with a decimal comma
    (``0,5``), in the order first seen. They reach commands as written: ``strtod`` in a C
    locale, or Python's ``float``, reads ``0,5`` as 0 or refuses it."""
    seen: dict[str, bool] = {}  # name -> every value so far has a decimal comma
    for p in params:
        for name, value in p.items():
            value = value.strip()
            if value:
                seen[name] = seen.get(name, True) and bool(_COMMA_NUMBER.fullmatch(value))
    return [name for name, comma in seen.items() if comma]


class Locator:
    """Finds where a row the ``csv`` module rejected goes wrong, in ``text`` cut at ``sep``."""

    def __init__(self, text: str, sep: str = ",") -> None:
        self.text = text
        self.sep = sep
        self.ends = sep + "\r\n"  # what ends an unquoted field
        self.unquoted = re.compile(f"[^{re.escape(sep)}\r\n]*")
        self.cursor = (1, 0)  # (line, offset) of a known line start, moved forward only

    def offset_of(self, line: int) -> int:
        """The offset of the start of ``line`` (1-based; lines are asked for in order)."""
        at_line, offset = self.cursor
        find = self.text.find
        while at_line < line and offset >= 0:
            offset = find("\n", offset) + 1 or -1
            at_line += 1
        if offset < 0:
            offset = len(self.text)
        self.cursor = (line, offset)
        return offset

    def locate(self, pos: int, line: int) -> tuple[int, int, str, int] | None:
        """Walk one row from offset ``pos`` (line ``line``) the way strict RFC 4180 reads it;
        return (line, column, message) of its first fault and the row's last line."""
        text, sep, ends, unquoted = self.text, self.sep, self.ends, self.unquoted
        n = len(text)
        col = 1
        fault: tuple[int, int, str] | None = None
        while True:
            if text.startswith('"', pos):
                m = _QUOTED.match(text, pos)
                if m is None:
                    return line, col, "unterminated quoted field", text.count("\n", pos) + line
                end = m.end()
                size = end - pos - 2 - text.count('""', pos + 1, end - 1)
                if size > MAX_FIELD_CHARS and fault is None:
                    fault = (line, col, "field longer than 1 MiB")
                line += text.count("\n", pos, end)
                pos = end
                if pos < n and text[pos] not in ends:
                    if fault is None:
                        fault = (line, col, "text after the closing quote of a quoted field "
                                            '(write "" for a quote inside quotes)')
                    pos = unquoted.match(text, pos).end()  # type: ignore[union-attr]
            else:
                end = unquoted.match(text, pos).end()  # type: ignore[union-attr]
                if end - pos > MAX_FIELD_CHARS and fault is None:
                    fault = (line, col, "field longer than 1 MiB")
                pos = end
            if pos < n and text[pos] == sep:
                pos += 1
                col += 1
                continue
            if pos < n and text[pos] == "\r":
                while pos < n and text[pos] == "\r":
                    pos += 1
                if pos < n and text[pos] != "\n" and fault is None:
                    fault = (line, col, "carriage return without line feed outside quotes: "
                                        "use LF or CRLF line ends")
            return None if fault is None else (*fault, line)
