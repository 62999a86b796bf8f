"""Metrics from a command's output: ``key=value`` lines and JSON objects (FORMAT.md §3).

Three shapes are recognised:

* a line whose every whitespace-separated token is ``key=value``
  (``p95=0.050 p99=0.080 errors=0``). A key must start with a letter or ``_`` (so a
  command-line echo such as ``--threads=4`` is not a metrics line); the value is the text
  after the first ``=`` and may be empty;
* a line that is a JSON object (``{"p95": 0.05}``);
* the whole stdout being one JSON object, possibly pretty-printed over many lines.

Nested JSON keys are joined with ``_`` (``{"latency": {"p95": 0.05}}`` → ``latency_p95``);
JSON arrays and ``null`` are ignored. Keys are lower-cased and every character outside
``[a-z0-9_]`` becomes ``_``.

Values: integers stay ``int`` (``42``), anything with a decimal point or an exponent is a
``float`` (``42.0``, ``1e-3``). NaN and infinities are ignored, and so are JSON booleans (they
are not numbers). A JSON string that is a number literal (``"0.05"``) counts as that number,
as it would in a ``key=value`` line. ``ext_*`` keys keep their value as the text written
(``ext_n=007`` → ``"007"``, JSON ``true`` → ``"true"``). ``errors`` must be a non-negative
integer; an integral float becomes an ``int``, anything else is ignored.

Precedence ("later values win"): within one stream a later line overrides an earlier one;
stdout overrides stderr (stdout is where a program reports its results, stderr carries its
diagnostics, and the two pipes have no reliable relative order, so a fixed order keeps
the result deterministic); a whole-stdout JSON object is applied last.
"""

from __future__ import annotations

import json
import math
import re

from doerunner.results import Metric

# Run-info and bookkeeping columns a command must not overwrite. p95, p99, throughput_rps
# and errors are core columns too, but they are the ones a command is meant to report.
RESERVED_KEYS = frozenset({
    "case_id", "status", "run_seconds", "ts_start", "ts_end",
    "backend", "exit_code", "message", "violations",
})
# These columns come from cases.csv (parameters, thresholds, tags, notes), never from output.
RESERVED_PREFIXES = ("param_", "threshold_", "tag_", "note_")

_KEY_START = re.compile(r"[A-Za-z_]")
_NOT_KEY_CHAR = re.compile(r"[^a-z0-9_]")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


_KEYS: dict[str, str | None] = {}  # raw key -> its column, None when output may not set it


def normalize_key(key: str) -> str:
    """``Latency P95`` → ``latency_p95``: lower-case, ``[^a-z0-9_]`` → ``_``."""
    return _NOT_KEY_CHAR.sub("_", key.lower())


def _column(raw_key: str) -> str | None:
    """The column ``raw_key`` names, or None when it is empty or one output may not set (run
    columns, input prefixes). Remembered: a sweep prints the same keys case after case."""
    try:
        return _KEYS[raw_key]
    except KeyError:
        pass
    key: str | None = normalize_key(raw_key)
    if not key or key in RESERVED_KEYS or key.startswith(RESERVED_PREFIXES):
        key = None
    if len(_KEYS) > 65536:
        _KEYS.clear()
    _KEYS[raw_key] = key
    return key


def _number(text: str) -> int | float | None:
    text = text.strip()
    if text.isdigit() and text.isascii() and len(text) < 20:  # the common case, no regex
        return int(text)
    if _INT.fullmatch(text):
        try:
            return int(text)
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

    __slots__ = ("_metrics",)

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def feed_line(self, line: str) -> None:
        """Parse one line; lines that are neither all ``key=value`` nor a JSON object are
        ignored."""
        text = line.strip()
        if not text:
            return
        if text[0] == "{" and text[-1] == "}":
            obj = _try_json(text)
            if obj is not None:
                _add_json(self._metrics, obj)
            return
        if "=" not in text:
            return
        pairs = []
        for token in text.split():
            key, eq, value = token.partition("=")
            if not eq or not _KEY_START.match(key):
                return
            pairs.append((key, value))
        for key, value in pairs:
            _add(self._metrics, key, value, value)

    def result(self, whole_stdout: str | None = None) -> dict[str, Metric]:
        """The metrics of the lines fed so far, then those of ``whole_stdout`` when it is one
        JSON object (pass None when the whole text is not available, e.g. it was capped)."""
        metrics = dict(self._metrics)
        if whole_stdout is not None:
            text = whole_stdout.strip()
            if text.startswith("{") and text.endswith("}"):
                obj = _try_json(text)
                if obj is not None:
                    _add_json(metrics, obj)
        return metrics


def combine(stdout: OutputParser, stderr: OutputParser,
            whole_stdout: str | None = None) -> dict[str, Metric]:
    """Metrics of both streams: stderr, overridden by stdout lines, overridden by a
    whole-stdout JSON object."""
    metrics = stderr.result(None)
    metrics.update(stdout.result(whole_stdout))
    return metrics


def parse_output(stdout: str, stderr: str = "") -> dict[str, Metric]:
    """Metrics from a command's whole stdout and stderr text (see the module docstring)."""
    out, err = OutputParser(), OutputParser()
    for line in stdout.splitlines():
        out.feed_line(line)
    for line in stderr.splitlines():
        err.feed_line(line)
    return combine(out, err, stdout)


def _try_json(text: str) -> dict | None:
    try:
        obj = _loads(text)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _add_json(metrics: dict[str, Metric], obj: dict, prefix: str = "") -> None:
    for key, value in obj.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, dict):
            _add_json(metrics, value, name)
        elif isinstance(value, bool):
            _add(metrics, name, None, "true" if value else "false")
        elif isinstance(value, _JsonConstant):
            _add(metrics, name, None, str(value))
        elif isinstance(value, str):
            # A JSON number (kept as text by _loads) or a string that may hold one.
            _add(metrics, name, str(value), str(value))
        # lists and null: ignored


def _add(metrics: dict[str, Metric], raw_key: str, number_text: str | None,
         verbatim: str) -> None:
    """Store one key: ``number_text`` is parsed as a number (None: not a number);
    ``verbatim`` is what an ``ext_*`` key keeps."""
    key = _column(raw_key)
    if key is None:
        return
    if key.startswith("ext_"):
        metrics[key] = verbatim
        return
    value = _number(number_text) if number_text is not None else None
    if value is None:
        return
    if key == "errors":
        if isinstance(value, float):
            if not value.is_integer():
                return
            value = int(value)
        if value < 0:
            return
    metrics[key] = value
