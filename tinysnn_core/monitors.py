"""Monitors: what the network did, step by step, for chosen samples and neurons.

A ``Record`` says what to record; a backend that takes it (``contracts.Backend.run``'s optional
``record`` argument) fills it as it simulates. Nothing is recorded, and nothing spent, without
one. What a record holds, per presentation of each chosen sample:

- ``spikes``: every excitatory spike of the layer, as (step, neuron) events;
- ``v``: the membrane potential of the chosen neurons after each step (mV, after the reset of a
  neuron that spiked, on the potential's grid under simulated fixed point);
- ``theta``: their adaptive threshold offsets after each step (mV over ``thresh``);
- ``trace``: their postsynaptic STDP trace after each step (``x <- x * trace_decay``, then 1 at
  a spike: the learning rule's ``trace_decay``); the rule's own ``x_post`` while it learns with
  one, otherwise computed for the monitor alone by the same rule.

``Recording`` is the result: the events and arrays, with a provenance header, written to and
read from an ``.npz`` file (``save`` / ``Recording.load``; docs/monitors.md). Reading checks the
sizes every member declares before allocating anything and turns any damage into one
``RecordingFileError`` line. ``TrainingCurve`` is the training callback behind the training-curve
plot (``tinysnn_core.plots``).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError, RecordingFileError, TinySNNError

VARIABLES = ("spikes", "v", "theta", "trace")
STATE_VARIABLES = ("v", "theta", "trace")
FORMAT = "tinysnn-recording"
VERSION = 1
#: what ``Recording.load`` allocates at most unless told otherwise (bytes)
MAX_BYTES = 1 << 31
_MAX_HEADER = 1 << 20


def _int_list(values, what: str) -> tuple[int, ...]:
    arr = np.asarray(list(values))
    if arr.size and (arr.ndim != 1 or arr.dtype.kind not in "iu"):
        raise InputError(f"{what} must be integers, got {list(values)[:5]!r}")
    if arr.size and arr.min() < 0:
        raise InputError(f"{what} must be >= 0, got {int(arr.min())}")
    return tuple(int(x) for x in arr)


class Record:
    """What to record during a backend's ``run``, and what was recorded.

    ``samples``: the sample ids (as passed to ``run``) to record, or None for every sample of
    the run; ``neurons``: the excitatory neurons whose ``v``, ``theta`` and ``trace`` are
    recorded (None: all; spikes are always recorded for the whole layer); ``variables``: some
    of ``VARIABLES``. One record may be passed to several ``run`` calls: it keeps adding."""

    def __init__(self, samples=None, neurons=None, variables=("spikes",)):
        self.samples = None if samples is None else frozenset(_int_list(samples, "samples"))
        self.neurons = None if neurons is None else _int_list(neurons, "neurons")
        if self.neurons is not None and len(set(self.neurons)) != len(self.neurons):
            raise InputError("neurons to record are listed more than once")
        if isinstance(variables, str):
            variables = (variables,)
        unknown = [v for v in variables if v not in VARIABLES]
        if unknown or not variables:
            raise InputError(f"unknown variable(s) to record {unknown}; known: "
                             f"{', '.join(VARIABLES)}")
        self.variables = tuple(v for v in VARIABLES if v in variables)   # canonical order
        self.state_variables = tuple(v for v in STATE_VARIABLES if v in self.variables)
        self.presentations: list[dict] = []     # each with the row of its sample
        self.sample_list: list[tuple[int, np.ndarray]] = []
        self._pending: list[dict] = []

    # -- what a backend asks ------------------------------------------------------------------
    def wants(self, sample: int) -> bool:
        return self.samples is None or int(sample) in self.samples

    def neuron_index(self, n_neurons: int) -> np.ndarray:
        """The chosen neurons as int64 indices (checked against the layer's size)."""
        if self.neurons is None:
            return np.arange(n_neurons, dtype=np.int64)
        idx = np.array(self.neurons, dtype=np.int64)
        if idx.size and idx.max() >= n_neurons:
            raise InputError(f"neuron {int(idx.max())} to record: the layer has {n_neurons} "
                             f"neurons (0..{n_neurons - 1})")
        return idx

    def check(self, net, learn: bool) -> None:
        """Refuse, before any work, what cannot be recorded from ``net``."""
        self.neuron_index(net.n_neurons)
        if "theta" in self.variables and not getattr(net.exc, "adaptive", False):
            raise InputError("variable theta: the excitatory neuron model "
                             f"({type(net.exc).__name__}) has no adaptive threshold")

    # -- what a backend reports ---------------------------------------------------------------
    def add_presentation(self, sample: int, retry: int, steps, neurons, values: dict) -> None:
        """One presentation: its spikes (``steps``, ``neurons``: int arrays of equal length,
        ordered by step then neuron) and ``values``: name -> float64 [T, K] per state variable
        recorded."""
        self._pending.append({
            "sample": int(sample), "retry": int(retry),
            "steps": np.asarray(steps, dtype=np.int64), "neurons": np.asarray(neurons, np.int64),
            **{k: np.asarray(values[k], dtype=np.float64) for k in self.state_variables}})

    def add_sample(self, sample: int, counts) -> None:
        """After a sample's last presentation: its spike counts (int [N]); the presentations
        added since the previous sample are this one's."""
        row = len(self.sample_list)
        for pr in self._pending:
            if pr["sample"] != int(sample):
                raise TinySNNError(f"a presentation of sample {pr['sample']} was reported "
                                   f"before the counts of sample {sample}")
            self.presentations.append(dict(pr, row=row))
        self._pending = []
        self.sample_list.append((int(sample), np.asarray(counts, dtype=np.int64).copy()))

    # -- the result ---------------------------------------------------------------------------
    def recording(self, *, n_neurons: int, time_steps: int, labels=None, predictions=None,
                  **header) -> Recording:
        """The ``Recording`` of what was added (``labels`` / ``predictions``: sample id -> class,
        -1 where unknown); ``header``: provenance, JSON-serialisable."""
        S = len(self.sample_list)
        ids = np.array([s for s, _ in self.sample_list], dtype=np.int64)
        counts = (np.stack([c for _, c in self.sample_list]) if S
                  else np.zeros((0, n_neurons), dtype=np.int64))
        pres_sample, pres_retry, ev = [], [], ([], [], [])
        for p, pr in enumerate(self.presentations):
            pres_sample.append(pr["row"])
            pres_retry.append(pr["retry"])
            ev[0].append(np.full(len(pr["steps"]), p, dtype=np.int64))
            ev[1].append(pr["steps"])
            ev[2].append(pr["neurons"])
        K = len(self.neurons) if self.neurons is not None else n_neurons
        P = len(self.presentations)
        cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))
        state = {}
        for name in self.state_variables:
            state[name] = (np.stack([pr[name] for pr in self.presentations]) if P
                           else np.zeros((0, time_steps, K)))
        lab = np.array([(labels or {}).get(s, -1) for s in ids.tolist()], dtype=np.int64)
        pred = np.array([(predictions or {}).get(s, -1) for s in ids.tolist()], dtype=np.int64)
        neurons = (np.array(self.neurons, dtype=np.int64) if self.neurons is not None
                   else np.arange(n_neurons, dtype=np.int64))
        head = {"variables": list(self.variables), **header,
                "n_neurons": int(n_neurons), "time_steps": int(time_steps)}
        return Recording(head, ids, lab, pred, counts, np.array(pres_sample, dtype=np.int64),
                         np.array(pres_retry, dtype=np.int64), cat(ev[0]), cat(ev[1]),
                         cat(ev[2]), neurons, state)


