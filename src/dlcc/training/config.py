"""Recipes: a YAML file per training job, read into typed, validated settings.

A recipe names the dataset, model, optimiser, schedule and training settings::

    task:  {name: classification}   # what is learnt; chooses loss, metrics and "best"
    data:  {dataset: mnist, batch_size: 128, augment: [{random_crop: {padding: 2}}]}
    model: {name: small_cnn, options: {widths: [32, 64, 128]}}
    optim: {name: adamw, lr: 0.003, weight_decay: 0.0005}
    schedule: {name: onecycle}
    train: {epochs: 8, seed: 0}

Every key has a default below, so a recipe states only what differs. A key that is not
here is refused with the closest valid name, and ``--set section.key=value`` overrides
are type-checked against the same fields, so a typo never trains silently with defaults.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlcc.errors import DlccError
from dlcc.numpy_nn.schedules import ONECYCLE_PCT_START
from dlcc.suggest import did_you_mean


class ConfigError(DlccError):
    """A recipe or a --set override is not valid."""


@dataclass
class TaskConfig:
    name: str = "classification"  # classification | segmentation | detection | language_model
    monitor: str | None = None  # the history column that picks "best"; None: the task's own
    mode: str | None = None  # max | min for `monitor`; None: the task's own
    options: dict = field(default_factory=dict)  # passed to the task, e.g. {dice_weight: 1.0}


@dataclass
class DataConfig:
    dataset: str = "digits"  # a name from `dlcc data list`, or image_masks (your own files)
    path: str | None = None  # image_masks: a folder with images/ and masks/ (see dlcc.data)
    images: str | None = None  # image_masks: a folder of images, with `masks` (paired by name)
    masks: str | None = None  # image_masks: the folder of their masks
    data_dir: str | None = None  # default: $DLCC_DATA_DIR, else ~/.cache/dlcc
    val_size: int | float | None = None  # images held out for validation; None: dataset default
    batch_size: int = 128  # global batch size (summed over all processes under DDP)
    eval_batch_size: int = 512
    augment: list = field(default_factory=list)  # training-only, e.g. ["hflip"]
    repeat: int = 1  # draws of each training sample per epoch (random crops differ each time)
    workers: int = 0  # DataLoader worker processes (0: load in the training process)
    options: dict = field(default_factory=dict)  # a generated dataset's settings (ecg_beats)
    # Text datasets (tinyshakespeare, copy) only; see dlcc.training.sequence:
    seq_len: int = 128  # characters per chunk (RNN) or per window (the Transformer's context)
    sequential: bool = False  # true: batch_size streams read in order, state carried (TBPTT)
    stride: int | None = None  # windows (sequential false): start every `stride`; None: seq_len


@dataclass
class ModelConfig:
    name: str = "small_cnn"  # mlp | small_cnn | preact_resnet | resnet20
    options: dict = field(default_factory=dict)  # passed to the model's constructor


@dataclass
class OptimConfig:
    name: str = "adamw"  # sgd | adam | adamw
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    nesterov: bool = True  # SGD only
    betas: list = field(default_factory=lambda: [0.9, 0.999])  # Adam/AdamW only


@dataclass
class ScheduleConfig:
    name: str = "onecycle"  # none | step | cosine | onecycle; all stepped once per batch
    warmup_epochs: float = 1.0  # cosine: linear warm-up length
    step_epochs: list = field(default_factory=list)  # step: epochs at which lr *= gamma
    gamma: float = 0.1  # step
    pct_start: float = ONECYCLE_PCT_START  # onecycle: fraction of steps warming up (0.3)
    div_factor: float = 25.0  # onecycle: initial lr = lr / div_factor
    final_div_factor: float = 1e4  # onecycle: final lr = initial lr / final_div_factor


@dataclass
class TrainConfig:
    epochs: int = 10
    seed: int = 0
    deterministic: bool = False  # torch deterministic algorithms (bit-exact resume on CPU)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 elsewhere) | fp32 | bf16 | fp16
    compile: bool = False  # torch.compile the model (opt-in: slow first steps)
    channels_last: bool = False  # NHWC memory format for conv nets
    label_smoothing: float = 0.0
    grad_clip: float | None = None  # max global grad norm; None: no clipping
    accumulate: int = 1  # micro-batches per optimiser step
    patience: int | None = None  # early stopping: epochs without a better monitored value
    overfit_steps: int = 200  # debug: steps for `dlcc train --overfit-batch`
    progress: bool = True  # progress bars (rank 0 only)
    threads: int | None = None  # torch CPU threads; None: PyTorch's default
    # seconds of training (summed over sessions, validation excluded): no epoch starts that,
    # at the last epoch's pace, would end past it; None: no limit. Machine-dependent.
    time_budget: float | None = None
    # with time_budget: after each epoch the lr schedule is laid out again over the epochs
    # that fit (`dlcc.training.schedules.epochs_within_budget`), so that it anneals in time
    # on a slow or busy machine. Depends on the clock: not bit-exact on resume.
    fit_budget: bool = False


@dataclass
class Config:
    description: str = ""
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return asdict(self)


# ---- reading and checking ---------------------------------------------------------------


def recipes_dir() -> Path:
    """The repository's recipes/ folder (beside src/ in a checkout or editable install)."""
    return Path(__file__).resolve().parents[3] / "recipes"


