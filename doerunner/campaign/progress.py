"""How a run shows its progress: a tqdm bar on a terminal, one plain line per case in CI
logs (and ``--show-output``), or nothing (``--quiet``). Presentation only: nothing here
measures.

A case is named with its parameters (``gzip-l9 (level=9 size=4)``, ``case_label``). Plain
lines show a case that runs longer than ``START_LINE_AFTER_S`` when it passes that mark
(one thread sleeps until the next such mark, alive only while a case is running: a sweep of
instant cases prints no start lines and wakes no thread per case); with ``--show-output``
at once, above its streamed output. A FAIL or TIMEOUT line is followed by the last lines of
the case's stderr log. The summary names the worst cases (``campaign.worst``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from doerunner.inputs.case import Case
from doerunner.inputs.vocabulary import log_stem
from doerunner.results import FAIL, OK, TIMEOUT, CaseResult

if TYPE_CHECKING:
    from doerunner.campaign.worst import Notable, WorstCases
    from doerunner.results import RunSummary

START_LINE_AFTER_S = 5.0  # plain lines: a case running longer than this gets a start line
VALUE_MAX = 24  # a parameter value longer than this is shortened in a label
PARAMS_MAX = 60  # a label's parameters: at most about this many characters, then "+N more"
BAR_LABEL_MAX = 40  # the bar's description: case id and parameters
TAIL_LINES = 5  # a FAIL/TIMEOUT line shows this many last non-empty lines of stderr
TAIL_BYTES = 8192  # read at most this much of the end of a stderr log
TAIL_LINE_MAX = 200  # characters of one stderr line shown
INDENT = "    "


class Reporter:
    """Receives the run's events. The base class shows nothing (``--quiet``); warnings still
    go to stderr."""

    def start(self, total: int, done: int, logs_dir: Path | None = None) -> None:
        """``total`` cases in the run, ``done`` of them already finished (resumed);
        ``logs_dir``: where the cases' logs are (``<case_id>.stderr``)."""

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

    def finish(self, summary: RunSummary, worst: WorstCases | None = None) -> None:
        """The run is over; ``worst``: the cases its summary names."""


class PlainReporter(Reporter):
    """One line per finished case, for logs that are not a terminal, and a line for a case
    still running after ``START_LINE_AFTER_S`` (``show_output``: for every case, at its
    start, and no stderr tail: it was streamed). When the reader of the stream goes away
    (``srd run ... | head``) the lines stop and the run goes on."""

    def __init__(self, stream: IO[str] | None = None, show_output: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.total = 0
        self.done = 0
        self.started = 0
        self.gone = False
        self.show_output = show_output
        self.logs_dir: Path | None = None
        self._lock = threading.Lock()  # lines come from the run and from the start-line timer
        self._pending = _StartLines(self._start_line)

    def _print(self, text: str) -> None:
        with self._lock:
            if self.gone:
                return
            try:
                print(text, file=self.stream, flush=True)
            except BrokenPipeError:
                self.gone = True
                discard(self.stream)

    def start(self, total: int, done: int, logs_dir: Path | None = None) -> None:
        self.total, self.done, self.started, self.logs_dir = total, done, done, logs_dir
        if done:
            self.info(f"resuming: {done} of {total} cases already done")

    def _counter(self, n: int) -> str:
        return f"[{n:>{len(str(self.total))}}/{self.total}]"

    def _start_line(self, case: Case, n: int) -> None:
        self._print(f"{self._counter(n)} {case_label(case.case_id, case.params)} running...")

    def case_start(self, case: Case) -> None:
        self.started += 1
        if self.show_output:
            self._start_line(case, self.started)
        else:
            self._pending.add(case, self.started, time.monotonic() + START_LINE_AFTER_S)

    def case_end(self, case: Case, result: CaseResult, violations: str) -> None:
        self._pending.discard(case.case_id)
        self.done += 1
        line = f"{self._counter(self.done)} " + case_line(
            case_label(case.case_id, case.params), result.status,
            result.metrics.get("run_seconds", 0.0), result.message, violations,
            spread(result))
        tail = [] if self.show_output else self._stderr_tail(case, result)
        self._print("\n".join([line, *tail]))

    def _stderr_tail(self, case: Case, result: CaseResult) -> list[str]:
        """The last lines of a FAIL or TIMEOUT case's stderr log, indented."""
        if result.status == OK or self.logs_dir is None:
            return []
        stem = log_stem(case.case_id, result.message)  # a failed hook's log, or the case's
        return [INDENT + t for t in tail_lines(self.logs_dir / f"{stem}.stderr")]

    def info(self, text: str) -> None:
        self._print(text)

    def finish(self, summary: RunSummary, worst: WorstCases | None = None) -> None:
        self._pending.clear()
        self._print(summary_text(summary, worst))


class _StartLines:
    """The start lines not shown yet: ``add`` a case with the monotonic time its line is due,
    ``discard`` it when it ends. One thread, started when a line is added and none runs,
    sleeps until the earliest due time and ends when nothing is pending; a case that ends
    before its time costs a dict insert and delete."""

    def __init__(self, show: Callable[[Case, int], None]) -> None:
        self._show = show
        self._due: dict[str, tuple[float, Case, int]] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, case: Case, n: int, due: float) -> None:
        with self._cond:
            self._due[case.case_id] = (due, case, n)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="srd-start-lines",
                                                daemon=True)
                self._thread.start()

    def discard(self, case_id: str) -> None:
        with self._cond:
            self._due.pop(case_id, None)

    def clear(self) -> None:
        with self._cond:
            self._due.clear()
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            try:
                while self._due:
                    now = time.monotonic()
                    first = min(d for d, _, _ in self._due.values())
                    if first > now:
                        # ``discard`` does not wake this thread: it looks again at the
                        # mark it computed (one look a mark, not one a case).
                        self._cond.wait(first - now)
                        continue
                    for case_id, (due, case, n) in list(self._due.items()):
                        if due <= now:
                            del self._due[case_id]
                            self._show(case, n)
            finally:
                self._thread = None


