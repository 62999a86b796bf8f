"""The shell backend against real subprocesses: status, timing, output, safety
(FORMAT.md §3, §5)."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from doerunner.backends import BACKENDS
from doerunner.backends.base import ExecContext
from doerunner.backends.shell import ShellBackend
from doerunner.cells import round_half_away
from doerunner.errors import CaseInterrupted
from doerunner.inputs.case import Case
from doerunner.inputs.patterns import compile_pattern
from doerunner.inputs.vocabulary import param_env_name
from doerunner.process import procfs
from doerunner.process import tree as proctree
from doerunner.results import FAIL, OK, TIMEOUT

from .conftest import run_srd


def case(cmd: str | None, params: dict[str, str] | None = None, case_id: str = "c1") -> Case:
    return Case(case_id, "shell", cmd, 600.0, 1, 0, dict(params or {}), {}, {}, ())


@pytest.fixture(scope="module")
def backend() -> ShellBackend:
    return ShellBackend()


@pytest.fixture
def ctx(tmp_path: Path) -> ExecContext:
    return ExecContext(timeout_s=10.0, stdout_path=tmp_path / "c1.stdout",
                       stderr_path=tmp_path / "c1.stderr", kill_grace_s=0.5)


def read_pids(path: Path, n: int, timeout_s: float = 5.0) -> list[int]:
    """The pids a command wrote to ``path``, one a line (waits until ``n`` are there)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = path.read_text() if path.exists() else ""
        pids = [int(x) for x in text.split()]
        if len(pids) >= n or time.monotonic() > deadline:
            return pids
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def no_zombie_children() -> bool:
    return not [p for p in psutil.Process().children() if p.status() == psutil.STATUS_ZOMBIE]


# -- status, metrics, timing ----------------------------------------------------------
def test_ok_with_metrics_and_logs(backend, ctx):
    ex = backend.execute(case("echo start; echo p95=0.050 p99=0.080 errors=0; echo warn >&2"),
                         ctx)
    assert ex.status == OK and ex.exit_code == 0 and ex.message == ""
    assert ex.metrics == {"p95": 0.05, "p99": 0.08, "errors": 0}
    assert ctx.stdout_path.read_bytes() == b"start\np95=0.050 p99=0.080 errors=0\n"
    assert ctx.stderr_path.read_bytes() == b"warn\n"
    assert 0 < ex.wall_s < 5
    assert ex.t_end == pytest.approx(ex.t_start + ex.wall_s)
    assert abs(ex.t_start - time.time()) < 10


def test_metrics_from_stderr_and_whole_stdout_json(backend, ctx):
    cmd = "printf '{\\n  \"latency\": {\"p95\": 0.5}\\n}\\n'; echo throughput_rps=7 >&2"
    ex = backend.execute(case(cmd), ctx)
    assert ex.metrics == {"latency_p95": 0.5, "throughput_rps": 7}


def test_last_line_without_newline_is_parsed(backend, ctx):
    assert backend.execute(case("printf 'x=1\\ny=2'"), ctx).metrics == {"x": 1, "y": 2}


def test_fail_exit_code_keeps_metrics(backend, ctx):
    ex = backend.execute(case("echo errors=3; exit 7"), ctx)
    assert (ex.status, ex.exit_code, ex.message) == (FAIL, 7, "exit code 7")
    assert ex.metrics == {"errors": 3}


def test_killed_by_signal(backend, ctx):
    ex = backend.execute(case("kill -SEGV $$"), ctx)
    assert (ex.status, ex.exit_code, ex.message) == (FAIL, -11, "killed by signal SIGSEGV")


def test_runs_with_bin_sh_not_shell_env(backend, ctx, monkeypatch, tmp_path):
    monkeypatch.setenv("SHELL", "/bin/false")
    monkeypatch.chdir(tmp_path)
    ex = backend.execute(case('echo "$0" > out; [ -n "$BASH_VERSION" ] && exit 9; exit 0'),
                         ctx)
    assert ex.status == OK
    assert (tmp_path / "out").read_text() == "/bin/sh\n"


