"""The commands that use a trained model: recommend, similar, rate."""

import json

import numpy as np
import pytest

from alsmf.data.ratings import Ratings
from alsmf.model import MFModel
from alsmf.models.als import ALS

from tests.cli_helpers import run
from tests.conftest import ML100K


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    result = run("train", "-k", 4, "-n", 2, "-o", out)
    assert result.exit_code == 0, result.output
    return out / "model.npz"


@pytest.fixture(scope="module")
def movielens_model(tmp_path_factory):
    if not ML100K.is_dir():
        pytest.skip(f"ml-100k not found at {ML100K}")
    out = tmp_path_factory.mktemp("ml100k")
    result = run("train", "--data", ML100K, "-k", 8, "-n", 3, "-o", out)
    assert result.exit_code == 0, result.output
    return out / "model.npz"


@pytest.fixture(scope="module")
def titled_model(tmp_path_factory):
    """A model that keeps its training ratings' values, with titles "Movie <id>"."""
    rng = np.random.default_rng(3)
    mask = rng.random((40, 25)) < 0.4
    users, items = np.nonzero(mask)
    train = Ratings.from_arrays(users + 1, items + 101, rng.integers(1, 6, len(users)) * 1.0)
    model = ALS(factors=4, iterations=4).fit(train)
    if model.seen_values is None:  # until alsmf.models.als fills it
        model.seen_values = train.by_user().data.astype(np.float32)
    model.attach_titles(model.item_ids, np.array([f"Movie {i}" for i in model.item_ids]),
                        np.full(model.n_items, "Drama"))
    return model.save(tmp_path_factory.mktemp("titled") / "model.npz")


def test_recommend_json_matches_the_library(synthetic_model):
    result = run("recommend", "--model", synthetic_model, "--user", 5, "-n", 4, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["items"]
    expected = MFModel.load(synthetic_model).recommend(5, 4)
    assert [r["item"] for r in rows] == expected.items.tolist()
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]


def test_similar_and_rate_by_id_without_titles(synthetic_model):
    similar = run("similar", "--model", synthetic_model, "--item", 3, "-n", 3, "--json")
    assert similar.exit_code == 0, similar.output
    assert len(json.loads(similar.stdout)["items"]) == 3
    users = run("similar", "--model", synthetic_model, "--user", 3, "-n", 2)
    assert users.exit_code == 0 and "users similar to user 3" in users.output
    rated = run("rate", "--model", synthetic_model, "3=5", "10=1", "-n", 3, "--json")
    assert rated.exit_code == 0, rated.output
    items = [r["item"] for r in json.loads(rated.stdout)["items"]]
    assert len(items) == 3 and not {3, 10} & set(items)


@pytest.mark.parametrize("args, fragment", [
    (["similar", "--item", "Toy Story"], "has no titles"),
    (["similar"], "exactly one of --item or --user"),
    (["rate", "3=abc"], "expected ITEM=RATING"),
    (["rate", "3=7"], "rating 7 is outside the model's rating scale 0.5 to 5"),
    (["rate", "3=1e9"], "outside the model's rating scale"),
    (["recommend", "--user", 1, "-n", 0], "-n must be at least 1"),
    (["recommend", "--user", 1, "-n", 10**12], "-n must be at most 100,000"),
    (["rate", "²=5"], "no titles to search"),
])
def test_bad_use_is_one_clear_line(synthetic_model, args, fragment):
    result = run(*args, "--model", synthetic_model)
    assert result.exit_code == 2, result.output
    assert fragment in result.output


def test_titles_are_shown_and_accepted_with_real_movielens(movielens_model):
    model = MFModel.load(movielens_model)
    assert model.item_titles[np.searchsorted(model.item_ids, 50)] == "Star Wars (1977)"
    similar = run("similar", "--model", movielens_model, "--item", "Star Wars", "-n", 3,
                  "--json")
    assert similar.exit_code == 0, similar.output
    report = json.loads(similar.stdout)
    assert report["title"] == "items similar to Star Wars (1977) (item 50)"
    assert all("title" in row and "genres" in row for row in report["items"])
    rated = run("rate", "--model", movielens_model, "Star Wars (1977)=5", "Titanic (1997)=2")
    assert rated.exit_code == 0, rated.output
    assert "recommendations for the new user" in rated.output
    vague = run("similar", "--model", movielens_model, "--item", "the")
    assert vague.exit_code == 2 and "be more precise" in vague.output


