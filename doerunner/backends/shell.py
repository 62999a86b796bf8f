"""The shell backend: runs a case's ``cmd`` with ``/bin/sh -c`` and parses its output.

The command template (``inputs.template``): ``{name}`` is replaced by a reference to the
environment variable carrying the value of parameter ``name`` (``"${SRD_PARAM_NAME}"``,
quoted for the shell context it stands in: ``inputs.shellquote``), so the value is never
in the script and can never run code of its own, whatever the template's quotes;
``{{`` and ``}}`` are literal braces; ``${NAME}`` is shell syntax and left alone.
``{identifier}`` naming no parameter is an input error found by ``check``.

Every command runs as ``["/bin/sh", "-c", rendered]`` (POSIX sh; ``$SHELL`` is not used, so
results do not depend on who runs srd) — or, for a case with ``shell`` = false, as the
arguments ``inputs.argv`` makes of the template, the program looked up on ``PATH`` and
exec'd (not found: FAIL ``command not found: NAME``) — in the current directory, with stdin from
/dev/null, in a session and process group of its own (``process.spawn``). Its environment
is srd's, plus ``ctx.env``, plus ``SRD_PARAM_<NAME>`` for every parameter, ``SRD_CASE_ID``
and ``SRD_EXEC_ID`` (a marker srd uses to find the case's escaped processes).

Status: exit 0 → OK; another exit code → FAIL ``exit code N``; killed by a signal → FAIL
``killed by signal SIGSEGV`` with ``exit_code`` negative (``-11``), as ``Popen`` reports it
(a shell that runs the program as a child instead of exec'ing it reports 128+N: that is an
ordinary ``exit code 139``); the limit reached → TIMEOUT ``timed out after N s`` with
``exit_code`` None; the process cannot be started → FAIL with the error's first line.
Metrics printed before a FAIL or TIMEOUT are kept; the runner decides what to do with them.
The case's ``metric_*`` patterns (compiled when cases.csv was read) are matched as the output
arrives (``outparse.Extractor``); an OK execution where one found no number carries a
warning saying so (``Execution.warnings``), and its metric is empty.
When the case ends, however it ends, no process it started is left (``process.tree``).

Per-case cost (srd is benchmarked against hyperfine on trivial commands): the pipes and
everything else are prepared before the clock starts, so ``wall_s`` covers the start itself
and the run. The exit is seen through a pidfd (the pipes may be held open by a leftover)
polled together with the pipes; the output is captured by ``process.capture``.
"""

from __future__ import annotations

import math
import os
import select
import shlex
import signal
import subprocess
import time

from doerunner.backends.base import Backend, ExecContext
from doerunner.backends.outparse import combine, extract, ignored_warnings
from doerunner.errors import CaseInterrupted
from doerunner.inputs.argv import command_problems, render_argv
from doerunner.inputs.case import Case
from doerunner.inputs.template import TemplateError, display, render
from doerunner.inputs.vocabulary import param_env_name
from doerunner.process import spawn
from doerunner.process import tree as proctree
from doerunner.process.accounting import FIRST_SAMPLE_S, TreeMeter
from doerunner.process.capture import Capture
from doerunner.results import FAIL, OK, TIMEOUT, Execution

SHELL = "/bin/sh"
_POLL_S = 0.1  # how often the cancel event is looked at while nothing happens
_DRAIN_S = 1.0  # how long to wait for the pipes to close once the tree is dead
_POLLIN = getattr(select, "POLLIN", 1)
_MARKER_VAR_BYTES = os.fsencode(proctree.MARKER_VAR)
_env_names: dict[str, bytes] = {}


def _env_name_bytes(param: str) -> bytes:
    """``env_name(param)`` encoded, remembered (a file has few parameter names)."""
    name = _env_names.get(param)
    if name is None:
        if len(_env_names) > 4096:
            _env_names.clear()
        name = _env_names[param] = os.fsencode(param_env_name(param))
    return name


