"""User-facing errors.

Anything a user can cause (a missing file, a bad flag, a corrupt checkpoint) raises a
`DlccError` whose message says what was expected, what was received and what to do.
The CLI prints that message on one line and exits with status 2, never a traceback.
"""


class DlccError(Exception):
    """An error caused by the user's input or environment, with an actionable message."""


class DataError(DlccError):
    """A dataset is missing, truncated, or fails its checksum."""


class TrainingDiverged(DlccError):
    """The loss became NaN or infinite during training.

    Raised by both trainers (`dlcc.numpy_nn.train.fit` and the PyTorch loop) with the
    epoch, step and learning rate where it happened. The checkpoint of the last finished
    epoch is left as it was, so lowering the learning rate and starting again is safe.
    """
