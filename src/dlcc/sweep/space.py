"""A search space: a YAML file of dotted recipe paths, each with a distribution.

::

    optim.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
    optim.name: {type: categorical, choices: [sgd, adam, adamw]}
    model.options.hidden.0: {type: int, low: 64, high: 512, step: 64}

A key is a path into the resolved recipe (every setting, defaults included): sections
and keys of `dlcc.training.config.Config`, then into free-form mappings (``model.options``,
``task.options``) and lists (``hidden.0`` is the first entry). The path must exist up to
its last step; inside a free-form mapping the last key may be new (a constructor argument
the recipe leaves at its default, e.g. ``model.options.dropout``), since the recipe
cannot list those. Every entry is checked when the file is read, and the recipe is
rebuilt with each entry's extreme values, so a value the recipe's type check refuses
(a float for ``train.epochs``) is an error naming the key before any trial runs.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dlcc.errors import DlccError
from dlcc.suggest import did_you_mean

TYPES = ("float", "int", "categorical")
FIELDS = {
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
}


class SpaceError(DlccError):
    """A search-space file is malformed; the message names the key."""


@dataclass(frozen=True)
class Param:
    """One dimension of the search space."""

    key: str  # the dotted recipe path, also the Optuna parameter's name
    type: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def suggest(self, trial) -> Any:
        """Draw this parameter's value from an Optuna trial."""
        if self.type == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(
                self.key, self.low, self.high, log=self.log, step=self.step or 1
            )
        return trial.suggest_categorical(self.key, list(self.choices))

    def extremes(self) -> list:
        """The values a trial can take at the edges (checked against the recipe)."""
        if self.type == "categorical":
            return list(self.choices)
        return [self.low, self.high]

    def describe(self) -> dict:
        """The entry as the space file would state it (for sweep.json)."""
        if self.type == "categorical":
            return {"type": self.type, "choices": list(self.choices)}
        entry = {"type": self.type, "low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            entry["step"] = self.step
        return entry


def load_space(path: str | Path, settings: dict) -> list[Param]:
    """The parameters of the space file at `path`, checked against the resolved recipe
    `settings` (`Config.to_dict()`)."""
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"--space {path}: no such file; expected a YAML search-space file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        first_line = str(error).splitlines()[0] if str(error) else "invalid YAML"
        raise SpaceError(f"{path} is not valid YAML ({first_line}); fix the file") from None
    return parse_space(raw, settings, where=str(path))


def parse_space(raw: Any, settings: dict, where: str = "space") -> list[Param]:
    """`raw` (the space file's mapping) as checked parameters."""
    if not isinstance(raw, dict) or not raw:
        received = "an empty file" if not raw else f"{type(raw).__name__}"
        raise SpaceError(
            f"{where}: expected a mapping of dotted recipe keys to distributions, e.g. "
            f"'optim.lr: {{type: float, low: 1.0e-4, high: 0.1, log: true}}'; got {received}"
        )
    params = []
    for key, entry in raw.items():
        param = _param(str(key), entry, where)
        check_key(param.key, settings, where)
        params.append(param)
    check_against_recipe(params, settings, where)
    return params


def _param(key: str, entry: Any, where: str) -> Param:
    name = f"{where}: {key}"
    if not isinstance(entry, dict):
        raise SpaceError(
            f"{name}: expected a mapping such as {{type: float, low: 0.001, high: 0.1}}, "
            f"got {type(entry).__name__} {entry!r}"
        )
    kind = entry.get("type")
    if kind not in TYPES:
        hint = did_you_mean(kind, TYPES) if isinstance(kind, str) else ""
        raise SpaceError(f"{name}: type must be one of {', '.join(TYPES)}, got {kind!r}{hint}")
    for field_name in entry:
        if field_name not in FIELDS[kind]:
            raise SpaceError(
                f"{name}: unknown field {field_name!r}{did_you_mean(field_name, FIELDS[kind])} "
                f"for type {kind}; its fields are {', '.join(FIELDS[kind])}"
            )
    if kind == "categorical":
        choices = entry.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{name}: choices must be a non-empty list, got {choices!r}")
        for choice in choices:
            if choice is not None and not isinstance(choice, bool | int | float | str):
                raise SpaceError(
                    f"{name}: each choice must be a number, a string, true/false or null "
                    f"(Optuna stores only those), got {type(choice).__name__} {choice!r}"
                )
        if len(set(map(repr, choices))) != len(choices):
            raise SpaceError(f"{name}: choices must differ from each other, got {choices!r}")
        return Param(key, kind, choices=tuple(choices))

    number = _number if kind == "float" else _integer
    for required in ("low", "high"):
        if required not in entry:
            raise SpaceError(f"{name}: type {kind} needs low and high; {required} is missing")
    low, high = number(entry["low"], f"{name}: low"), number(entry["high"], f"{name}: high")
    if not low < high:
        raise SpaceError(f"{name}: low must be below high, got low {low} and high {high}")
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{name}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise SpaceError(
            f"{name}: a log scale needs low > 0, got low {low}; raise low or set log: false"
        )
    step = entry.get("step")
    if step is not None:
        step = number(step, f"{name}: step")
        if step <= 0:
            raise SpaceError(f"{name}: step must be positive, got {step}")
        if log and (kind == "float" or step != 1):
            raise SpaceError(f"{name}: step cannot be combined with log: true (Optuna's rule)")
    return Param(key, kind, low=low, high=high, log=log, step=step)


def _number(value: Any, where: str) -> float:
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpaceError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpaceError(f"{where}: type int expects an integer, got {value!r}")
    return value


# ---- dotted paths into the recipe ---------------------------------------------------------


SECTIONS_WITH_FREE_KEYS = ("options",)  # mappings whose keys the recipe does not declare


def check_key(key: str, settings: dict, where: str) -> None:
    """Refuse a key that is not a path into the resolved recipe."""
    parts = key.split(".")
    node: Any = settings
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        so_far = ".".join(parts[: depth + 1])
        if isinstance(node, dict):
            free = depth > 0 and parts[depth - 1] in SECTIONS_WITH_FREE_KEYS
            if part not in node:
                if last and free:
                    return  # a new argument of a free-form mapping
                raise SpaceError(
                    f"{where}: {key}: the recipe has no {so_far!r}"
                    f"{did_you_mean(part, list(node))}; keys there: {', '.join(map(str, node))}"
                )
            node = node[part]
            if last and isinstance(node, dict | list):
                kind = "a mapping" if isinstance(node, dict) else "a list"
                example = "KEY" if isinstance(node, dict) else "0"
                raise SpaceError(
                    f"{where}: {key}: holds {kind}, not one value; name one entry in it, "
                    f"e.g. {key}.{example}"
                )
        elif isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise SpaceError(
                    f"{where}: {key}: {'.'.join(parts[:depth])} is a list of {len(node)}; "
                    f"expected an index 0..{len(node) - 1}, got {part!r}"
                )
            node = node[int(part)]
        else:
            raise SpaceError(
                f"{where}: {key}: {'.'.join(parts[:depth])} is a value ({node!r}), "
                "not a section: it has no sub-keys"
            )


def set_dotted(settings: dict, key: str, value: Any) -> None:
    """Set `key` (a checked dotted path) to `value` in the nested `settings`, in place."""
    parts = key.split(".")
    node: Any = settings
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def get_dotted(settings: dict, key: str) -> Any:
    node: Any = settings
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def with_params(settings: dict, values: dict[str, Any]) -> dict:
    """A copy of the resolved recipe `settings` with each dotted key set to its value."""
    result = copy.deepcopy(settings)
    for key, value in values.items():
        set_dotted(result, key, value)
    return result


def check_against_recipe(params: list[Param], settings: dict, where: str) -> None:
    """Build the recipe with each parameter at each of its extremes (the others as the
    recipe has them): a value the recipe refuses is an error naming the key now."""
    from dlcc.training.config import ConfigError, check_config, config_from_dict

    for param in params:
        for value in param.extremes():
            if param.type == "int" and param.step:
                value = param.low + (param.high - param.low) // param.step * param.step
            try:
                check_config(config_from_dict(with_params(settings, {param.key: value})))
            except ConfigError as error:
                raise SpaceError(
                    f"{where}: {param.key}: the recipe refuses the value {value!r} ({error})"
                ) from None
