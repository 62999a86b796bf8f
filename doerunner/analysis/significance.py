"""Is a change between two runs real, or noise? The repetitions behind each row
(``repetitions.csv`` in the run directory, FORMAT.md §4) and the test ``srd compare`` puts
a change through before calling it a regression.

The test, as asv does it: the Mann–Whitney U rank test (two-sided) when the two samples
are large enough for it to reach the significance level at all — with 3 repetitions a side
its smallest possible p is 2/C(6,3) = 0.1, so it could never say "significant" at 0.05 —
and Welch's t-test otherwise (two samples of 2 or 3 repetitions). A rank test needs no
assumption about the shape of the distribution (run times are skewed, with slow outliers)
and one outlier moves it by one rank only; Welch's test, for the small samples the rank test
cannot judge, assumes roughly normal repetitions with unequal variances. scipy computes both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from doerunner.errors import InputError

Samples = dict[tuple[str, str], np.ndarray]  # (case_id, metric) → repetition values
DEFAULT_ALPHA = 0.05
MANN_WHITNEY = "Mann-Whitney U"
WELCH = "Welch t"


@dataclass(frozen=True, slots=True)
class Test:
    """The outcome of testing two samples: ``p`` (two-sided), which ``method``, the sample
    sizes."""

    p: float
    method: str
    n_base: int
    n_new: int

    def describe(self) -> str:
        """``p=0.008, Mann-Whitney U, 5 vs 5 repetitions``."""
        return f"p={self.p:.2g}, {self.method}, {self.n_base} vs {self.n_new} repetitions"


def read_samples(path: Path) -> Samples | None:
    """The repetitions of a ``repetitions.csv``, ``None`` when there is no such file.
    Raises ``InputError`` when it exists but cannot be read."""
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path, dtype={"case_id": str, "metric": str}, keep_default_na=False,
                         na_filter=False)
        values = pd.to_numeric(df["value"], errors="coerce")
    except (pd.errors.ParserError, KeyError, UnicodeDecodeError, OSError) as e:
        raise InputError(f"{path}: cannot be read: {e}") from None
    except pd.errors.EmptyDataError:
        return {}
    df = df.assign(value=values).dropna(subset=["value"])
    return {(cid, metric): group.to_numpy(dtype=float)
            for (cid, metric), group in df.groupby(["case_id", "metric"], sort=False)["value"]}


def smallest_p(n_base: int, n_new: int) -> float:
    """The smallest two-sided p the exact Mann–Whitney U test can give for these sizes."""
    return 2 / math.comb(n_base + n_new, n_base)


def significance(base: np.ndarray, new: np.ndarray, alpha: float = DEFAULT_ALPHA) -> Test:
    """Test whether ``base`` and ``new`` (two samples of 2 values or more) differ."""
    from scipy import stats

    nb, nn = len(base), len(new)
    if smallest_p(nb, nn) < alpha:
        p = float(stats.mannwhitneyu(base, new, alternative="two-sided").pvalue)
        return Test(p, MANN_WHITNEY, nb, nn)
    if np.ptp(base) == 0 and np.ptp(new) == 0:  # no spread at all: t is not defined
        return Test(1.0 if base[0] == new[0] else 0.0, WELCH, nb, nn)
    p = float(stats.ttest_ind(base, new, equal_var=False).pvalue)
    return Test(p if math.isfinite(p) else 1.0, WELCH, nb, nn)

