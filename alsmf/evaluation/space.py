"""Search spaces for tuning: trainer field name -> list of values (grid) or a distribution.

A space is a plain mapping from the names of a trainer's dataclass fields (for ALS: factors,
reg, reg_bias, weighted_reg, implicit_weight, ...) to the values to try, so a field added to
the trainer can be tuned without changing this code. Grid search tries every combination of
the lists; random search draws each field independently: a list uniformly among its values, a
distribution as it says (:class:`LogUniform` suits λ, which matters on a log scale).

``iterations`` is special: it is read off each fit's history (the validation RMSE is recorded
after every iteration), so its values are the iteration counts to compare and one fit to the
largest covers them all. It must therefore be a list, in both kinds of search.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, Mapping, Sequence, Union

import numpy as np

from alsmf.errors import ConfigError

ITERATIONS = "iterations"
SEARCH_METHODS = ("grid", "random")


@dataclass(frozen=True)
class LogUniform:
    """Values whose logarithm is uniform on [log low, log high] (for λ and other scales)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (0 < self.low <= self.high < math.inf):
            raise ConfigError(f"log-uniform needs 0 < low <= high, got {self.low}, {self.high}")

    def sample(self, rng: np.random.Generator) -> float:
        return _round(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclass(frozen=True)
class Uniform:
    """Values uniform on [low, high]."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (-math.inf < self.low <= self.high < math.inf):
            raise ConfigError(f"uniform needs finite low <= high, got {self.low}, {self.high}")

    def sample(self, rng: np.random.Generator) -> float:
        return _round(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class IntUniform:
    """Integers uniform on low..high, both included (for k)."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if not (isinstance(self.low, int) and isinstance(self.high, int) and self.low <= self.high):
            raise ConfigError(f"integer range needs integers low <= high, got {self.low}, "
                              f"{self.high}")

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))


Distribution = Union[LogUniform, Uniform, IntUniform]
Space = Mapping[str, Union[Sequence[Any], Distribution]]


def space_to_json(space: Space) -> dict[str, Any]:
    """The space as JSON: lists as they are, a distribution as ``{"log_uniform": [low, high]}``
    (``uniform``, ``int_uniform``)."""
    names = {LogUniform: "log_uniform", Uniform: "uniform", IntUniform: "int_uniform"}
    return {name: {names[type(values)]: [values.low, values.high]}
            if isinstance(values, (LogUniform, Uniform, IntUniform))
            else [_plain(value) for value in values]
            for name, values in space.items()}


def describe(settings: Mapping[str, Any]) -> str:
    """``name=value`` pairs for tables and progress lines, floats in short form."""
    return ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                     for name, value in settings.items()) or "defaults"


def _round(value: float) -> float:
    """4 significant digits: sampled settings stay readable in tables and settings files."""
    return float(f"{value:.4g}")


def field_names(trainer: Any) -> list[str]:
    """The tunable fields of a dataclass trainer (ALS and the baselines are dataclasses)."""
    if not is_dataclass(trainer):
        raise ConfigError(f"{type(trainer).__name__} is not a dataclass configuration; "
                          "tuning replaces its fields")
    return [f.name for f in fields(trainer)]


def configure(trainer_class: type, settings: Mapping[str, Any], where: str = "") -> Any:
    """``trainer_class(**settings)``, refusing unknown names with the list of valid ones.

    Raises:
        ConfigError: an unknown field name, or a value the trainer refuses; ``where`` (a file
            name, an option) prefixes the message.
    """
    prefix = f"{where}: " if where else ""
    valid = [f.name for f in fields(trainer_class)]
    unknown = [name for name in settings if name not in valid]
    if unknown:
        raise ConfigError(f"{prefix}unknown setting(s) {', '.join(unknown)} for "
                          f"{trainer_class.__name__}; valid settings: {', '.join(valid)}")
    try:
        return trainer_class(**settings)
    except ConfigError as error:
        raise ConfigError(f"{prefix}{error}") from None


def check_space(trainer: Any, space: Space) -> None:
    """Refuse unknown field names, empty lists and a non-list ``iterations``.

    Raises:
        ConfigError: naming the problem and, for an unknown name, listing the valid ones.
    """
    valid = field_names(trainer)
    if not space:
        raise ConfigError("the search space is empty: give at least one setting to vary")
    for name, values in space.items():
        if name not in valid:
            raise ConfigError(f"unknown setting {name!r} for {type(trainer).__name__}; valid "
                              f"settings: {', '.join(valid)}")
        if isinstance(values, (LogUniform, Uniform, IntUniform)):
            if name == ITERATIONS:
                raise ConfigError("iterations are read off each fit's history: give a list of "
                                  "iteration counts, not a distribution")
            continue
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ConfigError(f"setting {name!r}: give a non-empty list of values or a "
                              f"distribution, got {values!r}")
    counts = space.get(ITERATIONS)
    if counts is not None and not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1
            for n in counts):
        raise ConfigError(f"iterations must be a list of positive integers, got {list(counts)}")


