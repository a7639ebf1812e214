"""The NumPy char_lstm's PyTorch twin: the same model, data, batches, optimiser and budget.

Embedding(V, 64) -> LSTM(64, 256) -> Linear(256, V) on tinyshakespeare; the training text
(first 90%) cut into 32 streams read 64 steps at a time with the state carried across
chunks (detached) and reset at the start of each pass; Adam lr 3e-3; gradient clipping at
global norm 5; one pass (490 steps) per epoch, then the validation loss in nats/char on the
last 10%, read as `dlcc.numpy_nn.sequence.evaluate_text` reads it (16 streams, carried
state, chunks of 256). It stops when the time budget (training + validation) is spent,
inside an epoch, as `dlcc numpy train --model char_lstm --time-budget` does. One thread.

Run beside the NumPy trainer on the same machine, with the same settings::

    DLCC_DATA_DIR=../shared/datasets python benchmarks/char_lstm_torch.py --time-budget 900
    OPENBLAS_NUM_THREADS=1 DLCC_DATA_DIR=../shared/datasets \\
        dlcc numpy train --model char_lstm --dataset tinyshakespeare --out runs/charlm

It prints one line per epoch and the best validation loss; ``--json PATH`` saves them.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

from dlcc.data.text import load_text
from dlcc.numpy_nn.sequence import EVAL_CHUNK, EVAL_STREAMS, Streams


class CharLSTM(nn.Module):
    def __init__(self, vocab: int, embedding: int, hidden: int, layers: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.lstm = nn.LSTM(embedding, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids, state=None):
        output, state = self.lstm(self.embedding(ids), state)
        return self.head(output), state


@torch.no_grad()
def evaluate(model: CharLSTM, ids: np.ndarray) -> tuple[float, float]:
    """Mean nats/char and accuracy, read as dlcc.numpy_nn.sequence.evaluate_text."""
    model.eval()
    streams = EVAL_STREAMS
    length = (len(ids) - 1) // streams
    inputs = torch.from_numpy(ids[: streams * length].reshape(streams, length))
    targets = torch.from_numpy(ids[1 : streams * length + 1].reshape(streams, length))
    total, correct, state = 0.0, 0, None
    for start in range(0, length, EVAL_CHUNK):
        x, y = inputs[:, start : start + EVAL_CHUNK], targets[:, start : start + EVAL_CHUNK]
        logits, state = model(x, state)
        total += float(nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="sum"))
        correct += int((logits.argmax(-1) == y).sum())
    model.train()
    return total / (streams * length), correct / (streams * length)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-budget", type=float, default=900.0, help="seconds")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--clip", type=float, default=5.0)
    parser.add_argument("--embedding", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    corpus = load_text("tinyshakespeare")
    streams = Streams(corpus.train, args.batch_size, args.seq_len)
    model = CharLSTM(len(corpus.vocab), args.embedding, args.hidden, args.layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s): {corpus}; "
        f"{sum(p.numel() for p in model.parameters()):,} parameters; "
        f"{streams.steps_per_pass} steps an epoch; budget {args.time_budget:g}s"
    )
    step, state, spent, rows = 0, None, 0.0, []
    out_of_time = False
    for epoch in range(1, args.epochs + 1):
        if out_of_time:
            break
        started, losses = time.perf_counter(), []
        for _ in range(streams.steps_per_pass):
            if streams.starts_pass(step):
                state = None
            x, y = (torch.from_numpy(np.ascontiguousarray(a)) for a in streams.chunk(step))
            logits, state = model(x, state)
            state = tuple(part.detach() for part in state)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            if args.clip:
                nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            losses.append(loss.item())
            step += 1
            if spent + time.perf_counter() - started >= args.time_budget:
                out_of_time = True
                break
        val_loss, val_accuracy = evaluate(model, corpus.val)
        seconds = time.perf_counter() - started
        spent += seconds
        rows.append(
            dict(
                epoch=epoch,
                steps=step,
                train_loss=float(np.mean(losses)),
                val_loss=val_loss,
                val_accuracy=val_accuracy,
                seconds=seconds,
            )
        )
        print(
            f"epoch {epoch:3d}  step {step:5d}  train loss {rows[-1]['train_loss']:.4f}  "
            f"val loss {val_loss:.4f} nats/char acc {val_accuracy:.4f}  {seconds:.1f}s"
            + ("  (time budget spent)" if out_of_time else "")
        )
    best = min(rows, key=lambda row: row["val_loss"])
    print(
        f"best validation loss {best['val_loss']:.4f} nats/char at epoch {best['epoch']} "
        f"(step {best['steps']}); {step} steps in {spent:.1f}s"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"settings": vars(args), "epochs": rows, "best": best}, handle, indent=2)


if __name__ == "__main__":
    main()
