"""Using a trained model: recommendations, similar items/users, fold-in of new users."""

import numpy as np
import pytest

from alsmf.data.ratings import Ratings
from alsmf.errors import DataError
from alsmf.model import FoldedUser, MFModel
from alsmf.train import ALS


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(5)
    mask = rng.random((50, 30)) < 0.35
    mask[:, 0] = True
    users, items = np.nonzero(mask)
    values = rng.integers(1, 6, len(users)).astype(float)
    train = Ratings.from_arrays(users + 100, items + 1000, values)
    return train, ALS(factors=4, iterations=5, reg=0.1).fit(train)


def brute_force_top(model, user_index, n, exclude):
    scores = model.full_matrix()[user_index].copy()
    scores[exclude] = -np.inf
    order = np.lexsort((np.arange(len(scores)), -scores))[:n]
    return model.item_ids[order], scores[order]


def test_recommend_matches_brute_force_and_skips_seen_items(trained):
    train, model = trained
    seen = train.by_user()[7].indices
    items, scores = brute_force_top(model, 7, 5, seen)
    result = model.recommend(model.user_ids[7], n=5)
    assert np.array_equal(result.items, items)
    np.testing.assert_allclose(result.scores, scores)
    assert not set(result.items) & set(model.item_ids[seen])
    with_seen = model.recommend(model.user_ids[7], n=5, exclude_seen=False)
    expected, _ = brute_force_top(model, 7, 5, [])
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
        np.testing.assert_allclose(scores[row], single.scores)
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
