"""The comparison table (``srd compare``) as text or Markdown."""

from __future__ import annotations

from doerunner.analysis.compare import CompareResult
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
    summary = (f"{result.common} cases in both files; {result.count('REGRESSION')} "
               f"regression(s), {result.count('improved')} improved, "
               f"{result.count('within noise')} within noise, {result.count('missing')} "
               f"missing; max regression {result.max_regression * 100:g}%")
    for label, ids in (("only in base", result.only_base), ("only in new", result.only_new)):
        if ids:
            more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
            summary += f"\n{label}: {', '.join(ids[:10])}{more}"
    sep = "\n" if markdown else ""
    return render_table(headers, columns, right, markdown) + sep + summary + "\n"


class CompareText(TableText):
    """The comparison, aligned for a terminal (``markdown``: a Markdown table)."""

    NAME = "compare"
    render = staticmethod(render_compare)