# -- the recording and its file -----------------------------------------------------------------

#: member -> (dtype, shape in terms of the sizes S samples, N neurons, P presentations,
#: T steps, K chosen neurons, E spike events)
_MEMBERS = {
    "sample_ids": ("<i8", ("S",)), "labels": ("<i8", ("S",)), "predictions": ("<i8", ("S",)),
    "counts": ("<i8", ("S", "N")), "pres_sample": ("<i8", ("P",)), "pres_retry": ("<i8", ("P",)),
    "spike_pres": ("<i8", ("E",)), "spike_step": ("<i8", ("E",)), "spike_neuron": ("<i8", ("E",)),
    "neurons": ("<i8", ("K",)),
    "v": ("<f8", ("P", "T", "K")), "theta": ("<f8", ("P", "T", "K")),
    "trace": ("<f8", ("P", "T", "K")),
}
_SIZES = ("S", "N", "P", "T", "K", "E")


@dataclass
class Recording:
    """Recorded presentations of some samples (``Record.recording``, ``Recording.load``).

    ``sample_ids``, ``labels``, ``predictions`` (-1: unknown): int64 [S]; ``counts``: the last
    presentation's spike counts [S, N]; per presentation p: ``pres_sample`` (its row in the
    sample arrays) and ``pres_retry``; spikes: ``spike_pres``, ``spike_step``, ``spike_neuron``
    [E]; ``neurons`` [K]: the neurons of ``state``: name -> float64 [P, T, K]."""

    header: dict
    sample_ids: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    counts: np.ndarray
    pres_sample: np.ndarray
    pres_retry: np.ndarray
    spike_pres: np.ndarray
    spike_step: np.ndarray
    spike_neuron: np.ndarray
    neurons: np.ndarray
    state: dict = field(default_factory=dict)

    @property
    def sizes(self) -> dict:
        return {"S": len(self.sample_ids), "N": int(self.header["n_neurons"]),
                "P": len(self.pres_sample), "T": int(self.header["time_steps"]),
                "K": len(self.neurons), "E": len(self.spike_pres)}

    def presentations_of(self, sample: int) -> np.ndarray:
        """The presentation numbers of a sample id (its first row if recorded twice)."""
        rows = np.flatnonzero(self.sample_ids == int(sample))
        if rows.size == 0:
            raise InputError(f"sample {sample} is not in this recording (it holds "
                             f"{_short(self.sample_ids.tolist())})")
        return np.flatnonzero(self.pres_sample == rows[0])

    def presentation(self, sample: int, retry: int | None = None) -> int:
        """The presentation number of ``sample``'s presentation ``retry`` (None: the last)."""
        pres = self.presentations_of(sample)
        if retry is None:
            return int(pres[-1])
        hit = pres[self.pres_retry[pres] == int(retry)]
        if hit.size == 0:
            raise InputError(f"sample {sample} has presentations "
                             f"{self.pres_retry[pres].tolist()}, not {retry}")
        return int(hit[0])

    def spikes(self, presentation: int) -> tuple[np.ndarray, np.ndarray]:
        """(steps, neurons) of the spikes of one presentation."""
        sel = self.spike_pres == int(presentation)
        return self.spike_step[sel], self.spike_neuron[sel]

    # -- file -------------------------------------------------------------------------------
    def arrays(self) -> dict:
        out = {name: getattr(self, name) for name in _MEMBERS if name not in STATE_VARIABLES}
        out.update(self.state)
        return out

    def save(self, path) -> Path:
        """Write the ``.npz`` file (atomically: a reader never sees half a file)."""
        path = Path(path)
        _check_consistent(self)
        header = dict(self.header, format=FORMAT, version=VERSION, sizes=self.sizes)
        arrays = {"header": np.frombuffer(json.dumps(header, sort_keys=True).encode(), np.uint8)}
        for name, arr in self.arrays().items():
            dtype, _ = _MEMBERS[name]
            arrays[name] = np.ascontiguousarray(arr, dtype=np.dtype(dtype))
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path, max_bytes: int = MAX_BYTES) -> Recording:
        """Read a recording file; any damage or inconsistency is one ``RecordingFileError``,
        and nothing is allocated beyond what the members' checked sizes (at most ``max_bytes``
        in all) need."""
        path = Path(path)
        try:
            with zipfile.ZipFile(path) as zf:
                return _read(zf, path, max_bytes)
        except RecordingFileError:
            raise
        except FileNotFoundError:
            raise RecordingFileError(f"{path}: no such recording file") from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
                ValueError, KeyError, NotImplementedError, RuntimeError) as exc:
            raise RecordingFileError(f"{path}: not a readable recording file "
                                     f"({type(exc).__name__}: {_short(exc)})") from None

