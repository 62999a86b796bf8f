"""Backend registry: adding a backend is one module plus one line here."""

from __future__ import annotations

from .base import Backend, ExecContext
from .dummy import DummyBackend
from .hf import HfBackend
from .shell import ShellBackend

BACKENDS: dict[str, type[Backend]] = {
    ShellBackend.NAME: ShellBackend,
    DummyBackend.NAME: DummyBackend,
    HfBackend.NAME: HfBackend,
}

__all__ = ["BACKENDS", "Backend", "ExecContext"]
