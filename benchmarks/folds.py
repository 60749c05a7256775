"""alsmf against its peers on the ml-100k canonical folds u1..u5: test RMSE, MAE and fit time.

    python benchmarks/folds.py                                # every model, ~15-20 min on 2 cores
    python benchmarks/folds.py --only alsmf,cmfrec --out folds-subset

Run it with the peer environment's python (``benchmarks/.venv-peers``, see benchmarks/README.md);
one script with every library's runner, so that one command reproduces the README's table.
Every model fits each fold's ``u*.base`` and predicts every pair of its ``u*.test`` (20,000 per
fold), read from ``../shared/data/ml-100k`` (``--ml100k PATH``; never copied into the
repository). Models:

- alsmf: ``ALS()`` defaults; plain biased ALS (one λ, no implicit features, 15 iterations: the
  model the ALS peers fit); ``BayesianMF()`` defaults; the SGD baseline ``SGD()`` defaults;
- Surprise: SVD defaults, SVD tuned on these folds (50 factors, 100 epochs, lr 0.01, reg 0.1),
  SVD++ defaults, BaselineOnly defaults;
- LensKit: ``BiasedMFScorer()`` defaults (explicit biased ALS);
- cmfrec: ``CMF()`` defaults (explicit biased ALS); k 50 with λ 0.13 scaled by counts and
  15 iterations; the same with ``add_implicit_features=True``;
- Spark MLlib ALS defaults (rank 10, 10 iterations, regParam 0.1 scaled by counts, no biases),
  ``local[N]``;
- myFM: ``MyFMRegressor`` (Bayesian FM by Gibbs) on the user and item one-hot, rank 10 with
  200 sweeps and rank 64 with 300.

Nothing is clipped unless the library does it by default (Surprise clips to 1..5 in
``test``). Unknown users or items (ml-100k's folds have none of the former and 27-36 test pairs
per fold of the latter): each library answers them its own way; where it answers NaN
(cmfrec, Spark with ``coldStartStrategy="nan"``, LensKit's scorer) the prediction is the
training mean, and the table counts those pairs. alsmf answers from its fallback (μ + b_u).

Each model runs in its own subprocess (the peer benchmark's pattern: ``--threads`` threads,
BLAS single-threaded, a ``--timeout`` per model; a model that cannot be imported or fails is
listed with the reason). The fit time of a fold is the wall time of the library's ``fit`` alone
(data conversion and prediction outside it), plus the process CPU time of the same call
(Spark's JVM is not in its CPU). alsmf and Spark fit once untimed before the folds (numba
compilation, JVM warm-up). The table (one row per model: u1..u5 RMSE, mean RMSE, mean MAE,
median fit seconds over the folds) is printed and written to ``benchmarks/results/STEM.md``
(``--out``, default ``folds-ml-100k``) with ``STEM.json``; logs go to ``results/logs-folds/``.
It also gives the ratio of Surprise's tuned SVD fit time to alsmf's default fit time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_ML100K = HERE.parents[1] / "shared" / "data" / "ml-100k"
sys.path.insert(0, str(HERE))
from peers import PLAIN, RESULT_TAG, _dist_version, fmt, loadavg, machine, worker_env  # noqa: E402

FOLDS = ("u1", "u2", "u3", "u4", "u5")
SURPRISE_TUNED = {"n_factors": 50, "n_epochs": 100, "lr_all": 0.01, "reg_all": 0.1}
CMFREC_TUNED = {"k": 50, "lambda_": 0.13, "scale_lam": True, "niter": 15}

# name -> (label, family); the family picks the worker and its thread environment
MODELS: dict[str, tuple[str, str]] = {
    "alsmf-defaults": ("alsmf ALS defaults (k 64, λ 0.12, λ_b 0.02, implicit w 3, 25 it.)",
                       "alsmf"),
    "alsmf-plain": ("alsmf plain biased ALS (k 64, λ 0.12, no implicit, 15 it.)", "alsmf"),
    "alsmf-bayes": ("alsmf BayesianMF defaults (Gibbs, k 10, 200 sweeps, implicit w 2)",
                    "alsmf"),
    "alsmf-sgd": ("alsmf SGD baseline defaults (Surprise SVD's settings)", "alsmf"),
    "surprise-svd": ("Surprise SVD defaults (k 100, 20 epochs, SGD)", "surprise"),
    "surprise-svd-tuned": ("Surprise SVD tuned (k 50, 100 epochs, lr 0.01, reg 0.1)",
                           "surprise"),
    "surprise-svdpp": ("Surprise SVD++ defaults (k 20, 20 epochs)", "surprise"),
    "surprise-baseline": ("Surprise BaselineOnly defaults (ALS baselines)", "surprise"),
    "lenskit": ("LensKit BiasedMFScorer defaults (ALS, k 50, λ 0.1, 10 epochs)", "lenskit"),
    "cmfrec-defaults": ("cmfrec CMF defaults (explicit biased ALS)", "cmfrec"),
    "cmfrec-tuned": ("cmfrec CMF k 50, λ 0.13 scaled by counts, 15 it.", "cmfrec"),
    "cmfrec-implicit": ("cmfrec CMF k 50, λ 0.13 scaled, 15 it., add_implicit_features",
                        "cmfrec"),
    "spark": ("Spark MLlib ALS defaults (rank 10, 10 it., regParam 0.1, no biases)", "spark"),
    "myfm-10": ("myFM MyFMRegressor rank 10, 200 sweeps (Gibbs)", "myfm"),
    "myfm-64": ("myFM MyFMRegressor rank 64, 300 sweeps (Gibbs)", "myfm"),
}
GROUPS = {family: [name for name, (_, f) in MODELS.items() if f == family]
          for family in {f for _, f in MODELS.values()}}
ENV_LIKE = {"cmfrec": "cmfrec-cg", "lenskit": "lenskit", "alsmf": "alsmf"}
"""Which peers.py library's thread environment each family takes (others: BLAS threads 1)."""


