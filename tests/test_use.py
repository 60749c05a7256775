"""Using a trained model: recommendations, similar items/users, fold-in of new users and
items, updates of trained users, explanations, groups."""

import numpy as np
import pytest

from alsmf.data.ratings import Ratings
from alsmf.errors import ConfigError, DataError
from alsmf.model import _KEPT, FoldedUser, MFModel
from alsmf.rowsystem import RowSystem
from alsmf.solvers.halfstep import HalfStep
from alsmf.models.als import ALS
from tests.helpers import random_ratings
from tests.tolerances import EXACT_APPROX, EXACT_ATOL


def keep_training_values(model, train):
    """The model as training leaves it once train.py fills ``seen_values``; checks it if so."""
    values = train.by_user().data.astype(np.float32)
    if model.seen_values is None:
        model.seen_values = values
    np.testing.assert_array_equal(model.seen_values, values)
    return model


@pytest.fixture(scope="module")
def trained():
    train = random_ratings(5, n_users=50, n_items=30, density=0.35, every_item=False,
                           first_user=100, first_item=1000)
    # exact half-steps, so that a trained user's vector is what a fold-in computes
    # the plain model (no implicit features), whose half-step the tests below recompute
    model = ALS(factors=4, iterations=5, reg=0.1, solver="cholesky",
                implicit_weight=0.0).fit(train)
    return train, keep_training_values(model, train)


def half_step(model, matrix, fixed_factors, fixed_bias):
    """Every row of ``matrix`` solved against the fixed side, as a training half-step does."""
    factors = np.zeros((matrix.shape[0], model.factors))
    bias = np.zeros(matrix.shape[0])
    status = HalfStep(model.system).run(
        matrix.indptr, matrix.indices, matrix.data, fixed_factors, fixed_bias, model.global_mean,
        factors, bias)
    assert not status.any()
    return factors, bias


def with_ratings(train, users, items, values):
    """``train`` with (raw user, raw item, value) ratings added, replacing existing pairs."""
    frame = train.to_frame().set_index(["user", "item"])["rating"]
    for user, item, value in zip(users, items, values):
        frame.loc[(user, item)] = value
    frame = frame.reset_index()
    return Ratings.from_arrays(frame["user"].to_numpy(), frame["item"].to_numpy(),
                               frame["rating"].to_numpy())


def unclipped_ratings(model, user_index):
    """μ + b_u + b_i + p_u·q_i of one user and every item, before clipping to the scale."""
    return (model.global_mean + model.user_bias[user_index] + model.item_bias
            + model.item_factors.astype(np.float64) @ model.user_factors[user_index])


def brute_force_top(model, user_index, n, exclude, rank_by="rating"):
    """The top n of one user by a dense computation of the documented ranking."""
    ratings = unclipped_ratings(model, user_index)
    low, high = model.rating_scale
    if rank_by == "rating":
        scores = ratings.copy()
    else:
        preference = (model.extras["ranking_item_factors"].astype(np.float64)
                      @ model.extras["ranking_user_factors"][user_index])
        scores = np.maximum(preference, 0) * (np.clip(ratings, low, high) - low) / (high - low)
    scores[exclude] = -np.inf
    order = np.lexsort((np.arange(len(scores)), -scores))[:n]
    listed = np.clip(ratings[order], low, high) if rank_by == "rating" else scores[order]
    return model.item_ids[order], listed


@pytest.mark.parametrize("rank_by", ["rating", "score"])
def test_recommend_matches_brute_force_and_skips_seen_items(trained, rank_by):
    train, model = trained
    assert model.has_ranking_head
    seen = train.by_user()[7].indices
    items, scores = brute_force_top(model, 7, 5, seen, rank_by)
    result = model.recommend(model.user_ids[7], n=5, rank_by=rank_by)
    assert np.array_equal(result.items, items)
    np.testing.assert_allclose(result.scores, scores, rtol=1e-6)
    low, high = model.rating_scale
    np.testing.assert_allclose(result.ratings, np.clip(
        unclipped_ratings(model, 7)[np.searchsorted(model.item_ids, result.items)], low, high))
    assert not set(result.items) & set(model.item_ids[seen])
    with_seen = model.recommend(model.user_ids[7], n=5, exclude_seen=False, rank_by=rank_by)
    expected, _ = brute_force_top(model, 7, 5, [], rank_by)
    assert np.array_equal(with_seen.items, expected)


