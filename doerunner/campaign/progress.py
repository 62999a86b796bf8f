"""How a run shows its progress: a tqdm bar on a terminal, one plain line per case in CI
logs, or nothing (``--quiet``). Presentation only: nothing here measures."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from doerunner.inputs.case import Case
from doerunner.results import FAIL, OK, TIMEOUT, CaseResult

if TYPE_CHECKING:
    from doerunner.results import RunSummary


class Reporter:
    """Receives the run's events. The base class shows nothing (``--quiet``); warnings still
    go to stderr."""

    def start(self, total: int, done: int) -> None:
        """``total`` cases in the run, ``done`` of them already finished (resumed)."""

    def case_start(self, case: Case) -> None:
        """``case`` starts."""

    def case_progress(self, case: Case, what: str, done: int, total: int) -> None:
        """Inside ``case``: ``done`` of ``total`` (0: not known) ``what`` (warm-up requests,
        repetitions, batches) so far. Only the bar shows it."""

    def case_end(self, case: Case, result: CaseResult, violations: str) -> None:
        """``case`` finished with ``result``."""

    def info(self, text: str) -> None:
        """A line worth telling the user (plain and bar modes only)."""

    def warn(self, text: str) -> None:
        """A warning: always shown, on stderr."""
        print(f"srd: warning: {text}", file=sys.stderr, flush=True)

    def finish(self, summary: RunSummary) -> None:
        """The run is over."""


class PlainReporter(Reporter):
    """One line per finished case, for logs that are not a terminal. When the reader of the
    stream goes away (``srd run ... | head``) the lines stop and the run goes on."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.total = 0
        self.done = 0
        self.gone = False

    def _print(self, text: str) -> None:
        if self.gone:
            return
        try:
            print(text, file=self.stream, flush=True)
        except BrokenPipeError:
            self.gone = True
            discard(self.stream)

    def start(self, total: int, done: int) -> None:
        self.total, self.done = total, done
        if done:
            self.info(f"resuming: {done} of {total} cases already done")

    def case_end(self, case: Case, result: CaseResult, violations: str) -> None:
        self.done += 1
        width = len(str(self.total))
        secs = result.metrics.get("run_seconds", 0.0)
        line = f"[{self.done:>{width}}/{self.total}] {case.case_id} {result.status} {secs:.3f} s"
        if result.message:
            line += f" ({result.message})"
        if violations:
            line += f" violations: {violations}"
        self._print(line)

    def info(self, text: str) -> None:
        self._print(text)

    def finish(self, summary: RunSummary) -> None:
        self._print(summary_text(summary))


class BarReporter(PlainReporter):
    """A tqdm bar: current case, status counts, elapsed and ETA; under it, for a case that
    has run longer than ``SUB_DELAY_S``, a second bar with its progress (warm-up requests,
    repetitions, hf batches)."""

    SUB_DELAY_S = 2.0
    sub: Any = None  # the case's tqdm bar
    sub_key: tuple[str, int] | None = None
    case_t0 = 0.0  # time.monotonic() when the current case started

    def start(self, total: int, done: int) -> None:
        from tqdm import tqdm

        self.total, self.done = total, done
        self.counts = {OK: 0, FAIL: 0, TIMEOUT: 0}
        self.bar = tqdm(total=total, initial=done, unit="case", dynamic_ncols=True,
                        file=sys.stderr, leave=True)

    def case_start(self, case: Case) -> None:
        self._close_sub()
        self.case_t0 = time.monotonic()
        self.bar.set_description_str(case.case_id[:32], refresh=False)

    def case_progress(self, case: Case, what: str, done: int, total: int) -> None:
        if time.monotonic() - self.case_t0 < self.SUB_DELAY_S:
            return  # a short case gets no second bar
        if self.sub is None or self.sub_key != (what, total) or done < self.sub.n:  # retry
            from tqdm import tqdm

            self._close_sub()
            self.sub = tqdm(total=total or None, initial=done, unit=what.split()[-1],
                            desc=f"  {what}", dynamic_ncols=True, file=sys.stderr,
                            leave=False, position=1)
            self.sub_key = (what, total)
        else:
            self.sub.update(done - self.sub.n)

    def _close_sub(self) -> None:
        if self.sub is not None:
            self.sub.close()
            self.sub = self.sub_key = None

    def case_end(self, case: Case, result: CaseResult, violations: str) -> None:
        self._close_sub()
        self.done += 1
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        self.bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in self.counts.items()),
                                 refresh=False)
        self.bar.update(1)
        if result.status != OK:
            self.bar.write(f"{case.case_id}: {result.status} ({result.message})", file=sys.stderr)

    def info(self, text: str) -> None:
        if getattr(self, "bar", None) is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def warn(self, text: str) -> None:
        self.info(f"srd: warning: {text}")

    def finish(self, summary: RunSummary) -> None:
        self._close_sub()
        self.bar.close()
        self.bar = None
        self._print(summary_text(summary))


def discard(stream: IO[str]) -> None:
    """Point ``stream``'s file descriptor at /dev/null once its reader has gone away, so that
    later writes and Python's flush at exit do not fail again (a stream without a descriptor
    is left as it is)."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: no file descriptor
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def default_reporter(quiet: bool = False) -> Reporter:
    """Quiet, a bar when stdout is a terminal, else plain lines."""
    if quiet:
        return Reporter()
    return BarReporter() if sys.stdout.isatty() else PlainReporter()


def summary_text(s: RunSummary) -> str:
    """The end-of-run summary: counts by status, violations, where the outputs are."""
    parts = [f"{s.counts.get(k, 0)} {k}" for k in (OK, FAIL, TIMEOUT) if s.counts.get(k)]
    lines = [f"srd: {s.finished} of {s.total} cases finished"
             + (f" ({', '.join(parts)})" if parts else "")
             + f" in {s.elapsed_s:.1f} s; exit code {s.exit_code}"]
    if s.resumed:
        lines.append(f"  {s.resumed} taken from the journal (--resume)")
    if s.violated:
        lines.append(f"  {s.violated} case(s) violated thresholds: "
                     + ", ".join(s.violated_ids[:10]) + (" ..." if s.violated > 10 else ""))
    if s.not_run:
        why = "interrupted" if s.interrupted else "--fail-fast"
        lines.append(f"  {s.not_run} case(s) not run ({why})")
    lines.append(f"  metrics:  {s.out}")
    lines.append(f"  run dir:  {s.run_dir} (run.json, journal.jsonl, logs/)")
    if s.interrupted:
        lines.append("  interrupted: to continue, run the same command with --resume")
    return "\n".join(lines)
