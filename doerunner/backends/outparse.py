"""Metrics from a command's output: ``key=value`` lines and JSON objects (FORMAT.md §3).

Three shapes are recognised:

* a line whose every whitespace-separated token is ``key=value``
  (``p95=0.050 p99=0.080 errors=0``). A key must start with a letter or ``_`` (so a
  command-line echo such as ``--threads=4`` is not a metrics line); the value is the text
  after the first ``=`` and may be empty;
* a line that is a JSON object (``{"p95": 0.05}``);
* the whole stdout being one JSON object, possibly pretty-printed over many lines, or a JSON
  array holding exactly one object (``sqlite3 -json``: ``[{"n":3,"avg_ms":1.5}]``). An array
  of several objects is not read: which of them would be the case's metrics? (Its lines are
  not objects either, so nothing of it is parsed.)

Nested JSON keys are joined with ``_`` (``{"latency": {"p95": 0.05}}`` → ``latency_p95``);
JSON arrays and ``null`` are ignored. Keys are lower-cased and every character outside
``[a-z0-9_]`` becomes ``_``.

Values: integers stay ``int`` (``42``), anything with a decimal point or an exponent is a
``float`` (``42.0``, ``1e-3``). NaN and infinities are ignored, and so are JSON booleans (they
are not numbers). A JSON string that is a number literal (``"0.05"``) counts as that number,
as it would in a ``key=value`` line. ``ext_*`` keys keep their value as the text written
(``ext_n=007`` → ``"007"``, JSON ``true`` → ``"true"``). ``errors`` must be a non-negative
integer; an integral float becomes an ``int``, anything else is ignored.

What srd cannot store exactly is stored safely (``cells.storable``): an integer beyond 64 bits
(``checksum=18446744073709551616``) becomes the nearest float, and text keeps no invalid
Unicode (a JSON ``"\\ud83d"`` becomes U+FFFD) nor control characters but TAB, LF and CR.

Keys naming a column srd measures or derives itself (``columns.srd_owned``: ``runs``,
``energy_adjusted_j``, ``thermal_throttle_detected``, the run columns...) are ignored, and an
OK execution says which in one warning (``ignored_warnings``); keys with an input prefix
(``param_``, ``threshold_``, ``tag_``, ``note_``) are ignored silently.

Precedence ("later values win"): within one stream a later line overrides an earlier one;
stdout overrides stderr (stdout is where a program reports its results, stderr carries its
diagnostics, and the two pipes have no reliable relative order, so a fixed order keeps
the result deterministic); a whole-stdout JSON object is applied last.

``metric_<name>`` columns of cases.csv (``inputs.patterns``) are applied after all of this
(``extract``): each pattern is matched line by line (a line ends at LF, CR or CRLF, so
progress printed with CR counts too); its metric is the group's text in the last match in
stdout, else the last in stderr — the final figure of a program that prints progress, and
the same "later wins, stdout over stderr" as above. It replaces whatever the output's keys
said of that metric; when nothing matched, or the text is not a number, the metric is empty
(None) and a warning says why.
"""

from __future__ import annotations

import json
import math
import re
import time

from doerunner.cells import INT64_MAX, storable_int, storable_text
from doerunner.columns import srd_owned
from doerunner.inputs.patterns import MetricPattern
from doerunner.inputs.vocabulary import ECHOED_PREFIXES, RUN_COLUMNS
from doerunner.results import Metric

# Run-info and bookkeeping columns a command must not overwrite (with every other column srd
# measures itself: ``columns.srd_owned``), and the prefixes of the columns that come from
# cases.csv (parameters, thresholds, tags, notes): never from output.
RESERVED_KEYS = RUN_COLUMNS
RESERVED_PREFIXES = ECHOED_PREFIXES

_KEY_START = re.compile(r"[A-Za-z_]")
_NOT_KEY_CHAR = re.compile(r"[^a-z0-9_]")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


# raw key -> (its column, None when output may not set it; the srd column it names, if any)
_KEYS: dict[str, tuple[str | None, str | None]] = {}


def normalize_key(key: str) -> str:
    """``Latency P95`` → ``latency_p95``: lower-case, ``[^a-z0-9_]`` → ``_``."""
    return _NOT_KEY_CHAR.sub("_", key.lower())


def _column(raw_key: str) -> tuple[str | None, str | None]:
    """``(column, owned)``: the column ``raw_key`` names, or None when it is empty or one
    output may not set (srd's own columns, input prefixes); ``owned`` is the srd column it
    names (to be warned about), else None. Remembered: a sweep prints the same keys case
    after case."""
    try:
        return _KEYS[raw_key]
    except KeyError:
        pass
    key: str | None = normalize_key(raw_key)
    owned = None
    if key and (key in RESERVED_KEYS or srd_owned(key)):
        key, owned = None, key
    elif not key or key.startswith(RESERVED_PREFIXES):
        key = None
    if len(_KEYS) > 65536:
        _KEYS.clear()
    _KEYS[raw_key] = (key, owned)
    return key, owned


