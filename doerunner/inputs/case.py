"""``Case``: one validated row of cases.csv (FORMAT.md §2). Backends, the runner and the
executors know a case by this class alone; ``inputs.cases`` reads them from a file."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from doerunner.inputs.patterns import MetricPattern
from doerunner.inputs.thresholds import Threshold


@dataclass(frozen=True, slots=True)
class Case:
    """One validated row of cases.csv.

    ``timeout_s`` is seconds for one measured execution. ``warmup`` is an int >= 0 or the
    string ``"auto"``. ``params`` maps parameter names (without ``param_``) to their text,
    in column order; every case of a file has the same keys. ``tags`` maps every tag name
    known in the file to whether this case carries it. ``notes`` maps note names (without
    ``note_``) to text. ``line`` is the 1-based physical line of the row in its file.
    ``metric_patterns`` holds the row's non-empty ``metric_<name>`` cells, compiled.
    """

    case_id: str
    backend: str
    cmd: str | None
    timeout_s: float
    repeat: int
    warmup: int | str
    params: Mapping[str, str]
    tags: Mapping[str, bool]
    notes: Mapping[str, str]
    thresholds: tuple[Threshold, ...]
    line: int = 0
    metric_patterns: tuple[MetricPattern, ...] = ()

    def fingerprint(self) -> str:
        """A short hash of what defines the measurement: backend, cmd, parameters, timeout,
        repeat, warm-up, and the ``metric_*`` patterns when there are any (a case without
        them keeps the hash it always had). Tags, notes and thresholds do not change what
        runs, so they are left out (editing a note never forces a re-run)."""
        key: tuple[Any, ...] = (self.backend, self.cmd, sorted(self.params.items()),
                                self.timeout_s, self.repeat, self.warmup)
        if self.metric_patterns:
            key += (tuple((p.name, p.text) for p in self.metric_patterns),)
        blob = repr(key)
        return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()

    def definition(self) -> dict[str, Any]:
        """The case as it ran, for run.json: line, backend, cmd, parameters, timeout,
        repetitions and warm-up, and its ``metric_*`` patterns (``metric_patterns``: metric
        name → pattern) when it has any."""
        d = {"line": self.line, "backend": self.backend, "cmd": self.cmd,
             "params": dict(self.params), "timeout_s": self.timeout_s,
             "repeat": self.repeat, "warmup": self.warmup}
        if self.metric_patterns:
            d["metric_patterns"] = {p.name: p.text for p in self.metric_patterns}
        return d
