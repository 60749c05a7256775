"""Refusing work that cannot fit in memory before allocating it.

Training on more data or more factors than the machine holds would otherwise end in a swap
storm or the kernel's out-of-memory killer, with nothing said. ALS's memory is predictable from
the shapes (two CSR copies of the ratings, the factor matrices and their snapshot), so
:func:`check_fits` compares an estimate with the memory available now and refuses clearly.
"""

from __future__ import annotations

import os

from alsmf.errors import ConfigError


def available_bytes() -> int | None:
    """Memory available to a new allocation now (Linux: MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def training_bytes(n_ratings: int, n_users: int, n_items: int, factors: int,
                   factor_bytes: int, implicit: bool = False) -> int:
    """Estimated memory of a training run beyond the input ratings.

    Two CSR copies of the ratings (by user and by item: 4-byte index and value each), the user
    and item factors and biases twice (the current ones and the snapshot kept to undo an
    interrupted iteration), and with implicit features their two factor matrices (twice too)
    and each side's right-hand-side terms, which the objective reuses.
    """
    rows = n_users + n_items
    csr = 2 * n_ratings * 8 + 2 * rows * 8
    factors_and_snapshot = 2 * rows * (factors + 1) * factor_bytes
    extra = 2 * rows * factors * factor_bytes + rows * (factors + 1) * factor_bytes \
        if implicit else 0
    return csr + factors_and_snapshot + extra


def check_fits(needed: int, what: str, hint: str) -> None:
    """Raise ConfigError when ``needed`` bytes exceed the memory available now."""
    available = available_bytes()
    if available is not None and needed > available:
        raise ConfigError(f"{what} needs about {needed / 2**30:.1f} GB of memory and "
                          f"{available / 2**30:.1f} GB is available; {hint}")
