"""The model being served, and its replacement by a new model file without dropping requests.

A request reads :attr:`ModelHolder.current` once, when it starts, and answers from that
:class:`ServedModel` to the end. Replacing the model is one assignment of that attribute, so
the swap is atomic: a request in flight finishes on the old model, every request that starts
after the swap gets the new one, and none waits for the swap or sees half of each.

With ``--reload-on-change`` the service checks the file every :data:`WATCH_SECONDS`. When its
modification time, size or inode changed, the new file is loaded and prepared in a worker
thread (the event loop keeps answering on the old model meanwhile) and then swapped in. A file
that cannot be loaded (a half-copied file, another format) leaves the old model in place; the
failure is logged once and the file is tried again when it changes again. ``alsmf train``
writes its model to a temporary file and renames it over the target, so a model retrained
into the served path is picked up whole.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import anyio.to_thread

from alsmf.catalog import ItemCatalog
from alsmf.errors import AlsmfError, ModelFileError
from alsmf.model import MFModel

WATCH_SECONDS = 1.0
"""How often ``--reload-on-change`` looks at the model file."""

log = logging.getLogger("alsmf.serve")


@dataclass(frozen=True)
class ServedModel:
    """One loaded model and what the service derives from it once.

    Attributes:
        model: the model.
        catalog: its items by id and title.
        path: the file it was loaded from.
        version: 1 for the first model served, one more for each replacement.
        loaded_at: when it was loaded (UTC, ISO 8601).
        file_state: the file's (modification time in ns, size, inode) when it was read.
    """

    model: MFModel
    catalog: ItemCatalog
    path: Path
    version: int
    loaded_at: str
    file_state: tuple[int, int, int]


def file_state(path: Path) -> tuple[int, int, int]:
    """What tells that a file changed: its modification time (ns), size and inode."""
    status = os.stat(path)
    return status.st_mtime_ns, status.st_size, status.st_ino


class ModelHolder:
    """The current :class:`ServedModel`, replaced whole when the model file changes.

    Args:
        path: the model file.
        load: reads a model file (:meth:`MFModel.load`; tests pass their own).

    Raises:
        ModelFileError: the first load fails (the service does not start).
    """

    def __init__(self, path: str | os.PathLike,
                 load: Callable[[Path], MFModel] = MFModel.load) -> None:
        self.path = Path(path)
        self._load = load
        self._failed_state: tuple[int, int, int] | None = None
        self.current: ServedModel = self._read(version=1)

    def reload_if_changed(self) -> bool:
        """Load the file again if it changed since the current model was read, and swap the
        new model in; whether it did. Blocking (it reads the file): call it from a worker
        thread while the service runs."""
        try:
            state = file_state(self.path)
        except OSError:  # being replaced right now, or removed: keep serving the old model
            return False
        if state in (self.current.file_state, self._failed_state):
            return False
        try:
            served = self._read(self.current.version + 1)
        except (AlsmfError, OSError) as error:
            self._failed_state = state
            log.warning("kept model %d: cannot load the changed %s (%s)",
                        self.current.version, self.path, error)
            return False
        self.current = served
        log.warning("now serving model %d from %s", served.version, self.path)
        return True

    async def watch(self, every: float = WATCH_SECONDS) -> None:
        """Check the file every ``every`` seconds and swap in a changed model, until
        cancelled; the loading runs in a worker thread."""
        while True:
            await asyncio.sleep(every)
            await anyio.to_thread.run_sync(self.reload_if_changed)

    def _read(self, version: int) -> ServedModel:
        """Load and prepare the model file as the given version.

        The file's state is taken before it is read: a file replaced while it is read then
        counts as changed, and is read again at the next check.
        """
        try:
            state = file_state(self.path)
        except FileNotFoundError:
            raise ModelFileError(f"{self.path}: no such model file") from None
        model = self._load(self.path)
        model.prepare()
        return ServedModel(model=model, catalog=ItemCatalog.from_model(model), path=self.path,
                           version=version, file_state=state,
                           loaded_at=datetime.datetime.now(datetime.timezone.utc)
                           .isoformat(timespec="seconds"))
