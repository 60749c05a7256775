"""Named (train, test) folds for cross-validation: k random folds or ml-100k's u1..u5.

A fold carries its name so that every reported number can be traced to the data it came
from ("u3", "fold 2").
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from alsmf.data.movielens import canonical_folds
from alsmf.data.ratings import Ratings
from alsmf.data.splits import kfold
from alsmf.errors import ConfigError


@dataclass(frozen=True)
class Fold:
    """One (train, test) pair of a cross-validation, with its name."""

    name: str
    train: Ratings
    test: Ratings


def random_folds(ratings: Ratings, k: int = 5, seed: int = 0) -> list[Fold]:
    """``k`` folds from :func:`alsmf.data.splits.kfold`: each rating is tested exactly once."""
    return [Fold(f"fold {n}", train, test)
            for n, (train, test) in enumerate(kfold(ratings, k, seed), start=1)]


def movielens_folds(path: str | os.PathLike) -> list[Fold]:
    """ml-100k's five canonical disjoint 80/20 folds u1..u5 (comparable with published figures)."""
    return [Fold(f"u{n}", train, test)
            for n, (train, test) in enumerate(canonical_folds(path), start=1)]


def parse_folds(text: str) -> int | str:
    """The ``--folds`` option: ``"u1..u5"`` (canonical folds) or a fold count K >= 2."""
    text = text.strip()
    if text == "u1..u5":
        return text
    if text.isdigit() and int(text) >= 2:
        return int(text)
    raise ConfigError(f"--folds must be u1..u5 (ml-100k's canonical folds) or a number of random "
                      f"folds >= 2, got {text!r}")
