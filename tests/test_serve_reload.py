"""Swapping in a changed model file: atomic, without dropping requests, and a request in
flight finishes on the model it started with."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from alsmf.model import MFModel
from alsmf.serve.app import create_app
from alsmf.serve.model_holder import ModelHolder
from tests.serve_helpers import running, titled_model


class PausedModel(MFModel):
    """A model whose ``recommend`` waits for the test, to hold a request in flight."""

    entered = threading.Event()
    release = threading.Event()

    def recommend(self, *args, **kwargs):
        PausedModel.entered.set()
        assert PausedModel.release.wait(30)
        return super().recommend(*args, **kwargs)


def test_a_request_in_flight_finishes_on_the_old_model(tmp_path):
    path = tmp_path / "model.npz"
    old, new = titled_model(seed=3), titled_model(seed=4)
    old.save(path)
    loads = []

    def load(file):
        loads.append(file)
        model = MFModel.load(file)
        return PausedModel(**vars(model)) if len(loads) == 1 else model

    holder = ModelHolder(path, load=load)
    with running(create_app(holder)) as base, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.get, f"{base}/api/recommend?user=7&n=5", timeout=30)
        assert PausedModel.entered.wait(30)  # the request holds model 1
        new.save(path)
        assert holder.reload_if_changed() and holder.current.version == 2
        PausedModel.release.set()
        answered = pending.result(30)
        after = httpx.get(f"{base}/api/recommend?user=7&n=5", timeout=30)
    assert answered.headers["x-model-version"] == "1"
    assert [r["item"] for r in answered.json()["items"]] == old.recommend(7, 5).items.tolist()
    assert after.headers["x-model-version"] == "2"
    assert [r["item"] for r in after.json()["items"]] == new.recommend(7, 5).items.tolist()
    assert old.recommend(7, 5).items.tolist() != new.recommend(7, 5).items.tolist()


def test_swaps_under_load_drop_nothing_and_every_answer_is_one_models(tmp_path):
    path = tmp_path / "model.npz"
    models = [titled_model(seed=3), titled_model(seed=4)]
    models[0].save(path)
    expected = [model.recommend(7, 5).items.tolist() for model in models]
    holder = ModelHolder(path)
    app = create_app(holder, reload_on_change=True, watch_every=0.02)
    answers, stop = [], threading.Event()

    def client(base):
        with httpx.Client(base_url=base, timeout=30) as session:
            while not stop.is_set():
                answers.append(session.get("/api/recommend", params={"user": 7, "n": 5}))
                rated = session.post("/api/rate", json={"ratings": [
                    {"item": "Star Wars (1977)", "rating": 5}], "n": 3})
                assert rated.status_code == 200, rated.text

    with running(app) as base, ThreadPoolExecutor(4) as pool:
        clients = [pool.submit(client, base) for _ in range(4)]
        for swap in range(1, 5):  # four swaps: model 2 is B, 3 is A, 4 is B, 5 is A
            time.sleep(0.3)
            models[swap % 2].save(path)
            deadline = time.monotonic() + 10
            while holder.current.version != swap + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert holder.current.version == swap + 1
        time.sleep(0.3)
        stop.set()
        for done in clients:
            done.result(30)
    versions = [int(answer.headers["x-model-version"]) for answer in answers]
    assert all(answer.status_code == 200 for answer in answers)
    assert set(versions) == {1, 2, 3, 4, 5}
    for answer, version in zip(answers, versions):  # odd versions are model A, even B
        assert [r["item"] for r in answer.json()["items"]] == expected[(version - 1) % 2]


def test_a_file_that_cannot_be_loaded_keeps_the_model_served(tmp_path, caplog):
    path = tmp_path / "model.npz"
    titled_model(seed=3).save(path)
    holder = ModelHolder(path)
    path.write_bytes(b"half a file")
    assert not holder.reload_if_changed() and holder.current.version == 1
    assert "kept model 1: cannot load the changed" in caplog.text
    caplog.clear()
    assert not holder.reload_if_changed() and not caplog.text  # told once per change
    path.unlink()
    assert not holder.reload_if_changed()  # gone for a moment: keep serving
    new = titled_model(seed=4)
    new.save(path)
    assert holder.reload_if_changed() and holder.current.version == 2
    np.testing.assert_array_equal(holder.current.model.item_factors, new.item_factors)
