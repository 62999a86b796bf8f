"""Is a journal line what srd wrote? The journal is checked, not trusted (``journal.scan``).

A line is read only when it is laid out as ``Journal.append`` writes it —
``{"v":1,"run_id":"…","case":<result>}`` and a LF, no spaces — so that the raw case JSON
that run.json copies (``journal.case_json``) is exactly the result that was checked; and
the result must have the shape ``CaseResult.to_json`` gives it: every key it always writes,
each value of its type (finite numbers, integers within 64 bits, a known status, metrics
that are numbers, text, booleans or null), times in order. Anything else is a corrupt line:
``line_problem`` says why, and the case it held runs again.

Values are held to what srd could have written (FORMAT.md §4, "The journal"): times within
``0 < t < TIME_MAX`` epoch seconds, ``wall_s`` within ``0..WALL_MAX``; a metric named as a
case's metric can be (``METRIC_NAME_RE``, none of the run columns but ``run_seconds``, no
input prefix), text only in a text column (``ext_*``...), no number beyond ``±VALUE_MAX``
nor a negative one in a column that never is (``columns.NON_NEGATIVE``); a message of at
most ``MESSAGE_MAX`` characters without a control character srd removes.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from doerunner.cells import INT64_MAX, INT64_MIN, control_character
from doerunner.columns import NON_NEGATIVE, NON_NEGATIVE_PREFIXES, TEXT, kind_of
from doerunner.inputs.vocabulary import (
    CASE_ID_RE,
    ECHOED_PREFIXES,
    METRIC_NAME_RE,
    RUN_COLUMNS,
)
from doerunner.results import OK, STATUSES

# What Journal.append writes before the case result (orjson: no spaces).
_HEAD = re.compile(rb'\{"v":([0-9]{1,9}),"run_id":("(?:[^"\\]|\\.)*"),"case":')
_TAIL = b"}\n"

TIME_MAX = 1e11
"""Times (epoch seconds) lie in ``0 < t < TIME_MAX`` (the year 5138)."""
WALL_MAX = 1e9
"""An execution's ``wall_s``: at most 1e9 s (31 years)."""
VALUE_MAX = 1e300
"""A metric's magnitude: at most 1e300 (beyond it sums and plots overflow)."""
MESSAGE_MAX = 4096
"""A message: at most 4096 characters."""
# Run columns srd keeps beside a case's metrics: run_seconds is one of them.
_NOT_METRICS = RUN_COLUMNS - {"run_seconds"}


class _Bad(Exception):
    """One problem of an entry, as the message says it."""


def read_line(raw: bytes, version: int) -> tuple[dict[str, Any] | None, str | None,
                                                str | None]:
    """``(case, problem, case_id)`` of one complete journal line (with its LF) of journal
    format ``version``: the case result when the line is sound (``problem`` None), else why
    not and the case it names (None when unknown)."""
    head = _HEAD.match(raw)
    if head is None or not raw.endswith(_TAIL):
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            return None, f"not JSON: {e}", None
        return None, "not a journal entry as srd writes it", None
    try:
        case = orjson.loads(raw[head.end():-len(_TAIL)])
    except orjson.JSONDecodeError as e:
        return None, f"not JSON: {e}", None
    case_id = case.get("case_id") if isinstance(case, dict) else None
    if not isinstance(case_id, str) or not CASE_ID_RE.fullmatch(case_id):
        case_id = None
    if int(head.group(1)) != version:
        return None, (f"written by journal version {head.group(1).decode()}, not "
                      f"{version}"), case_id
    try:
        orjson.loads(head.group(2))
        _case(case)
    except (_Bad, orjson.JSONDecodeError) as e:
        return None, str(e), case_id
    return case, None, case_id


def _case(d: Any) -> None:
    _object(d, "the case result")
    _require(d, ("case_id", "fingerprint", "status", "t_start", "t_end", "metrics", "runs"),
             "the case result")
    if not isinstance(d["case_id"], str) or not CASE_ID_RE.fullmatch(d["case_id"]):
        raise _Bad(f"case_id {d['case_id']!r} is not a case id")
    _text(d, "fingerprint")
    _status(d, "status")
    _times(d, "")
    _optional_int(d, "exit_code", "")
    _message(d, "")
    if "attempts" in d and (type(d["attempts"]) is not int or d["attempts"] < 1):
        raise _Bad(f"attempts must be an integer >= 1, got {d['attempts']!r}")
    _metrics(d["metrics"], "metrics")
    runs = _list(d, "runs")
    for n, run in enumerate(runs):
        _execution(run, f"runs[{n}]")
    for n, run in enumerate(_list(d, "warmup") if "warmup" in d else ()):
        _execution(run, f"warmup[{n}]")
    if "warnings" in d:
        _texts(d["warnings"], "warnings")
    if d.get("definition") is not None and not isinstance(d["definition"], dict):
        raise _Bad("definition must be an object")
    if d["status"] == OK and not runs:
        raise _Bad("an OK case with no measured execution (runs is empty)")
    errors = d["metrics"].get("errors")
    least = 0 if d["status"] == OK else 1  # FORMAT.md §3: at least 1 on FAIL and TIMEOUT
    if errors is not None and (type(errors) is not int or errors < least):
        raise _Bad(f"metrics.errors must be a count >= {least}"
                   f"{'' if least == 0 else ' on a ' + d['status'] + ' case'}, got {errors!r}")


