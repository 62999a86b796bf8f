"""``srd export --format json``: pretty JSON (indent 2, UTF-8) — one run object when one run
is selected, else an array of them; with ``--timeseries``, an array of flat sample objects."""

from __future__ import annotations

import json
import math
from typing import IO, Any

from doerunner.outputs.base import OutputFormat
from doerunner.outputs.export_frames import run_documents


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


class ExportJson(OutputFormat):
    """The selected runs (``outputs.export.ExportData``) as JSON."""

    NAME = "json"
    EXPORT = True

    def write(self, data: Any, stream: IO[str]) -> None:
        if data.samples is not None:
            df = data.samples
            docs: Any = df.astype(object).where(df.notna(), None).to_dict("records")
        else:
            runs = run_documents(data.selected)
            docs = runs[0] if len(runs) == 1 else runs
        json.dump(docs, stream, indent=2, ensure_ascii=False, default=_json_default)
        stream.write("\n")
