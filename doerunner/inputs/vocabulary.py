"""The vocabulary of srd's inputs, decided once: reserved columns, column prefixes, name rules,
flag words and the environment name of a parameter (FORMAT.md §2).

Used by the cases.csv reader, ``srd design`` (which writes cases.csv), the backends (flag
parameters, the columns output may not set) and the readers of metrics.csv (tag and boolean
cells).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from doerunner.bounds import TIMEOUT_S
from doerunner.columns import srd_owned

RESERVED = ("case_id", "backend", "cmd", "timeout_s", "repeat", "warmup", "tags", "shell",
            "setup", "prepare", "cleanup")
"""The reserved columns of cases.csv, in the order they are documented (a column added
later goes at the end: ``srd design`` writes a template's reserved columns in this order)."""
HOOKS = ("setup", "prepare", "cleanup")
"""The hook columns (and ``srd run`` options), in the order they run: commands run before a
case's executions, before each execution, and after the case (FORMAT.md §2)."""
HOOK_LOG_SEPARATOR = "+"
"""Between a case id and a hook in the names of the hook's logs (``<case_id>+setup.stderr``):
``+`` is never in a case id, so these never meet another case's logs."""
_HOOK_FAILED = re.compile(r"(?:^|: )(setup|prepare|cleanup) (?:failed|timed out)")


def log_stem(case_id: str, message: str = "") -> str:
    """The name, without ``.stdout``/``.stderr``, of the log that tells why a case failed
    with ``message``: a hook's (``<case_id>+setup``) when the message is a hook's failure
    (``setup failed: ...``, ``repetition 2 of 3: prepare timed out after 5 s``), else the
    case's own."""
    m = _HOOK_FAILED.search(message)
    return f"{case_id}{HOOK_LOG_SEPARATOR}{m.group(1)}" if m else case_id


PREFIXES = ("param", "tag", "note", "threshold", "metric", "ext")
"""Column prefixes (``param_``, ``tag_``...): a prefixed column is one of these kinds."""

RUN_COLUMNS = frozenset({"case_id", "status", "run_seconds", "ts_start", "ts_end", "backend",
                         "exit_code", "message", "violations"})
"""metrics.csv columns srd writes itself: a command's output (a parsed key, a ``metric_<name>``
column) never sets them. p95, p99, throughput_rps and errors are core columns too, but they
are the ones a command is meant to report."""
ECHOED_PREFIXES = ("param_", "threshold_", "tag_", "note_")
"""Prefixes of the metrics.csv columns copied from cases.csv, never set by output."""
METRIC_NAME_RE = re.compile(r"[a-z0-9_]+")

DEFAULT_BACKEND = "shell"
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_SHELL = True  # a command runs through /bin/sh -c unless shell=false or --no-shell

NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
NAME_RULE = "use A-Z a-z 0-9 . _ -"
CASE_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
CASE_ID_RULE = "use 1-128 characters of A-Z a-z 0-9 . _ -"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def id_word(text: str) -> str:
    """``text`` made fit for a case id (a value in an id built from values: ``-L``/``-P``
    sweeps, a design's ``id``): every run of characters outside ``A-Za-z0-9._-`` becomes
    one ``_`` (``org/model b`` → ``org_model_b``)."""
    return _ID_UNSAFE.sub("_", text)

TRUE_WORDS = frozenset(("1", "true", "yes", "x"))
FALSE_WORDS = frozenset(("", "0", "false", "no"))

_ENV_UNSAFE = re.compile(r"[^A-Z0-9_]")


def valid_timeout(seconds: float) -> bool:
    """Whether ``seconds`` is a timeout srd accepts: a finite number of seconds, at least
    ``bounds.TIMEOUT_S.low`` (1 ms)."""
    return TIMEOUT_S.admits(seconds)


def parse_flag(text: str) -> bool | None:
    """``1``/``true``/``yes``/``x`` → True, empty/``0``/``false``/``no`` → False (any case,
    surrounding spaces ignored); anything else → None."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def is_true(text: str) -> bool:
    """Whether a flag cell is set (a metrics.csv boolean or tag cell: ``1`` or empty)."""
    return text.strip().lower() in TRUE_WORDS


def param_env_name(name: str) -> str:
    """``SRD_PARAM_<NAME>``, the environment variable carrying parameter ``name``: upper-cased,
    every character outside ``A-Z0-9_`` becomes ``_``."""
    return "SRD_PARAM_" + _ENV_UNSAFE.sub("_", name.upper())


@dataclass(frozen=True, slots=True)
class Column:
    """What a cases.csv column is. ``kind``: ``reserved``, ``param``, ``tag``, ``note``,
    ``threshold``, ``metric``, ``ext`` (reserved for backend output: not allowed in input) or
    ``unnamed`` (a prefix with no name after it: not allowed). ``name``: the reserved name,
    or the name after the prefix (a parameter without ``param_`` is its whole name);
    ``prefix``: the prefix as written (``param_`` only when it was written)."""

    kind: str
    name: str
    prefix: str = ""


def classify_column(header: str) -> Column:
    """The kind of a cases.csv column named ``header`` (stripped of spaces): reserved, or by
    its prefix, else a parameter of that name. Whether a parameter or tag name follows
    ``NAME_RULE`` is the caller's check (``valid_name``)."""
    if header in RESERVED:
        return Column("reserved", header)
    prefix, sep, rest = header.partition("_")
    if sep and prefix in PREFIXES:
        if prefix == "ext":
            return Column("ext", rest, prefix)
        return Column(prefix if rest else "unnamed", rest, prefix)
    return Column("param", header)


# Headers that mean a reserved column or a prefix in other tools' and people's spelling.
_SYNONYMS = {
    "id": "case_id", "caseid": "case_id", "case": "case_id", "name": None,
    "command": "cmd", "cmdline": "cmd", "command_line": "cmd",
    "timeout": "timeout_s", "timeout_sec": "timeout_s", "timeout_secs": "timeout_s",
    "timeout_seconds": "timeout_s", "time_limit": "timeout_s",
    "repeats": "repeat", "repetitions": "repeat", "reps": "repeat",
    "warm_up": "warmup", "warmups": "warmup", "warmup_runs": "warmup",
    "tag": "tags", "teardown": "cleanup",
}
_PREFIX_SPELLINGS = {"params": "param", "parameter": "param", "tags": "tag", "notes": "note",
                     "thresholds": "threshold", "thres": "threshold", "metrics": "metric"}


def near_miss(header: str) -> str | None:
    """What a header that would be read as a parameter was probably meant to be: a reserved
    column (``Timeout_s``, ``timeout``, ``repeats``, ``warm_up``, ``tag``, ``command``, a
    one-letter typo) or a prefix (``threshold-p95``, ``params_size``); None when it is not
    close to any. A real parameter of such a name is written ``param_<name>``."""
    low = header.lower().replace("-", "_").replace(" ", "_")
    if low in RESERVED and low != header:
        return low
    if low in _SYNONYMS:
        return _SYNONYMS[low]
    for sep in ("_", "-", ".", ":"):
        head, found, rest = header.partition(sep)
        if not (found and rest):
            continue
        word = head.lower()
        if word in PREFIXES and (word != head or sep != "_"):
            return f"{word}_{rest}"
        if word in _PREFIX_SPELLINGS:
            return f"{_PREFIX_SPELLINGS[word]}_{rest}"
    if len(low) >= 5:
        close = difflib.get_close_matches(low, RESERVED, n=1, cutoff=0.85)
        if close:
            return close[0]
    return None


def metric_name(name: str) -> str:
    """The metrics.csv column a ``metric_<name>`` column fills: ``name`` lower-cased."""
    return name.lower()


def metric_name_problem(name: str) -> str | None:
    """Why ``name`` (what follows ``metric_``) cannot name a metric column, or None: lower-cased,
    it must use ``a-z 0-9 _`` like a parsed key, and name no column srd writes itself or
    copies from cases.csv, nor ``errors`` (a pattern may find nothing: its metric is then
    empty, and ``errors`` never is)."""
    low = metric_name(name)
    if not METRIC_NAME_RE.fullmatch(low):
        return f"metric name {name!r} is not allowed: use A-Z a-z 0-9 _ (it is lower-cased)"
    if low in RUN_COLUMNS or srd_owned(low):
        return f"metric name {name!r} is not allowed: srd writes the {low} column itself"
    if low == "errors":  # an integer in every row, at least 1 on FAIL: never left empty
        return (f"metric name {name!r} is not allowed: the errors column must hold a count in "
                "every row (print errors=N, or name the metric otherwise)")
    if low.startswith(ECHOED_PREFIXES):
        return (f"metric name {name!r} is not allowed: {low.partition('_')[0]}_* columns are "
                "copied from cases.csv")
    return None


def valid_name(name: str) -> bool:
    """Whether a parameter, tag or factor name follows ``NAME_RULE``."""
    return NAME_RE.fullmatch(name) is not None
