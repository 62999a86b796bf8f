"""What is at an output's path, decided once, and how srd opens what it writes (FORMAT.md §5).

- A path srd is told to write (``--out``, ``--junit``, ``report --html``, ``export --out``)
  that is a regular file, or nothing yet, is written atomically: a temporary file beside it
  renamed over it (``atomic``); when the path is a symbolic link, the file the link names is
  replaced and the link kept. A character device or a FIFO (``/dev/null``, ``/dev/stdout``,
  a named pipe) is written through: opened for writing, never created, truncated or
  replaced. Anything else — a directory, a socket, a block device — is refused.
- srd's own files in its run directory are never written through a symbolic link, nor
  into a FIFO or a device: ``open_own`` opens them (``O_NOFOLLOW``), the atomic writes
  rename over whatever is there.
- A probe file, made to learn whether a folder takes files, never stays behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePath
from typing import IO, Any

REGULAR = "regular"
"""A regular file, or nothing yet: written atomically."""
STREAM = "stream"
"""A character device or a FIFO: written through."""

PathLike = str | os.PathLike[str]
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_OWN_FLAGS = os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"),
          (stat.S_ISREG, "a regular file"))


def describe(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words: ``a character device``."""
    return next((what for test, what in _KINDS if test(mode)), "a special file")


def refused(mode: int, path: PathLike | None = None) -> OSError:
    """The error of an output path holding what srd never writes to (``is a socket: ...``)."""
    if stat.S_ISDIR(mode):
        return IsADirectoryError(errno.EISDIR, "is a directory", path)
    return OSError(errno.EINVAL, f"is {describe(mode)}: srd writes to a regular file, a "
                                 "character device or a FIFO", path)


def kind_of(path: PathLike) -> str:
    """``REGULAR`` (a regular file, or nothing yet) or ``STREAM`` (a character device or a
    FIFO), links followed. Raises ``OSError`` for anything else (``refused``), or when the
    path cannot be looked at."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return REGULAR
    if stat.S_ISREG(mode):
        return REGULAR
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return STREAM
    raise refused(mode, path)


def real_target(path: PathLike) -> Path:
    """Where a regular output is replaced: the file a symbolic link names (the link kept),
    else ``path``."""
    if os.path.islink(path):
        real = Path(os.path.realpath(path))
        if real.name:
            return real
    return Path(path)


_HELD: dict[tuple[int, int], int] = {}
"""FIFOs checked for a reader before anything ran, held open for writing until written."""


def _open_fifo(path: PathLike) -> int:
    """Open a FIFO for writing without waiting; ``OSError`` (ENXIO) ``FIFO has no reader``."""
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | _CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "FIFO has no reader", os.fspath(path)) from None
        raise


def hold_stream(path: PathLike) -> None:
    """Before anything runs: a FIFO output must have a reader (``OSError`` ``FIFO has no
    reader``, never a wait), and is held open for writing from then on, so that its reader
    sees no end before ``open_stream`` writes it. Anything else is left alone."""
    st = os.stat(path)
    if stat.S_ISFIFO(st.st_mode):
        fd = _open_fifo(path)
        old = _HELD.pop((st.st_dev, st.st_ino), None)
        _HELD[(st.st_dev, st.st_ino)] = fd
        if old is not None:
            os.close(old)


@contextlib.contextmanager
def open_stream(path: PathLike, mode: str, **kwargs: Any) -> Iterator[IO[Any]]:
    """Write through a character device or a FIFO: opened for writing, never created,
    truncated or replaced; a FIFO, the one ``hold_stream`` holds or opened anew, must have
    a reader (``OSError`` ``FIFO has no reader``: never a wait), then is written in
    blocking mode. ``OSError`` when ``path`` is no longer one."""
    st = os.stat(path)
    if stat.S_ISFIFO(st.st_mode):
        fd = _HELD.pop((st.st_dev, st.st_ino), None)
        fd = _open_fifo(path) if fd is None else fd
        os.set_blocking(fd, True)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | _CLOEXEC)
    try:
        st_mode = os.fstat(fd).st_mode
        if not (stat.S_ISCHR(st_mode) or stat.S_ISFIFO(st_mode)):
            raise OSError(errno.EINVAL, f"changed while srd opened it: now {describe(st_mode)}",
                          os.fspath(path))
        f = open(fd, mode, **kwargs)  # noqa: SIM115 - closed by the with below
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f
        f.flush()


def open_own(path: PathLike, mode: int = 0o644, flags: int = os.O_WRONLY) -> int:
    """Open (creating it) one of srd's own files in its run directory; its descriptor.
    A symbolic link there is never followed and anything but a regular file is refused —
    a FIFO is never waited on: ``OSError`` naming the file."""
    try:
        fd = os.open(path, flags | _OWN_FLAGS, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "is a symbolic link: srd writes no file of its run "
                                       "directory through a link", os.fspath(path)) from None
        if e.errno == errno.ENXIO:  # a FIFO without a reader (O_NONBLOCK), a socket
            try:
                st_mode = os.lstat(path).st_mode
            except OSError:
                raise e from None
            raise OSError(errno.ENXIO, f"is {describe(st_mode)}, not a regular file",
                          os.fspath(path)) from None
        raise
    try:
        st_mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(st_mode):
            raise OSError(errno.EINVAL, f"is {describe(st_mode)}, not a regular file",
                          os.fspath(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_writable_dir(directory: Path) -> None:
    """Raise ``OSError`` unless a file can be created (and written, and removed) in
    ``directory``. The probe file is removed whatever happens."""
    probe = directory / f".srd-probe.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(probe)  # a probe of a killed srd that had this pid
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC, 0o600)
    try:
        os.write(fd, b"srd")
        os.fsync(fd)
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(probe)


def check_name(path: Path) -> None:
    """Raise ``OSError`` (ENAMETOOLONG) when the temporary file of an atomic write of
    ``path`` (``.<name>.<pid>.tmp``, 16 bytes more than the name) would not fit its
    folder's name limit."""
    try:
        limit = os.pathconf(path.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        return
    if len(os.fsencode(path.name)) + 16 > limit:
        raise OSError(errno.ENAMETOOLONG, f"file name longer than {limit - 16} bytes")


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name one file: the same path once links and ``..`` are
    resolved, or the same file where both exist (hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def inside(path: PathLike, folder: PathLike) -> PurePath | None:
    """``path`` relative to ``folder`` when it lies strictly inside it (links resolved),
    else None."""
    p, f = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    if p != f and p.is_relative_to(f):
        return p.relative_to(f)
    return None


def clash(output: PathLike, inputs: Iterable[PathLike]) -> PathLike | None:
    """The first of ``inputs`` that ``output`` would overwrite (``same_file``), else None.
    A character device or a FIFO overwrites nothing."""
    if os.fspath(output) == "-" or _is_stream(output):
        return None
    return next((i for i in inputs if same_file(output, i)), None)


def _is_stream(path: PathLike) -> bool:
    try:
        return kind_of(path) == STREAM
    except OSError:
        return False
