"""``RunOptions``: every ``srd run`` option, in frozen groups with each default stated once.

- ``OutputOptions``: where the results go (metrics.csv, run directory, JUnit, timezone).
- ``ExecutionPolicy`` (``doerunner.policy``): how each case is executed.
- ``TelemetryOptions`` (``doerunner.telemetry.options``): GPU measurement.
- ``Parallelism``: which executor, how many cases at once, GPUs per case.
- ``CaseDefaults``: what a cases.csv row without a ``backend`` or ``timeout_s`` gets.

Each group checks its own values when it is built (``InputError``, exit 4), so a
``RunOptions`` that exists is valid; the combinations that depend on the cases and the GPUs
found are the execution plan's to decide (``campaign.plan``). ``RunOptions.build(**flat)``
takes every option by its flat name (``out=``, ``jobs=``, ``warmup_cv=``...), which is what
the Python API ``doerunner.run(cases, **options)`` passes on.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from doerunner.bounds import MAX_JOBS
from doerunner.cells import DEFAULT_TZ, parse_tz
from doerunner.errors import InputError
from doerunner.inputs.vocabulary import (
    DEFAULT_BACKEND,
    DEFAULT_SHELL,
    DEFAULT_TIMEOUT_S,
    HOOKS,
    valid_timeout,
)
from doerunner.policy import DEFAULT_POLICY, ExecutionPolicy
from doerunner.telemetry.options import TelemetryOptions


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """``out``: metrics.csv; ``run_dir``: the run directory (None: ``<out stem>_run/``
    beside ``out``); ``tz``: timezone of ``ts_start``/``ts_end``; ``csv_safe``: defuse
    formula-like text cells; ``junit``: also write a JUnit XML report, its test names
    ``junit_names``: ``params`` (``case_id[level=9 size=4]``) or ``id`` (the bare case_id);
    ``project``: the project name recorded in the run history."""

    out: Path = Path("metrics.csv")
    run_dir: Path | None = None
    tz: str = DEFAULT_TZ
    csv_safe: bool = False
    junit: Path | None = None
    project: str | None = None
    junit_names: str = "params"
    zone: tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.junit_names not in ("params", "id"):
            raise InputError(f"--junit-names {self.junit_names!r}: use params or id")
        for name in ("out", "run_dir", "junit"):
            value = getattr(self, name)
            if value is not None and os.fspath(value) == "":  # Path("") would be "."
                raise InputError(f"--{name.replace('_', '-')}: empty path")
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        for name in ("out", "junit"):
            value = getattr(self, name)
            if value is not None and value.name in ("", ".."):  # ".", "/", "..": a folder
                raise InputError(f"--{name} {value}: is a directory")
        try:
            object.__setattr__(self, "zone", parse_tz(self.tz))
        except ValueError as e:
            raise InputError(f"--tz: {e}") from None

    @property
    def run_directory(self) -> Path:
        """``run_dir``, else ``<out stem>_run/`` beside ``out`` (FORMAT.md §4)."""
        return self.run_dir if self.run_dir is not None else default_run_dir(self.out)


def default_run_dir(out: Path) -> Path:
    """``<out stem>_run/`` beside the output; beside the file a symbolic link names when
    ``out`` is one (``--out /dev/stdout`` redirected to a file: not in /dev) (FORMAT.md
    §4). An output that is not a regular file gets no default: ``campaign.rundir``."""
    if out.is_symlink():
        real = Path(os.path.realpath(out))
        out = real if real.name else out
    return out.with_name(f"{out.stem}_run")


@dataclass(frozen=True, slots=True)
class Parallelism:
    """``executor``: ``local`` (this process) or ``dask``; ``jobs``: cases at once (local),
    or the workers of the LocalCluster ``dask`` starts; ``per_gpu``: one case per GPU at a
    time, each on its own GPU; ``share_gpus``: keep GPU telemetry although cases share
    GPUs; ``scheduler``: an existing Dask scheduler's address."""

    executor: str = "local"
    jobs: int = 1
    per_gpu: bool = False
    share_gpus: bool = False
    scheduler: str | None = None

    def __post_init__(self) -> None:
        from doerunner.executors import EXECUTORS

        if self.executor not in EXECUTORS:
            raise InputError(f"--executor {self.executor!r}: use {', '.join(EXECUTORS)}")
        if not 1 <= self.jobs <= MAX_JOBS:
            raise InputError(f"--jobs must be 1 to {MAX_JOBS}, got {self.jobs!r}")
        if not EXECUTORS[self.executor].REMOTE:
            if self.scheduler is not None:
                raise InputError("--scheduler needs --executor dask")
            if self.per_gpu and self.jobs > 1:
                raise InputError("--per-gpu runs one case per GPU: drop --jobs")
            return
        if self.per_gpu:
            raise InputError(f"--per-gpu is for the local executor; with --executor "
                             f"{self.executor} start one worker per GPU with --resources "
                             "GPU=1 (README: Scaling out)")
        if self.scheduler is not None and self.jobs > 1:
            raise InputError(f"--jobs {self.jobs} sizes the LocalCluster of --executor "
                             f"{self.executor}; with --scheduler the cluster's own workers run "
                             "the cases: drop --jobs")


