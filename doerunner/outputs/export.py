"""``srd export``: a selection of the run history (``analysis.export``) written in an export
format (``outputs.registry.FORMATS`` members with ``EXPORT``): JSON, CSV (or ``--split`` into
one CSV per column family) or Parquet, to a file (atomically) or standard output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doerunner.analysis.export import Selected, Selection, select
from doerunner.errors import InputError
from doerunner.outputs.base import write_output


@dataclass(frozen=True, slots=True)
class ExportData:
    """What an export format writes: the selection, and with ``--timeseries`` the flat
    sample table of its cases (``samples``, an ``export_samples.Samples``: a frame a case;
    None otherwise)."""

    selected: Selected
    samples: Any = None

    @property
    def timeseries(self) -> bool:
        return self.samples is not None


@dataclass
class ExportResult:
    """What was written: a message for the user and the warnings of the selection."""

    message: str
    warnings: list[str]


def export_formats() -> dict[str, Any]:
    """The formats ``srd export --format`` offers, by name."""
    from doerunner.outputs.registry import FORMATS

    return {name: cls for name, cls in FORMATS.items() if cls.EXPORT}


def export(sel: Selection, fmt: str, out: str | None = None, *, split: str | None = None,
           timeseries: bool = False, history: Path | None = None) -> ExportResult:
    """Select and write. ``out`` None (or ``-``) writes to stdout, except for a format that
    needs a file (Parquet). ``split`` (CSV only, not with ``timeseries``) is a directory.
    Raises ``InputError`` for bad combinations and empty selections, ``OutputError`` when a
    file cannot be written."""
    formats = export_formats()
    if fmt not in formats:
        raise InputError(f"--format {fmt!r}: use {', '.join(formats)}")
    cls = formats[fmt]
    if split is not None and (fmt != "csv" or timeseries):
        raise InputError("--split needs --format csv and no --timeseries")
    if getattr(cls, "NEEDS_FILE", False) and out in (None, "-"):
        raise InputError(f"--format {fmt} needs --out FILE")
    selected = select(sel, history)
    what = f"{selected.case_count} case(s) of {len(selected.runs)} run(s)"
    where = out if out not in (None, "-") else "stdout"
    samples = None
    if timeseries:
        from doerunner.outputs.export_samples import Samples

        samples = Samples(selected)
        samples.check()
    elif split is not None:
        from doerunner.outputs.export_csv import write_split

        files = write_split(selected, split)
        return ExportResult(f"exported {what} to {len(files)} files in {split}: "
                            + ", ".join(p.name for p in files), selected.warnings)
    write_output(cls(), ExportData(selected, samples), out, out)
    if samples is not None:
        what = f"{samples.count} samples of " + what
    return ExportResult(f"exported {what} to {where}", selected.warnings)
