"""The metrics.csv column rules (FORMAT.md §3), declared once.

The writer (``outputs/metrics_csv.py``) and the validator (``outputs/validate.py``) both
read their rules from here: column order, the group of a column, which columns are text,
booleans, integers or numbers, and how many decimals a number gets. How a typed value
becomes cell text is ``cells``. Measuring code never formats.

Integer or decimals? The format says "a column whose values are all integers is written as
integers". We read that per column, over the whole file, so that a column never mixes
``3`` and ``3.50``:

* declared integer columns (``errors``, ``exit_code``, ``runs``, …) are always written as
  integers; a float there is rounded half away from zero to an integer;
* seconds-valued columns and the other 6-decimal columns (``energy_co2_g``,
  ``energy_cost_usd``) are always written with 6 decimals, integers included
  (``run_seconds`` 60 → ``60.000000``);
* every other numeric column (``throughput_rps`` included) is written as integers when
  every non-missing value in it is a Python ``int`` (not ``bool``), and otherwise with
  2 decimals for all its values, ints included. NaN and ±inf count as missing.

``ColumnStats`` sees every row before the file is written (the runner makes two passes
over its journal) and decides this per column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

# --- order -----------------------------------------------------------------------------

CORE = ("case_id", "status", "run_seconds", "p95", "p99", "throughput_rps", "errors",
        "ts_start", "ts_end")
RUN_INFO = ("backend", "exit_code", "message", "violations")
ALWAYS = CORE + RUN_INFO

_ALWAYS_INDEX = {name: i for i, name in enumerate(ALWAYS)}
# (prefix, order group, family): the order of metrics.csv's column groups and the family a
# column belongs to (``srd export`` groups columns by family).
_PREFIX_GROUPS = (("param_", 4, "params"), ("threshold_", 5, "thresholds"), ("ext_", 6, "ext"),
                  ("tag_", 7, "tags"), ("note_", 8, "notes"))
_MEASURED_FAMILIES = (("energy_", "energy"), ("gpu_", "gpu"), ("thermal_", "thermal"),
                      ("env_", "env"))
FAMILIES = ("core", "run_info", "metrics", "params", "thresholds", "ext", "tags", "notes",
            "energy", "gpu", "thermal", "env", "host")


def group_of(name: str) -> int:
    """The order group of a column: 1 core, 2 run info, 3 other measured, 4 ``param_``,
    5 ``threshold_``, 6 ``ext_``, 7 ``tag_``, 8 ``note_``."""
    if name in CORE:
        return 1
    if name in RUN_INFO:
        return 2
    for prefix, group, _ in _PREFIX_GROUPS:
        if name.startswith(prefix):
            return group
    return 3


def family_of(name: str) -> str:
    """The family of a column: ``core``, ``run_info``, ``params``, ``thresholds``, ``ext``,
    ``tags``, ``notes`` (input columns, by prefix), ``energy``, ``gpu``, ``thermal``, ``env``
    (telemetry, by prefix), ``host`` (what srd measured of the host: ``HOST_COLUMNS``
    but ``energy_total_j``), else ``metrics`` (the other measured columns)."""
    if name in CORE:
        return "core"
    if name in RUN_INFO:
        return "run_info"
    for prefix, _, family in _PREFIX_GROUPS:
        if name.startswith(prefix):
            return family
    for prefix, family in _MEASURED_FAMILIES:
        if name.startswith(prefix):
            return family
    return "host" if name in HOST_COLUMNS else "metrics"


def sort_key(name: str) -> tuple[int, int, str]:
    """The key columns are ordered by: the always-present ones by their fixed position,
    the rest by (group, name) with a plain code-point sort of the name."""
    return (group_of(name), _ALWAYS_INDEX.get(name, 0), name)


def order_columns(names: Iterable[str]) -> list[str]:
    """The header for a set of column names: ALWAYS first in their fixed order (present
    even when not in ``names``), then the rest by group, alphabetical within a group.
    Duplicates are dropped."""
    return sorted(set(names).union(ALWAYS), key=sort_key)


# --- kinds -----------------------------------------------------------------------------

TEXT = "text"
BOOL = "bool"
INT = "int"
NUMBER = "number"
TIMESTAMP = "timestamp"

INT_COLUMNS = frozenset({"errors", "exit_code", "runs", "attempts", "gpu_samples", "gpu_count",
                         "warmup_runs", "tokens_in", "tokens_out", "threads_active"})
# What srd measures of the host for an execution (FORMAT.md §3, "Host columns"): its process
# tree's CPU, memory, threads and disk I/O, and the host-wide network bytes and RAPL energy.
HOST_COLUMNS = frozenset({"cpu_user_s", "cpu_sys_s", "cpu_util", "mem_peak_mb", "disk_io_mb",
                          "threads_active", "network_io_mb", "cpu_energy_j", "dram_energy_j",
                          "energy_total_j"})
BOOL_COLUMNS = frozenset({"warmup_converged", "thermal_throttle_detected", "env_in_container"})
BOOL_PREFIXES = ("tag_",)
# ts_start/ts_end are text in the file, but they are written from epoch seconds.
TIMESTAMP_COLUMNS = frozenset({"ts_start", "ts_end"})
TEXT_COLUMNS = frozenset({
    "case_id", "status", "backend", "message", "violations",
    "energy_baseline_method", "energy_method", "thermal_throttle_reasons",
    "env_gpu_name", "env_driver_version", "env_cuda_version", "env_cpu_governor",
    "env_hostname", "env_summary", "env_cpu_model", "env_python_version", "env_mig_mode",
    "env_power_scope",
    "timeseries_path",
})
TEXT_PREFIXES = ("param_", "threshold_", "note_", "ext_")

STATUSES = ("OK", "FAIL", "TIMEOUT")

# --- whose column ----------------------------------------------------------------------

# What srd measures or derives for a case (FORMAT.md §3, "Columns a command cannot set"): a
# case's output never sets these. The core and run-info columns but the four a command
# reports (p95, p99, throughput_rps, errors); the counts; the repetition statistics of the
# wall time (``run_seconds_*``); warm-up (``warmup_*``); GPU telemetry, energy, throttling
# and the environment (``env_*``). Not the host columns nor ``energy_co2_g`` and
# ``energy_cost_usd``: FORMAT.md promises that a command's own value of those wins.
REPORTED_CORE = frozenset({"p95", "p99", "throughput_rps", "errors"})
SRD_COLUMNS = frozenset(ALWAYS) - REPORTED_CORE | frozenset({
    "runs", "attempts", "timeseries_path",
    "energy_raw_j", "energy_adjusted_j", "energy_baseline_w", "energy_baseline_method",
    "energy_method", "energy_per_token_j",
    "gpu_power_mean_w", "gpu_power_peak_w", "gpu_util_mean_pct", "gpu_mem_peak_mb",
    "gpu_samples", "gpu_count", "gpu_power_capped_pct", "gpu_hw_slowdown_pct",
    "thermal_throttle_detected", "thermal_throttle_duration_sec", "thermal_throttle_pct",
    "thermal_throttle_reasons", "thermal_max_temp_c",
})
SRD_PREFIXES = ("run_seconds_", "warmup_", "env_")


def srd_owned(name: str) -> bool:
    """True for a column srd measures or derives itself, which a case's output may not
    set (``SRD_COLUMNS``, ``SRD_PREFIXES``)."""
    return name in SRD_COLUMNS or name.startswith(SRD_PREFIXES)


# srd's own numeric columns that are never negative: durations, counts, energies, powers,
# shares (temperatures may be). ``srd validate`` checks them.
NON_NEGATIVE = frozenset({
    "run_seconds", "errors", "runs", "attempts", "warmup_runs", "warmup_final_cv",
    "energy_raw_j", "energy_adjusted_j", "energy_baseline_w", "energy_per_token_j",
    "gpu_power_mean_w", "gpu_power_peak_w", "gpu_util_mean_pct", "gpu_mem_peak_mb",
    "gpu_samples", "gpu_count", "gpu_power_capped_pct", "gpu_hw_slowdown_pct",
    "thermal_throttle_duration_sec", "thermal_throttle_pct", "env_gpu_vram_mb",
    "env_power_limit_w",
})
NON_NEGATIVE_PREFIXES = ("run_seconds_",)


def copied_from_input(name: str) -> bool:
    """True for a column copied verbatim from cases.csv (``param_``, ``threshold_``,
    ``tag_``, ``note_``): its text is the input's."""
    return family_of(name) in ("params", "thresholds", "tags", "notes")


