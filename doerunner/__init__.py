"""doerunner (``srd``): a design-of-experiments batch runner for performance and energy
benchmarking.

The Python API used by the CLI::

    import doerunner
    cases = doerunner.read_cases("cases.csv")
    summary = doerunner.run(cases, out="metrics.csv")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["RunOptions", "RunSummary", "__version__", "read_cases", "run"]

if TYPE_CHECKING:
    from doerunner.campaign.orchestrator import RunOptions, RunSummary, run
    from doerunner.inputs.cases import read_cases


def __getattr__(name: str) -> Any:
    # Lazy, so that `srd --help` and `import doerunner` stay fast.
    if name in ("run", "RunOptions", "RunSummary"):
        from doerunner.campaign import orchestrator as campaign

        return getattr(campaign, name)
    if name == "read_cases":
        from doerunner.inputs.cases import read_cases

        return read_cases
    raise AttributeError(name)
