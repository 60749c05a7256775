"""The bad-input corpus (``tests/corpus/cases.json``): every malformed input ends in one clear
line with exit code 2, or in its documented handling and a sane model; never a traceback.

Command-line cases run through typer's CliRunner; ``train`` gets tiny options (k = 2, one
iteration) so that the whole corpus runs in seconds. ``python tests/test_corpus.py`` prints
the corpus as markdown tables (by topic, then case by case) for the README.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES: list[dict] = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))["cases"]
TINY_TRAINING = ["-k", "2", "-n", "1", "--seed", "0"]
REQUIRED_TOPICS = {
    "empty file", "header only", "wrong delimiter", "missing column", "extra columns",
    "non-numeric ids", "negative ids", "huge ids", "NaN / inf ratings", "out-of-scale ratings",
    "duplicated pairs", "unsorted input", "truncated zip", "path-traversal zip",
    "Parquet wrong types", "non-UTF-8 titles", "encodings", "no ratings file",
}
"""What the reliability issue asks the corpus to cover (the ``covers`` field of the cases)."""


def _load_make_binary():
    spec = importlib.util.spec_from_file_location("corpus_make_binary", CORPUS / "make_binary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_binary = _load_make_binary()


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def binaries(tmp_path_factory) -> dict[str, Path]:
    return make_binary.build_all(tmp_path_factory.mktemp("binary"))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, cli) -> Path:
    """A tiny model trained on the corpus's valid file, for the ``predict`` cases."""
    out = tmp_path_factory.mktemp("model")
    result = cli("train", "--data", CORPUS / "good.csv", *TINY_TRAINING, "-o", out)
    assert result.exit_code == 0, result.output
    return out / "model.npz"


def _input(case: dict, binaries: dict[str, Path]) -> Path | None:
    name = case["input"]
    if name is None:
        return None
    if name.startswith("binary/"):
        return binaries[name.removeprefix("binary/")]
    path = CORPUS / name
    assert path.exists(), f"corpus file {name} is missing"
    return path


# ---------------------------------------------------------------------- running a case
def _run_cli(cli, case: dict, path: Path | None, model: Path | None, tmp_path: Path):
    args = [arg.format(input=path, corpus=CORPUS, model=model) for arg in case["run"]]
    if args[0] == "train":
        args += [*TINY_TRAINING, "--json", "-o", tmp_path / "out"]
    return cli(*args)


def _run_api(case: dict, path: Path, tmp_path: Path):
    from alsmf.data.download import safe_extract
    from alsmf.data.movielens import load_movielens, load_ratings
    from alsmf.data.readers import read_table

    name, kwargs = case["run"]["api"], dict(case["run"].get("kwargs", {}))
    if "scale" in kwargs:
        kwargs["scale"] = tuple(kwargs["scale"])
    if name == "read_table":
        return read_table(path, **kwargs)
    if name == "load_movielens":
        return load_movielens(path, **kwargs)
    if name == "safe_extract":
        return safe_extract(path, tmp_path / "extract" / "cache")
    if name == "load_ratings_frame":
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        return load_ratings(frame, **kwargs)
    raise AssertionError(f"unknown api {name!r} in case {case['id']}")


def _expected_name(case: dict, path: Path | None) -> str | None:
    """What the message must name: the case's ``names``, else the input's file name."""
    if "names" in case:
        return case["names"]
    return None if path is None else path.name


def _params() -> list:
    """One parameter per case; a case whose fix lies outside alsmf/data is a strict xfail."""
    return [pytest.param(case, id=case["id"],
                         marks=[pytest.mark.xfail(strict=True, reason=case["pending"])]
                         if "pending" in case else [])
            for case in CASES]


@pytest.mark.filterwarnings("error::RuntimeWarning")  # an overflow or a NaN is a wrong model
@pytest.mark.parametrize("case", _params())
def test_corpus_case(case, binaries, model_path, tmp_path, cli):
    path = _input(case, binaries)
    needs_model = isinstance(case["run"], list) and "{model}" in case["run"]
    if isinstance(case["run"], dict):
        _check_api_case(case, path, tmp_path)
    else:
        result = _run_cli(cli, case, path, model_path if needs_model else None, tmp_path)
        assert "Traceback" not in result.output, result.output
        if case["expect"] == "error":
            _check_cli_error(case, path, result)
        else:
            _check_cli_ok(case, result)
    # nothing a refused zip holds may have been written anywhere
    assert not list(tmp_path.parent.rglob("evil.sh"))
    assert not Path("/tmp/alsmf-evil.txt").exists()


def _check_cli_error(case: dict, path: Path | None, result) -> None:
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert case["message"] in lines[0], lines[0]
    name = _expected_name(case, path)
    if name is not None:
        assert name in lines[0], lines[0]


