"""The shell backend: runs a case's ``cmd`` with ``/bin/sh -c`` and parses its output.

The command template: ``{name}`` is replaced by the shell-quoted value of parameter
``name`` (``shlex.quote``: a value can never run code of its own); ``{{`` and ``}}`` are
literal braces; ``${NAME}`` is shell syntax and left alone, and so is anything else in
braces that is not a ``{identifier}`` (awk's ``{print $1}``). ``{identifier}`` naming no
parameter is an input error found by ``check``.

Every command runs as ``["/bin/sh", "-c", rendered]`` (POSIX sh; ``$SHELL`` is not used, so
results do not depend on who runs srd), in the current directory, with stdin from
/dev/null, in a session and process group of its own. Its environment is srd's, plus
``ctx.env``, plus ``SRD_PARAM_<NAME>`` for every parameter (name upper-cased, characters
outside ``A-Z0-9_`` → ``_``; when two names collide the later column wins), ``SRD_CASE_ID``
and ``SRD_EXEC_ID`` (a marker srd uses to find the case's escaped processes).

Status: exit 0 → OK; another exit code → FAIL ``exit code N``; killed by a signal → FAIL
``killed by signal SIGSEGV`` with ``exit_code`` negative (``-11``), as ``Popen`` reports it
(a shell that runs the program as a child instead of exec'ing it reports 128+N: that is an
ordinary ``exit code 139``); the limit reached → TIMEOUT ``timed out after N s`` with
``exit_code`` None; the process cannot be started → FAIL with the error's first line.
Metrics printed before a FAIL or TIMEOUT are kept; the runner decides what to do with them.
When the case ends, however it ends, no process it started is left (``proctree``).
"""

from __future__ import annotations

import math
import os
import re
import selectors
import shlex
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from .. import proctree
from ..cases import Case
from ..errors import CaseInterrupted
from ..outparse import OutputParser, combine
from ..results import FAIL, OK, TIMEOUT, Execution
from .base import Backend, ExecContext

SHELL = "/bin/sh"
_POLL_S = 0.1  # how often the cancel event is looked at while nothing happens
_DRAIN_S = 1.0  # how long to wait for the pipes to close once the tree is dead
_READ_SIZE = 65536
_MAX_LINE = 1 << 20  # longer lines are not metrics lines: not kept for the parser

# {{, }}, ${...} (shell syntax, left alone) or a {placeholder}. Scanned left to right, so
# "{{x}}" is a literal "{x}" and "${x}" is never a placeholder.
_TOKEN = re.compile(r"\{\{|\}\}|\$\{[^}]*\}|\{([A-Za-z0-9_.-]+)\}")
_NOT_ENV_CHAR = re.compile(r"[^A-Z0-9_]")
_CANDIDATE = re.compile(rb"[={]")  # a metrics line holds one of these


def env_name(param: str) -> str:
    """``SRD_PARAM_<NAME>`` for parameter ``param``."""
    return "SRD_PARAM_" + _NOT_ENV_CHAR.sub("_", param.upper())


