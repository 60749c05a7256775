"""``alsmf evaluate``, ``tune`` and ``compare`` as a user runs them: JSON, tables, errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from alsmf.evaluation import load_settings
from alsmf.models.als import ALS

from tests.cli_helpers import run, write_ratings_csv
from tests.conftest import ML100K


@pytest.fixture
def ratings_csv(tmp_path):
    return write_ratings_csv(tmp_path / "ratings.csv", 60, 15, 40)


def test_evaluate_json_keeps_every_fold_and_stdout_is_pure_json(ratings_csv):
    result = run("evaluate", "--data", ratings_csv, "--folds", 3, "-k", 4, "-n", 3,
                 "--set", "weighted_reg=false", "--top", 5, "--threshold", 4, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [f["fold"] for f in report["folds"]] == ["fold 1", "fold 2", "fold 3"]
    assert sum(f["test_ratings"] for f in report["folds"]) == 900
    assert report["settings"]["factors"] == 4 and report["settings"]["weighted_reg"] is False
    assert report["mean"]["rmse"] == pytest.approx(np.mean([f["rmse"] for f in report["folds"]]))
    assert report["k"] == 5 and 0 <= report["mean"]["ndcg"] <= 1


def test_evaluate_cross_validates_any_method(ratings_csv):
    """``--method`` picks any method compare knows; its own fields take --factors and --set,
    and an option it has no field for is refused."""
    result = run("evaluate", "--data", ratings_csv, "--folds", 2, "--method", "ials", "-k", 3,
                 "--set", "iterations=3", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["method"] == "ials" and report["settings"]["factors"] == 3
    assert [f["iterations"] for f in report["folds"]] == [3, 3]
    assert 0 <= report["mean"]["ndcg"] <= 1
    assert "rmse" not in report["mean"]  # it predicts preferences, not ratings
    table = run("evaluate", "--data", ratings_csv, "--folds", 2, "--method", "bias")
    assert table.exit_code == 0 and "bias on" in table.stdout
    refused = run("evaluate", "--data", ratings_csv, "--method", "mean", "--factors", 3)
    assert refused.exit_code == 2 and "--method mean does not take --factors" in refused.output
    unknown = run("evaluate", "--data", ratings_csv, "--method", "magic")
    assert unknown.exit_code == 2 and "unknown method magic; available: als" in unknown.output


def test_evaluate_prints_a_table_of_folds(ratings_csv):
    result = run("evaluate", "--data", ratings_csv, "--folds", 2, "-k", 2, "-n", 2)
    assert result.exit_code == 0, result.output
    for text in ("fold 1", "fold 2", "mean", "std", "RMSE", "NDCG@10"):
        assert text in result.stdout


def test_tune_saves_settings_that_evaluate_and_als_reuse(ratings_csv, tmp_path):
    settings = tmp_path / "best.json"
    result = run("tune", "--data", ratings_csv, "--folds", 2, "-p", "factors=2,4",
                 "-p", "reg=0.05,0.5", "-p", "iterations=2,4", "--save-settings", settings,
                 "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["folds"]) == 2 and len(report["trials"]) == 8
    assert report["space"] == {"factors": [2, 4], "reg": [0.05, 0.5], "iterations": [2, 4]}
    assert report["best"].keys() == {"factors", "reg", "iterations"}
    assert load_settings(settings) == report["settings"]
    assert ALS(**load_settings(settings)).factors == report["best"]["factors"]
    reused = run("evaluate", "--data", ratings_csv, "--folds", 2, "--settings", settings,
                 "--json")
    assert reused.exit_code == 0, reused.output
    assert json.loads(reused.stdout)["settings"] == report["settings"]


def test_tune_any_method_by_a_ranking_metric(ratings_csv):
    result = run("tune", "--data", ratings_csv, "--folds", 2, "--method", "ials", "-p",
                 "factors=2,4", "-p", "iterations=2,3", "--metric", "ndcg", "--top", 5, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["metric"] == "ndcg" and report["settings"]["method"] == "ials"
    assert 0 <= report["test_ndcg"]["mean"] <= 1
    assert all("validation_ndcg" in fold for fold in report["folds"])
    table = run("tune", "--data", ratings_csv, "--folds", 2, "-p", "factors=2", "-p",
                "iterations=2", "--metric", "precision")
    assert table.exit_code == 0 and "P@10" in table.stdout and "RMSE" in table.stdout


def test_random_tune_on_synthetic_data_reports_the_noise_floor():
    result = run("tune", "--synthetic", "ml-100k", "--noise", 0.5, "--folds", 2, "--search",
                 "random", "--trials", 2, "-p", "reg=log:0.05:0.5", "-p", "factors=int:4:8",
                 "-p", "iterations=3", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["data"]["noise"] == 0.5 and 0 < report["data"]["oracle_rmse"] < 0.6
    assert report["space"]["reg"] == {"log_uniform": [0.05, 0.5]}
    assert all(0.05 <= t["settings"]["reg"] <= 0.5 for t in report["trials"])


def test_compare_json_and_figure(ratings_csv, tmp_path):
    result = run("compare", "--data", ratings_csv, "--methods", "als,bias,mean", "-k", 3,
                 "--set", "als.iterations=3", "--output", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    als, bias, mean = report["methods"]
    assert [als["name"], bias["name"], mean["name"]] == ["als", "bias", "mean"]
    assert als["settings"]["factors"] == 3 and bias["settings"]["method"] == "bias"
    assert len(als["test_rmse"]) == 3 == len(als["seconds"])
    # the fixture's ratings are random, so no method need beat another: check each one ran
    assert mean["test_rmse"][-1] == pytest.approx(mean["final_rmse"])
    assert bias["test_rmse"][-1] == pytest.approx(bias["final_rmse"])
    assert Path(report["figure"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (("evaluate", "--folds", "u1..u5"), "give --data PATH to ml-100k"),
    (("evaluate", "--folds", "1"), "--folds must be u1..u5"),
    (("evaluate", "--set", "lambda=1"), "unknown setting(s) lambda for ALS; valid settings:"),
    (("tune", "-p", "lambda=1,2"), "unknown setting 'lambda' for ALS; valid settings:"),
    (("tune", "-p", "reg=log:0.01:1"), "grid search needs lists"),
    (("tune", "-p", "reg"), "expected NAME=V1,V2"),
    (("tune", "--metric", "auc"), "metric must be one of rmse, ndcg, precision, recall"),
    (("tune", "--method", "sgd"), "give the fields of --method sgd to search with -p"),
    (("tune", "--method", "ials", "-p", "factors=2", "--save-settings", "x.json"),
     "--save-settings writes ALS settings"),
    (("tune", "--settings", "/nonexistent/best.json"), "no such settings file"),
    (("compare", "--methods", "als,magic"), "unknown method(s) magic"),
    (("compare", "--set", "sgd-epochs=3"), "expected METHOD.NAME=VALUE"),
])
def test_user_errors_are_one_line_with_exit_code_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert result.stdout == ""


@pytest.mark.slow
def test_evaluate_on_the_canonical_folds():
    if not ML100K.is_dir():
        pytest.skip(f"ml-100k not found at {ML100K} (its licence forbids shipping it)")
    result = run("evaluate", "--data", ML100K, "--folds", "u1..u5", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [f["fold"] for f in report["folds"]] == ["u1", "u2", "u3", "u4", "u5"]
    assert report["mean"]["rmse"] <= 0.915
