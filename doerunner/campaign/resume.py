"""Resume bookkeeping: what the journal of an earlier run already holds for these cases.

Without ``--resume`` an old journal is moved aside (a new run never mixes with an old one).
With it, a journaled case is reused only when its case_id **and the fingerprint of its
definition** match a case of the file (editing or reordering cases.csv never reuses the
wrong result); ``--retry-failed`` drops journaled FAIL/TIMEOUT results; a torn last line is
cut off before appending. A corrupt line anywhere (``journal.scan`` checks each) is skipped
with a warning naming its line: the case it held runs again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from doerunner.campaign.journal import Scanned, scan
from doerunner.campaign.rows import check_readable
from doerunner.cells import storable_text
from doerunner.inputs.case import Case
from doerunner.results import OK, CaseResult


@dataclass(slots=True)
class Resumed:
    """What the journal gives a run: ``finished`` as ``(case index, journal offset,
    result)`` in case order, ``truncate_to`` (the journal's valid length: a torn tail is cut
    off), and the lines to tell the user (``notes``, ``warnings``)."""

    finished: list[tuple[int, int, CaseResult]] = field(default_factory=list)
    truncate_to: int = 0
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def prepare_journal(path: Path, cases: Sequence[Case], resume: bool,
                    retry_failed: bool) -> Resumed:
    """Take finished cases from the journal at ``path`` (``resume``), or move an old one
    aside (a fresh run)."""
    out = Resumed()
    if not resume:
        if path.exists() and path.stat().st_size > 0:
            aside = path.with_name(f"journal.{time.strftime('%Y%m%dT%H%M%S')}."
                                   f"{os.urandom(2).hex()}.jsonl")
            os.replace(path, aside)
            out.notes.append(f"previous journal moved aside to {aside}")
        return out
    scanned = scan(path)
    index = {c.case_id: i for i, c in enumerate(cases)}
    found: dict[int, tuple[int, CaseResult]] = {}
    changed: set[str] = set()
    for offset, n, case in scanned.entries:
        i = index.get(case["case_id"])
        if i is None:
            continue
        if case["fingerprint"] != cases[i].fingerprint():
            changed.add(case["case_id"])
            continue
        if retry_failed and case["status"] != OK:
            found.pop(i, None)
            continue
        try:  # what passed the line's check but still cannot be recorded: run it again
            res = CaseResult.from_json(case)
            check_readable(cases[i], res)
        except Exception as e:
            why = storable_text(" ".join(str(e).split()))[:200]
            scanned.corrupt.append((n, f"srd cannot record it: {type(e).__name__}: {why}",
                                    case["case_id"]))
            continue
        found[i] = (offset, res)
        changed.discard(res.case_id)
    out.finished = [(i, offset, res) for i, (offset, res) in sorted(found.items())]
    for cid in sorted(changed - {cases[i].case_id for i in found}):
        out.notes.append(f"{cid}: its definition changed since it was journaled; "
                         "running it again")
    scanned.corrupt.sort(key=lambda c: c[0])
    out.warnings.extend(_corrupt_warnings(path, scanned, index, found))
    if scanned.torn is not None:
        out.warnings.append(f"{path}:{scanned.torn}: ignoring a torn last line (a crash "
                            "during a write)")
    out.truncate_to = scanned.valid_length
    return out


CORRUPT_LISTED = 10  # corrupt lines named one by one; the rest are counted


def _corrupt_warnings(path: Path, scanned: Scanned, index: dict[str, int],
                      found: dict[int, tuple[int, CaseResult]]) -> list[str]:
    """One warning per corrupt line skipped (the first ``CORRUPT_LISTED``), saying what
    becomes of its case."""
    out = []
    for n, why, case_id in scanned.corrupt[:CORRUPT_LISTED]:
        i = index.get(case_id) if case_id is not None else None
        if case_id is None:
            fate = "if it held a case of this run, that case runs again"
        elif i is None:
            fate = f"case {case_id!r} is not one of the cases"
        elif i in found:
            fate = f"case {case_id!r} is taken from a later line"
        else:
            fate = f"case {case_id!r} runs again"
        out.append(f"{path}:{n}: skipping a corrupt line ({why}); {fate}")
    more = len(scanned.corrupt) - CORRUPT_LISTED
    if more > 0:
        out.append(f"{path}: skipping {more} more corrupt line(s)")
    return out
