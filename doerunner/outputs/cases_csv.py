"""cases.csv as ``srd design`` writes it (FORMAT.md §2): UTF-8, LF, minimal quoting, the
header then one row per generated case, in run order."""

from __future__ import annotations

import csv
from typing import IO

from doerunner.inputs.design_model import Generated
from doerunner.outputs.base import OutputFormat


class CasesCsv(OutputFormat):
    """A generated design's cases."""

    NAME = "cases.csv"

    def write(self, data: Generated, stream: IO[str]) -> None:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(data.header)
        writer.writerows(data.rows)