@lru_cache(maxsize=4096)
def kind_of(name: str) -> str:
    """``TIMESTAMP``, ``TEXT``, ``BOOL``, ``INT`` or ``NUMBER``. A column not declared
    here (a custom metric) is a ``NUMBER``."""
    if name in TIMESTAMP_COLUMNS:
        return TIMESTAMP
    if name in TEXT_COLUMNS or name.startswith(TEXT_PREFIXES):
        return TEXT
    if name in BOOL_COLUMNS or name.startswith(BOOL_PREFIXES):
        return BOOL
    if name in INT_COLUMNS:
        return INT
    return NUMBER


_SIX_DECIMALS = re.compile(
    r"run_seconds.*|p[0-9]+|(?:latency|ttft|tpot)_.*|.*_(?:s|sec|seconds)"
    r"|energy_co2_g|energy_cost_usd",
    re.DOTALL,
)


@lru_cache(maxsize=4096)
def decimals_for(name: str) -> int:
    """Decimal places of a non-integer numeric column: 6 for seconds-valued columns
    (``run_seconds*``, ``p<N>``, ``latency_*``, ``ttft_*``, ``tpot_*``, names ending
    ``_s``, ``_sec``, ``_seconds``) and for ``energy_co2_g``/``energy_cost_usd``; else 2.
    A robust column (``<metric>_median``, ``<metric>_mad``) has its metric's."""
    if _SIX_DECIMALS.fullmatch(name):
        return 6
    base = robust_base(name)
    return decimals_for(base) if base else 2


