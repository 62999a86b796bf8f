"""What one execution's process tree cost the host: CPU time, peak resident memory, peak
threads, disk I/O (FORMAT.md §3, "Host columns").

Exact where the kernel keeps the figures: a reaped process's ``wait4`` rusage holds its CPU
time and its storage I/O (512-byte blocks in and out) with every descendant it waited for
(as does a zombie's ``stat`` and ``/proc/<pid>/io``). Sampled where it does not: resident
memory and threads exist only while a process lives (the peak is the largest sum over the
tree seen by a sample — shared and copy-on-write pages count once per process, as RSS does;
a command that ends before the first sample, ``FIRST_SAMPLE_S`` after its start, has none:
``ru_maxrss`` cannot stand in, as it counts srd's own memory, which a child shares until it
runs ``exec``); an orphan re-parented to srd (the subreaper) and its subtree are walked
like the tree, its CPU and I/O counted by what the last look saw; a tree killed at its
timeout is counted by one full look before the kill (its processes are then reaped by srd,
not by the shell, and the kill grace is not the window's).

A look walks the tree from its root through ``/proc/<pid>/task/<tid>/children`` — the cost
grows with the tree, not with the host, and stops at ``MAX_WALK`` processes — reading each
process's ``stat`` (state, threads, RSS, CPU times). Linux only: elsewhere nothing is
measured.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from doerunner.process.procfs import LINUX, children, last_pid, read_io, read_usage

MB = 1 << 20  # MiB, as gpu_mem_peak_mb
FIRST_SAMPLE_S = 0.01  # the first sample of a tree, after its start (seconds)
MAX_WALK = 2000  # processes one look reads at most (~9 us each)
AVAILABLE = LINUX and os.path.isdir("/proc/self/task")


@dataclass
class TreeMeter:
    """Measures the process tree of one execution, rooted at ``root`` (a process srd
    started in a session of its own, ``sid`` = its pid; -1: do not look for orphans). Call
    ``sample()`` as it runs, ``last_look()`` once the root has exited and before it is
    reaped — or ``sample(full=True)`` before a timed-out tree is killed — then ``metrics``."""

    root: int
    sid: int
    rusage_coming: bool = False  # the root is reaped with wait4: CPU and I/O come exact
    peak_rss: int = 0
    peak_threads: int = 0
    root_cpu: tuple[float, float] | None = None  # (user, sys) with its reaped children
    root_io: int | None = None
    tree_cpu: tuple[float, float] | None = None  # the last full look: every process's
    tree_io: int | None = None
    orphans: dict[int, tuple[float, float, int]] = field(default_factory=dict)
    exited: bool = False  # the root was looked at after it exited
    capped: bool = False  # a look stopped at MAX_WALK processes
    # The host series (FORMAT.md §4): each look as (epoch s, the tree's CPU s so far, RSS
    # bytes, threads, host RAPL joules so far or None), when ``record``; ``energy`` reads the
    # RAPL joules.
    record: bool = False
    energy: Callable[[], float | None] | None = None
    points: list[tuple[float, float, int, int, float | None]] = field(default_factory=list)
    _me: int = field(default_factory=os.getpid)

    def __post_init__(self) -> None:
        if self.record:  # the start: nothing used yet
            self.points.append((time.time(), 0.0, 0, 0, self._joules()))

    def _joules(self) -> float | None:
        return self.energy() if self.energy is not None else None

    def sample(self, full: bool = False) -> None:
        """One look at the tree — the root's and the orphans' (re-parented to srd, same
        session) — for the sums of resident memory and threads and the orphans' CPU and
        I/O; ``full``: also every process's CPU and I/O (a tree about to be killed)."""
        if not AVAILABLE:
            return
        rss = threads = 0
        user = system = 0.0
        io_sum = 0
        seen: set[int] = set()
        stack = [self.root]
        orphan_roots = set(self._orphans())
        stack.extend(orphan_roots)
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            if len(seen) >= MAX_WALK:
                self.capped = True
                break
            seen.add(pid)
            st = read_usage(pid)
            if st is None:
                continue
            cpu = (st.user_s + st.child_user_s, st.sys_s + st.child_sys_s)
            user, system = user + cpu[0], system + cpu[1]
            if pid == self.root:
                self.root_cpu = cpu
            if full or pid in orphan_roots:
                io = read_io(pid)
                io_sum += io or 0
                if pid in orphan_roots:
                    last = self.orphans.get(pid, (0.0, 0.0, 0))[2]
                    self.orphans[pid] = (cpu[0], cpu[1], io if io is not None else last)
            if not st.zombie:
                rss += st.rss
                threads += st.threads
                stack.extend(children(pid, st.threads))
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_threads = max(self.peak_threads, threads)
        if full:
            self.tree_cpu, self.tree_io = (user, system), io_sum
        if self.record and threads:  # something alive (not the look at an exited root)
            self.points.append((time.time(), user + system, rss, threads, self._joules()))

    def series(self) -> list[dict[str, float | int | None]]:
        """The recorded looks as host samples: ``t`` (epoch s), ``cpu_pct`` (the tree's CPU
        since the look before, % of one core), ``rss_mb``, ``threads``, ``rapl_w`` (host CPU
        + DRAM power since the look before, W; None without RAPL)."""
        out: list[dict[str, float | int | None]] = []
        for (t0, c0, _, _, e0), (t1, c1, rss, threads, e1) in zip(
                self.points, self.points[1:], strict=False):
            dt = t1 - t0
            if dt <= 0:
                continue
            out.append({"t": t1, "cpu_pct": max(0.0, c1 - c0) / dt * 100, "rss_mb": rss / MB,
                        "threads": threads,
                        "rapl_w": None if e0 is None or e1 is None else (e1 - e0) / dt})
        return out

    def _orphans(self) -> list[int]:
        """srd's children (the kernel re-parents orphans to the subreaper's main thread) in
        this tree's session, but the root: its re-parented orphans."""
        if self.sid < 0:
            return []
        out = []
        for pid in children(self._me, 1):
            if pid != self.root:
                st = read_usage(pid)
                if st is not None and st.sid == self.sid:
                    out.append(pid)
        return out

    def last_look(self) -> None:
        """The root has exited and is not reaped yet (a zombie): its CPU times and I/O now
        include every child it reaped."""
        if not AVAILABLE:
            return
        self.exited = True
        if self.rusage_coming and last_pid() == self.root and not self.orphans:
            return  # it started nothing (no pid handed out since): wait4 tells all
        self.sample()
        if not self.rusage_coming:
            self.root_io = read_io(self.root)

    def metrics(self, wall_s: float, rusage: os.struct_rusage | None = None,
                timed_out: bool = False) -> dict[str, float]:
        """The host columns of the execution: ``cpu_user_s``, ``cpu_sys_s`` (seconds),
        ``cpu_util`` (CPU seconds / wall seconds × 100: 250 is 2.5 cores),
        ``mem_peak_mb``, ``disk_io_mb`` (MiB), ``threads_active`` (the last three only when
        seen). CPU and I/O: the root's ``rusage`` from ``wait4`` (exact; I/O as its 512-byte
        blocks in and out) plus the orphans' last look; for a tree killed at its timeout, the
        full look taken before the kill (the kill grace is not charged to the window); else
        the look after the root exited; else nothing (no figure rather than a stale one)."""
        if not AVAILABLE:
            return {}
        cpu: tuple[float, float] | None = None
        io: int | None = None
        extra_u = sum(o[0] for o in self.orphans.values())
        extra_s = sum(o[1] for o in self.orphans.values())
        extra_io = sum(o[2] for o in self.orphans.values())
        if timed_out:
            cpu, io = self.tree_cpu, self.tree_io
        elif rusage is not None:
            cpu = (rusage.ru_utime + extra_u, rusage.ru_stime + extra_s)
            io = (rusage.ru_inblock + rusage.ru_oublock) * 512 + extra_io
        elif self.exited and self.root_cpu is not None:
            cpu = (self.root_cpu[0] + extra_u, self.root_cpu[1] + extra_s)
            io = None if self.root_io is None else self.root_io + extra_io
        return self._columns(cpu, io, wall_s)

    def _columns(self, cpu: tuple[float, float] | None, io: int | None,
                 wall_s: float) -> dict[str, float]:
        """The host columns from CPU seconds (user, system), disk bytes (None: not known)
        and the peaks looked at."""
        out: dict[str, float] = {}
        if cpu is not None:
            out["cpu_user_s"], out["cpu_sys_s"] = cpu
            if wall_s > 0:
                out["cpu_util"] = (cpu[0] + cpu[1]) / wall_s * 100
        if self.peak_rss:
            out["mem_peak_mb"] = self.peak_rss / MB
        if io is not None:
            out["disk_io_mb"] = io / MB
        if self.peak_threads:
            out["threads_active"] = self.peak_threads
        return out


