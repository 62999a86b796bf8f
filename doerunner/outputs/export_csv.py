"""``srd export --format csv``: the metrics.csv rows of the selected runs with a leading
``run_id`` (cells copied verbatim), or with ``--timeseries`` the flat sample table; and
``--split DIR``: one CSV per column family, each keyed by ``run_id,case_id``, plus
``runs.csv`` (one row per run). The family of "other measured" columns goes to
``custom.csv`` (a file named ``metrics.csv`` would pass for a whole metrics.csv)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from doerunner.columns import FAMILIES, family_of
from doerunner.errors import output_error
from doerunner.outputs.base import OutputFormat, write_output
from doerunner.outputs.export_frames import csv_cells, rows_frame
from doerunner.outputs.metrics_csv import csv_writer

SPLIT_FILE = {g: g for g in FAMILIES} | {"metrics": "custom"}


@dataclass(frozen=True, slots=True)
class Table:
    """A DataFrame to write as CSV; ``verbatim``: every cell is already its text."""

    frame: Any
    verbatim: bool = True


class TableCsv(OutputFormat):
    """A ``Table`` as CSV with metrics.csv's settings (minimal quoting, LF)."""

    NAME = "table.csv"

    def write(self, data: Table, stream: IO[str]) -> None:
        df = data.frame
        w = csv_writer(stream.write)
        w.writerow(list(df.columns))
        if data.verbatim:
            w.writerows(df.to_numpy(dtype=object).tolist())  # fast on arrow-backed str
        else:
            w.writerows(csv_cells(df))


class ExportCsv(OutputFormat):
    """The selected runs (``outputs.export.ExportData``) as CSV."""

    NAME = "csv"
    EXPORT = True

    def write(self, data: Any, stream: IO[str]) -> None:
        if data.samples is not None:
            TableCsv().write(Table(data.samples, verbatim=False), stream)
        else:
            TableCsv().write(Table(rows_frame(data.selected)), stream)


def write_split(selected: Any, directory: str | Path) -> list[Path]:
    """One CSV per column family (each keyed by run_id, case_id) plus ``runs.csv``; the files
    written. Only families that have a column are written (``core`` always)."""
    import pandas as pd

    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(directory, e) from None
    rows = rows_frame(selected)
    written = []
    runs = pd.DataFrame([{**{k: v for k, v in asdict(r.record).items()
                             if k != "command_line"},
                          "command_line": " ".join(r.record.command_line),
                          "cases_selected": len(r.rows)} for r in selected.runs])
    runs = runs.astype(object).where(runs.notna(), "").astype(str)
    for name, frame in [("runs", runs)] + [
            (SPLIT_FILE[g], rows[["run_id", "case_id",
                                  *[c for c in rows.columns[1:]
                                    if family_of(c) == g and c != "case_id"]]])
            for g in FAMILIES]:
        if name != "runs" and frame.shape[1] == 2 and name != "core":
            continue
        p = d / f"{name}.csv"
        write_output(TableCsv(), Table(frame), p, str(directory))
        written.append(p)
    return written