def test_recommend_restricted_to_candidates(trained):
    _, model = trained
    candidates = model.item_ids[[3, 8, 9, 20]]
    result = model.recommend(model.user_ids[2], n=10, exclude_seen=False, candidates=candidates)
    assert sorted(result.items) == sorted(candidates)
    assert np.all(np.diff(result.scores) <= 0)


def test_recommend_all_equals_one_by_one(trained):
    _, model = trained
    items, scores = model.recommend_all(n=4)
    assert items.shape == (model.n_users, 4)
    for row in (0, 13, 49):
        single = model.recommend(model.user_ids[row], n=4)
        assert np.array_equal(items[row], single.items)
        # float32 preference products: one row and a block of rows round differently
        np.testing.assert_allclose(scores[row], single.scores, rtol=1e-6)
    subset_items, _ = model.recommend_all([model.user_ids[13], 99999], n=4)
    assert np.array_equal(subset_items[0], items[13])
    assert np.array_equal(subset_items[1], model.recommend(99999, n=4).items)


def test_fold_in_equals_the_training_half_step(trained):
    train, model = trained
    row = 11
    user_ratings = train.by_user()[row]
    folded = model.fold_in(model.item_ids[user_ratings.indices], user_ratings.data)
    # training ends with a user half-step against the final item factors
    np.testing.assert_allclose(folded.factors, model.user_factors[row], rtol=1e-9, atol=1e-12)
    assert folded.bias == pytest.approx(model.user_bias[row], rel=1e-9, abs=1e-12)
    via_folded = model.recommend(folded, n=5)
    assert np.array_equal(via_folded.items, model.recommend(model.user_ids[row], n=5).items)


def test_fold_in_ignores_unknown_items_and_refuses_none_known(trained):
    _, model = trained
    folded = model.fold_in([1000, 1001, 55555], [5.0, 1.0, 3.0])
    assert isinstance(folded, FoldedUser) and np.isfinite(folded.factors).all()
    assert np.array_equal(folded.items, [0, 1])
    with pytest.raises(DataError, match="none of the rated items is known"):
        model.fold_in([55555], [4.0])


def test_similar_items_by_cosine(trained):
    _, model = trained
    result = model.similar_items(model.item_ids[0], n=3)
    unit = model.item_factors / np.linalg.norm(model.item_factors, axis=1, keepdims=True)
    cosine = unit @ unit[0]
    cosine[0] = -np.inf
    assert np.array_equal(result.items, model.item_ids[np.argsort(-cosine)[:3]])
    assert model.item_ids[0] not in result.items
    assert len(model.similar_users(model.user_ids[0], n=4).items) == 4
    with pytest.raises(DataError, match="unknown item"):
        model.similar_items(-7)


def test_saved_model_recommends_identically(trained, tmp_path):
    _, model = trained
    loaded = MFModel.load(model.save(tmp_path / "m.npz"))
    assert np.array_equal(loaded.recommend_all(n=3)[0], model.recommend_all(n=3)[0])


# ---------------------------------------------------------------------- updating a trained user
def test_update_without_new_ratings_reproduces_the_trained_user(trained):
    _, model = trained
    for row in (0, 11, 49):  # training ends with the user half-step
        updated = model.fold_in([], [], user=model.user_ids[row])
        np.testing.assert_allclose(updated.factors, model.user_factors[row], rtol=0, atol=1e-8)
        assert updated.bias == pytest.approx(model.user_bias[row], rel=0, abs=1e-8)
        span = slice(model.seen_indptr[row], model.seen_indptr[row + 1])
        assert np.array_equal(updated.items, model.seen_indices[span])


def test_update_equals_a_full_half_step_over_the_merged_ratings(trained):
    train, model = trained
    user = 111
    rated = train.by_user()[11]
    changed_item = model.item_ids[rated.indices[0]]
    old_value = rated.data[0]
    new_value = 1.0 if old_value != 1.0 else 5.0
    unrated_item = model.item_ids[np.setdiff1d(np.arange(model.n_items), rated.indices)[0]]
    updated = model.fold_in([changed_item, unrated_item, 99999], [new_value, 2.0, 4.0],
                            user=user)
    merged = with_ratings(train, [user, user], [changed_item, unrated_item], [new_value, 2.0])
    factors, bias = half_step(model, merged.by_user(), model.item_factors, model.item_bias)
    np.testing.assert_allclose(updated.factors, factors[11], rtol=0, atol=1e-10)
    assert updated.bias == pytest.approx(bias[11], rel=0, abs=1e-10)
    assert len(updated.items) == len(rated.indices) + 1
    assert updated.ratings[np.searchsorted(updated.items, rated.indices[0])] == new_value
    assert not np.allclose(updated.factors, model.user_factors[11])
    recommended = model.recommend(updated, n=model.n_items).items
    assert changed_item not in recommended and unrated_item not in recommended