class ShellBackend(Backend):
    """Runs ``cmd`` through ``/bin/sh -c`` (see the module docstring)."""

    NAME = "shell"

    def __init__(self) -> None:
        proctree.become_subreaper()

    # -- the template ------------------------------------------------------------
    def check(self, case: Case) -> list[tuple[str, str]]:
        if case.cmd is None or not case.cmd.strip():
            return [("cmd", "cmd: missing value (the shell backend needs a command)")]
        problems = []
        for name in dict.fromkeys(_unknown_placeholders(case.cmd, case.params)):
            problems.append(("cmd", f"cmd uses {{{name}}} but there is no parameter "
                                    f"'{name}' (write {{{{{name}}}}} for literal braces)"))
        return problems

    def render(self, case: Case) -> str:
        """The command with every ``{name}`` replaced by the shell-quoted parameter value.
        Raises ``ValueError`` for a placeholder that names no parameter."""
        params = case.params

        def sub(m: re.Match[str]) -> str:
            token = m.group(0)
            if token == "{{":
                return "{"
            if token == "}}":
                return "}"
            name = m.group(1)
            if name is None:
                return token  # ${...}
            if name not in params:
                raise ValueError(f"cmd uses {{{name}}} but there is no parameter '{name}'")
            return shlex.quote(params[name])

        return _TOKEN.sub(sub, case.cmd or "")

    def environment(self, case: Case, ctx: ExecContext, marker: str) -> dict[bytes, bytes]:
        """The command's environment, as bytes (what ``Popen`` would encode it to anyway;
        copying ``os.environb`` costs half of copying ``os.environ``)."""
        enc = os.fsencode
        # os.environb's own dict copies in C; iterating the mapping decodes every entry.
        env = dict(getattr(os.environb, "_data", os.environb))
        for name, value in ctx.env.items():
            env[enc(name)] = enc(value)
        for name, value in case.params.items():
            env[enc(env_name(name))] = enc(value)
        env[b"SRD_CASE_ID"] = enc(case.case_id)
        env[enc(proctree.MARKER_VAR)] = enc(marker)
        return env

    # -- running -----------------------------------------------------------------
    def execute(self, case: Case, ctx: ExecContext) -> Execution:
        """Run the case once. ``wall_s`` runs from just before the process is started to
        its exit (to the moment the timeout fired for TIMEOUT); ``t_start`` is epoch
        seconds and ``t_end`` is ``t_start + wall_s``. Raises ``CaseInterrupted`` when
        ``ctx.cancel`` is set, after killing the case's processes."""
        problems = self.check(case)
        if problems:
            now = time.time()
            return Execution(FAIL, 0.0, now, now, None, problems[0][1])
        marker = proctree.new_exec_id()
        argv = [SHELL, "-c", self.render(case)]
        env = self.environment(case, ctx, marker)
        out = _Stream(ctx.stdout_path, ctx.log_cap_bytes, keep_json=True)
        err = _Stream(ctx.stderr_path, ctx.log_cap_bytes, keep_json=False)
        try:
            with proctree.spawning() as protected:
                t_start = time.time()
                t0 = time.perf_counter()
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env,
                                        start_new_session=True)
                protected.add(proc.pid)
                proctree.register_group(proc.pid)
        except (OSError, ValueError) as e:
            wall_s = time.perf_counter() - t0
            out.close()
            err.close()
            return Execution(FAIL, wall_s, t_start, t_start + wall_s, None, _one_line(e))
        try:
            return self._supervise(case, proc, marker, ctx, out, err, t_start, t0)
        finally:
            if proc.returncode is None:  # an unexpected error: leave nothing behind
                proctree.CaseTree(proc, marker).kill(0.0)
            proctree.unprotect(proc.pid)
            proctree.unregister_group(proc.pid)
            for f in (proc.stdout, proc.stderr, out, err):
                f.close()

    def _supervise(self, case: Case, proc: subprocess.Popen, marker: str, ctx: ExecContext,
                   out: _Stream, err: _Stream, t_start: float, t0: float) -> Execution:
        tree = proctree.CaseTree(proc, marker)
        deadline = t0 + ctx.timeout_s if math.isfinite(ctx.timeout_s) else math.inf
        sel = selectors.PollSelector() if hasattr(selectors, "PollSelector") \
            else selectors.DefaultSelector()
        pidfd = _pidfd_open(proc.pid)
        streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
        try:
            for fd in streams:  # read only when poll says readable: never blocks
                sel.register(fd, selectors.EVENT_READ)
            if pidfd is not None:
                sel.register(pidfd, selectors.EVENT_READ)
            t_exit = timed_out = None
            # Until the shell exits: read the pipes, watch the clock and the cancel event.
            while t_exit is None:
                now = time.perf_counter()
                if now >= deadline:
                    timed_out = now - t0
                    break
                if ctx.cancel.is_set():
                    tree.kill(ctx.kill_grace_s)
                    raise CaseInterrupted(case.case_id)
                wait = min(_POLL_S, deadline - now)
                if pidfd is None and not sel.get_map():
                    # Both pipes closed and no pidfd: wait for the exit itself.
                    try:
                        proc.wait(wait)
                    except subprocess.TimeoutExpired:
                        continue
                    t_exit = time.perf_counter()
                    break
                events = sel.select(wait)
                for key, _ in events:
                    if key.fd == pidfd:
                        t_exit = time.perf_counter()
                    else:
                        _read(sel, key.fd, streams[key.fd])
                if t_exit is None and pidfd is None and proc.poll() is not None:
                    t_exit = time.perf_counter()
            if timed_out is not None:
                tree.kill(ctx.kill_grace_s)
            else:
                proc.wait()
                if tree.leftovers():
                    tree.kill(ctx.kill_grace_s)
            # The tree is dead: what is still in the pipes can be read to EOF.
            _drain(sel, streams, pidfd)
        finally:
            sel.close()
            if pidfd is not None:
                os.close(pidfd)
        for s in (out, err):
            s.finish()
        metrics = combine(out.parser, err.parser, out.whole_text())
        if timed_out is not None:
            return Execution(TIMEOUT, timed_out, t_start, t_start + timed_out, None,
                             f"timed out after {ctx.timeout_s:g} s", metrics)
        wall_s = t_exit - t0
        rc = proc.returncode
        if rc == 0:
            return Execution(OK, wall_s, t_start, t_start + wall_s, 0, "", metrics)
        return Execution(FAIL, wall_s, t_start, t_start + wall_s, rc, _rc_message(rc), metrics)


def _unknown_placeholders(cmd: str, params) -> list[str]:
    return [m.group(1) for m in _TOKEN.finditer(cmd)
            if m.group(1) is not None and m.group(1) not in params]


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


def _pidfd_open(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux >= 5.3), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _read(sel: selectors.BaseSelector, fd: int, stream: _Stream) -> None:
    data = os.read(fd, _READ_SIZE)
    if data:
        stream.feed(data)
    else:
        sel.unregister(fd)


