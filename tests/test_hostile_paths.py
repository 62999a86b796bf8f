"""Hostile input, hostile output (issue 17): what is at an output's path (devices and FIFOs
written through, never replaced; sockets, block devices and folders refused), outputs that
name the input or each other, links planted in the run directory, every output checked
before the first case, $SRD_HOME, the range of every number, bounded input files, and no
probe or temporary file left behind. Character devices are made under tmp_path (root only);
/dev/null itself is used only as a write-through target."""

from __future__ import annotations

import errno
import math
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from doerunner.cli import cli

ROOT = os.geteuid() == 0
CASES = "case_id,cmd\na,touch ran\n"  # `ran` appears when a case ran
DUMMY = "case_id,backend\na,dummy\n"


def srd(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory, with a cases.csv whose case touches ``ran``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.csv").write_text(CASES)
    return tmp_path


def nothing_ran(d: Path, *absent: str) -> None:
    assert not (d / "ran").exists()
    assert (d / "cases.csv").read_text() == CASES
    for name in absent:
        assert not os.path.lexists(d / name), name


class Reader(threading.Thread):
    """Reads a FIFO to its end (what srd wrote through it). Its read end is open before
    this returns (srd refuses a FIFO nobody reads), without blocking: until the writer has
    written, an empty read is "nothing yet", not the end."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.data = b""
        self.start()

    def run(self) -> None:
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = os.read(self.fd, 65536)
                except BlockingIOError:  # a writer is there, nothing written yet
                    time.sleep(0.005)
                    continue
                if chunk:
                    self.data += chunk
                elif self.data:
                    return  # the writer closed after writing: the end
                else:
                    time.sleep(0.005)  # no writer yet
        finally:
            os.close(self.fd)


def null_device(path: Path) -> Path:
    """A character device 1:3 (what /dev/null is) at ``path``: root only."""
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return path


# -- special files at an output's path -------------------------------------------------------
@pytest.mark.parametrize("kind", ["fifo", "chardev", "stdout"])
def test_a_stream_out_gets_no_run_directory_beside_it(here: Path, kind: str) -> None:
    if kind == "chardev" and not ROOT:
        pytest.skip("mknod of a character device needs root")
    name, what = {"fifo": ("out.fifo", "a FIFO"), "chardev": ("out.dev", "a character device"),
                  "stdout": ("-", "standard output")}[kind]
    if kind == "fifo":
        os.mkfifo(here / name)
    elif kind == "chardev":
        null_device(here / name)
    r = srd("run", "--cases", "cases.csv", "--out", name)
    assert r.exit_code == 4
    assert r.stderr == (f"srd: error: --out {name} is {what}: srd creates no run directory "
                        "beside it; name one with --run-dir\n")
    nothing_ran(here, f"{Path(name).stem}_run")
    if kind == "fifo":
        assert stat.S_ISFIFO(os.lstat(here / name).st_mode)
    if kind == "chardev":
        assert stat.S_ISCHR(os.lstat(here / name).st_mode)


def test_metrics_written_through_a_fifo(here: Path) -> None:
    (here / "dummy.csv").write_text(DUMMY)
    os.mkfifo(here / "out.fifo")
    reader = Reader(here / "out.fifo")
    r = srd("run", "--cases", "dummy.csv", "--out", "out.fifo", "--run-dir", "r", "-q")
    reader.join(10)
    assert r.exit_code == 0, r.output
    assert reader.data.startswith(b"case_id,status,run_seconds,")
    assert reader.data.count(b"\na,OK,") == 1
    assert stat.S_ISFIFO(os.lstat(here / "out.fifo").st_mode)
    assert (here / "r" / "journal.jsonl").is_file() and not (here / "out_run").exists()
    assert [p for p in os.listdir(here) if p.startswith(".")] == []


@pytest.mark.skipif(not ROOT, reason="mknod of a character device needs root")
def test_metrics_and_junit_written_through_a_character_device(here: Path) -> None:
    (here / "dummy.csv").write_text(DUMMY)
    dev = null_device(here / "null")
    before = os.lstat(dev)
    r = srd("run", "--cases", "dummy.csv", "--out", "null", "--junit", "null",
            "--run-dir", "r", "-q")
    assert r.exit_code == 0, r.output
    after = os.lstat(dev)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino
    assert not (here / "null_run").exists() and (here / "r" / "run.json").is_file()


def test_dev_null_is_written_through_never_replaced(here: Path) -> None:
    (here / "dummy.csv").write_text(DUMMY)
    before = os.stat("/dev/null")
    r = srd("run", "--cases", "dummy.csv", "--out", "/dev/null", "--junit", "/dev/null",
            "--run-dir", "r", "-q")
    assert r.exit_code == 0, r.output
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (
        before.st_ino, before.st_rdev)
    assert not os.path.lexists("/dev/null_run")
    assert [p for p in os.listdir("/dev") if p.startswith(".null.")] == []


def test_report_html_written_through_a_fifo(here: Path) -> None:
    (here / "dummy.csv").write_text(DUMMY)
    assert srd("run", "--cases", "dummy.csv", "--out", "m.csv", "-q").exit_code == 0
    os.mkfifo(here / "report.fifo")
    reader = Reader(here / "report.fifo")
    r = srd("report", "m.csv", "--html", "report.fifo")
    reader.join(30)
    assert r.exit_code == 0, r.output
    assert reader.data.lstrip().lower().startswith(b"<!doctype html")
    assert stat.S_ISFIFO(os.lstat(here / "report.fifo").st_mode)


@pytest.mark.parametrize("option", ["--out", "--junit"])
@pytest.mark.parametrize("kind", ["socket", "block device", "directory"])
def test_outputs_srd_never_writes_to_are_refused(here: Path, option: str, kind: str) -> None:
    target = here / "target"
    if kind == "socket":
        os.mknod(target, 0o600 | stat.S_IFSOCK)
    elif kind == "block device":
        if not ROOT:
            pytest.skip("mknod of a block device needs root")
        os.mknod(target, 0o600 | stat.S_IFBLK, os.makedev(7, 0))
    else:
        target.mkdir()
    args = ["--out", "m.csv", "--junit", "target"] if option == "--junit" else ["--out", "target"]
    r = srd("run", "--cases", "cases.csv", *args)
    assert r.exit_code == 4
    why = "is a directory" if kind == "directory" else (
        f"is a {kind}: srd writes to a regular file, a character device or a FIFO")
    assert r.stderr == f"srd: error: {option} target: {why}\n"
    nothing_ran(here, "m_run", "target_run", "m.csv")


def test_a_symlinked_output_keeps_its_link(here: Path) -> None:
    (here / "dummy.csv").write_text(DUMMY)
    (here / "real").mkdir()
    (here / "real" / "x.csv").write_text("old\n")
    (here / "link.csv").symlink_to("real/x.csv")
    r = srd("run", "--cases", "dummy.csv", "--out", "link.csv", "-q")
    assert r.exit_code == 0, r.output
    assert os.readlink(here / "link.csv") == "real/x.csv"
    assert (here / "real" / "x.csv").read_text().startswith("case_id,status,")
    # the run directory sits beside the file written, not beside the link
    assert (here / "real" / "x_run" / "run.json").is_file()
    assert not (here / "link_run").exists()


# -- outputs that name the input, each other, the run directory ------------------------------
def _home() -> str:
    return os.environ["SRD_HOME"]


@pytest.mark.parametrize("setup,args,message", [
    (None, ["--out", "cases.csv"],
     "--out cases.csv is the input --cases cases.csv: give the output its own path"),
    (None, ["--junit", "cases.csv"],
     "--junit cases.csv is the input --cases cases.csv: give the output its own path"),
    ("hard", ["--out", "hard.csv"],
     "--out hard.csv is the input --cases cases.csv: give the output its own path"),
    ("soft", ["--out", "soft.csv"],
     "--out soft.csv is the input --cases cases.csv: give the output its own path"),
    (None, ["--out", "m.csv", "--junit", "m.csv"],
     "--junit m.csv is the same file as --out m.csv: give each output its own path"),
    (None, ["--out", "m.csv", "--junit", "sub/../m.csv"],
     "--junit sub/../m.csv is the same file as --out m.csv: give each output its own path"),
    (None, ["--out", "m.csv", "--run-dir", "m.csv"],
     "the run directory m.csv is --out m.csv: give --run-dir another path"),
    (None, ["--out", "m.csv", "--run-dir", "m.csv/run"],
     "the run directory m.csv/run is inside --out m.csv: give --run-dir another path"),
    (None, ["--run-dir", "cases.csv"],
     "the run directory cases.csv is --cases cases.csv: give --run-dir another path"),
    (None, ["--run-dir", "r", "--out", "r/run.json"],
     "--out r/run.json is run.json of the run directory r, which srd writes: choose "
     "another path"),
    (None, ["--run-dir", "r", "--out", "r/logs/a.stdout"],
     "--out r/logs/a.stdout is logs/a.stdout of the run directory r, which srd writes: "
     "choose another path"),
    (None, ["--run-dir", "r", "--junit", "r/journal.jsonl"],
     "--junit r/journal.jsonl is journal.jsonl of the run directory r, which srd writes: "
     "choose another path"),
    (None, ["--out", "{home}/history.sqlite"],
     "--out {home}/history.sqlite is the run history ({home}/history.sqlite): choose "
     "another path"),
])
def test_outputs_naming_the_input_or_each_other_are_refused(here: Path, setup: str | None,
                                                            args: list[str],
                                                            message: str) -> None:
    if setup == "hard":
        os.link(here / "cases.csv", here / "hard.csv")
    elif setup == "soft":
        (here / "soft.csv").symlink_to("cases.csv")
    home = _home()
    r = srd("run", "--cases", "cases.csv", *[a.format(home=home) for a in args])
    assert r.exit_code == 4
    assert r.stderr == f"srd: error: {message.format(home=home)}\n"
    nothing_ran(here, "m.csv", "m_run", "metrics.csv", "metrics_run", "r")
    assert not Path(home, "history.sqlite").exists()


def test_design_out_naming_its_yaml_is_refused(here: Path) -> None:
    (here / "d.yaml").write_text("factors:\n  a: [1, 2]\n")
    r = srd("design", "d.yaml", "--out", "d.yaml", "--force")
    assert r.exit_code == 4
    assert r.stderr == "srd: error: --out d.yaml is the input d.yaml: give the output its own " \
                       "path\n"
    assert (here / "d.yaml").read_text() == "factors:\n  a: [1, 2]\n"


def test_a_design_run_may_not_overwrite_its_yaml(here: Path) -> None:
    design = "factors:\n  a: [1, 2]\ntemplate:\n  backend: dummy\n"
    (here / "d.yaml").write_text(design)
    r = srd("run", "--cases", "d.yaml", "--out", "d.yaml")
    assert r.exit_code == 4
    assert r.stderr == "srd: error: --out d.yaml is the input --cases d.yaml: give the output " \
                       "its own path\n"
    assert (here / "d.yaml").read_text() == design
    assert not (here / "d_run").exists()


def test_report_html_naming_its_metrics_is_refused(here: Path) -> None:
    (here / "dummy.csv").write_text(DUMMY)
    assert srd("run", "--cases", "dummy.csv", "--out", "m.csv", "-q").exit_code == 0
    before = (here / "m.csv").read_bytes()
    r = srd("report", "m.csv", "--html", "m.csv")
    assert r.exit_code == 4
    assert r.stderr == "srd: error: --html m.csv is the input m.csv: give the output its own " \
                       "path\n"
    assert (here / "m.csv").read_bytes() == before


# -- links and special files planted in the run directory ------------------------------------
@pytest.mark.parametrize("name", [".lock", "journal.jsonl", "run.json", "repetitions.csv",
                                  "timeseries.csv", "logs/a.stdout", "logs", "timeseries"])
def test_a_link_planted_in_the_run_directory_is_refused(here: Path, name: str) -> None:
    victim = here / "victim"
    victim.mkdir() if name in ("logs", "timeseries") else victim.write_text("precious\n")
    (here / "r" / "logs").mkdir(parents=True)
    if name == "logs":
        (here / "r" / "logs").rmdir()
    (here / "r" / name).symlink_to(victim)
    r = srd("run", "--cases", "cases.csv", "--run-dir", "r")
    assert r.exit_code == 4
    made = "a folder srd made" if name in ("logs", "timeseries") else "a regular file srd wrote"
    assert r.stderr == (f"srd: error: run directory r: {name} is a symbolic link, not "
                        f"{made}: remove it\n")
    nothing_ran(here, "metrics.csv")
    assert os.listdir(victim) == [] if victim.is_dir() else victim.read_text() == "precious\n"


@pytest.mark.parametrize("name,kind,what", [
    ("run.json", "fifo", "a FIFO, not a regular file srd wrote"),
    ("logs/a.stderr", "fifo", "a FIFO, not a regular file srd wrote"),
    ("logs", "file", "a regular file, not a folder srd made"),
])
def test_special_files_planted_in_the_run_directory_are_refused(here: Path, name: str,
                                                                kind: str, what: str) -> None:
    (here / "r" / "logs").mkdir(parents=True)
    if name == "logs":
        (here / "r" / "logs").rmdir()
    if kind == "fifo":
        os.mkfifo(here / "r" / name)
    else:
        (here / "r" / name).write_text("x")
    r = srd("run", "--cases", "cases.csv", "--run-dir", "r")
    assert r.exit_code == 4
    assert r.stderr == f"srd: error: run directory r: {name} is {what}: remove it\n"
    nothing_ran(here, "metrics.csv")


def test_files_srd_writes_in_place_never_follow_a_link_planted_later(tmp_path: Path) -> None:
    # planted after the checks, while the run goes on: the open itself refuses
    from doerunner.campaign.journal import Journal
    from doerunner.campaign.orchestrator import write_file  # process.capture's, as srd has it

    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    for name in ("journal.jsonl", "a.stdout"):
        (tmp_path / name).symlink_to(victim)
    with pytest.raises(OSError) as journal:
        Journal(tmp_path / "journal.jsonl")
    with pytest.raises(OSError) as log:
        write_file(tmp_path / "a.stdout", b"output\n")
    for e, name in ((journal.value, "journal.jsonl"), (log.value, "a.stdout")):
        assert (e.errno, e.strerror, e.filename) == (
            errno.ELOOP, "is a symbolic link: srd writes no file of its run directory "
                         "through a link", str(tmp_path / name))
    os.mkfifo(tmp_path / "b.stdout")  # never waited on: refused at once
    with pytest.raises(OSError, match="is a FIFO, not a regular file"):
        write_file(tmp_path / "b.stdout", b"output\n")
    assert victim.read_text() == "precious\n"


def test_the_atomic_writer_never_follows_a_link_at_its_temporary_name(here: Path) -> None:
    (here / "dummy.csv").write_text(DUMMY)
    victim = here / "victim"
    victim.write_text("precious\n")
    # CliRunner runs srd in this process: its temporary file is named with this pid
    (here / f".m.csv.{os.getpid()}.tmp").symlink_to(victim)
    r = srd("run", "--cases", "dummy.csv", "--out", "m.csv", "-q")
    assert r.exit_code == 0, r.output
    assert victim.read_text() == "precious\n"
    assert (here / "m.csv").read_text().startswith("case_id,status,")
    assert [p for p in os.listdir(here) if p.startswith(".")] == []


# -- every output checked before the first case ----------------------------------------------
def test_a_bad_junit_path_is_found_before_anything_runs(here: Path) -> None:
    r = srd("run", "--cases", "cases.csv", "--junit", "nodir/report.xml")
    assert r.exit_code == 4
    assert r.stderr == "srd: error: --junit nodir/report.xml: directory 'nodir' does not exist\n"
    nothing_ran(here, "metrics.csv", "metrics_run")


def test_a_junit_name_too_long_for_its_folder_is_found_before_anything_runs(here: Path) -> None:
    limit = os.pathconf(here, "PC_NAME_MAX")
    name = "j" * (limit - 10) + ".xml"  # fits; its temporary file would not
    r = srd("run", "--cases", "cases.csv", "--junit", name)
    assert r.exit_code == 4
    assert r.stderr == (f"srd: error: --junit {name}: cannot write in '.': file name longer "
                        f"than {limit - 16} bytes\n")
    nothing_ran(here, "metrics.csv", "metrics_run")


def test_a_run_dir_that_is_a_file_is_refused(here: Path) -> None:
    (here / "r").write_text("mine\n")
    r = srd("run", "--cases", "cases.csv", "--run-dir", "r")
    assert r.exit_code == 4
    assert r.stderr == "srd: error: run directory r: is a regular file, not a directory\n"
    assert (here / "r").read_text() == "mine\n"
    nothing_ran(here, "metrics.csv")


def test_a_failed_run_directory_probe_removes_what_it_created(
        here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from doerunner.campaign import rundir

    real = rundir.check_writable_dir

    def full_logs(directory: Path) -> None:
        if directory.name == "logs":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(directory)

    monkeypatch.setattr(rundir, "check_writable_dir", full_logs)
    r = srd("run", "--cases", "cases.csv", "--run-dir", "new/deep/r")
    assert r.exit_code == 4
    assert r.stderr == "srd: error: run directory new/deep/r: No space left on device\n"
    nothing_ran(here, "new", "metrics.csv")


@pytest.mark.skipif(ROOT, reason="root writes in a read-only folder")
def test_an_unwritable_logs_folder_is_found_before_anything_runs(here: Path) -> None:
    (here / "r" / "logs").mkdir(parents=True)
    (here / "r" / "logs").chmod(0o555)
    try:
        r = srd("run", "--cases", "cases.csv", "--run-dir", "r")
    finally:
        (here / "r" / "logs").chmod(0o755)
    assert r.exit_code == 4
    assert r.stderr == "srd: error: run directory r: Permission denied\n"
    nothing_ran(here, "metrics.csv")


@pytest.mark.parametrize("args,message", [
    (["--out", ""], "--out: empty path"),
    (["--run-dir", ""], "--run-dir: empty path"),
    (["--junit", ""], "--junit: empty path"),
    (["--out", "."], "--out .: is a directory"),
])
def test_empty_or_folder_paths_are_usage_errors(here: Path, args: list[str],
                                                message: str) -> None:
    r = srd("run", "--cases", "cases.csv", *args)
    assert r.exit_code == 4
    assert r.stderr == f"srd: error: {message}\n"
    nothing_ran(here, "metrics.csv", "metrics_run", "_run")


# -- $SRD_HOME -------------------------------------------------------------------------------
@pytest.mark.parametrize("home", ["file", "file/sub"])
def test_an_srd_home_that_is_no_directory_is_one_clear_line(
        here: Path, monkeypatch: pytest.MonkeyPatch, home: str) -> None:
    (here / "file").write_text("not a folder\n")
    monkeypatch.setenv("SRD_HOME", str(here / home))
    line = (f"srd: error: SRD_HOME {here / home}: not a directory (srd keeps its run history "
            "and baseline cache there)\n")
    r = srd("run", "--cases", "cases.csv")
    assert (r.exit_code, r.stderr) == (4, line)
    nothing_ran(here, "metrics.csv", "metrics_run")
    r = srd("runs", "list")
    assert (r.exit_code, r.stderr) == (4, line)
    assert (here / "file").read_text() == "not a folder\n"


def test_a_history_that_is_no_database_is_found_before_anything_runs(
        here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (here / "home" / "history.sqlite").mkdir(parents=True)
    monkeypatch.setenv("SRD_HOME", str(here / "home"))
    r = srd("run", "--cases", "cases.csv")
    assert r.exit_code == 4
    assert r.stderr == (f"srd: error: run history {here / 'home' / 'history.sqlite'}: "
                        "unable to open database file\n")
    nothing_ran(here, "metrics.csv", "metrics_run")


# -- every number of a run finite and in range ------------------------------------------------
@pytest.mark.parametrize("option,value,rule", [
    ("--kill-grace", "inf", "use a number from 0 to 3600 (seconds)"),
    ("--kill-grace", "nan", "use a number from 0 to 3600 (seconds)"),
    ("--kill-grace", "3601", "use a number from 0 to 3600 (seconds)"),
    ("--timeout", "1e-300", "use a finite number >= 0.001 (seconds)"),
    ("--timeout", "inf", "use a finite number >= 0.001 (seconds)"),
    ("--sample-hz", "nan", "use a number from 0.1 to 100 (Hz)"),
    ("--warmup-cv", "nan", "use a finite number > 0"),
    ("--warmup-cv", "0", "use a finite number > 0"),
    ("--energy-price", "inf", "use a finite number >= 0"),
    ("--carbon-intensity", "nan", "use a finite number >= 0 (gCO2e/kWh)"),
    ("--baseline-ttl", "inf", "use a finite number >= 0 (seconds)"),
    ("--baseline-duration", "1e9", "use a number from 0.1 to 3600 (seconds)"),
    ("--baseline-duration", "nan", "use a number from 0.1 to 3600 (seconds)"),
])
def test_every_float_option_is_finite_and_in_range(here: Path, option: str, value: str,
                                                   rule: str) -> None:
    r = srd("run", "--cases", "cases.csv", option, value)
    assert r.exit_code == 4
    assert r.stderr.splitlines()[-1] == f"Error: Invalid value for '{option}': '{value}': {rule}"
    nothing_ran(here, "metrics.csv", "metrics_run")


@pytest.mark.parametrize("option,value,message", [
    ("--log-cap", "infM", "Error: Invalid value for --log-cap: 'infM': use a size from 1 "
                          "byte to 1G"),
    ("--log-cap", "nan", "Error: Invalid value for --log-cap: 'nan': use a size from 1 byte "
                         "to 1G"),
    ("--cooldown", "1e9", "Error: Invalid value for --cooldown: '1e9': use auto, off or a "
                          "number >= 0 (at most 3600 seconds)"),
    ("--baseline", "inf", "Error: Invalid value for --baseline: 'inf': use auto, measure, off "
                          "or a number >= 0"),
])
def test_sizes_and_mode_numbers_are_finite_and_in_range(here: Path, option: str, value: str,
                                                        message: str) -> None:
    r = srd("run", "--cases", "cases.csv", option, value)
    assert r.exit_code == 4
    assert r.stderr.splitlines()[-1] == message
    nothing_ran(here, "metrics.csv", "metrics_run")


def test_the_largest_kill_grace_and_smallest_timeout_are_taken(here: Path) -> None:
    r = srd("run", "--cases", "cases.csv", "--kill-grace", "3600", "--timeout", "0.001",
            "--dry-run")
    assert r.exit_code == 0, r.output
    nothing_ran(here, "metrics.csv", "metrics_run")


def test_compare_alpha_is_finite(here: Path) -> None:
    r = srd("compare", "cases.csv", "cases.csv", "--alpha", "nan")
    assert r.exit_code == 4
    assert r.stderr.splitlines()[-1] == ("Error: Invalid value for '--alpha': 'nan': use a "
                                         "number > 0 and < 1")


@pytest.mark.parametrize("name,value,message", [
    ("kill_grace_s", math.inf, "--kill-grace inf: use a number from 0 to 3600 (seconds)"),
    ("kill_grace_s", 1e308, "--kill-grace 1e+308: use a number from 0 to 3600 (seconds)"),
    ("warmup_cv", math.nan, "--warmup-cv nan: use a finite number > 0"),
    ("sample_hz", math.nan, "--sample-hz nan: use a number from 0.1 to 100 (Hz)"),
    ("price_per_kwh", math.inf, "--energy-price inf: use a finite number >= 0"),
    ("baseline_duration_s", 1e9, "--baseline-duration 1000000000.0: use a number from 0.1 to "
                                 "3600 (seconds)"),
    ("log_cap_bytes", 2 << 30, "--log-cap 2147483648: use a number from 1 to 1073741824 "
                               "(bytes)"),
])
def test_the_python_api_applies_the_same_bounds(name: str, value: float, message: str) -> None:
    from doerunner.campaign.options import RunOptions
    from doerunner.errors import InputError

    with pytest.raises(InputError) as e:
        RunOptions.build(**{name: value})
    assert str(e.value) == message


def test_a_timeout_cell_below_a_millisecond_is_refused(here: Path) -> None:
    (here / "tiny.csv").write_text("case_id,cmd,timeout_s\na,touch ran,1e-300\n")
    r = srd("run", "--cases", "tiny.csv")
    assert r.exit_code == 4
    assert r.stderr.startswith("tiny.csv:2:3: timeout_s must be a positive number of seconds")
    nothing_ran(here, "metrics.csv", "metrics_run")


# -- input files read with a bound -------------------------------------------------------------
def test_cases_that_never_end_are_refused(here: Path) -> None:
    r = srd("run", "--cases", "/dev/zero")
    assert r.exit_code == 4
    assert r.stderr == ("/dev/zero:0:0: cannot read: is a character device, not a regular file "
                        "or a pipe\n")
    nothing_ran(here, "metrics.csv", "metrics_run")


def test_cases_larger_than_a_gibibyte_are_refused_unread(here: Path) -> None:
    with open(here / "big.csv", "wb") as f:
        f.truncate((1 << 30) + 1)  # sparse: nothing is written, nothing must be read
    r = srd("run", "--cases", "big.csv")
    assert r.exit_code == 4
    assert r.stderr == ("big.csv:0:0: cannot read: larger than 1 GiB, the most srd reads of "
                        "such a file\n")
    nothing_ran(here, "metrics.csv", "metrics_run")


def test_cases_from_a_pipe_are_read(here: Path) -> None:
    os.mkfifo(here / "cases.fifo")

    def feed() -> None:
        with open(here / "cases.fifo", "w") as f:
            f.write(DUMMY)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    r = srd("run", "--cases", "cases.fifo", "--out", "m.csv", "-q")
    writer.join(10)
    assert r.exit_code == 0, r.output
    assert (here / "m.csv").read_text().count("\na,OK,") == 1


def test_design_and_validate_inputs_are_bounded(here: Path) -> None:
    r = srd("design", "/dev/zero", "--out", "new.csv")
    assert r.exit_code == 4
    assert r.stderr == ("/dev/zero:0:0: cannot read: is a character device, not a regular file "
                        "or a pipe\n")
    with open(here / "big.yaml", "wb") as f:
        f.truncate((10 << 20) + 1)
    r = srd("design", "big.yaml", "--out", "new.csv")
    assert r.exit_code == 4
    assert r.stderr == ("big.yaml:0:0: cannot read: larger than 10 MiB, the most srd reads of "
                        "such a file\n")
    assert not (here / "new.csv").exists()
    r = srd("validate", "/dev/zero")
    assert r.exit_code == 4
    assert r.stderr == ("/dev/zero:0:0: cannot read: is a character device, not a regular file "
                        "or a pipe\nsrd: /dev/zero: 1 problem(s)\n")


# -- no probe or temporary file left behind --------------------------------------------------
def test_no_probe_or_temporary_file_is_left_behind(here: Path) -> None:
    (here / "dummy.csv").write_text(DUMMY)
    (here / "out").mkdir()
    assert srd("run", "--cases", "dummy.csv", "--out", "out/m.csv", "--junit", "out/j.xml",
               "-q").exit_code == 0
    r = srd("run", "--cases", "dummy.csv", "--out", "out/m.csv", "--junit", "nodir/j.xml")
    assert r.exit_code == 4
    hidden = [str(p.relative_to(here)) for p in here.rglob(".*")]
    assert hidden == ["out/m_run/.lock"]
    assert [p.name for p in Path(_home()).iterdir()] == ["history.sqlite"]


# -- no command writes over srd's own files, nor its inputs (issue 17, re-test) ---------------
@pytest.fixture
def ran(here: Path) -> Path:
    """A registered run: m.csv and m_run/ (journal, run.json, logs/a.stdout)."""
    (here / "dummy.csv").write_text(DUMMY)
    assert srd("run", "--cases", "dummy.csv", "--out", "m.csv", "-q").exit_code == 0
    (here / "m_run" / "logs" / "a.stdout").write_text("log\n")
    return here


@pytest.mark.parametrize("args,message", [
    (["export", "--out", "m.csv"], "--out m.csv is the input {here}/m.csv: give the output "
                                   "its own path"),
    (["export", "--out", "m_run/x.json"], "--out m_run/x.json is in the input folder "
                                          "{here}/m_run: give the output its own path"),
    (["export", "--split", "m_run"], "--split m_run is in the input folder {here}/m_run: "
                                     "give the output its own path"),
    (["report", "m.csv", "--html", "{home}/history.sqlite"],
     "--html {home}/history.sqlite is the run history ({home}/history.sqlite): choose "
     "another path"),
    (["report", "m.csv", "--html", "m_run/journal.jsonl"],
     "--html m_run/journal.jsonl is journal.jsonl of the run directory m_run, which srd "
     "writes: choose another path"),
    (["report", "m.csv", "--html", "m_run/logs/a.stdout"],
     "--html m_run/logs/a.stdout is logs/a.stdout of the run directory m_run, which srd "
     "writes: choose another path"),
    (["design", "d.yaml", "--force", "--out", "{home}/history.sqlite"],
     "--out {home}/history.sqlite is the run history ({home}/history.sqlite): choose "
     "another path"),
    (["design", "d.yaml", "--force", "--out", "m_run/run.json"],
     "--out m_run/run.json is run.json of the run directory m_run, which srd writes: "
     "choose another path"),
    (["run", "--cases", "dummy.csv", "--out", "m_run/journal.jsonl", "--run-dir", "r"],
     "--out m_run/journal.jsonl is journal.jsonl of the run directory m_run, which srd "
     "writes: choose another path"),
])
def test_no_command_writes_over_srd_files_or_its_inputs(ran: Path, args: list[str],
                                                        message: str) -> None:
    (ran / "d.yaml").write_text("factors:\n  a: [1, 2]\n")
    home = _home()
    before = {p: p.read_bytes() for p in [*ran.rglob("*"), *Path(home).iterdir()]
              if p.is_file()}
    r = srd(*[a.format(home=home) for a in args])
    assert (r.exit_code, r.stderr) == (4, f"srd: error: {message.format(home=home, here=ran)}\n")
    after = {p: p.read_bytes() for p in [*ran.rglob("*"), *Path(home).iterdir()]
             if p.is_file()}
    assert after == before
    assert srd("runs", "list").exit_code == 0


def test_the_writer_itself_refuses_srd_files() -> None:
    from doerunner.errors import OutputError
    from doerunner.history import db_path
    from doerunner.outputs import protect
    from doerunner.outputs.base import write_output
    from doerunner.outputs.repetitions import FILE_NAME
    from doerunner.outputs.report_text import ReportText
    from doerunner.telemetry.baseline import cache_path

    assert protect.state_files() == [("the run history", db_path()),
                                     ("the baseline cache", cache_path())]
    assert FILE_NAME in protect.OWN_FILES
    with pytest.raises(OutputError) as e:
        write_output(ReportText(), None, cache_path(), "x")
    assert str(e.value) == f"x is the baseline cache ({cache_path()}): choose another path"


@pytest.mark.parametrize("option", ["--out", "--junit"])
def test_a_fifo_without_a_reader_is_refused_before_anything_runs(here: Path,
                                                                 option: str) -> None:
    os.mkfifo(here / "f")
    r = srd("run", "--cases", "cases.csv", option, "f", "--run-dir", "rd")
    assert (r.exit_code, r.stderr) == (4, f"srd: error: {option} f: FIFO has no reader\n")
    nothing_ran(here, "rd", "metrics.csv")
    assert stat.S_ISFIFO(os.lstat(here / "f").st_mode)


def test_a_fifo_without_a_reader_at_write_time_is_an_output_error(here: Path) -> None:
    os.mkfifo(here / "f")
    (here / "dummy.csv").write_text(DUMMY)
    assert srd("run", "--cases", "dummy.csv", "--out", "m.csv", "-q").exit_code == 0
    r = srd("report", "m.csv", "--html", "f")
    assert (r.exit_code, r.stderr.splitlines()[-1]) == (4, "srd: error: --html f: FIFO has "
                                                           "no reader")


@pytest.mark.parametrize("name", [".lock", "journal.jsonl", "logs/a.stdout"])
def test_an_own_file_with_another_hard_link_is_refused(here: Path, name: str) -> None:
    (here / "r" / "logs").mkdir(parents=True)
    victim = here / "victim"
    victim.write_text("precious\n")
    os.link(victim, here / "r" / name)
    r = srd("run", "--cases", "cases.csv", "--run-dir", "r")
    assert (r.exit_code, r.stderr) == (4, f"srd: error: run directory r: {name} has 2 hard "
                                          "links: srd writes no file of its run directory "
                                          "that another name shares: remove it\n")
    nothing_ran(here, "metrics.csv")
    assert victim.read_text() == "precious\n"


def test_a_folder_planted_among_the_logs_is_refused(here: Path) -> None:
    (here / "r" / "logs" / "a.stdout").mkdir(parents=True)
    r = srd("run", "--cases", "cases.csv", "--run-dir", "r")
    assert (r.exit_code, r.stderr) == (4, "srd: error: run directory r: logs/a.stdout is a "
                                          "directory, not a regular file srd wrote: remove it\n")
    nothing_ran(here, "metrics.csv")


def test_a_users_cases_csv_in_a_used_run_directory_is_never_replaced(here: Path) -> None:
    (here / "dummy.csv").write_text(DUMMY)
    assert srd("run", "--cases", "cases.csv", "--run-dir", ".", "-q").exit_code == 0
    (here / "ran").unlink()
    r = srd("run", "--run-dir", ".", "-L", "n", "1,2", "--", "echo {n}")
    assert (r.exit_code, r.stderr) == (4, "srd: error: run directory . holds a cases.csv that "
                                          "srd did not write: give this run its own "
                                          "--run-dir\n")
    nothing_ran(here)
    # a kept cases.csv is srd's: replaced by the next sweep, and runs again as given
    assert srd("run", "--run-dir", "k", "-q", "-L", "n", "1,2", "--", "echo n={n}").exit_code == 0
    assert srd("run", "--run-dir", "k", "-q", "-L", "n", "3", "--", "echo n={n}").exit_code == 0
    assert (here / "k" / "cases.csv").read_text().splitlines()[0].startswith(
        "# generated by srd run: ")
    r = srd("run", "--cases", "k/cases.csv", "--out", "again.csv", "-q")
    assert r.exit_code == 0, r.output
    assert (here / "again.csv").read_text().count("\nn-3,OK,") == 1


@pytest.mark.parametrize("args,message", [
    (["baseline", "--duration", "nan"], "Error: Invalid value for '--duration': 'nan': use a "
                                        "number from 0.1 to 3600 (seconds)"),
    (["baseline", "--duration", "inf"], "Error: Invalid value for '--duration': 'inf': use a "
                                        "number from 0.1 to 3600 (seconds)"),
    (["baseline", "--ttl", "nan"], "Error: Invalid value for '--ttl': 'nan': use a finite "
                                   "number >= 0 (seconds)"),
    (["runs", "prune", "--older-than", "1000000d"],
     "Error: Invalid value for --older-than: '1000000d' is longer than 100 years, the longest "
     "duration srd takes"),
    (["runs", "prune", "--older-than", "99999999999999999999d"],
     "Error: Invalid value for --older-than: '99999999999999999999d' is longer than 100 "
     "years, the longest duration srd takes"),
    (["export", "--since", "9999-12-31T23:59:59-14:00"],
     "Error: Invalid value for --since: '9999-12-31T23:59:59-14:00' is out of the range of "
     "dates srd takes (years 1 to 9999)"),
    (["export", "--out", ""], "srd: error: --out: empty path"),
    (["export", "--split", ""], "srd: error: --split: empty path"),
    (["report", "cases.csv", "--html", ""], "srd: error: --html: empty path"),
    (["validate", "cases.csv", "--cases", ""], "srd: error: --cases: empty path"),
])
def test_bad_values_are_usage_errors_not_internal_ones(here: Path, args: list[str],
                                                       message: str) -> None:
    (here / "dummy.csv").write_text(DUMMY)
    assert srd("run", "--cases", "dummy.csv", "-q").exit_code == 0  # a history to select in
    r = srd(*args)
    assert (r.exit_code, r.stderr.splitlines()[-1]) == (4, message)
