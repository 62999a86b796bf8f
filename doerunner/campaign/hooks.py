"""A case's setup, prepare and cleanup commands (FORMAT.md §2), for every backend.

They run in the runner (``campaign.runner``), where the case runs (this process, or the
Dask worker), outside every measurement: before the clock of an execution starts and
outside its GPU and host windows. Each is run by the shell backend's own machinery (a hook
is the case with the hook as its ``cmd``): the case's environment (``SRD_PARAM_*``,
``SRD_CASE_ID``, the GPUs the plan gives it), its placeholders, its ``shell`` setting, the
case's ``timeout_s`` as its limit, its process tree killed when it ends, its output
captured to ``logs/<case_id>+<hook>.stdout|.stderr`` (``+`` is not allowed in a case id,
so these names never meet another case's logs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from pathlib import Path

from doerunner.backends.base import ExecContext
from doerunner.backends.shell import ShellBackend
from doerunner.inputs.case import Case
from doerunner.inputs.vocabulary import HOOK_LOG_SEPARATOR, HOOKS
from doerunner.results import FAIL, OK, TIMEOUT, Execution


def log_name(case_id: str, hook: str, stream: str) -> str:
    """The file name of a hook's log: ``<case_id>+<hook>.<stream>``; its failure messages
    (``run``) are what ``vocabulary.log_stem`` recognises."""
    return f"{case_id}{HOOK_LOG_SEPARATOR}{hook}.{stream}"


def hook_case(case: Case, hook: str) -> Case | None:
    """The case the shell backend runs for ``hook`` of ``case`` (its command the hook's, no
    metric patterns); None when the case has no such hook."""
    template = getattr(case, hook)
    if template is None:
        return None
    return dataclasses.replace(case, cmd=template, metric_patterns=())


def described(case: Case) -> list[tuple[str, str]]:
    """``(hook, command)`` for each hook of the case, rendered as the shell backend shows a
    command (``--dry-run``)."""
    shell = ShellBackend()
    return [(hook, shell.describe(c)) for hook in HOOKS
            if (c := hook_case(case, hook)) is not None]


class Hooks:
    """The hooks of one run of one case (an attempt: ``--retries`` runs them again).

    ``ctx`` is the case's execution context (its limit, environment, cancel event, log
    cap); ``logs`` the folder of its logs (None: discarded). ``t_end``: when the last hook
    ended (epoch seconds; 0 before any ran)."""

    def __init__(self, case: Case, ctx: ExecContext, logs: str | Path | None) -> None:
        self.case = case
        self.ctx = ctx
        self.logs = logs
        self.t_end = 0.0
        self.ahead = False  # a prepare ran for an execution that has not started yet
        self._shell = ShellBackend()
        self._cases = {hook: hook_case(case, hook) for hook in HOOKS}  # made once per case

    def run(self, hook: str, cancel: threading.Event | None = None) -> Execution | None:
        """Run ``hook`` (``setup``, ``prepare`` or ``cleanup``) when the case has one. None
        when it has none or it succeeded; else a FAIL execution that stands for it (0 s, no
        exit code: the case's command did not run) with the message ``<hook> failed: exit
        code 1`` (``command not found: x``, ``killed by signal SIGKILL``...) or ``<hook>
        timed out after N s``. ``cancel`` replaces the case's cancel event (a cleanup after
        an interruption must not be stopped by it). Raises ``CaseInterrupted`` when the
        cancel event is set while it runs (its processes killed)."""
        case = self._cases[hook]
        if case is None:
            return None
        logs = self.logs
        ctx = dataclasses.replace(
            self.ctx, progress=None, record_series=False, rapl_joules=None,
            stdout_path=f"{logs}/{log_name(self.case.case_id, hook, 'stdout')}" if logs else None,
            stderr_path=f"{logs}/{log_name(self.case.case_id, hook, 'stderr')}" if logs else None,
            cancel=cancel if cancel is not None else self.ctx.cancel)
        ex = self._shell.execute(case, ctx)
        self.t_end = ex.t_end
        if ex.status == OK:
            return None
        if ex.status == TIMEOUT:
            message = f"{hook} timed out after {self.ctx.timeout_s:g} s"
        else:
            message = f"{hook} failed: {ex.message}"
        return Execution(FAIL, 0.0, ex.t_end, ex.t_end, None, message)

    def prepare(self) -> Execution | None:
        """The prepare command before an execution (``run``), unless ``prepare_ahead`` ran
        it for this one already."""
        if self.ahead:
            self.ahead = False
            return None
        return self.run("prepare")

    def prepare_ahead(self) -> Execution | None:
        """The prepare command before a backend's own warm-up, which may turn out to be the
        runner's whole executions: the next ``prepare`` then has nothing to do."""
        failed = self.run("prepare")
        self.ahead = failed is None
        return failed

    def cleanup(self) -> Execution | None:
        """The cleanup command (``run``), once the case has ended however it ended. A
        first Ctrl-C does not stop it (the run then stops after it; a second one kills it
        with the rest)."""
        return self.run("cleanup", threading.Event())

    def cleanup_after_error(self) -> None:
        """The cleanup command after an interruption or an error, best effort: its own
        failure is ignored (the case is not journaled; the first error is the one told)."""
        with contextlib.suppress(Exception):
            self.cleanup()