def column(raw_key: str) -> str | None:
    """The column an output key names (``Latency P95`` → ``latency_p95``), or None when
    output may not set it (srd's own columns, input prefixes, an empty key)."""
    return _column(raw_key)[0]


def _number(text: str) -> int | float | None:
    text = text.strip()
    if text.isdigit() and text.isascii() and len(text) < 19:  # the common case, no regex
        return int(text)
    if _INT.fullmatch(text):
        try:
            return storable_int(int(text))  # beyond 64 bits: the nearest float
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            return None
    if _FLOAT.fullmatch(text):
        value = float(text)
        return value if math.isfinite(value) else None
    return None


class _JsonNumber(str):
    """A JSON number kept as the text written, so ``ext_*`` keys can keep it verbatim."""


class _JsonConstant(str):
    """NaN, Infinity, -Infinity: never a metric."""


def _loads(text: str) -> object:
    return json.loads(text, parse_int=_JsonNumber, parse_float=_JsonNumber,
                      parse_constant=_JsonConstant)


class OutputParser:
    """Parses one stream line by line, so output can be parsed as it arrives.

    Feed every line (with or without its newline) to ``feed_line``; ``result`` returns the
    metrics found so far. A parser is for one stream; ``combine`` merges two.
    """

    __slots__ = ("_metrics", "ignored")

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self.ignored: set[str] = set()  # keys naming srd's own columns, ignored

    def feed_line(self, line: str) -> tuple[str, ...]:
        """Parse one line; lines that are neither all ``key=value`` nor a JSON object are
        ignored. Returns the keys of a ``key=value`` line, as written (else ``()``): the
        capture learns a stream's keys from them (``process.lines``)."""
        text = line.strip()
        if not text:
            return ()
        if text[0] == "{" and text[-1] == "}":
            obj = _try_json(text)
            if obj is not None:
                _add_json(self._metrics, obj, self.ignored)
            return ()
        if "=" not in text:
            return ()
        pairs = []
        for token in text.split():
            key, eq, value = token.partition("=")
            if not eq or not _KEY_START.match(key):
                return ()
            pairs.append((key, value))
        for key, value in pairs:
            _add(self._metrics, key, value, value, self.ignored)
        return tuple(key for key, _ in pairs)

    def result(self, whole_stdout: str | None = None) -> dict[str, Metric]:
        """The metrics of the lines fed so far, then those of ``whole_stdout`` when it is one
        JSON object or an array of exactly one (pass None when the whole text is not
        available, e.g. it was capped)."""
        metrics = dict(self._metrics)
        if whole_stdout is not None:
            text = whole_stdout.strip()
            if (text[:1], text[-1:]) in _WHOLE_JSON:
                obj = _try_json(text, one_of_array=True)
                if obj is not None:
                    _add_json(metrics, obj, self.ignored)
        return metrics


def combine(stdout: OutputParser, stderr: OutputParser,
            whole_stdout: str | None = None) -> dict[str, Metric]:
    """Metrics of both streams: stderr, overridden by stdout lines, overridden by a
    whole-stdout JSON object."""
    metrics = stderr.result(None)
    metrics.update(stdout.result(whole_stdout))
    return metrics


def ignored_warnings(stdout: OutputParser, stderr: OutputParser) -> tuple[str, ...]:
    """The warning of an execution whose output named srd's own columns (call after
    ``combine``): one, naming them all, or none."""
    keys = stdout.ignored | stderr.ignored
    if not keys:
        return ()
    return (f"output keys naming columns srd sets itself were ignored: {', '.join(sorted(keys))}"
            " (FORMAT.md §3)",)


def parse_output(stdout: str, stderr: str = "") -> dict[str, Metric]:
    """Metrics from a command's whole stdout and stderr text (see the module docstring)."""
    out, err = OutputParser(), OutputParser()
    for line in stdout.splitlines():
        out.feed_line(line)
    for line in stderr.splitlines():
        err.feed_line(line)
    return combine(out, err, stdout)


_WHOLE_JSON = (("{", "}"), ("[", "]"))


def _try_json(text: str, one_of_array: bool = False) -> dict | None:
    """The JSON object ``text`` is, or with ``one_of_array`` the one object of a JSON array
    holding exactly one; else None."""
    try:
        obj = _loads(text)
    except (ValueError, RecursionError):
        return None
    if one_of_array and isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    return obj if isinstance(obj, dict) else None


