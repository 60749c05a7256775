"""The items of a model by raw id and by title: what turns "Star Wars" into item 50.

Wherever the command line or the service expects an item, a raw id or a title fragment will
do. An :class:`ItemCatalog` is built once from a model (its item ids, titles and genres, and
how many users rated each item in training) and answers two questions:

* :meth:`ItemCatalog.resolve`, which item a user means: a raw id the model knows; else the
  item whose whole title it is (ignoring case and surrounding spaces); else the one item whose
  title contains it. No match, or several, is an error that says so and names the first few.
* :meth:`ItemCatalog.search`, which items a title fragment may mean: the whole-title match
  first, then every title containing it, the most rated first (the film most people mean).

The titles are case-folded once, so a lookup is one dictionary probe for a whole title and one
vectorised scan of the titles for a fragment, not a pandas pass per lookup: the service
resolves every rated title of a request this way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from alsmf.errors import ConfigError, UnknownIdError

if TYPE_CHECKING:  # the catalog reads a model's arrays; it needs nothing else of it
    from alsmf.model import MFModel

SHOWN_MATCHES = 5
"""How many matches an ambiguous-title error names."""


class ItemCatalog:
    """A model's items, looked up by raw id or title.

    Attributes:
        item_ids: sorted raw ids (the model's).
        titles, genres: per item, or None when the model has no titles; genres are names
            joined by ``|``.
        popularity: how many users rated each item in training (orders search results).
    """

    def __init__(self, item_ids: np.ndarray, titles: np.ndarray | None,
                 genres: np.ndarray | None, popularity: np.ndarray) -> None:
        self.item_ids = np.asarray(item_ids)
        self.titles = None if titles is None else np.asarray(titles, dtype=str)
        self.genres = None if genres is None else np.asarray(genres, dtype=str)
        self.popularity = np.asarray(popularity)
        self._folded = (None if self.titles is None
                        else np.array([title.strip().casefold() for title in self.titles]))
        self._whole: dict[str, int] = {}
        for position, title in enumerate([] if self._folded is None else self._folded.tolist()):
            self._whole.setdefault(title, position)  # two items of one title: the first one

    @classmethod
    def from_model(cls, model: MFModel) -> ItemCatalog:
        """The catalog of ``model``'s items."""
        return cls(model.item_ids, model.item_titles, model.item_genres,
                   np.bincount(model.seen_indices, minlength=model.n_items))

    @property
    def has_titles(self) -> bool:
        return self.titles is not None

    def position(self, item: int) -> int:
        """The model index of raw item id ``item``; UnknownIdError when the model lacks it."""
        position = self._index(item)
        if position < 0:
            raise UnknownIdError(f"unknown item {item!r}")
        return position

    def title(self, item: int) -> str | None:
        """The title of raw item id ``item`` (None without titles)."""
        return None if self.titles is None else str(self.titles[self.position(item)])

    def genres_of(self, item: int) -> list[str]:
        """The genre names of raw item id ``item`` (empty without titles or genres)."""
        if self.genres is None:
            return []
        return [name for name in str(self.genres[self.position(item)]).split("|") if name]

    def resolve(self, text: str | int) -> int:
        """The raw id of the one item ``text`` names: a known id, a whole title, or a fragment
        of exactly one title (see the module docstring).

        Raises:
            UnknownIdError: nothing matches (or, without titles, ``text`` is no known id).
            ConfigError: the fragment matches several titles (the error names the most rated
                few).
        """
        text = str(text).strip()
        digits = text.removeprefix("-")
        if digits.isascii() and digits.isdigit() and self._index(int(text)) >= 0:
            return int(text)
        if self.titles is None:
            raise UnknownIdError(f"unknown item {text!r} (this model has no titles to search)")
        matches = self.search(text)
        if not len(matches):
            raise UnknownIdError(f"no item matches {text!r}")
        if len(matches) > 1:
            shown = "; ".join(self.titles[self.position(item)]
                              for item in matches[:SHOWN_MATCHES])
            raise ConfigError(f"{text!r} matches {len(matches)} items ({shown}...): be more "
                              "precise")
        return int(matches[0])

    def search(self, text: str) -> np.ndarray:
        """Raw ids of the items whose title ``text`` names: a whole title (ignoring case and
        surrounding spaces) gives just that item; otherwise every title containing it,
        ignoring case, the most rated first (ties: the lower id). Empty without titles or for
        blank text."""
        key = str(text).strip().casefold()
        if self._folded is None or not key:
            return self.item_ids[:0]
        if key in self._whole:
            return self.item_ids[[self._whole[key]]]
        found = np.flatnonzero(np.char.find(self._folded, key) >= 0)
        order = np.lexsort((found, -self.popularity[found]))
        return self.item_ids[found[order]]

    def _index(self, item: int) -> int:
        """The model index of raw item id ``item``, or -1."""
        if not -2**63 <= item < 2**63:  # beyond any id an int64 array holds
            return -1
        position = int(np.searchsorted(self.item_ids, item))
        found = position < len(self.item_ids) and self.item_ids[position] == item
        return position if found else -1
