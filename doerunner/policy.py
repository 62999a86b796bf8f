"""``ExecutionPolicy``: how every case is executed — warm-up, retries, log capture, killing.

One frozen object with every default stated here, once. The CLI builds it from its flags,
the local runner reads it, and it travels to Dask workers as it is (it is plain data).
"""

from __future__ import annotations

from dataclasses import dataclass

from doerunner.bounds import KILL_GRACE_S, LOG_CAP_BYTES, WARMUP_CV
from doerunner.errors import InputError

WARMUP_WINDOW = 5
"""``warmup=auto`` judges the coefficient of variation of this many last run times."""


@dataclass(frozen=True, slots=True)
class ExecutionPolicy:
    """``warmup_cv``: ``warmup=auto`` stops when the coefficient of variation (population
    std / mean) of the last ``WARMUP_WINDOW`` run times is below it; ``warmup_max``: the
    most ``warmup=auto`` executions; ``retries``: how many more times a FAIL/TIMEOUT case
    runs; ``log_cap_bytes``: cap of each captured log (head and tail kept);
    ``kill_grace_s``: seconds between SIGTERM and SIGKILL when a case's processes are
    killed; ``show_output``: also stream each case's stdout and stderr to srd's own as they
    arrive (``--show-output``: one case at a time, ``RunOptions`` checks that). Invalid
    values raise ``InputError``."""

    warmup_cv: float = 0.05
    warmup_max: int = 50
    retries: int = 0
    log_cap_bytes: int = 10 * 1024 * 1024
    kill_grace_s: float = 2.0
    show_output: bool = False

    def __post_init__(self) -> None:
        WARMUP_CV.check("--warmup-cv", self.warmup_cv)
        if self.warmup_max < 1:
            raise InputError(f"--warmup-max must be >= 1, got {self.warmup_max!r}")
        if self.retries < 0:
            raise InputError(f"--retries must be >= 0, got {self.retries!r}")
        LOG_CAP_BYTES.check("--log-cap", self.log_cap_bytes)
        KILL_GRACE_S.check("--kill-grace", self.kill_grace_s)


DEFAULT_POLICY = ExecutionPolicy()