def test_update_refuses_unknown_users_and_models_without_rating_values(trained):
    _, model = trained
    with pytest.raises(DataError, match="unknown user 99999"):
        model.fold_in([1000], [4.0], user=99999)
    old = MFModel(**{**vars(model), "seen_values": None})
    with pytest.raises(DataError, match="keeps no training rating values"):
        old.fold_in([1000], [4.0], user=model.user_ids[0])
    with pytest.raises(DataError, match="keeps no training rating values"):
        old.explain(model.user_ids[0], 1000)
    assert np.isfinite(old.fold_in([1000], [4.0]).factors).all()  # new users need no values


def test_fold_in_counts_a_repeated_item_once_with_its_last_rating(trained):
    _, model = trained
    twice = model.fold_in([1003, 1007, 1003], [1.0, 4.0, 5.0])
    once = model.fold_in([1007, 1003], [4.0, 5.0])
    assert np.array_equal(twice.factors, once.factors) and twice.bias == once.bias
    assert np.array_equal(twice.ratings, [5.0, 4.0])  # items 1003, 1007 in index order


# ---------------------------------------------------------------------- new and updated items
def test_fold_in_item_equals_the_item_half_step(trained):
    train, model = trained
    users, values = [100, 107, 130, 149, 123456], [5.0, 1.0, 4.0, 2.0, 3.0]
    folded = model.fold_in_item(users, values)
    merged = with_ratings(train, users[:4], [5000] * 4, values[:4])
    factors, bias = half_step(model, merged.by_item(), model.user_factors, model.user_bias)
    np.testing.assert_allclose(folded.factors, factors[-1], rtol=0, atol=1e-10)
    assert folded.bias == pytest.approx(bias[-1], rel=0, abs=1e-10)
    assert np.array_equal(folded.users, [0, 7, 30, 49])
    with pytest.raises(DataError, match="none of the rating users is known"):
        model.fold_in_item([123456], [3.0])


def test_updating_an_item_merges_its_training_ratings(trained):
    train, model = trained
    item = model.item_ids[3]
    raters = train.by_item()[3].indices
    newcomer = np.setdiff1d(np.arange(model.n_users), raters)[0]
    users = [model.user_ids[raters[0]], model.user_ids[newcomer]]
    updated = model.fold_in_item(users, [5.0, 1.0], item=item)
    merged = with_ratings(train, users, [item, item], [5.0, 1.0])
    factors, bias = half_step(model, merged.by_item(), model.user_factors, model.user_bias)
    np.testing.assert_allclose(updated.factors, factors[3], rtol=0, atol=1e-10)
    assert updated.bias == pytest.approx(bias[3], rel=0, abs=1e-10)
    assert np.array_equal(updated.users, np.union1d(raters, [newcomer]))
    unchanged = model.fold_in_item([], [], item=item)
    plain, plain_bias = half_step(model, train.by_item(), model.user_factors, model.user_bias)
    np.testing.assert_allclose(unchanged.factors, plain[3], rtol=0, atol=1e-10)
    assert unchanged.bias == pytest.approx(plain_bias[3], rel=0, abs=1e-10)


# ---------------------------------------------------------------------- explanations
def test_explanation_of_a_hand_computed_case():
    # k = 1, no biases, λ = 1 unweighted: A = 1² + 2² + 1 = 6, p_u = (1·4 + 2·3) / 6 and the
    # prediction of item 12 (q = 0.5) splits as 0.5·1·4/6 (item 10) + 0.5·2·3/6 (item 11).
    model = MFModel(
        user_factors=np.zeros((1, 1)), item_factors=np.array([[1.0], [2.0], [0.5]]),
        user_bias=np.zeros(1), item_bias=np.zeros(3), global_mean=0.0, fallback_mean=3.0,
        user_ids=np.array([1]), item_ids=np.array([10, 11, 12]),
        seen_indptr=np.array([0, 0]), seen_indices=np.empty(0, dtype=np.int32),
        biases=False, system=RowSystem(reg=1.0, reg_bias=1.0, weighted_reg=False,
                                       biases=False))
    folded = model.fold_in([10, 11], [4.0, 3.0])
    assert folded.factors[0] == pytest.approx(10 / 6)
    explanation = model.explain(folded, 12)
    assert explanation.items.tolist() == [11, 10]
    np.testing.assert_allclose(explanation.contributions, [0.5, 1 / 3])
    assert explanation.ratings.tolist() == [3.0, 4.0]
    assert explanation.baseline == 0.0
    assert explanation.prediction == pytest.approx(0.5 * 10 / 6)
    assert explanation.unexplained == pytest.approx(0.0, abs=1e-15)


