"""Clock-event ("throttle") reasons: NVML's bits, the names srd reports, and their causes.

The bit values are the same in both NVML API generations (``ClocksEventReasons`` from R535,
``ClocksThrottleReasons`` before). Reasons that only mean "not busy" or "clocks set on
purpose" (GPU idle, application clocks, sync boost, display clock) are not slowdowns and are
ignored. The slowdowns fall into three causes, each with its own remedy:

- ``thermal`` (SW thermal 0x20, HW thermal 0x40): too hot; cool down between cases
  (``--cooldown``), check the airflow.
- ``power`` (SW power cap 0x04, HW power brake 0x80): held at the power limit; expected for a
  GPU-bound load, and what a lower ``nvidia-smi -pl`` limit does; not a cooling problem.
- ``hw_slowdown`` (0x08): the hardware slowed the clocks (power supply, external signal);
  check the host (``nvidia-smi -q -d PERFORMANCE``).
"""

from __future__ import annotations

NAMED_REASONS = (
    ("sw_thermal", 0x20),
    ("hw_thermal", 0x40),
    ("hw_slowdown", 0x08),
    ("sw_power_cap", 0x04),
    ("hw_power_brake", 0x80),
)

THROTTLE_MASK = sum(bit for _, bit in NAMED_REASONS)
"""The bits :func:`throttle_names` names (0xEC): the reasons that mean clocks were held down."""

THERMAL_BITS = 0x20 | 0x40
POWER_BITS = 0x04 | 0x80
HW_SLOWDOWN_BITS = 0x08
CAUSES = (("thermal", THERMAL_BITS), ("power", POWER_BITS), ("hw_slowdown", HW_SLOWDOWN_BITS))
"""The causes in a fixed order, each with the bits that mean it."""


def causes(mask: int) -> list[int]:
    """The indexes in ``CAUSES`` of the causes a reason bitmask shows. NVML also sets HW
    slowdown (0x08) during HW thermal slowdown and HW power brake: it counts as a cause of
    its own only without them."""
    out = [k for k, (_, bits) in enumerate(CAUSES) if mask & bits]
    if mask & (0x40 | 0x80):
        out = [k for k in out if CAUSES[k][0] != "hw_slowdown"]
    return out


def throttle_names(mask: int) -> list[str]:
    """The named slowdown reasons set in a clock-event bitmask, in a fixed order."""
    return [name for name, bit in NAMED_REASONS if mask & bit]


COLUMNS = {"thermal": "thermal_throttle_pct", "power": "gpu_power_capped_pct",
           "hw_slowdown": "gpu_hw_slowdown_pct"}
"""The metrics.csv column holding each cause's share of the window (%, the most of any GPU)."""

ADVICE = {
    "thermal": ("GPU clocks were slowed by heat (thermal throttling)",
                "their times and energy are not representative: let the GPUs cool between "
                "cases (--cooldown auto) and check the airflow"),
    "power": ("GPUs were held at their power limit",
              "expected for a GPU-bound load: the results hold for this power limit "
              "(env_power_limit_w), not for another one; this is not a cooling problem"),
    "hw_slowdown": ("the hardware slowed the GPU clocks (HW slowdown)",
                    "their times and energy are not representative: check the power supply "
                    "and nvidia-smi -q -d PERFORMANCE"),
}
"""Per cause: what happened, and what to do about it (the end-of-run warning)."""
