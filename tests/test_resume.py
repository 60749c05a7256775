"""Checkpoints, resuming after a kill, Ctrl-C, and runs too big for memory: no work is lost."""

import signal
import subprocess
import sys
import time
from functools import partial

import numpy as np
import pytest

from alsmf.errors import ConfigError
from alsmf.model import MFModel
from alsmf import TrainingInterrupted
from alsmf.models.als import ALS, ALSState
from tests.helpers import random_ratings


ratings = partial(random_ratings, n_users=50, n_items=30, density=0.4, every_user=False,
                  every_item=False)
"""50 users x 30 items, each cell rated with probability 0.4 (this file's data)."""


def same_state(a: MFModel, b: MFModel) -> bool:
    return all(np.array_equal(getattr(a, name), getattr(b, name))
               for name in ("user_factors", "item_factors", "user_bias", "item_bias"))


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_resuming_a_checkpoint_gives_the_uninterrupted_model(tmp_path, solver):
    train = ratings()
    reference = ALS(factors=4, iterations=6, solver=solver).fit(train)
    checkpoint = tmp_path / "checkpoint.npz"
    ALS(factors=4, iterations=3, solver=solver).fit(train, checkpoint=checkpoint)
    assert len(MFModel.load(checkpoint).history) == 3
    resumed = ALS(factors=4, iterations=6, solver=solver).fit(train, checkpoint=checkpoint,
                                                              resume=True)
    assert [r.iteration for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert same_state(resumed, reference)  # bit-identical
    assert [r.objective for r in resumed.history] == [r.objective for r in reference.history]


def test_a_checkpoint_from_other_settings_or_data_is_refused(tmp_path):
    checkpoint = tmp_path / "checkpoint.npz"
    ALS(factors=4, iterations=2).fit(ratings(), checkpoint=checkpoint)
    with pytest.raises(ConfigError, match=r"other settings \(factors\)"):
        ALS(factors=5, iterations=4).fit(ratings(), checkpoint=checkpoint, resume=True)
    with pytest.raises(ConfigError, match="other data"):
        ALS(factors=4, iterations=4).fit(ratings(seed=1), checkpoint=checkpoint, resume=True)
    with pytest.raises(ConfigError, match="checkpoint_every must be an integer >= 1"):
        ALS(factors=4).fit(ratings(), checkpoint=checkpoint, checkpoint_every=0)


def test_ctrl_c_keeps_the_last_finished_iteration(monkeypatch):
    train = ratings()
    two = ALS(factors=4, iterations=2).fit(train)
    calls = {"n": 0}
    original = ALSState.half_step

    def interrupt_during_iteration_three(self, **kwargs):
        calls["n"] += 1
        original(self, **kwargs)  # the item half-step of iteration 3 finishes, then Ctrl-C
        if calls["n"] == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(ALSState, "half_step", interrupt_during_iteration_three)
    with pytest.raises(TrainingInterrupted, match="after iteration 2") as stop:
        ALS(factors=4, iterations=5).fit(train)
    assert len(stop.value.model.history) == 2
    assert same_state(stop.value.model, two)  # the half-finished iteration is rolled back


@pytest.mark.parametrize("method, options, rounds", [
    ("als", ["-k", "8", "-n", "200", "--checkpoint-every", "1"], 200),
    # the sampler's whole state (current draw, kept draws, α, priors) is in its checkpoint
    ("bayes", ["-k", "4", "--sweeps", "200", "--burn-in", "10", "--samples", "30",
               "--checkpoint-every", "5"], 200),
])
def test_killed_training_resumes_from_its_checkpoint(tmp_path, method, options, rounds):
    """A real SIGKILL of `alsmf train`, then `alsmf train --resume` with the same options,
    gives the model of an uninterrupted run bit for bit. Every run is a process of its own,
    as a user's would be."""
    options = ["train", "--method", method, *options, "-o", str(tmp_path)]
    process = subprocess.Popen(alsmf_command(*options), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "checkpoint.npz"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training finished before it could be killed"
    done = len(MFModel.load(checkpoint).history)  # whole and readable: saving is atomic
    assert 1 <= done < rounds
    resumed = subprocess.run(alsmf_command(*options, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert not checkpoint.exists()  # a finished run removes its checkpoint
    resumed_model = MFModel.load(tmp_path / "model.npz")
    fresh = subprocess.run(alsmf_command(*options[:-1], str(tmp_path / "fresh")),
                           capture_output=True, text=True)  # the same options, another folder
    assert fresh.returncode == 0, fresh.stderr
    fresh_model = MFModel.load(tmp_path / "fresh" / "model.npz")
    assert same_state(resumed_model, fresh_model), f"resumed after {done} iterations"
    assert resumed_model.extras.keys() == fresh_model.extras.keys()
    assert all(np.array_equal(array, fresh_model.extras[name])
               for name, array in resumed_model.extras.items())
    assert len(resumed_model.history) == rounds
    assert [r.objective for r in resumed_model.history] == \
        [r.objective for r in fresh_model.history]


def alsmf_command(*arguments: str) -> list[str]:
    """The command line that runs ``alsmf ARGUMENTS`` with this interpreter."""
    return [sys.executable, "-c", "from alsmf.cli import main; main()", *arguments]


def test_training_that_cannot_fit_in_memory_is_refused_before_allocating(monkeypatch):
    import alsmf.resources as resources

    monkeypatch.setattr(resources, "available_bytes", lambda: 10_000)
    with pytest.raises(ConfigError, match=r"needs about .* GB of memory and 0\.0 GB is available"):
        ALS(factors=64).fit(ratings())
    monkeypatch.setattr(resources, "available_bytes", lambda: None)  # unknown: no refusal
    assert len(ALS(factors=2, iterations=1).fit(ratings()).history) == 1


def test_memory_estimate_covers_the_training_arrays():
    from alsmf.resources import training_bytes

    # ML-20M shape, k = 64, float32: two CSRs (~320 MB) and factors twice (~86 MB)
    estimate = training_bytes(20_000_263, 138_493, 26_744, 64, 4)
    assert 0.35e9 < estimate < 0.5e9
    # implicit features: A and Z twice (~85 MB), each side's right-hand-side terms (~43 MB)
    assert 0.1e9 < training_bytes(20_000_263, 138_493, 26_744, 64, 4, implicit=True) - estimate \
        < 0.15e9


def test_resume_without_a_checkpoint_says_it_starts_from_the_first_iteration(tmp_path, cli):
    """After a finished run (which removes its checkpoint) --resume trains again from
    iteration 1, and says so rather than resuming silently from nothing."""
    options = ["train", "-k", "2", "-n", "2", "-o", tmp_path]
    assert cli(*options).exit_code == 0
    again = cli(*options, "--resume")
    assert again.exit_code == 0, again.output
    assert "holds no checkpoint: its last run finished (model.npz)" in again.stderr
    fresh = cli(*options[:-1], tmp_path / "new", "--resume")
    assert "no checkpoint in" in fresh.stderr and fresh.exit_code == 0


def test_a_failed_final_save_keeps_the_checkpoint_and_says_where_it_is(tmp_path, cli,
                                                                       monkeypatch):
    """A full disk at the end loses nothing: the checkpoint stays until the model is written,
    and the one-line error names it."""
    def full_disk(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(MFModel, "save", full_disk)
    result = cli("train", "-k", "2", "-n", "3", "--checkpoint-every", "1", "-o", tmp_path)
    assert result.exit_code == 2
    assert "cannot write the model" in result.output and "No space left on device" in \
        result.output
    checkpoint = tmp_path / "checkpoint.npz"
    assert f"the last checkpoint is kept in {checkpoint}" in result.output.replace("\n", "")
    monkeypatch.undo()
    assert len(MFModel.load(checkpoint).history) == 3
