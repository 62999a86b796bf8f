"""``threshold_<metric>`` bounds: parsing and evaluation into the ``violations`` column."""

from __future__ import annotations

import math
from dataclasses import dataclass

from doerunner.inputs.csvtext import decimal_comma_hint

# Spelled as they appear in input; the violation text uses the opposite comparison.
_OPS = ("<=", ">=", "<", ">")
_VIOLATED_AS = {"<=": ">", ">=": "<", "<": ">=", ">": "<="}


@dataclass(frozen=True, slots=True)
class Threshold:
    """A bound on one output column. ``text`` is the cell as written (echoed verbatim)."""

    metric: str
    op: str
    bound: float
    text: str

    def holds(self, value: float) -> bool:
        """True when ``value`` respects the bound."""
        if self.op == "<=":
            return value <= self.bound
        if self.op == ">=":
            return value >= self.bound
        if self.op == "<":
            return value < self.bound
        return value > self.bound

    def violation(self) -> str:
        """The text recorded in ``violations`` when the bound is broken, e.g. ``p95>0.1``."""
        return f"{self.metric}{_VIOLATED_AS[self.op]}{self._bound_text()}"

    def _bound_text(self) -> str:
        return self.text.strip().lstrip("<>=").strip()


def parse_threshold(metric: str, text: str) -> Threshold:
    """Parse a cell such as ``0.1``, ``<=0.1``, ``>=500``, ``<2``, ``> 3``.

    A plain number is an upper bound (``<=``). Raises ``ValueError`` with a user-facing
    message when the cell does not parse or the bound is not a finite number.
    """
    s = text.strip()
    op = "<="
    for candidate in _OPS:
        if s.startswith(candidate):
            op, s = candidate, s[len(candidate):].strip()
            break
    try:
        bound = float(s)
    except ValueError:
        raise ValueError(
            f"threshold {text!r} does not parse: expected a number, optionally after <=, >=, < or >"
            + decimal_comma_hint(text)) from None
    if not math.isfinite(bound):
        raise ValueError(f"threshold {text!r} is not a finite number")
    return Threshold(metric, op, bound, text)


def violations(thresholds: tuple[Threshold, ...], values: dict[str, object]) -> list[str]:
    """Return the violated thresholds, in the given order.

    ``values`` maps column names to the values as written to metrics.csv (already rounded
    to the column's precision, so the file agrees with its own ``violations`` column).
    A bounded metric with no numeric value counts as a violation (``p95=missing``).
    """
    out: list[str] = []
    for t in thresholds:
        v = values.get(t.metric)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            out.append(f"{t.metric}=missing")
        elif not t.holds(float(v)):
            out.append(t.violation())
    return out