def test_missing_shell_is_fail_with_one_line(backend, ctx, monkeypatch):
    monkeypatch.setattr("doerunner.backends.shell.SHELL", "/nonexistent/sh")
    ex = backend.execute(case("true"), ctx)
    assert ex.status == FAIL and ex.exit_code is None
    assert "No such file or directory" in ex.message and "\n" not in ex.message


def test_timeout_kills_whole_tree(backend, ctx, tmp_path):
    pids = tmp_path / "pids"
    cmd = (f"sleep 30 & echo $! >> {pids}; "
           f"setsid sleep 60 & echo $! >> {pids}; "
           # a double-forked daemon: its parent exits at once, it escapes the session
           f"sh -c 'setsid sleep 60 & echo $! >> {pids}; exit 0'; "
           f"echo $$ >> {pids}; echo p95=0.25; sleep 30")
    ctx.timeout_s = 1.0
    ex = backend.execute(case(cmd), ctx)
    assert ex.status == TIMEOUT and ex.exit_code is None
    assert ex.message == "timed out after 1 s"
    assert abs(ex.wall_s - 1.0) < 0.2
    assert ex.metrics == {"p95": 0.25}
    recorded = read_pids(pids, 4)
    assert len(recorded) == 4
    assert [p for p in recorded if alive(p)] == []
    assert no_zombie_children()


def test_timeout_with_term_ignoring_process_uses_sigkill(backend, ctx):
    ctx.timeout_s = 0.5
    ctx.kill_grace_s = 0.3
    t = time.perf_counter()
    ex = backend.execute(case("trap '' TERM; while :; do sleep 0.05; done"), ctx)
    assert ex.status == TIMEOUT and abs(ex.wall_s - 0.5) < 0.2
    assert time.perf_counter() - t < 3


def test_background_leftover_does_not_hang_and_is_killed(backend, ctx, tmp_path):
    pids = tmp_path / "pids"
    cmd = (f"sleep 100 & echo $! > {pids}; "
           f"setsid sleep 100 & echo $! >> {pids}; "
           # a double-forked daemon: its parent exits at once, it escapes the session
           f"sh -c 'setsid sleep 100 & echo $! >> {pids}; exit 0'; "
           "echo done=1")
    t = time.perf_counter()
    ex = backend.execute(case(cmd), ctx)
    assert time.perf_counter() - t < 3
    assert ex.status == OK and ex.metrics == {"done": 1}
    assert ex.wall_s < 1
    recorded = read_pids(pids, 3)
    assert len(recorded) == 3
    assert [p for p in recorded if alive(p)] == []
    assert no_zombie_children()


def test_background_with_output_redirected_is_killed_too(backend, ctx, tmp_path):
    pids = tmp_path / "pids"
    ex = backend.execute(case(f"sleep 100 >/dev/null 2>&1 & echo $! > {pids}"), ctx)
    assert ex.status == OK
    assert [p for p in read_pids(pids, 1) if alive(p)] == []


def test_long_lived_children_of_srd_are_left_alone(backend, ctx):
    import subprocess
    helper = subprocess.Popen(["sleep", "30"])
    try:
        ex = backend.execute(case("sleep 0.01 & true"), ctx)
        assert ex.status == OK
        assert helper.poll() is None
    finally:
        helper.kill()
        helper.wait()


# -- output capture ---------------------------------------------------------------------
def test_capped_log_keeps_head_and_tail_with_note(backend, ctx):
    ctx.log_cap_bytes = 1000
    # 100 000 bytes of numbered lines, then the metrics on the very last line.
    cmd = "i=0; while [ $i -lt 10000 ]; do echo line$i; i=$((i+1)); done; echo p99=0.125"
    ex = backend.execute(case(cmd), ctx)
    assert ex.status == OK and ex.metrics == {"p99": 0.125}
    data = ctx.stdout_path.read_bytes()
    total = sum(len(f"line{i}\n") for i in range(10000)) + len(b"p99=0.125\n")
    note = f"\n[srd: {total - 1000} bytes omitted; log capped at 1000 bytes]\n".encode()
    assert data.startswith(b"line0\nline1\n")
    assert data.endswith(b"line9999\np99=0.125\n")
    head, _, tail = data.partition(note)
    assert len(head) == 500 and len(tail) == 500
    assert len(data) == 1000 + len(note)


