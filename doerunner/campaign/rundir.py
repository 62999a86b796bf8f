"""The run directory (FORMAT.md §4) before anything runs: every output checked and probed,
the directory locked, what an earlier srd killed in it left running cleaned up.

The checks of ``preflight`` come before anything is created: what is at each output path
(``outputs.targets``: a regular file or nothing is replaced atomically, a character device
or a FIFO written through, anything else refused), outputs that name the input, each other,
the run directory or srd's own files (resolved paths, and the same file where both exist:
hard links), links and special files planted among srd's own files in the run directory.
Then the folders are probed (a probe file, always removed), ``$SRD_HOME`` is made sure of,
and the run directory and its ``logs/`` are created — and removed again when that fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from doerunner.campaign.options import OutputOptions
from doerunner.errors import OutputError, output_error
from doerunner.inputs.case import Case
from doerunner.inputs.sources import KEPT_MARK, KEPT_NAME
from doerunner.inputs.vocabulary import HOOK_LOG_SEPARATOR, HOOKS
from doerunner.outputs import protect, targets
from doerunner.outputs.atomic import atomic_open
from doerunner.outputs.targets import STREAM, check_writable_dir
from doerunner.process import tree as proctree

OWN_FILES = protect.OWN_FILES
"""The files srd writes in a run directory (FORMAT.md §4), never through a link."""
OWN_FOLDERS = protect.OWN_FOLDERS
"""The folders it fills: real folders, holding regular files only."""


def preflight(output: OutputOptions, cases_file: str | None = None) -> None:
    """Fail before anything runs when an output cannot be written or would overwrite an
    input or another output (``OutputError``, exit 4; nothing created): metrics.csv, the
    JUnit report, the run directory (created, with its ``logs/``), ``$SRD_HOME``.
    ``cases_file``: the cases.csv read, which no output may be."""
    outputs = _outputs(output)
    kinds = {option: _kind(option, path) for option, path in outputs}
    if kinds["--out"] == STREAM and output.run_dir is None:
        raise OutputError(f"--out {output.out} is {_what(output.out)}: srd creates no run "
                          "directory beside it; name one with --run-dir")
    run_dir = output.run_directory
    _check_collisions(_files(output, kinds), cases_file, run_dir)
    _check_run_dir(run_dir)
    for option, path in outputs:
        if kinds[option] == STREAM:
            if os.fspath(path) != "-" and not os.access(path, os.W_OK):
                raise OutputError(f"{option} {path}: permission denied")
            if os.fspath(path) != "-":
                _hold(option, path)
        else:
            _probe_file(option, path)
    from doerunner.history import check as check_history
    from doerunner.paths import check_home

    check_home()
    check_history()
    _make_run_dir(run_dir)


def check_input(output: OutputOptions, path: str) -> None:
    """``OutputError`` when an output would overwrite the input ``path`` (a design YAML
    run directly: the cases file ``preflight`` is given is the cases.csv kept from it)."""
    kinds = {option: _kind(option, p) for option, p in _outputs(output)}
    _check_collisions(_files(output, kinds), path,
                      output.run_directory)


def _files(output: OutputOptions, kinds: dict[str, str]) -> list[tuple[str, Path]]:
    """The outputs that are files (not streams), each with its name in messages."""
    return [(f"{option} {path}", path) for option, path in _outputs(output)
            if kinds[option] != STREAM]


def _outputs(output: OutputOptions) -> list[tuple[str, Path]]:
    """The files a run is told to write, by option: ``--out``, ``--junit``."""
    return [("--out", output.out)] + ([("--junit", output.junit)] if output.junit else [])


def _kind(option: str, path: Path) -> str:
    """``targets.kind_of`` of an output (``-`` is standard output: a stream)."""
    if os.fspath(path) == "-":
        return STREAM
    try:
        return targets.kind_of(path)
    except OSError as e:
        raise output_error(f"{option} {path}", e) from None


def _what(path: Path) -> str:
    """What a stream output is, in words."""
    if os.fspath(path) == "-":
        return "standard output"
    return targets.describe(os.stat(path).st_mode)


def _check_collisions(files: list[tuple[str, Path]], cases_file: str | None,
                      run_dir: Path) -> None:
    """No output is the input, another output, the run directory (or holds it), one of
    srd's own files in it, or the run history."""
    inputs = [(f"--cases {cases_file}", Path(cases_file))] if cases_file else []
    for i, (name, path) in enumerate(files):
        for other, other_path in inputs:
            if targets.same_file(path, other_path):
                raise OutputError(f"{name} is the input {other}: give the output its own path")
        for other, other_path in files[:i]:
            if targets.same_file(path, other_path):
                raise OutputError(f"{name} is the same file as {other}: give each output "
                                  "its own path")
        what = protect.owner(path)  # the run history, another run directory's files
        if what is not None:
            raise OutputError(f"{name} is {what}: choose another path")
    for name, path in inputs + files:
        if targets.same_file(run_dir, path):
            raise OutputError(f"the run directory {run_dir} is {name}: give --run-dir another "
                              "path")
        if targets.inside(run_dir, path) is not None:
            raise OutputError(f"the run directory {run_dir} is inside {name}: give --run-dir "
                              "another path")
        rel = targets.inside(path, run_dir)
        own = OWN_FILES + ((KEPT_NAME,) if (name, path) in files else ())
        if rel is not None and (rel.parts[0] in OWN_FOLDERS or rel.as_posix() in own):
            raise OutputError(f"{name} is {rel.as_posix()} of the run directory {run_dir}, "
                              "which srd writes: choose another path")