def _short(text) -> str:
    text = str(text)
    return text if len(text) <= 80 else text[:77] + "..."


def _member(zf: zipfile.ZipFile, name: str, path):
    try:
        return zf.getinfo(name + ".npy")
    except KeyError:
        raise RecordingFileError(f"{path}: recording file without its {name!r} array") from None


def _read_npy(zf, info, dtype: str, shape: tuple, path, limit: int) -> np.ndarray:
    """One member, its .npy header checked against the expected dtype and shape before the
    data is read; exactly its bytes are read (which also checks the zip's CRC)."""
    name = info.filename[:-4]
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            got_shape, fortran, got_dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            got_shape, fortran, got_dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise RecordingFileError(f"{path}: member {name!r} has .npy version {version}")
        if shape is None and len(got_shape) == 1:     # a 1-D member of any length
            shape = tuple(got_shape)
        if got_dtype != np.dtype(dtype) or fortran or tuple(got_shape) != tuple(shape):
            raise RecordingFileError(
                f"{path}: member {name!r} is {got_dtype}{list(got_shape)}, the header says "
                f"{np.dtype(dtype)}{list(shape)}")
        nbytes = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
        if nbytes > limit:
            raise RecordingFileError(f"{path}: member {name!r} needs {nbytes} bytes, more "
                                     f"than the {limit} left of the limit")
        data = fh.read(nbytes)
        if len(data) != nbytes or fh.read(1):
            raise RecordingFileError(f"{path}: member {name!r} does not hold "
                                     f"{list(shape)} values")
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).copy()


