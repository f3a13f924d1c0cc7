"""Writing files so that a kill at any moment leaves the old file or the new one, never a torn one,
and checking, before any work, that a file could be written where it is asked for."""
from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


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
