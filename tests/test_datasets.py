import gzip
import struct

import numpy as np
import pytest

from tinysnn_core.builtin.datasets import load_fashion_mnist, load_mnist_5k, load_mnist_idx, read_idx
from tinysnn_core.data import Dataset, check_images
from tinysnn_core.errors import DatasetMissing, InputError


def test_mnist5k_is_real_shuffled_and_split(mnist5k):
    assert mnist5k.train_images.shape == (4000, 784) and mnist5k.test_images.shape == (1000, 784)
    assert mnist5k.train_images.dtype == np.uint8
    # every class present in both splits, not ordered by class any more
    assert set(np.unique(mnist5k.train_labels)) == set(range(10))
    assert set(np.unique(mnist5k.test_labels)) == set(range(10))
    assert (np.diff(mnist5k.train_labels) != 0).mean() > 0.5
    again = load_mnist_5k(0)
    assert np.array_equal(again.train_images, mnist5k.train_images)
    assert not np.array_equal(load_mnist_5k(1).train_labels, mnist5k.train_labels)


def _write_idx(path, arr, gz):
    header = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_reads_a_directory(tmp_path, gz):
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (5, 28, 28)), gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", np.arange(5), gz)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (3, 28, 28)), gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", np.arange(3), gz)
    data = load_mnist_idx(path=str(tmp_path))
    assert data.train_images.shape == (5, 784) and list(data.test_labels) == [0, 1, 2]


def test_truncated_idx_file_is_refused(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(struct.pack(">HBBI", 0, 8, 1, 10) + b"\x01\x02")
    with pytest.raises(InputError, match="truncated"):
        read_idx(path)


def test_missing_dataset_says_how_to_install(tmp_path):
    with pytest.raises(DatasetMissing, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(path=str(tmp_path))
    with pytest.raises(DatasetMissing, match="path"):
        load_mnist_idx()


def test_fashion_mnist_when_installed():
    try:
        data = load_fashion_mnist()
    except DatasetMissing as exc:
        pytest.skip(f"Debian package dataset-fashion-mnist not installed: {exc}")
    assert data.train_images.shape == (60000, 784) and data.test_images.shape == (10000, 784)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 100)), "shape"),
    (np.full((1, 784), np.nan), "NaN"),
    (np.full((1, 784), 300.0), r"\[0, 255\]"),
    (np.full((1, 784), 0.5), "integer pixel"),
])
def test_bad_images_are_refused(bad, match):
    with pytest.raises(InputError, match=match):
        check_images(bad)


def test_label_mismatch_is_refused():
    with pytest.raises(InputError, match="labels"):
        Dataset("x", np.zeros((3, 784), np.uint8), np.zeros(2), np.zeros((1, 784), np.uint8), [0])
