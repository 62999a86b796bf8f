"""A run of a cases file: its options, its execution plan, the runner of one case, the
journal and resume, the accounts and the outputs. ``doerunner.campaign.run`` is the Python API
behind ``srd run`` (also ``doerunner.run``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doerunner.campaign.orchestrator import run

__all__ = ["run"]


def __getattr__(name: str) -> Any:
    if name == "run":
        from doerunner.campaign.orchestrator import run

        return run
    raise AttributeError(name)
