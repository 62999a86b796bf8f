"""Statistics of a case's repetitions, decided once: the robust columns of metrics.csv
(median and MAD), which repetitions are outliers, whether the first one was slow, the
coefficient of variation. Plain ``statistics``/``math`` (the run imports no numpy for this).

Outliers follow hyperfine: the modified z-score of a value is ``(x - median) / MAD``; a
value is an outlier when it is more than ``OUTLIER_SIGMAS`` (10) standard deviations from
the median, the standard deviation estimated robustly as 1.4826 × MAD (hyperfine's
threshold, ``1.4826 * 10`` MADs) — and, so that a flat series does not flag microsecond
jitter, when it is also more than ``OUTLIER_FLOOR`` (1 %) away from the median. When more
than half the values are equal the MAD is 0 and any value more than 1 % away is an outlier
(hyperfine: an infinite z-score). A first repetition that is such an outlier above the
median is "slow" (cold caches: a warm-up would have absorbed it); the others are plain
outliers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

MAD_TO_STD = 1.4826  # a normal sample's std is 1.4826 × its MAD
OUTLIER_SIGMAS = 10.0
OUTLIER_FLOOR = 0.01
HIGH_CV = 0.10  # sample std / mean of run_seconds above which a case is "noisy"
MIN_FOR_OUTLIERS = 3  # with two values neither is an outlier of the other
# Executions shorter than this (seconds) are not judged: process start-up and timer noise
# dominate them (hyperfine's limit for a timing it trusts).
MIN_JUDGED_S = 0.005


def median(values: Sequence[float]) -> float:
    """The median (the mean of the two middle values for an even count)."""
    return float(statistics.median(values))


def mad(values: Sequence[float], centre: float | None = None) -> float:
    """The median absolute deviation from the median (raw, not scaled to a standard
    deviation: multiply by 1.4826 for that), in the values' unit."""
    m = median(values) if centre is None else centre
    return median([abs(v - m) for v in values])


def robust_columns(name: str, values: Sequence[float]) -> dict[str, float]:
    """``<name>_median`` and ``<name>_mad`` of two values or more, else nothing."""
    if len(values) < 2:
        return {}
    m = median(values)
    return {f"{name}_median": m, f"{name}_mad": mad(values, m)}


def cv(values: Sequence[float]) -> float:
    """The coefficient of variation, sample std / mean; NaN for fewer than two values or
    a mean <= 0."""
    n = len(values)
    if n < 2:
        return math.nan
    try:
        mean = math.fsum(values) / n
        if not mean > 0:
            return math.nan
        return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) / mean
    except OverflowError:  # values near the float limit: no spread to tell
        return math.nan


def outliers(values: Sequence[float]) -> list[int]:
    """The positions of the outliers among ``values`` (see the module's rule); none with
    fewer than ``MIN_FOR_OUTLIERS`` values."""
    if len(values) < MIN_FOR_OUTLIERS:
        return []
    m = median(values)
    devs = [abs(v - m) for v in values]
    floor = max(OUTLIER_FLOOR * abs(m), OUTLIER_SIGMAS * MAD_TO_STD * median(devs))
    return [i for i, dev in enumerate(devs) if dev > floor]


def slow_first(values: Sequence[float]) -> bool:
    """True when the first value is an outlier above the median of all of them."""
    return 0 in outliers(values) and values[0] > median(values)
