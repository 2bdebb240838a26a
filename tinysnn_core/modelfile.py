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

Loading checks the magic, then the checksum, streamed (truncation, corruption and tampering all
fail it, and random bytes after the magic read as a damaged file), then the version (a newer file
is refused with a message), the header (bounded in size, nesting depth and integer digits; every
field type-checked), the array table (known dtypes, shapes of non-negative integers consistent
with nbytes, every array inside the file) and that the shapes agree with the config; only then
are the arrays read, each straight into its own buffer, so memory stays bounded by what the file
declares and was checked. Writes go to a temporary file that is then renamed, so an interrupted
save never leaves a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .config import PLUGIN_SLOTS, Config
from .errors import ConfigError, ModelFileError, TinySNNError, UnknownPluginError
from .network import Network, Topology
from .ops import OpCounts
from .quant import QuantPlan, prepare_quantized, quantizer_for
from .registry import get_registry

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


#: bounds of what a model file may declare, checked before anything is allocated: a real
#: header is about 10 KiB, nested 5 deep, its integers are op counts (under 20 digits)
MAX_HEADER_BYTES = 4 << 20
MAX_HEADER_DEPTH = 32
MAX_INT_DIGITS = 24
MAX_ARRAYS = 64
MAX_NDIM = 8
_CHUNK = 1 << 20            # bytes hashed at a time: the checksum never holds the whole file


@dataclass(frozen=True)
class ArrayEntry:
    """One row of a file's array table, checked: where the array lies in the data block."""

    name: str
    dtype: np.dtype
    shape: tuple
    offset: int
    nbytes: int


class _HeaderLimit(Exception):
    """A header over one of the bounds above (raised from inside the JSON parser)."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _HeaderLimit(f"an integer of {len(text.lstrip('-'))} digits (at most "
                           f"{MAX_INT_DIGITS})")
    return int(text)


def _depth(value) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _parse_header(raw: bytes, path) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"), parse_int=_parse_int)
    except _HeaderLimit as exc:
        raise ModelFileError(f"{path}: the header holds {exc}") from None
    except RecursionError:
        raise ModelFileError(f"{path}: the header is nested deeper than {MAX_HEADER_DEPTH} "
                             "levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: unreadable header ({exc})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the header is a JSON {type(header).__name__}, not an "
                             "object")
    if _depth(header) > MAX_HEADER_DEPTH:
        raise ModelFileError(f"{path}: the header is nested deeper than {MAX_HEADER_DEPTH} "
                             "levels")
    return header


def _is_count(value) -> bool:
    """A non-negative JSON integer (JSON true is a bool, not a count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _array_table(header: dict, data_size: int, path) -> list[ArrayEntry]:
    """The checked array table: known dtypes, shapes of non-negative integers whose product
    matches nbytes, every array inside the data block, the total within the file."""
    table = header.get("arrays", [])
    if not isinstance(table, list) or len(table) > MAX_ARRAYS:
        raise ModelFileError(f"{path}: the array table must be a list of at most {MAX_ARRAYS} "
                             "entries")
    entries, names, total = [], set(), 0
    for row in table:
        if not isinstance(row, dict) or set(row) != {"name", "dtype", "shape", "offset",
                                                     "nbytes"}:
            raise ModelFileError(f"{path}: malformed array table entry {_short(row)} (needs "
                                 "exactly name, dtype, shape, offset, nbytes)")
        name, dtype, shape = row["name"], row["dtype"], row["shape"]
        if not isinstance(name, str) or name in names:
            raise ModelFileError(f"{path}: array name {_short(name)} is not a string or repeats")
        names.add(name)
        if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
            raise ModelFileError(f"{path}: array {name!r} has unsupported dtype {_short(dtype)}; "
                                 f"known: {', '.join(sorted(ALLOWED_DTYPES))}")
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(_is_count(d) for d in shape)):
            raise ModelFileError(f"{path}: array {name!r} has shape {_short(shape)}; a shape is "
                                 f"a list of at most {MAX_NDIM} non-negative integers")
        if not _is_count(row["offset"]) or not _is_count(row["nbytes"]):
            raise ModelFileError(f"{path}: array {name!r} has offset {_short(row['offset'])} / "
                                 f"nbytes {_short(row['nbytes'])}; both must be non-negative "
                                 "integers")
        itemsize = np.dtype(dtype).itemsize
        expected = math.prod(shape) * itemsize          # Python integers: no overflow
        if row["nbytes"] != expected:
            raise ModelFileError(f"{path}: array {name!r} of shape {shape} and dtype {dtype} "
                                 f"takes {expected} bytes, its table entry says {row['nbytes']}")
        if row["offset"] + expected > data_size:
            raise ModelFileError(f"{path}: array {name!r} ({expected} bytes at offset "
                                 f"{row['offset']}) runs past the data block ({data_size} bytes)")
        total += expected
        entries.append(ArrayEntry(name, np.dtype(dtype), tuple(shape), row["offset"], expected))
    if total > data_size:
        raise ModelFileError(f"{path}: the arrays declare {total} bytes, more than the "
                             f"{data_size}-byte data block")
    return entries


