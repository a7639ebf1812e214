"""Tasks by name: ``task: {name: segmentation, options: {...}}`` in a recipe.

To add a task: subclass `Task` (see base.py), list it in TASKS, and add a recipe.
The loop, the run directory, resume and DDP come with it; see DESIGN.md.
"""

from __future__ import annotations

from dlcc.errors import DlccError
from dlcc.runs.history import MODES
from dlcc.suggest import did_you_mean
from dlcc.training.config import Config, ConfigError
from dlcc.training.tasks.base import Reporter, Task
from dlcc.training.tasks.beats import BeatTask
from dlcc.training.tasks.classification import ClassificationTask
from dlcc.training.tasks.detection import DetectionTask
from dlcc.training.tasks.language_model import LanguageModelTask
from dlcc.training.tasks.segmentation import SegmentationTask

TASKS: dict[str, type[Task]] = {
    "classification": ClassificationTask,
    "segmentation": SegmentationTask,
    "detection": DetectionTask,
    "beats": BeatTask,
    "language_model": LanguageModelTask,
}


def build_task(config: Config, data) -> Task:
    """The task a config names, built for `data` (its classes), with the recipe's options."""
    name = config.task.name
    if name not in TASKS:
        raise ConfigError(
            f"task.name: expected one of {', '.join(TASKS)}, got {name!r}"
            f"{did_you_mean(name, TASKS)}"
        )
    options = dict(config.task.options)
    if name == "classification":
        options.setdefault("label_smoothing", config.train.label_smoothing)
        options.setdefault("num_classes", len(data.classes))
        if options.get("adversarial") is not None:  # attacks work in pixels: unstandardise
            options.setdefault("pixel_mean", list(data.mean))
            options.setdefault("pixel_std", list(data.std))
    if name == "segmentation":
        options.setdefault("classes", list(data.classes))
    if name == "language_model":
        options.setdefault("vocab_size", len(data.classes))
        options.setdefault("vocab", list(data.classes))
    try:
        return TASKS[name](**options)
    except DlccError as error:  # a loss that cannot be found or built
        raise ConfigError(f"task.options for {name}: {error}") from None
    except TypeError as error:
        raise ConfigError(f"task.options for {name}: {error}") from None
    except ValueError as error:
        raise ConfigError(f"task.options for {name}: {error}") from None


def load_task_data(config: Config):
    """(task, data): the recipe's data and task, with the targets the task trains on.

    The one place that pairs them: the loop, `dlcc eval` and the debug tools all call it.
    """
    from dlcc.training.data import load_data

    data = load_data(config.data, config.train.seed)
    task = build_task(config, data)
    return task, task.prepare_data(data)


def monitor_of(config: Config, task: Task) -> tuple[str, str]:
    """(monitor, mode): the recipe's task.monitor/task.mode, else the task's own rule."""
    monitor = config.task.monitor or task.monitor
    mode = config.task.mode or (task.mode if monitor == task.monitor else None)
    if mode is None:
        mode = "min" if monitor.endswith("loss") else "max"
    columns = task.history_columns()
    if monitor not in columns:
        raise ConfigError(
            f"task.monitor: {monitor!r} is not a history column of the {task.name} task; "
            f"choose one of {', '.join(c for c in columns if c.startswith(('val_', 'train_')))}"
        )
    if mode not in MODES:
        raise ConfigError(f"task.mode: expected max or min, got {mode!r}")
    return monitor, mode


__all__ = [
    "TASKS",
    "ClassificationTask",
    "DetectionTask",
    "LanguageModelTask",
    "Reporter",
    "SegmentationTask",
    "Task",
    "build_task",
    "load_task_data",
]
