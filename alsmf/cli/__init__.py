"""The ``alsmf`` command line: parse, call the library, print. No numerics live here.

Errors caused by input (a bad file, a parameter out of range) are printed as one line naming
the problem and where it is, with exit code 2 and no traceback; options are checked before
any data is read.

One module per group of commands: :mod:`~alsmf.cli.train`, :mod:`~alsmf.cli.use` (predict,
recommend, similar, rate), :mod:`~alsmf.cli.data` (``alsmf data ...``),
:mod:`~alsmf.cli.evaluate` (evaluate, tune, compare) and :mod:`~alsmf.cli.serve` (the
service); :mod:`~alsmf.cli.options` declares what they share and :mod:`~alsmf.cli.render`
prints tables and progress bars.
"""

from __future__ import annotations

import typer

from alsmf.cli import data, evaluate, serve, train, use

app = typer.Typer(help="Matrix factorization recommender trained by Alternating Least Squares.",
                  no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Get, generate and inspect rating data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

app.command()(train.train)
for command in (use.predict, use.recommend, use.similar, use.rate):
    app.command()(command)
data_app.command("download")(data.download)
data_app.command("synthetic")(data.synthetic)
data_app.command("info")(data.info)
app.command()(evaluate.evaluate)
app.command()(evaluate.tune)
app.command("compare")(evaluate.compare_methods)
app.command()(serve.serve)


def main() -> None:
    """Entry point of the ``alsmf`` command."""
    app()


__all__ = ["app", "data_app", "main"]
