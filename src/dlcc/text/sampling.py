"""Sample text from a language-model run directory, whichever trainer wrote it.

A torch run (``kind: torch``, task language_model) is rebuilt from its config.yaml and
checkpoint; its vocabulary comes from vocab.json (or, for a run killed before its report,
the checkpoint's data summary), so no dataset is read. A NumPy char_lstm run is handed to
`dlcc.numpy_trainer.charlm.sample_run`. Both draw through
`dlcc.numpy_nn.sequence.sample_tokens`: the same settings, the same rules.
"""

from __future__ import annotations

import json

import numpy as np

from dlcc.errors import DlccError

TASK = "language_model"


def sample_run(
    run_dir,
    *,
    prime: str = "\n",
    length: int = 500,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int = 0,
    checkpoint: str = "best",
    device: str = "cpu",
) -> str:
    """`prime` and `length` characters drawn from RUN_DIR's checkpoint; the same seed, the
    same text. One-line DlccErrors for a folder that is not a language-model run, a prime
    outside the vocabulary, temperature <= 0 or top_k < 1."""
    from dlcc.numpy_nn.sequence import check_sampling
    from dlcc.runs import read_run

    if length < 1:
        raise DlccError(f"--length must be >= 1, got {length}")
    check_sampling(temperature, top_k)
    if not prime:
        raise DlccError("--prime is empty: give at least one character to start from")
    saved = read_run(run_dir)
    if saved.task != TASK:
        raise DlccError(
            f"{saved.run.root} is a {saved.task or 'untagged'} run, not a language model: "
            "sample from a run trained with task language_model (e.g. recipe "
            "shakespeare_lstm) or `dlcc numpy train --model char_lstm`"
        )
    if saved.kind == "numpy":
        from dlcc.numpy_trainer import charlm

        return charlm.sample_run(
            run_dir, n=length, temperature=temperature, prime=prime, seed=seed,
            checkpoint=checkpoint, top_k=top_k,
        )  # fmt: skip
    model, vocab = load_torch_language_model(saved, checkpoint, device)
    from dlcc.training.tasks.language_model import sample_text

    rng = np.random.default_rng(seed)
    return sample_text(model, vocab, prime, length, temperature=temperature, top_k=top_k, rng=rng)


def load_torch_language_model(saved, checkpoint: str, device: str = "cpu"):
    """(model in eval mode with the checkpoint's weights, vocabulary) of a torch LM run."""
    from types import SimpleNamespace

    from dlcc.training.checkpoint import load_model_weights
    from dlcc.training.evaluation import read_saved_checkpoint
    from dlcc.training.setup import build_network, pick_device
    from dlcc.training.tasks import build_task

    config, path, state = read_saved_checkpoint(saved, checkpoint)
    vocab = _vocabulary(saved, state)
    data = SimpleNamespace(
        classes=vocab,
        in_shape=(config.data.seq_len,),
        train=SimpleNamespace(sequential=config.data.sequential),
    )
    task = build_task(config, data)
    torch_device = pick_device(device)
    model = build_network(config, data, task).to(torch_device)
    load_model_weights(model, state, path, config.model.name)
    model.eval()
    return model, vocab


def _vocabulary(saved, state: dict) -> list[str]:
    path = saved.run.root / "vocab.json"
    try:
        if path.is_file():
            return list(json.loads(path.read_text(encoding="utf-8"))["vocab"])
        return list(state["data"]["classes"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DlccError(
            f"{saved.run.root}: cannot read the vocabulary ({type(error).__name__}: {error}); "
            "vocab.json is damaged: train the run again"
        ) from None
