#!/usr/bin/env python3
"""Install the declared dependency floors in a venv of their own and run the tests that
depend on them most (``make floors``).

Every ``name>=X`` of ``[project.dependencies]`` and of the ``hf`` extra becomes ``name==X``
(the lowest direct versions), so a floor that does not install, does not resolve with the
others, or breaks a test is found here rather than by a user. torch comes first, at its floor,
from the package index (for old versions that is the CUDA build: it runs on the CPU too).
Then the hf, telemetry (simulated NVML driver), GPU-ownership, compare (scipy's tests) and
output-parsing (the regex module's timeout) tests run in that venv, and the versions
installed are printed.

Usage: python tests/floors.py [--venv .venv-floors] [pytest args...]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_hf.py", "tests/test_telemetry.py", "tests/test_gpu_device.py",
         "tests/test_gpu_ownership.py", "tests/test_energy_edges.py", "tests/test_compare.py",
         "tests/test_outparse.py"]
TEST_TOOLS = ["pytest>=8", "hypothesis>=6.100"]
_FLOOR = re.compile(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)$")


def floors() -> list[str]:
    """``name==floor`` for every direct requirement of the package and its hf extra."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    out = []
    for req in [*project["dependencies"], *project["optional-dependencies"]["hf"]]:
        m = _FLOOR.match(req.strip())
        if m is None:
            raise SystemExit(f"floors: cannot read a floor in {req!r} (write name>=version)")
        out.append(f"{m.group(1)}=={m.group(3)}")
    return out


def run(*cmd: str) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", default=".venv-floors")
    a, pytest_args = ap.parse_known_args()
    pins = floors()
    venv = REPO / a.venv
    py = str(venv / "bin" / "python")
    if not (venv / "bin" / "python").exists():
        run(sys.executable, "-m", "venv", str(venv))
    constraints = venv / "floors.txt"
    constraints.write_text("".join(p + "\n" for p in pins))
    torch = next(p for p in pins if p.startswith("torch=="))
    run(py, "-m", "pip", "install", "-q", "--upgrade", "pip")
    run(py, "-m", "pip", "install", "-q", torch)
    run(py, "-m", "pip", "install", "-q", "-c", str(constraints), "-e", ".[hf]", *TEST_TOOLS)
    run(py, "-m", "pip", "check")
    print("\nfloors installed:", flush=True)
    show = "import importlib.metadata as m, sys\n" \
           "for p in sys.argv[1:]:\n" \
           "    n = p.split('==')[0]\n" \
           "    print(f'  {n:<14} declared {p.split(\"==\")[1]:<10} installed ' + m.version(n))"
    run(py, "-c", show, *pins)
    run(py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS, *pytest_args)


if __name__ == "__main__":
    main()
