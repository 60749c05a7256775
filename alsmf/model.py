"""The trained model: factors, biases, id maps, predictions. It knows nothing of training.

A rating is predicted as μ + b_u + b_i + p_u·q_i; a model trained without biases has
μ = b_u = b_i = 0 and predicts p_u·q_i.

Unknown users or items (raw ids the model was not trained on) never give NaN: their factors
and bias count as zero, so the prediction falls back to the training mean plus the known bias
(for a model without biases: the training mean of the ratings). A model of ratings never
predicts outside its rating scale (the training ratings' range): predictions are clipped to it.

Lists are ranked by the model's ranking score (:mod:`alsmf.ranking`): for a model with a
ranking head, the head's preference times the predicted rating's place on the scale; for one
without, the predicted rating.

Using the model needs no training data: it keeps each user's training ratings, so it can
recommend unseen items, fold new ratings in by one ALS half-step (the kernel training uses),
explain a prediction by the rated items behind it, and find or group similar users and items.

The module is longer than most because :class:`MFModel` is the one object users hold: every
query it answers is a method here, each a short call to a kernel in :mod:`alsmf.solvers`; its
results are the records of :mod:`alsmf.results`.
"""

from __future__ import annotations

import math
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numba
import numpy as np

from alsmf import store
from alsmf.clustering import cluster_rows
from alsmf.data.ratings import Ratings, lookup_ids
from alsmf.errors import DataError
from alsmf.history import IterationRecord
from alsmf.model_checks import check_model
from alsmf.models.implicit_features import (IMPLICIT_ITEM_FACTORS, IMPLICIT_USER_FACTORS,
                                            gram64, row_terms)
from alsmf.ranking import (RANKING_ITEM_FACTORS, RANKING_USER_FACTORS, check_rank_by,
                           clip_to_scale)
from alsmf.results import (Explanation, FoldedItem, FoldedUser, Groups,  # noqa: F401 (the
                           Recommendations)  # model's results are importable from here too)
from alsmf.rowsystem import RowSystem
from alsmf.solvers.halfstep import HalfStep
from alsmf.solvers.predict import predict_pairs
from alsmf.solvers.topk import top_n_items