def test_whole_stdout_json_over_the_cap_is_not_parsed_but_lines_are(backend, ctx):
    ctx.log_cap_bytes = 100
    cmd = "echo '{'; i=0; while [ $i -lt 50 ]; do echo \"\\\"k$i\\\": $i,\"; i=$((i+1)); done; " \
          "echo '\"last\": 1'; echo '}'; echo '{\"tail\": 2}' >&2"
    ex = backend.execute(case(cmd), ctx)
    assert ex.metrics == {"tail": 2}


def test_uncapped_log_is_exact(backend, ctx):
    ex = backend.execute(case("printf 'a\\0b\\377\\n'; printf 'x' >&2"), ctx)
    assert ex.status == OK
    assert ctx.stdout_path.read_bytes() == b"a\0b\xff\n"
    assert ctx.stderr_path.read_bytes() == b"x"


def test_no_log_paths_still_parses(backend):
    ex = backend.execute(case("echo n=5"), ExecContext(timeout_s=10))
    assert ex.metrics == {"n": 5}


def test_huge_line_without_newline_does_not_blow_up(backend, ctx):
    ctx.log_cap_bytes = 4096
    ex = backend.execute(case("head -c 3000000 /dev/zero | tr '\\0' a; echo; echo ok=1"), ctx)
    assert ex.status == OK and ex.metrics == {"ok": 1}
    assert len(ctx.stdout_path.read_bytes()) < 4096 + 100


