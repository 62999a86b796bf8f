"""What one execution's process tree cost the host: CPU time, peak resident memory, peak
threads, disk I/O (FORMAT.md §3, "Host columns").

Exact where the kernel keeps the figures: the CPU time of a reaped process includes every
descendant it waited for (``wait4``'s rusage, or a zombie's ``cutime``/``cstime``), and so
do its I/O counters (``/proc/<pid>/io`` adds a reaped child's counters to its parent's).
Sampled where it does not: resident memory and threads exist only while a process lives (the
peak is the largest sum over the tree seen by a sample: a command that ends before the
first sample, ``FIRST_SAMPLE_S`` after its start, has none — ``ru_maxrss`` cannot stand in,
as it counts srd's own memory, which a child shares until it runs ``exec``), and an orphan
that was re-parented to srd (the subreaper) is counted by what its last sample saw.

A sample walks the tree from its root through ``/proc/<pid>/task/<tid>/children`` — the
cost grows with the tree, not with the host — and reads each process's ``stat`` (state,
threads, RSS, CPU times); I/O counters are read for the root and orphans only (the others'
reach the root when they are reaped). Linux only: elsewhere nothing is measured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from doerunner.process.procfs import LINUX, children, last_pid, read_io, read_usage

MB = 1 << 20  # MiB, as gpu_mem_peak_mb
FIRST_SAMPLE_S = 0.01  # the first sample of a tree, after its start (seconds)
AVAILABLE = LINUX and os.path.isdir("/proc/self/task")


@dataclass
class TreeMeter:
    """Measures the process tree of one execution, rooted at ``root`` (a process srd
    started in a session of its own, ``sid`` = its pid). Call ``sample()`` as it runs,
    ``last_look()`` once the root has exited and before it is reaped, then
    ``metrics(wall_s, rusage)``."""

    root: int
    sid: int
    rusage_coming: bool = False  # the root is reaped with wait4: its CPU times come exact
    peak_rss: int = 0
    peak_threads: int = 0
    root_cpu: tuple[float, float] | None = None  # (user, sys) with waited children
    root_io: int | None = None
    orphans: dict[int, tuple[float, float, int]] = field(default_factory=dict)
    _me: int = field(default_factory=os.getpid)

    def sample(self) -> None:
        """One look at the tree: the sums of resident memory and threads, orphans' CPU."""
        if not AVAILABLE:
            return
        rss = threads = 0
        stack = [self.root]
        seen: set[int] = set()
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            st = read_usage(pid)
            if st is None:
                continue
            if pid == self.root:
                self.root_cpu = (st.user_s + st.child_user_s, st.sys_s + st.child_sys_s)
            if not st.zombie:
                rss += st.rss
                threads += st.threads
                stack.extend(children(pid, st.threads))
        for pid in self._orphans(seen):
            st = read_usage(pid)
            if st is None or st.sid != self.sid:
                continue
            io = read_io(pid)
            self.orphans[pid] = (st.user_s + st.child_user_s, st.sys_s + st.child_sys_s,
                                 io if io is not None else self.orphans.get(pid, (0, 0, 0))[2])
            if not st.zombie:
                rss += st.rss
                threads += st.threads
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_threads = max(self.peak_threads, threads)

    def _orphans(self, seen: set[int]) -> list[int]:
        """srd's own children that are not in the tree: candidates for its re-parented
        orphans (checked by session)."""
        st = read_usage(self._me)
        mine = children(self._me, st.threads if st is not None else 1)
        return [pid for pid in mine if pid not in seen and pid != self.root]

    def last_look(self) -> None:
        """The root has exited and is not reaped yet (a zombie): its CPU times and I/O now
        include every child it reaped."""
        if not AVAILABLE:
            return
        if last_pid() == self.root and not self.orphans:
            # No pid handed out since the root's: it started nothing (a microsecond check
            # that keeps a trivial command's cost down): only the root to read, and its CPU
            # times only when wait4 will not give them.
            if not self.rusage_coming:
                st = read_usage(self.root)
                if st is not None:
                    self.root_cpu = (st.user_s + st.child_user_s, st.sys_s + st.child_sys_s)
        else:
            self.sample()
        io = read_io(self.root)
        if io is not None:
            self.root_io = io

    def metrics(self, wall_s: float, rusage: os.struct_rusage | None = None) -> dict[str, float]:
        """The host columns of the execution: ``cpu_user_s``, ``cpu_sys_s`` (seconds),
        ``cpu_util`` (CPU seconds / wall seconds × 100: 250 is 2.5 cores),
        ``mem_peak_mb``, ``disk_io_mb`` (MiB), ``threads_active`` (the last three only when
        seen). ``rusage``: the root's, from ``wait4`` (exact); else what the last look
        saw."""
        if not AVAILABLE:
            return {}
        out: dict[str, float] = {}
        cpu = ((rusage.ru_utime, rusage.ru_stime) if rusage is not None else self.root_cpu)
        if cpu is not None:
            user = cpu[0] + sum(o[0] for o in self.orphans.values())
            system = cpu[1] + sum(o[1] for o in self.orphans.values())
            out["cpu_user_s"], out["cpu_sys_s"] = user, system
            if wall_s > 0:
                out["cpu_util"] = (user + system) / wall_s * 100
        if self.peak_rss:
            out["mem_peak_mb"] = self.peak_rss / MB
        if self.root_io is not None:
            out["disk_io_mb"] = (self.root_io + sum(o[2] for o in self.orphans.values())) / MB
        if self.peak_threads:
            out["threads_active"] = self.peak_threads
        return out


class ShareMeter(TreeMeter):
    """The share of one window in what a long-lived process (the hf worker) and its
    children use: CPU time and disk I/O as differences of its counters between ``__init__``
    and ``finish``, resident memory and threads as the peaks of the looks in between
    (``sample``: at the start, after each batch, at the end)."""

    def __init__(self, root: int) -> None:
        super().__init__(root, -1)  # -1: no session to find orphans in (the worker's are its)
        self.sample()
        self.cpu0 = self.root_cpu
        self.io0 = read_io(root) if AVAILABLE else None

    def finish(self, wall_s: float) -> dict[str, float]:
        """The host columns of the window (see ``TreeMeter.metrics``)."""
        if not AVAILABLE:
            return {}
        self.sample()
        io = read_io(self.root)
        out: dict[str, float] = {}
        if self.cpu0 is not None and self.root_cpu is not None:
            user = max(0.0, self.root_cpu[0] - self.cpu0[0])
            system = max(0.0, self.root_cpu[1] - self.cpu0[1])
            out["cpu_user_s"], out["cpu_sys_s"] = user, system
            if wall_s > 0:
                out["cpu_util"] = (user + system) / wall_s * 100
        if self.peak_rss:
            out["mem_peak_mb"] = self.peak_rss / MB
        if io is not None and self.io0 is not None:
            out["disk_io_mb"] = max(0, io - self.io0) / MB
        if self.peak_threads:
            out["threads_active"] = self.peak_threads
        return out
