"""Writing a file so that no reader ever sees half of it: the one atomic-write helper."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

READABLE = 0o644  # a declarant's SFTP account reads its acknowledgements; others read samples


def write_atomically(
    path: Path, data: bytes | Iterable[bytes | memoryview], *, mode: int = READABLE
) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target:
    a reader never sees half a file, and rewriting the same one is harmless. The mode is set
    explicitly: mkstemp makes 0600 files, whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as out:
            for chunk in [data] if isinstance(data, bytes) else data:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
