"""``srd run --dry-run``: the plan of a run, one line per case, without running anything."""

from __future__ import annotations

from collections.abc import Iterator

from doerunner.inputs.cases import Case


def plan_lines(cases: list[Case]) -> Iterator[str]:
    """Lines describing what would run: id, backend, timeout, repetitions, the command."""
    from doerunner.backends.shell import ShellBackend

    shell = ShellBackend().render
    total_exec = 0
    for c in cases:
        warm = c.warmup if c.warmup == "auto" else f"{c.warmup}"
        what = shell(c) if c.backend == "shell" else " ".join(
            f"{k}={v}" for k, v in c.params.items())
        total_exec += c.repeat + (c.warmup if isinstance(c.warmup, int) else 0)
        yield (f"{c.case_id}\t{c.backend}\ttimeout={c.timeout_s:g}s\trepeat={c.repeat}"
               f"\twarmup={warm}\t{what}")
    yield f"# {len(cases)} cases, at least {total_exec} executions; nothing was run (--dry-run)"
