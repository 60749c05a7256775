"""A model file is input: every crafted inconsistency is refused at load, in one line naming
the file and the problem, before any kernel sees it; valid files of every family still load.

The crafted files come from :mod:`tests.crafted_models`, each with valid digests.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field

import numpy as np
import pytest

from alsmf import ALS, ImplicitALS, store
from alsmf.archive import MAX_BYTES_VARIABLE
from alsmf.errors import ConfigError, ModelFileError
from alsmf.model import MFModel
from alsmf.models.bayes import BayesianMF
from alsmf.rowsystem import RowSystem
from tests.crafted_models import crafted_models
from tests.helpers import random_ratings


@pytest.fixture(scope="module")
def model() -> MFModel:
    return ALS(factors=4, iterations=2).fit(random_ratings(0))


@pytest.fixture(scope="module")
def crafted(model, tmp_path_factory):
    """Every crafted file, by name."""
    return {case.name: case for case in crafted_models(model, tmp_path_factory.mktemp("bad"))}


def refusal(path) -> str:
    """The message of the ModelFileError loading ``path`` raises."""
    with pytest.raises(ModelFileError) as error:
        MFModel.load(path)
    return str(error.value)


def test_every_crafted_file_is_refused_naming_the_file_and_the_problem(crafted):
    assert len(crafted) > 60
    wrong = {}
    for case in crafted.values():
        try:
            message = refusal(case.path)
        except pytest.fail.Exception:
            wrong[case.name] = "loaded without an error"
            continue
        if not (message.startswith(f"{case.path}: ") and case.problem in message
                and "\n" not in message):
            wrong[case.name] = message
    assert wrong == {}


def test_the_crafted_files_carry_valid_digests(crafted, model):
    """The field cases were written by the store itself: only the new checks refuse them."""
    loaded = store.load_dataclass(MFModel, crafted["swapped_factors"].path)
    assert np.array_equal(loaded.user_factors, model.item_factors)


@pytest.mark.parametrize("name", ["swapped_factors", "seen_index_past_the_items",
                                  "nan_factors", "unsorted_seen_row", "string_global_mean"])
@pytest.mark.parametrize("command", [["recommend", "--user", 0], ["predict", "0,1"],
                                     ["similar", "--item", 1]])
def test_the_command_line_refuses_a_crafted_file_in_one_line(cli, crafted, name, command):
    """Once a crash (free(): invalid next size, a segfault) or silent numbers; now exit 2."""
    case = crafted[name]
    result = cli(*command, "--model", case.path)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert case.path.name in lines[0] and case.problem in lines[0], lines[0]


@pytest.mark.parametrize("config", [
    ALS(factors=4, iterations=2),
    ALS(factors=4, iterations=2, implicit_weight=0.0, biases=False),
    BayesianMF(factors=4, sweeps=4, burn_in=1, samples=2),
    ImplicitALS(factors=4, iterations=2),
], ids=["als", "als-plain", "bayes", "ials"])
def test_valid_models_of_every_family_load_and_predict_alike(config, tmp_path):
    trained = config.fit(random_ratings(1))
    loaded = MFModel.load(trained.save(tmp_path / "model.npz"))
    assert loaded.extras.keys() == trained.extras.keys()
    users, items = trained.user_ids[:5], trained.item_ids[-5:]
    assert np.array_equal(loaded.predict(users, items), trained.predict(users, items))


def test_a_bayesian_model_keeps_its_draws_as_extras_the_checks_know(tmp_path):
    trained = BayesianMF(factors=4, sweeps=4, burn_in=1, samples=2).fit(random_ratings(1))
    assert {"alpha_samples", "user_bias_samples", "item_bias_samples"} <= trained.extras.keys()
    draws = len(trained.extras["alpha_samples"])
    MFModel.load(trained.save(tmp_path / "model.npz"))  # draws and k = draws x 4 fit
    assert trained.factors == 4 * draws


@dataclass(eq=False)
class RankedModel(MFModel):
    """A model with a ranking head's row system, as a model class that has one declares it."""

    ranking_system: RowSystem | None = field(default=None, metadata=store.OPTIONAL_ROW_SYSTEM)


