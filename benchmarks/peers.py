"""Peer benchmark: alsmf against cmfrec, implicit, LensKit, LIBMF and Spark MLlib ALS.

    python benchmarks/peers.py --shape ml-1m --factors 64 --threads 2 --iterations 10
    python benchmarks/peers.py --shape ml-20m --only alsmf,cmfrec,implicit
    python benchmarks/peers.py --shape ml-1m --factors 16,64,128     # one table per k

Run it with the peer environment's python (see benchmarks/README.md). It is one long script
because each benchmark is one command: every peer's runner, the timing and the tables live
together so that a figure in the README is reproduced by running this file alone. The data are synthetic,
drawn with alsmf's generator shaped like the MovieLens release, cached as Parquet under
``benchmarks/cache/`` and split 90/10 at random (seed 0); test pairs whose user or item has no
training rating are dropped so every library is scored on the same pairs.

Each library runs in its own subprocess (so peak RSS is per library, taken from ``wait4``) with
``--threads`` threads and BLAS single-threaded. A library that cannot be imported or fails is
listed with the reason instead of stopping the run. The table is printed and written to
``benchmarks/results/peers-<shape>.md`` (``--out`` changes the stem), one table per k of
``--factors``.

Convergence (``--convergence``, on by default; at ML-10M/20M shape only for alsmf, cmfrec-cg,
LensKit and LIBMF): the number of iterations, and the time, after which a library's test RMSE
stays within 0.5% of its own RMSE after the last iteration. alsmf and LensKit are scored after
every iteration of one fit (alsmf's own history; LensKit's embeddings, scored outside the timed
epochs) and timed by their cumulative iteration seconds; the others are fitted again for each n
of ``--convergence-grid`` (1, 2, 3, 5, 7, 10) and timed by the wall time of that fit.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

PLAIN = {"reg_bias": None, "implicit_weight": 0.0, "rank_factors": 0}
"""alsmf's settings for the model the peers fit: plain biased ALS, one λ, no implicit features."""

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
RESULTS = HERE / "results"

# name -> (label, explicit model?)
LIBRARIES: dict[str, tuple[str, bool]] = {
    "alsmf": ("alsmf (default solver)", True),
    "alsmf-chol": ("alsmf, exact Cholesky (solver=\"cholesky\")", True),
    "alsmf-ials": ("alsmf ImplicitALS, CG (implicit feedback; no test RMSE)", False),
    "cmfrec-cg": ("cmfrec CMF, ALS + CG", True),
    "cmfrec-chol": ("cmfrec CMF, ALS + Cholesky", True),
    "implicit": ("implicit CPU ALS, CG (implicit feedback; no test RMSE)", False),
    "lenskit": ("LensKit BiasedMFScorer (ALS, exact)", True),
    "libmf": ("LIBMF (`libmf` binding, SGD; per epoch)", True),
    "spark": ("Spark MLlib ALS, local[N]", True),
}
GROUPS = {"cmfrec": ["cmfrec-cg", "cmfrec-chol"]}
RESULT_TAG = "PEERS-RESULT:"
WARMUP_FITS = 2  # iterations of the short fit used by the fit(n) - fit(2) method
CONVERGENCE_TOLERANCE = 0.005  # "within 0.5% of the library's own final test RMSE"
CONVERGENCE_GRID = "1,2,3,5,7,10"
EXTRA_GRID = (14, 20, 30, 50, 70, 100, 140, 200)  # beyond the grid, when n is larger
LARGE_SHAPES = ("ml-10m", "ml-20m")
# at the large shapes convergence costs len(grid) fits for the fit(n) libraries: only these
CONVERGENCE_AT_LARGE = ("alsmf", "alsmf-chol", "cmfrec-cg", "lenskit", "libmf")


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------

def prepare_data(shape: str, seed: int = 0) -> tuple[Path, Path, dict]:
    """Generate (or reuse) the synthetic ratings and the fixed 90/10 split, as Parquet files."""
    import numpy as np
    import pandas as pd

    CACHE.mkdir(parents=True, exist_ok=True)
    full = CACHE / f"{shape}.parquet"
    train_path = CACHE / f"{shape}-seed{seed}-train.parquet"
    test_path = CACHE / f"{shape}-seed{seed}-test.parquet"
    info_path = CACHE / f"{shape}-seed{seed}-info.json"
    if train_path.exists() and test_path.exists() and info_path.exists():
        return train_path, test_path, json.loads(info_path.read_text())

    from alsmf.data.readers import read_table
    from alsmf.data.splits import random_split
    from alsmf.data.synthetic import synthetic_ratings

    started = time.perf_counter()
    if full.exists():
        ratings = read_table(full)
        generated = None
    else:
        generated = synthetic_ratings(like=shape)
        ratings = generated.ratings
        ratings.to_frame().to_parquet(full, index=False)
    train, test = random_split(ratings, test_fraction=0.1, seed=seed)
    train_frame, test_frame = train.to_frame(), test.to_frame()
    known = (test_frame["user"].isin(pd.unique(train_frame["user"]))
             & test_frame["item"].isin(pd.unique(train_frame["item"])))
    train_frame.to_parquet(train_path, index=False)
    test_frame[known].reset_index(drop=True).to_parquet(test_path, index=False)
    info = {
        "ratings": int(len(ratings)), "users": int(ratings.n_users), "items": int(ratings.n_items),
        "train": int(len(train_frame)), "test": int(known.sum()),
        "test_dropped_cold": int((~known).sum()),
        "oracle_rmse": None if generated is None else float(generated.oracle_rmse),
        "seconds_to_generate": round(time.perf_counter() - started, 1),
    }
    info_path.write_text(json.dumps(info))
    del np
    return train_path, test_path, info


