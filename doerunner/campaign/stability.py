"""End-of-run warnings about measurements that should not be trusted as they are, in the
manner of hyperfine: cases whose repetitions vary a lot, cases with an outlying repetition,
cases whose first repetition was much slower than the rest. Rules in ``doerunner.repstats``;
only the measured repetitions' wall times of OK cases are judged (FORMAT.md §3)."""

from __future__ import annotations

from collections.abc import Sequence

from doerunner.listing import listed


class Stability:
    """Collects the unstable cases of a run as they are accounted."""

    def __init__(self) -> None:
        self.noisy: list[str] = []
        self.outlying: list[str] = []
        self.slow_first: list[str] = []

    def add(self, case_id: str, walls: Sequence[float]) -> None:
        """Judge the measured repetitions' wall times (seconds) of one OK case."""
        if len(walls) < 2:
            return
        from doerunner.repstats import HIGH_CV, MIN_JUDGED_S, cv, median, outliers

        if median(walls) < MIN_JUDGED_S:  # start-up and timer noise: nothing to learn
            return
        odd = outliers(walls)
        if not odd:  # an outlier explains a high CV: it is named for itself
            spread = cv(walls)
            if spread > HIGH_CV:
                self.noisy.append(f"{case_id} (CV {spread:.0%})")
            return
        m = median(walls)
        if odd[0] == 0 and walls[0] > m:
            self.slow_first.append(f"{case_id} ({walls[0]:.3g} s, median {m:.3g} s)")
        else:
            shown = "; ".join(f"repetition {i + 1}: {walls[i]:.3g} s" for i in odd[:3])
            self.outlying.append(f"{case_id} ({shown}; median {m:.3g} s)")

    def warnings(self) -> list[str]:
        """One warning per kind of trouble, naming the cases."""
        from doerunner.repstats import HIGH_CV

        out = []
        if self.noisy:
            out.append(f"run_seconds varies by more than {HIGH_CV:.0%} between repetitions in "
                       f"{len(self.noisy)} case(s): {listed(self.noisy)}; the figures are "
                       "noisy: run on a quiet machine, or raise repeat")
        if self.outlying:
            out.append(f"statistical outliers among the repetitions of {len(self.outlying)} "
                       f"case(s): {listed(self.outlying)}; other programs may have "
                       "interfered: run again on a quiet machine")
        if self.slow_first:
            out.append(f"the first repetition was much slower than the rest in "
                       f"{len(self.slow_first)} case(s): {listed(self.slow_first)}; caches "
                       "were probably cold: add a warm-up (warmup column, or warmup=auto)")
        return out