def test_contributions_add_up_to_the_users_part_of_the_prediction(trained):
    train, model = trained
    for row, item in ((11, 1005), (30, 1000), (49, 1029)):
        user = model.user_ids[row]
        count = len(train.by_user()[row].indices)
        explanation = model.explain(user, item, n=count)
        assert len(explanation.items) == count
        column = np.searchsorted(model.item_ids, item)
        assert explanation.baseline == pytest.approx(model.global_mean + model.item_bias[column])
        assert explanation.prediction == pytest.approx(model.predict_one(user, item), abs=1e-12)
        user_part = model.user_bias[row] + model.user_factors[row] @ model.item_factors[column]
        assert explanation.contributions.sum() == pytest.approx(user_part, **EXACT_APPROX)
        assert explanation.unexplained == pytest.approx(0.0, abs=EXACT_ATOL)
        assert np.all(np.diff(explanation.contributions) <= 0)
        ratings = dict(zip(model.item_ids[train.by_user()[row].indices],
                           train.by_user()[row].data))
        assert explanation.ratings.tolist() == [ratings[i] for i in explanation.items]
        top = model.explain(user, item, n=3)
        assert np.array_equal(top.items, explanation.items[:3])
        assert np.array_equal(top.contributions, explanation.contributions[:3])


def test_contributions_add_up_for_a_fold_in_user(trained):
    _, model = trained
    folded = model.fold_in([1000, 1004, 1010, 1021], [5.0, 2.0, 4.5, 1.0])
    explanation = model.explain(folded, 1017, n=10)
    column = np.searchsorted(model.item_ids, 1017)
    assert len(explanation.items) == 4
    assert explanation.contributions.sum() == pytest.approx(
        folded.bias + folded.factors @ model.item_factors[column], **EXACT_APPROX)
    assert explanation.prediction == pytest.approx(
        model.global_mean + model.item_bias[column] + folded.bias
        + folded.factors @ model.item_factors[column])
    with pytest.raises(DataError, match="unknown item 4242"):
        model.explain(folded, 4242)


def test_a_conjugate_gradient_model_is_updated_and_explained_by_the_exact_half_step(trained):
    train, _ = trained
    model = keep_training_values(ALS(factors=4, iterations=5, reg=0.1, implicit_weight=0.0)
                                 .fit(train), train)
    assert model.params["solver"] == "cg" and model.user_factors.dtype == np.float32
    updated = model.fold_in([], [], user=111)
    factors, bias = half_step(model, train.by_user(), model.item_factors, model.item_bias)
    np.testing.assert_allclose(updated.factors, factors[11], rtol=0, atol=1e-10)
    assert updated.bias == pytest.approx(bias[11], rel=0, abs=1e-10)
    gap = np.abs(updated.factors - model.user_factors[11]).max()
    assert 0 < gap < 0.1  # a few CG steps approach the exact solution without reaching it
    explanation = model.explain(111, 1005, n=model.n_items)
    column = np.searchsorted(model.item_ids, 1005)
    assert explanation.prediction == pytest.approx(model.predict_one(111, 1005), abs=1e-5)
    assert explanation.contributions.sum() == pytest.approx(
        updated.bias + updated.factors @ model.item_factors[column], **EXACT_APPROX)
    assert explanation.contributions.sum() + explanation.unexplained == pytest.approx(
        explanation.prediction - explanation.baseline, abs=1e-12)
    assert explanation.unexplained != 0


# ---------------------------------------------------------------------- groups
def planted_model(seed=0):
    """Items in three groups of 30, 20 and 10 around orthogonal directions, with lengths from
    0.1 to 10 so that only the direction tells the groups apart."""
    rng = np.random.default_rng(seed)
    sizes, k = (30, 20, 10), 6
    truth = np.repeat(np.arange(3), sizes)
    rng.shuffle(truth)
    directions = np.eye(k)[:3]
    factors = directions[truth] + rng.normal(0, 0.15, (len(truth), k))
    factors *= rng.uniform(0.1, 10, (len(truth), 1))
    model = MFModel(
        user_factors=factors[::-1].copy(), item_factors=factors, user_bias=np.zeros(60),
        item_bias=np.zeros(60), global_mean=3.5, fallback_mean=3.5,
        user_ids=np.arange(60) * 2, item_ids=np.arange(60) + 1000,
        seen_indptr=np.zeros(61, dtype=np.int64), seen_indices=np.empty(0, dtype=np.int32),
        system=RowSystem(reg=0.1, reg_bias=0.1, weighted_reg=True, biases=True))
    return model, truth


