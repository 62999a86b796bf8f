"""A deterministic backend for testing the runner's own logic without shell timing noise.

Metrics follow the seed metrics format: ``p95`` uniform in 0.01–0.10 s, ``p99 = 1.6 × p95``,
``throughput_rps`` uniform in 500–2000, ``errors`` 0. They are derived from a hash of the
case id and its parameters, so two runs (and two repetitions) always agree.

Parameters that shape it (all optional):
- ``sleep_s``: seconds to take (a TIMEOUT when longer than ``timeout_s``);
- ``fail``: ``1``/``true``/``yes`` makes every execution FAIL.
"""

from __future__ import annotations

import hashlib
import resource
import time

from doerunner.backends.base import Backend, ExecContext
from doerunner.errors import CaseInterrupted
from doerunner.inputs.case import Case
from doerunner.inputs.vocabulary import parse_flag
from doerunner.results import FAIL, OK, TIMEOUT, Execution

_SCALE = float(2**64)


def _sleep_s(case: Case) -> float:
    text = case.params.get("sleep_s", "").strip()
    return float(text) if text else 0.0


class DummyBackend(Backend):
    NAME = "dummy"

    def check(self, case: Case) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        text = case.params.get("sleep_s", "")
        try:
            ok = _sleep_s(case) >= 0 and _sleep_s(case) < float("inf")
        except ValueError:
            ok = False
        if not ok:
            problems.append(("sleep_s", f"sleep_s must be a number of seconds >= 0, got {text!r}"))
        fail = case.params.get("fail", "").strip().lower()
        if parse_flag(fail) is None:
            problems.append(("fail", f"fail must be 1/true/yes or empty/0/false/no, got {fail!r}"))
        return problems

    def execute(self, case: Case, ctx: ExecContext) -> Execution:
        r0 = _thread_usage()
        t0 = time.perf_counter()
        t_start = time.time()
        sleep_s = _sleep_s(case)
        status, message = OK, ""
        if sleep_s > 0:
            if ctx.cancel.wait(min(sleep_s, ctx.timeout_s)):
                raise CaseInterrupted(case.case_id)
            if sleep_s > ctx.timeout_s:
                status, message = TIMEOUT, f"timed out after {ctx.timeout_s:g} s"
        if status == OK and parse_flag(case.params.get("fail", "")):
            status, message = FAIL, "dummy failure requested (fail=1)"
        wall_s = time.perf_counter() - t0
        if status == TIMEOUT:
            wall_s = ctx.timeout_s
        return Execution(status, wall_s, t_start, t_start + wall_s, None, message,
                         self.metrics(case) if status == OK else {},
                         host=_thread_share(r0, wall_s))

    @staticmethod
    def metrics(case: Case) -> dict[str, float | int]:
        """The deterministic metrics of ``case`` (seconds and requests/s)."""
        h = hashlib.blake2b(digest_size=16)
        h.update(case.case_id.encode())
        for name, value in sorted(case.params.items()):
            h.update(b"\x1f" + name.encode() + b"\x1e" + value.encode())
        d = h.digest()
        u1 = int.from_bytes(d[:8], "big") / _SCALE
        u2 = int.from_bytes(d[8:], "big") / _SCALE
        p95 = 0.01 + 0.09 * u1
        return {"p95": p95, "p99": 1.6 * p95, "throughput_rps": 500.0 + 1500.0 * u2, "errors": 0}


def _thread_usage() -> tuple[float, float] | None:
    """This thread's CPU seconds (user, system): the dummy runs in srd's own thread."""
    try:
        r = resource.getrusage(resource.RUSAGE_THREAD)
    except (AttributeError, OSError, ValueError):  # not Linux
        return None
    return r.ru_utime, r.ru_stime


def _thread_share(r0: tuple[float, float] | None, wall_s: float) -> dict[str, float] | None:
    """The dummy's process-tree columns (FORMAT.md §3): the CPU its thread used. No memory,
    threads or disk of its own: it is srd's process."""
    r1 = _thread_usage()
    if r0 is None or r1 is None:
        return None
    user, system = r1[0] - r0[0], r1[1] - r0[1]
    out = {"cpu_user_s": user, "cpu_sys_s": system}
    if wall_s > 0:
        out["cpu_util"] = (user + system) / wall_s * 100
    return out
