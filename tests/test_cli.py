"""The command line, as a user runs it: outputs, JSON, exit codes and messages."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alsmf.models.bayes import BayesianMF
from alsmf.model import MFModel

from tests.cli_helpers import run, write_ratings_csv
from tests.conftest import ML100K


@pytest.fixture
def ratings_csv(tmp_path):
    return write_ratings_csv(tmp_path / "ratings.csv", 40, 10, 30)


def test_train_json_reports_history_outputs_and_settings(ratings_csv, tmp_path):
    out = tmp_path / "out"
    result = run("train", "--data", ratings_csv, "-k", 4, "--iterations", 3, "--output", out,
                 "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["factors"] == 4 and report["settings"]["iterations"] == 3
    assert [r["iteration"] for r in report["history"]] == [1, 2, 3]
    for record in report["history"]:
        assert set(record) == {"iteration", "objective", "train_rmse", "test_rmse", "seconds",
                               "solve_seconds"}
        assert 0 < record["solve_seconds"] <= record["seconds"]
    assert report["test_rmse"] == report["history"][-1]["test_rmse"]
    assert report["data"]["train_ratings"] + report["data"]["test_ratings"] == 400
    assert Path(report["model"]).is_file() and Path(report["figure"]).is_file()
    assert Path(report["figure"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = MFModel.load(report["model"])
    assert model.factors == 4 and len(model.history) == 3
    assert report["settings"]["solver"] == "cg" and model.user_factors.dtype == np.float32


def test_train_with_the_exact_solver_and_no_regularisation(ratings_csv, tmp_path):
    result = run("train", "--data", ratings_csv, "-k", 2, "-n", 2, "--reg", 0.01,
                 "--solver", "cholesky", "--output", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["solver"] == "cholesky"
    assert MFModel.load(tmp_path / "model.npz").user_factors.dtype == np.float64


def test_train_prints_a_line_per_iteration_and_where_files_are(ratings_csv, tmp_path):
    result = run("train", "--data", ratings_csv, "-k", 3, "-n", 2, "-o", tmp_path / "o")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.split()[:1] == ["1"] for line in lines)
    assert any(line.split()[:1] == ["2"] for line in lines)
    assert "model saved to" in result.stdout and "loss figure in" in result.stdout


def test_predict_scores_pairs_with_fallback(ratings_csv, tmp_path):
    out = tmp_path / "out"
    assert run("train", "--data", ratings_csv, "-k", 3, "-n", 2, "-o", out).exit_code == 0
    result = run("predict", "--model", out / "model.npz", "1,100", "999,100", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["predictions"]
    assert rows[0]["known_user"] and not rows[1]["known_user"]
    model = MFModel.load(out / "model.npz")
    assert rows[0]["prediction"] == pytest.approx(model.predict_one(1, 100))
    bad = run("predict", "--model", out / "model.npz", "1;x")
    assert bad.exit_code == 2 and "expected USER,ITEM" in bad.output


@pytest.mark.parametrize("args, fragment", [
    (["train", "--data", "no/such/file.csv"], "no/such/file.csv"),
    (["train", "--factors", "0"], "factors must be an integer from 1"),
    (["train", "--reg", "-1"], "reg (λ) must be"),
    (["train", "--reg", "0"], "reg = 0 needs solver='cholesky'"),
    (["train", "--cg-steps", "0"], "cg_steps must be an integer from 1"),
    (["train", "--test", "x.csv"], "--test goes with --train"),
    (["train", "--split", "u1"], "give --data PATH to ml-100k"),
    (["train", "--split", "sideways"], "sideways"),
    (["predict", "--model", "missing.npz", "1,2"], "no such model file"),
])
def test_bad_input_gives_one_clear_line_and_exit_code_2(args, fragment):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_bad_rating_names_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("user,item,rating\n1,2,3\n1,3,abc\n")
    result = run("train", "--data", path)
    assert result.exit_code == 2
    assert "bad.csv" in result.output and "line 3" in result.output


def test_common_header_names_train_without_column_options(ratings_csv, tmp_path):
    """A user,item,rating file renamed to MovieLens' column names trains to the same model;
    a --user-col option wins over the recognised names; an ambiguous header is one line."""
    text = ratings_csv.read_text()
    exported = tmp_path / "export.csv"
    exported.write_text(text.replace("user,item,rating", "userId,movieId,score", 1))

    def trained(*args):
        result = run("train", "-k", 2, "-n", 2, "--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def losses(report):
        return [(r["objective"], r["train_rmse"], r["test_rmse"]) for r in report["history"]]

    canonical = trained("--data", ratings_csv, "-o", tmp_path / "a")
    renamed = trained("--data", exported, "-o", tmp_path / "b")
    assert losses(renamed) == losses(canonical) and renamed["data"] == canonical["data"] | {
        "source": str(exported)}
    header, *rows = text.splitlines()
    both = tmp_path / "both.csv"  # a copy of the user column, as user_id, at the end
    both.write_text(f"{header},user_id\n" + "".join(f"{row},{row.split(',')[0]}\n"
                                                     for row in rows))
    ambiguous = run("train", "--data", both, "-o", tmp_path / "c")
    assert ambiguous.exit_code == 2
    assert "ambiguous header: 'user', 'user_id' could each be the user id column" in \
        ambiguous.stderr and ambiguous.stderr.count("\n") == 1
    chosen = trained("--data", both, "--user-col", "user_id", "-o", tmp_path / "d")
    assert losses(chosen) == losses(canonical)


def test_canonical_fold_trains_when_ml100k_is_present(tmp_path):
    if not ML100K.is_dir():
        pytest.skip(f"ml-100k not found at {ML100K}")
    result = run("train", "--data", ML100K, "--split", "u1", "-k", 8, "-n", 3, "-o", tmp_path,
                 "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["data"]["train_ratings"] == 80_000 and report["data"]["test_ratings"] == 20_000
    assert report["test_rmse"] < 1.0


def test_console_script_runs_the_default_job(tmp_path):
    """The README's main command: default synthetic data, a few iterations for speed."""
    result = subprocess.run(
        [sys.executable, "-m", "alsmf.cli", "train", "-n", "2", "-o", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["data"]["source"] == "synthetic ml-100k"
    assert report["test_rmse"] < 1.2
    assert (tmp_path / "model.npz").is_file() and (tmp_path / "loss.png").is_file()


def test_filters_that_empty_the_data_and_duplicates_are_clear_errors(ratings_csv, tmp_path):
    emptied = run("train", "--data", ratings_csv, "--min-user-ratings", 1000)
    assert emptied.exit_code == 2 and "k_core" in emptied.output.replace("-", "_")
    doubled = tmp_path / "doubled.csv"
    doubled.write_text("user,item,rating\n1,2,3\n1,3,4\n1,2,5\n")
    refused = run("train", "--data", doubled)
    assert refused.exit_code == 2
    assert "line 2" in refused.output and "line 4" in refused.output
    kept = run("train", "--data", doubled, "--duplicates", "last", "-k", 2, "-n", 1,
               "--split", "random", "--test-fraction", 0.4, "-o", tmp_path / "o", "--json")
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout)["data"]["train_ratings"] == 1


def test_threads_do_not_change_the_model(ratings_csv, tmp_path):
    """Issue 6: the same seed gives bit-identical factors with 1 or 2 threads."""
    import numba

    models = []
    for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
        out = tmp_path / f"threads{threads}"
        result = run("train", "--data", ratings_csv, "-k", 4, "-n", 3, "--threads", threads,
                     "--output", out)
        assert result.exit_code == 0, result.output
        models.append(MFModel.load(out / "model.npz"))
    assert np.array_equal(models[0].user_factors, models[1].user_factors)
    assert np.array_equal(models[0].item_bias, models[1].item_bias)


def test_separate_processes_train_bit_identical_models(ratings_csv, tmp_path):
    """Issue 6: across runs, not only within one: two fresh interpreters, same seed."""
    import numba

    threads = str(min(2, numba.config.NUMBA_NUM_THREADS))
    models = []
    for run_number in (1, 2):
        out = tmp_path / f"run{run_number}"
        subprocess.run([sys.executable, "-c", "from alsmf.cli import main; main()", "train",
                        "--data", str(ratings_csv), "-k", "4", "-n", "3", "--threads", threads,
                        "--output", str(out)], check=True, capture_output=True)
        models.append(MFModel.load(out / "model.npz"))
    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        assert np.array_equal(getattr(models[0], name), getattr(models[1], name)), name


def test_bias_reg_and_implicit_features_from_the_command_line(ratings_csv, tmp_path):
    result = run("train", "--data", ratings_csv, "-k", 3, "-n", 2, "--reg-bias", 0.05,
                 "--implicit-weight", 0.3, "--implicit-reg", 2.0, "-o", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)["settings"]
    assert (settings["reg_bias"], settings["implicit_weight"], settings["implicit_reg"]) == (
        0.05, 0.3, 2.0)
    model = MFModel.load(tmp_path / "model.npz")
    assert model.extras["implicit_item_factors"].shape == (model.n_items, 3)


def test_train_reads_a_settings_file_and_typed_options_override_it(ratings_csv, tmp_path):
    settings = tmp_path / "best.json"
    settings.write_text(json.dumps({"factors": 3, "reg": 0.3, "implicit_weight": 2.0}))
    result = run("train", "--data", ratings_csv, "--settings", settings, "--reg", 0.2, "-n", 2,
                 "-o", tmp_path / "o", "--json")
    assert result.exit_code == 0, result.output
    used = json.loads(result.stdout)["settings"]
    assert (used["factors"], used["reg"], used["implicit_weight"]) == (3, 0.2, 2.0)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"factor": 3}))
    refused = run("train", "--data", ratings_csv, "--settings", bad, "-o", tmp_path / "p")
    assert refused.exit_code == 2 and "factor" in refused.output


