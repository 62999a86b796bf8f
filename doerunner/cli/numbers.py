"""``Number``: the click type of every float option, checked against its ``bounds.Bound``
(click's ``FloatRange`` lets NaN and infinity through)."""

from __future__ import annotations

from typing import Any

import click

from doerunner.bounds import Bound


class Number(click.ParamType):
    """A float option in ``bound``: ``Invalid value for '--kill-grace': 'inf': use a number
    from 0 to 3600 (seconds)`` otherwise (exit 4)."""

    name = "float"

    def __init__(self, bound: Bound) -> None:
        self.bound = bound

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, float) and self.bound.admits(value):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number: use {self.bound.rule}", param, ctx)
        if not self.bound.admits(number):
            self.fail(f"{value!r}: use {self.bound.rule}", param, ctx)
        return number
