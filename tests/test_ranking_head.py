"""The ranking head of rating models and the rating scale: what lists rank by, and that no
prediction or listed score leaves the scale."""

from __future__ import annotations

import numpy as np
import pytest

from alsmf.data.ratings import Ratings
from alsmf.errors import ConfigError, DataError
from alsmf.model import MFModel
from alsmf.models.als import ALS
from alsmf.models.bayes import BayesianMF, predict_interval
from alsmf.models.implicit_als import ImplicitALS
from alsmf.ranking import RANKING_ITEM_FACTORS, RANKING_USER_FACTORS
from tests.helpers import random_ratings

HEAD = {"rank_factors": 6, "rank_reg": 2.0, "rank_alpha": 1.5, "rank_iterations": 4}


@pytest.fixture(scope="module")
def train() -> Ratings:
    return random_ratings(5)


@pytest.fixture(scope="module")
def model(train) -> MFModel:
    return ALS(factors=4, iterations=6, **HEAD).fit(train)


def test_the_head_is_implicit_als_on_who_rated_what_trained_alongside(train, model):
    """Bit for bit the implicit-feedback model the head's settings train on their own."""
    alone = ImplicitALS(factors=6, reg=2.0, alpha=1.5, iterations=4, seed=0).fit(train)
    assert model.has_ranking_head
    assert np.array_equal(model.extras[RANKING_USER_FACTORS], alone.user_factors)
    assert np.array_equal(model.extras[RANKING_ITEM_FACTORS], alone.item_factors)
    assert model.ranking_system == alone.system
    rating_only = ALS(factors=4, iterations=6, rank_factors=0).fit(train)
    assert not rating_only.has_ranking_head
    # the rating model itself is the same with or without a head
    assert np.array_equal(model.user_factors, rating_only.user_factors)
    assert [r.objective for r in model.history] == [r.objective for r in rating_only.history]


def test_the_head_trains_at_most_as_many_iterations_as_the_model(train):
    short = ALS(factors=4, iterations=2, **HEAD).fit(train)
    two = ImplicitALS(factors=6, reg=2.0, alpha=1.5, iterations=2, seed=0).fit(train)
    assert np.array_equal(short.extras[RANKING_USER_FACTORS], two.user_factors)


def test_fold_in_solves_the_heads_implicit_normal_equations(model):
    """x = (α₀ YᵀY + (c − α₀) Σ_j y_j y_jᵀ + λ I)⁻¹ c Σ_j y_j over the rated items j."""
    items = model.item_ids[[1, 4, 9]]
    folded = model.fold_in(items, [5.0, 3.0, 1.0])
    y = model.extras[RANKING_ITEM_FACTORS].astype(np.float64)
    rated = y[[1, 4, 9]]
    c, alpha0, reg = 1 + HEAD["rank_alpha"], 1.0, HEAD["rank_reg"]
    system = alpha0 * y.T @ y + (c - alpha0) * rated.T @ rated + reg * np.eye(6)
    expected = np.linalg.solve(system, c * rated.sum(axis=0))
    # the kernel multiplies the float32 vectors in float32, summing in float64
    np.testing.assert_allclose(folded.preference, expected, rtol=1e-6)
    # and the folded user's list ranks by that vector
    listed = model.recommend(folded, n=3)
    assert not set(listed.items) & set(items)


def test_unknown_users_rank_by_the_average_users_preferences(model):
    unknown = model.recommend(10**9, n=5)
    average = model.extras[RANKING_USER_FACTORS].mean(axis=0, dtype=np.float64)
    preference = model.extras[RANKING_ITEM_FACTORS].astype(np.float64) @ average
    low, high = model.rating_scale
    rating = np.clip(model.global_mean + model.item_bias, low, high)
    scores = np.maximum(preference, 0) * (rating - low) / (high - low)
    order = np.lexsort((np.arange(len(scores)), -scores))[:5]
    assert np.array_equal(unknown.items, model.item_ids[order])
    np.testing.assert_allclose(unknown.scores, scores[order], rtol=1e-6)


def test_one_five_star_rating_does_not_top_every_list():
    """An item with a single top rating is first by predicted rating for most users, and in
    nobody's top 10 by the ranking score."""
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(200), 30)
    items = np.concatenate([rng.choice(100, 30, replace=False) for _ in range(200)])
    values = np.clip(np.round(3 + rng.normal(0, 1, len(users))), 1, 5)
    users, items, values = np.r_[users, 0], np.r_[items, 100], np.r_[values, 5.0]
    model = ALS(factors=4, iterations=8, rank_factors=8, rank_reg=5.0).fit(
        Ratings.from_arrays(users, items, values))
    lone = 100
    by_rating, _ = model.recommend_all(np.arange(1, 200), n=10, rank_by="rating")
    by_score, _ = model.recommend_all(np.arange(1, 200), n=10)
    assert np.mean(by_rating[:, 0] == lone) > 0.5
    assert not (by_score == lone).any()


def overfitted(train: Ratings) -> MFModel:
    """A model whose unclipped predictions leave the 1..5 scale (little regularisation)."""
    return ALS(factors=8, reg=0.001, reg_bias=0.0, weighted_reg=False, iterations=10,
               solver="cholesky", **HEAD).fit(train)