class ShellBackend(Backend):
    """Runs ``cmd`` through ``/bin/sh -c``, or exec'd without a shell (see the module
    docstring). It also runs every backend's hooks (``campaign.hooks``)."""

    NAME = "shell"
    TEMPLATE_COLUMNS = ("cmd",)
    PARSES_OUTPUT = True

    # -- the template ------------------------------------------------------------
    def check(self, case: Case) -> list[tuple[str, str]]:
        if case.cmd is None or not case.cmd.strip():
            return [("cmd", "cmd: missing value (the shell backend needs a command)")]
        return [("cmd", message)
                for message in command_problems("cmd", case.cmd, case.params, case.shell)]

    def render(self, case: Case) -> str:
        """The script ``sh`` runs: every ``{name}`` a quoted reference to
        ``$SRD_PARAM_<NAME>`` (``inputs.template.render``; ``environment`` carries the
        values). Raises ``TemplateError`` for a placeholder that names no parameter."""
        return render(case.cmd or "", case.params)

    def command(self, case: Case) -> list[str]:
        """What is started: ``[/bin/sh, -c, rendered]``, or without a shell the arguments
        of ``inputs.argv`` (the program not looked up yet). Raises ``TemplateError`` when
        the template cannot be filled (``check`` says why)."""
        if case.shell:
            return [SHELL, "-c", self.render(case)]
        argv = render_argv(case.cmd or "", case.params)
        if not argv:
            raise TemplateError("cmd: nothing to run: the command is empty once its "
                                "placeholders are filled")
        return argv

    def describe(self, case: Case) -> str:
        """The rendered command; without a shell its arguments as ``sh`` would read them
        (``shlex.join``: one quoted word per argument)."""
        if case.shell:
            return display(case.cmd or "", case.params)
        return shlex.join(self.command(case))

    def environment(self, case: Case, ctx: ExecContext, marker: str) -> dict[bytes, bytes]:
        """The command's environment, as bytes (what ``Popen`` would encode it to anyway;
        copying ``os.environb`` costs half of copying ``os.environ``)."""
        enc = os.fsencode
        # os.environb's own dict copies in C; iterating the mapping decodes every entry.
        env = dict(getattr(os.environb, "_data", os.environb))
        if ctx.env:
            for name, value in ctx.env.items():
                env[enc(name)] = enc(value)
        for name, value in case.params.items():
            env[_env_name_bytes(name)] = enc(value)
        env[b"SRD_CASE_ID"] = enc(case.case_id)
        env[_MARKER_VAR_BYTES] = enc(marker)
        return env

    # -- running -----------------------------------------------------------------
    def execute(self, case: Case, ctx: ExecContext) -> Execution:
        """Run the case once. ``wall_s`` runs from just before the process is started to
        its exit (to the moment the timeout fired for TIMEOUT); ``t_start`` is epoch
        seconds and ``t_end`` is ``t_start + wall_s``. Raises ``CaseInterrupted`` when
        ``ctx.cancel`` is set, after killing the case's processes."""
        try:
            if case.cmd is None or not case.cmd.strip():
                raise TemplateError("cmd: missing value")
            argv = self.command(case)
        except TemplateError as e:
            problems = self.check(case)
            now = time.time()
            return Execution(FAIL, 0.0, now, now, None, problems[0][1] if problems else str(e))
        # Orphans of the case must come back to srd to be found (idempotent, cheap).
        proctree.become_subreaper()
        marker = proctree.new_exec_id()
        env = self.environment(case, ctx, marker)
        if not case.shell:  # exec'd directly: find the program as execvp would
            found = program(argv[0], env)
            if found is None:
                now = time.time()
                return Execution(FAIL, 0.0, now, now, None, f"command not found: {argv[0]}")
            argv[0] = found
        patterns = case.metric_patterns
        echo_out, echo_err = ctx.echo or (None, None)  # --show-output
        out = Capture(ctx.stdout_path, ctx.log_cap_bytes, keep_json=True, patterns=patterns,
                      echo=echo_out)
        err = Capture(ctx.stderr_path, ctx.log_cap_bytes, keep_json=False, patterns=patterns,
                      echo=echo_err)
        t_start = t0 = 0.0
        try:
            # Everything but the start itself is prepared before the clock starts.
            r_out, w_out = os.pipe()
            try:
                r_err, w_err = os.pipe()
            except BaseException:
                spawn.close_fds(r_out, w_out)
                raise
            try:
                actions = spawn.file_actions(w_out, w_err)
                t_start = time.time()
                t0 = time.perf_counter()
                proc = spawn.start(argv, env, w_out, w_err, actions)
            except BaseException:
                spawn.close_fds(r_out, r_err)
                raise
            finally:
                spawn.close_fds(w_out, w_err)
        except (OSError, ValueError) as e:
            wall_s = time.perf_counter() - t0 if t0 else 0.0
            t_start = t_start or time.time()
            out.close()
            err.close()
            return Execution(FAIL, wall_s, t_start, t_start + wall_s, None, _one_line(e))
        try:
            return _supervise(case, proc, marker, ctx, r_out, r_err, out, err, t_start, t0)
        finally:
            try:
                if proc.returncode is None:  # an unexpected error: leave nothing behind
                    proctree.CaseTree(proc, marker).kill(0.0)
            finally:
                proctree.unprotect(proc.pid)
                proctree.unregister_group(proc.pid)
                spawn.close_fds(r_out, r_err)
                try:
                    out.close()
                finally:
                    err.close()


