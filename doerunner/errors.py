"""The library's own errors. Each carries the exit code the CLI turns it into (FORMAT.md §1)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One input problem, located in a file: ``file:line:column: message``.

    ``line`` and ``column`` are 1-based; 0 means "not tied to a line/column".
    """

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class DoerunnerError(Exception):
    """Base class of every error srd raises on purpose. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class InputError(DoerunnerError):
    """Invalid input or usage (exit 4). Holds every problem found, not just the first."""

    exit_code = 4

    def __init__(self, problems: list[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", 0, 0, problems)]
        self.problems = list(problems)
        super().__init__("\n".join(_fmt(p) for p in self.problems))


def _fmt(p: Problem) -> str:
    return p.message if not p.file else str(p)


class OutputError(DoerunnerError):
    """An output file or directory cannot be written (exit 4 when found before anything ran).
    ``reason`` is why, without saying which output (``No space left on device``)."""

    exit_code = 4

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message


def reason(e: OSError) -> str:
    """What went wrong, in one line (``No space left on device``)."""
    return e.strerror or str(e)


def output_error(what: object, e: OSError, after: str = "") -> OutputError:
    """The one translation of an ``OSError`` on an output: ``OutputError("WHAT: reason")``
    (``WHAT`` names the output, e.g. ``--junit report.xml``), ``after`` appended."""
    why = reason(e)
    return OutputError(f"{what}: {why}{after}", why)


class CaseInterrupted(Exception):
    """Raised by a backend when its case was cancelled by an interruption (never journaled)."""