def recipe_names() -> list[str]:
    folder = recipes_dir()
    return sorted(path.stem for path in folder.glob("*.yaml")) if folder.is_dir() else []


def find_recipe(name_or_path: str) -> Path:
    """A recipe file path: an existing path as given, else recipes/NAME.yaml."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = recipes_dir() / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    names = recipe_names()
    raise ConfigError(
        f"no recipe {name_or_path!r}{did_you_mean(name_or_path, names)}: expected a YAML file "
        f"path or one of {', '.join(names) or '(none found in ' + str(recipes_dir()) + ')'}."
    )


def load_recipe(
    name_or_path: str,
    overrides: list[str] | tuple[str, ...] = (),
    settings: dict | None = None,
    settings_source: str = "settings",
) -> Config:
    """Read a recipe, apply `settings` (a nested mapping, e.g. from a DVC params.yaml), then
    ``section.key=value`` overrides, and validate everything."""
    path = find_recipe(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        first_line = str(error).splitlines()[0] if str(error) else "invalid YAML"
        raise ConfigError(f"{path} is not valid YAML ({first_line}); fix the file") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    config = config_from_dict(raw, where=str(path))
    if settings:
        apply_settings(config, settings, settings_source)
    for override in overrides:
        apply_override(config, override)
    check_config(config)
    return config


def config_from_dict(raw: dict, where: str = "config") -> Config:
    """Build a Config from nested dicts (a recipe, or a run's saved config.yaml)."""
    return _build(Config, raw, where)


def _build(cls, raw: dict, where: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__} {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(_unknown_key_message(key, list(fields), where))
        hint = typing.get_type_hints(cls)[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value or {}, f"{where}: {key}")
        else:
            values[key] = _coerce(value, hint, f"{where}: {key}")
    return cls(**values)


def _unknown_key_message(key: str, valid: list[str], where: str) -> str:
    return f"{where}: unknown key {key!r}{did_you_mean(key, valid)}; valid keys: {', '.join(valid)}"


def _coerce(value: Any, hint, where: str):
    """Check `value` against a field's type; ints are accepted where floats are expected."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ConfigError(f"{where}: expected {_type_name(hint)}, got null")
    for kind in allowed:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return value if isinstance(value, int) and int in allowed else float(value)
        if kind is float and isinstance(value, str):
            try:  # YAML 1.1 reads 1e-3 (no dot) as a string
                return float(value)
            except ValueError:
                pass
        if kind is str and isinstance(value, str):
            return value
        if kind in (list, dict) and isinstance(value, kind):
            return value
    raise ConfigError(f"{where}: expected {_type_name(hint)}, got {type(value).__name__} {value!r}")


def _type_name(hint) -> str:
    names = {
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return " or ".join(names.get(kind, str(kind)) for kind in allowed)


def apply_override(config: Config, override: str) -> None:
    """Apply one ``section.key=value`` (value parsed as YAML, then type-checked)."""
    if "=" not in override:
        raise ConfigError(
            f"--set {override!r}: expected section.key=value, e.g. --set train.epochs=3"
        )
    dotted, text = override.split("=", 1)
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    _set_setting(config, dotted.strip().split("."), value, "--set", f"={text}")


def apply_settings(config: Config, settings: dict, where: str = "settings") -> None:
    """Apply a nested mapping of settings, ``{section: {key: value}}``, key by key.

    Each leaf replaces the recipe's value as ``--set section.key=value`` would (a mapping
    value such as ``task.options`` replaces the whole mapping), with the same checks: an
    unknown key gets the closest valid name and every value is type-checked.
    """
    if not isinstance(settings, dict):
        raise ConfigError(
            f"{where}: expected a mapping of recipe sections, e.g. {{train: {{epochs: 3}}}}, "
            f"got {type(settings).__name__} {settings!r}"
        )
    sections = [f.name for f in dataclasses.fields(config)]
    for section, keys in settings.items():
        if section not in sections:
            raise ConfigError(_unknown_key_message(str(section), sections, where))
        if not isinstance(keys, dict):
            raise ConfigError(
                f"{where}: {section}: expected a mapping of its keys, e.g. "
                f"{section}: {{KEY: VALUE}}, got {type(keys).__name__} {keys!r}"
            )
        for key, value in keys.items():
            _set_setting(config, [str(section), str(key)], value, where, f": {value!r}")


def _set_setting(config: Config, parts: list[str], value: Any, source: str, shown: str) -> None:
    """Set the leaf `parts` (section, key) of `config` to `value`, type-checked."""
    dotted = ".".join(parts)
    target = config
    for depth, part in enumerate(parts):
        valid = [f.name for f in dataclasses.fields(target)]
        if part not in valid:
            where = f"{source} " + ".".join(parts[:depth]) if depth else source
            raise ConfigError(_unknown_key_message(part, valid, where))
        if depth == len(parts) - 1:
            break
        target = getattr(target, part)
        if not dataclasses.is_dataclass(target):
            raise ConfigError(f"{source} {dotted}: {'.'.join(parts[: depth + 1])} has no sub-keys")
    key = parts[-1]
    hint = typing.get_type_hints(type(target))[key]
    if dataclasses.is_dataclass(hint):
        raise ConfigError(
            f"{source} {dotted}: is a section; set one of its keys, e.g. {dotted}.KEY"
        )
    setattr(target, key, _coerce(value, hint, f"{source} {dotted}{shown}"))


def read_params(spec: str) -> tuple[dict, str]:
    """The mapping at ``FILE:KEY`` (KEY dotted, e.g. ``params.yaml:recipes.mnist_cnn``).

    Returns the mapping (``{}`` for an empty or null value) and a label for messages.
    Raises ConfigError when the file is missing or not YAML, or KEY is absent or not a
    mapping.
    """
    file_part, sep, key = spec.rpartition(":")
    if not sep or not file_part or not key:
        raise ConfigError(
            f"--params {spec!r}: expected FILE:KEY, e.g. --params params.yaml:recipes.mnist_cnn"
        )
    path = Path(file_part)
    if not path.is_file():
        raise ConfigError(f"--params {spec}: no file {path}; give an existing YAML file")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        first_line = str(error).splitlines()[0] if str(error) else "invalid YAML"
        raise ConfigError(f"--params {spec}: {path} is not valid YAML ({first_line})") from None
    value: Any = document
    for depth, part in enumerate(key.split(".")):
        if not isinstance(value, dict) or part not in value:
            here = ".".join(key.split(".")[:depth]) or "the top level"
            keys = ", ".join(map(str, value)) if isinstance(value, dict) else "none"
            raise ConfigError(
                f"--params {spec}: {path} has no key {part!r} under {here} (keys: {keys}); "
                "add it, or name an existing key"
            )
        value = value[part]
    if value is None:
        value = {}
    label = f"--params {spec}"
    if not isinstance(value, dict):
        raise ConfigError(
            f"{label}: expected a mapping of recipe sections, e.g. {{train: {{epochs: 3}}}}, "
            f"got {type(value).__name__} {value!r}"
        )
    return value, label


CHOICES = {
    ("optim", "name"): ("sgd", "adam", "adamw"),
    ("schedule", "name"): ("none", "step", "cosine", "onecycle"),
    ("train", "precision"): ("auto", "fp32", "bf16", "fp16"),
}


def check_config(config: Config) -> None:
    """Value checks the types alone cannot express."""
    for (section, key), choices in CHOICES.items():
        value = getattr(getattr(config, section), key)
        if value not in choices:
            raise ConfigError(
                f"{section}.{key}: expected one of {', '.join(choices)}, got {value!r}"
            )
    positive = [
        ("data", "batch_size"),
        ("data", "eval_batch_size"),
        ("data", "repeat"),
        ("train", "epochs"),
        ("train", "accumulate"),
        ("train", "overfit_steps"),
        ("data", "seq_len"),
    ]
    for section, key in positive:
        value = getattr(getattr(config, section), key)
        if value < 1:
            raise ConfigError(f"{section}.{key}: expected an integer >= 1, got {value}")
    if config.optim.lr <= 0:
        raise ConfigError(f"optim.lr: expected a positive number, got {config.optim.lr}")
    if config.data.workers < 0:
        raise ConfigError(f"data.workers: expected >= 0, got {config.data.workers}")
    if not 0 <= config.train.label_smoothing < 1:
        smoothing = config.train.label_smoothing
        raise ConfigError(f"train.label_smoothing: expected a number in [0, 1), got {smoothing}")
    if config.train.patience is not None and config.train.patience < 1:
        raise ConfigError(f"train.patience: expected >= 1 or null, got {config.train.patience}")
    if config.task.mode not in (None, "max", "min"):
        raise ConfigError(f"task.mode: expected max, min or null, got {config.task.mode!r}")
    if config.train.time_budget is not None and not config.train.time_budget > 0:
        budget = config.train.time_budget
        raise ConfigError(f"train.time_budget: expected seconds > 0 or null, got {budget}")
    if config.train.fit_budget and config.train.time_budget is None:
        raise ConfigError(
            "train.fit_budget: true lays the schedule out over the epochs that fit in "
            "train.time_budget, which is not set; set train.time_budget (seconds) or "
            "train.fit_budget: false"
        )
    if config.data.stride is not None and config.data.stride < 1:
        raise ConfigError(f"data.stride: expected >= 1 or null, got {config.data.stride}")
    if config.train.grad_clip is not None and config.train.grad_clip <= 0:
        raise ConfigError(
            f"train.grad_clip: expected a positive number or null, got {config.train.grad_clip}"
        )


def dump_config(config: Config) -> str:
    """The resolved config as YAML, in section order (what config.yaml in a run holds)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
