"""What every training method promises, checked for each method ``alsmf compare`` can run.

The tests are parametrised over :func:`alsmf.evaluation.methods.available_methods`, so a new
method is checked as soon as it is registered there; it only needs a row in :data:`METHODS`
(small, fast settings), and until it has one its tests fail saying so.

The Ctrl-C and checkpoint contracts are written for the shared training loop: every method's
``fit(train, test=None, *, callback=None, threads=None, checkpoint=None, checkpoint_every=1,
resume=False)``, driving the state returned by its config's ``start(train, test=None)`` one
``state.step(iteration)`` (1-based) at a time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from alsmf import TrainingInterrupted
from alsmf.data.ratings import Ratings
from alsmf.errors import DataError
from alsmf.evaluation.methods import available_methods
from alsmf.model import FoldedUser, IterationRecord, MFModel
from tests.helpers import random_ratings


@dataclass(frozen=True)
class Method:
    """How the contract tests run one method.

    Attributes:
        settings: field values for a small, fast run.
        iterations_field: the field that counts its iterations; None for a closed form,
            which always runs exactly one.
        fold_in_error: the error ``fold_in`` raises by design, or None when it works.
    """

    settings: dict[str, Any]
    iterations_field: str | None
    fold_in_error: type[Exception] | None = None


METHODS = {
    "als": Method({"factors": 3, "iterations": 4}, "iterations"),
    # which sweeps are kept depends on ``sweeps``, so a resumed run keeps the same count
    "bayes": Method({"factors": 2, "sweeps": 8, "burn_in": 2}, "sweeps"),
    # μ alone: reg is 0 and the one factor column is zero, so the fold-in system is singular
    "ials": Method({"factors": 3, "iterations": 4}, "iterations"),
    "mean": Method({}, None, fold_in_error=DataError),
    "bias": Method({"epochs": 4}, "epochs"),
    "sgd": Method({"factors": 3, "epochs": 4}, "epochs"),
    "gd": Method({"factors": 2, "steps": 6}, "steps"),
    "svd": Method({"factors": 3}, None),
}
"""Per method name: its contract settings and the field counting its iterations."""

N_USERS, N_ITEMS = 40, 30
FIRST_USER, FIRST_ITEM = 1000, 5000
TRAINED_ARRAYS = ("user_factors", "item_factors", "user_bias", "item_bias")


def method(name: str) -> Method:
    """The row of METHODS for ``name``; a method without one fails its tests, saying so."""
    if name not in METHODS:
        pytest.fail(f"method {name!r} has no contract settings: add a row for it to METHODS in "
                    "tests/test_contract.py")
    return METHODS[name]


def config_of(name: str, **changes: Any) -> Any:
    """The method's config with its contract settings (and ``changes``)."""
    return available_methods()[name](**(method(name).settings | changes))


def iterations(name: str) -> int:
    """How many iterations a fit with the contract settings runs."""
    field = method(name).iterations_field
    return 1 if field is None else method(name).settings[field]


def stop_after(iteration: int):
    """A callback that stops training after ``iteration``."""
    return lambda record, model: record.iteration == iteration


def training_ids(train: Ratings) -> tuple[np.ndarray, np.ndarray]:
    """The raw user and item ids that have training ratings, ascending."""
    return np.unique(train.user_ids[train.users]), np.unique(train.item_ids[train.items])


def assert_same_arrays(actual: MFModel, expected: MFModel) -> None:
    """Bit for bit: the factors, the biases, μ and every extra array."""
    for name in TRAINED_ARRAYS:
        assert np.array_equal(getattr(actual, name), getattr(expected, name)), name
    assert actual.global_mean == expected.global_mean
    assert actual.extras.keys() == expected.extras.keys()
    for name, array in expected.extras.items():
        assert np.array_equal(actual.extras[name], array), f"extras[{name!r}]"


@pytest.fixture(scope="module")
def split() -> tuple[Ratings, Ratings]:
    """Tiny train and test ratings. The last user and the last item are rated in the test
    part only, so the training ids are fewer than the id maps the two parts share."""
    data = random_ratings(0, N_USERS, N_ITEMS, first_user=FIRST_USER, first_item=FIRST_ITEM)
    held = ((np.arange(len(data)) % 5 == 0) | (data.users == N_USERS - 1)
            | (data.items == N_ITEMS - 1))
    return data.subset(~held), data.subset(held)


