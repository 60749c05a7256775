"""``alsmf train --feedback implicit``: files of (user, item) pairs, with or without a count,
train implicit-feedback ALS; explicit feedback still needs its ratings."""

import json

import numpy as np
import pytest

from alsmf.data.source import DataSource
from alsmf.model import MFModel


def pairs(n_users: int = 40, per_user: int = 8, n_items: int = 30) -> list[tuple[int, int]]:
    """``per_user`` distinct items (ids 100..) for each of ``n_users`` users (ids 1..)."""
    rng = np.random.default_rng(0)
    return [(user, 100 + int(item)) for user in range(1, n_users + 1)
            for item in np.sort(rng.choice(n_items, per_user, replace=False))]


def write_pairs(path, header: str | None = "user,item", counts: bool = False):
    """The pairs as a CSV; with ``counts``, a third field 1..5 that cycles over the rows."""
    rows = [f"{u},{i}" + (f",{n % 5 + 1}" if counts else "") for n, (u, i) in enumerate(pairs())]
    path.write_text("".join(f"{line}\n" for line in ([header] if header else []) + rows))
    return path


@pytest.mark.parametrize("header", ["user,item", "userId,movieId", None])
def test_a_pairs_file_trains_implicit_als_and_recommends(cli, tmp_path, header):
    data = write_pairs(tmp_path / "clicks.csv", header)
    result = cli("train", "--data", data, "--feedback", "implicit", "--set", "iterations=3",
                 "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["method"] == "ials"
    assert report["data"]["train_ratings"] + report["data"]["test_ratings"] == len(pairs())
    model = MFModel.load(tmp_path / "out" / "model.npz")
    assert model.params["method"] == "ials"
    assert set(model.seen_values.tolist()) == {1.0}  # no count column: each pair counts once
    recommended = cli("recommend", "-m", tmp_path / "out" / "model.npz", "--user", 1, "-n", 5,
                      "--json")
    assert recommended.exit_code == 0, recommended.output
    items = [row["item"] for row in json.loads(recommended.stdout)["items"]]
    assert len(items) == 5
    seen = model.item_ids[model.seen_indices[model.seen_indptr[0]:model.seen_indptr[1]]]
    assert model.user_ids[0] == 1 and len(seen) and not set(items) & set(seen.tolist())


def test_a_count_column_becomes_the_values(cli, tmp_path):
    train = write_pairs(tmp_path / "plays.csv", "user,item,plays", counts=True)
    test = tmp_path / "test.csv"
    test.write_text("user,item\n1,129\n")
    result = cli("train", "--train", train, "--test", test, "--feedback", "implicit",
                 "--method", "ials", "--set", "iterations=2", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    model = MFModel.load(tmp_path / "out" / "model.npz")
    expected = [float(n % 5 + 1) for n in range(len(pairs()))]
    assert sorted(model.seen_values.tolist()) == sorted(expected)
    # the same through DataSource, the object every command reads through, and --rating-col
    renamed, renamed_test = tmp_path / "renamed.csv", tmp_path / "renamed-test.csv"
    renamed.write_text(train.read_text().replace("plays", "minutes", 1))
    renamed_test.write_text("user,item,minutes\n1,129,5\n")
    source = DataSource(train_file=renamed, test_file=renamed_test, feedback="implicit",
                        rating_col="minutes")
    assert sorted(source.train_test().train.values.tolist()) == sorted(expected)


def test_counts_weight_the_fit_with_a_value_dependent_confidence(cli, tmp_path):
    train = write_pairs(tmp_path / "plays.csv", "user,item,plays", counts=True)
    models = {}
    for confidence in ("constant", "log"):
        output = tmp_path / confidence
        result = cli("train", "--data", train, "--feedback", "implicit", "--set",
                     f"confidence={confidence}", "--set", "iterations=3", "-o", output)
        assert result.exit_code == 0, result.output
        models[confidence] = MFModel.load(output / "model.npz")
    assert models["log"].system.confidence == "log"
    # the counts change the fit only when the confidence depends on them
    assert not np.allclose(models["log"].user_factors, models["constant"].user_factors)


def test_repeated_pairs_follow_the_duplicates_policy(cli, tmp_path):
    data = tmp_path / "clicks.csv"
    data.write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in pairs() + pairs()[:1]))
    refused = cli("train", "--data", data, "--feedback", "implicit", "-o", tmp_path / "out")
    assert refused.exit_code == 2
    assert "rated twice, at line 2 and line 322" in refused.stderr
    kept = cli("train", "--data", data, "--feedback", "implicit", "--duplicates", "last",
               "--set", "iterations=1", "-o", tmp_path / "out", "--json")
    assert kept.exit_code == 0, kept.output


def test_implicit_feedback_with_a_rating_method_is_one_line(cli, tmp_path):
    data = write_pairs(tmp_path / "clicks.csv")
    result = cli("train", "--data", data, "--feedback", "implicit", "--method", "als",
                 "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr == ("error: --feedback implicit trains implicit-feedback ALS "
                             "(--method ials); --method als fits ratings\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("header, message", [
    ("user,item", "clicks.csv: missing column(s) 'rating'; the header (line 1) has 'user', "
                  "'item' (pairs without ratings are implicit feedback: alsmf train --feedback "
                  "implicit)"),
    (None, "clicks.csv, line 1: found 2 field(s) separated by ','; a file without a header "
           "needs user, item and rating columns"),
])
def test_explicit_feedback_on_pairs_still_asks_for_the_rating(cli, tmp_path, header, message):
    data = write_pairs(tmp_path / "clicks.csv", header)
    result = cli("train", "--data", data, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_typed_als_options_set_implicit_als_fields_and_its_defaults_stay(cli, tmp_path):
    data = write_pairs(tmp_path / "clicks.csv")

    def settings(*args):
        result = cli("train", "--data", data, "--feedback", "implicit", *args,
                     "-o", tmp_path / "out", "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["settings"]

    defaults = settings("--iterations", 2)
    assert (defaults["iterations"], defaults["reg"], defaults["factors"],
            defaults["weighted_reg"]) == (2, 0.05, 32, False)
    typed = settings("-n", 1, "--reg", 0.5, "-k", 4, "--weighted-reg", "--solver", "cholesky",
                     "--set", "alpha=2")
    assert (typed["iterations"], typed["reg"], typed["factors"], typed["weighted_reg"],
            typed["solver"], typed["alpha"]) == (1, 0.5, 4, True, "cholesky", 2)
    refused = cli("train", "--data", data, "--feedback", "implicit", "--reg-bias", 0.1,
                  "-o", tmp_path / "out")
    assert refused.exit_code == 2
    assert "--method ials does not take --reg-bias" in refused.stderr
