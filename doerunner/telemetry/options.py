"""``TelemetryOptions``: the ``srd run`` GPU telemetry flags, parsed once (the mode words of
``--baseline`` and ``--cooldown`` become typed values here, at the edge), frozen, every
default stated once. Plain data: it travels to Dask workers as it is."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from doerunner.bounds import (
    BASELINE_DURATION_S,
    BASELINE_TTL_S,
    BASELINE_W,
    CARBON_G_PER_KWH,
    COOLDOWN_S,
    PRICE_PER_KWH,
    SAMPLE_HZ,
    Bound,
)
from doerunner.errors import InputError
from doerunner.telemetry.baseline import DEFAULT_DURATION_S, DEFAULT_TTL_S

MODES = ("auto", "on", "off")
DEFAULT_CARBON_G_PER_KWH = 475.0  # IEA world average grid intensity (gCO2e/kWh)
DEFAULT_PRICE_PER_KWH = 0.15
BASELINE_WORDS = ("auto", "measure", "off")
COOLDOWN_WORDS = ("auto", "off")


def _number(text: str, words: tuple[str, ...], bound: Bound) -> float:
    """``text`` as a number in ``bound``; ``ValueError`` saying what is allowed else."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not bound.admits(value):
        most = "" if math.isinf(bound.high) else f" (at most {bound.high:g} {bound.unit})"
        raise ValueError(f"{text!r}: use {', '.join(words)} or a number >= {bound.low:g}{most}")
    return value


@dataclass(frozen=True, slots=True)
class BaselineMode:
    """``--baseline``: ``auto`` (the cache when fresh, else measure), ``measure`` (always),
    ``off``, or ``given`` ``watts`` per GPU; ``text`` is the option as written."""

    kind: str = "auto"
    watts: float | None = None
    text: str = "auto"

    def __post_init__(self) -> None:
        if self.kind not in (*BASELINE_WORDS, "given") or (self.kind == "given") != (
                self.watts is not None) or not BASELINE_W.admits(self.watts or 0.0):
            raise InputError(f"baseline mode {self.kind!r} with watts {self.watts!r}: use "
                             "BaselineMode.parse")

    @classmethod
    def parse(cls, text: str) -> BaselineMode:
        """``auto``, ``measure``, ``off`` or a finite number of watts >= 0; ``ValueError``
        saying what is allowed else."""
        if text in BASELINE_WORDS:
            return cls(text, None, text)
        return cls("given", _number(text, BASELINE_WORDS, BASELINE_W), text)


@dataclass(frozen=True, slots=True)
class CooldownMode:
    """``--cooldown``: ``off``, ``auto`` (until every GPU is back near its idle
    temperature), or ``wait`` ``seconds`` before each case; ``text`` as written."""

    kind: str = "off"
    seconds: float = 0.0
    text: str = "off"

    def __post_init__(self) -> None:
        if self.kind not in (*COOLDOWN_WORDS, "wait") or not COOLDOWN_S.admits(self.seconds):
            raise InputError(f"cooldown mode {self.kind!r} for {self.seconds!r} s: use "
                             "CooldownMode.parse")

    @classmethod
    def parse(cls, text: str) -> CooldownMode:
        """``off``, ``auto`` or a finite number of seconds >= 0; ``ValueError`` saying what
        is allowed else."""
        if text in COOLDOWN_WORDS:
            return cls(text, 0.0, text)
        return cls("wait", _number(text, COOLDOWN_WORDS, COOLDOWN_S), text)


@dataclass(frozen=True, slots=True)
class TelemetryOptions:
    """``mode``: auto (sample when NVML works), on (fail when it does not), off. ``gpus``:
    the ``--gpus`` selection text (None: every visible GPU). ``sample_hz``: sampling rate.
    ``baseline``, ``baseline_ttl_s``, ``baseline_duration_s``: idle power to subtract.
    ``carbon_g_per_kwh``, ``price_per_kwh``: for ``energy_co2_g``/``energy_cost_usd``.
    ``cooldown``: before each case. ``timeseries``: write per-case time series."""

    mode: str = "auto"
    gpus: str | None = None
    sample_hz: float = 10.0
    baseline: BaselineMode = field(default_factory=BaselineMode)
    baseline_ttl_s: float = DEFAULT_TTL_S
    baseline_duration_s: float = DEFAULT_DURATION_S
    carbon_g_per_kwh: float = DEFAULT_CARBON_G_PER_KWH
    price_per_kwh: float = DEFAULT_PRICE_PER_KWH
    cooldown: CooldownMode = field(default_factory=CooldownMode)
    timeseries: bool = True

    def __post_init__(self) -> None:
        # Mode words given as text (the Python API) are parsed here, once.
        for name, mode in (("baseline", BaselineMode), ("cooldown", CooldownMode)):
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    object.__setattr__(self, name, mode.parse(value))
                except ValueError as e:
                    raise InputError(f"--{name} {e}") from None
        if self.mode not in MODES:
            raise InputError(f"--telemetry {self.mode!r}: use {', '.join(MODES)}")
        for option, value, bound in (("--sample-hz", self.sample_hz, SAMPLE_HZ),
                                     ("--baseline-ttl", self.baseline_ttl_s, BASELINE_TTL_S),
                                     ("--baseline-duration", self.baseline_duration_s,
                                      BASELINE_DURATION_S),
                                     ("--carbon-intensity", self.carbon_g_per_kwh,
                                      CARBON_G_PER_KWH),
                                     ("--energy-price", self.price_per_kwh, PRICE_PER_KWH)):
            bound.check(option, value)

    def with_mode(self, mode: str) -> TelemetryOptions:
        """These options with another mode (what a run decided, e.g. off for --jobs)."""
        from dataclasses import replace

        return replace(self, mode=mode)

    def to_json(self) -> dict[str, Any]:
        """As run.json records them (mode words as written)."""
        return {"mode": self.mode, "gpus": self.gpus, "sample_hz": self.sample_hz,
                "baseline": self.baseline.text, "baseline_ttl_s": self.baseline_ttl_s,
                "baseline_duration_s": self.baseline_duration_s,
                "carbon_g_per_kwh": self.carbon_g_per_kwh, "price_per_kwh": self.price_per_kwh,
                "cooldown": self.cooldown.text, "timeseries": self.timeseries}
