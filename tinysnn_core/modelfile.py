"""The model file: one self-checking file, no pickle.

Layout (all integers little-endian)::

    8 bytes   magic  b"TSNNMDL\\x00"
    4 bytes   format version (uint32)
    8 bytes   header length H (uint64)
    H bytes   header, UTF-8 JSON: tinysnn version, the full resolved config, the topology's
              scalars, op counts, training progress, metrics and the array table
              [{name, dtype, shape, offset, nbytes}] (offsets relative to the data block)
    ...       data block: the arrays' raw bytes
    32 bytes  SHA-256 of everything before it

Loading checks the magic, the version (a newer file is refused with a message), the checksum
(truncation, corruption and tampering all fail it), the array table (known dtypes, bounds) and
that the shapes agree with the config. Writes go to a temporary file that is then renamed, so an
interrupted save never leaves a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np

from . import __version__
from .config import Config
from .errors import ConfigError, ModelFileError, TinySNNError
from .network import Network, Topology
from .ops import OpCounts

MAGIC = b"TSNNMDL\x00"
FORMAT_VERSION = 1
ALLOWED_DTYPES = {"<f8", "<f4", "<i8", "<i4", "<i2", "|i1", "<u4", "<u2", "|u1", "|b1"}
_PREFIX = struct.Struct("<8sIQ")


def _encode(header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    table, blobs, offset = [], [], 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        raw = arr.tobytes()
        table.append({"name": name, "dtype": arr.dtype.str, "shape": list(arr.shape),
                      "offset": offset, "nbytes": len(raw)})
        blobs.append(raw)
        offset += len(raw)
    header = dict(header, arrays=table)
    head = json.dumps(header, sort_keys=True).encode()
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(head)) + head + b"".join(blobs)
    return body + hashlib.sha256(body).digest()


def write_file(path, header: dict, arrays: dict[str, np.ndarray]) -> None:
    """Atomically write a model-format file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _encode(header, arrays)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_file(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a model-format file; returns (header, arrays)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} does not exist") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a directory, not a model file") from None
    if len(data) < _PREFIX.size + 32 or data[:8] != MAGIC:
        raise ModelFileError(f"{path} is not a tinySNN model file (bad magic or too short)")
    _, version, head_len = _PREFIX.unpack_from(data)
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path} has model format version {version}, newer than this "
                             f"tinysnn {__version__} reads ({FORMAT_VERSION}); upgrade tinysnn")
    if version < 1:
        raise ModelFileError(f"{path} has an invalid format version {version}")
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise ModelFileError(f"{path} failed its checksum: the file is truncated, corrupt or "
                             "was modified")
    head_end = _PREFIX.size + head_len
    if head_end > len(body):
        raise ModelFileError(f"{path}: header length {head_len} runs past the end of the file")
    try:
        header = json.loads(body[_PREFIX.size:head_end].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: unreadable header ({exc})") from None
    block = body[head_end:]
    arrays = {}
    for entry in header.get("arrays", []):
        try:
            name, dtype = entry["name"], entry["dtype"]
            shape, offset, nbytes = tuple(entry["shape"]), entry["offset"], entry["nbytes"]
        except (KeyError, TypeError):
            raise ModelFileError(f"{path}: malformed array table entry {entry!r}") from None
        if dtype not in ALLOWED_DTYPES:
            raise ModelFileError(f"{path}: array {name!r} has unsupported dtype {dtype!r}")
        count = int(np.prod(shape)) if shape else 1
        if (offset < 0 or nbytes != count * np.dtype(dtype).itemsize
                or offset + nbytes > len(block)):
            raise ModelFileError(f"{path}: array {name!r} does not fit the file's data block")
        arrays[name] = np.frombuffer(block, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
    return header, arrays


# -- networks -----------------------------------------------------------------------------------
TOPOLOGY_SCALARS = ("inhibitory_layer", "w_exc_inh", "w_lateral", "wmin", "wmax")


def save_network(net: Network, path, *, metrics: dict | None = None, extra: dict | None = None) -> None:
    header = {
        "kind": "tinysnn-network",
        "tinysnn_version": __version__,
        "config": net.config.resolved().to_dict(),
        "topology": {k: getattr(net.topology, k) for k in TOPOLOGY_SCALARS},
        "ops": {phase: ops.as_dict() for phase, ops in net.ops.items()},
        "progress": net.progress,
        "metrics": metrics if metrics is not None else getattr(net, "metrics", {}),
        "quantized": net.quant is not None,
    }
    if extra:
        header.update(extra)
    arrays = {"w": net.w, "theta": net.theta}
    if net.assignments is not None:
        arrays["assignments"] = net.assignments
        arrays["proportions"] = net.proportions
    write_file(path, header, arrays)


def load_network(path) -> Network:
    header, arrays = read_file(path)
    if header.get("kind") != "tinysnn-network":
        raise ModelFileError(f"{path} holds a {header.get('kind')!r}, not a tinysnn network")
    try:
        config = Config.from_dict(header["config"])
        topo = header["topology"]
        w, theta = arrays["w"], arrays["theta"]
    except (KeyError, TypeError, ConfigError) as exc:
        raise ModelFileError(f"{path}: incomplete or invalid model ({exc})") from None
    n = config.n_neurons
    if w.ndim != 2 or w.shape[1] != n or theta.shape != (n,):
        raise ModelFileError(f"{path}: weights {list(w.shape)} / theta {list(theta.shape)} do not "
                             f"match n_neurons = {n}")
    for name in ("assignments", "proportions"):
        if name in arrays and arrays[name].shape[0] != n:
            raise ModelFileError(f"{path}: {name} has {arrays[name].shape[0]} rows, expected {n}")
    if not (np.isfinite(w).all() and np.isfinite(theta).all()):
        raise ModelFileError(f"{path}: weights or thresholds contain NaN or infinity")
    try:
        topology = Topology(np.empty((0, 0)), bool(topo["inhibitory_layer"]),
                            float(topo["w_exc_inh"]), float(topo["w_lateral"]),
                            float(topo["wmin"]), float(topo["wmax"]))
        net = Network(config, w.astype(np.float64), theta.astype(np.float64), topology,
                      arrays.get("assignments"), arrays.get("proportions"),
                      {p: OpCounts.from_dict(o) for p, o in header.get("ops", {}).items()},
                      dict(header.get("progress", {})))
    except TinySNNError as exc:
        raise ModelFileError(f"{path}: the model needs a plugin that is not available: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: invalid model ({exc})") from None
    net.metrics = dict(header.get("metrics", {}))
    net.header = header
    if header.get("quantized"):
        _requantize(net)
    return net


def _requantize(net) -> None:
    """Re-attach the quantization runtime (and the rounded constants) of a quantized model; the
    stored parameters are on their grids already, so this changes no stored value."""
    from .train import prepare_quantized, quantizer_for

    quantizer, plan = quantizer_for(net.config)
    try:
        prepare_quantized(quantizer, net, plan)
    except TinySNNError as exc:
        raise ModelFileError(f"invalid quantization settings in the model: {exc}") from None
