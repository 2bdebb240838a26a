"""Damaged and crafted model files, for robustness tests (needs hypothesis).

``model_file_mutations(data)`` is a hypothesis strategy of files derived from one valid model
file ``data``: bit flips and truncations (which the checksum must catch), and edits that keep the
checksum valid, so that only the reader's own checks stand between them and the loader: any
header field (every path into the JSON header, the array table included) replaced by a hostile
JSON text, the whole header replaced, any array element overwritten, and the prefix's version
and header length changed. ``load_outcome`` loads one case under a time limit and says how it
ended; ``systematic_mutations(data)`` lists every header path with every hostile value.
``tests/test_bad_input_modelfile.py`` runs a few hundred cases, ``scripts/fuzz_modelfile.py`` the
systematic sweep and a campaign.
"""

from __future__ import annotations

import hashlib
import json
import signal
import traceback
from contextlib import contextmanager

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - the fuzz needs the test extra
    raise ImportError("tinysnn_core.fuzzing needs hypothesis: pip install 'tinysnn[test]'") from exc

from .errors import TinySNNError
from .modelfile import _PREFIX, FORMAT_VERSION, MAGIC

#: JSON texts that once broke a reader: deep nesting, long integers, huge or fractional sizes,
#: wrong types; each replaces one header value as raw text
HOSTILE_JSON = (
    "null", "true", "false", "0", "-1", "1.5", "1e9", "1000000000", "1e999", "-1e999", "NaN",
    "Infinity", '""', '"x"', "[]", "[1]", "[-1]", "[1.5]", "[true]", "[4294967296, 4294967296]",
    "[9223372036854775807, 2]", "{}", '{"a": 1}', "[" * 40 + "1" + "]" * 40, "1" * 5000,
    "-" + "9" * 30, "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000,
    '"' + "A" * 10_000 + '"', "18446744073709551616", "2147483648", "65536", "100000",
)
#: raw values written over one array element (then cast to the array's dtype)
HOSTILE_NUMBERS = (np.nan, np.inf, -np.inf, 1e308, -1e308, -1.0, 0.0, 2.0**31, 2.0**63, 1e9, 255.0)

_TOKEN = "\u0000fuzz\u0000"


def split(data: bytes) -> tuple[bytes, bytes]:
    """(header JSON bytes, data block) of a valid model file."""
    _, _, head_len = _PREFIX.unpack_from(data)
    return data[_PREFIX.size:_PREFIX.size + head_len], data[_PREFIX.size + head_len:-32]


def assemble(head: bytes, block: bytes, *, version: int = FORMAT_VERSION,
             head_len: int | None = None) -> bytes:
    """A model file around ``head`` (JSON bytes) and ``block``, with a valid checksum."""
    body = _PREFIX.pack(MAGIC, version, len(head) if head_len is None else head_len)
    body += head + block
    return body + hashlib.sha256(body).digest()


def header_paths(value, path=()) -> list[tuple]:
    """Every path into a JSON value (the root included), in a fixed order."""
    out = [path]
    if isinstance(value, dict):
        for key in sorted(value):
            out += header_paths(value[key], path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += header_paths(item, path + (i,))
    return out


def with_raw_value(header: dict, path: tuple, raw: str) -> bytes:
    """The header's JSON with the value at ``path`` replaced by the JSON text ``raw``."""
    if not path:
        return raw.encode()
    copy = json.loads(json.dumps(header))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = _TOKEN
    return json.dumps(copy, sort_keys=True).replace(json.dumps(_TOKEN), raw).encode()


def with_array_value(header: dict, block: bytes, name: str, index: int, value: float) -> bytes:
    """``block`` with element ``index`` of array ``name`` overwritten by ``value`` (cast to
    the array's dtype, wrapping as a C cast would)."""
    entry = next(e for e in header["arrays"] if e["name"] == name)
    dtype = np.dtype(entry["dtype"])
    count = entry["nbytes"] // dtype.itemsize
    if count == 0:
        return block
    with np.errstate(invalid="ignore", over="ignore"):
        item = np.array([value]).astype(dtype).tobytes()
    at = entry["offset"] + (index % count) * dtype.itemsize
    return block[:at] + item + block[at + dtype.itemsize:]


def model_file_mutations(data: bytes):
    """A hypothesis strategy of (label, file bytes) derived from the valid model file ``data``."""
    head, block = split(data)
    header = json.loads(head)
    paths = header_paths(header)
    arrays = [e["name"] for e in header["arrays"]]

    def flip(pos, bit):
        out = bytearray(data)
        out[pos % len(out)] ^= 1 << bit
        return f"bit flip at {pos % len(out)}", bytes(out)

    def cut(n):
        return f"truncated to {n % len(data)} bytes", data[:n % len(data)]

    def edit_field(path, raw):
        return (f"header {list(path)} = {raw[:24]!r}", assemble(with_raw_value(header, path, raw),
                                                                  block))

    def edit_array(name, index, value):
        return (f"array {name}[{index}] = {value!r}",
                assemble(head, with_array_value(header, block, name, index, value)))

    def edit_prefix(version, head_len):
        return (f"version {version}, header length {head_len}",
                assemble(head, block, version=version, head_len=head_len))

    raw_json = st.one_of(st.sampled_from(HOSTILE_JSON),
                         st.integers(-2**70, 2**70).map(str),
                         st.floats(allow_nan=False, allow_infinity=False).map(repr),
                         st.text(max_size=20).map(json.dumps))
    return st.one_of(
        st.builds(flip, st.integers(0, len(data) - 1), st.integers(0, 7)),
        st.builds(cut, st.integers(0, len(data) - 1)),
        st.builds(edit_field, st.sampled_from(paths), raw_json),
        st.builds(edit_array, st.sampled_from(arrays), st.integers(0, 2**20),
                  st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.floats())),
        st.builds(edit_prefix, st.sampled_from([0, 1, 2, 2**32 - 1]),
                  st.sampled_from([0, 1, len(head) - 1, len(head) + 1, 2**63, 2**64 - 1])),
    )