def _read(zf: zipfile.ZipFile, path, max_bytes: int) -> Recording:
    info = _member(zf, "header", path)
    if info.file_size > _MAX_HEADER:
        raise RecordingFileError(f"{path}: header of {info.file_size} bytes (at most "
                                 f"{_MAX_HEADER})")
    raw = _read_npy(zf, info, "|u1", None, path, _MAX_HEADER)
    try:
        header = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordingFileError(f"{path}: header is not JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RecordingFileError(f"{path}: not a {FORMAT} file")
    if header.get("version") != VERSION:
        raise RecordingFileError(f"{path}: recording format version {header.get('version')!r}; "
                                 f"this tinySNN reads version {VERSION}")
    sizes = header.get("sizes")
    if not isinstance(sizes, dict) or any(
            not isinstance(sizes.get(k), int) or isinstance(sizes.get(k), bool)
            or not 0 <= sizes[k] < 2 ** 31 for k in _SIZES):
        raise RecordingFileError(f"{path}: header sizes {sizes!r} are not counts 0..2**31-1")
    if sizes["N"] != header.get("n_neurons") or sizes["T"] != header.get("time_steps"):
        raise RecordingFileError(f"{path}: header sizes disagree with n_neurons / time_steps")
    variables = header.get("variables")
    if (not isinstance(variables, list) or not variables
            or any(v not in VARIABLES for v in variables) or len(set(variables)) != len(variables)):
        raise RecordingFileError(f"{path}: header variables {variables!r}; known: "
                                 f"{', '.join(VARIABLES)}")
    n_classes, dt = header.get("n_classes", 10), header.get("dt", 1.0)
    neuron = header.get("neuron")
    if (not isinstance(n_classes, int) or isinstance(n_classes, bool)
            or not 1 <= n_classes <= 1 << 16 or not _number(dt)
            or (neuron is not None and (not isinstance(neuron, dict) or not all(
                _number(neuron.get(k)) for k in ("rest", "reset", "thresh"))))):
        raise RecordingFileError(f"{path}: header n_classes, dt or neuron of the wrong type")
    names = [n for n in _MEMBERS if n not in STATE_VARIABLES or n in variables]
    expected = {n + ".npy" for n in names} | {"header.npy"}
    present = set(zf.namelist())
    if present != expected:
        raise RecordingFileError(f"{path}: members {sorted(present ^ expected)} unexpected or "
                                 "missing for the variables of the header")
    shapes = {n: tuple(sizes[d] for d in _MEMBERS[n][1]) for n in names}
    total = sum(int(np.prod(s, dtype=object)) * np.dtype(_MEMBERS[n][0]).itemsize
                for n, s in shapes.items())
    if total > max_bytes:
        raise RecordingFileError(f"{path}: the header declares {total} bytes of arrays, more "
                                 f"than the limit of {max_bytes} (Recording.load max_bytes)")
    arrays, left = {}, max_bytes
    for n in names:
        arrays[n] = _read_npy(zf, _member(zf, n, path), _MEMBERS[n][0], shapes[n], path, left)
        left -= arrays[n].nbytes
    state = {n: arrays.pop(n) for n in STATE_VARIABLES if n in arrays}
    rec = Recording({k: v for k, v in header.items() if k not in ("format", "version", "sizes")},
                    state=state, **arrays)
    try:
        _check_consistent(rec)
    except InputError as exc:
        raise RecordingFileError(f"{path}: {exc}") from None
    return rec


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)


