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

Per-case cost (srd is benchmarked against hyperfine on trivial commands). On Linux the
shell is started with ``os.posix_spawn`` (glibc clones with ``CLONE_VFORK``: about half
the time of ``Popen``, and the environment is a bytes dict encoded in C) with exactly
Popen's effects: ``setsid``, stdin from /dev/null, every other inheritable descriptor of
srd closed (listed from /proc/self/fd at each start), SIGPIPE and SIGXFSZ back to their
default action. Elsewhere, or when srd runs without descriptors 0-2, ``Popen`` does it.
The pipes and everything else are prepared before the clock starts, so ``wall_s`` covers
the start itself and the run. The exit is seen through a pidfd (the pipes may be held
open by a leftover) polled together with the pipes. Logs are captured in memory and
written whole when the command ends, through ``logwriter`` (see ``_CappedLog``): in a
background thread while one is active, which is kicked once the next command runs.
"""

from __future__ import annotations

import math
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from doerunner.backends.base import Backend, ExecContext
from doerunner.backends.outparse import OutputParser, combine
from doerunner.errors import CaseInterrupted
from doerunner.inputs.cases import Case
from doerunner.process import logwriter
from doerunner.process import tree as proctree
from doerunner.results import FAIL, OK, TIMEOUT, Execution

SHELL = "/bin/sh"
_POLL_S = 0.1  # how often the cancel event is looked at while nothing happens
_DRAIN_S = 1.0  # how long to wait for the pipes to close once the tree is dead
_READ_SIZE = 65536
_MAX_LINE = 1 << 20  # longer lines are not metrics lines: not kept for the parser
# A log is kept in memory and written whole when its stream ends (see _CappedLog) unless
# its head grows past _MEMORY_LOG_MAX bytes or it still prints after _LIVE_AFTER_S: then
# it is written as it grows, in pieces of _APPEND_MIN bytes or every _LIVE_AFTER_S.
_MEMORY_LOG_MAX = 256 * 1024
_APPEND_MIN = 64 * 1024
_LIVE_AFTER_S = 2.0

# {{, }}, ${...} (shell syntax, left alone) or a {placeholder}. Scanned left to right, so
# "{{x}}" is a literal "{x}" and "${x}" is never a placeholder.
_TOKEN = re.compile(r"\{\{|\}\}|\$\{[^}]*\}|\{([A-Za-z0-9_.-]+)\}")
_NOT_ENV_CHAR = re.compile(r"[^A-Z0-9_]")
_CANDIDATE = re.compile(rb"[={]")  # a metrics line holds one of these

# Starting the shell. On Linux os.posix_spawn (public API, a vfork-like clone in glibc;
# ~0.2 ms here against ~0.4 ms for Popen) does what Popen(stdin=DEVNULL,
# start_new_session=True, close_fds=True, restore_signals=True) does: setsid, stdin from
# /dev/null, the pipes on 1 and 2, every other inheritable descriptor closed, SIGPIPE and
# SIGXFSZ back to their defaults.
_USE_SPAWN = (sys.platform.startswith("linux") and hasattr(os, "posix_spawn")
              and hasattr(os, "POSIX_SPAWN_DUP2") and os.path.isdir("/proc/self/fd"))
_SIGDEF = tuple(sig for sig in (getattr(signal, n, None) for n in ("SIGPIPE", "SIGXFZ",
                                                                   "SIGXFSZ"))
                if sig is not None)
_POLLIN = getattr(select, "POLLIN", 1)


def env_name(param: str) -> str:
    """``SRD_PARAM_<NAME>`` for parameter ``param``."""
    return "SRD_PARAM_" + _NOT_ENV_CHAR.sub("_", param.upper())


_MARKER_VAR_BYTES = os.fsencode(proctree.MARKER_VAR)
_env_names: dict[str, bytes] = {}


def _env_name_bytes(param: str) -> bytes:
    """``env_name(param)`` encoded, remembered (a file has few parameter names)."""
    name = _env_names.get(param)
    if name is None:
        if len(_env_names) > 4096:
            _env_names.clear()
        name = _env_names[param] = os.fsencode(env_name(param))
    return name


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

        cmd = case.cmd or ""
        if "{" not in cmd and "}" not in cmd:
            return cmd  # nothing to replace (every token holds a brace)
        return _TOKEN.sub(sub, cmd)

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
        # check() in full only when something is wrong: render() finds the same problems.
        try:
            if case.cmd is None or not case.cmd.strip():
                raise ValueError("cmd: missing value")
            rendered = self.render(case)
        except ValueError as e:
            problems = self.check(case)
            now = time.time()
            return Execution(FAIL, 0.0, now, now, None, problems[0][1] if problems else str(e))
        marker = proctree.new_exec_id()
        argv = [SHELL, "-c", rendered]
        env = self.environment(case, ctx, marker)
        out = _Stream(ctx.stdout_path, ctx.log_cap_bytes, keep_json=True)
        err = _Stream(ctx.stderr_path, ctx.log_cap_bytes, keep_json=False)
        t_start = t0 = 0.0
        try:
            # Everything but the start itself is prepared before the clock starts.
            r_out, w_out = os.pipe()
            try:
                r_err, w_err = os.pipe()
            except BaseException:
                _close(r_out, w_out)
                raise
            try:
                actions = _file_actions(w_out, w_err)
                t_start = time.time()
                t0 = time.perf_counter()
                proc = _start(argv, env, w_out, w_err, actions)
            except BaseException:
                _close(r_out, r_err)
                raise
            finally:
                _close(w_out, w_err)
        except (OSError, ValueError) as e:
            wall_s = time.perf_counter() - t0 if t0 else 0.0
            t_start = t_start or time.time()
            out.close()
            err.close()
            return Execution(FAIL, wall_s, t_start, t_start + wall_s, None, _one_line(e))
        try:
            # Earlier logs are written while this command runs. Not before it is started:
            # file creation can hold a CPU for a millisecond in the kernel, and the new
            # process must not be placed behind it.
            logwriter.kick()
            return self._supervise(case, proc, marker, ctx, r_out, r_err, out, err,
                                   t_start, t0)
        finally:
            try:
                if proc.returncode is None:  # an unexpected error: leave nothing behind
                    proctree.CaseTree(proc, marker).kill(0.0)
            finally:
                proctree.unprotect(proc.pid)
                proctree.unregister_group(proc.pid)
                _close(r_out, r_err)
                try:
                    out.close()
                finally:
                    err.close()

    def _supervise(self, case: Case, proc: _Child | subprocess.Popen, marker: str,
                   ctx: ExecContext, r_out: int, r_err: int, out: _Stream, err: _Stream,
                   t_start: float, t0: float) -> Execution:
        tree = proctree.CaseTree(proc, marker)
        deadline = t0 + ctx.timeout_s if math.isfinite(ctx.timeout_s) else math.inf
        pidfd = _pidfd_open(proc.pid)
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
            # Until the shell exits: read the pipes, watch the clock and the cancel event.
            while t_exit is None:
                now = perf_counter()
                if now >= deadline:
                    timed_out = now - t0
                    break
                if cancel.is_set():
                    tree.kill(ctx.kill_grace_s)
                    raise CaseInterrupted(case.case_id)
                wait = min(_POLL_S, deadline - now)
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
                    else:
                        _read(poller, fd, live)
                if t_exit is None and pidfd is None and proc.poll() is not None:
                    t_exit = perf_counter()
            if timed_out is not None:
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
        out.finish()
        err.finish()
        metrics = combine(out.parser, err.parser, out.whole_text())
        if timed_out is not None:
            return Execution(TIMEOUT, timed_out, t_start, t_start + timed_out, None,
                             f"timed out after {ctx.timeout_s:g} s", metrics)
        wall_s = t_exit - t0
        rc = proc.returncode
        if rc == 0:
            return Execution(OK, wall_s, t_start, t_start + wall_s, 0, "", metrics)
        return Execution(FAIL, wall_s, t_start, t_start + wall_s, rc, _rc_message(rc), metrics)


def _close(*fds: int) -> None:
    for fd in fds:
        with suppress(OSError):
            os.close(fd)


def _file_actions(w_out: int, w_err: int) -> list[tuple] | None:
    """``posix_spawn``'s file actions: stdin from /dev/null, the pipes on 1 and 2, every
    other inheritable descriptor closed. None where ``posix_spawn`` is not used (not
    Linux, or srd runs without a descriptor 0, 1 or 2, so a pipe landed below 3)."""
    if not _USE_SPAWN or w_out <= 2 or w_err <= 2:
        return None
    fds = _inheritable_fds()
    if fds is None:
        return None
    close = os.POSIX_SPAWN_CLOSE
    return [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, w_out, 1),
            (os.POSIX_SPAWN_DUP2, w_err, 2),
            *((close, fd) for fd in fds)]


def _start(argv: list[str], env: dict[bytes, bytes], w_out: int, w_err: int,
           actions: list[tuple] | None) -> _Child | subprocess.Popen:
    """Start the shell in a session of its own, stdout and stderr to the pipes, and
    register it with ``proctree``. ``posix_spawn`` with ``actions`` when given, else
    ``Popen`` (which does the same, slower)."""
    global _USE_SPAWN
    with proctree.spawning() as protected:
        proc: _Child | subprocess.Popen | None = None
        if actions is not None:
            try:
                proc = _Child(os.posix_spawn(SHELL, argv, env, file_actions=actions,
                                             setsid=True, setsigdef=_SIGDEF), argv)
            except NotImplementedError:  # no POSIX_SPAWN_SETSID (glibc < 2.26)
                _USE_SPAWN = False
        if proc is None:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=w_out,
                                    stderr=w_err, env=env, start_new_session=True)
        protected.add(proc.pid)
        proctree.register_group(proc.pid)
    return proc


# /proc/self/fd, opened once: listing it through a descriptor costs half of listing the
# path. The listing shares the descriptor's offset, so it is done under a lock.
_fd_dir: int | None = None
_fd_dir_lock = threading.Lock()


def _inheritable_fds() -> list[int] | None:
    """srd's descriptors above 2 that a child would inherit (Python opens its own
    non-inheritable, but srd may have inherited some, and C libraries open others);
    None when /proc/self/fd cannot be listed."""
    global _fd_dir
    try:
        with _fd_dir_lock:
            if _fd_dir is None:
                _fd_dir = os.open("/proc/self/fd",
                                  os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            names = os.listdir(_fd_dir)
    except OSError:
        return None
    fds = []
    get = os.get_inheritable
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                if get(fd):
                    fds.append(fd)
            except OSError:  # the descriptor listdir used, closed by now
                pass
    return fds


def _forget_fd_dir() -> None:
    """In a forked child: /proc/self/fd opened by the parent lists the parent's."""
    global _fd_dir, _fd_dir_lock
    if _fd_dir is not None:
        with suppress(OSError):
            os.close(_fd_dir)
    _fd_dir = None
    _fd_dir_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_fd_dir)