def test_recommend_explain_lists_the_top_contributing_rated_items(titled_model):
    result = run("recommend", "--model", titled_model, "--user", 7, "-n", 4, "--explain",
                 "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["items"]
    model = MFModel.load(titled_model)
    assert [r["item"] for r in rows] == model.recommend(7, 4).items.tolist()
    for row in rows:
        expected = model.explain(7, row["item"], 3)
        assert [b["item"] for b in row["because"]] == expected.items.tolist()
        assert [b["title"] for b in row["because"]] == [f"Movie {i}" for i in expected.items]
        np.testing.assert_allclose([b["contribution"] for b in row["because"]],
                                   expected.contributions)
        assert [b["rating"] for b in row["because"]] == expected.ratings.tolist()
        assert row["baseline"] == pytest.approx(expected.baseline)
    table = run("recommend", "--model", titled_model, "--user", 7, "-n", 2, "--explain",
                columns=200)
    assert table.exit_code == 0, table.output
    assert "because you rated" in table.output
    assert f"baseline {rows[0]['baseline']:.2f}" in table.output  # what the reasons add to
    first = rows[0]["because"][0]
    gap = first["rating"] - first["item_baseline"]
    assert first["item_baseline"] == pytest.approx(model.global_mean + model.item_bias[
        np.searchsorted(model.item_ids, first["item"])])
    assert (f"Movie {first['item']} (rated {first['rating']:g}, {abs(gap):.1f} "
            f"{'above' if gap >= 0 else 'below'} its usual): {first['contribution']:+.2f}"
            in table.output)


def test_rate_updates_a_trained_user_and_explains(titled_model):
    result = run("rate", "--model", titled_model, "--user", 7, "Movie 101=1", "Movie 102=5",
                 "-n", 3, "--explain", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["title"] == "recommendations for user 7 with the new ratings"
    model = MFModel.load(titled_model)
    updated = model.fold_in([101, 102], [1.0, 5.0], user=7)
    assert [r["item"] for r in report["items"]] == model.recommend(updated, 3).items.tolist()
    assert not {101, 102} & {r["item"] for r in report["items"]}
    assert all(len(r["because"]) == 3 for r in report["items"])
    new_user = run("rate", "--model", titled_model, "Movie 101=5", "-n", 2, "--explain",
                   columns=200)
    assert new_user.exit_code == 0, new_user.output
    assert "Movie 101 (rated 5, " in new_user.output


def test_explaining_with_a_model_without_rating_values_is_one_clear_line(titled_model,
                                                                        tmp_path):
    model = MFModel.load(titled_model)
    model.seen_values = None
    old = model.save(tmp_path / "old.npz")
    result = run("recommend", "--model", old, "--user", 7, "--explain")
    assert result.exit_code == 2, result.output
    assert "keeps no training rating values" in result.output
    assert len(result.output.strip().splitlines()) == 1
    unknown = run("rate", "--model", old, "--user", 999, "Movie 101=5")
    assert unknown.exit_code == 2 and "unknown user 999" in unknown.output


def test_rate_explains_with_real_titles(movielens_model):
    result = run("rate", "--model", movielens_model, "Star Wars (1977)=5", "Titanic (1997)=2",
                 "-n", 3, "--explain", "--json")
    assert result.exit_code == 0, result.output
    for row in json.loads(result.stdout)["items"]:
        assert {b["title"] for b in row["because"]} == {"Star Wars (1977)", "Titanic (1997)"}
        total = sum(b["contribution"] for b in row["because"])
        # the prediction is the explained sum, clipped to the 1..5 scale (float32 dots)
        assert row["predicted"] == pytest.approx(min(max(row["baseline"] + total, 1), 5),
                                                 abs=1e-5)


def test_fold_files_in_a_release_folder_get_its_titles_and_lists_rank_well(
        ml100k_dir, tmp_path):
    """Trained from u1.base/u1.test by path, the model finds the titles beside them; with the
    defaults, no item of user 196's list or of a new Star Wars fan's rests on a handful of
    ratings (ranked by predicted rating, all ten of 196's had at most 7)."""
    output = tmp_path / "u1"
    trained = run("train", "--train", ml100k_dir / "u1.base", "--test", ml100k_dir / "u1.test",
                  "-o", output)
    assert trained.exit_code == 0, trained.output
    model = MFModel.load(output / "model.npz")
    assert model.item_titles is not None and "Star Wars (1977)" in model.item_titles
    ratings_per_item = np.bincount(model.seen_indices, minlength=model.n_items)
    listed = run("recommend", "--model", output / "model.npz", "--user", 196, "--json")
    fan = run("rate", "--model", output / "model.npz", "Star Wars (1977)=5", "--json")
    for result in (listed, fan):
        assert result.exit_code == 0, result.output
        items = [row["item"] for row in json.loads(result.stdout)["items"]]
        assert len(items) == 10
        assert ratings_per_item[np.searchsorted(model.item_ids, items)].min() > 20
    by_rating = model.recommend(196, rank_by="rating").items
    assert ratings_per_item[np.searchsorted(model.item_ids, by_rating)].max() <= 7