def _add_json(metrics: dict[str, Metric], obj: dict, ignored: set[str] | None,
              prefix: str = "") -> None:
    for key, value in obj.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, dict):
            _add_json(metrics, value, ignored, name)
        elif isinstance(value, bool):
            _add(metrics, name, None, "true" if value else "false", ignored)
        elif isinstance(value, _JsonConstant):
            _add(metrics, name, None, str(value), ignored)
        elif isinstance(value, str):
            # A JSON number (kept as text by _loads) or a string that may hold one.
            _add(metrics, name, str(value), str(value), ignored)
        # lists and null: ignored


def _add(metrics: dict[str, Metric], raw_key: str, number_text: str | None,
         verbatim: str, ignored: set[str] | None = None) -> None:
    """Store one key: ``number_text`` is parsed as a number (None: not a number);
    ``verbatim`` is what an ``ext_*`` key keeps. A key naming one of srd's own columns is
    added to ``ignored`` instead."""
    key, owned = _column(raw_key)
    if key is None:
        if owned is not None and ignored is not None:
            ignored.add(owned)
        return
    if key.startswith("ext_"):
        metrics[key] = storable_text(verbatim)
        return
    value = _number(number_text) if number_text is not None else None
    if value is None:
        return
    if key == "errors":
        if isinstance(value, float):
            if not value.is_integer() or abs(value) > INT64_MAX:
                return
            value = int(value)
        if value < 0:
            return
    metrics[key] = value


# How long a case's patterns may spend on one execution's output (seconds, per stream): a
# pattern that backtracks catastrophically is stopped there instead of hanging the run.
PATTERN_BUDGET_S = 1.0
_LINE_END = re.compile(r"\r\n|\r|\n")


class Extractor:
    """A case's ``metric_<name>`` patterns applied to one stream, line by line (a line ends
    at LF, CR or CRLF: progress redrawn with CR counts): for each metric, the text its group
    matched in the last match of the last line that matched. Feed the stream's text in
    order, in pieces made of whole lines. Matching runs under the ``regex`` module's
    timeout: a pattern that spends ``PATTERN_BUDGET_S`` on the stream is given up
    (``timed_out``)."""

    __slots__ = ("found", "left_s", "patterns", "timed_out")

    def __init__(self, patterns: tuple[MetricPattern, ...]) -> None:
        self.patterns = patterns
        self.found: dict[str, str] = {}  # metric -> the group's text
        self.timed_out: set[str] = set()
        self.left_s = {p.name: PATTERN_BUDGET_S for p in patterns}

    def feed(self, text: str) -> None:
        """Match the lines of ``text``; a match here overrides one in an earlier piece."""
        lines = _LINE_END.split(text)
        for pattern in self.patterns:
            name = pattern.name
            if name in self.timed_out:
                continue
            findall = pattern.regex.findall  # one group: the group's text of each match
            t0 = time.monotonic()
            try:
                for line in reversed(lines):  # the last match: look from the end
                    texts = findall(line, timeout=max(self.left_s[name], 1e-3))
                    if texts:
                        self.found[name] = texts[-1]
                        break
            except TimeoutError:
                self.timed_out.add(name)
                self.found.pop(name, None)
            self.left_s[name] -= time.monotonic() - t0


def extract(metrics: dict[str, Metric | None], stdout: Extractor,
            stderr: Extractor) -> list[str]:
    """Set each pattern's metric in ``metrics`` from what it matched in stdout, else in
    stderr: a number (an ``ext_*`` metric keeps the text), or None when nothing matched or
    the text is not a number. Returns a warning for each metric left empty."""
    warnings = []
    for pattern in stdout.patterns:
        name = pattern.name
        text = stdout.found.get(name)
        if text is None:
            text = stderr.found.get(name)
        metrics.pop(name, None)
        if name in stdout.timed_out or name in stderr.timed_out:
            metrics[name] = None
            warnings.append(f"metric {name!r} is empty: pattern '{pattern.text}' took over "
                            f"{PATTERN_BUDGET_S:g} s on the output and was stopped (it "
                            "backtracks: simplify it, e.g. no nested repeats like (\\d+)+)")
            continue
        if text is not None:
            _add(metrics, name, text, text)  # type: ignore[arg-type]
            if name in metrics:
                continue
            reason = f"matched {text!r}, not a number"
        else:
            reason = "matched no line of stdout or stderr"
        metrics[name] = None
        warnings.append(f"metric {name!r} is empty: pattern '{pattern.text}' {reason}")
    return warnings
