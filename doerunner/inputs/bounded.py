"""Reading an input file whole, with a bound: what srd reads is a regular file or a pipe
(``--cases <(make_cases)``, a FIFO) no larger than its kind's limit. A character device
(``/dev/zero``, a terminal), a socket or a block device is refused before a byte is read,
and so is a regular file over the limit; a pipe is read up to the limit and refused past it
(FORMAT.md §5). Every refusal is one ``InputError`` ``file:0:0: cannot read: ...``.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from doerunner.errors import InputError, Problem

MAX_CASES_BYTES = 1 << 30
"""A cases.csv: 1 GiB (ten million rows of a hundred bytes)."""
MAX_DESIGN_BYTES = 10 << 20
"""A design YAML: 10 MiB."""
MAX_METRICS_BYTES = 1 << 30
"""A metrics.csv checked whole by ``srd validate``: 1 GiB."""


def size_text(n: int) -> str:
    """``1 GiB``, ``10 MiB``, ``512 KiB``, ``100 bytes``."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


class Refused(OSError):
    """A file srd does not read: not a regular file or a pipe, or larger than the limit
    (``strerror`` says which, in srd's words)."""


def read_open(f: BinaryIO, limit: int) -> bytes:
    """The bytes of the open file ``f``, at most ``limit``. Raises ``Refused`` for a file
    that is not a regular file or a pipe, or is larger (nothing is read then, but from a
    pipe), ``IsADirectoryError`` for a folder, ``OSError`` when reading fails."""
    st = os.fstat(f.fileno())
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        from doerunner.outputs.targets import describe

        raise Refused(errno.EINVAL, f"is {describe(st.st_mode)}, not a regular file or a pipe")
    too_big = Refused(errno.EFBIG, f"larger than {size_text(limit)}, the most srd reads of "
                                   "such a file")
    if stat.S_ISREG(st.st_mode) and st.st_size > limit:
        raise too_big
    data = f.read(limit + 1)  # a pipe or a growing file: never more than this
    if len(data) > limit:
        raise too_big
    return data


def read_limited(path: str | os.PathLike[str], limit: int) -> bytes:
    """``read_open`` of the file at ``path``; ``OSError`` as ``open`` raises it too."""
    with open(path, "rb") as f:
        return read_open(f, limit)


def read_problem(file: str, e: OSError | ValueError) -> InputError:
    """The one ``InputError`` of a file that cannot be read: ``file:0:0: cannot read:
    <why>`` (``no such file``, ``is a directory``, ``is a character device, ...``)."""
    if isinstance(e, IsADirectoryError):
        why = "is a directory"
    elif isinstance(e, FileNotFoundError):
        why = "no such file"
    elif isinstance(e, PermissionError):
        why = "permission denied"
    elif isinstance(e, Refused):
        why = e.strerror
    elif isinstance(e, OSError):
        why = (e.strerror or str(e)).lower()
    else:  # ValueError: e.g. a NUL in the path
        why = "invalid path"
    return InputError([Problem(file, 0, 0, f"cannot read: {why}")])


def read_bounded(path: str | os.PathLike[str], file: str, limit: int) -> bytes:
    """``read_limited``, every failure one ``InputError`` (``read_problem``)."""
    try:
        return read_limited(path, limit)
    except (OSError, ValueError) as e:
        raise read_problem(file, e) from None
