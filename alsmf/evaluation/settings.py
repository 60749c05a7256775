"""Settings files: the ALS settings chosen by ``alsmf tune``, reused by ``alsmf train``.

The file is JSON::

    {"format": "alsmf-settings", "version": 1,
     "als": {"factors": 64, "reg": 0.1, ...},
     "tuning": {...how they were chosen: method, nested test RMSE...}}

:func:`load_settings` also accepts a plain JSON object of ALS fields, so a hand-written file
works too. Every field is checked against :class:`alsmf.models.als.ALS` (unknown names and values
out of range are refused with the list of valid fields), so a file that loads also trains.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from alsmf.errors import ConfigError
from alsmf.evaluation.space import configure
from alsmf.models.als import ALS

FORMAT = "alsmf-settings"
VERSION = 1


def save_settings(path: str | os.PathLike, als: dict[str, Any],
                  tuning: dict[str, Any] | None = None) -> Path:
    """Write ALS settings (checked by building :class:`ALS`) and how they were found."""
    _check(als, str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"format": FORMAT, "version": VERSION, "als": als, "tuning": tuning or {}}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def load_settings(path: str | os.PathLike) -> dict[str, Any]:
    """The ALS keyword arguments stored in a settings file.

    Raises:
        ConfigError: the file is missing or not JSON, is of another format or version, or
            holds a field :class:`ALS` does not have or a value it refuses.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such settings file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not a JSON settings file ({error})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a JSON object of ALS settings")
    if "format" in document:
        if document["format"] != FORMAT or document.get("version") != VERSION:
            raise ConfigError(f"{path}: unknown settings format {document['format']!r} version "
                              f"{document.get('version')!r} (expected {FORMAT} {VERSION})")
        document = document.get("als")
        if not isinstance(document, dict):
            raise ConfigError(f"{path}: the 'als' entry must be an object of ALS settings")
    _check(document, str(path))
    return dict(document)


def _check(settings: dict[str, Any], where: str) -> None:
    configure(ALS, settings, where)
