"""Character-level text corpora: `load_text` reads a registered text dataset, checked.

The split is fixed, never shuffled: the **last 10%** of the characters is the validation
text, the first 90% the training text (``split = len(text) - len(text) // 10``). For
tinyshakespeare that is 1,003,855 training and 111,539 validation characters. The
vocabulary is the sorted set of characters of the *whole* text, so every validation
character has an index (65 for tinyshakespeare).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcc.data.download import checksum_problem
from dlcc.data.paths import find_dataset_folder, locate_file, resolve_data_dir
from dlcc.data.registry import get_spec
from dlcc.data.status import damaged_file_remedy, missing_dataset_error
from dlcc.errors import DataError

VAL_FRACTION = 0.1


@dataclass(repr=False)
class TextCorpus:
    """A text split in two, as character indices.

    Attributes:
        name: dataset name.
        vocab: the characters, index = token id.
        train, val: int64 arrays of token ids (the first 90% and the last 10%).
        source: the file the text was read from (None for a generated one).
    """

    name: str
    vocab: list[str]
    train: np.ndarray
    val: np.ndarray
    source: Path | None = None

    def encode(self, text: str) -> np.ndarray:
        return encode(text, self.vocab)

    def decode(self, ids) -> str:
        return "".join(self.vocab[int(i)] for i in ids)

    def __repr__(self) -> str:
        return (
            f"TextCorpus({self.name!r}: {len(self.train):,} train + {len(self.val):,} val "
            f"characters, vocabulary {len(self.vocab)})"
        )


def encode(text: str, vocab: list[str]) -> np.ndarray:
    """Token ids of `text`; a DataError naming the first character outside `vocab`."""
    index = {char: i for i, char in enumerate(vocab)}
    try:
        return np.array([index[char] for char in text], dtype=np.int64)
    except KeyError as error:
        raise DataError(
            f"character {error.args[0]!r} is not in the model's vocabulary of {len(vocab)}"
        ) from None


def corpus_from_text(name: str, text: str, source: Path | None = None) -> TextCorpus:
    """Split `text` (last 10% validation) and index its characters."""
    if len(text) < 20:
        raise DataError(f"{name}: the text has {len(text)} characters; it needs at least 20")
    vocab = sorted(set(text))
    ids = encode(text, vocab)
    split = len(ids) - len(ids) // 10
    return TextCorpus(name, vocab, ids[:split], ids[split:], source)


def load_text(name: str, data_dir: str | os.PathLike[str] | None = None) -> TextCorpus:
    """Read registered text dataset `name` from the data directory, checking its sha256.

    Raises:
        DataError: unknown name, not a text dataset, missing file (the message says where
            to put it), or a file whose checksum or encoding is wrong.
    """
    spec = get_spec(name)
    if spec.file_format != "text":
        raise DataError(f"dataset {name} is not a text corpus ({spec.file_format} images)")
    folder = find_dataset_folder(spec, resolve_data_dir(data_dir))
    if folder is None:
        raise missing_dataset_error(spec, data_dir)
    (dataset_file,) = spec.files
    path = locate_file(folder, dataset_file) or folder / dataset_file.filename
    remedy = damaged_file_remedy(spec)
    problem = checksum_problem(path, dataset_file, remedy=remedy)
    if problem:
        raise DataError(problem)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text: {remedy}") from None
    return corpus_from_text(spec.name, text, path)


# ---- a generated task: no files, trains in seconds -----------------------------------------

COPY_ALPHABET = "abcd"
COPY_LENGTH = 3
COPY_RECORDS = 2000
COPY_SEED = 20240101


def copy_task_text(
    records: int = COPY_RECORDS,
    length: int = COPY_LENGTH,
    alphabet: str = COPY_ALPHABET,
    seed: int = COPY_SEED,
) -> str:
    """Records ``s>s\\n``: `length` random letters, ``>``, the same letters again.

    The first `length` letters of a record cannot be predicted (ln 4 nats each for 4
    letters); the ``>``, the copy and the newline can, by remembering. A model that has
    learnt the copy reaches ``length * ln(len(alphabet)) / (2 * length + 2)`` nats/char
    (0.52 for the defaults) and predicts every copied letter.
    """
    rng = np.random.default_rng(seed)
    letters = rng.integers(0, len(alphabet), size=(records, length))
    return "".join(
        "".join(alphabet[i] for i in row) + ">" + "".join(alphabet[i] for i in row) + "\n"
        for row in letters
    )


def copy_positions(count: int, length: int = COPY_LENGTH) -> np.ndarray:
    """Boolean mask over the first `count` characters of a copy-task text (or of its
    validation part, which starts on a record boundary): True at the copied letters."""
    offset = np.arange(count) % (2 * length + 2)
    return (offset > length) & (offset <= 2 * length)


GENERATED = {"copy": copy_task_text}


def load_corpus(name: str, data_dir: str | os.PathLike[str] | None = None) -> TextCorpus:
    """A registered text dataset (`load_text`) or a generated one (``copy``)."""
    from dlcc.data.registry import DATASETS

    if name in GENERATED:
        return corpus_from_text(name, GENERATED[name]())
    if name in DATASETS and DATASETS[name].file_format == "text":
        return load_text(name, data_dir)
    known = [*GENERATED, *(key for key, spec in DATASETS.items() if spec.file_format == "text")]
    raise DataError(
        f"unknown text dataset {name!r} for a character model: expected one of {', '.join(known)}"
    )