def _check_consistent(rec: Recording) -> None:
    """What every recording satisfies (InputError otherwise): indices in range, events
    ordered, and the last presentation's spikes adding up to the sample's counts."""
    z = rec.sizes
    S, N, P, T, K = z["S"], z["N"], z["P"], z["T"], z["K"]

    def within(arr, lo, hi, what):
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise InputError(f"{what} outside {lo}..{hi}")

    for name, want in (("labels", (S,)), ("predictions", (S,)), ("counts", (S, N)),
                       ("pres_retry", (P,)), ("spike_step", (z["E"],)),
                       ("spike_neuron", (z["E"],))):
        if np.shape(getattr(rec, name)) != want:
            raise InputError(f"{name} of shape {list(np.shape(getattr(rec, name)))}, expected "
                             f"{list(want)}")
    for name, arr in rec.state.items():
        if arr.shape != (P, T, K):
            raise InputError(f"{name} of shape {list(arr.shape)}, expected [{P}, {T}, {K}]")
    n_classes = int(rec.header.get("n_classes", 10))
    within(rec.labels, -1, n_classes - 1, "labels")
    within(rec.predictions, -1, n_classes - 1, "predictions")
    within(rec.pres_sample, 0, S - 1, "presentation samples")
    within(rec.pres_retry, 0, 2 ** 31, "presentation retries")
    within(rec.spike_pres, 0, P - 1, "spike presentations")
    within(rec.spike_step, 0, T - 1, "spike steps")
    within(rec.spike_neuron, 0, N - 1, "spike neurons")
    within(rec.neurons, 0, N - 1, "recorded neurons")
    within(rec.counts, 0, T, "spike counts")
    if len(np.unique(rec.neurons)) != K:
        raise InputError("recorded neurons listed more than once")
    key = (rec.spike_pres * max(T, 1) + rec.spike_step) * max(N, 1) + rec.spike_neuron
    if key.size > 1 and not (np.diff(key) > 0).all():
        raise InputError("spike events are not ordered by presentation, step and neuron")
    if "spikes" in rec.header.get("variables", ()) and P:
        last = {}
        for p in range(P):
            last[int(rec.pres_sample[p])] = p
        for row, p in last.items():
            sel = rec.spike_pres == p
            got = np.bincount(rec.spike_neuron[sel], minlength=N)
            if not np.array_equal(got, rec.counts[row]):
                raise InputError(f"the spikes of sample row {row} do not add up to its counts")


