"""`--executor dask` against a real LocalCluster of 2 worker processes: the local executor's
rows, timeouts on the worker, a worker killed mid-case, resume across executors, Ctrl-C."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from doerunner.campaign.orchestrator import run
from doerunner.cli import cli

from .test_resume import journal_ids, marked_processes, srd_popen, wait_for

distributed = pytest.importorskip("distributed")

CASES = "case_id,cmd,timeout_s,repeat,param_n\n" + "".join(
    f"c{i},sleep 0.{i % 3 + 1}; echo p95=0.0{i + 1} n=$SRD_PARAM_N; echo warn >&2,10,"
    f"{1 + i % 2},{i}\n" for i in range(6)) + "bad,echo nope; exit 3,10,1,9\n"

# Times, and what says which machine ran the case.
DROP = {"run_seconds", "run_seconds_min", "run_seconds_max", "run_seconds_std",
        "run_seconds_median", "run_seconds_mad", "ts_start",
        "ts_end", "cpu_user_s", "cpu_sys_s", "cpu_util", "mem_peak_mb", "disk_io_mb",
        "threads_active", "network_io_mb"}  # timings and what the host measured


@pytest.fixture(scope="module")
def cluster():
    import dask

    from doerunner.executors.dask import SCHEDULER_CONFIG

    with dask.config.set(SCHEDULER_CONFIG):
        c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None)
    try:
        yield c
    finally:
        c.close()


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in DROP and not k.startswith("env_")}
                for r in csv.DictReader(f)]


def srd(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["run", "--quiet", *args])
    return r.exit_code, r.output


def test_dask_gives_the_local_rows_logs_and_workers(tmp_path, cluster, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.csv").write_text(CASES)
    local = srd("--cases", "cases.csv", "--out", "l.csv")
    remote = srd("--cases", "cases.csv", "--out", "d.csv", "--executor", "dask",
                 "--scheduler", cluster.scheduler_address)
    assert local[0] == remote[0] == 3, remote[1]  # "bad" fails in both
    assert rows(tmp_path / "d.csv") == rows(tmp_path / "l.csv")
    assert [r["case_id"] for r in rows(tmp_path / "d.csv")] == [f"c{i}" for i in range(6)] + [
        "bad"]
    for name in ("c0.stdout", "c0.stderr", "bad.stdout"):
        assert (tmp_path / "d_run/logs" / name).read_bytes() == \
            (tmp_path / "l_run/logs" / name).read_bytes()
    doc = json.loads((tmp_path / "d_run/run.json").read_text())
    workers = set(cluster.scheduler_info["workers"])
    for case in doc["cases"]:
        w = case["definition"]["worker"]
        assert w["address"] in workers and w["host"] and w["pid"] != os.getpid()
    assert doc["options"]["executor"] == "dask"


def test_timeout_on_a_worker(tmp_path, cluster, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.csv").write_text("case_id,cmd,timeout_s\nslow,sleep 30.71,1\n")
    code, out = srd("--cases", "cases.csv", "--out", "m.csv", "--executor", "dask",
                    "--scheduler", cluster.scheduler_address, "--kill-grace", "0.5")
    assert code == 3, out
    with open(tmp_path / "m.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["status"] == "TIMEOUT" and abs(float(row["run_seconds"]) - 1) < 0.3
    assert marked_processes("30.71") == []


def _worker_of(pid_file: Path, line: int) -> int | None:
    """The worker process that ran the ``line``-th attempt (the case shell's parent)."""
    lines = pid_file.read_text().split() if pid_file.exists() else []
    if len(lines) < line:
        return None
    try:
        return psutil.Process(int(lines[line - 1])).ppid()
    except psutil.Error:
        return None


def _run_killing(tmp_path: Path, cluster, case_id: str, kills: int) -> dict[str, str]:
    """Run one case on the cluster and SIGKILL the worker running it on its first ``kills``
    attempts; return its row."""
    pids = tmp_path / f"{case_id}.pids"
    cases = tmp_path / f"{case_id}.csv"
    cases.write_text(f"case_id,cmd,timeout_s\n{case_id},echo $$ >> {pids}; sleep 3.31; "
                     "echo v=1,30\n")
    with distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        workers = {int(p) for p in client.run(os.getpid).values()}
    box: dict[str, object] = {}
    t = threading.Thread(target=lambda: box.setdefault("s", run(
        cases, out=tmp_path / f"{case_id}.csv.out", executor="dask",
        scheduler=cluster.scheduler_address, quiet=True, handle_signals=False)))
    t.start()
    for attempt in range(1, kills + 1):
        wait_for(lambda a=attempt: _worker_of(pids, a) is not None, timeout=60)
        worker = _worker_of(pids, attempt)
        assert attempt > 1 or worker in workers
        os.kill(worker, signal.SIGKILL)  # type: ignore[arg-type]
    t.join(90)
    assert not t.is_alive()
    assert journal_ids(tmp_path / f"{case_id}.csv_run") == [case_id]  # journaled once
    assert len(pids.read_text().split()) == 2  # ran twice
    with open(tmp_path / f"{case_id}.csv.out", newline="") as f:
        (row,) = csv.DictReader(f)
    return row


def test_worker_killed_mid_case_is_requeued_once(tmp_path, cluster) -> None:
    """A case that loses its worker runs again on another one and ends OK; one that loses
    it on both tries is FAIL; what the dead workers left running is killed."""
    once = _run_killing(tmp_path, cluster, "once", 1)
    assert once["status"] == "OK" and once["v"] == "1"
    twice = _run_killing(tmp_path, cluster, "twice", 2)
    assert twice["status"] == "FAIL"
    assert twice["message"].startswith("worker lost twice while running the case (tcp://")
    assert twice["errors"] == "1"
    # The restarted workers swept what the killed ones left running.
    wait_for(lambda: marked_processes("3.31") == [], timeout=10)


@pytest.mark.parametrize("first,then", [("local", "dask"), ("dask", "local")])
def test_resume_across_executors(tmp_path, cluster, monkeypatch, first, then) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.csv").write_text(CASES)
    lines = CASES.splitlines(keepends=True)
    (tmp_path / "half.csv").write_text("".join(lines[:4]))
    how = {"local": [], "dask": ["--executor", "dask", "--scheduler",
                                 cluster.scheduler_address]}
    assert srd("--cases", "half.csv", "--out", "m.csv", *how[first])[0] == 0
    code, out = srd("--cases", "cases.csv", "--out", "m.csv", "--resume", *how[then])
    assert code == 3, out
    ids = journal_ids(tmp_path / "m_run")
    assert sorted(ids) == sorted([f"c{i}" for i in range(6)] + ["bad"])  # each once
    assert ids[:3] == ["c0", "c1", "c2"]
    r = CliRunner().invoke(cli, ["validate", "m.csv", "--cases", "cases.csv"])
    assert r.exit_code == 0, r.output


def test_interrupt_kills_the_running_cases_of_a_local_cluster(tmp_path) -> None:
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\n" + "".join(f"s{i},sleep 65.{i}\n" for i in range(4)))
    proc = srd_popen("run", "--cases", "cases.csv", "--out", "m.csv", "--executor", "dask",
                     "--jobs", "2", "--kill-grace", "0.5", cwd=tmp_path)
    wait_for(lambda: len(marked_processes("65.0") + marked_processes("65.1")) == 2,
             timeout=60, proc=proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    time.sleep(0.2)
    assert all(marked_processes(f"65.{i}") == [] for i in range(4))
    assert journal_ids(tmp_path / "m_run") == []


@pytest.mark.parametrize("args,message", [
    (["--executor", "dask", "--per-gpu"], "--per-gpu is for the local executor"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"],
     "--jobs 2 sizes the LocalCluster of --executor dask"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --executor dask"),
])
def test_incompatible_options_exit_4(tmp_path, args, message) -> None:
    (tmp_path / "cases.csv").write_text("case_id,cmd\na,true\n")
    code, out = srd("--cases", str(tmp_path / "cases.csv"), "--out",
                    str(tmp_path / "m.csv"), *args)
    assert code == 4
    assert message in out


def test_a_dask_worker_gives_its_cases_the_gpus_it_measures(tmp_path, lib_dir,
                                                            monkeypatch) -> None:
    """The plan's GPU rule on a worker: the case gets the worker's GPUs (by UUID) and the
    worker's window measures exactly those. The worker process runs the real nvidia-ml-py
    against the simulated driver (its environment is set before it starts)."""
    import dask

    from doerunner.executors.dask import SCHEDULER_CONFIG

    from . import nvmlsim

    env = nvmlsim.sim_env(lib_dir, profiles=[nvmlsim.Profile([(0, 120.0)]),
                                             nvmlsim.Profile([(0, 80.0)])])
    for k in ("LD_LIBRARY_PATH", *(k for k in env if k.startswith("NVMLSIM_"))):
        monkeypatch.setenv(k, env[k])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd\nc,sleep 0.3; echo ext_cvd=$CUDA_VISIBLE_DEVICES\n")
    with dask.config.set(SCHEDULER_CONFIG):
        one = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    try:
        code, out = srd("--cases", "cases.csv", "--out", "m.csv", "--executor", "dask",
                        "--scheduler", one.scheduler_address, "--baseline", "off")
    finally:
        one.close()
    assert code == 0, out
    with open(tmp_path / "m.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["ext_cvd"] == f"{nvmlsim.uuid(0)},{nvmlsim.uuid(1)}"
    assert row["gpu_count"] == "2"
    assert float(row["gpu_power_mean_w"]) == pytest.approx(200.0, rel=0.01)
