"""Writing an output file so that a crash, a full disk or a symlink never costs a good file.

Every file alsmf writes (model files, checkpoints, figures) is written to a temporary file in
the target's folder, flushed to disk, then renamed over the target. A reader sees the old
file or the new one, never a part; a failed write leaves the old one in place; and a symbolic
link at the target is replaced by the new file rather than followed (writing through it would
overwrite whatever it points to, outside the output folder).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def replace_atomically(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write`` on a new binary file that then replaces ``path``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
