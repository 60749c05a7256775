"""Looking a model's items up by raw id or title (what the CLI and the service accept)."""

import numpy as np
import pytest

from alsmf.catalog import ItemCatalog
from alsmf.errors import ConfigError, UnknownIdError


@pytest.fixture
def catalog():
    ids = np.array([1, 50, 172, 181, 1984])
    titles = np.array(["Toy Story (1995)", "Star Wars (1977)", "Empire Strikes Back, The (1980)",
                       "Return of the Jedi (1983)", "Star Wars: Shorts (1977)"])
    genres = np.array(["Animation|Children's|Comedy", "Action|Sci-Fi", "Action|Sci-Fi", "",
                       "Sci-Fi"])
    return ItemCatalog(ids, titles, genres, popularity=np.array([9, 20, 15, 14, 30]))


def test_an_id_a_whole_title_or_a_unique_fragment_names_one_item(catalog):
    assert catalog.resolve("181") == 181
    assert catalog.resolve(" 50 ") == 50
    assert catalog.resolve(1984) == 1984
    assert catalog.resolve("  STAR WARS (1977) ") == 50  # a whole title wins over fragments
    assert catalog.resolve("jedi") == 181
    assert catalog.resolve("Back, The") == 172


def test_several_or_no_matches_are_errors_that_say_so(catalog):
    with pytest.raises(ConfigError, match=r"'star' matches 2 items \(Star Wars: Shorts \(1977\); "
                                          r"Star Wars \(1977\)\.\.\.\): be more precise"):
        catalog.resolve("star")
    with pytest.raises(UnknownIdError, match="no item matches 'Casablanca'"):
        catalog.resolve("Casablanca")
    with pytest.raises(UnknownIdError, match="no item matches '2'"):  # no id, nor in a title
        catalog.resolve("2")
    with pytest.raises(ConfigError, match="'7' matches 2 items"):  # not an id: a fragment
        catalog.resolve("7")
    with pytest.raises(UnknownIdError, match="no item matches"):
        catalog.resolve(str(10**40))


def test_search_puts_the_whole_title_first_then_the_most_rated(catalog):
    assert catalog.search("(1977)").tolist() == [1984, 50]
    assert catalog.search("star wars (1977)").tolist() == [50]
    assert catalog.search("r").tolist() == [1984, 50, 172, 181, 1]
    assert catalog.search("   ").tolist() == []
    assert catalog.search("zzz").tolist() == []


def test_titles_and_genres_by_id(catalog):
    assert catalog.title(172) == "Empire Strikes Back, The (1980)"
    assert catalog.genres_of(1) == ["Animation", "Children's", "Comedy"]
    assert catalog.genres_of(181) == []
    with pytest.raises(UnknownIdError, match="unknown item 2"):
        catalog.title(2)


def test_a_model_without_titles_takes_ids_only():
    catalog = ItemCatalog(np.array([3, 4]), None, None, np.array([1, 1]))
    assert not catalog.has_titles and catalog.resolve("4") == 4
    assert catalog.title(3) is None and catalog.genres_of(3) == []
    assert catalog.search("4").tolist() == []
    with pytest.raises(UnknownIdError, match="no titles to search"):
        catalog.resolve("Toy Story")