def systematic_mutations(data: bytes):
    """Every header path with every ``HOSTILE_JSON`` text, and every array's first, middle and
    last element with every ``HOSTILE_NUMBERS`` value: (label, file bytes), checksums valid."""
    head, block = split(data)
    header = json.loads(head)
    for path in header_paths(header):
        for raw in HOSTILE_JSON:
            yield f"header {list(path)} = {raw[:24]!r}", assemble(with_raw_value(header, path, raw),
                                                                  block)
    for entry in header["arrays"]:
        count = entry["nbytes"] // np.dtype(entry["dtype"]).itemsize
        for index in sorted({0, count // 2, max(count - 1, 0)}):
            for value in HOSTILE_NUMBERS:
                yield (f"array {entry['name']}[{index}] = {value!r}",
                       assemble(head, with_array_value(header, block, entry["name"], index, value)))


class Hang(Exception):
    """A load ran past its time limit."""


@contextmanager
def time_limit(seconds: float):
    """Raise ``Hang`` in the main thread after ``seconds`` (SIGALRM; POSIX only)."""
    def on_alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load_outcome(path, seconds: float = 10.0) -> tuple[str, str]:
    """Load the model file at ``path``: ("loaded", ""), ("refused", the one-line message),
    ("hang", "") or ("traceback", the traceback)."""
    from .modelfile import load_network

    try:
        with time_limit(seconds):
            load_network(path)
    except Hang:
        return "hang", ""
    except TinySNNError as exc:
        return "refused", str(exc)
    except Exception:            # noqa: BLE001 - any other exception is what a fuzz looks for
        return "traceback", traceback.format_exc()
    return "loaded", ""


def sample_model_file(path, *, quantized: bool = True) -> bytes:
    """Write (and return the bytes of) a small valid model file to mutate: 10 neurons with
    label assignments, post-training quantized weights and potential (``quantized``)."""
    from .config import Config
    from .modelfile import save_network
    from .network import Network
    from .quant import prepare_quantized, quantizer_for

    settings = ["n_neurons=10", "train.time_steps=20"]
    if quantized:
        settings += ["quant.scheme=ptq", "quant.groups.weights.format=uQ0.4",
                     "quant.groups.potential.format=sQ7.8"]
    net = Network.build(Config().with_overrides(settings))
    net.assignments = np.arange(10) % 10
    net.proportions = np.eye(10)[net.assignments]
    quantizer, plan = quantizer_for(net.config)
    if quantizer is not None:
        net = prepare_quantized(quantizer, net, plan)
    save_network(net, path, metrics={"accuracy": 0.5, "n_test": 10})
    with open(path, "rb") as fh:
        return fh.read()


def sparse_model_file(path, base: bytes, array_bytes: int) -> None:
    """Write a model file whose weights ``w`` declare ``array_bytes`` bytes (float64, [784, n])
    of zeros, kept as a hole of a sparse file, with a valid checksum: a huge model that costs no
    disk, for the bounded-memory checks."""
    head, block = split(base)
    header = json.loads(head)
    n = array_bytes // (784 * 8)
    for entry in header["arrays"]:
        if entry["name"] == "w":
            entry.update(shape=[784, n], offset=len(block), nbytes=784 * n * 8)
    head = json.dumps(header, sort_keys=True).encode()
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(head)) + head + block
    digest = hashlib.sha256(body)
    zeros, left = bytes(1 << 20), 784 * n * 8
    while left:
        digest.update(zeros[:min(left, len(zeros))])
        left -= min(left, len(zeros))
    with open(path, "wb") as fh:
        fh.write(body)
        fh.seek(len(body) + 784 * n * 8)
        fh.write(digest.digest())
