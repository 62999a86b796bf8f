"""The format reference (``FORMAT.md``, shipped in the package): ``srd format`` prints it."""

from __future__ import annotations

import re
from importlib import resources

from doerunner.errors import InputError

_HEADING = re.compile(r"^## (\d+)\. (.*)$", re.M)


def reference_text() -> str:
    """The whole of FORMAT.md."""
    return resources.files("doerunner").joinpath("FORMAT.md").read_text(encoding="utf-8")


def section_text(section: str | None = None) -> str:
    """The whole reference, or one ``## N. Title`` section of it: ``section`` is its number
    or a word of its title (case-insensitive). ``InputError`` when none matches."""
    text = reference_text()
    if not section:
        return text
    heads = list(_HEADING.finditer(text))
    word = section.strip().lower()
    for n, m in enumerate(heads):
        if word == m.group(1) or word in m.group(2).lower():
            end = heads[n + 1].start() if n + 1 < len(heads) else len(text)
            return text[m.start():end].rstrip() + "\n"
    titles = ", ".join(f"{m.group(1)} {m.group(2)}" for m in heads)
    raise InputError(f"no section {section!r} in the format reference (sections: {titles})")
