"""Hostile stops and hostile cases: SIGHUP, a signal while the outputs are written, a double
Ctrl-C with escaped processes, and cases that defeat the process tracking (a daemon that
cleared its environment while another case ends, a forged SRD_EXEC_ID, a changed
SRD_RUN_DIR). Each runs with the per-execution cgroup (where this machine lets srd make one)
and without it (SRD_CGROUP=off): the contract is the same."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import os
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import psutil
import pytest

from doerunner.process import cgroup

from .conftest import REPO

_started: list[subprocess.Popen] = []


def _cgroups_here() -> bool:
    """Whether srd can make cgroups on this machine (v1 pids hierarchy, writable)."""
    own = cgroup.own_folder()
    return own is not None and os.access(own, os.W_OK)


@pytest.fixture(params=["cgroup", "off"])
def mode(request) -> str:
    """SRD_CGROUP for the srd under test: its default, or off."""
    if request.param == "cgroup" and not _cgroups_here():
        pytest.skip("no writable cgroup v1 pids hierarchy here")
    return "auto" if request.param == "cgroup" else "off"


@pytest.fixture(autouse=True)
def _no_stray_srd():
    """A failing test must not leave its srd (and the cases it runs) behind."""
    yield
    while _started:
        p = _started.pop()
        if p.poll() is None:
            try:
                tree = psutil.Process(p.pid).children(recursive=True)
            except psutil.Error:
                tree = []
            p.kill()
            p.wait()
            for child in tree:
                with contextlib.suppress(psutil.Error):
                    child.kill()


def srd_popen(*args: str, cwd: Path, mode: str, extra_path: Path | None = None,
              **kw) -> subprocess.Popen:
    path = str(REPO) if extra_path is None else f"{extra_path}{os.pathsep}{REPO}"
    env = dict(os.environ, PYTHONPATH=path, SRD_CGROUP=mode)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    p = subprocess.Popen([sys.executable, "-m", "doerunner", *args], cwd=cwd, env=env,
                         text=True, **kw)
    _started.append(p)
    return p


def wait_for(cond, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def sleeping(tag: str) -> list[int]:
    """Live ``sleep <tag>`` processes (``tag``: a duration unique to one test)."""
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if (p.info["cmdline"] or [])[-2:] == ["sleep", tag] and \
                    p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except psutil.Error:
            pass
    return out


def ids(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return [r["case_id"] for r in csv.DictReader(f)]


def temporary_files(*folders: Path) -> list[str]:
    return [p.name for f in folders if f.is_dir() for p in f.iterdir()
            if p.name.endswith(".tmp")]


def srd_cgroups(pid: int) -> list[str]:
    """The cgroup folders srd process ``pid`` made (none without cgroups)."""
    parent = cgroup.own_folder()
    try:
        return [n for n in os.listdir(parent or "/nonexistent")
                if n.startswith(f"{cgroup.PREFIX}{pid}-")]
    except OSError:
        return []


ESCAPING = ("first,echo p95=0.01\n"
            "tree,sleep 71.1 & (setsid sleep 71.2 &); (env -i setsid sleep 71.3 &); "
            "echo up > started; sleep 71.4\n"
            "third,echo p95=0.03\n")


def test_sighup_stops_like_sigterm(tmp_path: Path, mode: str) -> None:
    (tmp_path / "cases.csv").write_text("case_id,cmd\n" + ESCAPING)
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", "--kill-grace", "1",
                     cwd=tmp_path, mode=mode)
    wait_for(lambda: (tmp_path / "started").exists())
    wait_for(lambda: len(sleeping("71.3")) == 1)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "srd: warning: SIGHUP: stopping; finished cases are kept" in err
    assert "interrupted: to continue, run the same command with --resume" in out
    assert ids(tmp_path / "m.csv") == ["first"]
    assert [sleeping(t) for t in ("71.1", "71.2", "71.3", "71.4")] == [[], [], [], []]
    assert srd_cgroups(proc.pid) == []


def test_terminal_hangup_stops_the_run_and_keeps_the_rows(tmp_path: Path, mode: str) -> None:
    """The terminal srd runs in goes away (an ssh session dropped): SIGHUP, and every write
    to the terminal fails from then on. The run still stops cleanly."""
    (tmp_path / "cases.csv").write_text("case_id,cmd\n" + ESCAPING.replace("71.", "76."))
    master, slave = os.openpty()

    def controlling_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", "--kill-grace", "1",
                     cwd=tmp_path, mode=mode, stdin=slave, stdout=slave, stderr=slave,
                     start_new_session=True, preexec_fn=controlling_terminal)
    os.close(slave)
    os.set_blocking(master, False)
    try:
        def drained_and_started() -> bool:
            with contextlib.suppress(OSError):
                os.read(master, 65536)
            return (tmp_path / "started").exists() and len(sleeping("76.3")) == 1

        wait_for(drained_and_started)
    finally:
        os.close(master)  # the hang-up
    assert proc.wait(20) == 130
    assert ids(tmp_path / "m.csv") == ["first"]
    assert [sleeping(t) for t in ("76.1", "76.2", "76.3", "76.4")] == [[], [], [], []]


SLOW_REPLACE = '''
import os, time
_replace = os.replace
def replace(src, dst, *a, **k):
    if os.fspath(dst).endswith("m.csv"):
        open(os.path.join(os.path.dirname(os.fspath(dst)), "writing"), "w").close()
        time.sleep(1.5)
    return _replace(src, dst, *a, **k)
os.replace = replace
'''


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signal_while_metrics_csv_is_written(tmp_path: Path, sig: int) -> None:
    """The signal comes while metrics.csv's temporary file is complete and not yet renamed
    (a test-only sitecustomize makes that moment last 1.5 s): the outputs are completed,
    then srd exits 130; no temporary file is left."""
    (tmp_path / "cases.csv").write_text("case_id,cmd\na,echo p95=0.01\n")
    first = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path,
                      mode="off")
    assert first.wait(20) == 0
    (tmp_path / "cases.csv").write_text("case_id,cmd\na,echo p95=0.01\nb,echo p95=0.02\n"
                                        "c,echo p95=0.03\n")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_REPLACE)
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path,
                     mode="off", extra_path=hook)
    wait_for(lambda: (tmp_path / "writing").exists())
    assert temporary_files(tmp_path) == [f".m.csv.{proc.pid}.tmp"]
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    name = signal.Signals(sig).name
    assert proc.returncode == 130, err
    assert f"srd: warning: {name}: writing the outputs, then stopping\n" in err
    assert err.endswith(f"srd: warning: {name}: the outputs are written; exit code 130\n")
    assert ids(tmp_path / "m.csv") == ["a", "b", "c"]
    assert temporary_files(tmp_path, tmp_path / "m_run") == []
    assert "3 OK" in out


def test_second_ctrl_c_kills_an_escaped_grandchild(tmp_path: Path, mode: str) -> None:
    """Both the case's shell and its escaped grandchild ignore SIGTERM, and the kill grace
    is a minute: the second Ctrl-C must still kill both at once."""
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\n"
        "stubborn,trap '' TERM; (setsid sh -c \"trap '' TERM; sleep 72.5\" &); "
        "echo up > started; sleep 72.4; sleep 72.4\n")
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", "--kill-grace", "60",
                     cwd=tmp_path, mode=mode)
    wait_for(lambda: (tmp_path / "started").exists())
    wait_for(lambda: len(sleeping("72.5")) == 1 and len(sleeping("72.4")) == 1)
    escaped = psutil.Process(psutil.Process(sleeping("72.5")[0]).ppid())
    assert escaped.ppid() == proc.pid  # re-parented to srd, in a session of its own
    assert os.getsid(escaped.pid) == escaped.pid
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert sleeping("72.5") != []  # the first Ctrl-C's SIGTERM is ignored
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 3
    assert proc.returncode == 130
    wait_for(lambda: sleeping("72.5") == [] and sleeping("72.4") == [], timeout=3)


def test_jobs_cleanup_spares_another_running_case_daemon(tmp_path: Path, mode: str) -> None:
    """Case a starts a daemon that clears its environment (no SRD_EXEC_ID) after case b has
    started; b ends while the daemon runs. b's cleanup must not kill it (it may be a's);
    a's end kills a's daemons that are still running; nothing is left after the run."""
    done = tmp_path / "daemon.txt"
    pid_file = tmp_path / "daemon.pid"
    daemon = f"echo $$ > {pid_file}; sleep 1.5; echo done > {done}"
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\n"
        f"a,sleep 0.3; (env -i setsid sh -c '{daemon}' &); (env -i setsid sleep 73.1 &); "
        "sleep 2; echo p95=0.1\n"
        f"b,while [ ! -s {pid_file} ]; do sleep 0.01; done; echo p95=0.2\n")
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", "--jobs", "2",
                     "--kill-grace", "0.5", cwd=tmp_path, mode=mode)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert done.read_text() == "done\n"
    assert ids(tmp_path / "m.csv") == ["a", "b"]
    assert sleeping("73.1") == []
    assert not psutil.pid_exists(int(pid_file.read_text())) or \
        psutil.Process(int(pid_file.read_text())).status() == psutil.STATUS_ZOMBIE
    assert srd_cgroups(proc.pid) == []


def test_forged_marker_does_not_escape_cleanup(tmp_path: Path, mode: str) -> None:
    """A case gives its background sleeper SRD_EXEC_ID=forged: the sleeper is still the
    case's (a marker no execution of this srd has counts as none); beside a longer case it
    is killed once no case that could own it runs."""
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\n"
        "forger,(SRD_EXEC_ID=forged setsid sleep 74.1 &); echo p95=0.1\n"
        "other,sleep 0.5; echo p95=0.2\n"
        "alone,(SRD_EXEC_ID=forged setsid sleep 74.2 &); echo p95=0.3\n")
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", "--jobs", "2",
                     cwd=tmp_path, mode=mode)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert ids(tmp_path / "m.csv") == ["forger", "other", "alone"]
    assert sleeping("74.1") == [] and sleeping("74.2") == []


def test_a_killed_srd_leaves_nothing_to_the_next_run(tmp_path: Path) -> None:
    """srd is SIGKILLed while its case runs an escaped sleeper that changed its SRD_RUN_DIR
    (how a dead srd's processes are found without cgroups): the next run in the directory
    kills it all the same, found in the dead srd's cgroup."""
    if not _cgroups_here():
        pytest.skip("no writable cgroup v1 pids hierarchy here")
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\n"
        "hider,(SRD_RUN_DIR=/elsewhere setsid sleep 75.1 &); echo up > started; sleep 75.2\n")
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path,
                     mode="auto")
    wait_for(lambda: (tmp_path / "started").exists() and len(sleeping("75.1")) == 1)
    hidden = sleeping("75.1")[0]
    proc.kill()
    proc.wait()
    assert srd_cgroups(proc.pid) != []
    assert sleeping("75.1") == [hidden]  # it outlived its srd
    (tmp_path / "cases.csv").write_text("case_id,cmd\nnext,echo p95=0.1\n")
    again = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path,
                      mode="auto")
    _out, err = again.communicate(timeout=30)
    assert again.returncode == 0, err
    assert "process(es) left running by an earlier srd" in err
    assert str(hidden) in err
    wait_for(lambda: sleeping("75.1") == [] and sleeping("75.2") == [], timeout=3)
    assert srd_cgroups(proc.pid) == []