class _Child:
    """A shell started with ``posix_spawn``: what ``proctree`` and the backend use of the
    ``Popen`` interface (``pid``, ``returncode``, ``poll``, ``wait``)."""

    __slots__ = ("_lock", "args", "pid", "returncode")

    def __init__(self, pid: int, args: list[str]) -> None:
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def _try_wait(self, flags: int) -> None:
        """Call with ``_lock`` held."""
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:  # SIGCHLD ignored: the status is lost (as Popen does)
            self.returncode = 0
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)

    def poll(self) -> int | None:
        if self.returncode is None and self._lock.acquire(False):
            try:
                if self.returncode is None:
                    self._try_wait(os.WNOHANG)
            finally:
                self._lock.release()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            while self.returncode is None:
                with self._lock:
                    if self.returncode is None:
                        self._try_wait(0)
            return self.returncode
        end = time.monotonic() + timeout
        delay = 0.0005
        while True:
            rc = self.poll()
            if rc is not None:
                return rc
            left = end - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            delay = min(delay * 2, left, 0.05)
            time.sleep(delay)


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


def _read(poller: select.poll, fd: int, live: dict[int, _Stream]) -> None:
    data = os.read(fd, _READ_SIZE)
    if data:
        live[fd].feed(data)
    else:
        poller.unregister(fd)
        del live[fd]


