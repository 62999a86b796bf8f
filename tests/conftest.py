"""Shared fixtures: cases files on disk and srd in a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def write_cases(tmp_path: Path):
    """Write a cases.csv (text, LF) into tmp_path and return its path."""

    def _write(text: str, name: str = "cases.csv") -> Path:
        p = tmp_path / name
        p.write_bytes(text.encode("utf-8"))
        return p

    return _write


def run_srd(*args: str, cwd: Path | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m doerunner ARGS`` in a real subprocess and capture its output."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    if env:
        e.update(env)
    return subprocess.run([sys.executable, "-m", "doerunner", *args], cwd=cwd, env=e,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _isolated_srd_home(tmp_path_factory, monkeypatch):
    """Tests never touch the user's run history or baseline cache, nor read the host's
    RAPL (a root runner would add energy columns to some runs and not others): a test that
    wants RAPL points SRD_POWERCAP_ROOT at a simulated tree (tests/powercapsim.py)."""
    monkeypatch.setenv("SRD_HOME", str(tmp_path_factory.mktemp("srd_home")))
    monkeypatch.setenv("SRD_POWERCAP_ROOT", str(tmp_path_factory.getbasetemp() / "no-rapl"))


@pytest.fixture(autouse=True)
def _reap_adopted_zombies():
    """After each test, reap the test process's zombie children that nobody waits for.

    srd makes the process that runs cases in-process a child subreaper (``process.tree``):
    once a test has, the processes of an srd SUBPROCESS that a test killed with SIGKILL
    (a crash, a double Ctrl-C) are re-parented to the test process and die there as
    zombies. They are no test's and no Popen's; left, they fail the next test that checks
    that a case leaves no zombie behind."""
    yield
    import psutil

    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            pass


@pytest.fixture(scope="session")
def lib_dir() -> Path:
    """The simulated NVML driver, built (tests/nvmlsim)."""
    from .nvmlsim import build

    return build()
