"""``srd export --format parquet`` (needs a file): the selected rows typed (``typed_frame``),
or with ``--timeseries`` the typed sample table, written by pyarrow."""

from __future__ import annotations

from typing import IO, Any

from doerunner.outputs.base import OutputFormat
from doerunner.outputs.export_frames import rows_frame, typed_frame


class ExportParquet(OutputFormat):
    """The selected runs (``outputs.export.ExportData``) as Parquet."""

    NAME = "parquet"
    BINARY = True
    EXPORT = True
    NEEDS_FILE = True

    def write(self, data: Any, stream: IO[bytes]) -> None:
        df = data.samples if data.samples is not None else typed_frame(rows_frame(data.selected))
        df.to_parquet(stream, engine="pyarrow", index=False)