@pytest.fixture(scope="module", params=list(available_methods()))
def name(request) -> str:
    """The method name, one test per method."""
    return request.param


@pytest.fixture(scope="module")
def model(name, split) -> MFModel:
    """The method fitted on the training part with its contract settings (fitted once)."""
    return config_of(name).fit(split[0])


# ---------------------------------------------------------------------- the contracts
def test_fit_returns_a_model_of_the_training_ids_with_finite_predictions(model, split):
    """``fit(train)`` gives an MFModel that knows exactly the ids with training ratings and
    predicts a finite rating for every training pair."""
    train = split[0]
    assert isinstance(model, MFModel)
    users, items = training_ids(train)
    assert users.size < train.n_users and items.size < train.n_items  # not the id maps
    assert np.array_equal(model.user_ids, users)
    assert np.array_equal(model.item_ids, items)
    predictions = model.predict(train.user_ids[train.users], train.item_ids[train.items])
    assert predictions.shape == (len(train),)
    assert np.isfinite(predictions).all()


def test_fit_with_a_test_set_records_every_iteration(name, split):
    """``fit(train, test)`` keeps one IterationRecord per iteration, numbered from 1, each
    with a finite objective, train RMSE and test RMSE (the test set is scored, unknown ids
    with the fallback)."""
    train, test = split
    history = config_of(name).fit(train, test).history
    assert all(isinstance(record, IterationRecord) for record in history)
    assert [record.iteration for record in history] == list(range(1, iterations(name) + 1))
    for record in history:
        assert np.isfinite(record.objective) and np.isfinite(record.train_rmse)
        assert record.test_rmse is not None and np.isfinite(record.test_rmse)


def test_a_callback_sees_every_iteration_and_can_stop_training(name, split):
    """A callback returning True after iteration 2 ends training there: the model has those
    2 records. A closed form runs its single iteration, which the callback sees."""
    seen = []

    def callback(record, current):
        seen.append(record.iteration)
        assert isinstance(current, MFModel)
        return record.iteration == 2

    fitted = config_of(name).fit(split[0], callback=callback)
    expected = list(range(1, min(2, iterations(name)) + 1))
    assert seen == expected
    assert [record.iteration for record in fitted.history] == expected


def test_save_and_load_round_trip_exactly(model, tmp_path):
    """Every field of the loaded model equals the saved one: arrays bit for bit with their
    dtypes (factors, biases, ids, the seen CSR, the extras), the rest by value (params,
    history with its timings); so its predictions are the same bits too."""
    loaded = MFModel.load(model.save(tmp_path / "model.npz"))
    for field in dataclasses.fields(MFModel):
        ours, theirs = getattr(model, field.name), getattr(loaded, field.name)
        if isinstance(ours, np.ndarray):
            assert theirs.dtype == ours.dtype and np.array_equal(theirs, ours), field.name
        elif field.name == "extras":
            assert theirs.keys() == ours.keys()
            for key, array in ours.items():
                assert theirs[key].dtype == array.dtype, key
                assert np.array_equal(theirs[key], array), key
        else:
            assert theirs == ours, field.name
    users = np.repeat(model.user_ids[:5], 4)
    items = np.tile(model.item_ids[:4], 5)
    assert np.array_equal(loaded.predict(users, items), model.predict(users, items))


def test_fold_in_gives_a_finite_user_to_recommend_for(name, model):
    """Folding in a new user's ratings of three known items gives finite factors and bias,
    and recommending for that user gives five finite scores. GlobalMean refuses: its model is
    μ alone (reg 0, one zero factor column), so the fold-in system is singular by design."""
    items, ratings = model.item_ids[[0, 3, 7]], np.array([5.0, 1.0, 4.0])
    error = method(name).fold_in_error
    if error is not None:
        with pytest.raises(error, match="singular"):
            model.fold_in(items, ratings)
        return
    folded = model.fold_in(items, ratings)
    assert isinstance(folded, FoldedUser)
    assert folded.factors.shape == (model.factors,)
    assert np.isfinite(folded.factors).all() and np.isfinite(folded.bias)
    recommended = model.recommend(folded, 5)
    assert len(recommended.scores) == 5 and np.isfinite(recommended.scores).all()
    assert not set(recommended.items.tolist()) & set(items.tolist())  # rated ones left out