def test_no_prediction_or_listed_rating_leaves_the_scale(train):
    model = overfitted(train)
    low, high = model.rating_scale
    assert (low, high) == (float(train.values.min()), float(train.values.max()))
    raw = (model.user_factors @ model.item_factors.T + model.global_mean
           + model.user_bias[:, None] + model.item_bias[None, :])
    assert raw.max() > high and raw.min() < low  # the model does overshoot
    full = model.full_matrix()
    np.testing.assert_allclose(full, np.clip(raw, low, high), rtol=1e-12)
    assert full.min() == low and full.max() == high
    users = np.repeat(model.user_ids, model.n_items)
    items = np.tile(model.item_ids, model.n_users)
    predicted = model.predict(users, items)
    assert predicted.min() >= low and predicted.max() <= high
    for rank_by in ("rating", "score"):
        items, scores = model.recommend_all(n=5, rank_by=rank_by)
        scores = scores[items >= 0]  # slots without a candidate hold -inf
        listed = model.recommend(model.user_ids[0], n=5, rank_by=rank_by, exclude_seen=False)
        assert low <= listed.ratings.min() and listed.ratings.max() <= high
        if rank_by == "rating":
            assert low <= scores.min() and scores.max() <= high
            np.testing.assert_array_equal(listed.scores, listed.ratings)
    folded = model.fold_in(model.item_ids[:3], [5.0, 5.0, 1.0])
    listed = model.recommend(folded, n=5, exclude_seen=False)
    assert low <= listed.ratings.min() and listed.ratings.max() <= high


def test_the_bayesian_models_predictions_and_intervals_stay_on_the_scale(train):
    model = BayesianMF(factors=3, sweeps=8, burn_in=2, samples=3, **HEAD).fit(train)
    assert model.has_ranking_head
    low, high = model.rating_scale
    users = np.repeat(model.user_ids[:20], model.n_items)
    items = np.tile(model.item_ids, 20)
    mean, lower, upper = predict_interval(model, users, items, level=0.99)
    assert low <= lower.min() and upper.max() <= high
    assert np.all(lower <= mean) and np.all(mean <= upper)


def test_the_head_and_its_system_survive_save_and_load(model, tmp_path):
    loaded = MFModel.load(model.save(tmp_path / "m.npz"))
    assert loaded.ranking_system == model.ranking_system
    for name in (RANKING_USER_FACTORS, RANKING_ITEM_FACTORS):
        assert np.array_equal(loaded.extras[name], model.extras[name])
    user = model.user_ids[3]
    assert np.array_equal(loaded.recommend(user).items, model.recommend(user).items)


@pytest.mark.parametrize(("settings", "message"), [
    ({"rank_factors": -1}, "rank_factors must be an integer from 0"),
    ({"rank_factors": 2.5}, "rank_factors must be an integer from 0"),
    ({"rank_reg": 0}, "rank_reg must be a finite number > 0"),
    ({"rank_alpha": float("nan")}, "rank_alpha must be a finite number >= 0"),
    ({"rank_iterations": 0}, "rank_iterations must be an integer from 1"),
])
def test_bad_head_settings_are_refused(settings, message):
    for trainer in (ALS, BayesianMF):
        with pytest.raises(ConfigError, match=message):
            trainer(**settings)


def test_rank_by_must_be_score_or_rating(model):
    with pytest.raises(ConfigError, match="rank_by must be one of score, rating"):
        model.recommend(model.user_ids[0], rank_by="popularity")


def test_recommend_and_rate_rank_by_the_score_or_the_rating_on_the_command_line(
        model, tmp_path, cli):
    import json

    path = model.save(tmp_path / "m.npz")
    user = int(model.user_ids[2])
    for rank_by in ("score", "rating"):
        result = cli("recommend", "--model", path, "--user", user, "-n", 4, "--rank-by",
                     rank_by, "--json")
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)["items"]
        expected = model.recommend(user, 4, rank_by=rank_by)
        assert [r["item"] for r in rows] == expected.items.tolist()
        assert [r["predicted"] for r in rows] == pytest.approx(expected.ratings.tolist())
        assert ("score" in rows[0]) == (rank_by == "score")
    bad = cli("recommend", "--model", path, "--user", user, "--rank-by", "popularity")
    assert bad.exit_code == 2 and "rank_by must be one of score, rating" in bad.output
    unknown = cli("recommend", "--model", path, "--user", 10**9, "-n", 2)
    assert unknown.exit_code == 0 and "is not in the model" in unknown.stderr


def test_the_test_rmse_training_reports_is_that_of_the_clipped_predictions():
    """Near the top of the scale half the posterior means overshoot it."""
    rng = np.random.default_rng(0)
    users, items = (grid.ravel() for grid in np.meshgrid(np.arange(30), np.arange(20),
                                                         indexing="ij"))
    values = np.where(rng.random(len(users)) < 0.9, 5.0, 4.0)
    held = rng.random(len(users)) < 0.2
    train = Ratings.from_arrays(users[~held], items[~held], values[~held])
    test = Ratings.from_arrays(users[held], items[held], values[held])
    for trainer in (BayesianMF(factors=3, sweeps=8, burn_in=2, samples=3, rank_factors=0),
                    ALS(factors=3, iterations=4, reg=0.001, rank_factors=0)):
        model = trainer.fit(train, test)
        assert model.history[-1].test_rmse == pytest.approx(model.rmse(test), rel=1e-12)


def test_folded_results_name_their_rated_rows_by_raw_id(model):
    items = model.item_ids[[9, 1, 4]]
    folded = model.fold_in(items, [5.0, 3.0, 1.0])
    assert folded.item_ids.tolist() == sorted(items.tolist())
    assert np.array_equal(model.item_ids[folded.items], folded.item_ids)
    users = model.user_ids[[3, 0]]
    item = model.fold_in_item(users, [4.0, 2.0])
    assert item.user_ids.tolist() == sorted(users.tolist())


def test_a_model_without_a_row_system_refuses_fold_in_in_one_line(model):
    bare = MFModel(**{**vars(model), "system": None, "ranking_system": None, "extras": {}})
    with pytest.raises(DataError, match="has no row system"):
        bare.fold_in(model.item_ids[:2], [4.0, 5.0])