@dataclass(frozen=True, slots=True)
class CaseDefaults:
    """What a row gets without a ``backend``, ``timeout_s`` (seconds), ``repeat`` or
    ``warmup`` cell (``--backend``, ``--timeout``, ``-r``, ``-w``). ``repeat`` None: 1;
    ``warmup`` None: the backend's own (0; ``auto`` for hf). ``setup``, ``prepare``,
    ``cleanup`` and ``shell``: what a row with an empty cell of that name gets (``--setup``,
    ``--prepare``, ``--cleanup``: command templates, None: none; ``--no-shell``)."""

    backend: str = DEFAULT_BACKEND
    timeout_s: float = DEFAULT_TIMEOUT_S
    repeat: int | None = None
    warmup: int | str | None = None
    setup: str | None = None
    prepare: str | None = None
    cleanup: str | None = None
    shell: bool = DEFAULT_SHELL

    def __post_init__(self) -> None:
        if not (isinstance(self.timeout_s, (int, float)) and valid_timeout(self.timeout_s)):
            raise InputError("--timeout must be a positive number of seconds")
        if self.repeat is not None and not (type(self.repeat) is int and self.repeat >= 1):
            raise InputError(f"--repeat must be an integer >= 1, got {self.repeat!r}")
        if self.warmup is not None and self.warmup != "auto" \
                and not (type(self.warmup) is int and self.warmup >= 0):
            raise InputError(f"--warmup must be an integer >= 0 or 'auto', got {self.warmup!r}")

    def read_kwargs(self) -> dict[str, Any]:
        """These defaults as ``read_cases`` keywords (the one place that passes them)."""
        return {"default_backend": self.backend, "default_timeout_s": self.timeout_s,
                "default_repeat": self.repeat or 1, "default_warmup": self.warmup,
                "default_hooks": {hook: getattr(self, hook) for hook in HOOKS},
                "default_shell": self.shell}