# --------------------------------------------------------------------------------------------
# workers: each runs one model over the folds in its own process and prints one RESULT_TAG line
# --------------------------------------------------------------------------------------------

def read_fold(path: Path, fold: str):
    """(train, test) DataFrames of one canonical fold: user, item, rating, timestamp."""
    import pandas as pd
    names = ["user", "item", "rating", "timestamp"]
    return tuple(pd.read_csv(path / f"{fold}.{part}", sep="\t", names=names)
                 for part in ("base", "test"))


def timed(call):
    """Run ``call()``; return (its result, wall seconds, process CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def with_mean(predicted, train):
    """``predicted`` as float64 with NaN (no prediction) replaced by the training mean, and how
    many were replaced."""
    import numpy as np
    predicted = np.asarray(predicted, dtype=np.float64).copy()
    missing = ~np.isfinite(predicted)
    predicted[missing] = float(train["rating"].mean())
    return predicted, int(missing.sum())


# Each maker returns (fit_predict(train, test) -> (predictions, wall s, cpu s), warm_up(train)
# or None, version, note, settings for the JSON file); predictions follow ``test``'s row order.

def make_alsmf(name: str, a):
    import dataclasses

    import alsmf
    import numpy as np
    from alsmf import ALS
    from alsmf.baselines import SGD
    from alsmf.models.bayes import BayesianMF
    from alsmf.data.ratings import Ratings

    config = {"alsmf-defaults": ALS(), "alsmf-plain": ALS(**PLAIN, iterations=15),
              "alsmf-bayes": BayesianMF(), "alsmf-sgd": SGD()}[name]
    threaded = not isinstance(config, SGD)  # SGD updates on one thread by design

    def ratings(frame) -> Ratings:
        return Ratings.from_arrays(frame["user"].to_numpy(), frame["item"].to_numpy(),
                                   frame["rating"].to_numpy(np.float64))

    def fit(cfg, data):
        return cfg.fit(data, threads=a.threads) if threaded else cfg.fit(data)

    def fit_predict(train, test):
        data = ratings(train)
        model, wall, cpu = timed(lambda: fit(config, data))
        return model.predict(test["user"].to_numpy(), test["item"].to_numpy()), wall, cpu

    def warm_up(train) -> None:  # numba compiles the kernels on the first fit
        short = ({"sweeps": 3, "burn_in": 1, "samples": 2} if isinstance(config, BayesianMF)
                 else {"epochs": 1} if isinstance(config, SGD) else {"iterations": 2})
        fit(dataclasses.replace(config, **short), ratings(train.iloc[: len(train) // 10]))

    note = "unknown item: μ + b_u (alsmf's fallback)" + ("" if threaded else "; one thread")
    return fit_predict, warm_up, alsmf.__version__, note, config.params()


def make_surprise(name: str, a):
    import surprise
    from surprise import SVD, BaselineOnly, Dataset, Reader, SVDpp

    algo = {"surprise-svd": lambda: SVD(random_state=0),
            "surprise-svd-tuned": lambda: SVD(random_state=0, **SURPRISE_TUNED),
            "surprise-svdpp": lambda: SVDpp(random_state=0),
            "surprise-baseline": lambda: BaselineOnly(verbose=False)}[name]

    def fit_predict(train, test):
        trainset = Dataset.load_from_df(train[["user", "item", "rating"]],
                                        Reader(rating_scale=(1, 5))).build_full_trainset()
        model = algo()
        _, wall, cpu = timed(lambda: model.fit(trainset))
        pairs = list(zip(test["user"], test["item"], test["rating"]))
        return [p.est for p in model.test(pairs)], wall, cpu

    return fit_predict, None, surprise.__version__, (
        "one thread (Surprise has no threads); test() clips to 1..5 (its default); unknown "
        "item: μ + b_u (SVD, SVD++, BaselineOnly skip the unknown terms); random_state 0"), {
        "surprise-svd-tuned": SURPRISE_TUNED}.get(name, "defaults")


def make_lenskit(name: str, a):
    import lenskit
    import numpy as np
    from lenskit.als import BiasedMFScorer
    from lenskit.data import from_interactions_df
    from lenskit.training import TrainingOptions

    def fit_predict(train, test):
        data = from_interactions_df(train, user_col="user", item_col="item",
                                    rating_col="rating", timestamp_col="timestamp")
        scorer = BiasedMFScorer()
        _, wall, cpu = timed(lambda: scorer.train(data, TrainingOptions(rng=0)))
        u = scorer.users.numbers(test["user"].to_numpy(), missing="negative")
        i = scorer.items.numbers(test["item"].to_numpy(), missing="negative")
        known = (u >= 0) & (i >= 0)
        bias = scorer.bias
        predicted = np.full(len(test), np.nan)
        uk, ik = u[known], i[known]
        score = np.full(len(uk), bias.global_bias, dtype=np.float64)
        if bias.user_biases is not None:
            score += bias.user_biases[uk]
        if bias.item_biases is not None:
            score += bias.item_biases[ik]
        score += np.einsum("ij,ij->i", scorer.user_embeddings[uk], scorer.item_embeddings[ik])
        predicted[known] = score
        return predicted, wall, cpu

    return fit_predict, None, lenskit.__version__, (
        "scored as the scorer does (μ + b_u + b_i + p·q, biases damped 5); an unknown item "
        "gets no score from LensKit (NaN: training mean here)"), "defaults"


def make_cmfrec(name: str, a):
    import cmfrec
    settings = {"cmfrec-defaults": {}, "cmfrec-tuned": CMFREC_TUNED,
                "cmfrec-implicit": {**CMFREC_TUNED, "add_implicit_features": True}}[name]

    def fit_predict(train, test):
        frame = train.rename(columns={"user": "UserId", "item": "ItemId", "rating": "Rating"})[
            ["UserId", "ItemId", "Rating"]]
        model = cmfrec.CMF(nthreads=a.threads, verbose=False, **settings)
        _, wall, cpu = timed(lambda: model.fit(frame))
        predicted = model.predict(user=test["user"].to_numpy(), item=test["item"].to_numpy())
        return predicted, wall, cpu

    probe = cmfrec.CMF()
    defaults = {key: getattr(probe, key, "?") for key in
                ("k", "lambda_", "scale_lam", "niter", "use_cg", "user_bias", "item_bias",
                 "add_implicit_features")}
    return fit_predict, None, _dist_version("cmfrec"), (
        "cmfrec scores unknown items itself (no NaN came back)"), {
        "settings": settings or "defaults", "defaults": defaults}


def make_spark(name: str, a):
    import pyspark
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession

    started = time.perf_counter()
    spark = (SparkSession.builder.master(f"local[{a.threads}]")
             .config("spark.driver.memory", "2g").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", str(4 * a.threads)).getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    jvm_s = time.perf_counter() - started

    def fit_predict(train, test):
        frame = spark.createDataFrame(train[["user", "item", "rating"]]).cache()
        frame.count()
        als = ALS(userCol="user", itemCol="item", ratingCol="rating", seed=0)
        model, wall, cpu = timed(lambda: als.fit(frame))
        pairs = spark.createDataFrame(test[["user", "item"]])
        scored = model.transform(pairs).toPandas()  # rows come back in any order
        merged = test[["user", "item"]].merge(scored, on=["user", "item"], how="left")
        frame.unpersist()
        return merged["prediction"].to_numpy(), wall, cpu

    def warm_up(train) -> None:  # the JVM compiles Spark's code during the first fits
        frame = spark.createDataFrame(train[["user", "item", "rating"]])
        ALS(userCol="user", itemCol="item", ratingCol="rating", maxIter=2, seed=0).fit(frame)

    return fit_predict, warm_up, pyspark.__version__, (
        f"local[{a.threads}], driver memory 2g, JVM start {jvm_s:.1f} s (not in fit); "
        "coldStartStrategy 'nan' (default): unknown item -> training mean here; CPU s is the "
        "Python driver's only (the JVM does the work); no native BLAS (libblas.so.3) on this "
        "machine, so Spark's own Java BLAS"), "defaults, seed 0"


def make_myfm(name: str, a):
    import myfm
    import numpy as np
    import scipy.sparse as sp

    rank, sweeps = {"myfm-10": (10, 200), "myfm-64": (64, 300)}[name]

    def one_hot(train, frame):
        """[user one-hot | item one-hot] over the training ids; an unknown id is a zero block."""
        blocks = []
        for column in ("user", "item"):
            ids = np.unique(train[column].to_numpy())
            values = frame[column].to_numpy()
            codes = np.searchsorted(ids, values).clip(0, len(ids) - 1)
            known = ids[codes] == values
            rows = np.flatnonzero(known)
            blocks.append(sp.csr_matrix((np.ones(len(rows)), (rows, codes[known])),
                                        shape=(len(frame), len(ids))))
        return sp.hstack(blocks, format="csr")

    def fit_predict(train, test):
        x_train, x_test = one_hot(train, train), one_hot(train, test)
        model = myfm.MyFMRegressor(rank=rank, random_seed=0)
        _, wall, cpu = timed(lambda: model.fit(x_train, train["rating"].to_numpy(np.float64),
                                               n_iter=sweeps))
        return model.predict(x_test), wall, cpu

    return fit_predict, None, _dist_version("myfm"), (
        f"rank {rank}, n_iter {sweeps}, other settings default (every sweep kept, no "
        "grouping); unknown item: its one-hot block is empty (w0 + w_u)"), {
        "rank": rank, "n_iter": sweeps, "random_seed": 0}


MAKERS = {"alsmf": make_alsmf, "surprise": make_surprise, "lenskit": make_lenskit,
          "cmfrec": make_cmfrec, "spark": make_spark, "myfm": make_myfm}


def worker(a) -> dict:
    """Fit ``a.worker`` on every fold; per fold RMSE, MAE, fit seconds and NaN-filled pairs."""
    import numpy as np

    fit_predict, warm_up, version, note, settings = MAKERS[MODELS[a.worker][1]](a.worker, a)
    folds = [(fold, *read_fold(Path(a.ml100k), fold)) for fold in a.folds.split(",")]
    if warm_up is not None:
        warm_up(folds[0][1])
    per_fold = []
    for fold, train, test in folds:
        predicted, wall, cpu = fit_predict(train, test)
        predicted, filled = with_mean(predicted, train)
        error = test["rating"].to_numpy(np.float64) - predicted
        per_fold.append({"fold": fold, "rmse": float(np.sqrt(np.mean(error ** 2))),
                         "mae": float(np.mean(np.abs(error))), "fit_s": wall, "fit_cpu_s": cpu,
                         "filled": filled, "unknown_items": int((~test["item"].isin(
                             train["item"])).sum())})
        print(f"{a.worker} {fold}: {per_fold[-1]}", flush=True)
    return {"version": version, "note": note, "settings": settings, "folds": per_fold}


def run_worker(a) -> int:
    try:
        result = {**worker(a), "status": "ok"}
    except BaseException as error:  # report, never crash the parent's table
        traceback.print_exc()
        first = str(error).splitlines()[0][:200] if str(error) else ""
        result = {"status": f"failed: {type(error).__name__}" + (f": {first}" if first else "")}
    sys.stdout.flush()
    print(RESULT_TAG + json.dumps(result, default=str), flush=True)
    return 0


# --------------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------------

def run_model(name: str, a, log: Path) -> dict:
    """Run one model's worker in a subprocess with a timeout; its result dict."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name,
           "--ml100k", str(a.ml100k), "--folds", a.folds, "--threads", str(a.threads)]
    family = MODELS[name][1]
    env = worker_env(ENV_LIKE.get(family, family), a.threads)
    load_start, started = loadavg(), time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        timer = threading.Timer(a.timeout, proc.kill)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
    wall = time.perf_counter() - started
    text = log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.startswith(RESULT_TAG)]
    if lines:
        result = json.loads(lines[-1][len(RESULT_TAG):])
    elif wall >= a.timeout:
        result = {"status": f"failed: timed out after {a.timeout:.0f} s"}
    else:
        tail = [line for line in text.splitlines() if line.strip()][-1:] or ["no output"]
        result = {"status": f"failed: exit {proc.returncode}: {tail[0][:200]}"}
    folds = result.get("folds") or []
    if folds:
        result.update({
            "mean_rmse": statistics.mean(f["rmse"] for f in folds),
            "mean_mae": statistics.mean(f["mae"] for f in folds),
            "median_fit_s": statistics.median(f["fit_s"] for f in folds),
            "median_fit_cpu_s": statistics.median(f["fit_cpu_s"] for f in folds),
            "filled": sum(f["filled"] for f in folds)})
    result.update({"wall_s": wall, "load": [load_start, loadavg()], "log": str(log)})
    return result


