"""Writing files so that a kill at any moment leaves the old file or the new one, never a torn one;
checking, before any work, that a file could be written where it is asked for; and checking that
a file a user names is a regular file of a readable size before anything reads it
(:func:`check_input_file`, :func:`read_input_file`, :data:`MAX_INPUT_BYTES`)."""
from __future__ import annotations

import os
import stat
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ma2ml.envs.core.errors import UserError


def atomic_write(path: str | Path, write: Callable[[Any], None]) -> Path:
    """Call ``write(binary file)`` on a temporary file next to ``path``, then rename it to ``path``;
    on any error the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def nearest_folder(path: str | Path) -> Path:
    """The nearest existing path at or above ``path``: what must be a writable folder to create it."""
    probe = Path(path).absolute()
    while not probe.exists():
        probe = probe.parent
    return probe


def cannot_create_in(folder: Path) -> str | None:
    """Why no file can be created in ``folder`` (None: one can). It tries an unnamed temporary file,
    which is what counts for root, read-only mounts and immutable folders alike, and leaves nothing."""
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


MAX_INPUT_BYTES = 256 * 2**20
"""The largest file ma2ml reads from a path a user names (256 MiB): a table, a pipeline file, a
raw build file, a checkpoint, a CIFAR batch (CIFAR-100's training batch, the largest, is 155 MB)."""

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def input_file_problem(path: str | Path, limit: int = MAX_INPUT_BYTES) -> str | None:
    """Why ``path`` is not a regular file (a link to one counts) of at most ``limit`` bytes, or None.

    Only ``stat`` is asked, so nothing is opened or read: ``/dev/zero``, a FIFO, a folder or a
    huge file is refused before it can block or fill the memory.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "does not exist"
    except (OSError, ValueError) as exc:  # too long a name, a NUL byte, no permission, a loop of links
        return f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a plain file")
        return f"is {kind}, not a regular file"
    if info.st_size > limit:
        return f"is {info.st_size:,} bytes, more than the {limit:,} bytes ma2ml reads from one file"
    return None


def check_input_file(path: str | Path, what: str, limit: int = MAX_INPUT_BYTES) -> Path:
    """``path`` as a :class:`~pathlib.Path` if :func:`input_file_problem` finds nothing wrong, else one
    :class:`~ma2ml.envs.core.errors.UserError` ``"{what} {path}: {problem}; ..."``."""
    problem = input_file_problem(path, limit)
    if problem is not None:
        raise UserError(f"{what} {path}: {problem}; give a regular file of at most {limit:,} bytes")
    return Path(path)


def read_input_file(path: str | Path, what: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a user-named file, checked like :func:`check_input_file` on the file actually
    opened (opened without blocking, then ``fstat``), and never more than ``limit`` bytes read: a
    file swapped for a FIFO or growing after the check is refused too."""
    check_input_file(path, what, limit)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{what} {path}: is not a regular file; give a regular file of at most {limit:,} bytes")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise UserError(f"{what} {path}: is more than the {limit:,} bytes ma2ml reads from one file")
    return data
