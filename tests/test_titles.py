"""Movie titles: reading each release's movies file (folder and zip) and finding movies by title.

Releases are faked with a few lines in tmp_path (the real files may not be redistributed);
the real ml-100k is used when it is present in the shared data folder.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest

from alsmf.data.titles import GENRES_100K, find_items, read_titles
from alsmf.errors import DataError


def _flags(*on: int) -> str:
    return "|".join("1" if i in on else "0" for i in range(19))


U_ITEM = (
    f"1|Toy Story (1995)|01-Jan-1995||http://x|{_flags(3, 4, 5)}\n"
    f"2|Belle époque (1992)|01-Jan-1992||http://x|{_flags(5, 14)}\n"
    f"3|unknown||||{_flags()}\n"
)
MOVIES_DAT = (
    "1::Toy Story (1995)::Animation|Children's|Comedy\n"
    "2::Belle époque (1992)::Comedy|Romance\n"
    "3::Nothing (2000)::(no genres listed)\n"
)
MOVIES_CSV = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '2,"American President, The (1995)",Comedy|Drama|Romance\n'
    "3,Belle époque (1992),Comedy|Romance\n"
    "4,Nothing (2000),(no genres listed)\n"
)


def make_release(root: Path, kind: str, movies: bytes | None, genre: bytes | None = None) -> Path:
    """A tiny release folder of ``kind`` (ml-100k, ml-1m, ml-10m, ml-latest-small)."""
    ratings = {"ml-100k": ("u.data", "1\t1\t5\t100\n"),
               "ml-1m": ("ratings.dat", "1::1::5::100\n"),
               "ml-10m": ("ratings.dat", "1::1::4.5::100\n"),
               "ml-latest-small": ("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.5,100\n")}
    movies_file = {"ml-100k": "u.item", "ml-1m": "movies.dat", "ml-10m": "movies.dat",
                   "ml-latest-small": "movies.csv"}[kind]
    folder = root / kind
    folder.mkdir(parents=True)
    name, text = ratings[kind]
    (folder / name).write_text(text)
    if kind == "ml-1m":
        (folder / "users.dat").write_text("")
    if movies is not None:
        (folder / movies_file).write_bytes(movies)
    if genre is not None:
        (folder / "u.genre").write_bytes(genre)
    return folder


def zip_release(folder: Path) -> Path:
    target = folder.parent / f"{folder.name}.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, f"{folder.name}/{file.name}")
    return target


CASES = {
    "ml-100k": (U_ITEM.encode("latin-1"),
                [(1, "Toy Story (1995)", "Animation|Children's|Comedy"),
                 (2, "Belle époque (1992)", "Comedy|Romance"),
                 (3, "unknown", "")]),
    "ml-1m": (MOVIES_DAT.encode("latin-1"),
              [(1, "Toy Story (1995)", "Animation|Children's|Comedy"),
               (2, "Belle époque (1992)", "Comedy|Romance"),
               (3, "Nothing (2000)", "")]),
    "ml-10m": (MOVIES_DAT.encode("utf-8"),
               [(1, "Toy Story (1995)", "Animation|Children's|Comedy"),
                (2, "Belle époque (1992)", "Comedy|Romance"),
                (3, "Nothing (2000)", "")]),
    "ml-latest-small": (MOVIES_CSV.encode("utf-8"),
                        [(1, "Toy Story (1995)", "Adventure|Animation|Children|Comedy|Fantasy"),
                         (2, "American President, The (1995)", "Comedy|Drama|Romance"),
                         (3, "Belle époque (1992)", "Comedy|Romance"),
                         (4, "Nothing (2000)", "")]),
}


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("kind", list(CASES))
def test_each_format(tmp_path, kind, as_zip):
    data, expected = CASES[kind]
    folder = make_release(tmp_path, kind, data)
    path = zip_release(folder) if as_zip else folder
    titles = read_titles(path)
    assert list(titles.columns) == ["item", "title", "genres"]
    assert titles["item"].dtype == "int64"
    assert list(titles.itertuples(index=False, name=None)) == expected


def test_other_paths_to_the_release(tmp_path):
    folder = make_release(tmp_path / "parent", "ml-1m", CASES["ml-1m"][0])
    assert len(read_titles(folder.parent)) == 3
    assert len(read_titles(folder / "ratings.dat")) == 3


def test_u_genre_names_are_used(tmp_path):
    names = [f"G{i}" for i in range(19)]
    genre = "".join(f"{name}|{i}\n" for i, name in enumerate(names)) + "\n"
    folder = make_release(tmp_path, "ml-100k", U_ITEM.encode("latin-1"), genre.encode())
    titles = read_titles(folder)
    assert titles["genres"].tolist() == ["G3|G4|G5", "G5|G14", ""]


def test_u_genre_sets_the_flag_count(tmp_path):
    genre = b"unknown|0\nAction|1\n"
    folder = make_release(tmp_path, "ml-100k", b"1|A (1990)|||url|0|1\n2|B (1991)|||url|1|0\n",
                          genre)
    assert read_titles(folder)["genres"].tolist() == ["Action", "unknown"]


def test_standard_genre_names():
    assert len(GENRES_100K) == 19 and GENRES_100K[4] == "Children's"


def test_latin1_csv_does_not_crash(tmp_path):
    folder = make_release(tmp_path, "ml-latest-small", MOVIES_CSV.encode("latin-1"))
    assert read_titles(folder)["title"][2] == "Belle époque (1992)"


def test_crlf_and_bom(tmp_path):
    data = ("\ufeff" + MOVIES_CSV).replace("\n", "\r\n").encode("utf-8")
    folder = make_release(tmp_path, "ml-latest-small", data)
    titles = read_titles(folder)
    assert titles["title"][1] == "American President, The (1995)"
    assert titles["genres"][0] == "Adventure|Animation|Children|Comedy|Fantasy"


@pytest.mark.parametrize("kind", ["ml-100k", "ml-1m", "ml-latest-small"])
def test_no_movies_file_gives_none(tmp_path, kind):
    folder = make_release(tmp_path, kind, None)
    assert read_titles(folder) is None
    assert read_titles(zip_release(folder)) is None


@pytest.mark.parametrize("kind, data, line", [
    ("ml-100k", U_ITEM + "4|Short|line\n", 4),
    ("ml-100k", U_ITEM.replace("1|Toy", "x|Toy"), 1),
    ("ml-100k", f"1|A|||url|{_flags()}\n2|B|||url|{_flags().replace('0', '2', 1)}\n", 2),
    ("ml-1m", MOVIES_DAT + "4::no genres field\n", 4),
    ("ml-1m", "\n" + MOVIES_DAT.replace("2::", "two::"), 3),
    ("ml-latest-small", MOVIES_CSV + "5,Too,many,fields\n", 6),
    ("ml-latest-small", MOVIES_CSV.replace("4,", "four,"), 5),
])
def test_malformed_file_names_file_and_line(tmp_path, kind, data, line):
    folder = make_release(tmp_path, kind, data.encode("utf-8"))
    with pytest.raises(DataError, match=rf"(u\.item|movies\.(dat|csv)): line {line}:"):
        read_titles(folder)


def test_malformed_member_in_zip_names_the_member(tmp_path):
    folder = make_release(tmp_path, "ml-1m", b"1::broken\n")
    with pytest.raises(DataError, match=r"ml-1m\.zip:ml-1m/movies\.dat: line 1:"):
        read_titles(zip_release(folder))


def test_bad_csv_header(tmp_path):
    folder = make_release(tmp_path, "ml-latest-small", b"id,name\n1,A\n")
    with pytest.raises(DataError, match=r"movies\.csv: line 1: expected the header"):
        read_titles(folder)


def test_duplicate_id(tmp_path):
    folder = make_release(tmp_path, "ml-1m", (MOVIES_DAT + "2::Again (1990)::Drama\n").encode())
    with pytest.raises(DataError, match="movie id 2 appears more than once"):
        read_titles(folder)


# ---------------------------------------------------------------------- find_items
@pytest.fixture
def titles() -> pd.DataFrame:
    return pd.DataFrame({
        "item": pd.Series([1, 50, 181, 172, 1984], dtype="int64"),
        "title": ["Toy Story (1995)", "Star Wars (1977)", "Return of the Jedi (1983)",
                  "Empire Strikes Back, The (1980)", "Star Wars (1977) Special Edition"],
        "genres": ["Animation", "Sci-Fi", "Sci-Fi", "Sci-Fi", "Sci-Fi"],
    })


def test_find_fragment(titles):
    found = find_items(titles, "star wars")
    assert found["item"].tolist() == [50, 1984]
    assert found.index.tolist() == [0, 1]


def test_find_exact_title_gives_one_row(titles):
    assert find_items(titles, "  STAR WARS (1977) ")["item"].tolist() == [50]


def test_find_by_id(titles):
    assert find_items(titles, "181")["title"].tolist() == ["Return of the Jedi (1983)"]
    assert find_items(titles, " 50 ")["item"].tolist() == [50]


def test_find_number_that_is_not_an_id_searches_titles(titles):
    assert find_items(titles, "1983")["item"].tolist() == [181]


def test_find_no_match(titles):
    assert find_items(titles, "Casablanca").empty
    assert find_items(titles, "   ").empty
    assert list(find_items(titles, "Casablanca").columns) == ["item", "title", "genres"]


def test_find_is_not_a_regex(titles):
    assert find_items(titles, "(1977)")["item"].tolist() == [50, 1984]
    assert find_items(titles, "Back, The").iloc[0]["item"] == 172


# ---------------------------------------------------------------------- the real ml-100k
def test_real_ml100k(ml100k_dir):
    titles = read_titles(ml100k_dir)
    assert len(titles) == 1682
    assert titles["item"].is_unique
    star_wars = titles.set_index("item").loc[50]
    assert star_wars["title"] == "Star Wars (1977)"
    assert star_wars["genres"] == "Action|Adventure|Romance|Sci-Fi|War"
    assert find_items(titles, "star wars (1977)")["item"].tolist() == [50]
    assert (titles["title"].str.contains("é")).any()  # Latin-1 decoded
