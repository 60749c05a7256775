"""What the Dask tests share: comparing a model with the in-process one, and training while a
worker is killed."""

import os
import signal
import threading
import time

import numpy as np
import pytest

from alsmf.distributed import train_distributed
from alsmf.distributed.cluster import worker_addresses


def assert_same_model(model, reference):
    """Factors and biases bit-identical, the rest equal, history equal to rounding."""
    for name in ("user_factors", "item_factors", "user_bias", "item_bias", "user_ids",
                 "item_ids", "seen_indptr", "seen_indices", "seen_values"):
        assert np.array_equal(getattr(model, name), getattr(reference, name)), name
    assert model.global_mean == reference.global_mean
    assert model.params == reference.params
    assert len(model.history) == len(reference.history)
    for ours, theirs in zip(model.history, reference.history):
        assert ours.iteration == theirs.iteration
        assert ours.objective == pytest.approx(theirs.objective, rel=1e-6)
        assert ours.train_rmse == pytest.approx(theirs.train_rmse, rel=1e-9)
        assert ours.test_rmse == (None if theirs.test_rmse is None
                                  else pytest.approx(theirs.test_rmse, rel=1e-9))


def assert_same_extras(model, reference):
    assert sorted(model.extras) == sorted(reference.extras)
    for name, array in reference.extras.items():
        assert np.array_equal(model.extras[name], array), name


def train_killing_a_worker(client, config, train, test, iteration: int = 3):
    """``train_distributed`` while the worker holding the first result of ``iteration`` is
    SIGKILLed as soon as that result exists; waits for the nanny to restart it, checks that
    a worker was killed, and returns the model."""
    pids = client.run(os.getpid)
    killed = {}

    def kill():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            held = client.run_on_scheduler(_holders_of_iteration, iteration=iteration)
            if held:
                os.kill(pids[held[0]], signal.SIGKILL)
                killed["worker"] = held[0]
            time.sleep(0.005)

    killer = threading.Thread(target=kill)

    def start_killer(record, progress):
        if record.iteration == iteration - 1:
            killer.start()

    model = train_distributed(config, train, test, client=client, callback=start_killer)
    killer.join()
    assert killed, "no worker was killed"
    client.wait_for_workers(len(pids), timeout=60)  # the nanny restarts it (for later tests)
    assert killed["worker"] not in worker_addresses(client)
    return model


def _holders_of_iteration(dask_scheduler, iteration):
    """Workers holding a finished solve of ``iteration`` (run on the scheduler)."""
    return sorted({ws.address for key, ts in dask_scheduler.tasks.items()
                   if f"-it{iteration}-" in str(key) and ts.state == "memory"
                   for ws in ts.who_has})