# --------------------------------------------------------------------------------------------
# workers: each runs in its own process and prints one RESULT_TAG line of JSON
# --------------------------------------------------------------------------------------------

def _read_frames(train_path: str, test_path: str):
    import pandas as pd
    return pd.read_parquet(train_path), pd.read_parquet(test_path)


def _rmse(predicted, actual) -> float:
    import numpy as np
    predicted = np.asarray(predicted, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    return float(np.sqrt(np.mean(np.square(actual - predicted))))


def _per_iteration_from_stamps(stamps: list[float]) -> list[float]:
    return [b - a for a, b in zip(stamps, stamps[1:])]


def convergence_grid(a, iterations: int) -> list[int]:
    """The iteration counts fitted for the convergence columns: the grid below ``iterations``,
    the short fit's count and ``iterations`` itself (plus :data:`EXTRA_GRID` steps past 10)."""
    grid = {int(t) for t in str(a.convergence_grid).split(",") if t.strip()}
    grid |= {n for n in EXTRA_GRID if n > max(grid, default=0)}
    return sorted({n for n in grid if 1 <= n < iterations} | {WARMUP_FITS, iterations})


def _fit_series(a, fit, score, iterations: int, warm_up: bool = False) -> dict:
    """Time a library that can only be fitted n iterations from scratch.

    ``fit(n)`` returns ``(model, seconds)``, ``score(model)`` the test RMSE (or None). Without
    convergence: fit(2) then fit(n) as before; with it: one fit per n of the grid, each scored.
    s / iteration is (t(fit n) - t(fit 2)) / (n - 2) either way. ``warm_up``: one untimed
    fit(1) first (Spark: the JVM compiles its code during the first fits).
    """
    curve = []
    if warm_up:
        fit(1)
    if a.convergence:
        times = {}
        model = None
        for n in convergence_grid(a, iterations):
            model, seconds = fit(n)
            times[n] = seconds
            curve.append([n, score(model), seconds])
            if n != iterations:
                del model
        short_s, fit_s, rmse = times[WARMUP_FITS], times[iterations], curve[-1][1]
    else:
        _, short_s = fit(WARMUP_FITS)
        model, fit_s = fit(iterations)
        rmse = score(model)
    return {"fit_s": fit_s, "iter_s": [(fit_s - short_s) / (iterations - WARMUP_FITS)],
            "method": f"(fit({iterations}) - fit({WARMUP_FITS})) / {iterations - WARMUP_FITS}",
            "rmse": rmse, "rmse_iterations": iterations,
            "curve": curve or None, "curve_time": "wall time of a separate fit(n)"}


def worker_alsmf(a, solver: str = "cg") -> dict:
    import alsmf
    from alsmf import ALS
    from alsmf.data.readers import read_table

    t0 = time.perf_counter()
    train = read_table(a.train)
    load_s = time.perf_counter() - t0
    test = read_table(a.test)
    model = ALS(**PLAIN, factors=a.factors, reg=a.reg, iterations=a.iterations, solver=solver)
    t0 = time.perf_counter()
    fitted = model.fit(train, test, callback=lambda rec, m: None, threads=a.threads)
    fit_s = time.perf_counter() - t0
    seconds = [r.solve_seconds for r in fitted.history]
    evaluation = statistics.median(r.seconds - r.solve_seconds for r in fitted.history[1:])
    setup_s = fit_s - sum(r.seconds for r in fitted.history)
    cumulative, curve = 0.0, []
    for r in fitted.history:
        cumulative += r.solve_seconds
        curve.append([r.iteration, r.test_rmse, cumulative])
    return {"version": getattr(alsmf, "__version__", "?"), "load_s": load_s, "fit_s": fit_s,
            "iter_s": seconds[1:], "first_iter_s": seconds[0],
            "method": "IterationRecord.solve_seconds, median of it. 2..n",
            "rmse": fitted.history[-1].test_rmse, "rmse_iterations": len(seconds),
            "curve": curve if a.convergence else None,
            "curve_time": "cumulative solve_seconds of one fit (its evaluation and set-up "
                          "excluded)",
            "note": f"solver {model.solver}"
                    + (f", {model.cg_steps} CG steps" if solver == "cg" else "")
                    + f"; reg {a.reg} scaled by "
                    f"counts; s/iter is the two half-steps, as the peers time it; alsmf's "
                    f"per-iteration train/test loss evaluation adds {evaluation:.2f} s (in "
                    f"fit_s); fit set-up {setup_s:.2f} s"
                    + ("; time to 0.5% = cumulative solve seconds (evaluation and set-up "
                       "excluded)" if a.convergence else "")}


RANKED_USERS = 5000
"""Test users (with a relevant test item) whose top-10 lists the implicit-feedback rows score."""


def top10_quality(test_path: str, training_users, recommend) -> str:
    """P@10 and NDCG@10 (binary gains; relevant: a test rating >= 4) of ``recommend``, a
    function from sorted raw user ids to a (users x 10) array of raw item ids (-1: empty), for
    :data:`RANKED_USERS` seeded test users with a relevant item; the training items each user
    rated are left out of their list by ``recommend``. The metric code is alsmf's."""
    import numpy as np
    import pandas as pd

    from alsmf.evaluation.metrics import ranking_from_hits, relevance_matrix

    test = pd.read_parquet(test_path)
    test = test[(test["rating"] >= 4) & test["user"].isin(training_users)]
    users = np.unique(test["user"].to_numpy())
    users = np.sort(np.random.default_rng(0).choice(users, min(RANKED_USERS, len(users)),
                                                     replace=False))
    test = test[test["user"].isin(users)]
    rel_users, rel_items = test["user"].to_numpy(), test["item"].to_numpy()
    top = recommend(users)
    hits = relevance_matrix(users, rel_users, rel_items, top, top >= 0)
    metrics = ranking_from_hits(hits, np.bincount(np.searchsorted(users, rel_users),
                                                  minlength=len(users)))
    return (f"test P@10 {metrics['precision']:.4f}, NDCG@10 {metrics['ndcg']:.4f} "
            f"({len(users):,} test users with a rating >= 4)")


def worker_alsmf_ials(a) -> dict:
    """alsmf's implicit-feedback ALS on the same pairs, timed as ``worker_alsmf`` times ALS:
    the speed peer of implicit's ALS (both fit who rated what, every training pair as 1; no
    test RMSE), and the quality of its top-10 lists (:func:`top10_quality`)."""
    import alsmf
    from alsmf import ImplicitALS
    from alsmf.data.readers import read_table

    t0 = time.perf_counter()
    train = read_table(a.train)
    load_s = time.perf_counter() - t0
    model = ImplicitALS(factors=a.factors, reg=a.reg, iterations=a.iterations)
    t0 = time.perf_counter()
    fitted = model.fit(train, callback=lambda rec, m: None, threads=a.threads)
    fit_s = time.perf_counter() - t0
    seconds = [r.solve_seconds for r in fitted.history]
    evaluation = statistics.median(r.seconds - r.solve_seconds for r in fitted.history[1:])
    quality = top10_quality(a.test, fitted.user_ids,
                            lambda users: fitted.recommend_all(users, n=10)[0])
    return {"version": getattr(alsmf, "__version__", "?"), "load_s": load_s, "fit_s": fit_s,
            "iter_s": seconds[1:], "first_iter_s": seconds[0],
            "method": "IterationRecord.solve_seconds, median of it. 2..n", "rmse": None,
            "note": f"{model.cg_steps} CG steps, α {model.alpha}, unobserved weight "
                    f"{model.unobserved_weight}, reg {a.reg}; s/iter is the two half-steps; "
                    f"the per-iteration objective adds {evaluation:.2f} s (in fit_s); "
                    f"{quality}"}


class _IterationStamps:
    """A ``sys.stdout`` stand-in that notes when each of cmfrec's verbose lines for the start
    of ALS and the end of an iteration arrives (cmfrec prints them through Python's stdout
    as it goes), so its iterations are timed one by one as implicit's are by its callback."""

    MARKS = ("Starting ALS optimization", "Completed ALS iteration")

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def write(self, text: str) -> int:
        if any(mark in text for mark in self.MARKS):
            self.stamps.append(time.perf_counter())
        return len(text)

    def flush(self) -> None:
        pass


def _cmfrec(a, use_cg: bool) -> dict:
    import cmfrec
    import pandas as pd

    t0 = time.perf_counter()
    frame = pd.read_parquet(a.train).rename(
        columns={"user": "UserId", "item": "ItemId", "rating": "Rating"})[
        ["UserId", "ItemId", "Rating"]]
    load_s = time.perf_counter() - t0
    test = pd.read_parquet(a.test)
    stamps: dict[int, list[float]] = {}

    def fit(n: int):
        model = cmfrec.CMF(method="als", k=a.factors, lambda_=a.reg, scale_lam=True,
                           user_bias=True, item_bias=True, use_cg=use_cg, niter=n,
                           nthreads=a.threads, precompute_for_predictions=False,
                           verbose=True, random_state=0)
        lines = _IterationStamps()
        t = time.perf_counter()
        with contextlib.redirect_stdout(lines):
            model.fit(frame)
        stamps[n] = lines.stamps
        return model, time.perf_counter() - t

    def score(model) -> float:
        predicted = model.predict(user=test["user"].to_numpy(), item=test["item"].to_numpy())
        return _rmse(predicted, test["rating"])

    series = _fit_series(a, fit, score, a.iterations)
    seconds = _per_iteration_from_stamps(stamps[a.iterations])
    if len(seconds) == a.iterations:  # cmfrec printed every iteration: time them one by one
        series.update(iter_s=seconds[1:], first_iter_s=seconds[0],
                      method="cmfrec's verbose lines, median of it. 2..n"
                             + ("; the last is finalize_chol's Cholesky iteration"
                                if use_cg else ""))
    return {"version": getattr(cmfrec, "__version__", _dist_version("cmfrec")),
            "load_s": load_s, **series,
            "note": f"lambda {a.reg} scale_lam=True; load is the DataFrame only (cmfrec "
                    "indexes it inside fit)" + ("; finalize_chol default (True)" if use_cg else "")}


def worker_cmfrec_cg(a) -> dict:
    return _cmfrec(a, use_cg=True)


def worker_cmfrec_chol(a) -> dict:
    return _cmfrec(a, use_cg=False)


def _codes(train_col, test_col=None):
    import numpy as np
    ids, codes = np.unique(train_col, return_inverse=True)
    if test_col is None:
        return ids, codes
    return ids, codes, np.searchsorted(ids, test_col)


def worker_implicit(a) -> dict:
    import implicit
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares

    t0 = time.perf_counter()
    frame = pd.read_parquet(a.train)
    users, ucodes = _codes(frame["user"].to_numpy())
    items, icodes = _codes(frame["item"].to_numpy())
    # who rated what: every training pair as 1, as alsmf's ImplicitALS sees it
    user_items = sp.csr_matrix(
        (np.ones(len(frame), dtype=np.float32), (ucodes, icodes)),
        shape=(len(users), len(items)))
    load_s = time.perf_counter() - t0
    stamps: list[float] = []
    model = AlternatingLeastSquares(factors=a.factors, regularization=a.reg, use_cg=True,
                                    iterations=a.iterations, num_threads=a.threads,
                                    random_state=0)
    t0 = time.perf_counter()
    stamps.append(t0)
    model.fit(user_items, show_progress=False,
              callback=lambda *args: stamps.append(time.perf_counter()))
    fit_s = time.perf_counter() - t0
    seconds = _per_iteration_from_stamps(stamps)

    def recommend(raw_users):
        rows = np.searchsorted(users, raw_users)
        codes, _ = model.recommend(rows, user_items[rows], N=10,
                                   filter_already_liked_items=True)
        return np.where(codes >= 0, items[np.maximum(codes, 0)], -1)

    quality = top10_quality(a.test, users, recommend)
    return {"version": implicit.__version__, "load_s": load_s, "fit_s": fit_s,
            "iter_s": seconds[1:], "first_iter_s": seconds[0],
            "method": "callback, median of it. 2..n", "rmse": None,
            "note": f"every training pair as 1 (who rated what), alpha 1; {quality}"}


def worker_lenskit(a) -> dict:
    import lenskit
    import numpy as np
    import pandas as pd
    from lenskit.als import BiasedMFScorer
    from lenskit.data import from_interactions_df
    from lenskit.training import TrainingOptions

    t0 = time.perf_counter()
    frame = pd.read_parquet(a.train)
    data = from_interactions_df(frame, user_col="user", item_col="item", rating_col="rating",
                                timestamp_col="timestamp")
    load_s = time.perf_counter() - t0
    test = pd.read_parquet(a.test)
    scorer = BiasedMFScorer(embedding_size=a.factors, epochs=a.iterations,
                            regularization=a.lenskit_reg)
    t0 = time.perf_counter()
    trainer = scorer.create_trainer(data, TrainingOptions(rng=0))
    setup_s = time.perf_counter() - t0
    t = time.perf_counter()
    u = scorer.users.numbers(test["user"].to_numpy(), missing="negative")
    i = scorer.items.numbers(test["item"].to_numpy(), missing="negative")
    assert (u >= 0).all() and (i >= 0).all()
    scoring_s = time.perf_counter() - t  # test look-up and scoring are kept out of fit_s

    def predict() -> np.ndarray:
        # the biases are learned once at set-up; the epochs update the embeddings in place
        bias = scorer.bias
        predicted = np.full(len(test), bias.global_bias, dtype=np.float64)
        if bias.user_biases is not None:
            predicted += bias.user_biases[u]
        if bias.item_biases is not None:
            predicted += bias.item_biases[i]
        predicted += np.einsum("ij,ij->i", scorer.user_embeddings[u], scorer.item_embeddings[i])
        return predicted

    seconds, curve = [], []
    for epoch in range(1, a.iterations + 1):
        t = time.perf_counter()
        trainer.train_epoch()
        seconds.append(time.perf_counter() - t)
        if a.convergence:  # scored outside the timed epoch
            t = time.perf_counter()
            curve.append([epoch, _rmse(predict(), test["rating"]), sum(seconds)])
            scoring_s += time.perf_counter() - t
    trainer.finalize()
    fit_s = time.perf_counter() - t0 - scoring_s
    rmse = _rmse(predict(), test["rating"])
    if curve and abs(curve[-1][1] - rmse) > 1e-6:
        raise RuntimeError(f"per-epoch RMSE {curve[-1][1]} differs from the final {rmse}")
    return {"version": lenskit.__version__, "load_s": load_s, "fit_s": fit_s,
            "setup_s": setup_s, "iter_s": seconds[1:], "first_iter_s": seconds[0],
            "method": "train_epoch(), median of it. 2..n",
            "rmse": rmse, "rmse_iterations": a.iterations,
            "curve": curve or None,
            "curve_time": "cumulative train_epoch() seconds of one fit (scoring and trainer "
                          "set-up excluded)",
            "note": f"regularization {a.lenskit_reg} (LensKit default, not scaled), "
                    f"bias damping 5; trainer setup {setup_s:.2f} s not in load"
                    + ("; time to 0.5% = cumulative epoch seconds (set-up excluded)"
                       if a.convergence else "")}


def worker_libmf(a) -> dict:
    import numpy as np
    import pandas as pd
    from libmf import mf

    t0 = time.perf_counter()
    frame = pd.read_parquet(a.train)
    test = pd.read_parquet(a.test)
    users, ucodes, test_u = _codes(frame["user"].to_numpy(), test["user"].to_numpy())
    items, icodes, test_i = _codes(frame["item"].to_numpy(), test["item"].to_numpy())
    data = np.column_stack([ucodes, icodes, frame["rating"].to_numpy()]).astype(np.float32)
    load_s = time.perf_counter() - t0
    # The binding's C side reads the training triples row-major (X[3i], X[3i+1], X[3i+2]) but
    # the pairs to predict column-major (X[i], X[i + n]): give predict() a Fortran-order array.
    # (A C-order array pairs wrong indices, most out of range, and LIBMF answers the global
    # mean for those: the "suspect RMSE" of earlier runs.)
    pairs = np.asfortranarray(np.column_stack([test_u, test_i]).astype(np.float32))
    epochs = a.libmf_iterations or a.iterations

    def fit(n: int):
        model = mf.MF(k=a.factors, nr_threads=a.threads, nr_iters=n, quiet=True,
                      lambda_p1=0.0, lambda_q1=0.0, lambda_p2=a.libmf_reg,
                      lambda_q2=a.libmf_reg, eta=a.libmf_eta)
        t = time.perf_counter()
        model.fit(data)
        return model, time.perf_counter() - t

    def score(model) -> float:
        predicted = model.predict(pairs)
        return _rmse(predicted, test["rating"])

    series = _fit_series(a, fit, score, epochs)
    return {"version": _dist_version("libmf"), "load_s": load_s, **series,
            "note": f"SGD epochs; L2 {a.libmf_reg}, eta {a.libmf_eta}, no biases; "
                    f"{epochs} epochs; predictions through the binding with Fortran-order "
                    "pairs (its C side reads them column-major)"}


def worker_spark(a) -> dict:
    import psutil
    import pyspark
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession, functions as F

    t0 = time.perf_counter()
    spark = (SparkSession.builder.master(f"local[{a.threads}]")
             .config("spark.driver.memory", a.spark_memory)
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", str(4 * a.threads))
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    jvm_start_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    train = spark.read.parquet(a.train).select("user", "item", "rating").cache()
    train.count()
    load_s = time.perf_counter() - t0
    test = spark.read.parquet(a.test).select("user", "item", "rating").cache()
    test.count()

    def fit(n: int):
        als = ALS(rank=a.factors, maxIter=n, regParam=a.reg, userCol="user", itemCol="item",
                  ratingCol="rating", seed=0, coldStartStrategy="drop")
        t = time.perf_counter()
        model = als.fit(train)
        return model, time.perf_counter() - t

    def score(model) -> float:
        scored = model.transform(test)
        return float(scored.select(
            F.sqrt(F.avg((F.col("rating") - F.col("prediction")) ** 2))).first()[0])

    series = _fit_series(a, fit, score, a.iterations, warm_up=True)
    jvm_hwm_kb = 0
    for child in psutil.Process().children(recursive=True):
        jvm_hwm_kb += _vm_hwm_kb(child.pid)
    spark.stop()
    return {"version": pyspark.__version__, "load_s": load_s, **series,
            "extra_rss_kb": jvm_hwm_kb,
            "note": f"regParam {a.reg} (ALS-WR, scaled by counts), no biases; JVM start "
                    f"{jvm_start_s:.1f} s not in load; RSS = python + JVM peaks; "
                    f"driver memory {a.spark_memory}; one untimed fit(1) first (JVM warm-up)"}


def _vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


WORKERS = {
    "alsmf": worker_alsmf, "alsmf-chol": lambda a: worker_alsmf(a, "cholesky"),
    "alsmf-ials": worker_alsmf_ials,
    "cmfrec-cg": worker_cmfrec_cg, "cmfrec-chol": worker_cmfrec_chol,
    "implicit": worker_implicit, "lenskit": worker_lenskit, "libmf": worker_libmf,
    "spark": worker_spark,
}


def run_worker(a) -> int:
    a.factors = int(a.factors)
    try:
        result = WORKERS[a.worker](a)
        result["status"] = "ok"
        result["self_hwm_kb"] = _vm_hwm_kb(os.getpid())
    except BaseException as error:  # report, never crash the parent's table
        traceback.print_exc()
        result = {"status": f"failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
                  if str(error) else f"failed: {type(error).__name__}"}
    sys.stdout.flush()
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------------

def worker_env(name: str, threads: int) -> dict:
    env = dict(os.environ)
    env.update({"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "BLIS_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1",
                "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    if name in ("cmfrec-cg", "cmfrec-chol", "implicit"):
        # their own OpenMP loops take nthreads / num_threads; keep OpenMP's default in line
        env["OMP_NUM_THREADS"] = str(threads)
    if name == "lenskit":
        env.update({"LK_NUM_THREADS": str(threads), "LK_NUM_BACKEND_THREADS": "1"})
    if name in ("alsmf", "alsmf-chol", "alsmf-ials"):
        env["NUMBA_NUM_THREADS"] = str(max(threads, os.cpu_count() or 1))
    return env


def convergence_plan(name: str, a) -> tuple[bool, str | None]:
    """Whether to measure ``name``'s convergence, and why not when it is not."""
    if not LIBRARIES[name][1]:
        return False, "no test RMSE (implicit model)"
    if a.convergence is False:
        return False, "--no-convergence"
    if a.convergence is None and a.shape in LARGE_SHAPES and name not in CONVERGENCE_AT_LARGE:
        return False, (f"convergence not measured at {a.shape} by default (a fit per grid "
                       "point is too slow here; --convergence forces it)")
    return True, None


_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores; steal counts as busy)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[:8])
    except (OSError, ValueError):
        return float("nan")
    return (user + nice + system + irq + softirq + steal) / _HZ


def loadavg() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run_library(name: str, a, factors: int, train: Path, test: Path, log: Path) -> dict:
    convergence, why_not = convergence_plan(name, a)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name,
           "--train", str(train), "--test", str(test), "--factors", str(factors),
           "--convergence" if convergence else "--no-convergence"]
    for key in ("threads", "iterations", "reg", "lenskit_reg", "libmf_reg", "libmf_eta",
                "libmf_iterations", "spark_memory", "convergence_grid"):
        if getattr(a, key) is not None:
            cmd += [f"--{key.replace('_', '-')}", str(getattr(a, key))]
    load_start = loadavg()
    busy_start = busy_seconds()
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env=worker_env(name, a.threads))
        timer = threading.Timer(a.timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    # CPU used by other processes meanwhile, in cores: machine busy time minus the worker's
    # (Spark's JVM is not the worker's waited-for child, so its CPU lands here too)
    others = (busy_seconds() - busy_start - usage.ru_utime - usage.ru_stime) / wall
    text = log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.startswith(RESULT_TAG)]
    if lines:
        result = json.loads(lines[-1][len(RESULT_TAG):])
    elif wall >= a.timeout:
        result = {"status": f"failed: timed out after {a.timeout:.0f} s"}
    else:
        tail = [line for line in text.splitlines() if line.strip()][-1:] or ["no output"]
        result = {"status": f"failed: exit {proc.returncode}: {tail[0][:200]}"}
    # VmHWM of the worker itself (exec resets it; wait4's ru_maxrss starts from the parent's
    # RSS at fork), plus the JVM's for Spark; wait4 only when the worker could not report
    own_kb = result.get("self_hwm_kb") or usage.ru_maxrss
    result["peak_rss_mb"] = (own_kb + result.get("extra_rss_kb", 0)) / 1024
    result["wall_s"] = wall
    result["log"] = str(log)
    result["load"] = [load_start, loadavg()]
    result["others_cores"] = max(others, 0.0)
    result.update(converged(result.get("curve")))
    if why_not and result.get("status") == "ok":
        result["convergence_note"] = why_not
    return result


