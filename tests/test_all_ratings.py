"""Training a final model on every rating: ``--test-fraction 0`` or a lone ``--train FILE``
hold out nothing, the history has no test RMSE, and the commands that score on test ratings
(compare) refuse such options before reading anything."""

from __future__ import annotations

import json

import pytest

from alsmf.data.source import DataSource
from alsmf.errors import ConfigError
from alsmf.model import MFModel
from tests.cli_helpers import run, write_ratings_csv


@pytest.fixture
def ratings_csv(tmp_path):
    return write_ratings_csv(tmp_path / "ratings.csv", 30, 8, 25)


@pytest.mark.parametrize("options", [["--data", "{csv}", "--test-fraction", "0"],
                                     ["--data", "{csv}", "--split", "user", "--test-fraction",
                                      "0"],
                                     ["--train", "{csv}"]])
def test_train_on_every_rating(ratings_csv, tmp_path, options):
    out = tmp_path / "out"
    result = run("train", *[o.format(csv=ratings_csv) for o in options], "-k", 3, "-n", 2,
                 "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["data"]["train_ratings"] == 240 and report["data"]["test_ratings"] == 0
    assert report["test_rmse"] is None
    assert [record["test_rmse"] for record in report["history"]] == [None, None]
    model = MFModel.load(out / "model.npz")
    assert len(model.seen_indices) == 240 and len(model.user_ids) == 30  # all of them


def test_the_lines_say_there_is_no_test_set(ratings_csv, tmp_path):
    result = run("train", "--data", ratings_csv, "--test-fraction", 0, "-k", 2, "-n", 2,
                 "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert f"data: {ratings_csv}: 240 ratings, all for training (no test set)" in result.stdout
    iteration_lines = [line.split() for line in result.stdout.splitlines()
                       if line.strip()[:1].isdigit()]
    assert [fields[3] for fields in iteration_lines] == ["-", "-"]
    assert "final: train RMSE" in result.stdout and "test RMSE 0" not in result.stdout


def test_a_lone_training_file_of_a_generic_layout_is_every_rating(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("user,item\n1,10\n1,11\n2,10\n2,12\n3,11\n3,12\n")
    prepared = DataSource(train_file=path, feedback="implicit").train_test()
    assert len(prepared.train) == 6 and prepared.test is None
    assert prepared.summary()["test_ratings"] == 0 and prepared.name == str(path)


def test_the_data_source_says_whether_it_holds_out_test_ratings(tmp_path):
    assert DataSource().holds_out_test
    assert not DataSource(test_fraction=0).holds_out_test
    assert not DataSource(train_file=tmp_path / "a.csv").holds_out_test
    assert DataSource(train_file=tmp_path / "a.csv", test_file=tmp_path / "b.csv").holds_out_test
    with pytest.raises(ConfigError, match="compare needs test ratings"):
        DataSource(test_fraction=0).check(test_needed_by="compare")


def test_compare_refuses_to_score_without_test_ratings(ratings_csv):
    result = run("compare", "--data", ratings_csv, "--test-fraction", 0)
    assert result.exit_code == 2
    assert result.stderr == ("error: compare needs test ratings: --test-fraction must be above "
                             "0 (0 trains on every rating)\n")
