"""Setup, prepare and cleanup commands (issue 16), with hyperfine's meanings: setup once
before a case's executions, prepare before every warm-up and measured execution (never
timed), cleanup after the case however it ended. Driven through `srd run` in a real
subprocess; each hook appends a line to a file, so the order is what the file says."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from doerunner.cli import cli

from .conftest import REPO, run_srd

TRAIL = 'echo "{what} $SRD_CASE_ID" >> trail'


def _t(what: str) -> str:
    return TRAIL.replace("{what}", what)


def _write(tmp_path: Path, rows: list[list[str]]) -> None:
    with open(tmp_path / "cases.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _run(tmp_path: Path, rows: list[list[str]] | None, *args: str,
         env: dict[str, str] | None = None) -> tuple[int, dict[str, dict[str, str]], str]:
    if rows is not None:
        _write(tmp_path, rows)
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q", *args, cwd=tmp_path,
                env=env)
    with open(tmp_path / "m.csv", newline="") as f:
        return p.returncode, {r["case_id"]: r for r in csv.DictReader(f)}, p.stderr


def _trail(tmp_path: Path) -> list[str]:
    path = tmp_path / "trail"
    return path.read_text().splitlines() if path.exists() else []


def _run_json(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "m_run" / "run.json").read_text())


def test_hooks_run_in_order_around_warmups_and_repetitions(tmp_path: Path) -> None:
    hooks = [_t("setup"), _t("prepare"), _t("cleanup")]
    rc, rows, err = _run(tmp_path, [
        ["case_id", "backend", "cmd", "warmup", "repeat", "setup", "prepare", "cleanup"],
        ["fixed", "shell", _t("run"), "2", "3", *hooks],
        ["auto", "shell", _t("run"), "auto", "1", *hooks],
        ["dummy", "dummy", "", "1", "2", *hooks],
        ["plain", "shell", _t("run"), "1", "1", "", "", ""]], "--warmup-max", "5")
    assert rc == 0, err
    assert _trail(tmp_path) == [
        "setup fixed", *["prepare fixed", "run fixed"] * 5, "cleanup fixed",
        "setup auto", *["prepare auto", "run auto"] * 6, "cleanup auto",
        "setup dummy", *["prepare dummy"] * 3, "cleanup dummy",
        "run plain", "run plain"]
    assert [rows[c]["status"] for c in rows] == ["OK"] * 4
    assert (rows["fixed"]["warmup_runs"], rows["fixed"]["runs"]) == ("2", "3")
    assert rows["auto"]["warmup_runs"] == "5"


def test_prepare_is_not_timed(tmp_path: Path) -> None:
    rc, rows, err = _run(tmp_path, [["case_id", "cmd", "repeat", "prepare"],
                                    ["p", "true", "3", "sleep 0.3"]])
    assert rc == 0, err
    assert float(rows["p"]["run_seconds_max"]) < 0.15
    case = _run_json(tmp_path)["cases"][0]
    assert [r["wall_s"] < 0.15 for r in case["runs"]] == [True] * 3
    assert case["t_end"] - case["t_start"] >= 0.9  # the case did wait for its prepares


def test_prepare_is_outside_the_gpu_and_host_windows(tmp_path: Path, lib_dir: Path) -> None:
    from doerunner.telemetry import rapl
    from tests import nvmlsim, powercapsim
    from tests.nvmlsim import Profile, uuid

    root = powercapsim.build(tmp_path / "powercap", max_range_j=50.0)
    env = nvmlsim.sim_env(lib_dir, profiles=[Profile([(0, 100.0)])], t0=time.time())
    env[rapl.ROOT_VAR] = str(root)
    env["SRD_HOME"] = str(tmp_path / "home")
    busy = ('python3 -c "import time; e = time.process_time() + 0.4\n'
            'while time.process_time() < e: pass"')
    with powercapsim.Advancer(root, max_range_j=50.0):
        rc, rows, err = _run(tmp_path, [
            ["case_id", "cmd", "setup", "prepare", "cleanup"],
            ["g", "sleep 0.2", 'echo "$CUDA_VISIBLE_DEVICES" > setup.cvd',
             f'{busy}; sleep 0.3; echo "$CUDA_VISIBLE_DEVICES" > prepare.cvd',
             'echo "$CUDA_VISIBLE_DEVICES" > cleanup.cvd']],
            "--baseline", "off", env=env)
    assert rc == 0, err
    r = rows["g"]
    wall = float(r["run_seconds"])
    assert wall < 0.35
    # 100 W of GPU and 70 W of CPU packages over the command alone: the 0.7 s of prepare
    # (0.4 s of it burning a core) would add 70 J and 49 J.
    assert float(r["energy_raw_j"]) == pytest.approx(100.0 * wall, rel=0.05)
    assert float(r["cpu_energy_j"]) <= 70.0 * (wall + 0.1)
    assert float(r["cpu_user_s"]) < 0.1
    for hook in ("setup", "prepare", "cleanup"):  # the GPU the plan gives the case
        assert (tmp_path / f"{hook}.cvd").read_text() == f"{uuid(0)}\n"


def test_failures_and_cleanup_whatever_the_status(tmp_path: Path) -> None:
    clean = _t("cleanup")
    rc, rows, err = _run(tmp_path, [
        ["case_id", "cmd", "timeout_s", "repeat", "shell", "setup", "prepare", "cleanup"],
        ["fail", "exit 2", "", "", "", "", "", clean],
        ["slow", "sleep 10", "0.3", "", "", "", "", clean],
        ["nosetup", _t("run"), "", "", "", "exit 1", "", clean],
        ["slowsetup", _t("run"), "0.3", "", "", "sleep 10", "", clean],
        ["noprep", _t("run"), "", "3", "", "",
         "[ -e noprep.flag ] && exit 5; touch noprep.flag", clean],
        ["badclean", "true", "", "", "", "", "", "exit 7"],
        ["bothbad", "exit 2", "", "", "", "", "", "exit 7"],
        ["slowclean", "true", "0.3", "", "", "", "", "sleep 10"],
        ["notfound", "true", "", "", "no", "no-such-program-xyz", "", "true"]])
    assert rc == 3, err
    got = {c: (r["status"], r["exit_code"], r["message"], r["errors"]) for c, r in rows.items()}
    assert got == {
        "fail": ("FAIL", "2", "exit code 2", "1"),
        "slow": ("TIMEOUT", "", "timed out after 0.3 s", "1"),
        "nosetup": ("FAIL", "", "setup failed: exit code 1", "1"),
        "slowsetup": ("FAIL", "", "setup timed out after 0.3 s", "1"),
        "noprep": ("FAIL", "", "repetition 2 of 3: prepare failed: exit code 5", "1"),
        "badclean": ("FAIL", "0", "cleanup failed: exit code 7", "1"),
        "bothbad": ("FAIL", "2", "exit code 2; cleanup failed: exit code 7", "1"),
        "slowclean": ("FAIL", "0", "cleanup timed out after 0.3 s", "1"),
        "notfound": ("FAIL", "", "setup failed: command not found: no-such-program-xyz", "1")}
    # A failed setup or prepare runs no command; the cleanup ran after every case.
    assert _trail(tmp_path) == ["cleanup fail", "cleanup slow", "cleanup nosetup",
                                "cleanup slowsetup", "run noprep", "cleanup noprep"]
    assert rows["nosetup"]["run_seconds"] == "0.000000"
    assert rows["noprep"]["runs"] == "2"
    assert float(rows["badclean"]["run_seconds"]) < 0.1  # the measured value is kept


def test_hooks_get_the_case_placeholders_environment_and_logs(tmp_path: Path) -> None:
    (tmp_path / "argv.py").write_text("import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    rc, _, err = _run(tmp_path, [
        ["case_id", "cmd", "shell", "size", "setup", "cleanup"],
        ["sh", "true", "", "1 2", 'echo {size} "$SRD_PARAM_SIZE" "$SRD_CASE_ID"',
         "echo oops >&2"],
        ["nosh", "true", "no", "1 2", "python3 argv.py {size} \"{size}\" --s={size}", ""]])
    assert rc == 0, err
    logs = tmp_path / "m_run" / "logs"
    assert (logs / "sh+setup.stdout").read_text() == "1 2 1 2 sh\n"
    assert (logs / "sh+cleanup.stderr").read_text() == "oops\n"
    assert json.loads((logs / "nosh+setup.stdout").read_text()) == ["1", "2", "1 2", "--s=1 2"]
    # A silent stream leaves no file; the case's own logs keep their names.
    assert sorted(p.name for p in logs.iterdir()) == [
        "nosh+setup.stdout", "sh+cleanup.stderr", "sh+setup.stdout"]
    definition = _run_json(tmp_path)["cases"][1]["definition"]
    assert (definition["shell"], definition["setup"]) == (
        False, "python3 argv.py {size} \"{size}\" --s={size}")
    assert "cleanup" not in definition and "prepare" not in definition


def test_options_apply_to_empty_cells(tmp_path: Path) -> None:
    rc, _, err = _run(tmp_path, [
        ["case_id", "cmd", "setup", "cleanup"],
        ["own", "true", _t("cell-setup"), ""],
        ["dflt", "true", "", " "]],
        "--setup", _t("opt-setup"), "--prepare", _t("opt-prepare"),
        "--cleanup", _t("opt-cleanup"))
    assert rc == 0, err
    assert _trail(tmp_path) == [
        "cell-setup own", "opt-prepare own", "opt-cleanup own",
        "opt-setup dflt", "opt-prepare dflt", "opt-cleanup dflt"]
    options = _run_json(tmp_path)["options"]
    assert (options["default_setup"], options["default_shell"]) == (_t("opt-setup"), True)


def test_resume_runs_again_a_case_whose_hook_changed(tmp_path: Path) -> None:
    rows = [["case_id", "cmd", "setup"], ["a", "true", _t("s1")], ["b", "true", _t("s1")]]
    assert _run(tmp_path, rows)[0] == 0
    rows[1][2] = _t("s2")
    assert _run(tmp_path, rows, "--resume")[0] == 0
    assert _trail(tmp_path) == ["s1 a", "s1 b", "s2 a"]
    assert _run(tmp_path, rows, "--resume")[0] == 0  # nothing changed: nothing runs
    assert _run(tmp_path, rows, "--resume", "--cleanup", "true")[0] == 0  # an option too
    assert _trail(tmp_path) == ["s1 a", "s1 b", "s2 a", "s2 a", "s1 b"]


def _invoke(tmp_path: Path, text: str, *args: str) -> tuple[int, list[str]]:
    (tmp_path / "cases.csv").write_text(text)
    r = CliRunner().invoke(cli, ["run", "--cases", str(tmp_path / "cases.csv"), "--out",
                                 str(tmp_path / "m.csv"), *args])
    return r.exit_code, r.output.splitlines()


def test_an_unknown_placeholder_in_a_hook_is_an_input_error(tmp_path: Path) -> None:
    code, out = _invoke(tmp_path, "case_id,cmd,size,setup,prepare,shell\n"
                                  "a,true,1,make {sise},,\n"
                                  "b,true,1,,rm {nope},\n"
                                  "c,true,1,,,maybe\n", "--cleanup", "rm {other}")
    cf = tmp_path / "cases.csv"
    assert code == 4
    assert out == [
        "srd: error: --cleanup uses {other} but there is no parameter 'other' (write "
        "{{other}} for literal braces)",
        f"{cf}:2:4: setup uses {{sise}} but there is no parameter 'sise': did you mean "
        "{size}?",
        f"{cf}:3:5: prepare uses {{nope}} but there is no parameter 'nope' (write {{{{nope}}}} "
        "for literal braces)",
        f"{cf}:4:6: shell must be 1, true, yes or x (run the commands with /bin/sh -c) or 0, "
        "false, no (run them without a shell), got 'maybe'",
        "srd: 4 problems; nothing was run"]
    assert not (tmp_path / "m.csv").exists() and not (tmp_path / "m_run").exists()


def test_dry_run_shows_the_hooks(tmp_path: Path) -> None:
    code, out = _invoke(tmp_path, "case_id,cmd,n,setup,cleanup\na,echo {n},1 2,make {n},\n",
                        "--dry-run", "--cleanup", "rm -f {n}.tmp")
    assert code == 0
    assert out[-2] == ("a\tshell\ttimeout=600s\trepeat=1\twarmup=0\techo '1 2'\t"
                       "setup=make '1 2'\tcleanup=rm -f '1 2'.tmp")


def test_ctrl_c_still_runs_the_cleanup(tmp_path: Path) -> None:
    _write(tmp_path, [["case_id", "cmd", "cleanup"],
                      ["a", "touch started; sleep 30", _t("cleanup")],
                      ["b", "true", _t("cleanup")]])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "doerunner", "run", "--cases", "cases.csv",
                             "--out", "m.csv", "-q"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "started").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert _trail(tmp_path) == ["cleanup a"]  # b never started


def test_a_failed_setup_shows_its_own_stderr_never_an_earlier_runs(tmp_path: Path) -> None:
    """The FAIL line and the JUnit error quote the failed hook's stderr; the logs of an
    earlier run in the same run directory are gone (a case that prints nothing leaves no
    log, and the old one would be read as its own)."""
    first = run_srd("run", "-q", "--telemetry", "off", "-L", "x", "a,b", "--",
                    "echo OLD-{x} >&2; exit 1", cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    logs = tmp_path / "metrics_run" / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["x-a.stderr", "x-b.stderr"]
    p = run_srd("run", "--telemetry", "off", "-L", "x", "a", "--setup",
                "echo NEW-SETUP-ERR >&2; exit 1", "--junit", "j.xml", "--", "true",
                cwd=tmp_path)
    assert p.returncode == 3, p.stderr
    assert p.stdout.splitlines()[1:3] == [  # after "previous journal moved aside..."
        "[1/1] x-a (x=a) FAIL 0.000 s (setup failed: exit code 1)", "    NEW-SETUP-ERR"]
    assert sorted(q.name for q in logs.iterdir()) == ["x-a+setup.stderr"]
    junit = (tmp_path / "j.xml").read_text()
    assert "NEW-SETUP-ERR" in junit and "OLD" not in junit
    # a case that runs again and prints nothing removes its old log; the logs of a case
    # (or a hook) the run does not have go when it starts
    (logs / "x-a.stdout").write_text("stale\n")
    (logs / "other.stdout").write_text("another case's\n")
    p = run_srd("run", "-q", "--telemetry", "off", "-L", "x", "a", "--resume", "--retry-failed",
                "--", "true", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert sorted(q.name for q in logs.iterdir()) == []
