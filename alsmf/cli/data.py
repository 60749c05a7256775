"""``alsmf data``: get, generate and inspect rating data."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from alsmf.cli.options import PRINT_JSON_OPTION, SyntheticShape, user_errors
from alsmf.cli.render import download_progress, print_ratings_info
from alsmf.errors import ConfigError
from alsmf.files import replace_atomically


@user_errors
def download(
    name: str = typer.Argument(..., help="Release name, e.g. ml-100k, ml-1m, ml-20m."),
    cache: Optional[Path] = typer.Option(None, help="Cache folder (default: $ALSMF_DATA or "
                                         "~/.cache/alsmf)."),
    base_url: Optional[str] = typer.Option(None, help="Mirror to download from."),
    force: bool = typer.Option(False, help="Download again even if already present."),
    deadline: Optional[float] = typer.Option(
        None, help="Seconds the whole download may take (default: $ALSMF_DOWNLOAD_DEADLINE, "
        "else 1800)."),
) -> None:
    """Download a MovieLens release from GroupLens, verify its checksum and extract it."""
    from alsmf.data.download import download_release

    with download_progress(name) as report:
        folder = download_release(name, cache_dir=cache, base_url=base_url, progress=report,
                                  force=force, deadline_s=deadline)
    print(folder)


@user_errors
def synthetic(
    output: Path = typer.Argument(..., help="File to write (.csv or .parquet)."),
    like: SyntheticShape = typer.Option(SyntheticShape.ml_100k, help="Release to imitate."),
    noise: float = typer.Option(0.8, help="Standard deviation σ of the rating noise."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Write synthetic ratings shaped like a MovieLens release (user,item,rating,timestamp)."""
    from alsmf.data.synthetic import synthetic_ratings

    if output.suffix not in (".csv", ".tsv", ".parquet"):
        raise ConfigError(f"{output}: choose a .csv, .tsv or .parquet file name")
    if output.is_dir():
        raise ConfigError(f"{output} is a folder; give a file name inside it, e.g. "
                          f"{output / ('ratings' + output.suffix)}")
    generated = synthetic_ratings(like.value, noise=noise, seed=seed)
    frame = generated.ratings.to_frame()
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".parquet":
        replace_atomically(output, lambda handle: frame.to_parquet(handle, index=False))
    else:
        text = frame.to_csv(index=False, sep="\t" if output.suffix == ".tsv" else ",")
        replace_atomically(output, lambda handle: handle.write(text.encode("utf-8")))
    print(f"{output}: {len(frame):,} ratings; noise σ = {generated.noise:g}, best achievable "
          f"RMSE = {generated.oracle_rmse:.4f}")


@user_errors
def info(
    path: Path = typer.Argument(..., readable=False,
                                help="MovieLens folder/zip or ratings file."),
    as_json: bool = PRINT_JSON_OPTION,
) -> None:
    """Describe a ratings file: counts, density, rating scale and distribution."""
    from alsmf.data.movielens import load_ratings

    print_ratings_info(str(path), load_ratings(path), as_json)