@dataclass(eq=False)
class MFModel:
    """A biased matrix-factorization model over raw user and item ids.

    Attributes:
        user_factors: (n_users, k) float64, row u is p_u.
        item_factors: (n_items, k) float64, row i is q_i.
        user_bias, item_bias: b_u and b_i (zeros when ``biases`` is False).
        global_mean: μ when ``biases`` is True (the training mean), else 0.
        fallback_mean: the training mean; the prediction for a pair with nothing known.
        user_ids, item_ids: sorted raw ids; row u of ``user_factors`` is raw id ``user_ids[u]``.
        seen_indptr, seen_indices: CSR of the item indices each user rated in training, so
            recommendations can skip them without the training data being passed again.
        seen_values: float32 rating of each entry of ``seen_indices``, or None (models saved
            before alsmf kept them); needed to update a trained user or item with new ratings
            and to explain a trained user's predictions.
        biases: whether μ, b_u, b_i are part of the model.
        params: how the model was made: the method and its settings, as a record (what
            fold-in and explanations solve is ``system``).
        history: one record per training iteration.
        item_titles, item_genres: per item (aligned with ``item_ids``) when the data came with
            a movies file, else None; commands show them and accept title fragments.
        extras: named numeric arrays that a model variant adds (saved and checksummed with
            the model), for example the implicit-feature item factors or the ranking head's
            vectors.
        system: the least-squares system each row solves (:class:`RowSystem`), which fold-in,
            updates and explanations solve again; None for a model built by hand without one
            (those three then refuse).
        ranking_system: the row system of the ranking head (implicit-feedback rows over the
            head's vectors in ``extras``), which fold-in solves for a new user's preference
            vector; None for a model without a ranking head.

    How each field is saved is in its metadata (:mod:`alsmf.store` reads it).

    A few matrices derived from all of one side's vectors (the implicit features' ZᵀZ, the
    ranking head's YᵀY, the average head user) are computed on first use and kept
    (:meth:`_derived`): replace an array by assigning a new one, not by writing into it.
    """

    user_factors: np.ndarray = field(metadata=store.ARRAY)
    item_factors: np.ndarray = field(metadata=store.ARRAY)
    user_bias: np.ndarray = field(metadata=store.ARRAY)
    item_bias: np.ndarray = field(metadata=store.ARRAY)
    global_mean: float = field(metadata=store.NUMBER)
    fallback_mean: float = field(metadata=store.NUMBER)
    user_ids: np.ndarray = field(metadata=store.ARRAY)
    item_ids: np.ndarray = field(metadata=store.ARRAY)
    seen_indptr: np.ndarray = field(metadata=store.ARRAY)
    seen_indices: np.ndarray = field(metadata=store.ARRAY)
    seen_values: np.ndarray | None = field(default=None, metadata=store.OPTIONAL_ARRAY)
    biases: bool = field(default=True, metadata=store.FLAG)
    params: dict[str, Any] = field(default_factory=dict, metadata=store.JSON)
    history: list[IterationRecord] = field(default_factory=list, metadata=store.HISTORY)
    item_titles: np.ndarray | None = field(default=None, metadata=store.OPTIONAL_TEXT)
    item_genres: np.ndarray | None = field(default=None, metadata=store.OPTIONAL_TEXT)
    extras: dict[str, np.ndarray] = field(default_factory=dict, metadata=store.NAMED_ARRAYS)
    system: RowSystem | None = field(default=None, metadata=store.ROW_SYSTEM)
    ranking_system: RowSystem | None = field(default=None, metadata=store.OPTIONAL_ROW_SYSTEM)

    @property
    def factors(self) -> int:
        """Number of latent factors k."""
        return self.user_factors.shape[1]

    @property
    def predicts_ratings(self) -> bool:
        """Whether predictions are ratings; False for a model of implicit feedback, whose
        predictions are preferences (used or not), fitted to one target whatever the value."""
        return self.system is None or self.system.target is None

    @property
    def has_ranking_head(self) -> bool:
        """Whether lists are ranked by a ranking head's preferences (:mod:`alsmf.ranking`)."""
        return self.ranking_system is not None and RANKING_USER_FACTORS in self.extras

    def lists_by_rating(self, rank_by: str) -> bool:
        """Whether lists asked for with ``rank_by`` are ranked by predicted rating: when asked
        (``"rating"``), or for a model without a ranking head."""
        return rank_by == "rating" or not self.has_ranking_head

    @property
    def rating_scale(self) -> tuple[float, float] | None:
        """(lowest, highest) rating predictions are clipped to; None for a model of implicit
        feedback or one that does not know its scale (saved before alsmf recorded it)."""
        if not self.predicts_ratings or self.system is None:
            return None
        return self.system.rating_scale

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __repr__(self) -> str:
        return (f"MFModel(k={self.factors}, users={self.n_users:,}, items={self.n_items:,}, "
                f"biases={self.biases}, iterations={len(self.history)})")

    # ------------------------------------------------------------------ predictions
    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Predicted ratings for raw user and item ids (scalars or equal-length arrays).

        Unknown ids get the documented fallback, never NaN.
        """
        user_idx = np.atleast_1d(lookup_ids(self.user_ids, users))
        item_idx = np.atleast_1d(lookup_ids(self.item_ids, items))
        if user_idx.shape != item_idx.shape:
            raise ValueError(f"users and items differ in length ({user_idx.size} vs "
                             f"{item_idx.size})")
        return self.predict_indices(user_idx, item_idx)

    def predict_one(self, user: int, item: int) -> float:
        """Predicted rating of one raw (user, item) pair."""
        return float(self.predict(user, item)[0])

    def predict_indices(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Predicted ratings for model indices (clipped to the rating scale); -1 marks an
        unknown user or item."""
        scores = predict_pairs(
            _index_array(user_idx), _index_array(item_idx),
            self.user_factors, self.item_factors, self.user_bias, self.item_bias,
            self.global_mean,
        )
        if not self.biases:  # nothing known about one side: the training mean
            unknown = (user_idx < 0) | (item_idx < 0)
            scores[unknown] = self.fallback_mean
        return clip_to_scale(scores, self.rating_scale)

    def full_matrix(self) -> np.ndarray:
        """The reconstructed rating matrix R̂ (n_users x n_items): μ + b_u + b_i + P·Qᵀ,
        clipped to the rating scale.

        Meant for small examples (``P.dot(Q.T)`` plus the biases); it has n_users·n_items
        entries.
        """
        matrix = self.user_factors @ self.item_factors.T
        matrix += self.global_mean + self.user_bias[:, None] + self.item_bias[None, :]
        return clip_to_scale(matrix, self.rating_scale)

    def rmse(self, ratings: Ratings) -> float:
        """Root mean squared error on ratings with raw ids (unknown ids use the fallback)."""
        users = lookup_ids(self.user_ids, ratings.user_ids[ratings.users])
        items = lookup_ids(self.item_ids, ratings.item_ids[ratings.items])
        residuals = ratings.values - self.predict_indices(users, items)
        return math.sqrt(float(np.mean(np.square(residuals))))

    # ------------------------------------------------------------------ using the model
    def fold_in(self, items: Any, ratings: Any, *, user: Any = None) -> FoldedUser:
        """A vector and bias for a user from (item, rating) pairs, by one ALS half-step.

        The item factors stay fixed, so this is instant. The row's normal equations are solved
        exactly (Cholesky, the kernel of ``ALS(solver="cholesky")``), so the result equals
        what that user half-step of training gives a user with these ratings; the default
        conjugate-gradient solver approaches the same solution by a few steps per iteration.
        Items the model does not know are ignored; an item given twice counts once, with its
        last rating. With a ranking head, the user's preference vector is solved the same
        way, from the head's row system over the same items.

        With ``user`` (a raw id the model was trained on), the user's training ratings are
        updated instead: the new ratings are merged into them (a new rating of an item the
        user already rated replaces the old one) and the half-step is solved on the union.
        With no new ratings this reproduces the trained user's factors (exactly for a model
        trained with ``solver="cholesky"``, since training ends with the user half-step).

        Raises:
            DataError: items and ratings differ in length, a rating is not finite or lies
                outside the scale of the model's training ratings, none of the items is known
                (new user), ``user`` is unknown, the model keeps no training ratings (``user``
                given, model file from an older alsmf), or the system is singular.
        """
        item_idx, values = _known_pairs(self.item_ids, items, ratings, "items")
        self._check_new_ratings(values)
        if user is None:
            if not len(item_idx):
                raise DataError("none of the rated items is known to the model")
        else:
            row = self._index(self.user_ids, user, "user")
            old_items, old_values = self._training_ratings_of_user(row)
            item_idx = np.concatenate([old_items, item_idx])
            values = np.concatenate([old_values, values])
        item_idx, values = _last_rating_per_index(item_idx, values)
        factors, bias = self._solve_one(
            self.item_factors, self.item_bias, item_idx, values,
            self._row_terms(IMPLICIT_ITEM_FACTORS, self.item_factors, item_idx))
        preference = None
        if self.has_ranking_head:
            head_items = self.extras[RANKING_ITEM_FACTORS]
            preference, _ = self._solve_one(
                head_items, np.zeros(self.n_items), item_idx, values,
                self._row_terms(None, head_items, item_idx, self.ranking_system),
                self.ranking_system)
        return FoldedUser(factors, bias, item_idx, values, preference, self.item_ids[item_idx])

    def fold_in_item(self, users: Any, ratings: Any, *, item: Any = None) -> FoldedItem:
        """A vector and bias for an item from (user, rating) pairs, by one ALS half-step.

        The mirror of :meth:`fold_in`: the user factors stay fixed and the item's system is
        the one the item half-step of training solves. Unknown users are ignored; a user given
        twice counts once, with the last rating. With ``item`` (a raw id the model knows), the
        item's training ratings are merged with the new ones, new replacing old.

        Raises:
            DataError: as :meth:`fold_in`, for items.
        """
        user_idx, values = _known_pairs(self.user_ids, users, ratings, "users")
        self._check_new_ratings(values)
        if item is None:
            if not len(user_idx):
                raise DataError("none of the rating users is known to the model")
        else:
            column = self._index(self.item_ids, item, "item")
            positions = np.flatnonzero(self.seen_indices == column)
            old_users = np.searchsorted(self.seen_indptr, positions, side="right") - 1
            user_idx = np.concatenate([old_users, user_idx])
            values = np.concatenate([self._seen_values()[positions].astype(np.float64), values])
        user_idx, values = _last_rating_per_index(user_idx, values)
        factors, bias = self._solve_one(
            self.user_factors, self.user_bias, user_idx, values,
            self._row_terms(IMPLICIT_USER_FACTORS, self.user_factors, user_idx))
        return FoldedItem(factors, bias, user_idx, values, self.user_ids[user_idx])

    def explain(self, user: Any, item: Any, n: int = 5) -> Explanation:
        """The rated items that contributed most to a user's predicted rating of ``item``.

        A user's unknowns x_u = [p_u, b_u] solve A x_u = Σ_j y_j t_j over the items j they
        rated, with y_j = [q_j, 1], t_j = r_uj − μ − b_j (how far the user's rating is above
        the item's baseline) and A = Σ_j y_j y_jᵀ + λ_u I, the system of the user half-step
        (λ_u = λ, or λ times the number of ratings with weighted regularisation; without
        biases y_j = q_j and t_j = r_uj; with value-dependent confidence, y_j t_j, y_j y_jᵀ
        and the contribution below are each times ω_j, the pair's weight). Hence the user's
        part of the prediction of item i splits exactly into one term per rated item:

            b_u + p_u·q_i = y_iᵀ x_u = Σ_j (y_iᵀ A⁻¹ y_j) t_j,

        as in Hu, Koren & Volinsky (2008). ``y_iᵀ A⁻¹ y_j`` is the similarity of i and j in
        the metric of the user's own ratings, so a contribution is large and positive when j
        resembles i and the user rated j above its baseline (or j is unlike i and was rated
        below it). Contributions are in rating points, and all of them add up to
        ``prediction − baseline − unexplained``, where ``unexplained`` is zero up to rounding
        for a fold-in user and for a user of a model trained with ``solver="cholesky"``
        (training ends with the exact user half-step); see :class:`Explanation`.

        Args:
            user: a raw user id the model was trained on, or a :class:`FoldedUser`.
            item: raw item id to explain.
            n: how many rated items to list, largest contribution first.

        Raises:
            DataError: unknown user or item, or the model keeps no training ratings.
        """
        column = self._index(self.item_ids, item, "item")
        if isinstance(user, FoldedUser):
            rated, values, factors, bias = user.items, user.ratings, user.factors, user.bias
        else:
            row = self._index(self.user_ids, user, "user")
            rated, values = self._training_ratings_of_user(row)
            factors, bias = self.user_factors[row], float(self.user_bias[row])
        augmented = self._augmented(self.item_factors[rated])
        weights = self._system().weights(values)  # value-dependent confidence: ω_j y_j
        weighted = augmented if weights is None else weights[:, None] * augmented
        system = augmented.T @ weighted + np.diag(self._ridge(len(rated)))
        terms = self._row_terms(IMPLICIT_ITEM_FACTORS, self.item_factors, rated)
        if terms:
            d = system.shape[0]
            system += terms["extra_gram"][:d, :d]
        target = self._augmented(self.item_factors[column:column + 1])[0]
        try:
            direction = np.linalg.solve(system, target)  # A⁻¹ y_i (A is symmetric)
        except np.linalg.LinAlgError:
            raise DataError(f"the user's system is singular (reg={self._system().reg})") from None
        targets = self._system().targets(values)
        contributions = (weighted @ direction) * (targets - self.global_mean
                                                  - self.item_bias[rated])
        if IMPLICIT_ITEM_FACTORS in self.extras:  # rating j also adds w·z_j to the right side
            z = self.extras[IMPLICIT_ITEM_FACTORS][rated].astype(np.float64)
            contributions += self._system().implicit_weight * (z @ direction[:self.factors])
        order = np.lexsort((rated, -contributions))[:max(n, 0)]
        baseline = self.global_mean + float(self.item_bias[column])
        user_part = bias + float(target[:self.factors] @ np.asarray(factors, dtype=np.float64))
        return Explanation(
            item=int(self.item_ids[column]),
            prediction=baseline + user_part,
            baseline=baseline,
            items=self.item_ids[rated[order]],
            contributions=contributions[order],
            ratings=np.asarray(values, dtype=np.float64)[order],
            unexplained=user_part - float(contributions.sum()),
        )

    def recommend(self, user: Any, n: int = 10, *, exclude_seen: bool = True,
                  candidates: Any = None, rank_by: str = "score") -> Recommendations:
        """The top-n items for a raw user id or a :class:`FoldedUser`, best first.

        Items the user rated in training (or at fold-in) are left out unless
        ``exclude_seen`` is False; ``candidates`` restricts the list to those raw item ids.
        ``rank_by="score"`` ranks by the ranking score (:mod:`alsmf.ranking`), ``"rating"``
        by the predicted rating alone. An unknown user id gets the fallback: the ranking of a
        user with no vector of their own (the items' biases, and with a ranking head the
        average user's preferences).
        """
        check_rank_by(rank_by)
        if isinstance(user, FoldedUser):
            factors, bias, seen = user.factors[None, :], np.array([user.bias]), user.items
            preference = None if user.preference is None else user.preference[None, :]
            rows = None
        else:
            index = int(lookup_ids(self.user_ids, user))
            rows = np.array([index])
            factors, bias, preference = self._query_vectors(rows)
            seen = (np.empty(0) if index < 0 else
                    self.seen_indices[self.seen_indptr[index]:self.seen_indptr[index + 1]])
        excluded = seen if exclude_seen else np.empty(0)
        with _calling_thread_only():
            items, scores = top_n_items(
                factors, bias, self.item_factors, self.item_bias, self.global_mean,
                np.array([0, len(excluded)], dtype=np.int64), excluded.astype(np.int64),
                self._candidate_mask(candidates), n,
                self._ranking(preference, rank_by))
        found = items[0] >= 0
        chosen = items[0][found]
        ratings = None
        if self.predicts_ratings and rows is None:  # the folded-in vector against the items
            ratings = clip_to_scale(predict_pairs(
                np.zeros(len(chosen), dtype=np.int64), chosen, factors, self.item_factors,
                bias, self.item_bias, self.global_mean), self.rating_scale)
        elif self.predicts_ratings:
            ratings = self.predict_indices(np.full(len(chosen), rows[0]), chosen)
        listed = scores[0][found]
        if self.lists_by_rating(rank_by) and ratings is not None:
            listed = ratings
        return Recommendations(self.item_ids[chosen], listed, ratings)

    def recommend_all(self, users: Any = None, n: int = 10, *, exclude_seen: bool = True,
                      candidates: Any = None,
                      rank_by: str = "score") -> tuple[np.ndarray, np.ndarray]:
        """Top-n raw item ids and scores for many users at once (default: every user).

        Returns arrays of shape (users, n), best first; slots without a candidate hold item
        id -1 and score -inf. Ranked as :meth:`recommend` ranks (``rank_by``); scores that are
        predicted ratings are clipped to the rating scale. Unknown user ids get the fallback
        ranking.
        """
        check_rank_by(rank_by)
        rows = np.arange(self.n_users) if users is None else np.atleast_1d(
            lookup_ids(self.user_ids, users))
        known = rows >= 0
        safe = np.where(known, rows, 0)
        factors, bias, preference = self._query_vectors(rows)
        if exclude_seen:
            indptr, indices = _csr_rows(self.seen_indptr, self.seen_indices, safe, known)
        else:
            indptr, indices = np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.int64)
        items, scores = top_n_items(factors, bias, self.item_factors, self.item_bias,
                                    self.global_mean, indptr.astype(np.int64),
                                    indices.astype(np.int64), self._candidate_mask(candidates), n,
                                    self._ranking(preference, rank_by))
        if self.lists_by_rating(rank_by):
            clip_to_scale(scores, self.rating_scale)
        return np.where(items >= 0, self.item_ids[np.maximum(items, 0)], -1), scores

    def similar_items(self, item: Any, n: int = 10) -> Recommendations:
        """The n items whose factors are closest to ``item``'s by cosine, best first."""
        return self._most_similar(self.item_factors, self.item_ids, item, n, "item")

    def similar_users(self, user: Any, n: int = 10) -> Recommendations:
        """The n users whose factors are closest to ``user``'s by cosine, best first."""
        return self._most_similar(self.user_factors, self.user_ids, user, n, "user")

    def cluster_users(self, n_groups: int, seed: int = 0, restarts: int = 5) -> Groups:
        """Split the users into ``n_groups`` groups of similar taste; see :meth:`cluster_items`."""
        return cluster_rows(self.user_factors, self.user_ids, n_groups, seed, restarts)

    def cluster_items(self, n_groups: int, seed: int = 0, restarts: int = 5) -> Groups:
        """Split the items into ``n_groups`` groups by k-means on their L2-normalised factors.

        Normalising first makes the groups follow the cosine that :meth:`similar_items` ranks
        by (direction, not popularity or strength). k-means is run ``restarts`` times from
        k-means++ starts drawn from ``seed`` and the run with the smallest within-group sum of
        squares is kept, so the same seed gives the same groups. Groups are numbered by size,
        largest first.

        Raises:
            ConfigError: ``n_groups`` is not an integer from 1 to the number of items, or
                ``restarts`` is below 1.
        """
        return cluster_rows(self.item_factors, self.item_ids, n_groups, seed, restarts)

    def prepare(self) -> MFModel:
        """Compute now what fold-in, explanations and an unknown user's list keep once per
        model (ZᵀZ, the head's YᵀY, the average head user; see :meth:`_derived`), instead of
        in the first such call; returns the model.

        A service calls it before answering from a newly loaded model, so that no request
        pays for it (tens of milliseconds at ML-20M shape). numpy alone computes these, so it
        is safe in any thread, beside numba kernels running in another.
        """
        for name in (IMPLICIT_ITEM_FACTORS, IMPLICIT_USER_FACTORS):
            if name in self.extras:
                self._derived("gram", self.extras[name], gram64)
        if self.system is not None and self.system.gram_weight > 0:  # implicit feedback
            self._derived("gram", self.item_factors, gram64)
            self._derived("gram", self.user_factors, gram64)
        if self.has_ranking_head:
            self._derived("gram", self.extras[RANKING_ITEM_FACTORS], gram64)
            self._average_preference()
        return self

    # ------------------------------------------------------------------ internals
    def _index(self, ids: np.ndarray, raw: Any, what: str) -> int:
        """Model index of one raw id; DataError when the model does not know it."""
        index = int(lookup_ids(ids, raw))
        if index < 0:
            raise DataError(f"unknown {what} {raw!r}")
        return index

    def _seen_values(self) -> np.ndarray:
        if self.seen_values is None:
            raise DataError("this model keeps no training rating values (saved by an older "
                            "alsmf); retrain it to update or explain trained users and items")
        return self.seen_values

    def _training_ratings_of_user(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Item indices (ascending) and float64 ratings of user ``row`` in training."""
        values = self._seen_values()
        span = slice(self.seen_indptr[row], self.seen_indptr[row + 1])
        return self.seen_indices[span].astype(np.int64), values[span].astype(np.float64)

    def _check_new_ratings(self, values: np.ndarray) -> None:
        """Refuse new ratings the model cannot take: a value that is not a finite number, or,
        for a model of ratings, one outside the scale of its training ratings (a 7 on a 1..5
        scale would pull the user's vector far outside what training ever saw)."""
        if not np.isfinite(values).all():
            raise DataError("a rating is not a finite number (NaN or infinite)")
        if self.rating_scale is None:
            return  # implicit feedback uses no values; an old model file knows no scale
        low, high = self.rating_scale
        outside = values[(values < low) | (values > high)]
        if len(outside):
            raise DataError(f"rating {outside[0]:g} is outside the model's rating scale "
                            f"{low:g} to {high:g} (its training ratings' range)")

    def _system(self) -> RowSystem:
        if self.system is None:
            raise DataError("this model has no row system to solve (it was built without "
                            "one); fold-in, updates and explanations need a trained model")
        return self.system

    def _ridge(self, count: int) -> np.ndarray:
        """The diagonal a user or item row with ``count`` ratings adds to its system."""
        return self._system().ridge(count, self.factors)

    def _row_terms(self, implicit_name: str | None, fixed_factors: np.ndarray,
                   rated: np.ndarray, system: RowSystem | None = None) -> dict[str, np.ndarray]:
        """What a row that rated ``rated`` adds to its ratings' normal equations: the implicit
        features' terms (``implicit_name``: Z for a user, A for an item; None: none) and the
        unobserved part of implicit-feedback ALS, g·(fixed_factors)ᵀ(fixed_factors); none for
        a plain rating model. ``system``: the rows' system (default: the model's)."""
        system = system or self._system()
        terms = self._implicit_terms(implicit_name, rated) if implicit_name else {}
        if system.gram_weight > 0:
            k = fixed_factors.shape[1]
            gram = np.zeros((k + 1, k + 1))
            gram[:k, :k] = system.gram_weight * self._derived("gram", fixed_factors, gram64)
            terms = ({"extra_gram": terms["extra_gram"] + gram, "extra_rhs": terms["extra_rhs"]}
                     if terms else {"extra_gram": gram, "extra_rhs": np.zeros((1, k + 1))})
        return terms

    def _implicit_terms(self, name: str, rated: np.ndarray) -> dict[str, np.ndarray]:
        """The implicit-feature terms of a row that rated ``rated`` (none without them).

        ``name`` is the implicit factors of the other side: Z for a user, A for an item.
        """
        if name not in self.extras:
            return {}
        implicit = self.extras[name]
        with _calling_thread_only():
            gram, rhs = row_terms(np.array([0, len(rated)]), rated, implicit,
                                  self._system().implicit_weight,
                                  self._derived("gram", implicit, gram64))
        return {"extra_gram": gram, "extra_rhs": rhs}

    def _derived(self, name: str, source: np.ndarray,
                 compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``compute(source)``, computed once and kept while ``source`` stays the same.

        Fold-in, explanations and the unknown user's ranking need matrices made from all of
        one side's vectors (FᵀF of the implicit item factors or of the head's item vectors,
        the head's average user), each costing far more than the rest of such a call
        (a pass over a whole side's vectors against one row's work). They stay the same while
        ``source`` does: the same array object (a new one assigned to a field or extra is
        noticed), at the same number of training iterations (training changes its live
        model's arrays in place only while it runs an iteration, and each adds a history
        record). The source
        is held weakly, so an array the model no longer uses is not kept alive here; so is
        the model (the values are kept beside it, not in it, so that ``MFModel(**vars(model))``
        still copies a model).
        """
        kept_here = _KEPT.setdefault(self, {})
        key = f"{name} of {id(source)}"
        kept = kept_here.get(key)
        if kept is None or kept[0]() is not source or kept[1] != len(self.history):
            kept = (weakref.ref(source), len(self.history), compute(source))
            kept_here[key] = kept
        return kept[2]

    def _augmented(self, factors: np.ndarray) -> np.ndarray:
        """Rows y = [q, 1] (or q alone without biases), in float64; the half-step builds the
        same rows, multiplying them in float32 (:mod:`alsmf.solvers.gram`)."""
        factors = factors.astype(np.float64)
        if not self.biases:
            return factors
        return np.hstack([factors, np.ones((len(factors), 1))])

    def _solve_one(self, fixed_factors: np.ndarray, fixed_bias: np.ndarray,
                   indices: np.ndarray, values: np.ndarray, extra: dict[str, np.ndarray],
                   system: RowSystem | None = None) -> tuple[np.ndarray, float]:
        """One row's half-step against the fixed side: the kernel training uses.

        ``system``: the row's system (default: the model's; the ranking head's has no biases
        and no global mean).
        """
        system = system or self._system()
        mean = self.global_mean if system.biases else 0.0  # a system without biases has no μ
        factors, bias = np.zeros((1, fixed_factors.shape[1])), np.zeros(1)
        with _calling_thread_only():
            status = HalfStep(system).run(
                np.array([0, len(indices)], dtype=np.int32), indices.astype(np.int32),
                system.targets(values), fixed_factors, fixed_bias, mean, factors, bias,
                **extra, weights=system.weights(values))
        if status[0]:
            raise DataError(f"the fold-in system is singular (reg={system.reg}); "
                            "give more ratings or use a model trained with reg > 0")
        return factors[0], float(bias[0])

    def _query_vectors(self, rows: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """User factors, biases and ranking-head vectors of model rows; a row of -1 (an
        unknown user) gets zeros and, with a ranking head, the average user's vector."""
        known = rows >= 0
        safe = np.where(known, rows, 0)
        factors = np.where(known[:, None], self.user_factors[safe], 0.0)
        bias = np.where(known, self.user_bias[safe], 0.0)
        preference = None
        if self.has_ranking_head:
            head = self.extras[RANKING_USER_FACTORS]
            preference = head[safe].astype(np.float64)
            if not known.all():
                preference = np.where(known[:, None], preference, self._average_preference())
        return factors, bias, preference

    def _average_preference(self) -> np.ndarray:
        """The ranking head's average user vector, which ranks for an unknown user."""
        return self._derived("mean", self.extras[RANKING_USER_FACTORS],
                             lambda rows: rows.mean(axis=0, dtype=np.float64))

    def _ranking(self, preference: np.ndarray | None,
                 rank_by: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float]] | None:
        """What :func:`top_n_items` ranks by: the ranking head's terms, or None (by rating)."""
        if self.lists_by_rating(rank_by) or preference is None:
            return None
        scale = self.rating_scale or (0.0, 0.0)  # no scale known: rank by preference alone
        return preference, self.extras[RANKING_ITEM_FACTORS], scale

    def _candidate_mask(self, candidates: Any) -> np.ndarray:
        if candidates is None:
            return np.ones(self.n_items, dtype=np.bool_)
        mask = np.zeros(self.n_items, dtype=np.bool_)
        index = np.atleast_1d(lookup_ids(self.item_ids, candidates))
        mask[index[index >= 0]] = True
        return mask

    @staticmethod
    def _most_similar(factors: np.ndarray, ids: np.ndarray, raw: Any, n: int,
                      what: str) -> Recommendations:
        index = int(lookup_ids(ids, raw))
        if index < 0:
            raise DataError(f"unknown {what} {raw!r}")
        norms = np.linalg.norm(factors, axis=1)
        norms[norms == 0] = 1.0
        scores = factors @ factors[index] / (norms * norms[index])
        scores[index] = -np.inf
        n = min(n, len(ids) - 1)
        best = np.argpartition(-scores, n - 1)[:n] if n > 0 else np.empty(0, dtype=np.int64)
        best = best[np.lexsort((best, -scores[best]))]
        return Recommendations(ids[best], scores[best])

    def attach_titles(self, items: np.ndarray, titles: np.ndarray, genres: np.ndarray) -> None:
        """Record titles and genres of raw item ids (items without one get an empty string)."""
        position = lookup_ids(self.item_ids, items)
        found = position >= 0
        self.item_titles = np.full(self.n_items, "", dtype=object)
        self.item_genres = np.full(self.n_items, "", dtype=object)
        self.item_titles[position[found]] = np.asarray(titles)[found]
        self.item_genres[position[found]] = np.asarray(genres)[found]
        self.item_titles = self.item_titles.astype(str)
        self.item_genres = self.item_genres.astype(str)

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the model to one file (no pickle), atomically; returns the path written."""
        return store.save_dataclass(self, path)

    @classmethod
    def load(cls, path: str | Path) -> MFModel:
        """Read a model written by :meth:`save`; refuses unknown or damaged files."""
        model = store.load_dataclass(cls, path)
        check_model(model, path)
        return model


_KEPT: weakref.WeakKeyDictionary[MFModel, dict[str, tuple[weakref.ref, int, np.ndarray]]] = (
    weakref.WeakKeyDictionary())
"""What :meth:`MFModel._derived` keeps for each model, while the model lives."""


def _index_array(indices: np.ndarray) -> np.ndarray:
    """Contiguous int32 or int64 indices as the kernels take them (others become int64)."""
    indices = np.ascontiguousarray(indices)
    return indices if indices.dtype in (np.int32, np.int64) else indices.astype(np.int64)


def _csr_rows(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray,
              keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR made of the given rows (rows where ``keep`` is False come out empty)."""
    starts = indptr[rows]
    counts = np.where(keep, indptr[rows + 1] - starts, 0)
    new_indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=new_indptr[1:])
    offsets = np.arange(new_indptr[-1]) - np.repeat(new_indptr[:-1], counts)
    return new_indptr, indices[np.repeat(starts, counts) + offsets].astype(np.int64)


