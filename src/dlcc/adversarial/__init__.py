"""Adversarial examples: L-infinity FGSM and PGD in pixel space, robustness curves, and the
training-input step of adversarial training (see `attacks`). Imports torch only; the
plots (`robustness`) import matplotlib when called."""

from dlcc.adversarial.attacks import (
    ATTACKS,
    AdversarialTraining,
    AttackError,
    AttackSpec,
    PixelModel,
    attack,
    attack_spec,
    fgsm,
    pgd,
    project,
)
from dlcc.adversarial.robustness import accuracy_vs_eps

__all__ = [
    "ATTACKS",
    "AdversarialTraining",
    "AttackError",
    "AttackSpec",
    "PixelModel",
    "accuracy_vs_eps",
    "attack",
    "attack_spec",
    "fgsm",
    "pgd",
    "project",
]
