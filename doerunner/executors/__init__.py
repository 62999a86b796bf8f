"""Where cases run — the executor family (``executors.base``): ``local`` (this process: one
case at a time, or a thread per slot of the plan) and ``dask`` (each case a task on a Dask
distributed worker). Adding an executor is one module with an ``Executor`` subclass and one
line here. Whatever the executor, the campaign journals every finished case and writes the
outputs, so ``--resume`` works across them."""

from __future__ import annotations

from doerunner.executors.base import Executor
from doerunner.executors.dask import DaskExecutor
from doerunner.executors.local import LocalExecutor

EXECUTORS: dict[str, type[Executor]] = {
    LocalExecutor.NAME: LocalExecutor,
    DaskExecutor.NAME: DaskExecutor,
}

__all__ = ["EXECUTORS", "Executor"]