def test_cgroup_switch(tmp_path: Path, mode: str) -> None:
    """A case runs in a cgroup of its own under srd-<pid>-<run tag>, or (SRD_CGROUP=off)
    in srd's; both are removed at the end of the run."""
    own = cgroup.own_folder()
    if own is None:
        pytest.skip("no cgroup v1 pids hierarchy here")
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\nwhere,grep -E '^[0-9]+:pids:' /proc/self/cgroup > where.txt\n")
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path,
                     mode=mode)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    where = (tmp_path / "where.txt").read_text().strip().split(":", 2)[2]
    where = os.path.normpath(f"{cgroup.MOUNT}/{where}")
    if mode == "off":
        assert where == own
    else:
        tag = cgroup.run_tag(str((tmp_path / "m_run").resolve()))
        assert where == f"{own}/srd-{proc.pid}-{tag}/1"
    assert srd_cgroups(proc.pid) == []


def test_nohup_keeps_sighup_ignored(tmp_path: Path) -> None:
    """Started with SIGHUP ignored (``nohup srd run ... &``), srd keeps ignoring it."""
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\na,echo up > started; sleep 0.5; echo p95=0.1\nb,echo p95=0.2\n")
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path,
                     mode="off",
                     preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    wait_for(lambda: (tmp_path / "started").exists())
    proc.send_signal(signal.SIGHUP)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "SIGHUP" not in err
    assert ids(tmp_path / "m.csv") == ["a", "b"]


FALLBACK = ("import runpy, sys\n"
            "import doerunner.process.cgroup as cgroup\n"
            "cgroup.MOUNT = sys.argv.pop(1)\n"
            "runpy.run_module('doerunner', run_name='__main__', alter_sys=True)\n")


def test_no_cgroup_where_the_hierarchy_is_not_one(tmp_path: Path) -> None:
    """Where the pids hierarchy is not a cgroup file system srd can use (here a plain folder
    in its place), srd says nothing, makes no cgroup, and still kills what a case left."""
    fake = tmp_path / "fake-pids"
    fake.mkdir()
    (fake / "tasks").write_text("")  # srd's own cgroup looks writable; a new one is not one
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\nleaver,(env -i setsid sleep 77.1 &); echo p95=0.1\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("SRD_CGROUP", None)
    p = subprocess.run([sys.executable, "-c", FALLBACK, str(fake), "run", "--cases",
                        "cases.csv", "--out", "m.csv"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "cgroup" not in p.stderr
    assert ids(tmp_path / "m.csv") == ["leaver"]
    assert sleeping("77.1") == []
    assert sorted(x.name for x in fake.iterdir()) == ["tasks"]