def _hold(option: str, path: Path) -> None:
    """A FIFO output has a reader now (``targets.hold_stream``), else ``OutputError``."""
    try:
        targets.hold_stream(path)
    except OSError as e:
        raise output_error(f"{option} {path}", e) from None


def _check_run_dir(run_dir: Path) -> None:
    """An existing run directory is a folder whose own files are regular files and whose
    own folders are real ones holding no link, FIFO or device (``OutputError`` naming the
    file: srd neither follows nor replaces them)."""
    try:
        mode = os.stat(run_dir).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise output_error(f"run directory {run_dir}", e) from None
    if not stat.S_ISDIR(mode):
        raise OutputError(f"run directory {run_dir}: is {targets.describe(mode)}, not a "
                          "directory")
    for name in OWN_FILES + OWN_FOLDERS:
        try:
            st = os.lstat(run_dir / name)
        except FileNotFoundError:
            continue
        if name in OWN_FOLDERS and stat.S_ISDIR(st.st_mode):
            _check_folder(run_dir, name)
        elif name in OWN_FOLDERS or not stat.S_ISREG(st.st_mode):
            _planted(run_dir, name, st.st_mode)
        else:
            _single_link(run_dir, name, st)


def _check_folder(run_dir: Path, name: str) -> None:
    """``logs/`` or ``timeseries/``: regular files only — no folder, link, FIFO, socket or
    device — and none of ``logs/`` (written in place) with another hard link."""
    try:
        with os.scandir(run_dir / name) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    _planted(run_dir, f"{name}/{entry.name}", st.st_mode)
                if name == "logs":
                    _single_link(run_dir, f"{name}/{entry.name}", st)
    except OSError as e:
        raise output_error(f"run directory {run_dir}: {name}", e) from None


def _single_link(run_dir: Path, name: str, st: os.stat_result) -> None:
    """A file srd writes in place is written through every hard link: refuse a shared one."""
    if st.st_nlink > 1:
        raise OutputError(f"run directory {run_dir}: {name} has {st.st_nlink} hard links: "
                          "srd writes no file of its run directory that another name "
                          "shares: remove it")


def _planted(run_dir: Path, name: str, mode: int) -> None:
    made = "a folder srd made" if name in OWN_FOLDERS else "a regular file srd wrote"
    raise OutputError(f"run directory {run_dir}: {name} is {targets.describe(mode)}, not "
                      f"{made}: remove it")


