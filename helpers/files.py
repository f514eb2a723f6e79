"""Atomic file writes: a file is either complete or untouched. Infrastructure, not taught in a lesson."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; when the block ends, rename it over `path`.

    A rename is all-or-nothing, so a crash, a Ctrl-C or an exception in the block leaves `path` as it
    was (the temporary file is removed) and never half-written. The file gets the permissions a plain
    open() would give it (0666 less the umask), not the private 0600 of a temporary file, so that others
    on a shared machine can read checkpoints, token files and bundles.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.chmod(tmp_name, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
