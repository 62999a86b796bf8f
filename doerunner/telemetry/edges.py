"""Energy at a window's edge from a counter that updates in steps.

A GPU's energy counter (mJ) does not count continuously: it updates every 20-100 ms, at a
phase nobody controls, and then holds the energy up to that update. The difference of two
readings is the energy between the two updates before them, not between the readings: up to
one period off at each end (at 300 W and 100 ms, 30 J per edge, 20 % of a 0.5 s window).

So each edge of a window is pinned to the counter's next update. From the edge on, the
counter and the instantaneous power are read every millisecond or so until the counter
changes; the update happened between the last two reads (its time is taken as their
midpoint, so at most half a poll off). The counter's new value is the energy up to that
update, and the energy from the edge to the update is known from the power read meanwhile:

    E(edge) = counter after the update - integral of power from the edge to the update

The window's energy is E(end) - E(begin): exact for the counter's part, and the short
integrals (under one period each) carry only the power's error over that stretch. A window
shorter than a period works too: both edges then find the same update, and its energy is the
integral of the power polled in between. An edge whose counter goes backwards (a reset: the
driver was reloaded), cannot be read, or does not change within its time limit (a frozen
counter) gives no energy and a reason: the window then falls back to integrating its samples.
"""

from __future__ import annotations

from dataclasses import dataclass

POLL_S = 0.001
"""How often an edge reads the counter and the power while it waits for an update (s)."""
MAX_GAP_S = 0.012
"""An update seen after a longer gap between reads cannot be placed in time: the edge then
takes that reading as its new starting value and waits for the next update."""


@dataclass(slots=True)
class Edge:
    """One window edge at ``t`` (s, any clock the reads share) where the counter read
    ``c0`` (mJ) and the power ``p0`` (W, None when unknown). Feed it reads until
    ``done``; then ``energy_mj`` is the counter's value at ``t`` (float mJ), or ``why``
    says why there is none."""

    t: float
    c0: int
    p0: float | None
    last_t: float = 0.0       # the last counter read
    last_tp: float = 0.0      # the last power read
    last_p: float | None = None
    integral_j: float = 0.0   # power integrated from t to last_tp
    tick_t: float | None = None  # when the counter updated (the midpoint of two reads)
    blind_s: float = 0.0      # time bridged by a straight line between reads too far apart
    energy_mj: float | None = None
    why: str | None = None

    def __post_init__(self) -> None:
        self.last_t, self.last_tp, self.last_p = self.t, self.t, self.p0

    @property
    def done(self) -> bool:
        return self.energy_mj is not None or self.why is not None

    def feed(self, t: float, c: int | None, p: float | None, tp: float | None = None) -> bool:
        """One read of the counter ``c`` (mJ) at ``t`` and of the power ``p`` (W) at ``tp``
        (default ``t``); True once done."""
        if self.done:
            return True
        if t < self.t:
            return False  # read before the edge (a poll that began before the window)
        if c is None:
            self.why = "the energy counter could not be read"
            return True
        tp = t if tp is None else tp
        if c != self.c0 and c < self.c0:
            self.why = (f"the energy counter went backwards ({self.c0} -> {c} mJ): reset, "
                        "e.g. by a driver reload")
            return True
        if c == self.c0 or t - self.last_t > MAX_GAP_S:
            # no update yet, or one that cannot be placed in time: integrate and go on
            if t - self.last_t > MAX_GAP_S:
                self.blind_s += t - self.last_t
            self.integral_j += _segment(self.last_tp, self.last_p, tp, p)
            self.last_t, self.last_tp = t, tp
            self.last_p = p if p is not None else self.last_p
            self.c0 = c
            return False
        tick = 0.5 * (self.last_t + t)
        at_tick = _between(self.last_tp, self.last_p, tp, p, tick)
        self.tick_t = tick
        self.energy_mj = c - 1000.0 * (self.integral_j
                                       + _segment(self.last_tp, self.last_p, tick, at_tick))
        return True

    def give_up(self, waited_s: float) -> None:
        """No update came within ``waited_s`` seconds: the counter is frozen (or too slow)."""
        if not self.done:
            self.why = (f"the energy counter did not change for {waited_s * 1000:.0f} ms "
                        "(frozen?)")


def _between(t0: float, p0: float | None, t1: float, p1: float | None, t: float) -> float | None:
    """Power at ``t`` on the line through the two reads."""
    if p0 is None or p1 is None or t1 <= t0:
        return p1 if p1 is not None else p0
    return p0 + (p1 - p0) * (t - t0) / (t1 - t0)


def _segment(t0: float, p0: float | None, t1: float, p1: float | None) -> float:
    """The trapezoid between two reads (J); a missing power counts as the other one."""
    if p0 is None and p1 is None:
        return 0.0
    a = p0 if p0 is not None else p1
    b = p1 if p1 is not None else p0
    return 0.5 * (a + b) * (t1 - t0)  # type: ignore[operator]


def window_energy_j(begin: Edge, end: Edge,
                    duration_s: float) -> tuple[float | None, str | None]:
    """The energy between two resolved edges in J, or ``(None, why)``. An edge that bridged
    more than a quarter of the window with a straight line (its reads came too far apart
    to follow the counter) is not a counter measurement."""
    if begin.why or end.why:
        return None, begin.why or end.why
    blind = max(begin.blind_s, end.blind_s)
    if blind > max(0.25 * duration_s, MAX_GAP_S):
        return None, (f"the energy counter could not be followed: {blind * 1000:.0f} ms "
                      "between reads")
    if begin.energy_mj is None or end.energy_mj is None:
        return None, "the energy counter's edges were not resolved"
    e = (end.energy_mj - begin.energy_mj) / 1000.0
    if e < -1e-3:
        return None, "the energy counter went backwards during the window: reset"
    return max(0.0, e), None