class BarReporter(PlainReporter):
    """A tqdm bar: current case, status counts, elapsed and ETA; under it, for a case that
    has run longer than ``SUB_DELAY_S``, a second bar with its progress (warm-up requests,
    repetitions, hf batches)."""

    SUB_DELAY_S = 2.0
    sub: Any = None  # the case's tqdm bar
    sub_key: tuple[str, int] | None = None
    case_t0 = 0.0  # time.monotonic() when the current case started

    def start(self, total: int, done: int, logs_dir: Path | None = None) -> None:
        from tqdm import tqdm

        self.total, self.done, self.logs_dir = total, done, logs_dir
        self.counts = {OK: 0, FAIL: 0, TIMEOUT: 0}
        self.bar = tqdm(total=total, initial=done, unit="case", dynamic_ncols=True,
                        file=sys.stderr, leave=True)

    def case_start(self, case: Case) -> None:
        self._close_sub()
        self.case_t0 = time.monotonic()
        case_id = case.case_id[:32]
        self.bar.set_description_str(
            case_label(case_id, case.params, BAR_LABEL_MAX - len(case_id)), refresh=False)

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
            label = case_label(case.case_id, case.params)
            self.bar.write("\n".join([f"{label}: {result.status} ({result.message})",
                                      *self._stderr_tail(case, result)]), file=sys.stderr)

    def info(self, text: str) -> None:
        if getattr(self, "bar", None) is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def warn(self, text: str) -> None:
        self.info(f"srd: warning: {text}")

    def finish(self, summary: RunSummary, worst: WorstCases | None = None) -> None:
        self._close_sub()
        self.bar.close()
        self.bar = None
        self._print(summary_text(summary, worst))


