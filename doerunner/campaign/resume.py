"""Resume bookkeeping: what the journal of an earlier run already holds for these cases.

Without ``--resume`` an old journal is moved aside (a new run never mixes with an old one).
With it, a journaled case is reused only when its case_id **and the fingerprint of its
definition** match a case of the file (editing or reordering cases.csv never reuses the
wrong result); ``--retry-failed`` drops journaled FAIL/TIMEOUT results; a torn last line is
cut off before appending.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from doerunner.campaign.journal import scan
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
    entries, valid = scan(path)
    index = {c.case_id: i for i, c in enumerate(cases)}
    found: dict[int, tuple[int, CaseResult]] = {}
    changed: set[str] = set()
    for offset, entry in entries:
        res = CaseResult.from_json(entry["case"])
        i = index.get(res.case_id)
        if i is None:
            continue
        if res.fingerprint != cases[i].fingerprint():
            changed.add(res.case_id)
            continue
        if retry_failed and res.status != OK:
            found.pop(i, None)
            continue
        found[i] = (offset, res)
        changed.discard(res.case_id)
    out.finished = [(i, offset, res) for i, (offset, res) in sorted(found.items())]
    for cid in sorted(changed - {cases[i].case_id for i in found}):
        out.notes.append(f"{cid}: its definition changed since it was journaled; "
                         "running it again")
    if path.exists() and valid < path.stat().st_size:
        out.warnings.append(f"{path}: ignoring a torn last line (a crash during a write)")
    out.truncate_to = valid
    return out
