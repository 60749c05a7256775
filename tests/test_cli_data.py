"""The data commands: info reports what it promises, synthetic writes only a file."""

import json

import numpy as np
import pytest

from alsmf.data.readers import read_table


def test_info_reports_scale_and_distribution_as_json(tmp_path, cli):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n1,1,4\n1,2,5\n2,1,4\n3,2,1.5\n")
    result = cli("data", "info", path, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["ratings"], info["users"], info["items"]) == (4, 3, 2)
    assert info["scale"] == [1.5, 5.0]
    assert info["distribution"] == {"1.5": 1, "4": 2, "5": 1}
    assert info["mean"] == pytest.approx(3.625)
    table = cli("data", "info", path)
    assert table.exit_code == 0
    assert "rating scale" in table.output and "4: 2 (50.0%)" in table.output


def test_info_bins_a_continuous_distribution(tmp_path, cli):
    values = np.linspace(0, 10, 101)
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n" + "".join(f"{n},{n % 7},{v}\n"
                                                  for n, v in enumerate(values)))
    info = json.loads(cli("data", "info", path, "--json").stdout)
    assert len(info["distribution"]) == 10 and sum(info["distribution"].values()) == 101


def test_synthetic_onto_a_folder_is_one_clear_error(tmp_path, cli):
    folder = tmp_path / "out.csv"
    folder.mkdir()
    result = cli("data", "synthetic", folder)
    assert result.exit_code == 2
    assert "is a folder" in result.output and len(result.output.strip().splitlines()) == 1
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_synthetic_writes_a_file_that_reads_back(tmp_path, cli, suffix):
    path = tmp_path / f"ratings{suffix}"
    result = cli("data", "synthetic", path)
    assert result.exit_code == 0, result.output
    ratings = read_table(path)
    assert len(ratings) == 100_000
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_train_says_when_it_replaces_a_model_and_compare_writes_elsewhere(tmp_path, cli,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = cli("train", "-k", 2, "-n", 1, "--set", "rank_factors=0")
    assert first.exit_code == 0 and "replaced" not in first.output
    second = cli("train", "-k", 2, "-n", 1, "--set", "rank_factors=0")
    assert second.exit_code == 0
    assert "note: replaced the earlier model in alsmf-output/model.npz" in second.stderr
    compared = cli("compare", "--methods", "mean,bias", "-k", 2)
    assert compared.exit_code == 0, compared.output
    assert (tmp_path / "alsmf-compare" / "compare.png").is_file()
    assert sorted(p.name for p in (tmp_path / "alsmf-output").iterdir()) == ["loss.png",
                                                                             "model.npz"]
