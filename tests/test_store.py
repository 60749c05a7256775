"""Model files: round trip without pickle, refusal of damaged or foreign files."""

import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from alsmf.data.ratings import Ratings
from alsmf.errors import ModelFileError
from alsmf.model import MFModel
from alsmf.models.als import ALS


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 30, 400)
    items = rng.integers(100, 140, 400)
    keys = np.unique(users * 1000 + items)
    train = Ratings.from_arrays(keys // 1000, keys % 1000, rng.integers(1, 6, len(keys)) * 1.0)
    return ALS(factors=4, iterations=3).fit(train)


def test_loaded_model_predicts_identically(trained, tmp_path):
    path = trained.save(tmp_path / "model")
    assert path.name == "model.npz" and path.is_file()
    loaded = MFModel.load(path)
    users = np.array([0, 5, 29, 77])
    items = np.array([100, 120, 139, 101])
    assert np.array_equal(loaded.predict(users, items), trained.predict(users, items))
    assert loaded.params == trained.params
    assert loaded.history == trained.history
    assert loaded.biases == trained.biases
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed away


def test_model_file_holds_no_pickle(trained, tmp_path):
    path = trained.save(tmp_path / "model.npz")
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            header = archive.read(name)[:128]
            assert b"'descr': '|O'" not in header and b"'descr': 'O'" not in header


def test_truncated_file_is_refused(trained, tmp_path):
    path = trained.save(tmp_path / "model.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a readable alsmf model file"):
        MFModel.load(path)


def test_altered_array_is_refused(trained, tmp_path):
    path = trained.save(tmp_path / "model.npz")
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["user_factors"] = arrays["user_factors"] + 1.0
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="does not match its checksum"):
        MFModel.load(path)


def test_unknown_version_and_foreign_files_are_refused(trained, tmp_path):
    path = trained.save(tmp_path / "model.npz")
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta["version"] = 99
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="version 99 is not supported"):
        MFModel.load(path)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(ModelFileError, match="not an alsmf model file"):
        MFModel.load(foreign)
    with pytest.raises(ModelFileError, match="no such model file"):
        MFModel.load(tmp_path / "missing.npz")


def test_training_rating_values_round_trip_and_are_checksummed(trained, tmp_path):
    model = MFModel(**{**vars(trained), "seen_values": np.arange(
        len(trained.seen_indices), dtype=np.float32) / 2})
    loaded = MFModel.load(model.save(tmp_path / "model.npz"))
    assert loaded.seen_values.dtype == np.float32
    assert np.array_equal(loaded.seen_values, model.seen_values)
    with np.load(tmp_path / "model.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["seen_values"] = arrays["seen_values"][::-1].copy()
    np.savez(tmp_path / "model.npz", **arrays)
    with pytest.raises(ModelFileError, match="'seen_values' does not match its checksum"):
        MFModel.load(tmp_path / "model.npz")


def test_files_without_rating_values_still_load(trained, tmp_path):
    path = MFModel(**{**vars(trained), "seen_values": None}).save(tmp_path / "old.npz")
    with np.load(path) as archive:
        assert "seen_values" not in archive.files
    loaded = MFModel.load(path)
    assert loaded.seen_values is None
    assert np.array_equal(loaded.recommend_all(n=3)[0], trained.recommend_all(n=3)[0])


def test_extras_round_trip_and_are_checksummed(trained, tmp_path):
    extra = np.arange(trained.n_items * trained.factors, dtype=np.float32).reshape(
        trained.n_items, trained.factors)  # one row per item, k columns, as Z is
    model = replace(trained, extras=trained.extras | {"implicit_item_factors": extra})
    path = model.save(tmp_path / "m.npz")
    loaded = MFModel.load(path)
    np.testing.assert_array_equal(loaded.extras["implicit_item_factors"], extra)
    altered = tmp_path / "altered.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(altered, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "extra_implicit_item_factors.npy":
                continue  # drop the extra: the header still lists its digest
            target.writestr(item, data)
    with pytest.raises(ModelFileError, match="'extra_implicit_item_factors' is missing"):
        MFModel.load(altered)


def test_extras_must_be_numeric(trained, tmp_path):
    trained.extras["labels"] = np.array(["a", "b"], dtype=object)
    try:
        with pytest.raises(ValueError, match="must be a numeric array"):
            trained.save(tmp_path / "m.npz")
    finally:
        del trained.extras["labels"]


def test_the_row_system_round_trips_and_version_1_files_derive_it(trained, tmp_path):
    """Version 2 saves the row system; a version-1 file, which kept it inside the trainer's
    settings, loads with the same system (its rating scale unknown) and folds in alike."""
    path = trained.save(tmp_path / "model.npz")
    assert MFModel.load(path).system == trained.system
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta["version"] = 1
    del meta["system"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    old = MFModel.load(path)
    assert old.system == replace(trained.system, rating_scale=None)
    items, ratings = trained.item_ids[:3], [5.0, 3.0, 1.0]
    np.testing.assert_array_equal(old.fold_in(items, ratings).factors,
                                  trained.fold_in(items, ratings).factors)


def test_a_bad_row_system_in_the_header_is_one_clear_error(trained, tmp_path):
    path = trained.save(tmp_path / "model.npz")
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta["system"]["reg"] = "a lot"
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="the row system's reg is 'a lot', not a number"):
        MFModel.load(path)
