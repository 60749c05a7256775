"""What the command-line tests share: invoking ``alsmf`` and a small ratings file."""

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from alsmf.cli import app

runner = CliRunner()


def run(*args, columns: int | None = None):
    """``alsmf ARGS`` in-process; every argument is passed as text. ``columns``: the terminal
    width the tables are drawn for (default: rich's 80 columns off a terminal)."""
    env = None if columns is None else {"COLUMNS": str(columns)}
    return runner.invoke(app, [str(a) for a in args], env=env)


def write_ratings_csv(path: Path, n_users: int, per_user: int, n_items: int) -> Path:
    """``per_user`` random ratings 1..5 for each of ``n_users`` users (ids 1..) over items
    100 .. 100 + ``n_items``, as a user,item,rating CSV."""
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(1, n_users + 1), per_user)
    items = np.concatenate([rng.choice(np.arange(100, 100 + n_items), per_user, replace=False)
                            for _ in range(n_users)])
    ratings = rng.integers(1, 6, len(users))
    lines = ["user,item,rating"] + [f"{u},{i},{r}" for u, i, r in zip(users, items, ratings)]
    path.write_text("\n".join(lines) + "\n")
    return path