def test_ranking_factors_load_with_their_row_system_and_only_with_it(model, tmp_path):
    head = {"ranking_user_factors": np.ones((model.n_users, 3), np.float32),
            "ranking_item_factors": np.ones((model.n_items, 3), np.float32)}
    system = RowSystem(reg=0.1, reg_bias=0.1, weighted_reg=False, biases=False)
    fields = dict(vars(model))
    plain = {name: array for name, array in model.extras.items() if name not in head}
    ranked = RankedModel(**fields | {"extras": plain | head, "ranking_system": system})
    loaded = RankedModel.load(ranked.save(tmp_path / "ranked.npz"))
    assert loaded.ranking_system == system
    assert np.array_equal(loaded.extras["ranking_item_factors"], head["ranking_item_factors"])
    alone = RankedModel(**fields | {"extras": plain, "ranking_system": system})
    with pytest.raises(ModelFileError, match="a ranking row system but no ranking factors"):
        RankedModel.load(alone.save(tmp_path / "alone.npz"))
    headless = RankedModel(**fields | {"extras": plain | head, "ranking_system": None})
    with pytest.raises(ModelFileError, match="ranking factors come without the ranking row"):
        RankedModel.load(headless.save(tmp_path / "headless.npz"))


def test_a_crafted_checkpoint_is_refused_before_training_resumes(crafted):
    case = crafted["seen_index_past_the_items"]
    with pytest.raises(ModelFileError, match="seen_indices holds item index"):
        ALS(factors=4, iterations=3).fit(random_ratings(0), checkpoint=case.path, resume=True)


def test_what_a_file_may_unpack_to_is_capped_by_an_environment_variable(model, tmp_path,
                                                                        monkeypatch):
    path = model.save(tmp_path / "model.npz")
    monkeypatch.setenv(MAX_BYTES_VARIABLE, "1000")
    assert f"more than the 1000 bytes a model file may (set {MAX_BYTES_VARIABLE}" \
        in refusal(path)
    monkeypatch.setenv(MAX_BYTES_VARIABLE, str(path.stat().st_size))
    MFModel.load(path)
    monkeypatch.setenv(MAX_BYTES_VARIABLE, "lots")
    with pytest.raises(ConfigError, match=f"{MAX_BYTES_VARIABLE} is 'lots', not a positive"):
        MFModel.load(path)


def test_the_header_has_its_own_cap(model, tmp_path, monkeypatch):
    path = model.save(tmp_path / "model.npz")
    monkeypatch.setattr(store, "MAX_HEADER_BYTES", 100)
    assert "array 'meta' is" in refusal(path) and "more than the 100 bytes it may be" \
        in refusal(path)


def test_only_stored_or_deflated_members_are_read(model, tmp_path):
    path = model.save(tmp_path / "model.npz")
    packed = tmp_path / "bzip2.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(packed, "w") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name), compress_type=zipfile.ZIP_BZIP2)
    assert "uses compression method 12; alsmf reads stored or deflated ones" in refusal(packed)
    deflated = tmp_path / "deflated.npz"
    np.savez_compressed(deflated, **dict(np.load(path)))
    loaded = MFModel.load(deflated)  # what np.savez_compressed writes still loads
    assert np.array_equal(loaded.user_factors, model.user_factors)



def test_a_member_that_unpacks_a_hundred_times_its_size_is_refused_before_it_is_read(
        model, tmp_path):
    """An npz bomb: 8 MiB of zeros deflate to about 8 KB; a real model's members pack at
    most 9:1 even compressed, and load."""
    path = model.save(tmp_path / "model.npz")
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    np.savez_compressed(tmp_path / "packed.npz", **arrays)
    assert np.array_equal(MFModel.load(tmp_path / "packed.npz").user_factors,
                          model.user_factors)
    arrays["user_factors"] = np.zeros(1 << 20)
    np.savez_compressed(tmp_path / "bomb.npz", **arrays)
    message = refusal(tmp_path / "bomb.npz")
    assert "bomb.npz" in message and "user_factors" in message and "100:1" in message