def _probe_file(option: str, path: Path) -> None:
    """``path`` can be written: not a directory, in a folder that exists and takes files
    (the folder of the file a link names), its temporary file's name not too long."""
    path = targets.real_target(path)
    if not path.parent.is_dir():
        raise OutputError(f"{option} {path}: directory {str(path.parent)!r} does not exist")
    try:
        targets.check_name(path)
        check_writable_dir(path.parent)
    except OSError as e:
        raise output_error(f"{option} {path}: cannot write in {str(path.parent)!r}", e) \
            from None


def _make_run_dir(run_dir: Path) -> None:
    """Create the run directory and its ``logs/`` and probe both; what was created is
    removed again when that fails (``OutputError``)."""
    missing = [d for d in (run_dir / "logs", run_dir, *run_dir.parents) if not d.exists()]
    made: list[Path] = []
    try:
        for d in reversed(missing):
            d.mkdir()
            made.append(d)
        check_writable_dir(run_dir)
        check_writable_dir(run_dir / "logs")
    except OSError as e:
        for d in reversed(made):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise output_error(f"run directory {run_dir}", e) from None


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run directory: two srd processes never share a
    journal (``OutputError`` when another run holds it)."""
    try:
        fd = targets.open_own(run_dir / ".lock", flags=os.O_RDWR)
    except OSError as e:
        raise output_error(f"run directory {run_dir}: .lock", e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OutputError(f"run directory {run_dir} is in use by another srd run; "
                              "give this run its own --out or --run-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def kill_leftovers(run_dir: Path) -> list[int]:
    """Kill what an earlier srd killed in this run directory left running (its cases carry
    the directory in their environment); the pids killed. Call with the lock held."""
    return proctree.kill_leftovers(str(run_dir.resolve()))


def check_kept_cases(run_dir: Path) -> None:
    """Before anything is created: refuse (``OutputError``) a run directory holding a
    ``cases.csv`` that does not start with ``KEPT_MARK``: that file is someone's own
    cases, which keeping a sweep's or a design's generated cases would replace."""
    path = run_dir / KEPT_NAME
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise OSError
        with open(path, "rb") as f:
            kept = f.read(len(KEPT_MARK.encode())) == KEPT_MARK.encode()
    except FileNotFoundError:
        return
    except OSError:
        kept = False
    if not kept:
        raise OutputError(f"run directory {run_dir} holds a {KEPT_NAME} that srd did not "
                          "write: give this run its own --run-dir")


def keep_cases(run_dir: Path, text: str) -> None:
    """Write the generated cases as ``<run_dir>/cases.csv`` (atomically; with the lock
    held), so that ``srd run --cases`` it runs the same cases again; its first row is
    ``KEPT_MARK``, a comment, which says srd may replace it."""
    try:
        with atomic_open(run_dir / KEPT_NAME, "w", encoding="utf-8", newline="") as f:
            f.write(f"{KEPT_MARK}\n{text}")
    except OSError as e:
        raise output_error(f"run directory {run_dir}", e) from None


def clear_logs(run_dir: Path, cases: Sequence[Case]) -> None:
    """Remove the logs (``logs/*.stdout|.stderr``) an earlier run left there that belong to
    no case of this run, or to a hook its case no longer has: a log in ``logs/`` is always
    this run's. Those of this run's cases stay, to be written over in place (a file created
    anew costs several times more than one overwritten, on the per-case path); a stream
    that prints nothing removes its own (``process.capture``). A link is removed, never
    followed."""
    logs = run_dir / "logs"
    try:
        entries = list(os.scandir(logs))
    except OSError:
        return
    if not entries:
        return
    stems = {c.case_id for c in cases}
    stems.update(f"{c.case_id}{HOOK_LOG_SEPARATOR}{hook}" for c in cases for hook in HOOKS
                 if getattr(c, hook, None) is not None)
    for entry in entries:
        stem, dot, stream = entry.name.rpartition(".")
        if not dot or stream not in ("stdout", "stderr") or stem in stems:
            continue
        if entry.is_dir(follow_symlinks=False):
            continue
        try:
            os.unlink(entry.path)
        except OSError as e:
            raise output_error(str(entry.path), e) from None
