"""``srd export --timeseries``: the flat per-sample table of the selected cases
(``TIMESERIES_COLUMNS``), a case at a time (``Samples``): a case's
``timeseries/<case_id>.json`` is read when its rows are written, so memory does not grow
with the cases exported."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timezone, tzinfo
from pathlib import Path

import orjson
import pandas as pd

from doerunner.analysis.export import Selected, SelectedRun
from doerunner.cells import DEFAULT_TZ, parse_tz
from doerunner.errors import InputError
from doerunner.outputs.timeseries import SAMPLE_KEYS

TIMESERIES_COLUMNS = ("run_id", "case_id", "gpu", "timestamp", "t_s", "power_w", "mem_used_mb",
                      "util_pct", "temp_c", "sm_clock_mhz", "throttle")


def run_zone(run: SelectedRun) -> tzinfo:
    """The zone a run wrote its times in (its ``--tz``; UTC for a name that is not
    known any more)."""
    tz_name = ((run.run_json.get("options") or {}).get("tz")) or DEFAULT_TZ
    try:
        return parse_tz(tz_name)
    except Exception:  # an unknown name in an old run.json: UTC is still honest
        return timezone.utc


def _timeseries_paths(run: SelectedRun) -> Iterator[tuple[str, Path]]:
    """(case_id, its time-series file) of each selected case of ``run``: its
    ``timeseries_path`` cell (relative to metrics.csv's folder), else
    ``<run dir>/timeseries/<case_id>.json``."""
    metrics_dir = Path(run.record.metrics_path).parent
    for piece in run.pieces(lambda c: c == "timeseries_path"):
        rels = (piece["timeseries_path"].tolist() if "timeseries_path" in piece.columns
                else [""] * len(piece))
        for cid, rel in zip(piece["case_id"].tolist(), rels, strict=True):
            yield cid, (metrics_dir / rel if rel
                        else Path(run.record.run_dir) / "timeseries" / f"{cid}.json")


def _case_frame(run_id: str, cid: str, path: Path, tz: tzinfo) -> pd.DataFrame | None:
    """One case's samples, typed (see ``Samples``); None without a readable file or a
    sample."""
    if not path.is_file():
        return None
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    samples = doc.get("samples") or []
    if not samples:
        return None
    t0 = float(doc.get("t0", 0.0))
    f = pd.DataFrame({"t_s": [s.get("t") for s in samples],
                      "gpu": [s.get("g") for s in samples],
                      **{name: [s.get(k) for s in samples] for k, name in SAMPLE_KEYS}})
    f.insert(0, "case_id", cid)
    f.insert(0, "run_id", run_id)
    f["timestamp"] = pd.to_datetime((t0 + f["t_s"].astype(float)) * 1e9,
                                    utc=True).dt.tz_convert(tz)
    for c in ("gpu", "throttle"):
        f[c] = pd.to_numeric(f[c]).round().astype("Int64")
    for c in ("t_s", "power_w", "mem_used_mb", "util_pct", "temp_c", "sm_clock_mhz"):
        f[c] = pd.to_numeric(f[c]).astype("float64")
    for c in ("run_id", "case_id"):
        f[c] = f[c].astype("string")
    return f[list(TIMESERIES_COLUMNS)]


class Samples:
    """The time series of the selected cases, one frame a case (``TIMESERIES_COLUMNS``),
    typed: ``timestamp`` tz-aware (the run's ``--tz``; with ``zone``, every run's in that
    one), numbers float64, ``gpu``/``throttle`` Int64. ``count``: the samples iterated so
    far. Cases without a time series are left out."""

    def __init__(self, selected: Selected) -> None:
        self.selected = selected
        self.count = 0
        self.zone: tzinfo | None = None

    def check(self) -> None:
        """Raises ``InputError`` when no selected case has a time series."""
        if next(self._frames(), None) is None:
            raise InputError(f"none of the {self.selected.case_count} selected case(s) has "
                             "a time series (timeseries/<case_id>.json: runs with GPU "
                             "telemetry)")

    def one_zone(self) -> tzinfo:
        """The zone every run wrote its times in, or UTC when they differ (a column of a
        Parquet file has one)."""
        zones = {run_zone(run) for run in self.selected.runs}
        return zones.pop() if len(zones) == 1 else timezone.utc

    def _frames(self) -> Iterator[pd.DataFrame]:
        for run in self.selected.runs:
            tz = self.zone or run_zone(run)
            for cid, path in _timeseries_paths(run):
                f = _case_frame(run.record.run_id, cid, path, tz)
                if f is not None:
                    yield f

    def __iter__(self) -> Iterator[pd.DataFrame]:
        for f in self._frames():
            self.count += len(f)
            yield f
