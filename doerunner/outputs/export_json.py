"""``srd export --format json``: pretty JSON (indent 2, UTF-8) — one run object when one run
is selected, else an array of them; with ``--timeseries``, an array of flat sample objects.

Written as it is made: a run's head, then its cases one by one (``export_frames``), each
piece laid out exactly as ``json.dump(..., indent=2)`` lays out the whole document."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import IO, Any

from doerunner.outputs.base import OutputFormat
from doerunner.outputs.export_frames import case_documents, column_types, run_head

_INDENT = "  "


def _json_default(o: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(o, pd.Timestamp):
        return o.isoformat()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if math.isnan(o) else float(o)
    if o is pd.NA:
        return None
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(indent=2, ensure_ascii=False, default=_json_default)


def _dumped(obj: Any, level: int) -> str:
    """``obj`` as ``json.dump(indent=2)`` writes it ``level`` containers deep (JSON text
    holds no raw newline: each one starts a line of the layout)."""
    return _ENCODER.encode(obj).replace("\n", "\n" + _INDENT * level)


def _write_run(head: dict[str, Any], cases: Iterable[dict[str, Any]], level: int,
               stream: IO[str]) -> None:
    """One run object, ``level`` deep: its head, then ``"cases"`` (its last key) written
    case by case."""
    text = _dumped(head, level)
    cut = text.rfind("\n")  # before the closing brace
    inner = _INDENT * (level + 1)
    stream.write(text[:cut] + ",\n" + inner + '"cases": [')
    n = 0
    for n, case in enumerate(cases, 1):
        stream.write(("\n" if n == 1 else ",\n") + inner + _INDENT
                     + _dumped(case, level + 2))
    stream.write(("\n" + inner + "]" if n else "]") + text[cut:])


class ExportJson(OutputFormat):
    """The selected runs (``outputs.export.ExportData``) as JSON."""

    NAME = "json"
    EXPORT = True

    def write(self, data: Any, stream: IO[str]) -> None:
        if data.samples is not None:
            stream.write("[")
            n = 0
            for df in data.samples:
                for doc in df.astype(object).where(df.notna(), None).to_dict("records"):
                    stream.write(("\n" if n == 0 else ",\n") + _INDENT + _dumped(doc, 1))
                    n += 1
            stream.write("\n]\n" if n else "]\n")
            return
        runs = data.selected.runs
        types = column_types(data.selected, params_only=True)
        if len(runs) == 1:
            _write_run(run_head(runs[0]), case_documents(runs[0], types), 0, stream)
        else:
            stream.write("[")
            for i, run in enumerate(runs):
                stream.write(("\n" if i == 0 else ",\n") + _INDENT)
                _write_run(run_head(run), case_documents(run, types), 1, stream)
            stream.write("\n]" if runs else "]")
        stream.write("\n")
