"""`dlcc numpy train`: train the NumPy MLP or CNN into a run directory; `evaluate_numpy_run`.

The defaults for each (model, dataset) pair are the settings behind the README's
results table, so ``dlcc numpy train --model cnn --dataset mnist`` reproduces its row
with no other flag. A flag given on the command line overrides the default.

The run directory is the one contract of `dlcc.runs` (the PyTorch trainer writes the same):

    config.yaml        {kind: numpy, task: classification, data: ..., model: ..., optim: ...,
                        schedule: ..., train: ...}: every setting that changes the result
    history.json       a column per metric (epoch, train_loss, ..., val_accuracy, lr, seconds)
    metrics.json       dlcc.runs.METRIC_KEYS, test_accuracy, test_loss, test_epoch, model,
                       dataset, and train_/val_ loss and accuracy at test_epoch
    run.json           how the run was made (dlcc.runs.record: start_run_record, write_run_record)
    checkpoints/       last.npz (everything to resume exactly), best.npz (best val_accuracy)
    confusion_matrix.json, history.png, confusion_matrix.png, misclassified.png

"Best" is declared: the monitored history column (``val_accuracy`` by default, as in the
torch trainer) and its mode (``max``). The test split is evaluated with the best weights
when there is a validation split, with the last ones otherwise (metrics: test_checkpoint).

Running the same command again resumes an unfinished run (after a crash or a kill) from
checkpoints/last.npz and ends exactly as an uninterrupted run would; a finished run, or a
run with other settings, is refused so that no result is ever overwritten.

This module lives outside `dlcc.numpy_nn` because it uses the data registry, PyYAML and
matplotlib; the library itself needs NumPy alone.
"""

from dlcc.numpy_trainer.run import evaluate_numpy_run, train_numpy_run
from dlcc.numpy_trainer.settings import DEFAULTS, resolve_settings

__all__ = ["DEFAULTS", "evaluate_numpy_run", "resolve_settings", "train_numpy_run"]
