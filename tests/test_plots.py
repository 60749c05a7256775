"""The loss figure: written atomically as a PNG, with the first phase shaded."""

import numpy as np
import pytest
from matplotlib.image import imread

from alsmf.history import IterationRecord
from alsmf.plots import plot_history

SHADE = np.array([0.9, 0.9, 0.9])  # the phase's grey


def history(n: int = 10) -> list[IterationRecord]:
    return [IterationRecord(i, 100.0 / i, 1.0 / i, 1.2 / i, 0.1) for i in range(1, n + 1)]


def grey_pixels(path) -> int:
    """How many pixels of the image are the phase's grey."""
    pixels = imread(path)[..., :3]
    return int(np.all(np.abs(pixels - SHADE) < 0.005, axis=-1).sum())


def test_the_first_phase_is_shaded_and_only_when_asked(tmp_path):
    plain = plot_history(history(), tmp_path / "plain.png")
    shaded = plot_history(history(), tmp_path / "shaded.png", phase=(2, "warm-up at λ/2"))
    longer = plot_history(history(), tmp_path / "longer.png", phase=(5, "burn-in"))
    # a phase of 2 of 10 iterations shades thousands of pixels, of 5 about twice as many
    assert grey_pixels(plain) + 5000 < grey_pixels(shaded)
    assert 1.5 * grey_pixels(shaded) < grey_pixels(longer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["longer.png", "plain.png",
                                                         "shaded.png"]


def test_an_empty_history_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no iterations"):
        plot_history([], tmp_path / "x.png")