def table(results: dict[str, dict], folds: list[str]) -> str:
    """The markdown table: one row per model."""
    rows = ["| model | version | " + " | ".join(folds) + " | mean RMSE | mean MAE | "
            "median fit s | median fit CPU s | NaN → mean | notes |",
            "|---|---|" + "---|" * len(folds) + "---|---|---|---|---|---|"]
    for name, r in results.items():
        by_fold = {f["fold"]: f["rmse"] for f in r.get("folds") or []}
        cells = " | ".join(fmt(by_fold.get(fold), ".4f") for fold in folds)
        notes = r["status"] if r["status"] != "ok" else r.get("note", "")
        rows.append(f"| {MODELS[name][0]} | {r.get('version', '–')} | {cells} | "
                    f"**{fmt(r.get('mean_rmse'), '.4f')}** | {fmt(r.get('mean_mae'), '.4f')} | "
                    f"{fmt(r.get('median_fit_s'), '.2f')} | "
                    f"{fmt(r.get('median_fit_cpu_s'), '.2f')} | {fmt(r.get('filled'), 'd')} | "
                    f"{notes} |")
    return "\n".join(rows) + "\n"


def speed_ratio(results: dict[str, dict]) -> str:
    """The issue's target: Surprise's tuned SVD fit time over alsmf's default fit time."""
    svd = results.get("surprise-svd-tuned", {}).get("median_fit_s")
    als = results.get("alsmf-defaults", {}).get("median_fit_s")
    if not svd or not als:
        return "Speed ratio: needs both surprise-svd-tuned and alsmf-defaults in the run.\n"
    return (f"Speed ratio (target ≥ 10): Surprise SVD tuned median fit {svd:.2f} s / alsmf "
            f"ALS defaults median fit {als:.2f} s = **{svd / als:.1f}x** (wall time of fit; "
            f"alsmf on {results['alsmf-defaults'].get('threads', '?')} threads, Surprise on "
            f"one). RMSE: {results['surprise-svd-tuned']['mean_rmse']:.4f} vs "
            f"{results['alsmf-defaults']['mean_rmse']:.4f}.\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ml100k", type=Path, default=DEFAULT_ML100K)
    p.add_argument("--only", default=None,
                   help="comma-separated models or families: " + ", ".join(
                       list(MODELS) + sorted(GROUPS)))
    p.add_argument("--folds", default=",".join(FOLDS), help="subset of u1..u5, e.g. u1,u2")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timeout", type=float, default=900, help="seconds per model (all folds)")
    p.add_argument("--out", default="folds-ml-100k", help="stem of the result files")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    folds = [f.strip() for f in a.folds.split(",") if f.strip()]
    if not folds or any(f not in FOLDS for f in folds):
        p.error(f"--folds takes names from {', '.join(FOLDS)}")
    a.folds = ",".join(folds)
    if a.worker:
        return run_worker(a)
    if not (a.ml100k / "u1.base").is_file():
        p.error(f"ml-100k folds not found at {a.ml100k} (give --ml100k PATH)")
    names = list(MODELS)
    if a.only:
        names = []
        for token in (t.strip() for t in a.only.split(",") if t.strip()):
            if token not in MODELS and token not in GROUPS:
                p.error(f"unknown model {token!r}; choose from "
                        + ", ".join(list(MODELS) + sorted(GROUPS)))
            names += [n for n in GROUPS.get(token, [token]) if n not in names]

    started = datetime.datetime.now().astimezone()
    log_dir = RESULTS / "logs-folds"
    log_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for name in names:
        print(f"running {name} ...", flush=True)
        r = run_model(name, a, log_dir / f"{name}.log")
        r["threads"] = a.threads
        results[name] = r
        print(f"  {name}: {r['status']}, RMSE {fmt(r.get('mean_rmse'), '.4f')}, MAE "
              f"{fmt(r.get('mean_mae'), '.4f')}, fit {fmt(r.get('median_fit_s'), '.2f')} s, "
              f"wall {r['wall_s']:.0f} s", flush=True)
    total_s = (datetime.datetime.now().astimezone() - started).total_seconds()
    text = "\n".join([
        "# alsmf and its peers on the ml-100k canonical folds",
        "",
        f"Date: {started.strftime('%Y-%m-%d %H:%M %Z')}  ",
        f"Machine: {machine()}  ",
        f"Command: `{' '.join(['python benchmarks/folds.py', *(argv or sys.argv[1:])])}` "
        "(peer environment)  ",
        f"Each model fits u*.base and predicts all of u*.test (20,000 pairs per fold); "
        f"{a.threads} threads where the library has threads, BLAS single-threaded, each model "
        "in its own process. RMSE and MAE on every test pair; nothing clipped unless the "
        "library does it by default (Surprise). Fit s: wall time of the library's fit call "
        "alone (median over the folds); fit CPU s: the process CPU time of the same call. "
        "NaN → mean: test pairs the library gave no prediction for (unknown items), scored "
        "with the training mean. Other jobs share this machine: compare within one run.",
        "",
        table(results, folds),
        speed_ratio(results),
        f"Whole run: {total_s / 60:.1f} min.\n",
    ])
    print()
    print(text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{a.out}.md"
    out.write_text(text)
    (RESULTS / f"{a.out}.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