def interrupted(config: Any, train: Ratings, monkeypatch, at: int,
                before: bool) -> TrainingInterrupted:
    """The TrainingInterrupted of ``config.fit(train)`` with Ctrl-C in iteration ``at``.

    The KeyboardInterrupt comes from the state's ``step(at)``, either before it runs (nothing
    of iteration ``at`` done) or after it ran (iteration ``at`` solved but not yet recorded);
    either way the loop must undo iteration ``at``. The patch is undone on return.
    """
    cls = type(config)
    start = cls.start

    def start_with_ctrl_c(self, *args, **kwargs):
        state = start(self, *args, **kwargs)
        step = state.step

        def step_with_ctrl_c(iteration):
            if iteration == at and before:
                raise KeyboardInterrupt
            step(iteration)
            if iteration == at:
                raise KeyboardInterrupt

        state.step = step_with_ctrl_c
        return state

    with monkeypatch.context() as patch:
        patch.setattr(cls, "start", start_with_ctrl_c)
        with pytest.raises(TrainingInterrupted) as caught:
            config.fit(train)
    return caught.value


@pytest.mark.parametrize("when", ["before", "after"])
def test_ctrl_c_rolls_back_to_the_last_finished_iteration(name, when, split, monkeypatch):
    """Ctrl-C in iteration 3, before its step runs or after, raises TrainingInterrupted
    whose model has 2 records and the arrays of a fit stopped by its callback after iteration
    2 (not of a 2-iteration config: for Bayes that would be another config, since its burn-in
    must be below its sweeps).

    A closed form has only iteration 1: Ctrl-C there leaves no record, and after its step the
    model must be the one Ctrl-C before the step leaves, as training started.
    """
    train = split[0]
    config = config_of(name)
    at = min(3, iterations(name))
    if at > 1:
        reference = config.fit(train, callback=stop_after(at - 1))
    else:
        reference = interrupted(config, train, monkeypatch, at=1, before=True).model
    stopped = interrupted(config, train, monkeypatch, at, before=when == "before").model
    assert [record.iteration for record in stopped.history] == list(range(1, at))
    assert np.array_equal(stopped.user_ids, training_ids(train)[0])
    if at > 1 or when == "after":  # else the reference is this very case
        assert_same_arrays(stopped, reference)
        assert [r.objective for r in stopped.history] == [r.objective for r in reference.history]


def test_ctrl_c_in_the_callback_keeps_the_finished_iteration(name, split):
    """Ctrl-C that lands after an iteration is scored (while its callback runs, as when a
    progress line is printed) ends training with that iteration kept, not lost."""
    def interrupt_after_two(record, model):
        if record.iteration == min(2, iterations(name)):
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as stopped:
        config_of(name).fit(split[0], callback=interrupt_after_two)
    kept = min(2, iterations(name))
    reference = config_of(name).fit(split[0], callback=stop_after(kept))
    assert len(stopped.value.model.history) == kept
    assert_same_arrays(stopped.value.model, reference)


def test_resuming_a_checkpoint_is_bit_identical_to_an_uninterrupted_fit(name, split, tmp_path):
    """A fit that checkpoints every iteration and stops halfway, then a fit with the full
    count resumed from that checkpoint, equals an uninterrupted fit bit for bit. The first
    fit has fewer iterations where the method lets the count change on resume; otherwise
    (a sampler, whose kept draws depend on it) it has the same settings and its callback
    stops it, as a killed run stops. The resumed history starts with the checkpoint's own
    records, timings included, which shows that the resumed fit continued from the file
    rather than training again from the start. A closed form's single iteration is in the
    checkpoint already, so resuming adds nothing."""
    train = split[0]
    n = iterations(name)
    field = method(name).iterations_field
    done = n if field is None else n // 2
    config = config_of(name)
    reference = config.fit(train)
    checkpoint = tmp_path / "checkpoint.npz"
    if field is None or field in type(config).resumable:
        short = config_of(name, **({} if field is None else {field: done}))
        first = short.fit(train, checkpoint=checkpoint, checkpoint_every=1)
    else:
        first = config.fit(train, checkpoint=checkpoint, checkpoint_every=1,
                           callback=lambda record, model: record.iteration == done)
    saved = MFModel.load(checkpoint).history
    assert [record.iteration for record in saved] == list(range(1, done + 1))
    assert saved == first.history
    resumed = config.fit(train, checkpoint=checkpoint, resume=True)
    assert resumed.history[:done] == saved
    assert [record.iteration for record in resumed.history] == list(range(1, n + 1))
    assert [r.objective for r in resumed.history] == [r.objective for r in reference.history]
    assert_same_arrays(resumed, reference)
