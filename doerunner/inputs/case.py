"""``Case``: one validated row of cases.csv (FORMAT.md §2). Backends, the runner and the
executors know a case by this class alone; ``inputs.cases`` reads them from a file."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from doerunner.inputs.patterns import MetricPattern
from doerunner.inputs.thresholds import Threshold
from doerunner.inputs.vocabulary import HOOKS


@dataclass(frozen=True, slots=True)
class Case:
    """One validated row of cases.csv.

    ``timeout_s`` is seconds for one measured execution. ``warmup`` is an int >= 0 or the
    string ``"auto"``. ``params`` maps parameter names (without ``param_``) to their text,
    in column order; every case of a file has the same keys. ``tags`` maps every tag name
    known in the file to whether this case carries it. ``notes`` maps note names (without
    ``note_``) to text. ``line`` is the 1-based physical line of the row in its file.
    ``metric_patterns`` holds the row's non-empty ``metric_<name>`` cells, compiled.
    ``shell``: whether ``cmd`` and the hooks run through ``/bin/sh -c`` (else split into
    arguments and exec'd: ``inputs.argv``). ``setup``, ``prepare`` and ``cleanup`` are the
    hook command templates (``{name}`` placeholders, like ``cmd``), None when the case has
    none (FORMAT.md §2).
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
    shell: bool = True
    setup: str | None = None
    prepare: str | None = None
    cleanup: str | None = None

    @property
    def has_hooks(self) -> bool:
        """Whether the case has a setup, prepare or cleanup command."""
        return self.setup is not None or self.prepare is not None or self.cleanup is not None

    def fingerprint(self) -> str:
        """A short hash of what defines the measurement: backend, cmd, parameters, timeout,
        repeat, warm-up, and the ``metric_*`` patterns, the hooks and ``shell`` = false when
        there are any (a case without them keeps the hash it always had). Tags, notes and
        thresholds do not change what runs, so they are left out (editing a note never
        forces a re-run)."""
        key: tuple[Any, ...] = (self.backend, self.cmd, sorted(self.params.items()),
                                self.timeout_s, self.repeat, self.warmup)
        if self.metric_patterns:
            key += (tuple((p.name, p.text) for p in self.metric_patterns),)
        if not self.shell or self.has_hooks:
            key += (("shell", self.shell, self.setup, self.prepare, self.cleanup),)
        blob = repr(key)
        return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()

    def definition(self) -> dict[str, Any]:
        """The case as it ran, for run.json: line, backend, cmd, parameters, timeout,
        repetitions and warm-up, and its ``metric_*`` patterns (``metric_patterns``: metric
        name → pattern), its hooks (``setup``, ``prepare``, ``cleanup``) and ``shell``
        (false) when it has any."""
        d = {"line": self.line, "backend": self.backend, "cmd": self.cmd,
             "params": dict(self.params), "timeout_s": self.timeout_s,
             "repeat": self.repeat, "warmup": self.warmup}
        if self.metric_patterns:
            d["metric_patterns"] = {p.name: p.text for p in self.metric_patterns}
        if not self.shell:
            d["shell"] = False
        for hook in HOOKS:
            if getattr(self, hook) is not None:
                d[hook] = getattr(self, hook)
        return d
