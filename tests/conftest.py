"""Fixtures the test files share: the real ml-100k release and the command line."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

DATA_VARIABLE = "ALSMF_DATA"
"""Environment variable naming the folder that holds ``ml-100k`` (the real-data tests)."""

ML100K = Path(os.environ.get(DATA_VARIABLE) or TESTS.parent.parent / "shared" / "data") / "ml-100k"
"""The real ml-100k release: in ``$ALSMF_DATA`` when that is set, else in the shared data
folder beside the repository (``../shared/data/ml-100k`` from its root)."""


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The folder of the real ml-100k release; the test is skipped where it is absent."""
    if not ML100K.is_dir():
        pytest.skip(f"ml-100k not found at {ML100K} (its licence forbids shipping it; set "
                    f"{DATA_VARIABLE} to the folder that holds ml-100k)")
    return ML100K


@pytest.fixture(scope="session")
def cli() -> Callable:
    """``cli(*args)`` runs ``alsmf ARGS`` in-process and returns typer's result (exit code,
    output); every argument is passed as text. Imported here, not at the top, so that test
    runs which never touch the command line do not load it."""
    from tests.cli_helpers import run

    return run
