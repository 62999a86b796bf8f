"""The comparison table (``srd compare``) as text or Markdown; each case's parameters
(``outputs.points``) next to its case_id when the cases have any (``--no-params``: not)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

import pandas as pd

from doerunner.analysis.compare import NOISY, CompareResult
from doerunner.listing import listed
from doerunner.outputs.points import point_text
from doerunner.outputs.tables import TableText, fmt_change, fmt_number, fmt_numbers, render_table


def case_points(result: CompareResult, base: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    """Each compared case's parameter point (``points.point_text``: ``level=9 size=4``), in
    the order of ``result.pairing``'s rows: the ``param_*`` cells of its row in ``new`` (in
    new's column order), or in ``base`` for a case only there. A refused pair shows new's
    point; its note says what base had."""
    sides = []
    for df in (base, new):
        params = [c for c in df.columns if str(c).startswith("param_")]
        ids = df["case_id"].astype(str).tolist()
        cells = zip(*(df[c].astype(str).tolist() for c in params), strict=True) \
            if params else ([] for _ in ids)
        sides.append({cid: point_text(zip(params, row, strict=True))
                      for cid, row in zip(ids, cells, strict=True)})
    by_base, by_new = sides
    p = result.pairing
    return [by_new[n] if n is not None else by_base.get(b or "", "")
            for b, n in zip(p.base_ids, p.new_ids, strict=True)]


def render_compare(result: CompareResult, markdown: bool = False,
                   points: Sequence[str] | None = None) -> str:
    """The compare table (case_id, metric, base, new, change, verdict, note) and a
    summary line of the verdict counts; with ``points`` (one per pairing row, as
    ``case_points`` gives them) a ``params`` column after case_id."""
    t = result.table
    metric = t["metric"].tolist()
    base, new = t["base"].tolist(), t["new"].tolist()
    names = list(dict.fromkeys(metric))
    if len(names) == 1:  # one metric: format each column in one pass
        base_s, new_s = fmt_numbers(base, names[0]), fmt_numbers(new, names[0])
    else:
        base_s = [fmt_number(v, m) for v, m in zip(base, metric, strict=True)]
        new_s = [fmt_number(v, m) for v, m in zip(new, metric, strict=True)]
    columns = [t["case_id"].tolist(), metric, base_s, new_s,
               [fmt_change(c) for c in t["change"].tolist()], t["verdict"].tolist(),
               t["note"].tolist()]
    headers = ["case_id", "metric", "base", "new", "change", "verdict", "note"]
    right = [False, False, True, True, True, False, False]
    if points is not None and any(points):
        # the table holds one row per (case, metric), case after case (CompareResult)
        per_case = len(t) // max(1, len(points))
        columns.insert(1, [pt for pt in points for _ in range(per_case)])
        headers.insert(1, "params")
        right.insert(1, False)
    summary = _summary(result)
    sep = "\n" if markdown else ""
    return render_table(headers, columns, right, markdown) + sep + summary + "\n"


def _summary(result: CompareResult) -> str:
    """The counts of the verdicts, then a line for each thing a CI should know."""
    counts = [f"{result.count('REGRESSION')} regression(s)", f"{result.count('improved')} "
              f"improved", f"{result.count(NOISY)} noisy (cannot tell)"]
    cases = [f"{len(ids)} {label}" for ids, label in (
        (result.broken, "broken"), (result.gone, "missing"), (result.only_new, "new"),
        (result.pairing.mismatched, "refused")) if ids]
    lines = [f"{result.common} cases in both files; {', '.join(counts)}"
             + (f"; cases: {', '.join(cases)}" if cases else "")
             + f"; max regression {result.max_regression * 100:g}%"]
    pairing = result.pairing
    if pairing.mismatched:
        shown = [f"{pairing.labels[i]} ({what})" for i, what in pairing.mismatched.items()]
        lines.append(f"refused: {len(shown)} case_id(s) name different parameters in base "
                     f"and new: {listed(shown, 5)}; pair the cases by their parameters "
                     "with --match params")
    if result.broken:
        lines.append(f"broken (FAIL or TIMEOUT in new, OK in base or new): "
                     f"{listed(result.broken)}")
    accept = "accepted (--allow-missing)" if result.allow_missing else \
        "--allow-missing accepts that"
    if result.gone:
        lines.append(f"missing from new (OK in base): {listed(result.gone)}; {accept}")
    if result.lost:
        lines.append(f"values missing from new (base had them): {listed(result.lost)}; "
                     f"{accept}")
    only_base = [i for i in result.only_base if i not in set(result.gone)]
    if only_base:
        lines.append(f"only in base: {listed(only_base)}")
    if result.only_new:
        lines.append(f"new cases (only in new): {listed(result.only_new)}")
    if pairing.one_sided:
        lines.append(f"in one file only, not used to pair: {', '.join(pairing.one_sided)}")
    notes = result.table["note"]
    if notes.str.startswith("untested").any():
        lines.append("untested: without repetitions (repetitions.csv of a run with repeat "
                     ">= 2) or a spread column, a change is judged on the tolerance alone")
    return "\n".join(lines)


class CompareText(TableText):
    """The comparison, aligned for a terminal (``markdown``: a Markdown table); ``points``:
    the cases' parameter points (``case_points``) to show, or None."""

    NAME = "compare"
    render = staticmethod(render_compare)

    def __init__(self, markdown: bool = False, points: Sequence[str] | None = None) -> None:
        super().__init__(markdown)
        self.points = points

    def write(self, data: CompareResult, stream: IO[str]) -> None:
        stream.write(render_compare(data, self.markdown, self.points))