def _supervise(case: Case, proc: spawn.Child | subprocess.Popen, marker: str,
               ctx: ExecContext, r_out: int, r_err: int, out: Capture, err: Capture,
               t_start: float, t0: float) -> Execution:
    """Read the pipes until the command exits, watching the clock and the cancel event;
    kill what it left; the ``Execution``."""
    tree = proctree.CaseTree(proc, marker)
    meter = TreeMeter(proc.pid, proc.pid, isinstance(proc, spawn.Child),
                      record=ctx.record_series, energy=ctx.rapl_joules)
    next_sample = t0 + min(FIRST_SAMPLE_S, ctx.sample_s)
    deadline = t0 + ctx.timeout_s if math.isfinite(ctx.timeout_s) else math.inf
    pidfd = spawn.pidfd_open(proc.pid)
    poller = select.poll()
    live = {r_out: out, r_err: err}  # pipes not at EOF yet
    perf_counter = time.perf_counter
    cancel = ctx.cancel
    try:
        # Read only when poll says readable: never blocks.
        poller.register(r_out, _POLLIN)
        poller.register(r_err, _POLLIN)
        if pidfd is not None:
            poller.register(pidfd, _POLLIN)
        t_exit = timed_out = None
        while t_exit is None:
            now = perf_counter()
            if now >= deadline:
                timed_out = now - t0
                break
            if cancel.is_set():
                tree.kill(ctx.kill_grace_s)
                raise CaseInterrupted(case.case_id)
            if now >= next_sample:
                meter.sample()
                next_sample = now + ctx.sample_s
            wait = min(_POLL_S, deadline - now, max(next_sample - now, 0.0))
            if pidfd is None and not live:
                # Both pipes closed and no pidfd: wait for the exit itself.
                try:
                    proc.wait(wait)
                except subprocess.TimeoutExpired:
                    continue
                t_exit = perf_counter()
                break
            for fd, _ in poller.poll(wait * 1000.0):
                if fd == pidfd:
                    t_exit = perf_counter()
                    meter.last_look()  # exited, not reaped yet: its whole tree's figures
                else:
                    _read(poller, fd, live, pidfd)
            if t_exit is None and pidfd is None and proc.poll() is not None:
                t_exit = perf_counter()
        if timed_out is not None:
            meter.sample(full=True)  # what the tree used until now: the kill reaps it
            tree.kill(ctx.kill_grace_s)
        else:
            proc.wait()
            if tree.leftovers():
                tree.kill(ctx.kill_grace_s)
        # The tree is dead: what is still in the pipes can be read to EOF.
        if pidfd is not None:
            poller.unregister(pidfd)
        _drain(poller, live)
    finally:
        if pidfd is not None:
            os.close(pidfd)
    whole = out.finish()
    err.finish()
    metrics = combine(out.parser, err.parser, whole)
    warnings = ignored_warnings(out.parser, err.parser)  # srd's own columns, named
    if out.extractor is not None and err.extractor is not None:
        warnings += tuple(extract(metrics, out.extractor, err.extractor))  # type: ignore[arg-type]
    wall_s = timed_out if timed_out is not None else t_exit - t0  # type: ignore[operator]
    host = meter.metrics(wall_s, getattr(proc, "rusage", None), timed_out is not None)
    series = meter.series() if ctx.record_series else None
    if timed_out is not None:
        return Execution(TIMEOUT, timed_out, t_start, t_start + timed_out, None,
                         f"timed out after {ctx.timeout_s:g} s", metrics, host=host,
                         host_series=series)
    rc = proc.returncode
    if rc == 0:
        return Execution(OK, wall_s, t_start, t_start + wall_s, 0, "", metrics,
                         warnings=warnings, host=host, host_series=series)
    return Execution(FAIL, wall_s, t_start, t_start + wall_s, rc, _rc_message(rc), metrics,
                     host=host, host_series=series)


def program(name: str, env: dict[bytes, bytes]) -> str | None:
    """The path of ``name``, the program of a command run without a shell: a name holding a
    ``/`` as it is (when it exists), else looked up on the command's ``PATH`` (srd's, unless
    its environment sets another; ``/bin:/usr/bin`` without one). None when not found."""
    if "/" in name:
        return name if os.path.exists(name) else None
    if not name:
        return None
    import shutil

    path = env.get(b"PATH")
    return shutil.which(name, path=os.fsdecode(path) if path is not None else os.defpath)


def _rc_message(rc: int) -> str:
    if rc > 0:
        return f"exit code {rc}"
    try:
        return f"killed by signal {signal.Signals(-rc).name}"
    except ValueError:
        return f"killed by signal {-rc}"


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _read(poller: select.poll, fd: int, live: dict[int, Capture],
          pidfd: int | None = None) -> None:
    """Read a readable pipe once (its ``Capture`` sizes the read, grows the pipe of a
    chatty command and lets it gather, woken by ``pidfd`` when the command exits); at its
    end, stop watching it."""
    if not live[fd].read(fd, pidfd):
        poller.unregister(fd)
        del live[fd]


def _drain(poller: select.poll, live: dict[int, Capture]) -> None:
    """Read the pipes to EOF, at most ``_DRAIN_S`` (a process srd could not kill may
    still hold them)."""
    deadline = time.perf_counter() + _DRAIN_S
    while live:
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        for fd, _ in poller.poll(left * 1000.0):
            _read(poller, fd, live)