def _execution(d: Any, where: str) -> None:
    _object(d, where)
    _require(d, ("status", "wall_s", "t_start", "t_end"), where)
    _status(d, "status", where)
    wall = d["wall_s"]
    if not _number(wall) or wall < 0:
        raise _Bad(f"{where}.wall_s must be a number of seconds >= 0, got {wall!r}")
    if wall > WALL_MAX:
        raise _Bad(f"{where}.wall_s {wall!r} is more than {WALL_MAX:g} s")
    _times(d, where + ".")
    _optional_int(d, "exit_code", where + ".")
    _message(d, where + ".")
    if "metrics" in d:
        _metrics(d["metrics"], where + ".metrics")
    if d.get("telemetry") is not None and not isinstance(d["telemetry"], dict):
        raise _Bad(f"{where}.telemetry must be an object")
    if "warnings" in d:
        _texts(d["warnings"], where + ".warnings")


def _object(d: Any, where: str) -> None:
    if not isinstance(d, dict):
        raise _Bad(f"{where} must be an object, got {_json_type(d)}")


def _require(d: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise _Bad(f"{where} has no {', '.join(missing)}")


def _status(d: dict[str, Any], key: str, where: str = "") -> None:
    if d[key] not in STATUSES:
        raise _Bad(f"{where + '.' if where else ''}{key} {d[key]!r} is not OK, FAIL or TIMEOUT")


def _times(d: dict[str, Any], where: str) -> None:
    for key in ("t_start", "t_end"):
        if not _number(d[key]):
            raise _Bad(f"{where}{key} must be a number (epoch seconds), got {d[key]!r}")
        if not 0 < d[key] < TIME_MAX:
            raise _Bad(f"{where}{key} {d[key]!r} is not a time srd writes (epoch seconds "
                       f"between 0 and {TIME_MAX:g})")
    if d["t_end"] < d["t_start"]:
        raise _Bad(f"{where}t_end {d['t_end']!r} is before {where}t_start {d['t_start']!r}")


def _optional_int(d: dict[str, Any], key: str, where: str) -> None:
    v = d.get(key)
    if v is not None and (type(v) is not int or not INT64_MIN <= v <= INT64_MAX):
        raise _Bad(f"{where}{key} must be an integer, got {v!r}")


def _text(d: dict[str, Any], key: str) -> None:
    if not isinstance(d[key], str):
        raise _Bad(f"{key} must be text, got {_json_type(d[key])}")


def _optional_text(d: dict[str, Any], key: str, where: str = "") -> None:
    if key in d and not isinstance(d[key], str):
        raise _Bad(f"{where}{key} must be text, got {_json_type(d[key])}")


def _message(d: dict[str, Any], where: str) -> None:
    _optional_text(d, "message", where)
    text = d.get("message")
    if not text:
        return
    if len(text) > MESSAGE_MAX:
        raise _Bad(f"{where}message is {len(text)} characters long, more than {MESSAGE_MAX}")
    bad = control_character(text)
    if bad is not None:
        raise _Bad(f"{where}message holds a control character ({bad}); srd removes them")


def _list(d: dict[str, Any], key: str) -> list[Any]:
    v = d[key]
    if not isinstance(v, list):
        raise _Bad(f"{key} must be a list, got {_json_type(v)}")
    return v


def _texts(v: Any, where: str) -> None:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _Bad(f"{where} must be a list of text")


def _metrics(m: Any, where: str) -> None:
    if not isinstance(m, dict):
        raise _Bad(f"{where} must be an object, got {_json_type(m)}")
    for name, value in m.items():
        if name not in _GOOD_NAMES:
            _name(name, where)
        t = type(value)  # the fast tests first: a resume reads every value of every line
        if t is float:
            if -VALUE_MAX <= value <= VALUE_MAX and (value >= 0 or not _non_negative(name)):
                continue
        elif t is int and INT64_MIN <= value <= INT64_MAX:
            if value >= 0 or not _non_negative(name):
                continue
        elif t is bool or value is None:
            continue
        elif t is str:
            if kind_of(name) == TEXT:
                continue
            raise _Bad(f"{where}.{_shown(name)} holds text, but only a text column (ext_*...) "
                       "does")
        elif t is not int:
            raise _Bad(f"{where}.{_shown(name)} must be a number, text, true/false or null, "
                       f"got {_json_type(value)}")
        raise _Bad(f"{where}.{_shown(name)} {value!r} is not a number srd stores there")


# Names already found sound (a sweep repeats the same few): checked once each.
_GOOD_NAMES: set[str] = set()


def _name(name: str, where: str) -> None:
    """Refuse a metric name no case could have: one outside ``METRIC_NAME_RE``, a run column
    (but ``run_seconds``), a column copied from cases.csv."""
    if not METRIC_NAME_RE.fullmatch(name):
        raise _Bad(f"{where} names a metric '{_shown(name)}': not a metric name (a-z 0-9 _)")
    if name in _NOT_METRICS or name.startswith(ECHOED_PREFIXES):
        raise _Bad(f"{where} names a metric {name!r}: srd writes that column itself")
    if len(_GOOD_NAMES) < 65536:
        _GOOD_NAMES.add(name)


def _non_negative(name: str) -> bool:
    return name in NON_NEGATIVE or name.startswith(NON_NEGATIVE_PREFIXES)


def _shown(name: str) -> str:
    """A name as a message shows it: at most 40 characters, escapes for the unprintable."""
    text = repr(name[:40])[1:-1]
    return text + ("..." if len(name) > 40 else "")


def _number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _json_type(v: Any) -> str:
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "a list"
    if v is None:
        return "null"
    return repr(v)