def test_bayesian_method_from_the_command_line(ratings_csv, tmp_path):
    result = run("train", "--data", ratings_csv, "--method", "bayes", "--sweeps", 12,
                 "--burn-in", 4, "--samples", 5, "-o", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["method"] == "bayes" and len(report["history"]) == 12
    model = MFModel.load(tmp_path / "model.npz")
    assert model.factors == 5 * 10  # five kept draws of the default k = 10, side by side
    assert report["settings"]["implicit_weight"] == BayesianMF.implicit_weight  # its default
    assert {"implicit_item_factors", "implicit_user_factors"} <= set(model.extras)
    typed = run("train", "--data", ratings_csv, "--method", "bayes", "--sweeps", 3, "--burn-in",
                1, "--implicit-weight", 0, "-k", 4, "-o", tmp_path / "typed", "--json")
    settings = json.loads(typed.stdout)["settings"]
    assert (settings["implicit_weight"], settings["factors"]) == (0, 4)
    assert not MFModel.load(tmp_path / "typed" / "model.npz").extras.keys() & {
        "implicit_item_factors", "implicit_user_factors"}


@pytest.mark.parametrize("method, settings", [("sgd", ["--set", "epochs=3"]),
                                              ("bias", ["--set", "epochs=3", "--set", "reg_u=5"])])
def test_train_fits_every_method_compare_knows(ratings_csv, tmp_path, method, settings):
    result = run("train", "--data", ratings_csv, "--method", method, *settings, "-o", tmp_path,
                 "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["method"] == method and len(report["history"]) == 3
    recommended = run("recommend", "--model", tmp_path / "model.npz", "--user", 1, "-n", 3,
                      "--json")
    assert recommended.exit_code == 0, recommended.output
    expected = MFModel.load(tmp_path / "model.npz").recommend(1, 3)
    assert [r["item"] for r in json.loads(recommended.stdout)["items"]] == expected.items.tolist()


def test_set_fills_the_fields_no_typed_option_sets(ratings_csv, tmp_path):
    result = run("train", "--data", ratings_csv, "-n", 1, "--reg", 0.2, "--set", "reg=0.3",
                 "--set", "init_scale=0.2", "-o", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)["settings"]
    assert (settings["reg"], settings["init_scale"]) == (0.2, 0.2)
    sgd = run("train", "--data", ratings_csv, "--method", "sgd", "-k", 3, "--set", "epochs=1",
              "--set", "factors=5", "-o", tmp_path, "--json")
    assert sgd.exit_code == 0, sgd.output
    assert json.loads(sgd.stdout)["settings"]["factors"] == 3


@pytest.fixture
def no_data(monkeypatch):
    """Every way to read or generate ratings fails the test when called."""
    import alsmf.data.source as source
    import alsmf.evaluation.folds as folds

    def read(*args, **kwargs):
        raise AssertionError("data was read before the options were checked")

    for name in ("load_ratings", "load_fold", "synthetic_ratings", "read_titles",
                 "detect_release"):
        monkeypatch.setattr(source, name, read)
    monkeypatch.setattr(folds, "movielens_folds", read)


@pytest.mark.parametrize("args, message", [
    (["train", "--test", "x.csv"], "--test goes with --train: give the training file too"),
    (["train", "--data", "d.csv", "--train", "a.csv", "--test", "b.csv"], "not both"),
    (["train", "--data", "d.csv", "--train", "a.csv"], "not both"),
    (["train", "--split", "u1"], "--split u1 is an ml-100k fold: give --data PATH"),
    (["train", "--split", "sideways"], "unknown split method 'sideways'"),
    (["train", "--split", "u9"], "or an ml-100k fold (u1, u2, u3, u4, u5, ua, ub)"),
    (["train", "--test-fraction", 1], "--test-fraction must be at least 0 (0: no test set) "
                                      "and below 1, got 1.0"),
    (["train", "--test-fraction", -0.1], "--test-fraction must be at least 0"),
    (["train", "--split", "temporal", "--test-fraction", 0],
     "--split temporal holds out --n-last ratings per user"),
    (["train", "--data", "d", "--split", "u1", "--test-fraction", 0],
     "--split u1 holds out the fold's u1.test"),
    (["train", "--split", "temporal", "--n-last", 0], "n_last must be a positive integer"),
    (["train", "--top-users", 0], "n must be a positive integer"),
    (["train", "--sample-users", 0], "--sample-users must be > 0, got 0"),
    (["train", "--sample-users", "nan"], "--sample-users must be > 0, got nan"),
    (["train", "--checkpoint-every", -1], "--checkpoint-every must be >= 0"),
    (["train", "--user-col", "id", "--item-col", "id"], "one column cannot be two of user"),
    (["train", "--feedback", "implicit", "--method", "bayes"], "--method bayes fits ratings"),
    (["train", "--scheduler", "tcp://127.0.0.1:1", "--workers", 2], "not both"),
    (["train", "--workers", 0], "--workers must be at least 1"),
    (["train", "--factors", 0], "factors must be an integer from 1"),
    (["train", "--method", "magic"], "unknown method magic; available: als, bayes"),
    (["train", "--method", "sgd", "--set", "epochs=0"], "epochs must be an integer from 1"),
    (["train", "--method", "sgd", "--set", "lambda=1"], "unknown setting(s) lambda for SGD"),
    (["train", "--method", "svd", "--reg", 0.1], "--method svd does not take --reg"),
    (["train", "--method", "sgd", "--workers", 2],
     "only --method als, bayes and ials train on a Dask"),
    (["evaluate", "--top", 0], "--top must be from 1 to 100,000, got 0"),
    (["evaluate", "--top", 10**12], "--top must be from 1 to 100,000"),
    (["evaluate", "--folds", "u1..u5"], "give --data PATH to ml-100k"),
    (["evaluate", "--set", "lambda=1"], "unknown setting(s) lambda for ALS"),
    (["tune", "--folds", 1], "--folds must be u1..u5"),
    (["compare", "--methods", "als,magic"], "unknown method(s) magic"),
    (["compare", "--split", "sideways"], "unknown split method 'sideways'"),
    (["compare", "--test-fraction", 0], "compare needs test ratings: --test-fraction must be "
                                        "above 0"),
    (["compare", "--train", "a.csv"], "compare needs test ratings: give --test FILE with "
                                      "--train"),
])
def test_options_are_checked_before_any_data_is_read(no_data, args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_an_output_that_cannot_be_a_folder_is_refused_before_any_data_is_read(no_data,
                                                                               tmp_path):
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    for output, message in ((blocker, "is a file, not a folder"),
                            (blocker / "run", f"{blocker} is a file, not a folder")):
        result = run("train", "-o", output)
        assert result.exit_code == 2, result.output
        assert message in result.stderr and result.stderr.count("\n") == 1
    assert blocker.read_text() == "not a folder"


def test_outputs_replace_a_symlink_instead_of_writing_through_it(tmp_path):
    """A link planted at OUTPUT/loss.png (or model.npz) is replaced by the new file; the file
    it points to, outside the output folder, is left as it was."""
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    output = tmp_path / "out"
    output.mkdir()
    for name in ("loss.png", "model.npz"):
        (output / name).symlink_to(outside)
    result = run("train", "-k", 2, "-n", 2, "-o", output)
    assert result.exit_code == 0, result.output
    assert outside.read_text() == "keep me"
    for name in ("loss.png", "model.npz"):
        assert not (output / name).is_symlink() and (output / name).stat().st_size > 1000
