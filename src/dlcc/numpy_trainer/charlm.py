"""``dlcc numpy train --model char_lstm``: a character-level LSTM into a run directory,
``dlcc numpy sample RUN_DIR``, and ``dlcc eval`` of such a run.

The run directory is the one contract (`dlcc.runs`), with task ``language_model``:

    config.yaml     kind: numpy, task: language_model, data, model, optim, schedule, train
    history.json    epoch, train_loss, train_accuracy, val_loss, val_accuracy (nats/char and
                    next-character accuracy), grad_norm, lr, seconds, samples_per_second
    metrics.json    dlcc.runs.METRIC_KEYS, test_loss, test_accuracy, test_bits_per_char
    run.json, checkpoints/{last,best}.npz, history.png
    vocab.json      the characters, index = token id (sampling needs no dataset)
    samples.txt     300 characters sampled from the best weights at temperature 0.8

A text corpus has two splits: training (the first 90%) and validation (the last 10%, see
`dlcc.data.text`). There is no third split: the "test" figures in metrics.json are the
validation text read by the best checkpoint, and `dlcc eval --split test` is the same text.

Defaults for tinyshakespeare: Embedding 64 -> LSTM 256 -> Linear, 32 streams x 64 steps,
Adam 3e-3, clipping at 5, one pass over the text (490 steps) per epoch, and a time budget
of 15 minutes (training plus validation). The generated ``copy`` task trains in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dlcc.errors import DlccError

TASK = "language_model"
MODEL = "char_lstm"
BASE = dict(
    epochs=10,
    batch_size=32,
    seq_len=64,
    optimizer="adam",
    lr=3e-3,
    schedule="none",
    clip=5.0,
    embedding=64,
    hidden=256,
    layers=1,
    steps_per_epoch=None,  # None: one pass over the training text
    time_budget=None,  # seconds; None: no limit
    seed=0,
    patience=None,
)
DEFAULTS = {
    "tinyshakespeare": dict(epochs=30, time_budget=900.0),
    "copy": dict(
        epochs=3, batch_size=16, seq_len=32, lr=1e-2, embedding=16, hidden=64, steps_per_epoch=50
    ),
}
TUNABLE = list(BASE)
# Flags of the image models that mean nothing here: refused rather than ignored.
IMAGE_ONLY = ("l2", "dropout", "channels")
RESUME_FREE = ["data.data_dir", "train.progress"]
SAMPLE_LENGTH, SAMPLE_TEMPERATURE = 300, 0.8


def resolve_char_settings(dataset: str, overrides: dict) -> dict:
    """BASE, then the dataset's row, then the flags; checked, with one-line errors."""
    for name in IMAGE_ONLY:
        if overrides.get(name) is not None:
            raise DlccError(f"--{name.replace('_', '-')} is not a setting of --model {MODEL}")
    settings = dict(BASE)
    settings.update(DEFAULTS.get(dataset, {}))
    given = {key: value for key, value in overrides.items() if key in BASE and value is not None}
    settings.update(given)
    hidden = settings["hidden"]
    settings["hidden"] = int(hidden[0] if isinstance(hidden, list | tuple) else hidden)
    settings.update(model=MODEL, dataset=dataset)
    for name in ("epochs", "batch_size", "seq_len", "embedding", "hidden", "layers"):
        if settings[name] < 1:
            raise DlccError(f"--{name.replace('_', '-')} must be >= 1, got {settings[name]}")
    if not settings["lr"] > 0:
        raise DlccError(f"--lr must be > 0, got {settings['lr']}")
    if settings["clip"] is not None and settings["clip"] < 0:
        raise DlccError(f"--clip must be >= 0 (0: no clipping), got {settings['clip']}")
    if settings["steps_per_epoch"] is not None and settings["steps_per_epoch"] < 1:
        raise DlccError(f"--steps-per-epoch must be >= 1, got {settings['steps_per_epoch']}")
    if settings["time_budget"] is not None and not settings["time_budget"] > 0:
        raise DlccError(f"--time-budget must be > 0 seconds, got {settings['time_budget']}")
    if settings["patience"] is not None and settings["patience"] < 1:
        raise DlccError(f"--patience must be >= 1, got {settings['patience']}")
    if settings["schedule"] not in ("none", "cosine"):
        raise DlccError(f"--model {MODEL} takes --schedule none or cosine")
    return settings


def config_sections(settings: dict, *, data_dir, progress: bool) -> dict:
    return {
        "data": {
            "dataset": settings["dataset"],
            "batch_size": settings["batch_size"],
            "seq_len": settings["seq_len"],
            "data_dir": None if data_dir is None else str(data_dir),
        },
        "model": {
            "name": MODEL,
            "embedding": settings["embedding"],
            "hidden": settings["hidden"],
            "layers": settings["layers"],
        },
        "optim": {"name": settings["optimizer"], "lr": settings["lr"], "clip": settings["clip"]},
        "schedule": {"name": settings["schedule"]},
        "train": {
            "epochs": settings["epochs"],
            "steps_per_epoch": settings["steps_per_epoch"],
            "time_budget": settings["time_budget"],
            "seed": settings["seed"],
            "patience": settings["patience"],
            "monitor": "val_loss",
            "mode": "min",
            "progress": bool(progress),
        },
    }