def _drain(sel: selectors.BaseSelector, streams: dict[int, _Stream], pidfd: int | None) -> None:
    """Read the pipes to EOF, at most ``_DRAIN_S`` (a process srd could not kill may
    still hold them)."""
    if pidfd is not None and pidfd in sel.get_map():
        sel.unregister(pidfd)
    deadline = time.perf_counter() + _DRAIN_S
    while sel.get_map():
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        for key, _ in sel.select(left):
            _read(sel, key.fd, streams[key.fd])


class _Stream:
    """One captured stream: a capped log file, the line parser, and the whole text while
    it may be one JSON object (stdout only)."""

    def __init__(self, path: Path | None, cap: int, keep_json: bool) -> None:
        self.parser = OutputParser()
        self._log = _CappedLog(path, cap) if path is not None else None
        self._cap = cap
        self._partial = bytearray()
        self._overlong = False
        # The whole stdout, kept only while it is under the cap and may be a JSON object.
        self._whole: bytearray | None = bytearray() if keep_json else None
        self._seen_text = False
        self._closed = False

    def feed(self, data: bytes) -> None:
        if self._log is not None:
            self._log.write(data)
        if self._whole is not None:
            self._keep_whole(data)
        last_nl = data.rfind(b"\n")
        if last_nl < 0:
            self._add_partial(data)
            return
        if self._overlong:  # the rest of an overlong line: skip it
            self._overlong = False
            self._parse_lines(data[data.find(b"\n") + 1:last_nl + 1])
        elif self._partial:
            self._parse_lines(bytes(self._partial) + data[:last_nl + 1])
        else:
            self._parse_lines(data[:last_nl + 1])
        self._partial.clear()
        self._add_partial(data[last_nl + 1:])

    def _add_partial(self, data: bytes) -> None:
        if self._overlong or not data:
            return
        self._partial += data
        if len(self._partial) > _MAX_LINE:
            self._partial.clear()
            self._overlong = True

    def _keep_whole(self, data: bytes) -> None:
        if not self._seen_text:
            stripped = data.lstrip()
            if not stripped:
                self._whole += data
                return
            self._seen_text = True
            if not stripped.startswith(b"{"):
                self._whole = None
                return
        self._whole += data
        if len(self._whole) > self._cap:
            self._whole = None

    def _parse_lines(self, buf: bytes) -> None:
        """Feed the lines of ``buf`` (complete lines) that may be metrics lines. Only lines
        holding ``=`` or ``{`` are decoded, so a huge plain output costs little."""
        pos = 0
        search = _CANDIDATE.search
        while True:
            m = search(buf, pos)
            if m is None:
                return
            start = buf.rfind(b"\n", 0, m.start()) + 1
            end = buf.find(b"\n", m.start())
            if end < 0:
                end = len(buf)
            if end - start <= _MAX_LINE:
                self.parser.feed_line(buf[start:end].decode("utf-8", "replace"))
            pos = end + 1

    def finish(self) -> None:
        """End of the stream: parse the last line if it had no newline."""
        if self._partial and not self._overlong:
            self._parse_lines(bytes(self._partial))
        self._partial.clear()

    def whole_text(self) -> str | None:
        if self._whole is None:
            return None
        return self._whole.decode("utf-8", "replace")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._log is not None:
                self._log.close()


class _CappedLog:
    """A log file holding at most ``cap`` bytes of a stream: its first half and its last
    half, with a one-line note where bytes were left out. The head is written as it
    arrives; the tail is kept in memory until ``close``.

    The file is created with the first byte: a stream that printed nothing leaves no file
    (creating two empty files costs more than running ``true``), and a file left by an
    earlier execution at the same path is removed, so a log never shows stale output."""

    def __init__(self, path: Path, cap: int) -> None:
        self._path = path
        self._file: BinaryIO | None = None
        self._cap = cap
        self._head_left = cap // 2
        self._tail_cap = cap - cap // 2
        self._tail = bytearray()
        self._total = 0

    def write(self, data: bytes) -> None:
        if self._file is None:
            self._file = open(self._path, "wb")  # noqa: SIM115 — closed in close()
        self._total += len(data)
        if self._head_left:
            head = data[:self._head_left]
            self._file.write(head)
            self._head_left -= len(head)
            data = data[len(head):]
        if data:
            self._tail += data
            if len(self._tail) > 2 * self._tail_cap:
                del self._tail[:len(self._tail) - self._tail_cap]

    def close(self) -> None:
        if self._file is None:
            with suppress(FileNotFoundError):
                os.unlink(self._path)
            return
        try:
            if len(self._tail) > self._tail_cap:
                del self._tail[:len(self._tail) - self._tail_cap]
            omitted = self._total - self._cap
            if omitted > 0:
                self._file.write(f"\n[srd: {omitted} bytes omitted; log capped at "
                                 f"{self._cap} bytes]\n".encode())
            self._file.write(self._tail)
        finally:
            self._file.close()
