"""Is a change between two runs real, or noise? The repetitions behind each row
(``repetitions.csv`` in the run directory, FORMAT.md §4) and the test ``srd compare`` puts
a change through before calling it a regression.

The test, as asv does it: the Mann–Whitney U rank test (two-sided) when the two samples
are large enough for it to reach the significance level at all — with 3 repetitions a side
its smallest possible p is 2/C(6,3) = 0.1, so it could never say "significant" at 0.05 —
and Welch's t-test otherwise (two samples of 2 or 3 repetitions). A rank test needs no
assumption about the shape of the distribution (run times are skewed, with slow outliers)
and one outlier moves it by one rank only; Welch's test, for the small samples the rank test
cannot judge, assumes roughly normal repetitions with unequal variances. scipy computes both,
many pairs of the same sizes at once. A rank test says whether one sample tends to be
larger, which need not be the direction of the change of the means (two slow outliers can
raise a mean while most repetitions got faster): ``Test.direction`` is what the rank test
found, and compare calls a change only when the two agree.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from doerunner.errors import InputError

DEFAULT_ALPHA = 0.05
MANN_WHITNEY = "Mann-Whitney U"
WELCH = "Welch t"


@dataclass(frozen=True, slots=True)
class Test:
    """The outcome of testing two samples: ``p`` (two-sided), which ``method``, the sample
    sizes, and the ``direction`` the test found new to lie in (-1 smaller, +1 larger, 0
    neither)."""

    p: float
    method: str
    n_base: int
    n_new: int
    direction: int

    def describe(self) -> str:
        """``p=0.008, Mann-Whitney U, 5 vs 5 repetitions``."""
        return f"p={self.p:.2g}, {self.method}, {self.n_base} vs {self.n_new} repetitions"


@dataclass(frozen=True, slots=True)
class Sample:
    """One metric's repetitions of every case: the values of case ``index[k]`` are
    ``values[starts[k]:starts[k] + counts[k]]``, in repetition order."""

    index: pd.Index
    starts: np.ndarray
    counts: np.ndarray
    values: np.ndarray

    def get(self, case_id: str) -> np.ndarray | None:
        """The values of one case, or None."""
        k = self.index.get_indexer([case_id])[0]
        return None if k < 0 else self.values[self.starts[k]:self.starts[k] + self.counts[k]]

    def matrix(self, rows: np.ndarray, n: int) -> np.ndarray:
        """The values of the cases at positions ``rows`` (each with ``n`` values), one row
        each."""
        return self.values[self.starts[rows][:, None] + np.arange(n)]


class Repetitions:
    """A run's ``repetitions.csv``, read once (columnar, with pyarrow): each case's values
    of a metric, in repetition order."""

    def __init__(self, path: Path, ids: tuple[np.ndarray, np.ndarray],
                 metrics: tuple[np.ndarray, np.ndarray], values: np.ndarray) -> None:
        # ids and metrics dictionary-encoded, (codes, names): 2.5 million rows cost ~40 MB
        self.path = path
        self._ids, self._metrics, self._values = ids, metrics, values
        self._cache: dict[str, Sample] = {}

    @classmethod
    def read(cls, path: Path) -> Repetitions | None:
        """The file at ``path``; ``None`` when there is none. Raises ``InputError`` when it
        cannot be read."""
        if not path.is_file():
            return None
        import pyarrow as pa
        from pyarrow import csv

        types = {"case_id": pa.dictionary(pa.int32(), pa.string()), "repetition": pa.int64(),
                 "metric": pa.dictionary(pa.int32(), pa.string()), "value": pa.float64()}
        try:
            table = csv.read_csv(path, convert_options=csv.ConvertOptions(column_types=types))
            ids, metrics = (cls._codes(table.column(c)) for c in ("case_id", "metric"))
            values = table.column("value").to_numpy().astype(float)
        except (pa.ArrowInvalid, KeyError, OSError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"{path}: cannot be read as repetitions: {first}") from None
        keep = ~np.isnan(values)
        return cls(path, (ids[0][keep], ids[1]), (metrics[0][keep], metrics[1]), values[keep])

    @staticmethod
    def _codes(column: Any) -> tuple[np.ndarray, np.ndarray]:
        """A dictionary-encoded column as (codes, names), one dictionary for all chunks."""
        merged = column.unify_dictionaries().combine_chunks()
        return (merged.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                merged.dictionary.to_numpy(zero_copy_only=False))

    def sample(self, metric: str) -> Sample:
        """Every case's repetitions of ``metric``."""
        found = self._cache.get(metric)
        if found is None:
            codes, names = self._metrics
            hit = np.flatnonzero(names == metric)
            keep = codes == (hit[0] if len(hit) else -1)
            ids, values = self._ids[0][keep], self._values[keep]
            starts = (np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids)
                      else np.zeros(0, dtype=int))
            counts = np.diff(np.r_[starts, len(ids)]).astype(int)
            found = Sample(pd.Index(self._ids[1][ids[starts]]), starts, counts, values)
            self._cache[metric] = found
        return found

    def mismatch(self, df: pd.DataFrame) -> str | None:
        """Why these repetitions are not those of the metrics.csv ``df`` (another run's: a
        stale file, a run directory of another run), or None. Checked on the OK cases
        measured more than once: as many ``run_seconds`` values as ``runs``, with
        ``run_seconds`` their mean (to its 6 decimals)."""
        if "runs" not in df.columns or "run_seconds" not in df.columns:
            return None
        runs = pd.to_numeric(df["runs"], errors="coerce").to_numpy()
        mean = pd.to_numeric(df["run_seconds"], errors="coerce").to_numpy()
        ok = ((df["status"].astype(str) == "OK").to_numpy() if "status" in df.columns
              else np.ones(len(df), dtype=bool))
        check = np.flatnonzero(ok & (runs > 1))
        if len(check) == 0:
            return None
        walls = self.sample("run_seconds")
        ids = df["case_id"].astype(str).to_numpy()[check]
        at = walls.index.get_indexer(ids)
        found = at >= 0
        counts = np.zeros(len(check), dtype=int)
        means = np.full(len(check), np.nan)
        if found.any():
            sums = np.add.reduceat(walls.values, walls.starts)
            counts[found] = walls.counts[at[found]]
            means[found] = sums[at[found]] / counts[found]
        bad = np.flatnonzero(~found | (counts != runs[check])
                             | ~(np.abs(means - mean[check]) <= 5e-7))
        if len(bad) == 0:
            return None
        k = bad[0]
        have = "none" if not found[k] else f"{counts[k]} with mean {means[k]:.6f}"
        return (f"{self.path} does not hold the repetitions of this metrics.csv (case "
                f"{ids[k]}: runs {int(runs[check][k])}, run_seconds {mean[check][k]:.6f}; "
                f"repetitions: {have})")