def settings_from_config(sections: dict) -> tuple[dict, dict]:
    """The inverse of `config_sections`: (settings, {data_dir, progress}) of a config.yaml."""
    data, model, optim = sections["data"], sections["model"], sections["optim"]
    train = sections["train"]
    settings = {
        **{key: data[key] for key in ("dataset", "batch_size", "seq_len")},
        **{key: model[key] for key in ("embedding", "hidden", "layers")},
        "optimizer": optim["name"],
        "lr": optim["lr"],
        "clip": optim["clip"],
        "schedule": sections["schedule"]["name"],
        **{key: train[key] for key in ("epochs", "steps_per_epoch", "time_budget", "seed")},
        "patience": train["patience"],
    }
    return settings, {"data_dir": data["data_dir"], "progress": bool(train["progress"])}


def build_char_model(model_settings: dict, vocab_size: int):
    from dlcc.numpy_nn.sequence import CharLSTM

    return CharLSTM(
        vocab_size,
        embedding_dim=int(model_settings["embedding"]),
        hidden_size=int(model_settings["hidden"]),
        num_layers=int(model_settings["layers"]),
    )


def train_char_run(
    settings: dict,
    out,
    *,
    data_dir=None,
    resume: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
) -> dict:
    """Train `resolve_char_settings`' result into run directory `out`; returns metrics."""
    from dlcc.atomic import write_text_atomic
    from dlcc.data.text import load_corpus
    from dlcc.numpy_nn import manual_seed
    from dlcc.numpy_nn.sequence import Streams, evaluate_text, fit_tbptt
    from dlcc.numpy_nn.train import checkpoint_epoch, load_checkpoint
    from dlcc.numpy_trainer.settings import build_optimizer, build_schedule
    from dlcc.runs import RunDir, prepare_run_dir, start_run_record, strict_json, write_history

    run = RunDir(Path(out), "numpy")
    print(f"dlcc numpy train: {MODEL} on {settings['dataset']} -> {run.root}")
    corpus = load_corpus(settings["dataset"], data_dir)  # before any write
    streams = Streams(corpus.train, settings["batch_size"], settings["seq_len"])  # checks size
    if resume and not run.config.is_file():
        raise DlccError(
            f"--resume: {run.root} holds no unfinished run to continue (resume is automatic: "
            "repeat the original command; leave out --resume to start a new run)"
        )
    sections = config_sections(settings, data_dir=data_dir, progress=progress)
    resume_from = prepare_run_dir(run, TASK, sections, resume_free=RESUME_FREE)
    start_run_record(run, command)  # run.json now, so a crashed run has its record
    epochs_before = checkpoint_epoch(resume_from) if resume_from is not None else 0

    manual_seed(settings["seed"])
    model = build_char_model(sections["model"], len(corpus.vocab))
    optimizer = build_optimizer(sections["optim"], model.parameters())
    steps_per_epoch = settings["steps_per_epoch"] or streams.steps_per_pass
    schedule = build_schedule(
        settings["schedule"],
        optimizer,
        lr=settings["lr"],
        epochs=settings["epochs"],
        steps_per_epoch=steps_per_epoch,
    )
    write_text_atomic(run.root / "vocab.json", strict_json({"vocab": corpus.vocab}))
    budget = settings["time_budget"]
    print(
        f"  data: {len(corpus.train):,} train / {len(corpus.val):,} val characters (the last "
        f"10%), vocabulary {len(corpus.vocab)}"
    )
    print(
        f"  model: {model.num_parameters():,} parameters; {settings['batch_size']} streams x "
        f"{settings['seq_len']} steps, {steps_per_epoch} steps an epoch"
        + (f", time budget {budget:g}s" if budget else "")
    )
    history = fit_tbptt(
        model,
        optimizer,
        corpus.train,
        corpus.val,
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        seq_len=settings["seq_len"],
        steps_per_epoch=settings["steps_per_epoch"],
        clip=settings["clip"] or None,
        scheduler=schedule,
        time_budget=budget,
        patience=settings["patience"],
        seed=settings["seed"],
        checkpoint_dir=run.checkpoints,
        resume=resume_from is not None,
        progress=progress,
    )
    write_history(run, history)
    load_checkpoint(run.best, model)
    model.eval()
    test = evaluate_text(model, corpus.val)
    rng = np.random.default_rng(settings["seed"])
    text = sample_text(model, corpus.vocab, "\n", SAMPLE_LENGTH, SAMPLE_TEMPERATURE, rng)
    write_text_atomic(run.root / "samples.txt", text + "\n")

    from dlcc import plots

    plots.plot_history(history.to_dict(), run.root / "history.png")
    best_row = history.rows()[history.epoch.index(history.best_epoch)]
    metrics = {
        "kind": "numpy",
        "task": TASK,
        "monitor": "val_loss",
        "mode": "min",
        "best_epoch": history.best_epoch,
        "best_value": best_row["val_loss"],
        "epochs": len(history),
        "stopped_early": history.stopped_early,
        "test_checkpoint": "best",
        "train_seconds": float(sum(history.seconds)),
        "train_seconds_this_session": float(sum(history.seconds[epochs_before:])),
        "parameters": model.num_parameters(),
        "test_loss": test.loss,
        "test_accuracy": test.accuracy,
        "test_bits_per_char": test.loss / np.log(2),
        "test_split": "val (the last 10% of the text; there is no separate test split)",
        "test_epoch": history.best_epoch,
        "model": MODEL,
        "dataset": settings["dataset"],
    }
    from dlcc.numpy_trainer.run import _finish

    _finish(run, metrics, command)
    print(
        f"validation loss {test.loss:.4f} nats/char ({metrics['test_bits_per_char']:.3f} "
        f"bits/char), accuracy {test.accuracy:.4f}, best weights of epoch {history.best_epoch}; "
        f"trained {metrics['train_seconds']:.1f}s"
    )
    print(f"sample (temperature {SAMPLE_TEMPERATURE}):\n{text}")
    print(f"wrote {run.root}/: metrics.json history.json config.yaml run.json vocab.json")
    print(f"      {run.root}/: samples.txt history.png, checkpoints/: last.npz best.npz")
    return metrics


