"""MovieLens releases: detection from folder, zip or file, loading, canonical folds, load_ratings.

Releases are faked with a few ratings in tmp_path (the real files may not be redistributed);
the real ml-100k is used when it is present in the shared data folder.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alsmf.data.movielens import (
    RELEASE_FORMATS,
    canonical_folds,
    detect_release,
    load_fold,
    load_movielens,
    load_ratings,
)
from alsmf.errors import ConfigError, DataError

# (user, item, rating, timestamp) rows; 0.5 and 4.5 only where the release has half stars
WHOLE = [(1, 10, 5, 100), (1, 20, 3, 101), (2, 10, 4, 102), (3, 30, 1, 103)]
HALF = [(1, 10, 4.5, 100), (1, 20, 0.5, 101), (2, 10, 4, 102), (3, 30, 1, 103)]


def _lines(rows, sep: str) -> str:
    return "".join(sep.join(f"{v:g}" for v in row) + "\n" for row in rows)


def make_release(root: Path, folder: str, rows=WHOLE) -> Path:
    """A tiny release folder laid out like the GroupLens one named ``folder``."""
    path = root / folder
    path.mkdir(parents=True)
    if folder == "ml-100k":
        (path / "u.data").write_text(_lines(rows, "\t"))
        (path / "u.item").write_text("")
        for fold in ("u1", "u2", "u3", "u4", "u5", "ua", "ub"):
            n = int(fold[1]) % len(rows) if fold[1].isdigit() else 0
            test = [rows[n]]
            (path / f"{fold}.base").write_text(_lines([r for r in rows if r not in test], "\t"))
            (path / f"{fold}.test").write_text(_lines(test, "\t"))
    elif folder == "ml-1m":
        (path / "ratings.dat").write_text(_lines(rows, "::"))
        (path / "users.dat").write_text("")
    elif folder == "ml-10M100K":
        (path / "ratings.dat").write_text(_lines(rows, "::"))
        (path / "tags.dat").write_text("")
    else:
        (path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + _lines(rows, ","))
        (path / "movies.csv").write_text("movieId,title,genres\n")
    return path


def make_zip(folder: Path) -> Path:
    archive = folder.parent / f"{folder.name.lower()}.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in sorted(folder.iterdir()):
            out.write(file, f"{folder.name}/{file.name}")
    return archive


RELEASES = [("ml-100k", "ml-100k", WHOLE), ("ml-1m", "ml-1m", WHOLE),
            ("ml-10M100K", "ml-10m", HALF), ("ml-latest-small", "ml-latest-small", HALF),
            ("ml-25m", "ml-25m", HALF)]


@pytest.mark.parametrize("folder, name, rows", RELEASES)
@pytest.mark.parametrize("given", ["folder", "parent", "zip", "file"])
def test_release_is_detected_and_loaded(tmp_path, folder, name, rows, given):
    release = make_release(tmp_path / "data", folder, rows)
    path = {"folder": release, "parent": release.parent, "zip": make_zip(release),
            "file": release / RELEASE_FORMATS[name].ratings_file}[given]
    if given == "zip":
        shutil.rmtree(release)
    info = detect_release(path)
    assert info.name == name
    ratings = load_movielens(path)
    assert ratings.scale == RELEASE_FORMATS[name].scale
    frame = ratings.to_frame()
    assert frame[["user", "item", "rating", "timestamp"]].values.tolist() == [list(r) for r in rows]
    assert len(load_ratings(path)) == len(rows)


def test_release_is_named_by_its_files_when_the_folder_is_renamed(tmp_path):
    one_m = make_release(tmp_path, "ml-1m")
    assert detect_release(one_m.rename(tmp_path / "mine")).name == "ml-1m"
    ten_m = make_release(tmp_path, "ml-10M100K", HALF)
    assert detect_release(ten_m.rename(tmp_path / "other")).name == "ml-10m"


def test_ml1m_refuses_half_stars_naming_the_zip_member_and_line(tmp_path):
    archive = make_zip(make_release(tmp_path, "ml-1m", HALF))
    with pytest.raises(DataError, match=r"ml-1m\.zip:ml-1m/ratings\.dat, line 2: rating 0\.5 is "
                                        r"outside the scale 1\.\.5"):
        load_movielens(archive)


def test_zip_extraction_leaves_no_temporary_files(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    archive = make_zip(make_release(tmp_path, "ml-100k"))
    load_movielens(archive)
    canonical_folds(archive)
    assert list(scratch.iterdir()) == []


def test_unknown_layouts_say_what_was_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    expected = "not a MovieLens release.*u.data.*ratings.dat.*ratings.csv"
    with pytest.raises(DataError, match=expected):
        detect_release(tmp_path / "empty")
    with pytest.raises(DataError, match="no such file or folder"):
        detect_release(tmp_path / "absent")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as out:
        out.writestr("other/readme.txt", "hi")
    with pytest.raises(DataError, match="other.zip: not a MovieLens release"):
        detect_release(tmp_path / "other.zip")
    make_release(tmp_path / "two", "ml-100k")
    make_release(tmp_path / "two", "ml-1m")
    with pytest.raises(DataError, match="several releases \\(ml-100k, ml-1m\\)"):
        detect_release(tmp_path / "two")


def test_canonical_folds_share_one_id_map_per_pair(tmp_path):
    for path in (make_release(tmp_path, "ml-100k"), make_zip(tmp_path / "ml-100k")):
        folds = canonical_folds(path)
        assert len(folds) == 5
        for n, (train, test) in enumerate(folds, start=1):
            assert train.source.endswith(f"u{n}.base") and test.source.endswith(f"u{n}.test")
            assert train.user_ids is test.user_ids and train.item_ids is test.item_ids
            assert len(train) == 3 and len(test) == 1
            assert train.scale == test.scale == (1.0, 5.0)
        test = folds[0][1]
        assert test.to_frame().values.tolist() == [list(WHOLE[1])]


def test_load_fold_checks_the_name_and_the_release(tmp_path):
    release = make_release(tmp_path, "ml-100k")
    train, test = load_fold(release, "ua")
    assert len(train) == 3 and len(test) == 1
    with pytest.raises(ConfigError, match="unknown fold 'u9'"):
        load_fold(release, "u9")
    with pytest.raises(DataError, match="ship with ml-100k only"):
        load_fold(make_release(tmp_path, "ml-1m"), "u1")


def test_a_pair_in_both_train_and_test_is_refused(tmp_path):
    release = make_release(tmp_path, "ml-100k")
    (release / "u1.test").write_text(_lines([WHOLE[0]], "\t"))
    with pytest.raises(DataError, match="u1.base.*rated twice.*row 1 of .*u1.base and row 1 of "
                                        ".*u1.test"):
        load_fold(release, "u1")


def test_load_ratings_takes_frames_generic_files_and_releases(tmp_path):
    frame = pd.DataFrame({"user": [1, 2], "item": [3, 3], "rating": [4.0, 5.0]})
    assert len(load_ratings(frame)) == 2
    generic = tmp_path / "ratings.csv"  # a release's file name, but not its columns
    generic.write_text("user,item,rating\n1,2,3\n")
    assert load_ratings(generic).scale is None
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    assert len(load_ratings(tmp_path / "r.parquet", duplicates="mean")) == 2
    (tmp_path / "r.tsv").write_text("u\ti\tr\n1\t2\t3\n")
    assert len(load_ratings(tmp_path / "r.tsv", user_col="u", item_col="i", rating_col="r")) == 1
    release = make_release(tmp_path, "ml-latest-small", HALF)
    assert load_ratings(release / "ratings.csv", user_col="user").scale == (0.5, 5.0)
    with pytest.raises(DataError, match="no such file"):
        load_ratings(tmp_path / "absent.csv")


def test_real_ml100k(ml100k_dir):
    ratings = load_ratings(ml100k_dir)
    assert (len(ratings), ratings.n_users, ratings.n_items) == (100_000, 943, 1682)
    assert ratings.scale == (1.0, 5.0)
    assert set(np.unique(ratings.values)) == {1, 2, 3, 4, 5}
    train, test = load_fold(ml100k_dir, "u1")
    assert (len(train), len(test)) == (80_000, 20_000)
    assert train.user_ids is test.user_ids
