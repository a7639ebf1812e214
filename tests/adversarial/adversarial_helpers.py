"""A tiny classifier trained in about a second on the embedded digits, in pixel space."""

from __future__ import annotations

import torch
from torch import nn

from dlcc.data import load_dataset


def digits_pixels(split: str = "test"):
    """(pixels (N, 1, 8, 8) float32 in [0, 1], labels (N,) int64) of the embedded digits."""
    dataset = load_dataset("digits", None, val_size=0.1, seed=0, normalize=False)
    x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
    return torch.from_numpy(x).float(), torch.from_numpy(y).long()


def train_mlp(pixels, labels, steps: int = 40, seed: int = 0, hidden: int = 32) -> nn.Module:
    """An MLP (64 -> hidden -> 10) fitted full-batch with Adam; returned in eval mode."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(pixels), labels).backward()
        optimizer.step()
    return model.eval()


def accuracy(model, pixels, labels) -> float:
    with torch.no_grad():
        return float((model(pixels).argmax(dim=1) == labels).float().mean())
