"""User-facing errors.

Anything a user can cause (a missing file, a bad flag, a corrupt checkpoint) raises a
`DlccError` whose message says what was expected, what was received and what to do.
The CLI prints that message on one line and exits with status 2, never a traceback.
"""


class DlccError(Exception):
    """An error caused by the user's input or environment, with an actionable message."""


class DataError(DlccError):
    """A dataset is missing, truncated, or fails its checksum."""