class ShareMeter(TreeMeter):
    """The share of one window in what a long-lived process (the hf worker) and its
    children use: CPU time and disk I/O as differences of its counters between ``__init__``
    and ``finish``, resident memory and threads as the peaks of the looks in between (at
    the start, every ``sample_s`` while waiting for the worker — ``ticker`` — and at the
    end)."""

    def __init__(self, root: int) -> None:
        super().__init__(root, -1)  # -1: no session to find orphans in (the worker's are its)
        self.sample()
        self.cpu0 = self.root_cpu
        self.io0 = read_io(root) if AVAILABLE else None

    def ticker(self, every_s: float) -> Callable[[], None]:
        """A function to call whenever convenient: it looks at the tree every ``every_s``."""
        due = [time.monotonic() + every_s]

        def tick() -> None:
            now = time.monotonic()
            if now >= due[0]:
                due[0] = now + every_s
                self.sample()

        return tick

    def finish(self, wall_s: float) -> dict[str, float]:
        """The host columns of the window (see ``TreeMeter.metrics``)."""
        if not AVAILABLE:
            return {}
        self.sample()
        io = read_io(self.root)
        cpu = None
        if self.cpu0 is not None and self.root_cpu is not None:
            cpu = (max(0.0, self.root_cpu[0] - self.cpu0[0]),
                   max(0.0, self.root_cpu[1] - self.cpu0[1]))
        share = None if io is None or self.io0 is None else max(0, io - self.io0)
        return self._columns(cpu, share, wall_s)
