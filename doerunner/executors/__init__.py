"""Where cases run: ``local`` (this process: one case at a time, ``--jobs`` threads or one
case per GPU with ``--per-gpu``; the loop is in ``campaign``) or ``dask`` (each case a task
on a Dask distributed worker, see ``executors.dask``). Whatever the executor, the client
journals every finished case and writes the outputs, so ``--resume`` works across them."""

from __future__ import annotations

EXECUTORS = ("local", "dask")

__all__ = ["EXECUTORS"]
