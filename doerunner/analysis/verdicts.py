"""The verdict of each (pair, metric) of a comparison (``analysis.compare`` states the rules):
the tolerance, then the significance of a change beyond it — the repetitions' test
(``analysis.significance``), else the spread columns — and the reasons a row has no change
at all (a refused pair, a broken, missing or new case, a value missing)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from doerunner.analysis.metrics import numeric, spread_column
from doerunner.analysis.pairing import Pairing
from doerunner.analysis.significance import (
    Repetitions,
    Test,
    method_for,
    significance_matrix,
)
from doerunner.outputs.tables import fmt_number
from doerunner.repstats import HIGH_CV, MAD_TO_STD, cv
from doerunner.results import FAIL, OK, TIMEOUT

LOWER = "lower"
HIGHER = "higher"
NOISY = "noisy: cannot tell"
VERDICTS = ("ok", "improved", "REGRESSION", NOISY, "missing", "new", "BROKEN", "MISMATCH")
GONE = "\x00"  # the index label of the side a row does not have
FAILED = (FAIL, TIMEOUT)
# A change at exactly --max-regression is not "more than" it: allow for float rounding.
_EPS = 1e-9


def statuses(df: pd.DataFrame, ids: pd.Index) -> np.ndarray:
    """The status of each row (``""`` for a side the row does not have)."""
    status = (df["status"].astype(str) if "status" in df.columns
              else pd.Series(OK, index=df.index))
    return status.reindex(ids).fillna("").to_numpy(dtype=object)


def _values(df: pd.DataFrame, ids: pd.Index, column: str, ok: np.ndarray) -> np.ndarray:
    if column not in df.columns:
        return np.full(len(ids), np.nan)
    return numeric(df, column).reindex(ids).where(ok).to_numpy(dtype=float)


def _spread(df: pd.DataFrame, ids: pd.Index, metric: str, ok: np.ndarray) -> np.ndarray:
    """The repetitions' standard deviation of ``metric`` per row: its std column, else
    1.4826 × its MAD column (the MAD's estimate of a normal sample's std), else NaN."""
    std = _values(df, ids, spread_column(metric), ok)
    mad = _values(df, ids, f"{metric}_mad", ok) * MAD_TO_STD
    return np.where(np.isnan(std), mad, std)


def _cvs(base: np.ndarray, new: np.ndarray) -> str:
    """``; CV base 80%, new 4%`` for the sides whose CV is high, else ``""``."""
    shown = [f"{side} {c:.0%}" for side, c in (("base", cv(base)), ("new", cv(new)))
             if c > HIGH_CV]
    return "; CV " + ", ".join(shown) if shown else ""


class Judge:
    """The verdicts of one comparison, metric by metric. ``reps``: the two runs'
    repetitions (``None``: not kept)."""

    def __init__(self, tol: float, alpha: float,
                 reps: tuple[Repetitions | None, Repetitions | None], names: tuple[str, str],
                 pairing: Pairing, b: pd.DataFrame, n: pd.DataFrame) -> None:
        self.tol, self.alpha, self.reps, self.names = tol, alpha, reps, names
        self.pairing = pairing
        self.b, self.n = b, n
        self.b_ids = pd.Index([GONE if i is None else i for i in pairing.base_ids])
        self.n_ids = pd.Index([GONE if i is None else i for i in pairing.new_ids])
        self.b_status = statuses(b, self.b_ids)
        self.n_status = statuses(n, self.n_ids)

    def metric(self, metric: str, direction: str) -> pd.DataFrame:
        """The rows of one metric: ``case_id, metric, direction, base, new, change, noise,
        p, verdict, note`` and ``lost`` (a value in base, none in new, both OK)."""
        pairing, (base_name, new_name) = self.pairing, self.names
        b_ok, n_ok = self.b_status == OK, self.n_status == OK
        bv = _values(self.b, self.b_ids, metric, b_ok)
        nv = _values(self.n, self.n_ids, metric, n_ok)
        bs = _spread(self.b, self.b_ids, metric, b_ok)
        ns = _spread(self.n, self.n_ids, metric, n_ok)
        delta = nv - bv
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.where((delta == 0) & (bv == 0), 0.0, delta / np.abs(bv))
        tol = self.tol + _EPS
        worse = change > tol if direction == LOWER else change < -tol
        better = change < -tol if direction == LOWER else change > tol
        noise_known = ~np.isnan(bs) | ~np.isnan(ns)
        noise = np.where(noise_known, 2 * np.sqrt(np.nan_to_num(bs) ** 2
                                                  + np.nan_to_num(ns) ** 2), np.nan)
        rows = len(pairing.labels)
        verdict = np.where(worse, "REGRESSION", np.where(better, "improved", "ok")).astype(object)
        note = np.full(rows, "", dtype=object)
        p = np.full(rows, np.nan)
        beyond = np.flatnonzero(worse | better)
        tested = self._test(beyond, metric)
        for i in beyond:
            verdict[i], note[i], p[i] = self._judge(metric, verdict[i], delta[i], noise[i],
                                                    tested.get(i))
        refused = np.isin(np.arange(rows), list(pairing.mismatched))
        gone_b, gone_n = self.b_ids == GONE, self.n_ids == GONE
        lost = ~refused & b_ok & n_ok & ~np.isnan(bv) & np.isnan(nv)
        # (rows, verdict, note): a row takes the first that applies; a note of None is
        # the mismatch, of a status array "<side>: <status>" (new only: "only in new: ").
        reasons: list[tuple[np.ndarray, str, str | np.ndarray | None]] = [
            (refused, "MISMATCH", None),
            (gone_n, "missing", f"only in {base_name}"),
            (gone_b & n_ok, "new", f"only in {new_name}"),
            (gone_b, "new", self.n_status),
            (b_ok & np.isin(self.n_status, FAILED), "BROKEN", self.n_status),
            (~b_ok, "missing", self.b_status),
            (~n_ok, "missing", self.n_status),
            (np.isnan(bv), "missing", f"no value in {base_name}"),
            (np.isnan(nv), "missing", f"no value in {new_name}"),
        ]
        decided = np.zeros(rows, dtype=bool)
        for mask, what, why in reasons:
            hit = mask & ~decided
            if not hit.any():
                continue
            verdict[hit] = what
            p[hit] = np.nan
            where = np.flatnonzero(hit)
            if why is None:  # a refused pair: no change between two different points
                note[hit] = [pairing.mismatched[i] for i in where]
                change[hit] = np.nan
            elif isinstance(why, str):
                note[hit] = why
            else:
                side = (base_name if why is self.b_status
                        else f"only in {new_name}" if what == "new" else new_name)
                note[hit] = [f"{side}: {why[i]}" for i in where]
            decided |= hit
        for i, old in pairing.renamed.items():
            note[i] = f"{base_name} id {old}" + (f"; {note[i]}" if note[i] else "")
        return pd.DataFrame({
            "case_id": pairing.labels, "metric": metric, "direction": direction,
            "base": bv, "new": nv, "change": change, "noise": noise, "p": p,
            "verdict": verdict, "note": note, "lost": lost})

    def _test(self, rows: np.ndarray, metric: str
              ) -> dict[int, tuple[Test, np.ndarray, np.ndarray]]:
        """The repetitions' test of each row in ``rows`` that has two values or more a side:
        row → (test, base sample, new sample). Rows of the same sample sizes are tested
        together."""
        rb, rn = self.reps
        if rb is None or rn is None or len(rows) == 0:
            return {}
        sb, sn = rb.sample(metric), rn.sample(metric)
        gb = sb.index.get_indexer(self.b_ids[rows])
        gn = sn.index.get_indexer(self.n_ids[rows])
        nb = np.where(gb >= 0, sb.counts[gb] if len(sb.counts) else 0, 0)
        nn = np.where(gn >= 0, sn.counts[gn] if len(sn.counts) else 0, 0)
        usable = (nb > 1) & (nn > 1)
        out: dict[int, tuple[Test, np.ndarray, np.ndarray]] = {}
        for b_n, n_n in set(zip(nb[usable].tolist(), nn[usable].tolist(), strict=True)):
            sel = np.flatnonzero(usable & (nb == b_n) & (nn == n_n))
            a, c = sb.matrix(gb[sel], b_n), sn.matrix(gn[sel], n_n)
            p, direction = significance_matrix(a, c, self.alpha)
            method = method_for(b_n, n_n, self.alpha)
            for k, row in enumerate(rows[sel].tolist()):
                out[row] = (Test(float(p[k]), method, b_n, n_n, int(direction[k])), a[k], c[k])
        return out

    def _judge(self, metric: str, verdict: str, delta: float, noise: float,
               tested: tuple[Test, np.ndarray, np.ndarray] | None) -> tuple[str, str, float]:
        """A change (new − base = ``delta``) beyond the tolerance: the verdict, its note and
        the test's p."""
        if tested is not None:
            test, a, c = tested
            figures = test.describe()
            if test.p >= self.alpha:
                return NOISY, f"{figures}: not significant at {self.alpha:g}{_cvs(a, c)}", test.p
            if test.direction != np.sign(delta):  # the ranks moved one way, the mean the other
                return NOISY, (f"{figures}, but most repetitions moved the other way: the mean "
                               f"follows a few{_cvs(a, c)}"), test.p
            return verdict, figures, test.p
        diff = abs(delta)
        if not np.isnan(noise):
            figures = f"diff {fmt_number(diff, metric)} %s noise {fmt_number(noise, metric)}"
            if diff > noise:
                return verdict, figures % ">", np.nan
            return NOISY, figures % "<=", np.nan
        return verdict, "untested: no repetitions to test", np.nan
