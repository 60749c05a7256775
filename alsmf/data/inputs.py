"""What every reader checks of an input path that is not a folder before it opens it.

A reader looks at a file more than once (its first bytes to tell the format, then the whole
file; a zip's directory at its end), maps it into memory and takes its size, none of which a
pipe (``/dev/stdin``, a FIFO, a shell's ``<(...)``) or a device allows: its bytes can be read
only once and its size is unknown, so it would read as empty. Such a path is refused with one
line that says to save the data to a file. Opening a pipe with no writer also blocks for
ever, so the check looks at the path without opening it. A file that cannot be opened
(permission denied) is refused with the system's reason rather than a traceback.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from alsmf.errors import DataError

_KINDS = ((stat.S_ISFIFO, "a pipe"), (stat.S_ISCHR, "a terminal or character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def require_regular_file(path: Path, name: str) -> int:
    """The size of ``path``, a regular file that can be opened for reading.

    ``name`` is the path as messages show it. A missing path and a folder are the caller's
    to explain (each says what it expected there); this refuses everything else that is not
    a readable regular file.

    Raises:
        DataError: a pipe, device or socket, or a file that cannot be opened.
    """
    try:
        status = path.stat()
    except OSError as error:
        raise DataError(f"{name}: cannot read ({error.strerror or error})") from None
    if not stat.S_ISREG(status.st_mode):
        kind = next((kind for test, kind in _KINDS if test(status.st_mode)), "not a file")
        raise DataError(f"{name}: is not a regular file ({kind}); save the data to a file "
                        "first")
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as error:
        raise DataError(f"{name}: cannot read ({error.strerror or error})") from None
    return status.st_size
