"""A captured stream's complete lines, to its metrics parser and its ``metric_*`` extractor,
at the speed of the bytes methods where the lines' effect is already known.

Feeding a line to the parser costs microseconds: a command printing millions of short lines
would be held back by srd (issue 17, ``benchmarks/capture.py``). But what the parser ends
with depends, for each column, only on the last line that set it (later values win), and
what an extractor ends with only on the last line that matched. A block of complete lines
(what one read brought) is handled by the first of these that applies:

1. no line can be a metrics line (no ``=`` nor ``{``: ``memchr``) and no pattern looks at
   lines: nothing to do;
2. the block repeats one unit of lines (``yes lat_ms=1.5``, two alternating lines), proved
   by one ``memcmp`` of the block against itself shifted by the unit: every line of the
   block has a copy in its last unit, later, so only that unit is fed;
3. every line is ``key=value`` tokens separated by single spaces, the keys all ones the
   stream already printed in metrics lines (``LineFeed`` remembers up to ``MAX_KEYS``): the
   counts of ``=``, of spaces, of newlines and of each ``\\nkey=`` and `` key=`` prove it
   (``_keyed``). Then for each column only the last line that set it is fed, found with
   ``rfind`` from the end; the extractor, when there is one, still sees every line;
4. else every line is fed (``parse_lines``).

The parser and the extractor end exactly as if every line had been fed, in order
(``tests/test_lines.py`` checks it against feeding every line).
"""

from __future__ import annotations

from doerunner.backends.outparse import Extractor, OutputParser, column

