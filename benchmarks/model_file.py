"""What checking a model file costs at load: an ML-20M-shaped model saved and loaded.

The model is :mod:`use`'s (138,493 users, 26,744 items, k = 64 float32 factors, the
20,000,263 seen ratings of ``alsmf.synthetic_ratings("ml-20m")``) plus the two implicit
factor matrices a default ALS model carries. It is saved once to a temporary folder, then
timed, each the median of ``--repeats`` runs:

* reading the file with its digests checked (``alsmf.store.load_dataclass``: the zip's
  directory and each ``.npy`` header checked, every array read and hashed);
* the model checks alone (``alsmf.model_checks.check_model``: shapes, dtypes, id order, the
  seen CSR, finiteness, extras);
* ``MFModel.load``, both together.

Prints a markdown table (with the machine and the date) and writes it to
``benchmarks/results/model-file.md``.

    python benchmarks/model_file.py          # about a minute, most of it building the model
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from alsmf import MFModel, store
from alsmf.model_checks import check_model
from use import FACTORS, build_model, cpu_name

RESULTS = Path(__file__).resolve().parent / "results" / "model-file.md"


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``call`` over ``repeats`` runs (after one untimed run, which warms
    the page cache)."""
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(repeats: int, seed: int) -> str:
    model = build_model(seed)
    rng = np.random.default_rng(seed + 1)
    model.extras = {side: rng.normal(0.0, 0.1, (n, FACTORS)).astype(np.float32)
                    for side, n in (("implicit_item_factors", model.n_items),
                                    ("implicit_user_factors", model.n_users))}
    with tempfile.TemporaryDirectory() as folder:
        path = model.save(Path(folder) / "model.npz")
        size = path.stat().st_size
        read = median_seconds(lambda: store.load_dataclass(MFModel, path), repeats)
        loaded = store.load_dataclass(MFModel, path)
        checks = median_seconds(lambda: check_model(loaded, path), repeats)
        total = median_seconds(lambda: MFModel.load(path), repeats)
    today = datetime.date.today().isoformat()
    return "\n".join([
        f"# Checking a model file at load ({today})",
        "",
        f"ML-20M-shaped model: {model.n_users:,} users, {model.n_items:,} items, k = "
        f"{FACTORS} float32, {len(model.seen_indices):,} seen ratings, implicit factors; "
        f"file {size / 2**20:,.0f} MiB. Median of {repeats} runs each.",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| read and check digests (`store.load_dataclass`) | {read:.3f} |",
        f"| model checks (`check_model`) | {checks:.3f} |",
        f"| `MFModel.load` (both) | {total:.3f} |",
        "",
        f"The checks add {100 * checks / read:.1f}% to reading the file.",
        "",
        f"{platform.platform()} ({cpu_name()}, {os.cpu_count()} cores), Python "
        f"{platform.python_version()}, numpy {np.__version__}.",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each step")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and factors")
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    report = run(args.repeats, args.seed)
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
