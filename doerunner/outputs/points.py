"""A parameter point in one short line, ``level=9 size=4``: the ``params`` column of the
compare table and the JUnit test names that carry their parameters. One place decides how
a point is written, so the two read alike."""

from __future__ import annotations

from collections.abc import Iterable

POINT_WIDTH = 40  # characters; a longer point is cut, "…" last


def point_text(params: Iterable[tuple[str, str]], width: int | None = POINT_WIDTH) -> str:
    """``name=value`` for each (column, cell) pair with a value, in the order given, joined
    by spaces; ``param_`` is dropped from the names, a value holding a space or a ``"`` is
    written in double quotes (``"`` and ``\\`` escaped with ``\\``). Longer than ``width``
    characters (None: no limit): cut to ``width`` with ``…`` as the last one. The text
    depends on nothing but the pairs: the same point is always written the same way."""
    parts = []
    for name, value in params:
        if value == "":
            continue
        if any(c.isspace() or c == '"' for c in value):
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{name.removeprefix('param_')}={value}")
    text = " ".join(parts)
    if width is not None and len(text) > width:
        text = text[:width - 1] + "…"
    return text
