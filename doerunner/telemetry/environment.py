"""The environment a run happened in, for run.json (reproducibility)."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import sys
from importlib import metadata
from typing import Any

_PACKAGES = ("doerunner", "click", "psutil", "tqdm", "numpy", "pandas", "nvidia-ml-py")


def host_environment() -> dict[str, Any]:
    """Host, OS, Python and package versions. Cheap: no subprocesses, no GPU calls."""
    versions: dict[str, str] = {}
    for name in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "packages": versions,
    }
