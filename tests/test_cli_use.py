"""The commands that use a trained model: recommend, similar, rate."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from alsmf.cli import app
from alsmf.model import MFModel

runner = CliRunner()
ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


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
    (["recommend", "--user", 1, "-n", 0], "-n must be at least 1"),
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
