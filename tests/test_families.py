"""Adding a backend, an executor or an output format is one class plus one registry line; the
execution plan is decided once, printed by --dry-run and recorded in run.json."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner

from doerunner.backends import BACKENDS
from doerunner.backends.base import Backend, ExecContext
from doerunner.campaign.runner import RunnerSettings, run_with_retries
from doerunner.cli import cli
from doerunner.executors import EXECUTORS
from doerunner.executors.base import Executor, Finished
from doerunner.inputs.case import Case
from doerunner.outputs.base import OutputFormat
from doerunner.outputs.registry import FORMATS
from doerunner.results import OK, Execution

from . import nvmlsim
from .conftest import run_srd
from .nvmlsim import Profile


def srd(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- one backend: a class and a registry line ------------------------------------------------
class EchoBackend(Backend):
    """Reports its parameter ``n`` doubled; warms up twice unless told otherwise."""

    NAME = "echo"
    DEFAULT_WARMUP = 2

    def check(self, case: Case) -> list[tuple[str, str]]:
        return [] if case.params.get("n", "").isdigit() else [("n", "n must be digits")]

    def execute(self, case: Case, ctx: ExecContext) -> Execution:
        now = time.time()
        return Execution(OK, 0.001, now, now + 0.001, None, "",
                         {"doubled": 2 * int(case.params["n"])})


def test_a_backend_is_a_class_and_a_registry_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(BACKENDS, EchoBackend.NAME, EchoBackend)
    cases = tmp_path / "cases.csv"
    cases.write_text("case_id,backend,n\na,echo,21\nb,echo,x\n")
    r = srd("run", "--cases", cases, "--out", tmp_path / "m.csv")
    assert r.exit_code == 4 and f"{cases}:3:3: n must be digits" in r.output
    cases.write_text("case_id,backend,n\na,echo,21\n")
    r = srd("run", "--cases", cases, "--out", tmp_path / "m.csv")
    assert r.exit_code == 0, r.output
    [row] = rows(tmp_path / "m.csv")
    assert (row["backend"], row["doubled"], row["warmup_runs"]) == ("echo", "42", "2")


# -- one executor: a class and a registry line -----------------------------------------------
class Done:
    """A handle: the case already ran."""

    def __init__(self, result: Any) -> None:
        self.result = result


class InlineExecutor(Executor):
    """Runs each case in the calling thread when it is submitted, on the plan's one slot."""

    NAME = "inline"

    def capacity(self) -> int:
        return 1

    def submit(self, index: int, case: Case) -> Hashable:
        ctx = self.context
        ctx.reporter.case_start(case)
        slot = ctx.plan.slots[0]
        settings = RunnerSettings(ctx.logs_dir, ctx.policy, ctx.cancel, ctx.monitor,
                                  {**ctx.env, **slot.environment}, slot.measured)
        return Done(run_with_retries(case, BACKENDS[case.backend](), settings))

    def wait(self, handles: Iterable[Hashable], timeout_s: float) -> list[Hashable]:
        return list(handles)

    def result(self, handle: Any) -> Finished | None:
        return Finished(handle.result)


def test_an_executor_is_a_class_and_a_registry_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(EXECUTORS, InlineExecutor.NAME, InlineExecutor)
    cases = tmp_path / "cases.csv"
    cases.write_text("case_id,backend,fail\na,dummy,\nb,dummy,1\nc,dummy,\n")
    r = srd("run", "--cases", cases, "--out", tmp_path / "m.csv", "--executor", "inline")
    assert r.exit_code == 3, r.output
    assert [(x["case_id"], x["status"]) for x in rows(tmp_path / "m.csv")] == [
        ("a", "OK"), ("b", "FAIL"), ("c", "OK")]
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    assert run["plan"]["executor"] == "inline" and run["plan"]["mode"] == "serial"


# -- one output format: a class and a registry line ------------------------------------------
class TsvExport(OutputFormat):
    """case_id and status of the selected rows, tab-separated."""

    NAME = "tsv"
    EXPORT = True

    def write(self, data: Any, stream: IO[str]) -> None:
        for run in data.selected.runs:
            for rows in run.pieces():  # the selected rows, streamed a piece at a time
                for case_id, status in zip(rows["case_id"], rows["status"], strict=True):
                    stream.write(f"{run.record.run_id}\t{case_id}\t{status}\n")


def test_an_output_format_is_a_class_and_a_registry_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(FORMATS, TsvExport.NAME, TsvExport)
    cases = tmp_path / "cases.csv"
    cases.write_text("case_id,backend,fail\na,dummy,\nb,dummy,1\n")
    assert srd("run", "--cases", cases, "--out", tmp_path / "m.csv").exit_code == 3
    run_id = json.loads((tmp_path / "m_run" / "run.json").read_text())["run_id"]
    r = srd("export", "--format", "tsv", "--out", tmp_path / "x.tsv")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "x.tsv").read_text() == f"{run_id}\ta\tOK\n{run_id}\tb\tFAIL\n"
    r = srd("export", "--format", "nope")
    assert r.exit_code == 4 and "'nope' is not one of" in r.output and "'tsv'" in r.output


