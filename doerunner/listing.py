"""How srd names many things in one line (warnings, summaries): the first ten, then how
many more."""

from __future__ import annotations

from collections.abc import Sequence

SHOWN = 10


def listed(items: Sequence[str], limit: int = SHOWN) -> str:
    """``a, b, c`` — or the first ``limit`` and `` and N more``."""
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
