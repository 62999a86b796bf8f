"""``run.json``: a run's record (FORMAT.md §4) — run id, times, command line, options, the
execution plan, environment, summary, warnings, telemetry — then every case's full result.

The cases are copied from the journal's lines as they are (no parsing: the journal holds
each result as the JSON ``run.json`` wants), so a 100k-case run is written in one pass with
memory independent of its size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from doerunner.outputs.base import OutputFormat


@dataclass(frozen=True, slots=True)
class RunDocument:
    """What run.json is written from: its ``head`` (every key but ``cases``) and the
    ``cases``: each finished case's result as JSON bytes, in case order."""

    head: dict[str, Any]
    cases: Iterable[bytes]


class RunJson(OutputFormat):
    """run.json: the head indented by one space, one case per line."""

    NAME = "run.json"

    def write(self, data: RunDocument, stream: IO[str]) -> None:
        stream.write(json.dumps(data.head, ensure_ascii=False, indent=1)[:-2])
        stream.write(',\n "cases": [')
        for n, case in enumerate(data.cases):
            stream.write("\n  " if n == 0 else ",\n  ")
            stream.write(case.decode())
        stream.write("\n ]\n}\n")