def _check_cli_ok(case: dict, result) -> None:
    from alsmf.model import MFModel

    assert result.exit_code == 0, result.output
    assert result.exception is None, repr(result.exception)
    report = json.loads(result.stdout)
    if case["run"][0] == "predict":
        predictions = [row["prediction"] for row in report["predictions"]]
        assert len(predictions) == case["predictions"]
        assert all(math.isfinite(p) for p in predictions)
        return
    assert math.isfinite(report["train_rmse"]) and math.isfinite(report["test_rmse"])
    assert all(math.isfinite(record["objective"]) for record in report["history"])
    data = report["data"]
    assert data["train_ratings"] + data["test_ratings"] == case["ratings"]
    model = MFModel.load(report["model"])
    for array in (model.user_factors, model.item_factors, model.user_bias, model.item_bias):
        assert np.isfinite(array).all()
    assert set(case.get("user_ids_include", [])) <= set(model.user_ids.tolist())
    if "titles_include" in case:
        assert model.item_titles is not None
        assert set(case["titles_include"]) <= set(model.item_titles.tolist())


def _check_api_case(case: dict, path: Path, tmp_path: Path) -> None:
    from alsmf.errors import AlsmfError

    if case["expect"] == "error":
        with pytest.raises(AlsmfError) as caught:
            _run_api(case, path, tmp_path)
        message = str(caught.value)
        assert "\n" not in message
        assert case["message"] in message, message
        name = _expected_name(case, path)
        if name is not None:
            assert name in message, message
        return
    ratings = _run_api(case, path, tmp_path)
    assert len(ratings) == case["ratings"]
    assert np.isfinite(ratings.values).all()


# ---------------------------------------------------------------------- the corpus itself
def test_corpus_has_at_least_25_cases_covering_the_issue():
    assert len(CASES) >= 25
    assert len({case["id"] for case in CASES}) == len(CASES)
    assert REQUIRED_TOPICS <= {case["covers"] for case in CASES}
    for case in CASES:
        assert case["expect"] in ("error", "ok")
        assert ("message" in case) == (case["expect"] == "error"), case["id"]
        assert ("handling" in case) == (case["expect"] == "ok"), case["id"]


def test_every_corpus_file_is_used():
    used = {case["input"].split("/")[0] for case in CASES if case["input"]}
    used |= {part.removeprefix("{corpus}/").split("/")[0]
             for case in CASES if isinstance(case["run"], list)
             for part in case["run"] if part.startswith("{corpus}/")}
    tooling = {"cases.json", "make_binary.py", "__init__.py", ".gitattributes", "__pycache__"}
    present = {path.name for path in CORPUS.iterdir() if path.name not in tooling}
    assert present - used == set()
    assert {f"binary/{name}" for name in make_binary.BUILDERS} <= {case["input"] for case in CASES}


def test_binary_cases_are_deterministic(tmp_path):
    first = make_binary.build_all(tmp_path / "a")
    second = make_binary.build_all(tmp_path / "b")
    for name in first:
        if name.endswith(".zip"):
            assert first[name].read_bytes() == second[name].read_bytes(), name


def test_unsorted_input_gives_the_same_ratings_as_sorted():
    from alsmf.data.readers import read_table

    unsorted = read_table(CORPUS / "unsorted.csv")
    ordered = read_table(CORPUS / "good.csv")
    assert (unsorted.by_user() != ordered.by_user()).nnz == 0
    assert unsorted.user_ids.tolist() == ordered.user_ids.tolist()


# ---------------------------------------------------------------------- the README table
def markdown_table() -> str:
    """The corpus as a markdown table, with the counts, for the README's reliability section."""
    outcomes = Counter(case["expect"] for case in CASES if "pending" not in case)
    pending = sum("pending" in case for case in CASES)
    lines = [f"{len(CASES)} cases: {outcomes['error']} end in a one-line error (exit code 2), "
             f"{outcomes['ok']} in a documented handling with a finite model"
             + (f"; {pending} still end in a traceback (pending a fix, marked xfail)."
                if pending else "."),
             "",
             "| case | input | read by | outcome |", "|---|---|---|---|"]
    for case in CASES:
        run = case["run"]
        how = (f"`{run['api']}`" if isinstance(run, dict)
               else "`alsmf " + " ".join(run).replace("{input}", "FILE")
               .replace("{corpus}/", "").replace("{model}", "MODEL") + "`")
        outcome = (f"error: “{case['message']}”" if case["expect"] == "error"
                   else f"ok: {case['handling']}")
        if "pending" in case:
            outcome = f"**pending** (today a traceback); expected {outcome}"
        lines.append(f"| {case['id']} | `{case['input'] or '-'}` | {how} | "
                     f"{outcome.replace('|', chr(92) + '|')} |")
    return "\n".join(lines)


def markdown_summary() -> str:
    """One row per topic of the issue: how many cases, and how many end in error / ok."""
    lines = ["| topic | cases | one-line error | documented handling |", "|---|---|---|---|"]
    topics: dict[str, Counter] = {}
    for case in CASES:
        topics.setdefault(case["covers"], Counter())[
            "pending" if "pending" in case else case["expect"]] += 1
    for topic, count in topics.items():
        errors = f"{count['error']}" + (f" (+{count['pending']} pending)" if count["pending"]
                                        else "")
        lines.append(f"| {topic} | {sum(count.values())} | {errors} | {count['ok']} |")
    total = sum(topics.values(), Counter())
    lines.append(f"| **all** | **{len(CASES)}** | **{total['error']}**"
                 + (f" (+{total['pending']} pending)" if total["pending"] else "")
                 + f" | **{total['ok']}** |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown_summary() + "\n\n" + markdown_table() + "\n")