def candidates(trainer: Any, space: Space, method: str = "grid", trials: int = 20,
               seed: int = 0) -> list[dict[str, Any]]:
    """The settings to fit, without ``iterations`` (read off each fit's history).

    Grid: every combination of the lists, in the order given. Random: ``trials`` draws from a
    generator seeded with ``seed``. Each candidate is checked by building the trainer with it,
    so a bad value fails here, before any fit.

    Raises:
        ConfigError: unknown method, a bad space (see :func:`check_space`), a distribution in a
            grid, ``trials`` below 1, or a value the trainer refuses.
    """
    check_space(trainer, space)
    varied = {name: values for name, values in space.items() if name != ITERATIONS}
    if method == "grid":
        drawn = [name for name, values in varied.items() if not isinstance(values, Sequence)]
        if drawn:
            raise ConfigError(f"grid search needs lists of values; {', '.join(drawn)} is a "
                              "distribution (use random search, or list the values)")
        settings = [dict(zip(varied, combination))
                    for combination in itertools.product(*varied.values())]
    elif method == "random":
        if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
            raise ConfigError(f"random search needs trials >= 1, got {trials!r}")
        rng = np.random.default_rng(seed)
        settings = [{name: _draw(values, rng) for name, values in varied.items()}
                    for _ in range(trials)]
    else:
        raise ConfigError(f"unknown search method {method!r}; choose one of "
                          f"{', '.join(SEARCH_METHODS)}")
    settings = [{name: _plain(value) for name, value in s.items()} for s in settings]
    for setting in settings:
        replace(trainer, **setting, **_longest(space))
    return settings


def iteration_counts(space: Space) -> list[int] | None:
    """The iteration counts to compare, ascending without repeats, or None when not tuned."""
    counts = space.get(ITERATIONS)
    return None if counts is None else sorted({int(n) for n in counts})


def _longest(space: Space) -> dict[str, int]:
    """``{"iterations": the largest count}`` when iterations are tuned, else nothing."""
    counts = iteration_counts(space)
    return {} if counts is None else {ITERATIONS: counts[-1]}


def _draw(values: Sequence[Any] | Distribution, rng: np.random.Generator) -> Any:
    if isinstance(values, (LogUniform, Uniform, IntUniform)):
        return values.sample(rng)
    return values[int(rng.integers(len(values)))]


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones (JSON, dataclass checks)."""
    return value.item() if isinstance(value, np.generic) else value


def parse_value(text: str) -> Any:
    """One command-line value: int, float, true/false, none, or the text itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_assignment(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` (one value, as :func:`parse_value` reads it); dashes in NAME become
    underscores, so ``reg-bias=0.1`` names the field ``reg_bias``.

    Raises:
        ConfigError: the text is not of that form.
    """
    name, sep, value = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not value.strip():
        raise ConfigError(f"{text!r}: expected NAME=VALUE, e.g. reg_bias=0.05")
    return name, parse_value(value)


def parse_setting(text: str) -> tuple[str, Sequence[Any] | Distribution]:
    """``NAME=V1,V2,...`` (a list), ``NAME=log:LOW:HIGH``, ``NAME=uniform:LOW:HIGH`` or
    ``NAME=int:LOW:HIGH`` (distributions for random search).

    Raises:
        ConfigError: the text has none of these forms.
    """
    name, sep, values = text.partition("=")
    name, values = name.strip().replace("-", "_"), values.strip()
    if not sep or not name or not values:
        raise ConfigError(f"{text!r}: expected NAME=V1,V2,... or NAME=log:LOW:HIGH, e.g. "
                          "reg=0.05,0.1 or reg=log:0.01:1")
    kind, _, bounds = values.partition(":")
    distributions = {"log": LogUniform, "uniform": Uniform, "int": IntUniform}
    if kind in distributions:
        parts = [parse_value(part) for part in bounds.split(":")]
        if len(parts) != 2 or not all(isinstance(p, (int, float)) and not isinstance(p, bool)
                                      for p in parts):
            raise ConfigError(f"{text!r}: expected {name}={kind}:LOW:HIGH with two numbers")
        return name, distributions[kind](*parts)
    return name, [parse_value(part) for part in values.split(",")]
