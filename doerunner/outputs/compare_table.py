"""The comparison table (``srd compare``) as text or Markdown."""

from __future__ import annotations

from doerunner.analysis.compare import NOISY, CompareResult
from doerunner.listing import listed
from doerunner.outputs.tables import TableText, fmt_change, fmt_number, fmt_numbers, render_table


def render_compare(result: CompareResult, markdown: bool = False) -> str:
    """The compare table (case_id, metric, base, new, change, verdict, note) and a
    summary line of the verdict counts."""
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
    """The comparison, aligned for a terminal (``markdown``: a Markdown table)."""

    NAME = "compare"
    render = staticmethod(render_compare)