def file_digest(path) -> str:
    """The first 20 hex digits of a file's SHA-256 (the model digest of explore's results)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:20]


# -- recording a run (the one implementation behind ``tinysnn eval --record``) -----------------

def parse_indices(text: str, n: int, what: str) -> tuple[int, ...] | None:
    """``"all"`` (None), or comma-separated indices and ``start:stop`` ranges below ``n``."""
    text = str(text).strip()
    if text == "all":
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if ":" in part:
                start, stop = part.split(":", 1)
                start, stop = int(start or 0), int(stop) if stop else n
                if start > stop:
                    raise ValueError
                out.extend(range(start, min(stop, n)))
            else:
                out.append(int(part))
    except ValueError:
        raise InputError(f"{what} {text!r}: give 'all', indices and start:stop ranges, "
                         "e.g. 0:10,42") from None
    if not out:
        raise InputError(f"{what} {text!r} selects nothing (there are {n})")
    bad = [i for i in out if not 0 <= i < n]
    if bad:
        raise InputError(f"{what} {bad[0]} outside 0..{n - 1}")
    return tuple(dict.fromkeys(out))


def check_can_record(backend) -> str:
    """The backend's name; a one-line refusal when its ``run`` takes no ``record`` (the
    contract's optional argument)."""
    from . import contracts

    name = getattr(backend, "name", type(backend).__name__)
    if not contracts.accepts_argument(backend.run, "record"):
        raise TinySNNError(f"backend {name!r} cannot record: its run() takes no record argument "
                           "(contracts.Backend.run); use --backend numpy or numba")
    return name


def record_run(net, images, sample_ids, record: Record, *, seed: int, backend=None,
               learn: bool = False, labels=None, ops=None, max_bytes: int = MAX_BYTES,
               **header) -> Recording:
    """Run ``images`` (with their counter-based ``sample_ids``) through ``backend`` (default:
    the network's) with ``record`` on, in chunks of ``train.batch_size``; returns the
    ``Recording``, with each sample's prediction when the network has label assignments and
    its label when ``labels`` (one per image) are given. ``header``: provenance to add.
    Refuses, before any work, a backend that cannot record and a recording larger than
    ``max_bytes``."""
    from .data import check_batch
    from .evaluate import predict
    from .ops import OpCounts
    from .train import check_backend, get_backend

    cfg = net.config
    backend = backend or get_backend(cfg)
    name = check_can_record(backend)
    images, ids = check_batch(images, sample_ids, net.n_inputs)
    record.check(net, learn)
    check_backend(backend, net, learn=learn)
    T, N = int(cfg.train.time_steps), net.n_neurons
    n_rec = len(ids) if record.samples is None else sum(record.wants(s) for s in ids.tolist())
    K = record.neuron_index(N).size
    per_pres = T * K * 8 * len(record.state_variables)
    need = n_rec * (net.encoder.params.max_retries + 1) * per_pres
    if need > max_bytes:
        raise InputError(f"recording {n_rec} samples x {K} neurons x "
                         f"{len(record.state_variables)} variables may need {need} bytes, more "
                         f"than {max_bytes}: record fewer samples, neurons or variables")
    ops = ops if ops is not None else OpCounts()
    chunk = int(cfg.train.batch_size)
    counts = np.zeros((len(ids), N), dtype=np.int64)
    for start in range(0, len(ids), chunk):
        stop = min(len(ids), start + chunk)
        counts[start:stop] = backend.run(net, images[start:stop], ids[start:stop], learn=learn,
                                         seed=seed, ops=ops, record=record)
    predictions = {}
    if net.assignments is not None and not learn:
        n_classes = int(net.proportions.shape[1]) if net.proportions is not None else 10
        pred = predict(counts, net.assignments, net.proportions, cfg.train.classifier, n_classes)
        predictions = dict(zip(ids.tolist(), pred.tolist()))
    lab = {} if labels is None else dict(zip(ids.tolist(), np.asarray(labels).tolist()))
    p = net.exc.p
    from . import __version__

    head = {"seed": int(cfg.seed), "stream_seed": int(seed), "learn": bool(learn),
            "backend": name, "dt": float(cfg.train.dt), "classifier": cfg.train.classifier,
            "n_classes": 10, "neuron": {"model": cfg.plugin_name("exc_neuron"),
                                        "rest": float(p.rest), "reset": float(p.reset),
                                        "thresh": float(p.thresh)},
            "tinysnn": __version__, **header}
    return record.recording(n_neurons=N, time_steps=T, labels=lab, predictions=predictions,
                            **head)


