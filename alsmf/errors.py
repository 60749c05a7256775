"""Exceptions that carry a message a user can act on.

Every problem caused by the user's input (a file, a parameter) raises a subclass of
:class:`AlsmfError` whose message names the problem and where it is (file, line or row).
The command line prints that message and exits with code 2; it never shows a traceback for
these errors.
"""

from __future__ import annotations


class AlsmfError(Exception):
    """Base class of errors caused by input the user can fix."""


class DataError(AlsmfError):
    """A ratings file, folder or table cannot be read or is not valid."""


class ConfigError(AlsmfError, ValueError):
    """A hyperparameter or option is out of its allowed range."""


class DownloadError(AlsmfError):
    """A dataset download failed or its checksum did not match."""


class ModelFileError(AlsmfError):
    """A saved model file is missing, truncated or of an unknown format."""


class NumericalError(AlsmfError):
    """A row's normal equations could not be solved (not positive definite or not finite)."""


class UnknownIdError(DataError):
    """A user or item (by raw id or title) that the model does not know."""