# ---- sampling and evaluating a saved run -------------------------------------------------


def sample_text(
    model, vocab: list[str], prime: str, length: int, temperature: float, rng, top_k=None
) -> str:
    """`prime` followed by `length` sampled characters."""
    from dlcc.numpy_nn.sequence import sample

    prime_ids = encode_prime(prime, vocab)
    drawn = sample(model, prime_ids, length, temperature=temperature, top_k=top_k, rng=rng)
    return prime + "".join(vocab[int(i)] for i in drawn)


def encode_prime(prime: str, vocab: list[str]) -> np.ndarray:
    """The ids of `prime`; a one-line DlccError naming a character outside the vocabulary."""
    from dlcc.data.text import encode
    from dlcc.errors import DataError

    if not prime:
        raise DlccError("--prime is empty: give at least one character to start from")
    try:
        return encode(prime, vocab)
    except DataError as error:
        raise DlccError(f"--prime: {error}; use characters of vocab.json") from None


def _load_char_run(saved, checkpoint: str):
    from dlcc.numpy_nn.train import checkpoint_epoch, load_checkpoint

    run = saved.run
    if saved.kind != "numpy" or saved.task != TASK:
        raise DlccError(f"{run.root} is not a `dlcc numpy train --model {MODEL}` run")
    from dlcc.numpy_trainer.run import saved_checkpoint

    path = saved_checkpoint(run, checkpoint)
    try:
        vocab = json.loads((run.root / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        model = build_char_model(saved.settings["model"], len(vocab))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DlccError(f"{run.root}: cannot rebuild the model ({error})") from None
    load_checkpoint(path, model)
    model.eval()
    return model, vocab, checkpoint_epoch(path)


def sample_run(
    run_dir,
    *,
    n: int = SAMPLE_LENGTH,
    temperature: float = SAMPLE_TEMPERATURE,
    prime: str = "\n",
    seed: int = 0,
    checkpoint: str = "best",
    top_k: int | None = None,
) -> str:
    """`n` characters from RUN_DIR's checkpoint, after `prime`; the same seed, the same text."""
    from dlcc.runs import read_run

    if n < 1:
        raise DlccError(f"--n must be >= 1, got {n}")
    model, vocab, _ = _load_char_run(read_run(run_dir), checkpoint)
    rng = np.random.default_rng(seed)
    return sample_text(model, vocab, prime or "\n", n, temperature, rng, top_k=top_k)


def evaluate_char_run(saved, *, checkpoint: str, split: str, data_dir=None, out=None) -> dict:
    """`dlcc eval` of a char_lstm run: loss (nats/char) and accuracy on a split."""
    from dlcc.atomic import write_text_atomic
    from dlcc.data.text import load_corpus
    from dlcc.numpy_nn.sequence import evaluate_text
    from dlcc.runs import strict_json

    model, vocab, epoch = _load_char_run(saved, checkpoint)
    data = saved.settings.get("data") or {}
    if data_dir is None:
        data_dir = data.get("data_dir")
    corpus = load_corpus(data.get("dataset", ""), data_dir)
    if corpus.vocab != vocab:
        raise DlccError(f"{saved.run.root}: the dataset's characters differ from vocab.json")
    ids = corpus.train if split == "train" else corpus.val
    result = evaluate_text(model, ids)
    report = {
        "run_dir": str(saved.run.root),
        "kind": "numpy",
        "task": TASK,
        "split": split,
        "checkpoint": checkpoint,
        "epoch": epoch,
        "samples": result.characters,
        "loss": result.loss,
        "accuracy": result.accuracy,
        "bits_per_char": result.loss / np.log(2),
    }
    root = saved.run.root
    path = Path(out) if out is not None else root / f"eval_{split}_{checkpoint}.json"
    write_text_atomic(path, strict_json(report))
    return report
