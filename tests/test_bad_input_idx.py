"""Bad IDX data sets: truncated, extra bytes, bad magic, bad dimensions, damaged gzip, huge
declared dimensions, label/image count mismatch; each a one-line InputError naming it, also
through the CLI; and a hypothesis fuzz of the reader."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from bad_input_tools import cli_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinysnn_core.builtin.datasets import MAX_IDX_BYTES, load_mnist_idx, read_idx
from tinysnn_core.errors import InputError, TinySNNError


def idx_bytes(arr: np.ndarray) -> bytes:
    return (struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
            + arr.astype(np.uint8).tobytes())


GOOD = idx_bytes(np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256)


def refused(tmp_path, data: bytes, *, gz: bool = False) -> str:
    path = tmp_path / ("x-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(InputError) as info:
        read_idx(path)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_truncated_and_extra_bytes_are_told_apart(tmp_path, gz):
    assert "truncated (dimensions [3, 28, 28] declare 2352 bytes of data, found 2347)" in refused(
        tmp_path, GOOD[:-5], gz=gz)
    extra = refused(tmp_path, GOOD + b"xy", gz=gz)
    what = extra.split(": ", 1)[1]            # after the path (which names this test)
    assert "extra bytes after the" in what and "truncated" not in what
    if not gz:        # a plain file's size gives the count
        assert extra.startswith(f"{tmp_path / 'x-idx3-ubyte'}: 2 extra bytes")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_bad_header(tmp_path, gz):
    assert "too short to be an IDX file (2 bytes)" in refused(tmp_path, b"\x00\x00", gz=gz)
    assert "not an unsigned-byte IDX file (magic 01000803" in refused(
        tmp_path, b"\x01\x00" + GOOD[2:], gz=gz)
    assert "magic 00000d03" in refused(tmp_path, GOOD[:2] + b"\x0d" + GOOD[3:], gz=gz)
    assert "an IDX file of 0 dimensions" in refused(tmp_path, GOOD[:3] + b"\x00", gz=gz)
    assert "an IDX file of 9 dimensions" in refused(tmp_path, GOOD[:3] + b"\x09" + GOOD[4:],
                                                    gz=gz)
    assert "truncated in the dimensions (2 of 12 bytes)" in refused(tmp_path, GOOD[:6], gz=gz)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_huge_dimensions_are_refused_before_allocating(tmp_path, gz):
    huge = struct.pack(">HBB3I", 0, 8, 3, 2**32 - 1, 2**32 - 1, 2**32 - 1)
    message = refused(tmp_path, huge, gz=gz)
    assert f"more than the {MAX_IDX_BYTES}-byte limit" in message
    assert "[4294967295, 4294967295, 4294967295]" in message


def test_damaged_gzip(tmp_path):
    packed = bytearray(gzip.compress(GOOD))
    packed[-6] ^= 0xFF                        # the CRC-32 of the trailer
    path = tmp_path / "x-idx3-ubyte.gz"
    for data, words in ((bytes(packed), "damaged gzip data (CRC check failed"),
                        (bytes(packed[:len(packed) // 2]), "damaged gzip data (Compressed file "
                                                           "ended"),
                        (GOOD, "damaged gzip data (Not a gzipped file")):
        path.write_bytes(data)
        with pytest.raises(InputError, match=r"damaged gzip data") as info:
            read_idx(path)
        assert words in str(info.value)


def _write_set(directory, n_train=5, n_train_labels=5, image_dims=(28, 28)):
    rng = np.random.default_rng(0)
    files = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *image_dims)),
             "train-labels-idx1-ubyte": np.arange(n_train_labels) % 10,
             "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)),
             "t10k-labels-idx1-ubyte": np.arange(3)}
    for name, arr in files.items():
        (directory / name).write_bytes(idx_bytes(arr))


def test_label_and_image_counts_must_agree(tmp_path):
    _write_set(tmp_path, n_train=5, n_train_labels=4)
    with pytest.raises(InputError, match=r"train-labels-idx1-ubyte: \[4\] labels for the 5 "
                                         r"images of train-images-idx3-ubyte"):
        load_mnist_idx(path=str(tmp_path))


def test_images_must_be_28_by_28(tmp_path):
    _write_set(tmp_path, image_dims=(27, 29))
    with pytest.raises(InputError, match=r"images of dimensions \[5, 27, 29\], expected "
                                         r"\[n, 28, 28\]"):
        load_mnist_idx(path=str(tmp_path))


def test_labels_outside_the_classes(tmp_path):
    _write_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([0, 1, 12])))
    with pytest.raises(InputError, match="test labels outside 0..9"):
        load_mnist_idx(path=str(tmp_path))


def test_the_cli_prints_a_bad_data_set_as_one_line(tmp_path):
    _write_set(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(GOOD[:100])
    line = cli_error("run", "-q", "--dataset", "mnist-idx", "--set",
                     f'dataset.path="{tmp_path}"', "--out", str(tmp_path / "m.tsnn"))
    assert "train-images-idx3-ubyte: truncated" in line


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(
    st.binary(max_size=64),
    st.builds(lambda cut: GOOD[:cut], st.integers(0, len(GOOD))),
    st.builds(lambda pos, bit: GOOD[:pos] + bytes([GOOD[pos] ^ (1 << bit)]) + GOOD[pos + 1:],
              st.integers(0, 19), st.integers(0, 7))),
    st.booleans())
def test_fuzz_the_reader_only_reads_or_refuses(tmp_path_factory, data, gz):
    path = tmp_path_factory.mktemp("idx") / ("f-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    try:
        arr = read_idx(path)
    except TinySNNError as exc:
        assert "\n" not in str(exc)
        return
    # read: exactly the declared dimensions, from exactly the file's bytes
    assert arr.dtype == np.uint8 and idx_bytes(arr) == data