def _short(value, limit: int = 60) -> str:
    """``repr(value)`` cut short: a message quotes crafted input without echoing all of it."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _open(path: Path):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} does not exist") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a directory, not a model file") from None
    except OSError as exc:
        raise ModelFileError(f"cannot open model file {path}: {exc.strerror}") from None


def _check_digest(fh, size: int, path) -> None:
    """The SHA-256 of everything before the last 32 bytes, read in chunks."""
    fh.seek(0)
    digest, left = hashlib.sha256(), size - 32
    while left:
        chunk = fh.read(min(_CHUNK, left))
        if not chunk:
            raise ModelFileError(f"{path} shrank while it was read")
        digest.update(chunk)
        left -= len(chunk)
    if digest.digest() != fh.read(32):
        raise ModelFileError(f"{path} failed its checksum: the file is truncated, corrupt or "
                             "was modified")


def read_file(path, check=None) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a model-format file; returns (header, arrays).

    In this order, so that nothing is allocated from an unchecked size: the magic, the checksum
    (streamed), the version, the header (bounded JSON), the array table; then ``check(header,
    table)`` (if given) may refuse the file from its header; only then is each array read,
    straight into its own buffer."""
    path = Path(path)
    with _open(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        prefix = fh.read(_PREFIX.size)
        if size < _PREFIX.size + 32 or prefix[:8] != MAGIC:
            raise ModelFileError(f"{path} is not a tinySNN model file (bad magic or too short)")
        _check_digest(fh, size, path)
        _, version, head_len = _PREFIX.unpack(prefix)
        if version > FORMAT_VERSION:
            raise ModelFileError(f"{path} has model format version {version}, newer than this "
                                 f"tinysnn {__version__} reads ({FORMAT_VERSION}); upgrade tinysnn")
        if version < 1:
            raise ModelFileError(f"{path} has an invalid format version {version}")
        body_size = size - 32
        if head_len > MAX_HEADER_BYTES or _PREFIX.size + head_len > body_size:
            raise ModelFileError(f"{path}: header length {head_len} exceeds the file or the "
                                 f"{MAX_HEADER_BYTES}-byte limit")
        fh.seek(_PREFIX.size)
        header = _parse_header(fh.read(head_len), path)
        data_start = _PREFIX.size + head_len
        table = _array_table(header, body_size - data_start, path)
        if check is not None:
            check(header, table)
        arrays = {}
        for entry in table:
            try:
                arr = np.empty(entry.shape, dtype=entry.dtype)
            except MemoryError:
                raise ModelFileError(f"{path}: array {entry.name!r} needs {entry.nbytes} bytes, "
                                     "more than this process can allocate") from None
            fh.seek(data_start + entry.offset)
            if fh.readinto(arr.reshape(-1).view(np.uint8)) != entry.nbytes:
                raise ModelFileError(f"{path} shrank while it was read")
            arrays[entry.name] = arr
    return header, arrays


# -- networks -----------------------------------------------------------------------------------
TOPOLOGY_SCALARS = ("inhibitory_layer", "w_exc_inh", "w_lateral", "wmin", "wmax")


def save_network(net: Network, path: str | Path, *, metrics: dict | None = None,
                 extra: dict | None = None) -> None:
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


def load_network(path: str | Path) -> Network:
    """A saved network, every header field and array checked (one clear error naming the
    problem otherwise)."""
    parsed = {}

    def check(header, table):           # from the header alone, before any array is read
        parsed["config"] = _check_network_header(header, table, path)

    header, arrays = read_file(path, check)
    config = parsed["config"]
    w, theta = arrays["w"], arrays["theta"]
    if not (np.isfinite(w).all() and np.isfinite(theta).all()):
        raise ModelFileError(f"{path}: weights or thresholds contain NaN or infinity")
    topo = header["topology"]
    if w.size and (w.min() < topo["wmin"] or w.max() > topo["wmax"]):   # training clamps them
        raise ModelFileError(f"{path}: weights in [{w.min():g}, {w.max():g}], outside the "
                             f"topology's [{topo['wmin']:g}, {topo['wmax']:g}]")
    if "proportions" in arrays:
        n_classes = arrays["proportions"].shape[1]
        if not ((arrays["proportions"] >= 0) & (arrays["proportions"] <= 1)).all():
            raise ModelFileError(f"{path}: proportions outside [0, 1] (or NaN)")
        a = arrays["assignments"]
        if a.size and (a.min() < -1 or a.max() >= n_classes):
            raise ModelFileError(f"{path}: assignments outside -1..{n_classes - 1}")
    try:
        topology = Topology(np.empty((0, 0)), topo["inhibitory_layer"], float(topo["w_exc_inh"]),
                            float(topo["w_lateral"]), float(topo["wmin"]), float(topo["wmax"]))
        net = Network(config, np.asarray(w, dtype=np.float64), np.asarray(theta, dtype=np.float64),
                      topology, arrays.get("assignments"), arrays.get("proportions"),
                      {p: OpCounts.from_dict(o) for p, o in header.get("ops", {}).items()},
                      dict(header.get("progress", {})))
    except (TinySNNError, ArithmeticError, ValueError, TypeError, KeyError) as exc:
        # a plugin's constructor refusing (or failing on) the stored parameters
        raise ModelFileError(f"{path}: invalid model: {exc}") from None
    net.metrics = dict(header.get("metrics", {}))
    net.header = header
    if header.get("quantized", False):
        try:
            quantizer, plan = quantizer_for(net.config)
            prepare_quantized(quantizer, net, plan)   # re-attaches the runtime, changes no value
        except TinySNNError as exc:
            raise ModelFileError(f"{path}: invalid quantization settings in the model: "
                                 f"{exc}") from None
    return net


_JSON_TYPES = {dict: "object", list: "list", bool: "true or false", str: "string"}
#: the header fields of a network file and their JSON types
_NETWORK_FIELDS = {"config": dict, "topology": dict, "ops": dict, "progress": dict,
                   "metrics": dict, "quantized": bool, "tinysnn_version": str, "kind": str}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_network_header(header: dict, table: list[ArrayEntry], path) -> Config:
    """Every field of a network file's header and its array table, before any array is read;
    returns the model's configuration."""
    if header.get("kind") != "tinysnn-network":
        raise ModelFileError(f"{path} holds a {_short(header.get('kind'))}, not a tinysnn network")
    missing = [k for k in ("config", "topology") if k not in header]
    if missing:
        raise ModelFileError(f"{path}: the header lacks {' and '.join(missing)}")
    for key, kind in _NETWORK_FIELDS.items():
        if key in header and not isinstance(header[key], kind):
            raise ModelFileError(f"{path}: header field {key!r} must be a JSON "
                                 f"{_JSON_TYPES[kind]}, got {_short(header[key])}")
    try:
        config = Config.from_dict(header["config"])
    except ConfigError as exc:
        raise ModelFileError(f"{path}: invalid configuration: {exc}") from None
    _check_plugins(config, path)
    try:
        config.resolved()                       # every plugin's parameters
        if header.get("quantized", False):
            QuantPlan.from_settings(config.quant)
    except ConfigError as exc:
        raise ModelFileError(f"{path}: invalid configuration: {exc}") from None
    if header.get("quantized", False) and quantizer_for(config)[0] is None:
        raise ModelFileError(f"{path}: the header says quantized, but its configuration has no "
                             "quantization scheme (quant.scheme = 'none')")
    _check_topology(header["topology"], path)
    for phase, counts in header.get("ops", {}).items():
        if not isinstance(counts, dict) or not all(_is_count(v) for v in counts.values()):
            raise ModelFileError(f"{path}: ops[{phase!r}] must map counter names to "
                                 f"non-negative integers, got {_short(counts)}")
    progress = header.get("progress", {})
    if not _is_count(progress.get("samples_done", 0)):
        raise ModelFileError(f"{path}: progress.samples_done must be a non-negative integer, "
                             f"got {_short(progress['samples_done'])}")
    for key, value in [("progress.train_seconds", progress.get("train_seconds"))] + [
            (f"metrics.{k}", v) for k, v in header.get("metrics", {}).items()
            if k.startswith("accuracy") or k.endswith("seconds")]:
        top = 1 if key.startswith("metrics.accuracy") else math.inf
        if value is not None and not (_is_number(value) and 0 <= value <= top):
            raise ModelFileError(f"{path}: {key} must be a number in 0..{top:g}, got "
                                 f"{_short(value)}")
    n_test = header.get("metrics", {}).get("n_test")
    if n_test is not None and not _is_count(n_test):
        raise ModelFileError(f"{path}: metrics.n_test must be a non-negative integer, got "
                             f"{_short(n_test)}")
    _check_network_arrays({e.name: e for e in table}, config.n_neurons, path)
    return config


def _check_plugins(config: Config, path) -> None:
    """Every plugin the model names is installed (the one error about a missing plugin)."""
    registry = get_registry()
    wanted = [(PLUGIN_SLOTS[slot][0], config.plugin_name(slot)) for slot in PLUGIN_SLOTS]
    if config.quant.scheme not in ("none", "", None):
        wanted.append(("quantizer", str(config.quant.scheme)))
    for kind, name in wanted:
        try:
            registry.get_entry(kind, name)
        except UnknownPluginError as exc:
            raise ModelFileError(f"{path}: the model needs a plugin that is not available: "
                                 f"{exc}") from None


def _check_topology(topo: dict, path) -> None:
    if set(topo) != set(TOPOLOGY_SCALARS):
        raise ModelFileError(f"{path}: topology must hold exactly {', '.join(TOPOLOGY_SCALARS)}, "
                             f"got {_short(sorted(topo))}")
    if not isinstance(topo["inhibitory_layer"], bool):
        raise ModelFileError(f"{path}: topology.inhibitory_layer must be true or false, got "
                             f"{_short(topo['inhibitory_layer'])}")
    for key in TOPOLOGY_SCALARS[1:]:
        if not _is_number(topo[key]):
            raise ModelFileError(f"{path}: topology.{key} must be a finite number, got "
                                 f"{_short(topo[key])}")
    if not (topo["w_lateral"] <= 0 <= topo["w_exc_inh"] and topo["wmin"] < topo["wmax"]):
        raise ModelFileError(f"{path}: topology needs w_lateral <= 0 (an inhibition), "
                             f"w_exc_inh >= 0 and wmin < wmax, got {topo['w_lateral']:g}, "
                             f"{topo['w_exc_inh']:g}, {topo['wmin']:g} / {topo['wmax']:g}")


def _check_network_arrays(table: dict[str, ArrayEntry], n: int, path) -> None:
    """The arrays a network needs, of the shapes and kinds its configuration implies."""
    missing = [name for name in ("w", "theta") if name not in table]
    if missing:
        raise ModelFileError(f"{path}: the model has no {' and no '.join(missing)} array")
    if ("assignments" in table) != ("proportions" in table):
        raise ModelFileError(f"{path}: assignments and proportions come together; the model "
                             "has only one of them")
    w, theta = table["w"], table["theta"]
    if len(w.shape) != 2 or w.shape[0] < 1 or w.shape[1] != n or theta.shape != (n,):
        raise ModelFileError(f"{path}: weights {list(w.shape)} / theta {list(theta.shape)} do not "
                             f"match n_neurons = {n}")
    kinds = {"w": "f", "theta": "f", "assignments": "i", "proportions": "f"}
    for name, kind in kinds.items():
        if name in table and table[name].dtype.kind != kind:
            raise ModelFileError(f"{path}: array {name!r} has dtype {table[name].dtype.str}, "
                                 f"expected {'a float' if kind == 'f' else 'an integer'} type")
    if "assignments" in table:
        a, p = table["assignments"], table["proportions"]
        if a.shape != (n,) or len(p.shape) != 2 or p.shape[0] != n or p.shape[1] < 1:
            raise ModelFileError(f"{path}: assignments {list(a.shape)} / proportions "
                                 f"{list(p.shape)} do not match n_neurons = {n}")