def converged(curve: list | None, tolerance: float = CONVERGENCE_TOLERANCE) -> dict:
    """The first point of ``curve`` ([n, rmse, seconds], n ascending) from which every later
    point's RMSE stays within ``tolerance`` (relative) of the last point's."""
    if not curve or curve[-1][1] is None:
        return {}
    final = curve[-1][1]
    first = len(curve) - 1
    for index in range(len(curve) - 1, -1, -1):
        if curve[index][1] is None or abs(curve[index][1] - final) > tolerance * final:
            break
        first = index
    n, rmse, seconds = curve[first]
    return {"conv_iterations": n, "conv_s": seconds, "conv_rmse": rmse}


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 1024 ** 2:.0f} GiB"
    except (OSError, ValueError, IndexError):
        mem = "?"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{platform.node()}: {cpu}, {cores} cores, {mem} RAM, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def fmt(value, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def table(results: dict[str, dict], a) -> str:
    """One markdown table: the libraries' results at one k."""
    base = results.get("alsmf", {}).get("median_s")
    n = a.iterations
    rows = ["| library | version | load s | s / iteration | ratio to alsmf | timing | "
            f"fit {n} it. s | peak RSS MB | test RMSE @{n} | iterations to 0.5% | "
            "time to 0.5% s | load avg | others' cores | status / notes |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        label = LIBRARIES[name][0].replace("local[N]", f"local[{a.threads}]")
        median = r.get("median_s")
        ratio = None if (median is None or not base) else median / base
        notes = r["status"] if r["status"] != "ok" else r.get("note", "")
        if r.get("convergence_note"):
            notes += f"; {r['convergence_note']}"
        own_n = r.get("rmse_iterations")
        at = f" (@{own_n})" if own_n and own_n != n else ""
        load = r.get("load") or [None, None]
        rows.append(
            f"| {label} | {r.get('version', '–')} | {fmt(r.get('load_s'))} | "
            f"**{fmt(median, '.3f')}** | {fmt(ratio)} | {r.get('method', '–')} | "
            f"{fmt(r.get('fit_s'), '.1f')}{at} | {fmt(r.get('peak_rss_mb'), '.0f')} | "
            f"{fmt(r.get('rmse'), '.4f')}{at} | {fmt(r.get('conv_iterations'), 'd')} | "
            f"{fmt(r.get('conv_s'), '.2f')} | {fmt(load[0])} / {fmt(load[1])} | "
            f"{fmt(r.get('others_cores'), '.1f')} | {notes} |")
    return "\n".join(rows) + "\n"


def curves_table(results: dict[str, dict]) -> str:
    """The measured (n, test RMSE, seconds) points behind the convergence columns."""
    rows = []
    for name, r in results.items():
        curve = r.get("curve")
        if not curve:
            continue
        points = ", ".join(f"{n}: {fmt(rmse, '.4f')} / {fmt(s, '.1f')} s"
                           for n, rmse, s in curve)
        rows.append(f"| {name} | {r.get('curve_time', '')} | {points} |")
    if not rows:
        return ""
    return "\n".join(["| library | time is | n: test RMSE / seconds |", "|---|---|---|"]
                     + rows) + "\n"


def header(a, info: dict, factor_list: list[int], started: datetime.datetime,
           grid: str) -> str:
    k_text = ", ".join(map(str, factor_list))
    return "\n".join([
        f"# Peer benchmark, {a.shape}-shaped synthetic data",
        "",
        f"Date: {started.strftime('%Y-%m-%d %H:%M %Z')}  ",
        f"Machine: {machine()}  ",
        f"Data: alsmf `synthetic_ratings(like={a.shape!r})`: {info['ratings']:,} ratings, "
        f"{info['users']:,} users, {info['items']:,} items; random 90/10 split (seed 0): "
        f"{info['train']:,} train, {info['test']:,} test ({info['test_dropped_cold']} cold "
        f"test pairs dropped)"
        + (f"; oracle RMSE {info['oracle_rmse']:.4f}" if info.get("oracle_rmse") else "")
        + "  ",
        f"Settings: k = {k_text}, {a.threads} threads, BLAS single-threaded, "
        f"{a.iterations} iterations (epochs)"
        + (f", LIBMF {a.libmf_iterations} epochs" if a.libmf_iterations else "")
        + "; each library in its own process, one after the other.  ",
        "s / iteration: median of iterations 2..n where the library reports each iteration, "
        f"else (time of fit(n) - time of fit({WARMUP_FITS})) / (n - {WARMUP_FITS}). Load: "
        "Parquet file to the library's training form. Peak RSS: the whole process "
        "(load + train).  ",
        f"Iterations / time to 0.5%: the first iteration count n from which the test RMSE "
        f"stays within {CONVERGENCE_TOLERANCE:.1%} of the library's own test RMSE after its "
        "last iteration (LIBMF: epochs). alsmf and LensKit: one fit scored after every "
        "iteration, time = the cumulative seconds of iterations 1..n (alsmf: solve_seconds; "
        "LensKit: train_epoch(); their set-up and the scoring excluded). cmfrec, LIBMF, Spark: "
        f"one fit from scratch per n in {{{grid}}}, time = wall time of fit(n) (includes "
        "whatever set-up the library does inside fit), so n is only as fine as that grid. "
        "The points are listed under each table.  ",
        "Load avg: 1-minute load average before / after the library's process. Others' cores: "
        "CPU time other processes used while the library ran (/proc/stat busy time minus the "
        "worker's own), per second of its run: 0 = the machine was the library's alone, 1 = "
        f"another job held a whole core of the {os.cpu_count()} (for Spark it includes the "
        "JVM's own CPU). Other jobs share this machine: compare ratios from one run.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="ml-1m", help="MovieLens shape: ml-100k, ml-1m, ml-20m")
    p.add_argument("--factors", default="64",
                   help="k, or a comma-separated list (e.g. 16,64,128): one table per k")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--reg", type=float, default=0.12,
                   help="λ for alsmf, cmfrec (scaled by counts), implicit and Spark")
    p.add_argument("--lenskit-reg", type=float, default=0.1)
    p.add_argument("--libmf-reg", type=float, default=0.05)
    p.add_argument("--libmf-eta", type=float, default=0.1)
    p.add_argument("--libmf-iterations", type=int, default=None,
                   help="LIBMF epochs (default: --iterations); its convergence grid goes on "
                        "past 10 with " + ", ".join(map(str, EXTRA_GRID[:4])) + ", ...")
    p.add_argument("--spark-memory", default=None, help="spark.driver.memory (default by shape)")
    p.add_argument("--only", default=None,
                   help="comma-separated subset of: " + ", ".join(list(LIBRARIES) + list(GROUPS)))
    p.add_argument("--convergence", action=argparse.BooleanOptionalAction, default=None,
                   help="measure iterations and time to within 0.5%% of the final test RMSE "
                        "(default: on; at ml-10m/ml-20m only for "
                        + ", ".join(CONVERGENCE_AT_LARGE) + ")")
    p.add_argument("--convergence-grid", default=CONVERGENCE_GRID,
                   help="iteration counts fitted separately for the libraries without a "
                        "per-iteration test RMSE (default %(default)s)")
    p.add_argument("--out", default=None,
                   help="stem of the result files in benchmarks/results (default peers-SHAPE)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per library and k")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--train", help=argparse.SUPPRESS)
    p.add_argument("--test", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.spark_memory is None or a.spark_memory == "None":
        a.spark_memory = "12g" if a.shape in ("ml-10m", "ml-20m") else "4g"
    if a.worker:
        return run_worker(a)
    if a.iterations < WARMUP_FITS + 3:
        p.error(f"--iterations must be at least {WARMUP_FITS + 3}")
    if a.libmf_iterations is not None and a.libmf_iterations < WARMUP_FITS + 3:
        p.error(f"--libmf-iterations must be at least {WARMUP_FITS + 3}")
    try:
        factor_list = [int(t) for t in a.factors.split(",") if t.strip()]
        grid = sorted({int(t) for t in a.convergence_grid.split(",") if t.strip()})
    except ValueError as error:
        p.error(str(error))
    if not factor_list or min(factor_list) < 1 or not grid or min(grid) < 1:
        p.error("--factors and --convergence-grid take positive integers")

    names = list(LIBRARIES)
    if a.only:
        names = []
        for token in a.only.split(","):
            token = token.strip()
            expanded = GROUPS.get(token, [token])
            for name in expanded:
                if name not in LIBRARIES:
                    p.error(f"unknown library {token!r}")
                names.append(name)
        if "alsmf" not in names:
            names.insert(0, "alsmf")

    started = datetime.datetime.now().astimezone()
    train, test, info = prepare_data(a.shape)
    print(f"data: {info}", flush=True)
    stem = a.out or f"peers-{a.shape}"
    log_dir = RESULTS / f"logs-{a.shape}"
    log_dir.mkdir(parents=True, exist_ok=True)
    by_k: dict[int, dict[str, dict]] = {}
    for factors in factor_list:
        results: dict[str, dict] = {}
        for name in names:
            print(f"running {name}, k = {factors} ...", flush=True)
            log = log_dir / (f"{name}-k{factors}.log" if len(factor_list) > 1 else f"{name}.log")
            r = run_library(name, a, factors, train, test, log)
            seconds = r.get("iter_s")
            r["median_s"] = statistics.median(seconds) if seconds else None
            results[name] = r
            print(f"  {name}: {r['status']}, s/it {fmt(r['median_s'], '.3f')}, "
                  f"RMSE {fmt(r.get('rmse'), '.4f')}, to 0.5%: "
                  f"{fmt(r.get('conv_iterations'), 'd')} it. / {fmt(r.get('conv_s'), '.2f')} s, "
                  f"RSS {r['peak_rss_mb']:.0f} MB, wall {r['wall_s']:.0f} s, "
                  f"load {fmt(r['load'][0])}/{fmt(r['load'][1])}", flush=True)
        by_k[factors] = results
    total_s = (datetime.datetime.now().astimezone() - started).total_seconds()
    parts = [header(a, info, factor_list, started, ",".join(map(str, grid)))]
    for factors, results in by_k.items():
        parts += [f"## k = {factors}", "", table(results, a)]
        curves = curves_table(results)
        if curves:
            parts += ["Convergence points (n: test RMSE after n iterations / seconds):", "",
                      curves]
    parts.append(f"Whole run: {total_s / 60:.1f} min.\n")
    text = "\n".join(parts)
    print()
    print(text)
    out = RESULTS / f"{stem}.md"
    out.write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(
        {str(k): results for k, results in by_k.items()}, indent=1, default=str))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
