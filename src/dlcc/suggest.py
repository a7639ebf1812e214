"""The "did you mean" hint that error messages append to an unknown name (stdlib only)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """``" (did you mean 'x'?)"`` for the choice closest to ``word``, or ``""`` if none is close.

    Append it straight after the unknown name: ``f"unknown key {key!r}{did_you_mean(key, keys)}"``
    reads "unknown key 'epochz' (did you mean 'epochs'?)". Closeness is difflib's ratio
    (at least 0.6), and one choice is named. Non-string words and choices are
    compared as ``str``.
    """
    close = difflib.get_close_matches(str(word), [str(choice) for choice in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
