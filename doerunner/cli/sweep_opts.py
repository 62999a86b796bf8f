"""The options of ``srd run`` that make cases without a file: a COMMAND after ``--``, swept
over ``-L``/``-P`` (``inputs.sweep``), and the ``-w`` type.

``-L`` and ``-P`` nest in the order written, also when they alternate (``-L a .. -P b ..
-L c ..``): click keeps each option's own values in order but not the order between two
options, so ``OrderedCommand`` records the order the parser met them in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from doerunner.inputs.sweep import Axis, ListAxis, RangeAxis

_ORDER = "srd.option_order"


class OrderedCommand(click.Command):
    """A command that records the names of its options in the order given
    (``ctx.meta["srd.option_order"]``, a repeated option once per use)."""

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)
        parse = parser.parse_args

        def parse_args(args: list[str]) -> Any:
            opts, rest, order = parse(args)
            ctx.meta[_ORDER] = [p.name for p in order]
            return opts, rest, order

        parser.parse_args = parse_args
        return parser


@dataclass(frozen=True, slots=True)
class SweepArgs:
    """What the command line says about a sweep: the words after ``--``, the ``-L``/``-P``
    axes in the order written, the ``--step`` values."""

    commands: tuple[str, ...]
    axes: tuple[Axis, ...]
    steps: tuple[str, ...]


class WarmupType(click.ParamType):
    """``-w``: an integer >= 0 or ``auto``."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int | str:
        if isinstance(value, int) or value == "auto":
            return value  # type: ignore[no-any-return]
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if text.isascii() and text.isdigit():
            return int(text)
        self.fail(f"{value!r}: use an integer >= 0 or auto", param, ctx)


def _axes(lists: Sequence[tuple[str, str]], ranges: Sequence[tuple[str, str, str]]
          ) -> tuple[Axis, ...]:
    """The ``-L`` and ``-P`` axes in the order written on the command line."""
    order = click.get_current_context().meta.get(_ORDER, [])
    found: dict[str, list[Any]] = {
        "sweep_lists": [ListAxis(*v) for v in lists],
        "sweep_ranges": [RangeAxis(*v) for v in ranges]}
    out = [found[name].pop(0) for name in order if found.get(name)]
    return (*out, *found["sweep_lists"], *found["sweep_ranges"])  # none left when recorded


def sweep_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add COMMAND, ``-L``, ``-P`` and ``-D/--step`` to a command, handed to it as one
    ``sweep: SweepArgs`` (checked where the command turns errors into exit codes)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, command: tuple[str, ...], sweep_lists: Any, sweep_ranges: Any,
                steps: tuple[str, ...], **kwargs: Any) -> Any:
        kwargs["sweep"] = SweepArgs(tuple(command), _axes(sweep_lists, sweep_ranges),
                                    tuple(steps))
        return fn(*args, **kwargs)

    for decorate in reversed((
        click.argument("command", nargs=-1),
        click.option("-L", "--parameter-list", "sweep_lists", nargs=2, multiple=True,
                     metavar="NAME V1,V2,..",
                     help="Run COMMAND for each value of {NAME} (repeatable).",),
        click.option("-P", "--parameter-scan", "sweep_ranges", nargs=3, multiple=True,
                     metavar="NAME LO HI",
                     help="Run COMMAND for {NAME} from LO to HI (repeatable).",),
        click.option("-D", "--step", "steps", multiple=True, metavar="STEP",
                     help="-P step (default 1): once for every -P, or once per -P."),
    )):
        wrapper = decorate(wrapper)
    return wrapper
