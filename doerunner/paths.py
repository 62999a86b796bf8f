"""Where srd keeps its own state (run history, baseline cache), and making sure of it."""

from __future__ import annotations

import os
from pathlib import Path

from doerunner.errors import OutputError, reason


def srd_home() -> Path:
    """``$SRD_HOME``, else ``$XDG_DATA_HOME/doerunner``, else ``~/.local/share/doerunner``."""
    if os.environ.get("SRD_HOME"):
        return Path(os.environ["SRD_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(base) / "doerunner"


def home_error(directory: Path, why: str) -> OutputError:
    """The one error of an unusable state folder (exit 4): ``SRD_HOME /x: not a directory
    (...)`` — named by the variable when the folder is srd's home set there."""
    if directory == srd_home():
        name = f"SRD_HOME {directory}" if os.environ.get("SRD_HOME") else \
            f"srd's home {directory} (set SRD_HOME to move it)"
    else:
        name = str(directory)
    return OutputError(f"{name}: {why} (srd keeps its run history and baseline cache there)",
                       why)


def ensure_dir(directory: Path | None = None) -> Path:
    """``directory`` (default: srd's home), created when missing; ``OutputError`` (exit 4,
    ``home_error``) when it is not a directory or cannot be made one."""
    d = directory if directory is not None else srd_home()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise home_error(d, "not a directory") from None
    except OSError as e:
        raise home_error(d, reason(e)) from None
    return d


def check_home() -> Path:
    """srd's home, created when missing, and a folder srd can create files in (a probe
    file, removed); ``OutputError`` (exit 4) otherwise. ``srd run`` checks it before the
    first case: the run history is one of its outputs."""
    from doerunner.outputs.targets import check_writable_dir

    home = ensure_dir()
    try:
        check_writable_dir(home)
    except OSError as e:
        raise home_error(home, reason(e)) from None
    return home
