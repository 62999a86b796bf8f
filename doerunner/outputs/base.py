"""The output-format family: one small base class, and the one writer that does the file I/O.

A format turns data into text or bytes on a stream it is given (``OutputFormat.write``) and
never opens a file; it is registered by ``NAME`` in ``outputs.registry.FORMATS``. ``write_output``
opens the target — a temporary file beside it that replaces it atomically when the format
has written everything (``atomic``), or standard output — and turns an ``OSError`` into the
``OutputError`` that names the output. The registry of formats is ``outputs.registry``.
Formats import their heavy libraries (pandas, matplotlib) when they write, so the registry
costs nothing at start-up.
"""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from typing import IO, Any, ClassVar

from doerunner.errors import output_error
from doerunner.outputs.atomic import atomic_open

Target = str | os.PathLike[str] | None


class OutputFormat(ABC):
    """One output format. ``BINARY``: it writes bytes (else text, UTF-8, ``\\n`` kept as
    written); ``EXPORT``: ``srd export --format`` offers it."""

    NAME: ClassVar[str]
    BINARY: ClassVar[bool] = False
    EXPORT: ClassVar[bool] = False

    @abstractmethod
    def write(self, data: Any, stream: IO[Any]) -> None:
        """Serialise ``data`` onto ``stream``."""


def write_to(fmt: OutputFormat, data: Any, target: Target, **open_kwargs: Any) -> None:
    """Write ``data`` in ``fmt`` to ``target`` atomically, or to standard output when
    ``target`` is None or ``-``. Raises ``OSError`` when it cannot be written (the target is
    then left as it was). ``open_kwargs`` go to a text stream (``errors=``)."""
    if target is None or os.fspath(target) == "-":
        stream: IO[Any] = sys.stdout.buffer if fmt.BINARY else sys.stdout
        fmt.write(data, stream)
        stream.flush()
        return
    kwargs: dict[str, Any] = {} if fmt.BINARY else {"encoding": "utf-8", "newline": "",
                                                     **open_kwargs}
    with atomic_open(target, "wb" if fmt.BINARY else "w", **kwargs) as f:
        fmt.write(data, f)


def write_output(fmt: OutputFormat, data: Any, target: Target, label: str | None = None,
                 **open_kwargs: Any) -> None:
    """``write_to``, with an ``OSError`` turned into the ``OutputError``
    ``"<label, else the target>: <reason>"`` (a closed standard output is left to the
    caller: ``BrokenPipeError``)."""
    try:
        write_to(fmt, data, target, **open_kwargs)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise output_error(label or os.fspath(target or "-"), e) from None