# -- the plan ------------------------------------------------------------------------------
def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path) -> None:
    cases = tmp_path / "cases.csv"
    cases.write_text("case_id,cmd,n\nx,touch {n},made\ny,true,\nz,true,\n")
    r = srd("run", "--cases", cases, "--out", tmp_path / "m.csv", "--dry-run",
            "--telemetry", "off", "--jobs", "3")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [
        "# executor: local (3 cases at once)",
        "# GPU telemetry: off",
        "x\tshell\ttimeout=600s\trepeat=1\twarmup=0\ttouch made",
        "y\tshell\ttimeout=600s\trepeat=1\twarmup=0\ttrue",
        "z\tshell\ttimeout=600s\trepeat=1\twarmup=0\ttrue",
        "# 3 cases, at least 3 executions; nothing was run (--dry-run)"]
    assert not (tmp_path / "made").exists() and not (tmp_path / "m_run").exists()


def test_the_plan_gives_each_slot_its_gpu_and_is_recorded(tmp_path) -> None:
    lib = nvmlsim.build()
    env = nvmlsim.sim_env(lib, profiles=[Profile([(0, 100.0)]), Profile([(0, 300.0)])])
    env["SRD_HOME"] = str(tmp_path / "home")
    (tmp_path / "cases.csv").write_text("case_id,cmd\na,true\n")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--per-gpu", "--dry-run",
                cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "# executor: local (one case per GPU, 2 at once)"
    for i in range(2):
        assert lines[1 + i] == (f"# slot {i}: measures GPU {i} {nvmlsim.NAME} "
                                f"{nvmlsim.uuid(i)}; environment "
                                f"CUDA_VISIBLE_DEVICES={nvmlsim.uuid(i)}")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--per-gpu", "--baseline",
                "off", cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    plan = json.loads((tmp_path / "m_run" / "run.json").read_text())["plan"]
    assert (plan["mode"], plan["telemetry"], plan["active"]) == ("per-gpu", "on", True)
    assert [s["env"] for s in plan["slots"]] == [
        {"CUDA_VISIBLE_DEVICES": nvmlsim.uuid(i)} for i in range(2)]


@pytest.mark.parametrize("args,message", [
    (["--jobs", "2", "--telemetry", "on"], "--jobs 2 with --telemetry on: 2 cases side by "
                                           "side would share the GPUs' energy"),
    (["--per-gpu", "--telemetry", "off"], "--per-gpu needs GPU telemetry"),
    (["--per-gpu", "--jobs", "2"], "--per-gpu runs one case per GPU: drop --jobs"),
    (["--retry-failed"], "--retry-failed needs --resume"),
    (["--baseline", "warm"], "Invalid value for --baseline: 'warm': use auto, measure, off "
                             "or a number >= 0"),
    (["--cooldown", "-3"], "Invalid value for --cooldown: '-3': use auto, off or a number "
                           ">= 0"),
])
def test_options_that_cannot_run_exit_4_before_anything_runs(tmp_path, args, message) -> None:
    cases = tmp_path / "cases.csv"
    cases.write_text("case_id,cmd\na,touch ran\n")
    r = srd("run", "--cases", cases, "--out", tmp_path / "m.csv", *args)
    assert r.exit_code == 4 and message in r.output, r.output
    assert not (tmp_path / "ran").exists() and not (tmp_path / "m_run").exists()


# -- the format reference ------------------------------------------------------------------
def test_srd_format_prints_the_reference_or_one_section() -> None:
    whole = srd("format")
    assert whole.exit_code == 0 and "## 3. metrics.csv (output)" in whole.output
    section = srd("format", "metrics")
    assert section.exit_code == 0
    assert section.output.startswith("## 3. metrics.csv (output)")
    assert "## 4." not in section.output and srd("format", "3").output == section.output
    r = srd("format", "nope")
    assert r.exit_code == 4 and "no section 'nope' in the format reference" in r.output


def test_the_reference_states_the_column_rules_srd_applies() -> None:
    import re

    from doerunner.columns import CORE, INT_COLUMNS, RUN_INFO
    from doerunner.reference import reference_text

    text = reference_text()
    core = re.search(r"1\. Core, always present, this order: `([^`]+)`", text)
    info = re.search(r"2\. Run info, always present, this order: `([^`]+)`", text)
    ints = re.search(r"Declared integer columns \(([^)]+)\)", text)
    assert core and tuple(core.group(1).split(",")) == CORE
    assert info and tuple(info.group(1).split(",")) == RUN_INFO
    assert ints and set(re.findall(r"`(\w+)`", ints.group(1))) == INT_COLUMNS