def smallest_p(n_base: int, n_new: int) -> float:
    """The smallest two-sided p the exact Mann–Whitney U test can give for these sizes."""
    return 2 / math.comb(n_base + n_new, n_base)


def significance(base: np.ndarray, new: np.ndarray, alpha: float = DEFAULT_ALPHA) -> Test:
    """Test whether ``base`` and ``new`` (two samples of 2 values or more) differ."""
    p, direction = significance_matrix(base[None, :], new[None, :], alpha)
    method = MANN_WHITNEY if smallest_p(len(base), len(new)) < alpha else WELCH
    return Test(float(p[0]), method, len(base), len(new), int(direction[0]))


def method_for(n_base: int, n_new: int, alpha: float) -> str:
    """The test used for samples of these sizes (see the module)."""
    return MANN_WHITNEY if smallest_p(n_base, n_new) < alpha else WELCH


def significance_matrix(base: np.ndarray, new: np.ndarray, alpha: float = DEFAULT_ALPHA
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The test of many pairs of samples of the same sizes at once, one pair a row of
    ``base`` and ``new``: the two-sided p of each and the direction new lies in (-1, 0,
    +1). Rows with and without ties go to scipy apart (ties decide between its exact and
    asymptotic rank test)."""
    from scipy import stats

    nb, nn = base.shape[1], new.shape[1]
    p = np.ones(len(base))
    direction = np.zeros(len(base), dtype=int)
    if method_for(nb, nn, alpha) == MANN_WHITNEY:
        s = np.sort(np.concatenate([base, new], axis=1), axis=1)
        ties = (s[:, 1:] == s[:, :-1]).any(axis=1)
        for tied in (False, True):
            rows = np.flatnonzero(ties == tied)
            if len(rows):
                r = stats.mannwhitneyu(base[rows], new[rows], alternative="two-sided", axis=1)
                p[rows] = r.pvalue
                # U of base above nb*nn/2: base tends to be larger, so new lies lower.
                direction[rows] = np.sign(nb * nn / 2 - np.asarray(r.statistic))
        return p, direction
    flat = (np.ptp(base, axis=1) == 0) & (np.ptp(new, axis=1) == 0)
    # Rows without spread are decided below: scipy's warning about them says nothing.
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = stats.ttest_ind(base, new, axis=1, equal_var=False)
    ps = np.asarray(r.pvalue, dtype=float)
    ps = np.where(flat, np.where(base[:, 0] == new[:, 0], 1.0, 0.0), ps)
    return (np.where(np.isfinite(ps), ps, 1.0),
            np.sign(new.mean(axis=1) - base.mean(axis=1)).astype(int))