def discard(stream: IO[str]) -> None:
    """Point ``stream``'s file descriptor at /dev/null once its reader has gone away, so that
    later writes and Python's flush at exit do not fail again (a stream without a descriptor
    is left as it is)."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: no file descriptor
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def default_reporter(quiet: bool = False, show_output: bool = False) -> Reporter:
    """Quiet; plain lines with ``show_output`` (a bar and streamed output would garble each
    other); a bar when stdout is a terminal; else plain lines."""
    if quiet:
        return Reporter()
    if show_output:
        return PlainReporter(show_output=True)
    return BarReporter() if sys.stdout.isatty() else PlainReporter()


# -- naming a case -------------------------------------------------------------------------
def short_value(value: str) -> str:
    """A parameter value as a label shows it: whitespace runs as one space, other
    unprintable characters as ``?``, at most ``VALUE_MAX`` characters (``...`` marks a cut),
    in quotes when empty or holding a space."""
    text = "".join(c if c.isprintable() else "?" for c in " ".join(value.split()))
    if len(text) > VALUE_MAX:
        text = text[:VALUE_MAX - 3] + "..."
    return f"'{text}'" if not text or " " in text else text


def params_text(params: Mapping[str, str], width: int = PARAMS_MAX) -> str:
    """``name=value`` pairs, space-separated, in the cases file's order; the pairs that do
    not fit ``width`` characters are counted (``+3 more``). The first pair is always shown."""
    parts: list[str] = []
    used = 0
    for k, (name, value) in enumerate(params.items()):
        part = f"{name}={short_value(value)}"
        left = len(params) - k - 1
        room = width - (used + len(part) + (len(f" +{left} more") if left else 0))
        if parts and room < 0:
            parts.append(f"+{len(params) - k} more")
            break
        parts.append(part)
        used += len(part) + 1
    return " ".join(parts)


def case_label(case_id: str, params: Mapping[str, str], width: int = PARAMS_MAX) -> str:
    """``case_id (name=value ...)``, or the case id alone for a case without parameters."""
    text = params_text(params, width) if params else ""
    return f"{case_id} ({text})" if text else case_id


def spread(result: CaseResult) -> str:
    """`` ± 0.005 s (5 runs)``: the standard deviation of a case measured more than once
    (hyperfine's "mean ± σ"); "" otherwise."""
    runs, std = result.metrics.get("runs"), result.metrics.get("run_seconds_std")
    if not isinstance(runs, int) or runs < 2 or not isinstance(std, float):
        return ""
    return f" ± {std:.3f} s ({runs} runs)" if std >= 0.01 else f" ± {std:.2g} s ({runs} runs)"


def case_line(label: str, status: str, seconds: Any, message: str, violations: str,
              spread: str = "") -> str:
    """``label STATUS 1.234 s (message) violations: ...``: a finished case, in progress lines
    and the summary; ``spread`` (``spread()``) follows the time."""
    line = f"{label} {status}"
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
        line += f" {seconds:.3f} s{spread}"
    if message:
        line += f" ({message})"
    if violations:
        line += f" violations: {violations}"
    return line


def tail_lines(path: Path, n: int = TAIL_LINES) -> list[str]:
    """The last ``n`` non-empty lines of a log, read from its last ``TAIL_BYTES`` only (a
    line redrawn with CR as a terminal shows it: its last part); none when it cannot be
    read (a silent stream leaves no log)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - TAIL_BYTES))
            data = f.read(TAIL_BYTES)
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").split("\n")
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first one is cut
    out: list[str] = []
    for line in reversed(lines):
        text = line.rstrip().rsplit("\r", 1)[-1].rstrip()
        if text.strip():
            text = "".join(c if c.isprintable() or c == "\t" else "?" for c in text)
            out.append(text if len(text) <= TAIL_LINE_MAX else text[:TAIL_LINE_MAX - 3] + "...")
            if len(out) == n:
                break
    return out[::-1]


# -- the summary ---------------------------------------------------------------------------
def summary_text(s: RunSummary, worst: WorstCases | None = None) -> str:
    """The end-of-run summary: counts by status, the worst cases with their parameters
    (failed, then violating, then the slowest), where the outputs are."""
    parts = [f"{s.counts.get(k, 0)} {k}" for k in (OK, FAIL, TIMEOUT) if s.counts.get(k)]
    lines = [f"srd: {s.finished} of {s.total} cases finished"
             + (f" ({', '.join(parts)})" if parts else "")
             + f" in {s.elapsed_s:.1f} s; exit code {s.exit_code}"]
    if s.resumed:
        lines.append(f"  {s.resumed} taken from the journal (--resume)")
    if worst is not None and worst.failed:
        lines.append("  failed:")
        lines += _notables(worst.failed, worst.failed_total)
    if s.violated:
        lines.append(f"  {s.violated} case(s) violated thresholds: "
                     + ", ".join(s.violated_ids[:10]) + (" ..." if s.violated > 10 else ""))
        if worst is not None:
            lines += _notables(worst.violated, worst.violated_total)
    if worst is not None and worst.slowest:
        lines.append("  slowest:")
        lines += _notables(worst.slowest, len(worst.slowest))
    if s.not_run:
        why = "interrupted" if s.interrupted else "--fail-fast"
        lines.append(f"  {s.not_run} case(s) not run ({why})")
    lines.append(f"  metrics:  {s.out}")
    lines.append(f"  run dir:  {s.run_dir} (run.json, journal.jsonl, logs/)")
    if s.interrupted:
        lines.append("  interrupted: to continue, run the same command with --resume")
    return "\n".join(lines)


def _notables(cases: tuple[Notable, ...], total: int) -> list[str]:
    lines = [INDENT + case_line(case_label(c.case_id, c.params), c.status, c.run_seconds,
                                c.message, c.violations) for c in cases]
    if total > len(cases):
        lines.append(f"{INDENT}... and {total - len(cases)} more (metrics.csv)")
    return lines