def test_clusters_recover_planted_groups_numbered_by_size():
    model, truth = planted_model()
    groups = model.cluster_items(3, seed=1)
    assert np.array_equal(groups.ids, model.item_ids)
    assert np.array_equal(groups.labels, truth)  # group sizes 30, 20, 10 -> labels 0, 1, 2
    assert np.array_equal(groups.members(2), model.item_ids[truth == 2])
    np.testing.assert_allclose(np.abs(groups.centers[:, :3]), np.eye(3), atol=0.1)
    users = model.cluster_users(3, seed=1)
    assert np.array_equal(users.labels, truth[::-1])
    assert np.array_equal(model.cluster_items(3, seed=1).labels, groups.labels)


@pytest.mark.parametrize("n_groups, restarts, message", [
    (0, 5, "n_groups must be an integer from 1 to 60, got 0"),
    (61, 5, "n_groups must be an integer from 1 to 60, got 61"),
    (2.5, 5, "n_groups must be an integer from 1 to 60, got 2.5"),
    (3, 0, "restarts must be an integer >= 1, got 0"),
])
def test_clusters_refuse_bad_settings(n_groups, restarts, message):
    model, _ = planted_model()
    with pytest.raises(ConfigError, match=message):
        model.cluster_items(n_groups, restarts=restarts)


def test_fold_in_refuses_ratings_outside_the_training_scale(trained):
    """The model records its training ratings' range; a new rating outside it (or not a number)
    is refused, for users and items alike, and a rating at either end is taken."""
    train, model = trained
    low, high = float(train.values.min()), float(train.values.max())
    assert model.system.rating_scale == (low, high)
    item, user = model.item_ids[0], model.user_ids[0]
    for value, message in ((high + 2, f"rating {high + 2:g} is outside the model's rating "
                                      f"scale {low:g} to {high:g}"),
                           (low - 0.5, "outside the model's rating scale"),
                           (float("nan"), "not a finite number")):
        with pytest.raises(DataError, match=message):
            model.fold_in([item], [value])
        with pytest.raises(DataError, match=message):
            model.fold_in_item([user], [value])
    assert np.isfinite(model.fold_in([item, model.item_ids[1]], [low, high]).factors).all()


def test_kept_grams_follow_training_and_replaced_arrays():
    """Fold-in keeps ZᵀZ and the head's YᵀY between calls: a fold-in made in a training
    callback must not leave the finished model (the same object, trained further in place)
    with the Gram matrices of an earlier iteration, and a replaced array must be noticed."""
    train = random_ratings(8, n_users=40, n_items=25, density=0.4)
    items, values = train.item_ids[:4], np.array([5.0, 1.0, 4.0, 2.0])
    early = []
    model = ALS(factors=4, iterations=3, rank_factors=4, rank_iterations=3).fit(
        train, callback=lambda record, live: early.append(live.fold_in(items, values)))
    fresh = MFModel(**vars(model))  # a new object: nothing kept for it yet
    kept, computed = model.fold_in(items, values), fresh.fold_in(items, values)
    np.testing.assert_array_equal(kept.factors, computed.factors)
    np.testing.assert_array_equal(kept.preference, computed.preference)
    assert not np.allclose(early[0].preference, computed.preference)
    implicit = "implicit_item_factors"
    model.extras[implicit] = model.extras[implicit] * 2.0
    fresh = MFModel(**vars(model))
    np.testing.assert_array_equal(model.fold_in(items, values).factors,
                                  fresh.fold_in(items, values).factors)


def test_prepare_computes_what_fold_in_keeps_up_front():
    train = random_ratings(9, n_users=30, n_items=20, density=0.4)
    model = ALS(factors=4, iterations=2, rank_factors=4, rank_iterations=2).fit(train)
    assert model.prepare() is model
    kept = dict(_KEPT[model])  # Z'Z, A'A, the head's Y'Y and its average user
    assert len(kept) == 4
    folded = model.fold_in(train.item_ids[:3], [4.0, 2.0, 5.0])
    model.explain(folded, int(train.item_ids[5]))
    model.recommend(-1)  # an unknown user: the average head user
    assert dict(_KEPT[model]).keys() == kept.keys()  # nothing new was needed
