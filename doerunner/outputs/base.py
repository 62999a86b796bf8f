"""The output-format family: one small base class, and the one writer that does the file I/O.

A format turns data into text or bytes on a stream it is given (``OutputFormat.write``) and
never opens a file; it is registered by ``NAME`` in ``outputs.registry.FORMATS``. ``write_output``
opens the target — a temporary file beside it that replaces it atomically when the format
has written everything (``atomic``), a character device or FIFO written through, or
standard output; what else may be at the path is ``outputs.targets``'s to decide — and
turns an ``OSError`` into the ``OutputError`` that names the output. The registry of
formats is ``outputs.registry``. Formats import their heavy libraries (pandas, matplotlib)
when they write, so the registry costs nothing at start-up.
"""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from typing import IO, Any, ClassVar

from doerunner.errors import output_error
from doerunner.outputs import targets
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


def write_to(fmt: OutputFormat, data: Any, target: Target, *, own: bool = False,
             **open_kwargs: Any) -> None:
    """Write ``data`` in ``fmt`` to ``target``, or to standard output when ``target`` is
    None or ``-``. A regular file (or none yet) is replaced atomically — through a symbolic
    link, the file it names; a character device or a FIFO is written through; anything
    else is refused (``outputs.targets``). ``own``: one of srd's own files in its run
    directory, always replaced atomically: whatever is at the path — a link, a FIFO — is
    never followed or written into. Raises ``OSError`` when it cannot be written (the target
    is then left as it was). ``open_kwargs`` go to a text stream (``errors=``)."""
    if target is None or os.fspath(target) == "-":
        stream: IO[Any] = sys.stdout.buffer if fmt.BINARY else sys.stdout
        fmt.write(data, stream)
        stream.flush()
        return
    kwargs: dict[str, Any] = {} if fmt.BINARY else {"encoding": "utf-8", "newline": "",
                                                     **open_kwargs}
    mode = "wb" if fmt.BINARY else "w"
    if not own and targets.kind_of(target) == targets.STREAM:
        with targets.open_stream(target, mode, **kwargs) as f:
            fmt.write(data, f)
        return
    with atomic_open(target if own else targets.real_target(target), mode, **kwargs) as f:
        fmt.write(data, f)


def write_output(fmt: OutputFormat, data: Any, target: Target, label: str | None = None,
                 **open_kwargs: Any) -> None:
    """``write_to``, with an ``OSError`` turned into the ``OutputError``
    ``"<label, else the target>: <reason>"`` (a closed standard output is left to the
    caller: ``BrokenPipeError``). Refuses (``OutputError``) a target that is one of srd's
    own files (``protect.owner``: the run history, a run directory's files) unless ``own``."""
    if target is not None and os.fspath(target) != "-" and not open_kwargs.get("own"):
        from doerunner.outputs.protect import refuse

        refuse(label or os.fspath(target), target)
    try:
        write_to(fmt, data, target, **open_kwargs)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise output_error(label or os.fspath(target or "-"), e) from None