# -- the training curve --------------------------------------------------------------------------

class TrainingCurve:
    """A ``train(..., callbacks=[curve])`` callback: running accuracy, mean theta and active
    neurons as training goes (the curve of ``plots.plot_training_curve``).

    Running accuracy as Diehl & Cook measure it: the samples are cut into windows of
    ``window``; the neurons are assigned labels from one window's spike counts and labels
    (``evaluate.assign_labels``), and those assignments classify the next window (the
    all-activity vote), before that window's own counts reassign them. Per window it keeps:
    samples done at its end, that accuracy (None for the first window: nothing to assign
    from), the mean and max of theta then, the neurons that spiked at least once in it, and
    the mean spikes per sample. Call it with objects carrying ``done``, ``total``, ``net``,
    ``counts`` [B, N] and ``labels`` [B] (``train``'s step)."""

    def __init__(self, window: int = 250, n_classes: int = 10):
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise InputError(f"training-curve window must be a positive integer, got {window!r}")
        self.window, self.n_classes = window, n_classes
        self.points: list[dict] = []
        self._counts: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._held = 0
        self._assignments = None

    def __call__(self, step) -> None:
        counts = np.asarray(step.counts, dtype=np.int64)
        labels = np.asarray(step.labels, dtype=np.int64)
        if counts.ndim != 2 or labels.shape != (counts.shape[0],):
            raise InputError(f"training step with counts {list(counts.shape)} and labels "
                             f"{list(labels.shape)}")
        self._counts.append(counts)
        self._labels.append(labels)
        self._held += len(labels)
        while self._held >= self.window:
            c = np.concatenate(self._counts)
            lab = np.concatenate(self._labels)
            # the held samples end at step.done: the window's first ones end it here
            self._close(c[:self.window], lab[:self.window], step.net,
                        int(step.done) - self._held + self.window)
            self._counts, self._labels = [c[self.window:]], [lab[self.window:]]
            self._held -= self.window

    def _close(self, counts, labels, net, done: int) -> None:
        from .evaluate import assign_labels, predict_all_activity

        accuracy = None
        if self._assignments is not None:
            pred = predict_all_activity(counts, self._assignments, self.n_classes)
            accuracy = float((pred == labels).mean())
        self._assignments, _, _ = assign_labels(counts, labels, self.n_classes)
        theta = np.asarray(net.theta, dtype=np.float64)
        self.points.append({
            "done": int(done), "accuracy": accuracy,
            "theta_mean": float(theta.mean()) if theta.size else 0.0,
            "theta_max": float(theta.max()) if theta.size else 0.0,
            "active_neurons": int((counts.sum(axis=0) > 0).sum()),
            "spikes_per_sample": float(counts.sum() / len(counts))})

    def to_dict(self) -> dict:
        return {"format": "tinysnn-training-curve", "version": 1, "window": self.window,
                "points": self.points}

    def save(self, path) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path) -> TrainingCurve:
        path = Path(path)
        try:
            if path.stat().st_size > 64 << 20:
                raise InputError("larger than 64 MiB")
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict) or doc.get("format") != "tinysnn-training-curve":
                raise InputError("not a tinysnn training curve")
            curve = cls(window=doc["window"])
            points = doc["points"]
            keys = {"done", "accuracy", "theta_mean", "theta_max", "active_neurons",
                    "spikes_per_sample"}
            if not isinstance(points, list) or any(
                    not isinstance(p, dict) or set(p) != keys for p in points):
                raise InputError(f"points must be objects with the keys {sorted(keys)}")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError,
                InputError) as exc:
            raise InputError(f"{path}: not a readable training curve ({exc})") from None
        curve.points = points
        return curve


