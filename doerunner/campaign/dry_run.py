"""``srd run --dry-run``: the execution plan, then one line per case (what would run), then
a count; nothing runs and no output is touched."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from doerunner.backends import BACKENDS
from doerunner.campaign.hooks import described
from doerunner.campaign.options import RunOptions
from doerunner.inputs.case import Case


def dry_run_lines(opts: RunOptions, cases: Sequence[Case]) -> Iterator[str]:
    """The plan as ``#`` lines (GPUs are looked up, nothing is measured), then per case: id,
    backend, timeout, repetitions, warm-up, ``shell=no`` for a case run without a shell,
    what its backend shows of it (the rendered command for the shell backend) and its hooks
    rendered (``setup=...``, ``prepare=...``, ``cleanup=...``), then the number of cases
    and executions."""
    from doerunner.campaign.orchestrator import plan_for

    yield from plan_for(opts, cases).describe()
    backends = {name: cls() for name, cls in BACKENDS.items()}
    total_exec = 0
    for c in cases:
        warm = c.warmup if c.warmup == "auto" else f"{c.warmup}"
        total_exec += c.repeat + (c.warmup if isinstance(c.warmup, int) else 0)
        shell = "" if c.shell else "\tshell=no"
        hooks = "".join(f"\t{hook}={text}" for hook, text in described(c))
        yield (f"{c.case_id}\t{c.backend}\ttimeout={c.timeout_s:g}s\trepeat={c.repeat}"
               f"\twarmup={warm}{shell}\t{backends[c.backend].describe(c)}{hooks}")
    yield f"# {len(cases)} cases, at least {total_exec} executions; nothing was run (--dry-run)"
