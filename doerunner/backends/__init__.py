"""Backend registry: adding a backend is one module plus one line here."""

from __future__ import annotations

from doerunner.backends.base import Backend, ExecContext
from doerunner.backends.dummy import DummyBackend
from doerunner.backends.hf import HfBackend
from doerunner.backends.shell import ShellBackend

BACKENDS: dict[str, type[Backend]] = {
    ShellBackend.NAME: ShellBackend,
    DummyBackend.NAME: DummyBackend,
    HfBackend.NAME: HfBackend,
}

__all__ = ["BACKENDS", "Backend", "ExecContext"]
