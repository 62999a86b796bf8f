"""The GitHub Actions job summary: when ``$GITHUB_STEP_SUMMARY`` names a file, ``srd run``
and ``srd compare`` append their Markdown summary to it (never truncating what earlier steps
wrote). Best effort: a summary that cannot be built or written is a warning, never a change
of the command's exit code. GitLab has no such file: it reads ``--junit``'s report.

``append`` is the one place that writes the file; ``run_summary`` and ``compare_summary``
make the text (the run's from the ``Report`` model, rendered by ``report_text``; the
comparison's by ``compare_table``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from doerunner.listing import listed

if TYPE_CHECKING:
    from doerunner.analysis.compare import CompareResult
    from doerunner.results import RunSummary

ENV_VAR = "GITHUB_STEP_SUMMARY"

# What each exit code says (FORMAT.md section 1), for the summary's status line.
RUN_EXIT_MEANINGS = {0: "every case OK, no threshold violated",
                     2: "every case ran OK, but a threshold was violated",
                     3: "a case failed or timed out", 4: "an output could not be written",
                     130: "interrupted"}
COMPARE_VERDICTS = {0: ("OK", "no significant regression, no broken or missing case"),
                    2: ("REGRESSION", "a metric got worse beyond the tolerance, "
                                      "significantly"),
                    3: ("BROKEN", "a case failed, timed out or is missing in new"),
                    4: ("REFUSED", "the same case_id names different parameters")}


def target() -> str | None:
    """The file to append to: ``$GITHUB_STEP_SUMMARY``, or None when unset or empty."""
    return os.environ.get(ENV_VAR) or None


def append(text: str, warn: Callable[[str], None]) -> None:
    """Append ``text`` (Markdown) and a blank line to the summary file, when there is one;
    a failure goes to ``warn``."""
    path = target()
    if path is None:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text.rstrip("\n") + "\n\n")
    except OSError as e:
        warn(f"{ENV_VAR} {path}: cannot append the summary: {e.strerror or e}")


def append_run(summary: RunSummary, title: str, warn: Callable[[str], None],
               exit_code: int | None = None) -> None:
    """Append ``srd run``'s summary (when ``$GITHUB_STEP_SUMMARY`` is set). ``exit_code``:
    what srd exits with when it is not the run's (an output that could not be written)."""
    if target() is None:
        return
    try:
        text = run_summary(summary, title, exit_code)
    except Exception as e:  # the run is over: its exit code stands
        warn(f"{ENV_VAR}: no summary: {type(e).__name__}: {e}")
        return
    append(text, warn)


def run_summary(s: RunSummary, title: str, exit_code: int | None = None) -> str:
    """A heading, the status line (counts by status, the exit code and what it means,
    the violations), then ``srd report``'s Markdown of the run directory."""
    from doerunner.analysis.report import build_report, load_report
    from doerunner.outputs.report_text import render_markdown
    from doerunner.results import FAIL, OK, TIMEOUT

    code = s.exit_code if exit_code is None else exit_code
    counts = ", ".join(f"{s.counts.get(k, 0)} {k}" for k in (OK, FAIL, TIMEOUT))
    parts = [f"**exit code {code}: {RUN_EXIT_MEANINGS.get(code, 'error')}**",
             f"{s.finished} of {s.total} cases finished ({counts})"]
    if s.not_run:
        parts.append(f"{s.not_run} not run ({'interrupted' if s.interrupted else '--fail-fast'})")
    parts.append(f"{s.violated} case(s) violated thresholds: {listed(s.violated_ids)}"
                 if s.violated else "no threshold violated")
    heading = f"## srd run: `{title}`" if title else "## srd run"
    report = render_markdown(build_report(load_report(s.run_dir)))
    return f"{heading}\n\n{'; '.join(parts)}\n\n{report}"


def append_compare(result: CompareResult, base: str, new: str, warn: Callable[[str], None],
                   points: Sequence[str] | None = None) -> None:
    """Append ``srd compare``'s summary (when ``$GITHUB_STEP_SUMMARY`` is set); ``points``:
    the cases' parameters (``--params``), or None."""
    if target() is None:
        return
    append(compare_summary(result, base, new, points), warn)


def compare_summary(result: CompareResult, base: str, new: str,
                    points: Sequence[str] | None = None) -> str:
    """A heading, the verdict line, then the comparison as ``srd compare --markdown``
    prints it (the table and its summary lines)."""
    from doerunner.outputs.compare_table import render_compare

    code = result.exit_code()
    verdict, meaning = COMPARE_VERDICTS[code]
    return (f"## srd compare: `{base}` → `{new}`\n\n**{verdict}** (exit code {code}): {meaning}"
            f"\n\n{render_compare(result, markdown=True, points=points)}")