@contextmanager
def _calling_thread_only() -> Iterator[None]:
    """Run the parallel kernels on the calling thread alone, for one-row calls.

    A single row gains nothing from more threads, but every parallel call waits for all of
    them, which costs milliseconds when the cores are busy (measured on 2 cores with another
    process running: one ``recommend`` 8 ms instead of 2 ms, one fold-in up to 16 ms instead
    of 0.1 ms). numba's thread count belongs to the calling thread, so other threads keep
    theirs.
    """
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _known_pairs(ids: np.ndarray, raw: Any, ratings: Any,
                 what: str) -> tuple[np.ndarray, np.ndarray]:
    """Model indices and float64 ratings of the pairs whose raw id the model knows."""
    index = np.atleast_1d(lookup_ids(ids, raw)).astype(np.int64)
    values = np.atleast_1d(np.asarray(ratings, dtype=np.float64))
    if index.shape != values.shape:
        raise DataError(f"{what} and ratings differ in length ({index.size} vs {values.size})")
    known = index >= 0
    return index[known], values[known]


def _last_rating_per_index(index: np.ndarray,
                           values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One rating per index, the last one given, sorted by index.

    Sorted like the training CSR, so the half-step sums in the same order as training did.
    """
    unique, last = np.unique(index[::-1], return_index=True)
    return unique, values[::-1][last]


