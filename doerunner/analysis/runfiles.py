"""A run's files read back: a metrics.csv and the run directory around it (run.json, time
series) — what ``srd report`` and ``srd export`` read. Errors are ``InputError``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pandas as pd

from doerunner.analysis.metrics import read_metrics
from doerunner.analysis.significance import Repetitions
from doerunner.errors import InputError
from doerunner.inputs.bounded import read_limited
from doerunner.outputs.repetitions import FILE_NAME as REPETITIONS_FILE


@dataclass
class RunInput:
    """A metrics.csv read as strings, and the run directory around it when there is one."""

    df: pd.DataFrame
    metrics_path: Path
    run_dir: Path | None
    run_json: dict[str, Any] | None


# run.json as srd writes it (``outputs.run_json``): the head, then this line, one case a
# line, and `` ]`` — the cases are skipped line by line, never held (a million cases: 1 GB).
_CASES_LINE = b' "cases": ['


def _without_cases(f: BinaryIO) -> bytes:
    """The text of run.json with its cases left out when they are laid out as srd writes
    them, else the whole text."""
    head = []
    for line in f:
        if line.rstrip(b"\r\n") != _CASES_LINE:
            head.append(line)
            continue
        for end in f:
            if end.startswith(b" ]"):
                before = b"".join(head).rstrip()
                if not end.startswith(b" ],"):  # the last key: no comma before it
                    before = before.removesuffix(b",")
                return before + b"\n" + f.read()
        break  # cut short: let the parser say so
    return b"".join(head)


def read_run_json(path: Path) -> dict[str, Any]:
    """run.json without its ``cases`` (every case's full result: metrics.csv has what a
    report shows). Raises ``InputError`` for a file that cannot be read or parsed."""
    try:
        with open(path, "rb") as f:
            doc = orjson.loads(_without_cases(f))
    except (OSError, orjson.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot be read: {e}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not a run.json (no JSON object)")
    doc.pop("cases", None)
    return doc


def load_run(path: str | Path, columns: Callable[[str], bool] | None = None, *,
             compact: bool = False) -> RunInput:
    """Read a run directory or a metrics.csv (``columns``, ``compact``: as
    ``read_metrics`` reads it). Raises ``InputError`` for a missing path, a directory
    without run.json, or a metrics file that cannot be read."""
    p = Path(path)
    if p.is_dir():
        rj = p / "run.json"
        if not rj.is_file():
            raise InputError(f"{path}: a directory without run.json, not a run directory")
        doc = read_run_json(rj)
        metrics = _metrics_of_run_dir(p, doc)
        return RunInput(read_metrics(metrics, columns, compact=compact), metrics, p, doc)
    if not p.exists():
        raise InputError(f"{path}: no such file or directory")
    df = read_metrics(p, columns, compact=compact)
    run_dir = p.with_name(p.stem + "_run")
    doc = read_run_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else None
    return RunInput(df, p, run_dir if doc is not None else None, doc)


def load_with_repetitions(path: str | Path, columns: Callable[[str], bool] | None = None
                          ) -> tuple[pd.DataFrame, Repetitions | None, str | None]:
    """A metrics.csv (or the one of a run directory; ``columns``: which columns to keep
    besides case_id), the repetitions its run kept (``repetitions.csv``; ``None`` without
    one, or when they are not this file's: another run's left in the folder) and why they
    were left out (or None). Raises ``InputError``."""
    p = Path(path)
    if p.is_dir():
        rj = p / "run.json"
        if not rj.is_file():
            raise InputError(f"{path}: a directory without run.json, not a run directory")
        df = read_metrics(_metrics_of_run_dir(p, read_run_json(rj)), columns)
        reps = Repetitions.read(p / REPETITIONS_FILE)
    else:
        df = read_metrics(p, columns)
        reps = Repetitions.read(p.with_name(p.stem + "_run") / REPETITIONS_FILE)
    why = reps.mismatch(df) if reps is not None else None
    if why is not None:
        return df, None, f"{why}: its repetitions are not used"
    return df, reps, None


def _metrics_of_run_dir(run_dir: Path, doc: dict[str, Any]) -> Path:
    out = str(doc.get("out") or "")
    candidates = []
    if out:
        o = Path(out)
        candidates.append(o if o.is_absolute() else Path(str(doc.get("cwd") or ".")) / o)
        candidates.append(run_dir.parent / o.name)
    if run_dir.name.endswith("_run"):
        candidates.append(run_dir.parent / (run_dir.name[: -len("_run")] + ".csv"))
    for c in candidates:
        if c.is_file():
            return c
    raise InputError(f"{run_dir}: its metrics file {out or '(unknown)'} is missing")


MAX_TIMESERIES_BYTES = 64 << 20
"""A time-series file: 64 MiB at most (``read_timeseries``)."""


def timeseries_files(src: RunInput, limit: int) -> tuple[list[Path], int, int]:
    """Up to ``limit`` time-series files of the run's cases, in row order, how many cases
    have one, and how many ``timeseries_path`` cells were skipped (FORMAT.md §3): a path is
    read only when it is relative, names a regular file, and lies under the run directory
    or the metrics file's folder (no absolute path, no ``..`` out of them, no link out of
    them). Without a ``timeseries_path``, ``<run dir>/timeseries/<case_id>.json``."""
    df = src.df
    rels = df["timeseries_path"].tolist() if "timeseries_path" in df.columns else [""] * len(df)
    roots = [src.metrics_path.parent.resolve()]
    if src.run_dir is not None:
        roots.append(src.run_dir.resolve())
    found: list[Path] = []
    total = skipped = 0
    for cid, rel in zip(df["case_id"].tolist(), rels, strict=True):
        p = None
        if rel:
            p = _inside(src.metrics_path.parent, rel, roots)
            if p is None:
                skipped += 1
                continue
        elif src.run_dir is not None:
            p = src.run_dir / "timeseries" / f"{cid}.json"
        if p is not None and p.is_file():
            total += 1
            if len(found) < limit:
                found.append(p)
    return found, total, skipped


def _inside(base: Path, rel: str, roots: list[Path]) -> Path | None:
    """``base / rel`` when ``rel`` is relative and leads to a regular file under one of
    ``roots`` (links resolved), else None."""
    if Path(rel).is_absolute():
        return None
    p = base / rel
    try:
        real = p.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not real.is_file() or not any(real.is_relative_to(r) for r in roots):
        return None
    return p


def read_timeseries(path: Path) -> Any:
    """The JSON document of a time-series file, at most ``MAX_TIMESERIES_BYTES`` of a
    regular file (``OSError`` when it is larger or not one; ``ValueError`` for bad JSON)."""
    return orjson.loads(read_limited(path, MAX_TIMESERIES_BYTES))


def run_json_or_empty(path: Path) -> dict[str, Any]:
    """run.json without its cases, or ``{}`` when it is gone or unreadable (an export of an
    old run goes on without its metadata)."""
    try:
        return read_run_json(path)
    except InputError:
        return {}
