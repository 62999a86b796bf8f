"""The range of every number a run takes, decided once: the CLI's option type
(``cli.numbers``) and the option objects of the Python API (``ExecutionPolicy``,
``TelemetryOptions``, ``CaseDefaults``, a cases.csv ``timeout_s``) check values against the
same ``Bound``.

Every bound is finite: NaN and infinity are refused everywhere (click's ``FloatRange`` takes
both). A maximum is set where a huge value would make srd hang for good — a kill grace, an
idle-power measurement, a cool-down — and a minimum where a tiny one is a typo that would
time every case out (a timeout of 1e-300 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from doerunner.errors import InputError


@dataclass(frozen=True, slots=True)
class Bound:
    """The finite numbers from ``low`` to ``high`` (``low_open``/``high_open``: the end
    itself excluded; ``high`` infinite: no maximum). ``unit`` is said in the rule."""

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    unit: str = ""

    def admits(self, value: float) -> bool:
        """Whether ``value`` is a finite number in range."""
        if not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    @property
    def rule(self) -> str:
        """What is allowed, in words: ``a number from 0 to 3600 (seconds)``."""
        unit = f" ({self.unit})" if self.unit else ""
        low, high = _text(self.low), _text(self.high)
        if math.isinf(self.high):
            return f"a finite number {'>' if self.low_open else '>='} {low}{unit}"
        if not (self.low_open or self.high_open):
            return f"a number from {low} to {high}{unit}"
        return (f"a number {'>' if self.low_open else '>='} {low} and "
                f"{'<' if self.high_open else '<='} {high}{unit}")

    def problem(self, value: object) -> str | None:
        """None when ``value`` is allowed, else ``"<value>: use <rule>"``."""
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and self.admits(float(value)))
        return None if ok else f"{value!r}: use {self.rule}"

    def check(self, option: str, value: object) -> None:
        """``InputError`` ``"<option> <value>: use <rule>"`` unless ``value`` is allowed."""
        why = self.problem(value)
        if why is not None:
            raise InputError(f"{option} {why}")


def _text(x: float) -> str:
    """A bound as written: ``3600``, ``0.001``, ``1073741824``."""
    return str(int(x)) if math.isfinite(x) and x == int(x) else f"{x:g}"


TIMEOUT_S = Bound(0.001, unit="seconds")
"""``--timeout`` and a cases.csv ``timeout_s``: at least a millisecond."""
KILL_GRACE_S = Bound(0, 3600, unit="seconds")
"""``--kill-grace``: a case that ignores SIGTERM is killed within the hour."""
WARMUP_CV = Bound(0, low_open=True)
"""``--warmup-cv``: a coefficient of variation (std / mean)."""
SAMPLE_HZ = Bound(0.1, 100, unit="Hz")
"""``--sample-hz``."""
BASELINE_TTL_S = Bound(0, unit="seconds")
"""``--baseline-ttl``."""
BASELINE_DURATION_S = Bound(0.1, 3600, unit="seconds")
"""``--baseline-duration``: idle power is measured for an hour at most."""
BASELINE_W = Bound(0, unit="watts")
"""``--baseline WATTS``."""
COOLDOWN_S = Bound(0, 3600, unit="seconds")
"""``--cooldown SECONDS``: waited before each case."""
CARBON_G_PER_KWH = Bound(0, unit="gCO2e/kWh")
"""``--carbon-intensity``."""
PRICE_PER_KWH = Bound(0)
"""``--energy-price``."""
LOG_CAP_BYTES = Bound(1, 1 << 30, unit="bytes")
"""``--log-cap``: head and tail of a log are kept in memory, so at most 1 GiB."""
ALPHA = Bound(0, 1, low_open=True, high_open=True)
"""``srd compare --alpha``: a significance level."""

MAX_JOBS = 1024
"""``--jobs``: cases at once on one machine (a thread and a backend instance each)."""