MAX_LINE = 1 << 20  # longer lines are not metrics lines: not kept for the parser
MAX_KEYS = 64  # keys a stream's fast path 3 knows; a stream with more falls back to 4
_UNIT_WINDOW = 64 * 1024  # how far back the previous copy of the last line is looked for
_LAST_LINES = 32  # lines tried, from the end, for one column before falling back to 4
_GIVE_UP = -2
# The ASCII characters str.split() splits on, but space and newline (non-ASCII ones are ruled
# out by isascii).
_OTHER_SPACE = (b"\t", b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x1f")


def parse_lines(parser: OutputParser, buf: bytes, keys: dict | None = None) -> None:
    """Feed the lines of ``buf`` (complete lines; the end of ``buf`` ends the last one) that
    may be metrics lines. Only lines holding ``=`` or ``{`` are decoded, so a huge plain
    output costs little. The keys of ``key=value`` lines are added to ``keys`` (a
    ``LineFeed``'s), up to ``MAX_KEYS``."""
    find = buf.find
    eq, brace = find(b"="), find(b"{")  # the next of each (memchr), -1: none left
    while eq >= 0 or brace >= 0:
        at = eq if brace < 0 or 0 <= eq < brace else brace
        start = buf.rfind(b"\n", 0, at) + 1
        end = find(b"\n", at)
        if end < 0:
            end = len(buf)
        if end - start <= MAX_LINE:
            learned = parser.feed_line(buf[start:end].decode("utf-8", "replace"))
            if learned and keys is not None and len(keys) < MAX_KEYS:
                for key in learned:
                    if key not in keys:
                        _learn(keys, key)
        if eq <= end:
            eq = find(b"=", end + 1) if eq >= 0 else -1
        if brace <= end:
            brace = find(b"{", end + 1) if brace >= 0 else -1


def _learn(keys: dict[str, tuple[bytes, bytes, str | None]], key: str) -> None:
    """Remember ``key``: the two ways it starts a token (at a line start, after a space)
    and its column (None: output may not set it)."""
    raw = key.encode("utf-8", "surrogatepass")
    keys[key] = (b"\n" + raw + b"=", b" " + raw + b"=", column(key))


class LineFeed:
    """The complete lines of one stream, to its ``parser`` and ``extractor`` (None: the
    case has no ``metric_*`` patterns): ``feed`` a few lines, ``block`` what a read
    brought."""

    __slots__ = ("_keys", "_last", "extractor", "parser")

    def __init__(self, parser: OutputParser, extractor: Extractor | None) -> None:
        self.parser = parser
        self.extractor = extractor
        # key as written -> (b"\nkey=", b" key=", its column): keys of metrics lines seen
        self._keys: dict[str, tuple[bytes, bytes, str | None]] = {}
        self._last = b""  # the last line fed, with its newline

    def feed(self, buf: bytes) -> None:
        """Complete lines (the end of ``buf`` ends the last one, a newline is optional),
        each to the parser and to the extractor. The line just fed again changes nothing:
        it is skipped (the line a read cuts in two, in a run of one repeated line)."""
        if buf == self._last:
            return
        parse_lines(self.parser, buf, self._keys)
        if self.extractor is not None:
            self.extractor.feed(buf.decode("utf-8", "replace"))
        self._last = buf[buf.rfind(b"\n", 0, len(buf) - 1) + 1:] if buf.endswith(b"\n") \
            else b""

    def patterns_only(self, buf: bytes) -> None:
        """Lines ended by CR at the start of an overlong line (progress redrawn in place):
        to the extractor only, the parser never sees a line that long."""
        if self.extractor is not None:
            self.extractor.feed(buf.decode("utf-8", "replace"))
        self._last = b""

    def block(self, data: bytes, s: int, e: int) -> None:
        """The complete lines ``data[s:e]``: ``data[s - 1]`` and ``data[e - 1]`` are
        newlines (``s`` >= 1). ``data`` is not copied unless it must be fed whole."""
        extractor = self.extractor
        if extractor is None and data.find(b"=", s, e) < 0 and data.find(b"{", s, e) < 0:
            self._last = b""  # 1: no metrics line
            return
        unit = _repeated_unit(data, s, e)
        if unit is not None:  # 2
            self.feed(data[unit:e])
            return
        if self._keys and data.find(b"{", s, e) < 0 and self._keyed(data, s, e):  # 3
            if extractor is not None:
                extractor.feed(data[s:e].decode("utf-8", "replace"))
            self._last = data[data.rfind(b"\n", s - 1, e - 1) + 1:e]
            return
        self.feed(data[s:e])  # 4

    def _keyed(self, data: bytes, s: int, e: int) -> bool:
        """Path 3: when every line of ``data[s:e]`` (no ``{`` in it) is single-spaced
        ``key=value`` tokens of known keys, feed the parser the last line that set each
        column and return True; else feed nothing and return False.

        Why the counts prove it: each ``=`` counted by a known key's ``\\nkey=`` or
        `` key=`` is the first ``=`` of a token starting with that key (keys hold no space,
        newline or ``=``), and two such patterns never end at the same ``=``; so when they
        add up to every ``=``, each line has at most as many ``=`` as tokens. The only
        whitespace being single spaces between tokens and newlines (no empty line), a line
        of ``t`` tokens has at least ``t - 1`` spaces, and exactly ``t - 1`` only when no
        space leads, trails or doubles; so spaces = ``=`` - lines holds only when every
        token of every line is ``key=value`` with a known key: a metrics line."""
        if not data.isascii() or data.find(b"\n\n", s - 1, e) >= 0:
            return False
        for ch in _OTHER_SPACE:
            if data.find(ch, s, e) >= 0:
                return False
        equals = data.count(b"=", s, e)
        spaces = equals - data.count(b"\n", s, e)
        if spaces < 0 or (data.count(b" ", s, e) != spaces if spaces
                          else data.find(b" ", s, e) >= 0):
            return False
        covered = 0
        present = []  # the keys the block holds, in the order tried
        for key, (at_start, after_space, _) in self._keys.items():
            n = data.count(at_start, s - 1, e)
            if covered + n < equals:
                n += data.count(after_space, s, e)
            if n:
                covered += n
                present.append(key)
                if covered >= equals:
                    break  # every "=" is a known key's: no other key is in the block
        if covered != equals:
            return False
        # The last line setting each column (a line may hold a key and yet not set its
        # column: a value that is not a number).
        last: dict[str, int] = {}  # column -> start of the last line setting it
        for key in present:
            at_start, after_space, col = self._keys[key]
            if col is None:
                continue  # srd's own columns, input prefixes: already in parser.ignored
            found = _last_setting(data, s, e, at_start, after_space, col)
            if found == _GIVE_UP:
                return False
            if found > last.get(col, -1):
                last[col] = found
        keys = self._keys
        if list(keys)[:len(present)] != present:  # the keys found are tried first next time
            self._keys = {**{key: keys[key] for key in present}, **keys}
        for start in sorted(set(last.values())):
            self.parser.feed_line(data[start:data.find(b"\n", start)].decode("ascii"))
        return True


def _last_setting(data: bytes, s: int, e: int, at_start: bytes, after_space: bytes,
                  col: str) -> int:
    """The start of the last line of ``data[s:e]`` holding the key of these patterns that
    sets ``col``; -1 when no line does; ``_GIVE_UP`` when ``_LAST_LINES`` lines hold the
    key and none of them sets the column."""
    end = e
    for _ in range(_LAST_LINES):
        at = max(data.rfind(at_start, s - 1, end), data.rfind(after_space, s, end))
        if at < 0:
            return -1
        start = data.rfind(b"\n", s - 1, at + 1) + 1
        line = data[start:data.find(b"\n", at + 1)].decode("ascii")
        scratch = OutputParser()
        scratch.feed_line(line)
        if col in scratch.result():
            return start
        end = start  # the next candidate ends before this line
    return _GIVE_UP


def _repeated_unit(data: bytes, s: int, e: int) -> int | None:
    """Path 2: where the last unit of ``data[s:e]`` starts when the block repeats a unit
    of lines at least twice, else None. The unit's length is guessed from the previous copy
    of the last line (within ``_UNIT_WINDOW``), then the block is compared with itself
    shifted by it (one ``memcmp``, no copy)."""
    last = data.rfind(b"\n", s - 1, e - 1)  # the newline ending the line before the last
    if last < s - 1 or e - last > _UNIT_WINDOW:
        return None
    copy = data.rfind(data[last:e], max(s - 1, e - _UNIT_WINDOW), e - 1)
    if copy < 0:
        return None
    n = last - copy  # the unit's length
    if 2 * n > e - s or not data.startswith(memoryview(data)[s:e - n], s + n):
        return None
    return e - n
