"""``srd export --format parquet`` (needs a file): the selected rows typed
(``export_types``), or with ``--timeseries`` the typed sample table, written by pyarrow.

The rows are written as they are read (``ParquetWriter``): a row group per run, or per
``GROUP_CELLS`` of it, in the union of the runs' columns; a column a run lacks is a column of
nulls (``false`` for a boolean, as an empty cell reads) that shares one buffer with every
other such column of its type, so memory does not grow with the union either. The schema,
with pandas' metadata (``Int64``, ``string`` and the time zones come back as written), is
decided once from ``ColumnTypes`` over the whole selection."""

from __future__ import annotations

from typing import IO, Any

from doerunner.columns import BOOL, INT, NUMBER, TIMESTAMP
from doerunner.outputs.base import OutputFormat
from doerunner.outputs.export_frames import column_types, export_header
from doerunner.outputs.export_types import ColumnTypes, typed_piece


def _schema(header: list[str], types: ColumnTypes) -> Any:
    """The Arrow schema (with pandas' metadata) of ``header``'s columns as ``types``
    decided them."""
    import pandas as pd
    import pyarrow as pa

    def empty(c: str) -> pd.Series:
        kind = types.kind(c)
        dtype: Any = {NUMBER: "float64", INT: "Int64", BOOL: bool}.get(kind, "string")
        if kind == TIMESTAMP:
            dtype = pd.DatetimeTZDtype("us", types.tz(c))
        return pd.Series([], dtype=dtype)

    frame = pd.DataFrame({c: empty(c) for c in header})
    return pa.Schema.from_pandas(frame, preserve_index=False)


GROUP_CELLS = 1 << 21
"""Cells of a run buffered (typed, in Arrow: some tens of MB) for one row group. Not a
piece a group: the footer holds every row group's metadata for every column of the union
(some MB a group for 5,000 columns)."""


class _Groups:
    """Row groups of the union's columns, from the typed pieces of one run at a time."""

    def __init__(self, writer: Any, schema: Any) -> None:
        self.writer, self.schema = writer, schema
        self.fills: dict[Any, Any] = {}
        self.buffer: list[Any] = []
        self.rows = 0

    def add(self, own: Any, limit: int) -> None:
        """Buffer ``own`` (an Arrow table of some of the schema's columns); write a row
        group when ``limit`` rows are buffered."""
        self.buffer.append(own)
        self.rows += own.num_rows
        if self.rows >= limit:
            self.flush()

    def _fill(self, type_: Any, n: int) -> Any:
        """The column of a run that lacks it: nulls (``false`` for a boolean), one array
        per type, shared by every such column."""
        import numpy as np
        import pyarrow as pa

        if type_ not in self.fills or len(self.fills[type_]) != n:
            self.fills[type_] = (pa.array(np.zeros(n, dtype=bool)) if type_ == pa.bool_()
                                 else pa.nulls(n, type_))
        return self.fills[type_]

    def flush(self) -> None:
        import pyarrow as pa

        if not self.buffer:
            return
        own = pa.concat_tables(self.buffer) if len(self.buffer) > 1 else self.buffer[0]
        self.buffer, n, self.rows = [], self.rows, 0
        names = {name: i for i, name in enumerate(own.column_names)}
        columns = [own.column(names[f.name]).cast(f.type) if f.name in names
                   else self._fill(f.type, n) for f in self.schema]
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema),
                                row_group_size=max(n, 1))


class ExportParquet(OutputFormat):
    """The selected runs (``outputs.export.ExportData``) as Parquet."""

    NAME = "parquet"
    BINARY = True
    EXPORT = True
    NEEDS_FILE = True

    def write(self, data: Any, stream: IO[bytes]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if data.samples is not None:
            _write_samples(data.samples, stream)
            return

        selected = data.selected
        header = export_header(selected)
        types = column_types(selected)
        schema = _schema(header, types)
        with pq.ParquetWriter(stream, schema) as writer:
            groups = _Groups(writer, schema)
            for run in selected.runs:
                limit = max(1, GROUP_CELLS // (len(run.columns) + 1))
                run_id = schema.field("run_id").type
                for piece in run.pieces():
                    own = pa.Table.from_pandas(typed_piece(piece, types), preserve_index=False)
                    own = own.add_column(0, "run_id",
                                         pa.array([run.record.run_id] * len(piece), run_id))
                    groups.add(own, limit)
                groups.flush()


def _write_samples(samples: Any, stream: IO[bytes]) -> None:
    """The time series (``export_samples.Samples``), in one zone (a column has one type),
    a row group a ``GROUP_CELLS`` of samples."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    samples.zone = samples.one_zone()
    writer = groups = None
    try:
        for frame in samples:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(stream, table.schema)
                groups = _Groups(writer, table.schema)
            groups.add(table, max(1, GROUP_CELLS // table.num_columns))
        if groups is not None:
            groups.flush()
    finally:
        if writer is not None:
            writer.close()
