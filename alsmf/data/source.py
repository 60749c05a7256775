"""Where a command's ratings come from and how its test ratings are held out, as one object.

A :class:`DataSource` holds what the data options of ``alsmf train``, ``evaluate``, ``tune``
and ``compare`` say: a MovieLens release or ratings file, separate train and test files, or
synthetic data; the filters that shrink it; a train/test split or cross-validation folds; how
to read a generic file. :meth:`DataSource.check` refuses every bad combination and value that
can be refused without reading anything, so a command fails in a moment instead of after
loading 20M ratings. :meth:`DataSource.train_test` then gives one split (``train``,
``compare``), or every rating for training and no test part (``train --test-fraction 0`` or
a lone ``--train FILE``: a final model), and :meth:`DataSource.cross_validation_folds` the
folds (``evaluate``, ``tune``). Messages name the command-line options, since that is where
the values come from.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from alsmf.data.filters import check_count, shrink
from alsmf.data.layout import Columns, Feedback
from alsmf.data.movielens import FOLDS, detect_release, load_fold, load_ratings
from alsmf.data.ratings import DuplicatePolicy, Ratings
from alsmf.data.splits import SPLIT_METHODS
from alsmf.data.splits import split as split_ratings
from alsmf.data.synthetic import SHAPES, synthetic_ratings
from alsmf.data.titles import read_titles
from alsmf.errors import AlsmfError, ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from alsmf.evaluation.folds import Fold
    from alsmf.model import MFModel


@dataclass(frozen=True)
class DataSource:
    """The ratings to train and test on, as the data options describe them.

    Give ``data`` (a MovieLens folder or zip, or a CSV/TSV/Parquet ratings file), or
    ``train_file`` with or without ``test_file`` (already split, or every rating to train
    on), or neither for synthetic data shaped like the release ``synthetic``.
    :meth:`train_test` holds out test ratings by ``split`` (a name of
    :data:`~alsmf.data.splits.SPLIT_METHODS` with ``test_fraction`` or ``n_last``, or an
    ml-100k fold of :data:`~alsmf.data.movielens.FOLDS`), none when ``test_fraction`` is 0
    (random and per-user splits); :meth:`cross_validation_folds` deals them into ``folds``
    random folds (a count >= 2, or ``"u1..u5"`` for ml-100k's own).

    The filters (``min_user_ratings`` ... ``sample_users``, as :func:`~alsmf.data.filters.shrink`
    takes them) apply to ``data`` and synthetic data before the split; the ready-made splits
    (separate files, ml-100k folds) are used as they are. ``user_col``, ``item_col``,
    ``rating_col`` (``None``: recognised by their common names, see
    :data:`~alsmf.data.layout.RECOGNISED_NAMES`), ``duplicates`` and ``feedback`` say how to
    read a generic ratings file (a release fixes its own layout; only ``duplicates`` applies
    to it): ``feedback="implicit"`` reads (user, item) pairs, with ``rating_col`` an optional
    count or weight (see :func:`~alsmf.data.readers.read_table`). ``seed`` seeds the
    synthetic data, the filters and the split.
    """

    data: Path | None = None
    train_file: Path | None = None
    test_file: Path | None = None
    synthetic: str = "ml-100k"
    noise: float = 0.8
    split: str = "random"
    test_fraction: float = 0.2
    n_last: int = 1
    folds: str | int = 5
    seed: int = 0
    min_user_ratings: int | None = None
    min_item_ratings: int | None = None
    top_users: int | None = None
    top_items: int | None = None
    sample_users: int | float | None = None
    user_col: str | None = None
    item_col: str | None = None
    rating_col: str | None = None
    duplicates: DuplicatePolicy = "error"
    feedback: Feedback = "explicit"

    @property
    def holds_out_test(self) -> bool:
        """Whether there are test ratings: not with a lone ``train_file``, nor with a
        ``test_fraction`` of 0 (which :meth:`check` allows for the random and per-user
        splits only)."""
        if self.train_file is not None:
            return self.test_file is not None
        return self.test_fraction != 0

    def check(self, test_needed_by: str | None = None) -> None:
        """Refuse what can be refused before reading: options that do not go together (one
        column named for two), an unknown feedback, split or fold choice, counts and
        fractions out of range, and no test part when ``test_needed_by`` (a command, named
        in the message) needs one.

        What plays no part is not checked: with ``train_file``/``test_file`` the split, folds,
        filters and synthetic shape; with an ml-100k fold as the split the filters.

        Raises:
            ConfigError: naming the option or field and the value.
        """
        # an unknown feedback, or one name given for two columns
        Columns(self.user_col, self.item_col, self.rating_col, feedback=self.feedback)
        if self.test_file is not None and self.train_file is None:
            raise ConfigError("--test goes with --train: give the training file too")
        if test_needed_by is not None and not self.holds_out_test:
            how = ("give --test FILE with --train" if self.train_file is not None
                   else "--test-fraction must be above 0 (0 trains on every rating)")
            raise ConfigError(f"{test_needed_by} needs test ratings: {how}")
        if self.duplicates not in get_args(DuplicatePolicy):
            raise ConfigError(f"unknown duplicates policy {self.duplicates!r}; choose one of "
                              f"{', '.join(get_args(DuplicatePolicy))}")
        if self.train_file is not None:
            if self.data is not None:
                raise ConfigError("give either --data or --train/--test, not both")
            return
        self._check_split()
        self._check_folds()
        if self.split not in FOLDS:
            self._check_filters()
        if self.data is None:
            self._check_synthetic()

    def train_test(self, test_needed_by: str | None = None) -> PreparedData:
        """Load (or generate), shrink and split the ratings, after :meth:`check`; without a
        test part (:attr:`holds_out_test`) every rating is for training and the test part is
        None.

        Raises:
            ConfigError: as :meth:`check`.
            DataError: a file cannot be read, or a filter or the split leaves nothing.
        """
        self.check(test_needed_by)
        if self.train_file is not None:
            train = load_ratings(self.train_file, **self._read_options())
            test = (None if self.test_file is None
                    else load_ratings(self.test_file, **self._read_options()))
            # fold files (u1.base) sit in their release's folder, beside its titles
            titles = _release_titles(Path(self.train_file).parent)
            name = (str(self.train_file) if test is None
                    else f"{self.train_file} / {self.test_file}")
            return PreparedData(name, train, test, {}, titles)
        titles = _release_titles(self.data)
        if self.split in FOLDS:
            train, test = load_fold(self.data, self.split)
            return PreparedData(f"{self.data} ({self.split})", train, test, {}, titles)
        # time is only needed to split by it or to keep the latest of a repeated pair
        ratings, name, notes = self._ratings(timestamps=self.split == "temporal")
        if not self.holds_out_test:
            return PreparedData(name, ratings, None, notes, titles)
        train, test = split_ratings(ratings, self.split, test_fraction=self.test_fraction,
                                    n_last=self.n_last, seed=self.seed)
        del ratings  # the whole set goes before PreparedData reorders the training part
        return PreparedData(name, train, test, notes, titles)

    def cross_validation_folds(self) -> tuple[list[Fold], dict[str, Any]]:
        """The cross-validation folds :attr:`folds` asks for, after :meth:`check`, and a
        JSON-ready description of the data (``source``; ``noise`` and ``oracle_rmse`` for
        synthetic data; ``ratings`` and ``folds`` for random folds).

        Raises:
            ConfigError: as :meth:`check`, or separate train and test files (one split
                cannot be dealt into folds).
            DataError: a file cannot be read, or a filter leaves nothing.
        """
        from alsmf.evaluation.folds import movielens_folds, parse_folds, random_folds

        self.check()
        if self.train_file is not None:
            raise ConfigError("--train/--test are one split; cross-validation needs --data or "
                              "synthetic data")
        choice = parse_folds(str(self.folds))
        if choice == "u1..u5":
            return movielens_folds(self.data), {"source": f"{self.data} (u1..u5)"}
        ratings, name, notes = self._ratings(timestamps=False)
        description = {"source": name} | notes | {"ratings": len(ratings), "folds": choice}
        return random_folds(ratings, choice, self.seed), description

    def _ratings(self, timestamps: bool) -> tuple[Ratings, str, dict[str, Any]]:
        """The whole ratings set, shrunk by the filters, with its name and notes (the noise
        and best achievable RMSE of synthetic data). Timestamps are read when ``timestamps``
        or when the latest of a repeated pair is kept."""
        notes: dict[str, Any] = {}
        if self.data is not None:
            ratings = load_ratings(self.data, timestamps=timestamps or self.duplicates == "last",
                                   **self._read_options())
            name = str(self.data)
        else:
            generated = synthetic_ratings(self.synthetic, noise=self.noise, seed=self.seed)
            ratings, name = generated.ratings, f"synthetic {self.synthetic}"
            notes = {"noise": generated.noise, "oracle_rmse": generated.oracle_rmse}
        filters = self._filters()
        if any(value is not None for value in filters.values()):
            ratings = shrink(ratings, seed=self.seed, **filters)
        return ratings, name, notes

    def _read_options(self) -> dict[str, Any]:
        return dict(user_col=self.user_col, item_col=self.item_col, rating_col=self.rating_col,
                    duplicates=self.duplicates, feedback=self.feedback)

    def _filters(self) -> dict[str, Any]:
        return dict(min_user_ratings=self.min_user_ratings,
                    min_item_ratings=self.min_item_ratings, top_users=self.top_users,
                    top_items=self.top_items, sample_users=self.sample_users)

    def _check_split(self) -> None:
        if self.split not in (*FOLDS, *SPLIT_METHODS):
            raise ConfigError(f"unknown split method {self.split!r}; choose one of "
                              f"{', '.join(SPLIT_METHODS)}, or an ml-100k fold "
                              f"({', '.join(FOLDS)})")
        if self.test_fraction == 0 and self.split not in ("random", "user"):
            held_out = ("--n-last ratings per user" if self.split == "temporal"
                        else f"the fold's {self.split}.test")
            raise ConfigError(f"--test-fraction 0 (every rating trains) goes with --split "
                              f"random or user; --split {self.split} holds out {held_out}")
        if self.split in FOLDS:
            if self.data is None:
                raise ConfigError(f"--split {self.split} is an ml-100k fold: give --data PATH "
                                  "to ml-100k")
            return
        if not 0 <= self.test_fraction < 1:  # nan too
            raise ConfigError(f"--test-fraction must be at least 0 (0: no test set) and below "
                              f"1, got {self.test_fraction}")
        if self.split == "temporal":
            check_count("n_last", self.n_last)

    def _check_folds(self) -> None:
        from alsmf.evaluation.folds import parse_folds

        if parse_folds(str(self.folds)) == "u1..u5" and self.data is None:
            raise ConfigError("--folds u1..u5 are ml-100k's folds: give --data PATH to ml-100k")

    def _check_filters(self) -> None:
        """The range checks :func:`~alsmf.data.filters.shrink` makes, with its messages."""
        if self.min_user_ratings is not None or self.min_item_ratings is not None:
            check_count("min_user_ratings", 1 if self.min_user_ratings is None
                         else self.min_user_ratings)
            check_count("min_item_ratings", 1 if self.min_item_ratings is None
                         else self.min_item_ratings)
        if self.top_users is not None:
            check_count("n", self.top_users)
        if self.top_items is not None:
            check_count("m", self.top_items)
        sample = self.sample_users
        if sample is None:
            return
        if isinstance(sample, bool) or not isinstance(sample, numbers.Real):
            raise ConfigError(f"sample_users must be a count or a fraction, got {sample!r}")
        if isinstance(sample, numbers.Integral):
            check_count("n", sample)
        elif not 0 < sample <= 1:
            raise ConfigError(f"sample_users: fraction must be in (0, 1], got {sample}")

    def _check_synthetic(self) -> None:
        if self.synthetic not in SHAPES:
            raise ConfigError(f"unknown release {self.synthetic!r} to imitate; choose one of "
                              f"{', '.join(SHAPES)}")
        if not (isinstance(self.noise, numbers.Real) and 0 <= self.noise < math.inf):
            raise ConfigError(f"noise must be a finite number >= 0, got {self.noise!r}")


class PreparedData:
    """The train and test ratings a command trains on, and where they came from.

    Attributes:
        name: where the ratings came from ("synthetic ml-100k", a path, "PATH (u1)").
        train: the training ratings, compacted and in user order.
        test: the test ratings (in ``train``'s id space or not: matched by raw id), or None
            when every rating trains.
        notes: extra entries of :meth:`summary` (synthetic data: ``noise``, ``oracle_rmse``).
        titles: the release's titles and genres (columns item, title, genres), or None.
    """

    def __init__(self, name: str, train: Ratings, test: Ratings | None, notes: dict[str, Any],
                 titles: pd.DataFrame | None = None) -> None:
        self.name = name
        # the model covers the ids with training ratings; compacting here, once, lets the
        # uncompacted copy go before training (at 20M ratings: 120 MB less at the peak), and
        # in user order the by-user matrix shares the ratings' arrays (150 MB less)
        self.train = train.compact().in_user_order()
        self.test = test
        self.notes = notes
        self.titles = titles

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description: source, rating counts, users, items, then the notes."""
        return {
            "source": self.name,
            "train_ratings": len(self.train),
            "test_ratings": 0 if self.test is None else len(self.test),
            "users": self.train.n_users,
            "items": self.train.n_items,
        } | self.notes

    def attach_titles(self, model: MFModel) -> None:
        """Give ``model`` the release's titles and genres, when the data has them."""
        if self.titles is not None:
            model.attach_titles(*(self.titles[c].to_numpy() for c in ("item", "title", "genres")))


def _release_titles(data: Path | None) -> pd.DataFrame | None:
    """Titles and genres when ``data`` is a MovieLens release with a movies file, else None."""
    if data is None:
        return None
    try:
        detect_release(data)
    except AlsmfError:
        return None  # a generic ratings file: no titles
    return read_titles(data)
