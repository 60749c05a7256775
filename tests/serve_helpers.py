"""What the service tests share: a small model with titles, and the app on a real socket."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import uvicorn

from alsmf.data.ratings import Ratings
from alsmf.model import MFModel
from alsmf.models.als import ALS

GENRES = np.array(["Drama", "Comedy|Romance", "Action|Sci-Fi"])


def titled_model(seed: int = 3, iterations: int = 4) -> MFModel:
    """A default ALS model (implicit features, ranking head) of 40 users x 25 items, ratings
    1..5, items 101..125 titled "Movie <id>" and item 125 "Star Wars (1977)"."""
    rng = np.random.default_rng(seed)
    mask = rng.random((40, 25)) < 0.4
    mask[:, 0] = mask[0, :] = True
    users, items = np.nonzero(mask)
    train = Ratings.from_arrays(users + 1, items + 101, rng.integers(1, 6, len(users)) * 1.0)
    model = ALS(factors=4, iterations=iterations, rank_factors=4).fit(train)
    titles = [f"Movie {i}" for i in model.item_ids]
    titles[-1] = "Star Wars (1977)"
    model.attach_titles(model.item_ids, np.array(titles), GENRES[model.item_ids % 3])
    return model


def save_titled_model(path: Path, **settings) -> Path:
    return titled_model(**settings).save(path)


@contextmanager
def running(app, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        listener.close()
