"""`dlcc eval RUN_DIR` for a torch run: a saved checkpoint on one split of its data.

`dlcc.runs.evaluate` dispatches here for ``kind: torch`` runs (and to the NumPy trainer
for ``kind: numpy``).
"""

from __future__ import annotations

import json
from pathlib import Path

from dlcc.atomic import write_text_atomic
from dlcc.errors import DataError
from dlcc.runs import SavedRun
from dlcc.training.checkpoint import CheckpointError, load_checkpoint, load_model_weights
from dlcc.training.config import config_from_dict
from dlcc.training.report import evaluate_split
from dlcc.training.setup import autocast_factory, build_network, pick_device
from dlcc.training.tasks import load_task_data


def read_saved_checkpoint(saved: SavedRun, checkpoint: str, data_dir: str | None = None):
    """(config, path, state): a torch run's resolved settings and checkpoints/{checkpoint}.pt.

    `data_dir` replaces where the run's data are looked for. A checkpoint that does not
    exist yet is a CheckpointError that says why and what to pass instead.
    """
    config = config_from_dict(saved.settings, str(saved.run.config))
    if data_dir:
        config.data.data_dir = data_dir
    path = saved.run.checkpoint(checkpoint)
    if not path.is_file():
        raise CheckpointError(
            f"{path} does not exist: the run has not finished an epoch yet"
            + (", or pass --checkpoint last" if checkpoint == "best" else "")
        )
    return config, path, load_checkpoint(path)


def evaluate_torch_run(
    saved: SavedRun,
    *,
    checkpoint: str = "best",
    split: str = "test",
    device: str = "auto",
    data_dir: str | None = None,
    out=None,
) -> dict:
    """The task's loss and metrics of checkpoints/{checkpoint}.pt on `split`.

    Writes RUN_DIR/eval_{split}_{checkpoint}.json (or the file `out`) and returns the same
    dict.
    """
    run = saved.run
    config, path, state = read_saved_checkpoint(saved, checkpoint, data_dir)
    config.train.device = device
    config.train.progress = False
    torch_device = pick_device(device)
    task, data = load_task_data(config)
    if len(getattr(data, split)) == 0:
        others = [name for name in ("test", "val", "train") if len(getattr(data, name))]
        raise DataError(
            f"{run.root}: the {split} split of {config.data.dataset} holds no images, so "
            f"there is nothing to evaluate; choose another with --split ({', '.join(others)})"
        )
    model = build_network(config, data, task).to(torch_device)
    load_model_weights(model, state, path, config.model.name)
    result = evaluate_split(
        model, data, split, task, config, torch_device, autocast_factory(None, torch_device)
    )
    summary = {
        "run_dir": str(run.root),
        "kind": run.kind,
        "task": task.name,
        "split": split,
        "checkpoint": checkpoint,
        "epoch": state.get("epoch"),
        "samples": result["samples"],
        "loss": result["loss"],
        **{name: result[name] for name in task.metric_names},
    }
    path = Path(out) if out is not None else run.root / f"eval_{split}_{checkpoint}.json"
    write_text_atomic(path, json.dumps(summary, indent=2) + "\n")
    return summary