def field_defaults(cls: type) -> dict[str, Any]:
    """The defaults of an options class's fields, without building (and checking) one: what
    the CLI shows as its options' defaults."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


# The flat option names of each group, for RunOptions.build.
_GROUPS: dict[str, type] = {"output": OutputOptions, "policy": ExecutionPolicy,
                            "telemetry": TelemetryOptions, "parallel": Parallelism}
_FLAT = {f.name: group for group, cls in _GROUPS.items() for f in dataclasses.fields(cls)
         if f.init and f.name != "mode"}
_DEFAULTS_FIELD = {"default_backend": "backend", "default_timeout_s": "timeout_s",
                   "default_repeat": "repeat", "default_warmup": "warmup",
                   "default_setup": "setup", "default_prepare": "prepare",
                   "default_cleanup": "cleanup", "default_shell": "shell"}
_FLAT.update(dict.fromkeys(_DEFAULTS_FIELD, "defaults"))


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Every option of a run. ``resume``: keep the journal's finished cases;
    ``retry_failed``: with ``resume``, run FAIL/TIMEOUT cases again; ``fail_fast``: stop at
    the first FAIL or TIMEOUT; ``quiet``: no progress; ``handle_signals``: SIGINT/SIGTERM
    stop the run gracefully (the main thread only); ``command_line``: recorded in run.json
    and the history."""

    output: OutputOptions = field(default_factory=OutputOptions)
    policy: ExecutionPolicy = DEFAULT_POLICY
    telemetry: TelemetryOptions = field(default_factory=TelemetryOptions)
    parallel: Parallelism = field(default_factory=Parallelism)
    defaults: CaseDefaults = field(default_factory=CaseDefaults)
    resume: bool = False
    retry_failed: bool = False
    fail_fast: bool = False
    quiet: bool = False
    handle_signals: bool = True
    command_line: tuple[str, ...] = field(default_factory=lambda: tuple(sys.argv))

    def __post_init__(self) -> None:
        if self.retry_failed and not self.resume:
            raise InputError("--retry-failed needs --resume")
        if self.policy.show_output:
            _check_show_output(self.parallel)
        if not isinstance(self.command_line, tuple):
            object.__setattr__(self, "command_line", tuple(self.command_line))

    @classmethod
    def build(cls, **flat: Any) -> RunOptions:
        """Options from flat names (``out=``, ``jobs=``, ``warmup_cv=``, ``baseline=``...),
        group objects (``telemetry=TelemetryOptions(...)``) or ``telemetry="off"`` (the
        mode). Raises ``TypeError`` for an unknown name, ``InputError`` for a bad value."""
        return cls().replace(**flat)

    def replace(self, **flat: Any) -> RunOptions:
        """A copy with some options changed, by flat name (see ``build``)."""
        top: dict[str, Any] = {}
        groups: dict[str, dict[str, Any]] = {}
        for name, value in flat.items():
            if name == "telemetry" and isinstance(value, str):
                groups.setdefault("telemetry", {})["mode"] = value
            elif name in _FLAT:
                key = _DEFAULTS_FIELD.get(name, name)
                groups.setdefault(_FLAT[name], {})[key] = value
            elif name in _FIELDS:
                top[name] = value
            else:
                raise TypeError(f"unknown run option {name!r}")
        for group, changes in groups.items():
            base = top.get(group, getattr(self, group))
            top[group] = dataclasses.replace(base, **changes)
        return dataclasses.replace(self, **top)

    def to_json(self) -> dict[str, Any]:
        """The options as run.json records them: flat names, telemetry as a group."""
        out: dict[str, Any] = {}
        for group in ("output", "policy", "parallel"):
            for f in dataclasses.fields(_GROUPS[group]):
                if f.init:
                    value = getattr(getattr(self, group), f.name)
                    out[f.name] = str(value) if isinstance(value, Path) else value
        out["default_backend"] = self.defaults.backend
        out["default_timeout_s"] = self.defaults.timeout_s
        out["default_repeat"] = self.defaults.repeat
        out["default_warmup"] = self.defaults.warmup
        for hook in HOOKS:
            out[f"default_{hook}"] = getattr(self.defaults, hook)
        out["default_shell"] = self.defaults.shell
        for name in ("resume", "retry_failed", "fail_fast", "quiet", "handle_signals"):
            out[name] = getattr(self, name)
        out["telemetry"] = self.telemetry.to_json()
        return out


_FIELDS = frozenset(f.name for f in dataclasses.fields(RunOptions))


def _check_show_output(parallel: Parallelism) -> None:
    """``--show-output`` streams one case at a time, run by this process: output of cases
    side by side would interleave line by line (and a remote worker's is not here)."""
    from doerunner.executors import EXECUTORS

    if EXECUTORS[parallel.executor].REMOTE:
        raise InputError(f"--show-output streams cases run by srd itself: not with --executor "
                         f"{parallel.executor}")
    if parallel.jobs > 1:
        raise InputError(f"--show-output streams one case at a time: drop --jobs {parallel.jobs}")
    if parallel.per_gpu:
        raise InputError("--show-output streams one case at a time: drop --per-gpu")
