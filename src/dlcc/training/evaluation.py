"""`dlcc eval RUN_DIR`: evaluate a saved run's checkpoint on one split of its dataset."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import yaml

from dlcc.atomic import write_text_atomic
from dlcc.training.checkpoint import CheckpointError, load_checkpoint, load_model_weights
from dlcc.training.config import ConfigError, config_from_dict
from dlcc.training.data import load_data
from dlcc.training.loop import build_network, evaluate_split, pick_device


def evaluate_run(
    run_dir: str | Path,
    *,
    checkpoint: str = "best",
    split: str = "test",
    device: str = "auto",
    data_dir: str | None = None,
) -> dict:
    """Accuracy and loss of run_dir/checkpoints/{checkpoint}.pt on `split`.

    Writes run_dir/eval_{split}_{checkpoint}.json and returns the same dict.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(
            f"{run_dir} is not a run directory (no config.yaml): pass the --out "
            "directory of a `dlcc train` run"
        )
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        raise ConfigError(f"{config_path} is not valid YAML; it was edited or damaged") from None
    config = config_from_dict(raw, str(config_path))
    if data_dir:
        config.data.data_dir = data_dir
    config.train.device = device
    checkpoint_path = run_dir / "checkpoints" / f"{checkpoint}.pt"
    if not checkpoint_path.is_file():
        raise CheckpointError(
            f"{checkpoint_path} does not exist: the run has not finished an "
            "epoch yet, or pass --checkpoint last"
        )
    state = load_checkpoint(checkpoint_path)
    torch_device = pick_device(device)
    data = load_data(
        config.data.dataset, config.data.data_dir, config.data.val_size, config.train.seed
    )
    model = build_network(config, data).to(torch_device)
    load_model_weights(model, state, checkpoint_path, config.model.name)
    config.train.progress = False
    result = evaluate_split(model, data, split, config, torch_device, nullcontext)
    summary = {
        "run_dir": str(run_dir),
        "split": split,
        "checkpoint": checkpoint,
        "epoch": state.get("epoch"),
        "accuracy": result["accuracy"],
        "loss": result["loss"],
        "images": len(result["labels"]),
    }
    write_text_atomic(
        run_dir / f"eval_{split}_{checkpoint}.json", json.dumps(summary, indent=2) + "\n"
    )
    return summary
