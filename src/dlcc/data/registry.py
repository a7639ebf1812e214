"""The dataset registry: name -> folder, files, checksums and download URLs.

A checksum here identifies a file's *content*, not its wrapper. For a gzip-compressed IDX
file the registry records the sha256 of the **decompressed** bytes, because mirrors
re-compress the same data: the MNIST files in the shared dataset folder, for example, have
different .gz bytes from the classic mirror's, yet decompress to byte-identical IDX files.
A content hash accepts both and still catches any change to the data itself, and lets an
already-decompressed copy (``train-images-idx3-ubyte`` without ``.gz``) verify as well.

Nothing here touches the disk or the network; `paths`, `download` and the loaders do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlcc.errors import DataError

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
FASHION_MNIST_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
CIFAR10_ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


@dataclass(frozen=True)
class DatasetFile:
    """One file of a dataset, as its publisher names it.

    Attributes:
        filename: name inside the dataset's folder, e.g. ``train-images-idx3-ubyte.gz``.
        sha256: hex sha256, or None where no trustworthy value is known (we never invent one).
        md5: hex md5, where the publisher documents an md5.
        checksum_of_content: True when the checksums are of the decompressed content of a
            gzip file (IDX files); False when they are of the file's bytes as published
            (the CIFAR-10 tarball, whose published hashes are of the .tar.gz itself).
        urls: full download URLs, tried in order; empty when there is no public download.
        required: False for files of which any subset is usable (the CIFAR-10 batches).
    """

    filename: str
    sha256: str | None
    md5: str | None = None
    checksum_of_content: bool = False
    urls: tuple[str, ...] = ()
    required: bool = True

    @property
    def gzipped(self) -> bool:
        return self.filename.endswith(".gz")

    @property
    def accepted_names(self) -> tuple[str, ...]:
        """Names this file may have on disk: the publisher's, and for ``.gz`` the unpacked one."""
        if self.gzipped:
            return (self.filename, self.filename.removesuffix(".gz"))
        return (self.filename,)


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the project knows about one dataset before touching the disk.

    Attributes:
        name: registry name, as typed on the command line (``mnist``).
        description: one line for ``dlcc data list``.
        file_format: ``embedded`` | ``idx`` | ``cifar-pickle`` | ``csv`` | ``text``; picks
            the loader (``text``: one UTF-8 corpus, read by `dlcc.data.text.load_text`).
        image_shape: (C, H, W) of one image; () for a text corpus.
        classes: class names, index = label; () for a text corpus.
        folders: candidate sub-folders of the data directory holding the files, in order of
            preference; the first is where ``fetch`` writes.
        files: the files the loader reads (for CIFAR-10, the extracted ones).
        archive: a single download that unpacks into ``files`` (CIFAR-10's tarball), or None.
        default_val_size: validation images carved from the training split: an int is a
            count, a float in (0, 1) a fraction of the training images present.
        homepage: where a person can read about and download the data by hand.
        manual_download_hint: how to install the files by hand, with ``{folder}`` standing
            for the destination; empty means "put <the files> (from <homepage>) in {folder}/".
    """

    name: str
    description: str
    file_format: str
    image_shape: tuple[int, ...] = ()
    classes: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    files: tuple[DatasetFile, ...] = ()
    archive: DatasetFile | None = None
    default_val_size: int | float = 0.1
    homepage: str = ""
    manual_download_hint: str = field(default="")

    @property
    def downloadable(self) -> bool:
        return self.archive is not None or any(file.urls for file in self.files)


def _idx_file(filename: str, content_sha256: str, mirrors: tuple[str, ...]) -> DatasetFile:
    return DatasetFile(
        filename=filename,
        sha256=content_sha256,
        checksum_of_content=True,
        urls=tuple(mirror + filename for mirror in mirrors),
    )


DIGIT_CLASSES = tuple(str(digit) for digit in range(10))

# The content sha256 values below were computed from the files in the shared dataset folder
# (../shared/datasets/{mnist,fashion-mnist}) only after checking that the md5 of each
# decompressed file equals the canonical md5 published in that folder's README.md
# (MNIST: 6bbc9ace..., a25bea73..., 2646ac64..., 27ae3e4e...; Fashion-MNIST: f4a8712d...,
# 9018921c..., 8181f547..., 15d48437...). All eight matched, so these hashes describe the
# canonical data, whichever mirror's gzip wrapper it arrives in.
MNIST = DatasetSpec(
    name="mnist",
    description="MNIST handwritten digits, 28x28 grey, 60,000 train + 10,000 test",
    file_format="idx",
    image_shape=(1, 28, 28),
    classes=DIGIT_CLASSES,
    folders=("mnist", "MNIST/raw"),  # ours, then torchvision's layout
    files=(
        _idx_file(
            "train-images-idx3-ubyte.gz",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            MNIST_MIRRORS,
        ),
        _idx_file(
            "train-labels-idx1-ubyte.gz",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            MNIST_MIRRORS,
        ),
        _idx_file(
            "t10k-images-idx3-ubyte.gz",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            MNIST_MIRRORS,
        ),
        _idx_file(
            "t10k-labels-idx1-ubyte.gz",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            MNIST_MIRRORS,
        ),
    ),
    default_val_size=5000,
    homepage="http://yann.lecun.com/exdb/mnist/",
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    description="Fashion-MNIST clothing images, 28x28 grey, 60,000 train + 10,000 test",
    file_format="idx",
    image_shape=(1, 28, 28),
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    folders=("fashion-mnist", "FashionMNIST/raw"),
    files=(
        _idx_file(
            "train-images-idx3-ubyte.gz",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            FASHION_MNIST_MIRRORS,
        ),
        _idx_file(
            "train-labels-idx1-ubyte.gz",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            FASHION_MNIST_MIRRORS,
        ),
        _idx_file(
            "t10k-images-idx3-ubyte.gz",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            FASHION_MNIST_MIRRORS,
        ),
        _idx_file(
            "t10k-labels-idx1-ubyte.gz",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            FASHION_MNIST_MIRRORS,
        ),
    ),
    default_val_size=5000,
    homepage="https://github.com/zalandoresearch/fashion-mnist",
)

# CIFAR-10 ships as one tarball. Its md5 is the publisher's (cs.toronto.edu/~kriz/cifar.html,
# also torchvision's `tgz_md5`); its sha256 is the `file_hash` Keras checks
# (tensorflow/python/keras/datasets/cifar10.py). The md5 of each extracted file is
# torchvision's (torchvision/datasets/cifar.py). Nobody publishes a sha256 of the extracted
# files, so we record none rather than invent one: `verify` compares the md5 and says so.
CIFAR10_BATCH_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
CIFAR10_IMAGES_PER_OFFICIAL_BATCH = 10_000

CIFAR10 = DatasetSpec(
    name="cifar10",
    description="CIFAR-10 colour photos, 32x32 RGB, 10 classes (official Python batches)",
    file_format="cifar-pickle",
    image_shape=(3, 32, 32),
    classes=(
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
    # `fetch` unpacks the tarball into cifar10/; a copy unpacked straight into the data
    # directory, and the shared folder's cifar10-subset/, are read where they are.
    folders=(
        "cifar10/cifar-10-batches-py",
        "cifar10-subset/cifar-10-batches-py",
        "cifar-10-batches-py",
    ),
    files=(
        DatasetFile("batches.meta", sha256=None, md5="5ff9c542aee3614f3951f8cda6e48888"),
        *(
            DatasetFile(batch, sha256=None, md5=CIFAR10_BATCH_MD5[batch], required=False)
            for batch in CIFAR10_TRAIN_BATCHES
        ),
        DatasetFile("test_batch", sha256=None, md5=CIFAR10_BATCH_MD5["test_batch"]),
    ),
    archive=DatasetFile(
        "cifar-10-python.tar.gz",
        sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        md5="c58f30108f718f92721af3b95e74349a",
        urls=(CIFAR10_ARCHIVE_URL,),
    ),
    default_val_size=0.1,
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    manual_download_hint=(
        "download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
        "and unpack it so that batches.meta, data_batch_1..5 and test_batch are in {folder}/"
    ),
)

# The course's original layout: no public download, so no URLs and no checksums.
MNIST_CSV = DatasetSpec(
    name="mnist-csv",
    description="MNIST in the course's CSV layout (one image of 784 values per row)",
    file_format="csv",
    image_shape=(1, 28, 28),
    classes=DIGIT_CLASSES,
    folders=("mnist-csv",),
    files=(
        DatasetFile("images_train.csv", sha256=None),
        DatasetFile("labels_train.csv", sha256=None),
        DatasetFile("images_test.csv", sha256=None),
        DatasetFile("labels_test.csv", sha256=None),
    ),
    default_val_size=0.1,
    homepage="",
    manual_download_hint=(
        "copy the course's images_train.csv, labels_train.csv, images_test.csv and "
        "labels_test.csv (one image of 784 comma-separated values, or one integer label, per "
        "row) into {folder}/"
    ),
)

DIGITS = DatasetSpec(
    name="digits",
    description="8x8 handwritten digits shipped with scikit-learn, 1,797 images (no download)",
    file_format="embedded",
    image_shape=(1, 8, 8),
    classes=DIGIT_CLASSES,
    default_val_size=180,
    homepage="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
)

# Tiny Shakespeare (Karpathy's char-rnn corpus): one text file, checksummed by its bytes.
# The sha256 is that of the shared dataset folder's copy (1,115,394 characters, 65 distinct),
# which is the char-rnn repository's data/tinyshakespeare/input.txt.
TINYSHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINYSHAKESPEARE = DatasetSpec(
    name="tinyshakespeare",
    description="Tiny Shakespeare, 1,115,394 characters of plays (character-level text)",
    file_format="text",
    folders=("tinyshakespeare",),
    files=(
        DatasetFile(
            "input.txt",
            sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            urls=(TINYSHAKESPEARE_URL,),
        ),
    ),
    default_val_size=0.1,  # the last 10% of the text (dlcc.data.text), never shuffled
    homepage="https://github.com/karpathy/char-rnn",
)

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (DIGITS, MNIST, FASHION_MNIST, CIFAR10, MNIST_CSV, TINYSHAKESPEARE)
}


def dataset_names() -> list[str]:
    """Registry names in display order (the embedded default first)."""
    return list(DATASETS)


def get_spec(name: str) -> DatasetSpec:
    """The registry entry for `name`; a DataError listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(DATASETS)
        raise DataError(
            f"unknown dataset {name!r}: expected one of {known} (see `dlcc data list`)"
        ) from None
