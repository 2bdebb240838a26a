import struct

import numpy as np
import pytest

from tinysnn_core.errors import ModelFileError
from tinysnn_core.modelfile import FORMAT_VERSION, MAGIC, load_network, read_file, save_network, write_file
from tinysnn_core.network import Network


@pytest.fixture
def saved(tmp_path, small_config):
    net = Network.build(small_config())
    net.assignments = np.arange(40) % 10
    net.proportions = np.eye(10)[net.assignments]
    path = tmp_path / "m.tsnn"
    save_network(net, path, metrics={"accuracy": 0.5})
    return net, path


def test_round_trip(saved):
    net, path = saved
    back = load_network(path)
    assert np.array_equal(back.w, net.w) and np.array_equal(back.assignments, net.assignments)
    assert back.config.resolved().to_dict() == net.config.resolved().to_dict()
    assert back.metrics["accuracy"] == 0.5
    assert b"pickle" not in path.read_bytes()[:8]


def test_truncated_file_is_refused(saved):
    _, path = saved
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFileError):
            load_network(path)


def test_flipped_byte_fails_the_checksum(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        load_network(path)


def test_newer_format_is_refused_with_a_message(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 8, FORMAT_VERSION + 1)
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="newer"):
        load_network(path)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "x.tsnn"
    path.write_bytes(b"hello world, not a model" * 4)
    with pytest.raises(ModelFileError, match="not a tinySNN model"):
        load_network(path)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_network(tmp_path / "missing.tsnn")


def test_tampered_but_rechecksummed_shapes_are_refused(tmp_path, saved):
    header, arrays = read_file(saved[1])
    arrays["theta"] = arrays["theta"][:5]
    header.pop("arrays")
    write_file(tmp_path / "bad.tsnn", header, arrays)
    with pytest.raises(ModelFileError, match="do not match"):
        load_network(tmp_path / "bad.tsnn")
    arrays = dict(read_file(saved[1])[1])
    arrays["w"] = arrays["w"].copy()
    arrays["w"][0, 0] = np.nan
    write_file(tmp_path / "nan.tsnn", header, arrays)
    with pytest.raises(ModelFileError, match="NaN"):
        load_network(tmp_path / "nan.tsnn")


def test_magic_is_stable():
    assert MAGIC == b"TSNNMDL\x00"
