"""Where srd keeps its own state (run history, baseline cache)."""

from __future__ import annotations

import os
from pathlib import Path


def srd_home() -> Path:
    """``$SRD_HOME``, else ``$XDG_DATA_HOME/doerunner``, else ``~/.local/share/doerunner``."""
    if os.environ.get("SRD_HOME"):
        return Path(os.environ["SRD_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(base) / "doerunner"