def record_from_specs(samples: str, neurons: str, variables: str, n_samples: int, net,
                      out=None, backend=None) -> Record:
    """The ``Record`` of ``tinysnn eval --record``'s options (checked against the test set's
    ``n_samples``, the network and, when given, the output file's folder and the backend)."""
    most_active = None
    text = str(neurons).strip()
    if text.startswith("active:"):
        try:
            most_active = int(text[7:])
        except ValueError:
            most_active = 0
        if not 0 < most_active <= net.n_neurons:
            raise InputError(f"neurons {text!r}: active:K needs K in 1..{net.n_neurons}")
    rec = Record(samples=parse_indices(samples, n_samples, "sample"),
                 neurons=None if most_active else parse_indices(text, net.n_neurons, "neuron"),
                 variables=tuple(v.strip() for v in str(variables).split(",") if v.strip()))
    rec.most_active = most_active
    rec.check(net, learn=False)
    if out is not None:
        check_out_path(out)
    if backend is not None:
        check_can_record(backend)
    return rec


def check_out_path(path) -> None:
    """Refuse, before the work, an output file whose folder does not exist."""
    if not Path(path).resolve().parent.is_dir():
        raise InputError(f"{path}: its folder does not exist")


def record_test_samples(net, data, record: Record, *, model=None, backend=None) -> Recording:
    """Record test samples of ``data`` as ``train.evaluate`` runs them (the test stream's seed,
    the test index as sample id), so the recorded counts are the evaluation's. A record from
    ``record_from_specs`` with ``active:K`` neurons first finds the K most active neurons of
    these samples (a pass without recording)."""
    from .ops import OpCounts
    from .train import stream_seed

    ids = (np.arange(len(data.test_labels)) if record.samples is None
           else np.array(sorted(record.samples), dtype=np.int64))
    seed = stream_seed(net.config.seed, "test")
    k = getattr(record, "most_active", None)
    if k:       # the K neurons that spike most in these samples (ties: the lower index)
        from .train import get_backend

        be = backend or get_backend(net.config)
        counts = np.zeros(net.n_neurons, dtype=np.int64)
        for start in range(0, len(ids), int(net.config.train.batch_size)):
            part = ids[start:start + int(net.config.train.batch_size)]
            counts += be.run(net, data.test_images[part], part, learn=False, seed=seed,
                             ops=OpCounts()).sum(axis=0)
        top = np.argsort(-counts, kind="stable")[:k]
        record = Record(samples=record.samples, neurons=sorted(top.tolist()),
                        variables=record.variables)
    header = {"phase": "test", "dataset": data.name, "n_classes": int(data.n_classes)}
    if model is not None:
        header["model"] = {"name": Path(model).name, "digest": file_digest(model)}
    return record_run(net, data.test_images[ids], ids, record, seed=seed, backend=backend,
                      labels=data.test_labels[ids], **header)
