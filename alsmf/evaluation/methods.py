"""The trainers ``alsmf compare`` can run, by method name: ALS, Bayesian MF and the baselines.

The baselines come from :data:`alsmf.baselines.BASELINES` (keyed by their
``params()["method"]``), so a baseline registered there is available here without a change.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping

from alsmf.baselines import BASELINES
from alsmf.models.bayes import BayesianMF
from alsmf.models.implicit_als import ImplicitALS
from alsmf.errors import ConfigError
from alsmf.evaluation.crossval import Trainer
from alsmf.evaluation.space import configure
from alsmf.models.als import ALS

DEFAULT_METHODS = ("als", "sgd", "svd", "bias")
"""What ``alsmf compare`` runs when no ``--methods`` is given."""


def available_methods() -> dict[str, type]:
    """Method name -> trainer class: ``als``, ``bayes``, ``ials`` (implicit feedback), then
    the baselines."""
    return {"als": ALS, "bayes": BayesianMF, "ials": ImplicitALS} | dict(BASELINES)


def make_trainers(names: list[str], factors: int | None = None,
                  settings: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Trainer]:
    """Trainers for the named methods, in order.

    Args:
        names: method names (see :func:`available_methods`).
        factors: k for every method that has a ``factors`` field (None: each its default).
        settings: method name -> field settings, applied after ``factors``.

    Raises:
        ConfigError: an unknown method (listing the available ones), settings for a method not
            named, or a setting the method does not have or refuses.
    """
    methods = available_methods()
    settings = dict(settings or {})
    unknown = [name for name in names if name not in methods]
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}; available: "
                          f"{', '.join(methods)}")
    stray = [name for name in settings if name not in names]
    if stray:
        raise ConfigError(f"settings given for {', '.join(stray)}, which is not among the "
                          f"methods compared ({', '.join(names)})")
    trainers = {}
    for name in names:
        cls = methods[name]
        chosen: dict[str, Any] = {}
        if factors is not None and "factors" in {f.name for f in fields(cls)}:
            chosen["factors"] = factors
        trainers[name] = configure(cls, chosen | dict(settings.get(name, {})), name)
    return trainers