# -- the template and its safety ------------------------------------------------------
@pytest.mark.parametrize("value", [
    "$(touch pwned)", "`touch pwned`", "; touch pwned", "' ; touch pwned '",
    "a\ntouch pwned", "\"; touch pwned; \"", "$HOME *", "-n", "", "x' \"y\" \\z",
])
def test_parameter_values_cannot_run_code(backend, ctx, tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    ex = backend.execute(case("printf '%s' {v} > got; printf '%s' \"$SRD_PARAM_V\" > env",
                              {"v": value}), ctx)
    assert ex.status == OK, ex.message
    assert not (tmp_path / "pwned").exists()
    assert (tmp_path / "got").read_bytes() == value.encode()
    assert (tmp_path / "env").read_bytes() == value.encode()


def test_non_ascii_values(backend, ctx, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    value = "日本語 ü €"
    ex = backend.execute(case("printf '%s' {名前} > got; echo ext_v={名前}",
                              {"名前": value}), ctx)
    # "名前" is no {identifier} of the template syntax: it is left as written.
    assert ex.status == OK
    assert (tmp_path / "got").read_bytes() == "{名前}".encode()
    ex = backend.execute(case("printf '%s' {name} > got; printf '%s' \"$SRD_PARAM_NAME\" > env;"
                              " echo ext_v=ü", {"name": value}), ctx)
    assert (tmp_path / "got").read_bytes() == value.encode()
    assert (tmp_path / "env").read_bytes() == value.encode()
    assert ex.metrics == {"ext_v": "ü"}


def test_environment(backend, ctx, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SRD_TEST_INHERITED", "yes")
    ctx.env = {"CUDA_VISIBLE_DEVICES": "1"}
    params = {"threads": "4", "batch-size": "8", "x.y": "z"}
    backend.execute(case("env > env.txt", params, case_id="my-case"), ctx)
    env = dict(line.split("=", 1) for line in (tmp_path / "env.txt").read_text().splitlines()
               if "=" in line)
    assert env["SRD_PARAM_THREADS"] == "4"
    assert env["SRD_PARAM_BATCH_SIZE"] == "8"
    assert env["SRD_PARAM_X_Y"] == "z"
    assert env["SRD_CASE_ID"] == "my-case"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["SRD_TEST_INHERITED"] == "yes"
    assert param_env_name("größe") == "SRD_PARAM_GR_SSE"  # str.upper: ß → SS


def test_stdin_is_dev_null(backend, ctx):
    ex = backend.execute(case("n=$(wc -c); echo n=$n"), ctx)
    assert ex.metrics == {"n": 0}


def test_render_braces(backend):
    c = case("echo {a} {{a}} ${HOME} ${a} {x y} {} awk '{print $1}' {{1..3}}", {"a": "v w"})
    assert backend.check(c) == []
    # what a person reads (--dry-run); what runs holds a reference to the value instead
    assert backend.describe(c) == ("echo 'v w' {a} ${HOME} ${a} {x y} {} awk '{print $1}' "
                                   "{1..3}")
    assert backend.render(c) == ('echo "${SRD_PARAM_A}" {a} ${HOME} ${a} {x y} {} '
                                 "awk '{print $1}' {1..3}")


def test_check_missing_cmd(backend):
    msg = ("cmd", "cmd: missing value (the shell backend needs a command)")
    assert backend.check(case(None)) == [msg]
    assert backend.check(case("  ")) == [msg]


def test_check_unknown_placeholder(backend):
    assert backend.check(case("run {thread} {n} {thread} {a.b}", {"n": "1"})) == [
        ("cmd", "cmd uses {thread} but there is no parameter 'thread' "
                "(write {{thread}} for literal braces)"),
        ("cmd", "cmd uses {a.b} but there is no parameter 'a.b' "
                "(write {{a.b}} for literal braces)"),
    ]
    with pytest.raises(ValueError):
        backend.render(case("run {thread}"))
    assert backend.check(case("run {sise}", {"size": "1"})) == [
        ("cmd", "cmd uses {sise} but there is no parameter 'sise': did you mean {size}?")]


def test_execute_of_invalid_template_fails(backend, ctx):
    ex = backend.execute(case("echo {nope}"), ctx)
    assert ex.status == FAIL and "no parameter 'nope'" in ex.message


# -- cancellation -----------------------------------------------------------------------
def test_cancel_raises_and_kills_tree(backend, ctx, tmp_path):
    pids = tmp_path / "pids"
    cmd = f"setsid sleep 60 & echo $! > {pids}; echo $$ >> {pids}; sleep 60"
    timer = threading.Timer(0.5, ctx.cancel.set)
    timer.start()
    t = time.perf_counter()
    with pytest.raises(CaseInterrupted):
        backend.execute(case(cmd), ctx)
    assert time.perf_counter() - t < 2.5
    recorded = read_pids(pids, 2)
    assert len(recorded) == 2
    assert [p for p in recorded if alive(p)] == []
    assert no_zombie_children()


def test_subreaper_enabled_on_linux(backend):
    if os.uname().sysname == "Linux":
        assert proctree.become_subreaper() is True


def test_leftovers_check_is_cheap_for_trivial_command():
    import subprocess
    proc = subprocess.Popen(["/bin/sh", "-c", "true"], start_new_session=True)
    proc.wait()
    t = time.perf_counter()
    for _ in range(100):
        proctree.CaseTree(proc).leftovers()
    assert (time.perf_counter() - t) / 100 < 0.002


def test_concurrent_cases_do_not_kill_each_other(backend, tmp_path):
    """Case A's escaped orphan is re-parented to srd while case B ends: B must leave it
    alone (it carries A's marker); A kills it when A ends."""
    pids = tmp_path / "pids"
    a_ctx = ExecContext(timeout_s=10, kill_grace_s=0.5)
    cmd_a = f"sh -c 'setsid sleep 30 & echo $! > {pids}; exit 0'; sleep 1"
    result = {}
    thread = threading.Thread(target=lambda: result.update(a=backend.execute(case(cmd_a),
                                                                             a_ctx)))
    thread.start()
    orphan = read_pids(pids, 1)[0]
    for _ in range(5):
        ex = backend.execute(case("sleep 0.01 & true", case_id="b"),
                             ExecContext(timeout_s=10, kill_grace_s=0.5))
        assert ex.status == OK
    assert alive(orphan)
    thread.join()
    assert result["a"].status == OK
    assert not alive(orphan)


def test_silent_stream_leaves_no_log_file_and_removes_a_stale_one(backend, ctx):
    ctx.stderr_path.write_bytes(b"stale output of an earlier execution\n")
    ex = backend.execute(case("echo only-stdout"), ctx)
    assert ex.status == OK
    assert ctx.stdout_path.read_bytes() == b"only-stdout\n"
    assert not ctx.stderr_path.exists()


# -- how the shell is started (posix_spawn on Linux, Popen elsewhere) ------------------
@pytest.fixture(params=["spawn", "popen"])
def start_mode(request, monkeypatch):
    """Run a test with each way of starting the shell."""
    if request.param == "popen":
        monkeypatch.setattr("doerunner.process.spawn.USE_SPAWN", False)
    return request.param


LINUX_ONLY = pytest.mark.skipif(os.uname().sysname != "Linux", reason="uses /proc")


@LINUX_ONLY
def test_inheritable_descriptors_of_srd_do_not_reach_the_command(backend, ctx, start_mode):
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        ex = backend.execute(case(f"[ -e /proc/self/fd/{w} ] && echo leaked=1; "
                                  "ls /proc/self/fd | wc -l | sed 's/^ */fds=/'"), ctx)
    finally:
        os.close(r)
        os.close(w)
    assert ex.status == OK
    assert "leaked" not in ex.metrics
    # 0, 1, 2 and the descriptor ls uses to list the directory
    assert ex.metrics["fds"] == 4


def test_sigpipe_has_its_default_action_in_the_command(backend, ctx, start_mode):
    """Python ignores SIGPIPE; the command must get the default action back (as Popen's
    restore_signals does), or `producer | head -1` pipelines would change behaviour."""
    ex = backend.execute(case("kill -PIPE $$; echo survived=1"), ctx)
    assert (ex.status, ex.message) == (FAIL, "killed by signal SIGPIPE")
    ex = backend.execute(case("yes | head -1 >/dev/null; echo ok=1"), ctx)
    assert ex.status == OK and ex.metrics == {"ok": 1}


@LINUX_ONLY
def test_session_group_env_and_stdin_with_each_start(backend, ctx, start_mode, tmp_path):
    ex = backend.execute(case(
        "read -r pid comm state ppid pgrp sid rest < /proc/$$/stat; "
        "echo sid=$sid pgid=$pgrp pid=$$ case=$SRD_CASE_ID; n=$(wc -c); echo stdin=$n",
        case_id="c1"), ctx)
    assert ex.status == OK
    m = ex.metrics
    assert m["sid"] == m["pgid"] == m["pid"] and m["stdin"] == 0
    assert ctx.stdout_path.read_bytes().startswith(b"sid=")


def test_timeout_and_leftovers_with_each_start(backend, ctx, start_mode, tmp_path):
    pids = tmp_path / "pids"
    ex = backend.execute(case(f"sleep 100 & echo $! > {pids}; echo done=1"), ctx)
    assert ex.status == OK and ex.metrics == {"done": 1}
    assert [p for p in read_pids(pids, 1) if alive(p)] == []
    ctx.timeout_s = 0.3
    ex = backend.execute(case("sleep 30"), ctx)
    assert ex.status == TIMEOUT and abs(ex.wall_s - 0.3) < 0.2
    assert no_zombie_children()


def test_missing_shell_with_each_start(backend, ctx, start_mode, monkeypatch):
    monkeypatch.setattr("doerunner.backends.shell.SHELL", "/nonexistent/sh")
    ex = backend.execute(case("true"), ctx)
    assert ex.status == FAIL and ex.exit_code is None
    assert "No such file or directory" in ex.message and "\n" not in ex.message
    assert ex.t_end >= ex.t_start


def test_nul_in_the_command_is_a_fail_not_a_crash(backend, ctx):
    ex = backend.execute(case("echo a\0b"), ctx)
    assert ex.status == FAIL and "null" in ex.message


def test_last_pid_follows_new_processes():
    import subprocess
    before = procfs.last_pid()
    proc = subprocess.Popen(["true"])
    proc.wait()
    after = procfs.last_pid()
    if before is not None:  # Linux
        assert after is not None and after != before


def test_falls_back_to_popen_when_spawn_cannot_be_used(backend, ctx, monkeypatch):
    from doerunner.process import spawn

    monkeypatch.setattr(spawn, "inheritable_fds", lambda: None)  # /proc unreadable
    ex = backend.execute(case("echo a=1"), ctx)
    assert ex.status == OK and ex.metrics == {"a": 1}
    monkeypatch.undo()

    def no_setsid(*args, **kwargs):
        raise NotImplementedError("setsid is unsupported on this platform")

    monkeypatch.setattr(spawn, "USE_SPAWN", spawn.USE_SPAWN)  # restored after the test
    monkeypatch.setattr(spawn.os, "posix_spawn", no_setsid)
    ex = backend.execute(case("echo b=2"), ctx)
    assert ex.status == OK and ex.metrics == {"b": 2}
    assert spawn.USE_SPAWN is False


# -- sqlite3 -json, metric_<name> patterns, the no-metric warning (FORMAT.md §3) -------
SQLITE3 = shutil.which("sqlite3")
NEEDS_SQLITE3 = pytest.mark.skipif(SQLITE3 is None, reason="sqlite3 is not installed")
TIMEIT = r"best of \d+: ([0-9.]+) usec"


def with_patterns(cmd: str, **cells: str) -> Case:
    return replace(case(cmd), metric_patterns=tuple(
        compile_pattern(name, text) for name, text in cells.items()))


@NEEDS_SQLITE3
def test_sqlite3_json_output_is_read(backend, ctx):
    ex = backend.execute(case('sqlite3 :memory: -json "select 3 as n, 1.5 as avg_ms"'), ctx)
    assert ctx.stdout_path.read_bytes() == b'[{"n":3,"avg_ms":1.5}]\n'
    assert ex.status == OK and ex.metrics == {"n": 3, "avg_ms": 1.5}
    # several rows: which would be the case's? None is read.
    ex = backend.execute(case('sqlite3 :memory: -json "select 3 as n union all select 4"'), ctx)
    assert ctx.stdout_path.read_bytes() == b'[{"n":3},\n{"n":4}]\n'
    assert ex.status == OK and ex.metrics == {}


def test_metric_pattern_reads_python_timeit(backend, ctx):
    cmd = f'{sys.executable} -m timeit -n 200 -r 2 -u usec "sum(range(50))"'
    ex = backend.execute(with_patterns(cmd, usec_per_loop=TIMEIT,
                                       loops=r"(\d+) loops, best of"), ctx)
    printed = ctx.stdout_path.read_text()
    assert re.fullmatch(r"200 loops, best of 2: [0-9.]+ usec per loop\n", printed)
    assert ex.status == OK and ex.warnings == ()
    assert ex.metrics == {"usec_per_loop": float(re.search(TIMEIT, printed)[1]), "loops": 200}


def test_metric_pattern_in_streamed_output_takes_the_last_match(backend, ctx):
    # 150 kB: handled as it arrives (capture.SMALL), progress lines then a summary on stderr
    cmd = "seq 1 30000 | sed 's/^/progress /'; echo summary; echo 'progress 7' >&2"
    ex = backend.execute(with_patterns(cmd, step=r"^progress (\d+)$"), ctx)
    assert ex.status == OK and ex.metrics == {"step": 30000} and ex.warnings == ()


def test_metric_pattern_that_matches_nothing(backend, ctx):
    ex = backend.execute(with_patterns("echo hello; echo x=1", n=r"n=(\d+)"), ctx)
    assert ex.status == OK and ex.metrics == {"x": 1, "n": None}
    assert ex.warnings == ("metric 'n' is empty: pattern 'n=(\\d+)' matched no line of stdout "
                           "or stderr",)
    # a failed execution keeps what matched and warns of nothing: its failure is the story
    ex = backend.execute(with_patterns("echo n=4; exit 3", n=r"n=(\d+)", m=r"m=(\d+)"), ctx)
    assert ex.status == FAIL and ex.metrics == {"n": 4, "m": None} and ex.warnings == ()


def test_only_the_shell_backend_parses_output():
    assert [name for name, cls in BACKENDS.items() if cls.PARSES_OUTPUT] == ["shell"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def test_srd_run_extracts_timeit_prose_per_repetition(tmp_path):
    timeit = f'{sys.executable} -m timeit -n 300 -r 2 -u usec "sum(range(50))"'
    # the first execution prints no value: the metric is empty there, with a warning
    once = "if [ -e seen ]; then echo 'value: 7'; else touch seen; fi"
    write_rows(tmp_path / "cases.csv", [
        ["case_id", "cmd", "repeat", "metric_usec_per_loop", "metric_Loops", "metric_value"],
        ["timeit", timeit, "2", TIMEIT, r"(\d+) loops, best of", ""],
        ["once", once, "2", "", "", r"value: (\d+)"],
    ])
    r = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    timeit_row, once_row = read_csv(tmp_path / "m.csv")
    assert "metric_usec_per_loop" not in timeit_row  # input, not output (like cmd)
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    values = [x["metrics"]["usec_per_loop"] for x in run["cases"][0]["runs"]]
    last = re.search(TIMEIT, (tmp_path / "m_run/logs/timeit.stdout").read_text())[1]
    assert values[-1] == float(last)
    assert (timeit_row["usec_per_loop"], timeit_row["loops"], timeit_row["runs"]) == (
        round_half_away(math.fsum(values) / 2, 2), "300", "2")  # the mean, as written
    assert (once_row["value"], once_row["usec_per_loop"], once_row["loops"]) == ("7", "", "")
    warning = ("metric 'value' is empty: pattern 'value: (\\d+)' matched no line of "
               "stdout or stderr, in 1 case(s): once (1 of 2 repetitions)")
    assert [w for w in r.stderr.splitlines() if "metric" in w] == [f"srd: warning: {warning}"]
    assert [w for w in run["warnings"] if "metric" in w] == [warning]
    assert run["cases"][0]["definition"]["metric_patterns"] == {
        "usec_per_loop": TIMEIT, "loops": r"(\d+) loops, best of"}


def test_srd_run_warns_once_of_cases_whose_output_gave_no_metric(tmp_path):
    silent = [[f"s{i:02}", "shell", "true" if i % 2 else "echo hello"] for i in range(12)]
    write_rows(tmp_path / "cases.csv", [
        ["case_id", "backend", "cmd"], *silent[:6],
        ["dummy", "dummy", ""], ["said", "shell", "echo p95=0.1"], ["failed", "shell", "exit 1"],
        ["sql", "shell", "printf '[{\"n\": 3}]'"], *silent[6:],
    ])
    warning = ("no metric parsed from the output of 12 case(s): s00, s01, s02, s03, s04, s05, "
               "s06, s07, s08, s09 and 2 more (only run_seconds); print key=value or JSON "
               "lines, or extract with metric_<name> columns (FORMAT.md §3)")
    r = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--quiet", cwd=tmp_path)
    assert r.returncode == 3, r.stderr  # the failed case; it is not one of the silent
    assert r.stderr.splitlines() == [f"srd: warning: {warning}"]
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    assert run["warnings"] == [warning]
    # cases taken from the journal count as well
    r = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--quiet", "--resume",
                cwd=tmp_path)
    assert r.returncode == 3, r.stderr
    assert r.stderr.splitlines()[-1] == f"srd: warning: {warning}"
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    assert run["warnings"] == [warning]


def test_a_run_timing_silent_commands_alone_has_no_metric_warning(tmp_path):
    # hyperfine's use: commands timed for their run time, none printing a metric.
    write_rows(tmp_path / "cases.csv", [["case_id", "cmd"], ["t", "true"],
                                        ["e", "echo hello"]])
    r = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert json.loads((tmp_path / "m_run" / "run.json").read_text())["warnings"] == []


def test_a_pattern_finds_the_last_progress_line_of_a_long_cr_redrawn_stream(tmp_path):
    # 1.5 MB of "123456%\r" without a newline: longer than a line srd keeps for the parser,
    # but every CR ends a line for the patterns: the final figure is found.
    (tmp_path / "bar.py").write_text("import sys\nfor i in range(200000):\n"
                                     "    sys.stdout.write('%d%%\\r' % i)\n")
    cmd = f"{sys.executable} bar.py"
    write_rows(tmp_path / "cases.csv", [["case_id", "cmd", "metric_pct"],
                                        ["bar", cmd, r"(\d+)%"]])
    r = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "m.csv", newline="") as f:
        assert next(csv.DictReader(f))["pct"] == "199999"