# --- robust columns (median and MAD over repetitions) -----------------------------------

ROBUST_SUFFIXES = ("_median", "_mad")


def robust_base(name: str) -> str | None:
    """The metric a robust column describes (``p95_median`` → ``p95``), else ``None``."""
    for suffix in ROBUST_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def gets_robust_columns(name: str) -> bool:
    """True for a metric that a case measured more than once gets ``_median`` and ``_mad``
    columns for: ``run_seconds`` and the other measured metrics (what the backend parsed
    or reported), not telemetry (``energy_*``, ``gpu_*``, ``thermal_*``, ``env_*``, the
    host columns),
    counts (integer columns), extremes (``_peak``, ``_max``, ``_min``), ``warmup_*`` or a
    robust column itself."""
    return (family_of(name) in ("core", "metrics") and kind_of(name) == NUMBER
            and not name.startswith("warmup_") and robust_base(name) is None
            and "_peak" not in name and "_max" not in name and "_min" not in name)


def may_be_int(name: str) -> bool:
    """True for a numeric column that is written as integers when all its values are."""
    return kind_of(name) == NUMBER and decimals_for(name) == 2


# --- cell shapes (what the validator accepts) -----------------------------------------


INTEGER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)")
TIMESTAMP_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{2}:[0-9]{2}(?::[0-9]{2})?"
)
VIOLATION_SEPARATOR = ";"
VIOLATION_OPERATORS = ("<=", ">=", "<", ">", "=")


@lru_cache(maxsize=16)
def decimals_re(places: int) -> re.Pattern[str]:
    """A cell written with exactly ``places`` decimals."""
    return re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]{" + str(places) + "}")


# --- which columns are integers ------------------------------------------------------


class ColumnStats:
    """What the writer must know about all rows before it writes the first one: the union
    of column names and, per numeric column, whether every value is an integer.

    Feed it every row with ``add(row)`` (or pass the rows to the constructor). Only a
    Python ``int`` keeps a column integral: a float (even ``3.0``), a bool or a str makes
    it a 2-decimal column. Writing a row it has not seen is refused (``format_rows``).
    """

    __slots__ = ("_candidates", "_header", "_names")

    def __init__(self, rows: Iterable[Mapping[str, object]] = ()) -> None:
        self._names: set[str] = set(ALWAYS)
        self._candidates: set[str] = {n for n in ALWAYS if may_be_int(n)}
        self._header: list[str] | None = None
        for row in rows:
            self.add(row)

    def add(self, row: Mapping[str, object]) -> None:
        """Take one row into account (names, and whether its numbers are integers)."""
        names = self._names
        candidates = self._candidates
        for name, value in row.items():
            if name not in names:
                names.add(name)
                self._header = None
                if may_be_int(name):
                    candidates.add(name)
            if name in candidates and value is not None and type(value) is not int:
                if isinstance(value, float) and not math.isfinite(value):
                    continue  # NaN/inf are written empty: they don't decide the column
                candidates.discard(name)

    def columns(self) -> list[str]:
        """The ordered header: ALWAYS, then every other column seen."""
        if self._header is None:
            self._header = order_columns(self._names)
        return list(self._header)

    @property
    def int_columns(self) -> frozenset[str]:
        """Numeric columns written as integers: the declared integer columns and the
        columns whose values were all integers."""
        return frozenset(n for n in self._names if kind_of(n) == INT) | self._candidates

    def is_int(self, name: str) -> bool:
        """True when the column ``name`` is written as integers."""
        return kind_of(name) == INT or name in self._candidates


