"""Loading speed against pandas, and the peak memory of `alsmf train`, on a 20M-rating CSV.

    python benchmarks/load_memory.py              # ML-20M shape; about 5 minutes
    python benchmarks/load_memory.py --like ml-1m # quick check

The CSV (user,item,rating,timestamp, written by `alsmf data synthetic --like SHAPE`) is cached
in ``benchmarks/cache/``, with the same ratings sorted by user, then item: the generator
writes them in time order, the worst case for the repeated-pair check, and MovieLens' own
``ratings.csv`` is sorted by user. Timed, interleaved, median of ``--repeats`` runs each, on
both files: alsmf loading as ``alsmf train`` does (``load_ratings(file, timestamps=False)``:
file to validated ``Ratings``, ids coded, duplicates checked) and ``pandas.read_csv`` with
default options (file to DataFrame, nothing checked); on the time-ordered file also
``read_table`` with timestamps and the two stages on their own (the parse, then
``Ratings.from_arrays``). Each timed load starts after 2 GB has been touched and freed
(:func:`settled_seconds` says why). Then each library's first load of the time-ordered file
in ``--first-loads`` new processes, memory as this machine gives it.
Before all that, ``alsmf train --data FILE -n 3 --test-fraction 0.1`` runs in a child process
and its peak resident memory is read from ``wait4``, after the same command on a 100k-rating
CSV, which compiles the kernels (or finds them cached), so the figure does not depend on
whether this machine ran alsmf before. Writes ``benchmarks/results/load-memory-SHAPE.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent
SETTLE_BYTES = 2 << 30
"""Touched and freed before each timed load: more than either library allocates."""

FIRST_LOAD = {
    "alsmf": ("from alsmf.data.movielens import load_ratings",
              "load_ratings(sys.argv[{}], timestamps=False)"),
    "pandas": ("import pandas as pd", "pd.read_csv(sys.argv[{}])"),
}
"""Per library: its import, and its load of a file (the argument to format is argv's index)."""


def first_load_program(setup: str, load: str) -> str:
    """A child program printing the seconds of a library's first load of the file in argv[2],
    after loading the small one in argv[1] (which imports its code or loads cached kernels)."""
    return (f"import sys, time\n{setup}\n{load.format(1)}\n"
            f"started = time.perf_counter()\n{load.format(2)}\n"
            "print(time.perf_counter() - started)")


def settled_seconds(load: Callable[[], object]) -> float:
    """Seconds ``load()`` takes once 2 GB has been touched and freed.

    This VM's balloon device hands memory freed a few seconds ago back to the host, and a
    process that touches it again waits for the host to supply it: a load's time then depends
    on how long ago and how much the process before it freed. Touching memory first gives
    the load pages the guest still holds, as a machine without the device would.
    """
    np.ones(SETTLE_BYTES, dtype=np.uint8)  # touched, then freed at once
    started = time.perf_counter()
    load()
    return time.perf_counter() - started


TRAIN_ARGS = ["-n", "3", "--test-fraction", "0.1"]
"""The measured ``alsmf train`` command's options: load, split, 3 iterations, save."""


def train_peak_mb(data: Path, out: Path, *options: str) -> tuple[float, float]:
    """Peak resident memory (MB) and wall seconds of ``alsmf train --data DATA`` with
    :data:`TRAIN_ARGS` and ``options``, in a child process started while this one is small
    (a forked child's peak counts the parent's pages)."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", "from alsmf.cli import main; main()",
                              "train", "--data", str(data), *TRAIN_ARGS, "-o", str(out),
                              *options], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"alsmf train --data {data} {' '.join(options)} failed")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--like", default="ml-20m", help="synthetic shape (ml-100k .. ml-20m)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--first-loads", type=int, default=5,
                        help="new processes timed on their first load, per library")
    parser.add_argument("--peaks-only", action="store_true",
                        help="measure only the peak memory of alsmf train (CSV and Parquet, "
                        "with and without the ranking head), not the loading speed")
    args = parser.parse_args()

    import pandas as pd

    from alsmf.data.fastcsv import parse_plain
    from alsmf.data.movielens import load_ratings
    from alsmf.data.ratings import Ratings
    from alsmf.data.readers import read_table

    load_before = os.getloadavg()[0]
    csv = HERE / "cache" / f"{args.like}.csv"
    # the kernels compile on a machine's first run and are cached: the same command on a small
    # file of the same layout first, so the figures are the steady state (compiling adds
    # memory and tens of seconds)
    out = HERE / "cache" / "load-memory-output"
    small = HERE / "cache" / "ml-100k.csv"
    started = time.perf_counter()
    for file in (small, csv):
        if not file.exists():
            file.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-c", "from alsmf.cli import main; main()", "data",
                            "synthetic", str(file), "--like", file.stem], check=True)
    subprocess.run([sys.executable, "-c", "from alsmf.cli import main; main()", "train",
                    "--data", str(small), "-n", "1", "--test-fraction", "0.1", "-o", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    warm_up_seconds = time.perf_counter() - started
    # then, while this process is small; the same ratings as Parquet, written by a child
    parquet = csv.with_suffix(".parquet")
    if not parquet.exists():
        subprocess.run([sys.executable, "-c", "import sys; from alsmf.data.readers import "
                        "read_table; read_table(sys.argv[1]).to_frame().to_parquet(sys.argv[2], "
                        "index=False)", str(csv), str(parquet)], check=True)
    peak_mb, train_seconds = train_peak_mb(csv, out)
    peaks = {(kind, head): train_peak_mb(file, out, *([] if head else ["--set", "rank_factors=0"]))
             for kind, file in (("CSV", csv), ("Parquet", parquet)) for head in (True, False)}
    peaks_text = "; ".join(f"{kind} {'with' if head else 'without'} the ranking head "
                           f"{mb:,.0f} MB" for (kind, head), (mb, _) in peaks.items())
    if args.peaks_only:
        print(f"peak resident memory of alsmf train {' '.join(TRAIN_ARGS)}: {peaks_text}")
        return

    by_user = HERE / "cache" / f"{args.like}-by-user.csv"
    if not by_user.exists():
        read_table(csv).in_user_order().to_frame().to_csv(by_user, index=False)
    files = {"time": csv, "user": by_user}
    for file in files.values():
        read_table(file)  # compile the kernels and warm the page cache
    as_train = {"user": 0, "item": 1, "rating": 2}  # the generator's layout, no timestamps
    ours = {order: [] for order in files}
    theirs = {order: [] for order in files}
    with_time, parse, validate = [], [], []
    for _ in range(args.repeats):
        for order, file in files.items():
            ours[order].append(settled_seconds(lambda: load_ratings(file, timestamps=False)))
            theirs[order].append(settled_seconds(lambda: pd.read_csv(file)))
        with_time.append(settled_seconds(lambda: read_table(csv)))
        # read_table's two stages on their own, as `alsmf train` runs them
        arrays = []
        parse.append(settled_seconds(lambda: arrays.append(parse_plain(csv, ",", 1, 4, as_train))))
        validate.append(settled_seconds(
            lambda: Ratings.from_arrays(*arrays.pop(), overwrite_ids=True)))
    first_loads = {name: [] for name in FIRST_LOAD}
    for _ in range(args.first_loads):
        for name, (setup, load) in FIRST_LOAD.items():
            first_loads[name].append(float(subprocess.run(
                [sys.executable, "-c", first_load_program(setup, load), str(small), str(csv)],
                check=True,
                capture_output=True, text=True).stdout))
    rows = len(read_table(csv))

    def table_row(what: str, times: list[float]) -> str:
        runs = ", ".join(f"{t:.2f}" for t in times)
        return f"| {what} | {runs} | {statistics.median(times):.2f} |"

    ratio = {order: statistics.median(theirs[order]) / statistics.median(ours[order])
             for order in files}
    # each pandas run follows ours on the same file: the median of these pairs' ratios is less
    # moved by a machine whose load drifts during the run than the ratio of the medians
    paired = {order: statistics.median(t / o for t, o in zip(theirs[order], ours[order]))
              for order in files}
    first_ratio = (statistics.median(first_loads["pandas"])
                   / statistics.median(first_loads["alsmf"]))
    report = "\n".join([
        f"# Loading and memory, {args.like}-shaped CSV ({rows:,} ratings, "
        f"{csv.stat().st_size / 2**20:.0f} MB)",
        "",
        f"Measured {datetime.date.today()} with `python benchmarks/load_memory.py --like "
        f"{args.like} --repeats {args.repeats}` on {platform.platform()} ({os.cpu_count()} "
        f"cores), Python {platform.python_version()}, pandas {pd.__version__}; load average "
        f"before: {load_before:.2f}.",
        "",
        "Before each timed load in this process, 2 GB is touched and freed, so that both "
        "libraries get memory the way a machine without a balloon device would give it (see "
        "benchmarks/README.md). alsmf loads as `alsmf train` does (`load_ratings(file, "
        "timestamps=False)`: ids coded, values and repeated pairs checked, timestamps left "
        "unread unless a split by time needs them); pandas reads all four columns with default "
        "options and checks nothing.",
        "",
        "| what | runs (s) | median (s) |",
        "|---|---|---|",
        table_row("time order: alsmf, as `alsmf train` loads it", ours["time"]),
        table_row("time order: `pandas.read_csv`, default options", theirs["time"]),
        table_row("by user: alsmf, as `alsmf train` loads it", ours["user"]),
        table_row("by user: `pandas.read_csv`", theirs["user"]),
        table_row("time order: alsmf `read_table` with timestamps", with_time),
        table_row("of the first row: parsing (`fastcsv.parse_plain`, alone)", parse),
        table_row("of the first row: coding ids, checking values and pairs "
                  "(`Ratings.from_arrays`, alone)", validate),
        table_row("first load in a new process (time order): alsmf", first_loads["alsmf"]),
        table_row("first load in a new process (time order): `pandas.read_csv`",
                  first_loads["pandas"]),
        "",
        f"pandas / alsmf: **{ratio['time']:.2f}x** on the file in time order (as generated), "
        f"**{ratio['user']:.2f}x** on the same ratings sorted by user, then item (as "
        "MovieLens' own `ratings.csv`). Median of the ratios of back-to-back runs: "
        f"{paired['time']:.2f}x and {paired['user']:.2f}x. First load in a new process, "
        f"memory as this VM gives it: {first_ratio:.2f}x.",
        "",
        f"`alsmf train --data FILE -n 3 --test-fraction 0.1` (k = 64, load + split + train + "
        f"save): peak resident memory **{peak_mb:,.0f} MB**, {train_seconds:.0f} s wall (after "
        f"the same command with `-n 1` on a 100k-rating CSV, which compiled or loaded the "
        f"cached kernels: {warm_up_seconds:.0f} s).",
        "",
        f"The same command on the same ratings, peak resident memory: {peaks_text}.",
        "",
    ])
    print(report)
    result = HERE / "results" / f"load-memory-{args.like}.md"
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_text(report)
    print(f"written to {result}")


if __name__ == "__main__":
    main()
