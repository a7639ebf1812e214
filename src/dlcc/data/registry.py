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
        file_format: ``embedded`` | ``idx`` | ``cifar-pickle`` | ``csv`` | ``text`` |
            ``image-masks``; picks the loader (``text``: one UTF-8 corpus, read by
            `dlcc.data.text.load_text`; ``image-masks``: train/image/ + train/label/ pairs,
            read by `dlcc.data.image_masks.load_image_masks`).
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

# ISBI 2012 EM segmentation challenge: serial-section electron microscopy of the Drosophila
# larva's ventral nerve cord (Cardona et al. 2010), 25 labelled 512x512 8-bit grey images;
# masks 0 = membrane (black), 255 = cell interior. The challenge no longer serves the files,
# so there are no URLs. The sha256 values are of the files' bytes, as listed in the shared
# dataset folder's SHA256SUMS. Its 30 unlabelled test images are not needed: the test split
# is empty and validation holds out 5 training images.
ISBI2012_TRAIN_SHA256 = {
    "train/image/0.png": "12c0ed6f42fc09f512abf6b354f217c950e4c8223b57a0315449b62a14556523",
    "train/image/1.png": "2cfc7ee635a6f85d5faf5c82a71d3a37bf5af4784b554964e3e07193e3ee2166",
    "train/image/2.png": "fe60d8d4f93102666a23a18d718b4b59fab8e616987d11c5072f4a87fac7301f",
    "train/image/3.png": "636d16cbb02f99dda4c9fb6db98dfba066142afa981ffdcfaf54453982e8250c",
    "train/image/4.png": "991fb3a8e4abc73da1d6159ca28fa4397f0a8351f30a8ba3669c86414d2ce239",
    "train/image/5.png": "7e9d9fb787664336d6f2cd68b23986f04527e7f8f494410983b4d70c6de1de3b",
    "train/image/6.png": "7c0a87933ffc72f4ff02f5996d9c3f69fe9a0b5277507415743ad8afb5e5d308",
    "train/image/7.png": "19f2c25716107d41008c83ba8a814ae47a090e00dea766dde38dce1f00899270",
    "train/image/8.png": "a8979e4abd1a10af9ca75e614d97875659adbd8ee3a68eba483bf556cfe3023d",
    "train/image/9.png": "730ebf435ab0f6e625d342552ad03736799fd660d0c6af744674c61a46aa082a",
    "train/image/10.png": "7c3717bcd48c4b7e5c878d7f0b809b8687a4e6fac471f3863de320a82ee72b8a",
    "train/image/11.png": "dd7857b25ca1417f87c282750e22c50947f75e81fa032d4e0c96b902c9dc9757",
    "train/image/12.png": "9f8eff9239bb764d51524a998387a7babcff9f62161804651b030b81aabd5ab8",
    "train/image/13.png": "377e5cdbcd7f0ac7336f482fc7ead7446887863f26769b3841fe98aadca77dad",
    "train/image/14.png": "f50d2d77acd2df564c5f0f40b1b24cd929f5944460aa4cd90c422cb5cef33a59",
    "train/image/15.png": "3e13fdea09accc14f46fb2f3ffa1e882cdd9c53b28a6842c4c10229692c7d1a4",
    "train/image/16.png": "ffc951c12450f94129582c16fd0d4b165c4a31469b0c42d966f07c183d3132e2",
    "train/image/17.png": "0f4f7e8e0619e4c7d517ac68d3789a3b6248253747717eac418bb7d32bef4de3",
    "train/image/18.png": "1bb1edd50595861743d14e1955dfa5d3c9395fb87563eca6dc81433bf9df49de",
    "train/image/19.png": "999b55633f8d7082add72082656e9532c5c3d97203b376eb317f09ba88a5a5b7",
    "train/image/20.png": "9153d14bfd15955fab576ea23281c4f23104b45dceed6e03e0b254607f50a1b2",
    "train/image/21.png": "9ad07cf4f67984f17a08aa63e6d92d395ce55f5132e6ff4fa6d95d6890ea7f97",
    "train/image/22.png": "6278609b4c42a7cb43212de0e2e2ceded758bafe0856fb56214ce658a61668e4",
    "train/image/23.png": "9ef4e9fbc838b9791af83a36918d729a0ea2e90ebc71c4a3c4554059f9379756",
    "train/image/24.png": "f0f917b9c3e9c96d16ea287aff9b05ecf4de88bc61d478e4aefcb64932fba70c",
    "train/label/0.png": "13b67edd7607a1f284c09170c96a27d38422b0ffaf88024ea5b689acb5e1b4b0",
    "train/label/1.png": "cff60a00de2901e67165c91d7708d784e4c5bcc9d1c8c677922c905d63bbc3d1",
    "train/label/2.png": "a578af998c017f56763b81941c4dc612dde5731809b2cea0e8ebc37aecb84dbb",
    "train/label/3.png": "c8ae3b843fed02e09411a24c10850160922c331041b17c2674025f05a99b8834",
    "train/label/4.png": "a2f19c01b5d982a97923a0d29e64127a05e3f496731480ac9d9d302b5427f7ff",
    "train/label/5.png": "2dd5779118f6f4d87f88ec112f1cea20663b50acb8c748b0db1f23eda82b5118",
    "train/label/6.png": "2b0984e9f31fb41d4c5f4a754a3e080036b7321a0cbd9591a62010d20a574ce7",
    "train/label/7.png": "2ebc8c835999589bfd7d80d81f83d24e5c41138362b0faafef0f009e1ce82144",
    "train/label/8.png": "db979010ca4fbdb38c8b32d455aed0da90d598153f2a0046b63d02a6efa32b9e",
    "train/label/9.png": "8ee6c79adbb740595c4d61776e065e7164c00d52c7dd7562b5279041e7f3567b",
    "train/label/10.png": "b0156cc8186b0ee521927ac95645b406a42d27564607a6fea3a59c34add78f7c",
    "train/label/11.png": "e47b3aa0cfb3106476af1666e631d45bd16dbf2aff88260ee65d16e4134332db",
    "train/label/12.png": "85a7a899c0b72b81633ad122887ba5161d650385d7775a5b3074eb00131b3620",
    "train/label/13.png": "88549c22fd647312d6b37e17d33e90800d347d60ccb1156a8dde5e67394f9f3d",
    "train/label/14.png": "bcd775017eb4fdbdfe7ad6cc6420b2f16aa9d0576894d08370edcf564b46680a",
    "train/label/15.png": "59a854887b504ff00a5b4b93b2299bbc0bf0cbe54dea58d2b31969229b28b369",
    "train/label/16.png": "b34eb88cdc3313a6f4190f5753465df7f69d8f3c243a5c25427b1b99ecfe2499",
    "train/label/17.png": "4fa076cbeb744803d987dc46cf308dc3026408e7a5188838e30e25fe3ea67dbe",
    "train/label/18.png": "bd009dda57f204804732f592ed1d41ba18961d83c492413fe71548efa4a288d9",
    "train/label/19.png": "bf38407c55b6033c1677230228ecb100a11294aa74a7b92e5edfdc4abadcfef9",
    "train/label/20.png": "7af7296f2e892866669d4e4f9c0d4178987e6ec6e7d0751ec238d1bbe2da9c55",
    "train/label/21.png": "772c722acb2eac01769b53fa5037a3d62745e53102398bf9b2202df605cadda4",
    "train/label/22.png": "b19f5533ec24077a2395a085fe53af75dd350ef03798c4ff40ba9ebecb2ee0ad",
    "train/label/23.png": "2d8f1df5c9ee83e59eb2d709eb153b0570f12e726690f586154b01b0a88bb540",
    "train/label/24.png": "6ab02d922b5c937ecfe2a479be87a5d3e5ef950dc48da09d31f37b47d899ca9c",
}

ISBI2012_HOMEPAGE = "https://imagej.net/events/isbi-2012-segmentation-challenge"
ISBI2012_EM = DatasetSpec(
    name="isbi2012_em",
    description="ISBI 2012 EM membrane segmentation, 25 labelled 512x512 grey images + masks",
    file_format="image-masks",
    image_shape=(1, 512, 512),
    classes=("membrane", "cell"),  # mask 0 (black) = membrane, 255 = cell interior
    folders=("isbi2012-em",),
    files=tuple(DatasetFile(name, sha256=sha) for name, sha in ISBI2012_TRAIN_SHA256.items()),
    default_val_size=5,
    homepage=ISBI2012_HOMEPAGE,
    manual_download_hint=(
        f"get the ISBI 2012 training volume and labels (from {ISBI2012_HOMEPAGE}, or a copy "
        "of them) as single-page PNGs, and put them in {folder}/train/image/N.png and "
        "{folder}/train/label/N.png for N = 0..24"
    ),
)

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (DIGITS, MNIST, FASHION_MNIST, CIFAR10, MNIST_CSV, TINYSHAKESPEARE, ISBI2012_EM)
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
