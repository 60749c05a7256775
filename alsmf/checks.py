"""The checks every settings class runs on its fields, written once.

Settings arrive from Python callers, JSON files and the command line, so a field may hold a
bool where a number belongs (``True`` would pass as 1), a NaN, or a numpy scalar; these
predicates say what is acceptable, and :func:`check_settings` turns the first failure into a
:class:`~alsmf.errors.ConfigError` with its message.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, Sequence

import numpy as np

from alsmf.errors import ConfigError


def is_number(value: object) -> bool:
    """A real number that is not a bool (True would pass as 1 otherwise)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def is_finite_number(value: object) -> bool:
    """A real number that is not a bool, NaN or infinite."""
    return is_number(value) and math.isfinite(value)


def is_int_in(value: object, low: int, high: int) -> bool:
    """An integer (not a bool) from ``low`` to ``high``."""
    return (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            and low <= value <= high)


def check_settings(checks: Sequence[tuple[bool, str]]) -> None:
    """Raise :class:`ConfigError` with the message of the first failed check."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def method_params(method: str, settings: Any) -> dict[str, Any]:
    """A method's settings as a JSON-ready dict, its name first as ``"method"``."""
    return {"method": method} | json_ready(settings)


def json_ready(settings: Any) -> dict[str, Any]:
    """A settings dataclass's fields as a JSON-ready dict (numpy scalars become Python's)."""
    fields = settings if isinstance(settings, dict) else asdict(settings)
    return {key: (value.item() if isinstance(value, np.generic) else value)
            for key, value in fields.items()}
