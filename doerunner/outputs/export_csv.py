"""``srd export --format csv``: the metrics.csv rows of the selected runs with a leading
``run_id`` (cells copied verbatim), or with ``--timeseries`` the flat sample table; and
``--split DIR``: one CSV per column family, each keyed by ``run_id,case_id``, plus
``runs.csv`` (one row per run). The family of "other measured" columns goes to
``custom.csv`` (a file named ``metrics.csv`` would pass for a whole metrics.csv).

Rows are written as they are read, a block at a time (``export_frames.placed_rows``): memory
does not grow with the rows or the union of the columns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from doerunner.columns import FAMILIES, family_of
from doerunner.errors import output_error
from doerunner.outputs.base import OutputFormat, write_output
from doerunner.outputs.export_frames import csv_cells, export_header, placed_rows
from doerunner.outputs.export_samples import TIMESERIES_COLUMNS
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


@dataclass(frozen=True, slots=True)
class Rows:
    """The selected rows to write in ``header``'s columns (a subset of ``export_header``
    in its order, starting ``run_id``)."""

    selected: Any
    header: list[str]


class RowsCsv(OutputFormat):
    """``Rows`` as CSV, run by run, a block of rows at a time."""

    NAME = "rows.csv"

    def write(self, data: Rows, stream: IO[str]) -> None:
        w = csv_writer(stream.write)
        w.writerow(data.header)
        for run in data.selected.runs:
            for block in placed_rows(run, data.header):
                w.writerows(block)


class ExportCsv(OutputFormat):
    """The selected runs (``outputs.export.ExportData``) as CSV."""

    NAME = "csv"
    EXPORT = True

    def write(self, data: Any, stream: IO[str]) -> None:
        if data.samples is not None:
            w = csv_writer(stream.write)
            w.writerow(TIMESERIES_COLUMNS)
            for frame in data.samples:
                w.writerows(csv_cells(frame))
        else:
            RowsCsv().write(Rows(data.selected, export_header(data.selected)), stream)


def write_split(selected: Any, directory: str | Path) -> list[Path]:
    """One CSV per column family (each keyed by run_id, case_id) plus ``runs.csv``; the files
    written. Only families that have a column are written (``core`` always)."""
    import pandas as pd

    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(directory, e) from None
    header = export_header(selected)
    runs = pd.DataFrame([{**{k: v for k, v in asdict(r.record).items()
                             if k != "command_line"},
                          "command_line": " ".join(r.record.command_line),
                          "cases_selected": r.count} for r in selected.runs])
    runs = runs.astype(object).where(runs.notna(), "").astype(str)
    p = d / "runs.csv"
    write_output(TableCsv(), Table(runs), p, str(directory))
    written = [p]
    for g in FAMILIES:
        columns = [c for c in header[1:] if family_of(c) == g and c != "case_id"]
        if not columns and g != "core":
            continue
        p = d / f"{SPLIT_FILE[g]}.csv"
        write_output(RowsCsv(), Rows(selected, ["run_id", "case_id", *columns]), p,
                     str(directory))
        written.append(p)
    return written