def _drain(poller: select.poll, live: dict[int, _Stream]) -> None:
    """Read the pipes to EOF, at most ``_DRAIN_S`` (a process srd could not kill may
    still hold them)."""
    deadline = time.perf_counter() + _DRAIN_S
    while live:
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        for fd, _ in poller.poll(left * 1000.0):
            _read(poller, fd, live)


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
    half, with a one-line note where bytes were left out. The tail is kept in memory
    until ``close``.

    File work goes through ``logwriter``: queued to its background thread while one is
    active (the writer active when the log was opened gets every operation of this log,
    in order), else done at once. A small log is kept in memory and written whole by
    ``close``: one file creation, off the critical path when a writer is active. A stream
    that prints nothing leaves no file, and a file left by an earlier execution at the
    same path is removed (queued like a write, so the two keep their order): a log never
    shows stale output. A log whose head grows past ``_MEMORY_LOG_MAX`` bytes, or that
    still grows after ``_LIVE_AFTER_S`` seconds (so a long case's log can be watched), is
    written as it grows: created with what it holds, then appended to (without a writer:
    through an open file, as it arrives)."""

    def __init__(self, path: str | os.PathLike[str], cap: int) -> None:
        self._path = path
        self._writer = logwriter.active()
        self._file: BinaryIO | None = None  # growing without a writer
        self._growing = False  # the file exists and is appended to
        self._cap = cap
        self._head_left = cap // 2
        self._tail_cap = cap - cap // 2
        self._head = bytearray()  # head bytes not yet handed to the file
        self._tail = bytearray()
        self._total = 0
        self._t_last = time.monotonic()  # when the log was opened, or last appended to

    def write(self, data: bytes) -> None:
        self._total += len(data)
        if self._head_left:
            head = data[:self._head_left]
            self._head_left -= len(head)
            if self._file is not None:
                self._file.write(head)
            else:
                self._head += head
            data = data[len(head):]
        if data:
            self._tail += data
            if len(self._tail) > 2 * self._tail_cap:
                del self._tail[:len(self._tail) - self._tail_cap]
        if self._file is not None:
            return
        if not self._growing:
            if (len(self._head) > _MEMORY_LOG_MAX
                    or time.monotonic() - self._t_last > _LIVE_AFTER_S):
                self._grow()
        elif len(self._head) >= _APPEND_MIN or (
                self._head and time.monotonic() - self._t_last > _LIVE_AFTER_S):
            self._writer.append(self._path, self._head)
            self._head = bytearray()
            self._t_last = time.monotonic()

    def _grow(self) -> None:
        """Create the file with what the log holds; it is appended to from now on."""
        self._growing = True
        if self._writer is None:
            self._file = open(self._path, "wb")  # noqa: SIM115 — closed in close()
            self._file.write(self._head)
        else:
            self._writer.write(self._path, self._head)
        self._head = bytearray()
        self._t_last = time.monotonic()

    def _rest(self) -> bytes:
        """The note (when bytes were left out) and the tail."""
        if len(self._tail) > self._tail_cap:
            del self._tail[:len(self._tail) - self._tail_cap]
        omitted = self._total - self._cap
        note = (f"\n[srd: {omitted} bytes omitted; log capped at {self._cap} bytes]\n"
                .encode() if omitted > 0 else b"")
        return note + self._tail

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.write(self._rest())
            finally:
                self._file.close()
            return
        w = self._writer
        if self._growing:
            w.append(self._path, self._head + self._rest())
        elif not self._total:
            if w is not None:
                w.unlink(self._path)
            else:
                logwriter.remove_file(self._path)
        elif w is not None:
            w.write(self._path, self._head + self._rest())
        else:
            logwriter.write_file(self._path, self._head + self._rest())
