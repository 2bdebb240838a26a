"""The training and evaluation flow: train with STDP, assign labels, measure accuracy.

Random streams: every phase encodes with its own seed (``stream_seed``); training sample ids run
over epochs (``epoch * n_train + i``), so every presentation sees fresh spikes while the whole run
stays a pure function of the configuration. Between samples the only state is the weights and
thresholds, so a run resumed from a checkpoint is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from .config import Config
from .data import Dataset
from .errors import ConfigError, InputError, TinySNNError
from .evaluate import assign_labels, predict
from .log import get_logger
from .modelfile import save_network
from .network import Network
from .ops import OpCounts
# the quantizer's entry points live in quant (modelfile needs them too); the flow's callers
# know them as train.quantizer_for and train.prepare_quantized
from .quant import prepare_quantized, quantizer_for  # noqa: F401
from .registry import get_registry

if TYPE_CHECKING:
    from .contracts import Backend

log = get_logger(__name__)

_STREAMS = {"train": 0, "assign": 1, "test": 2}


def stream_seed(seed: int, phase: str) -> int:
    """The encoder seed of a phase (train, assign, test)."""
    return (int(seed) * 4 + _STREAMS[phase]) & 0xFFFFFFFF


def get_backend(config: Config) -> Backend:
    name = config.plugin_name("backend")
    backend = get_registry().get("backend", name)()
    ok, why = backend.available()
    if not ok:
        raise TinySNNError(f"backend {name!r} is not usable here: {why}")
    return backend


def check_backend(backend, net: Network, learn: bool) -> None:
    """Let a backend refuse a network it cannot simulate before any work starts (the optional
    ``check(net, learn=...)`` of the backend contract)."""
    check = getattr(backend, "check", None)
    if check is not None:
        check(net, learn=learn)


def build_network(config: Config) -> Network:
    """A fresh network; an in-training quantizer puts it on its grids from the start."""
    net = Network.build(config)
    quantizer, plan = quantizer_for(config)
    if quantizer is not None and quantizer.in_training:
        net = prepare_quantized(quantizer, net, plan)
    return net


def finish_training(net: Network) -> Network:
    """After training: a post-training quantizer rounds the parameters now."""
    quantizer, plan = quantizer_for(net.config)
    if quantizer is not None and net.quant is None:
        net = prepare_quantized(quantizer, net, plan)
    return net


def load_dataset(config: Config) -> Dataset:
    import inspect

    params = config.plugin_params("dataset")
    name = config.plugin_name("dataset")
    loader = get_registry().get("dataset", name)
    options = dict(params) if isinstance(params, dict) else {}
    validation = options.pop("validation", 0)
    signature = inspect.signature(loader).parameters
    accepted = set(signature) - {"seed"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(f"[dataset] ({name}) unknown option(s) {unknown}; accepted: "
                          f"{sorted(accepted | {'validation'})}")
    for key, value in options.items():
        _check_dataset_option(name, key, value, signature[key].default)
    data = loader(config.seed, **options)
    if validation:
        if not isinstance(validation, int) or isinstance(validation, bool):
            raise ConfigError(f"[dataset] validation must be an integer, got {validation!r}")
        data = data.validation_split(validation)
    return data.subset(config.train.n_train, config.train.n_test)


def _check_dataset_option(name: str, key: str, value, default) -> None:
    """A data-set option of the type of its loader's default (None or a string: a path)."""
    if isinstance(default, bool):
        ok, what = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, what = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
        what = "a number"
    elif default is None or isinstance(default, str):
        ok, what = value is None or isinstance(value, str), "a string (a path)"
    else:
        return
    if not ok:
        raise ConfigError(f"[dataset] ({name}) {key} must be {what}, got {value!r}")


def _progress(total: int, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="sample", disable=not enabled,
                dynamic_ncols=True, file=sys.stderr)


def run_batched(net: Network, backend, images, ids, *, learn: bool, seed: int, ops: OpCounts,
                desc: str, progress: bool, chunk: int = 64, on_chunk=None) -> np.ndarray:
    """Run ``images`` through ``backend`` in chunks, with a progress bar; returns counts."""
    out = np.zeros((len(images), net.n_neurons), dtype=np.int64)
    with _progress(len(images), 0, desc, progress) as bar:
        for start in range(0, len(images), chunk):
            stop = min(len(images), start + chunk)
            out[start:stop] = backend.run(net, images[start:stop], ids[start:stop], learn=learn,
                                          seed=seed, ops=ops)
            bar.update(stop - start)
            if on_chunk is not None:
                on_chunk(stop)
    return out


def run_group_batched(nets: Sequence[Network], backend, images, ids, *, seed: int,
                      ops_list: Sequence[OpCounts], desc: str, progress: bool,
                      chunk: int = 64) -> list[np.ndarray]:
    """Inference (learn=False) of several networks on the same samples and seed: each one's
    counts and counters as ``run_batched`` gives them. A backend with ``run_group`` (the same
    results, the input spikes drawn once for all the networks) runs them together, chunk by
    chunk; another runs them one after the other."""
    group = getattr(backend, "run_group", None)
    if group is None or len(nets) < 2:
        return [run_batched(net, backend, images, ids, learn=False, seed=seed, ops=ops,
                            desc=desc, progress=progress, chunk=chunk)
                for net, ops in zip(nets, ops_list)]
    outs = [np.zeros((len(images), net.n_neurons), dtype=np.int64) for net in nets]
    with _progress(len(images), 0, f"{desc} x{len(nets)}", progress) as bar:
        for start in range(0, len(images), chunk):
            stop = min(len(images), start + chunk)
            for out, counts in zip(outs, group(nets, images[start:stop], ids[start:stop],
                                               seed=seed, ops_list=ops_list)):
                out[start:stop] = counts
            bar.update(stop - start)
    return outs


@dataclass
class TrainStep:
    """What a training callback sees after every batch (``train(..., callbacks=[cb])``: each
    ``cb(step)`` is called with one of these). Valid during the call only: ``net`` is the live
    network, the arrays belong to this batch."""

    done: int                   # training samples presented so far (over all epochs)
    total: int                  # samples the run presents in all (epochs x training set)
    net: Network                # the network being trained (its weights as after this batch)
    counts: np.ndarray          # this batch's spike counts, int [B, N], as backend.run returns
    labels: np.ndarray          # this batch's labels, [B]


#: a training callback: called with the ``TrainStep`` of every batch
TrainCallback = Callable[[TrainStep], object]


def train(net: Network, data: Dataset, *, backend: Backend | None = None,
          checkpoint: Path | None = None,
          progress: bool = True,
          callbacks: Sequence[TrainCallback] | None = None) -> Network:
    """STDP training for ``config.train.epochs`` passes; resumes from ``net.progress``.

    ``callbacks``: each is called as ``cb(step)`` (a ``TrainStep``) after every batch, in
    order, before the checkpoint of that batch is written. When a post-training quantizer
    rounds the network at the end, each decay factor it rounds to 0 or 1 is a
    ``TinySNNWarning`` (an in-training network lists its own in ``net.quant.lost_decays``
    from ``build_network`` on; ``run`` warns about those)."""
    cfg = net.config
    backend = backend or get_backend(cfg)
    n = len(data.train_images)
    total = cfg.train.epochs * n
    done = int(net.progress.get("samples_done", 0))
    if done > total:
        raise ConfigError(f"checkpoint has {done} samples done, more than the {total} configured")
    check_backend(backend, net, learn=True)
    callbacks = list(callbacks or ())
    ops = net.phase_ops("train")
    seed = stream_seed(cfg.seed, "train")
    every = cfg.train.checkpoint_every
    started = time.perf_counter()
    spent = float(net.progress.get("train_seconds") or 0.0)  # by the runs this one resumes
    with _progress(total, done, "train", progress) as bar:
        while done < total:
            epoch, i = divmod(done, n)
            stop = min(n, i + 32, i + every - done % every)
            ids = epoch * n + np.arange(i, stop)
            counts = backend.run(net, data.train_images[i:stop], ids, learn=True, seed=seed,
                                 ops=ops)
            bar.update(stop - i)
            done += stop - i
            net.progress["samples_done"] = done
            # every checkpoint carries the time so far: a killed run's time is counted too
            net.progress["train_seconds"] = spent + time.perf_counter() - started
            if callbacks:               # no step object at all without callbacks
                step = TrainStep(done, total, net, counts, data.train_labels[i:stop])
                for cb in callbacks:
                    cb(step)
            if checkpoint is not None and (done % every == 0 or done == total):
                save_network(net, checkpoint)
    net.progress["train_seconds"] = spent + time.perf_counter() - started
    quantized_before = net.quant is not None
    net = finish_training(net)
    if not quantized_before:            # a post-training quantizer rounded it just now
        warn_lost_decays(net)
    return net


def run(config: Config, out: str | Path | None = None, *, fresh: bool = False,
        evaluate: bool = True, progress: bool = True,
        callbacks: Sequence[TrainCallback] | None = None) -> tuple[Network, dict]:
    """The main job (``tinysnn run``; ``tinysnn train`` is ``evaluate=False``): build the
    network of ``config`` (or resume it from the checkpoint ``OUT.ckpt``), train it with STDP,
    assign labels, measure the test accuracy, save it to ``out``. Returns the network and its
    metrics (``{}`` without evaluation, but for ``train_seconds``).

    A checkpoint made with another configuration is refused (``fresh`` starts over)."""
    from .errors import ModelFileError
    from .modelfile import load_network

    out = Path(out) if out is not None else None
    ckpt = out.with_name(out.name + ".ckpt") if out is not None else None
    net = None
    if ckpt is not None and ckpt.exists() and not fresh:
        try:
            net = load_network(ckpt)
        except ModelFileError as exc:
            raise ModelFileError(f"{exc} (the checkpoint of an interrupted run: pass --fresh "
                                 "to start over)") from None
        if net.config.resolved().to_dict() != config.resolved().to_dict():
            raise ConfigError(f"checkpoint {ckpt} was made with a different configuration; "
                              "pass --fresh to start over or choose another --out")
        log.info("resuming from %s (%s training samples done)", ckpt,
                 net.progress.get("samples_done", 0))
    data = load_dataset(config)
    backend = get_backend(config)
    if net is None:
        net = build_network(config)
    if net.quant is not None:           # in-training grids: the decays it trains without
        warn_lost_decays(net)
    if net.progress.get("samples_done", 0) < config.train.epochs * len(data.train_images):
        net = train(net, data, backend=backend, checkpoint=ckpt, progress=progress,
                    callbacks=callbacks)
    metrics: dict = {}
    if evaluate:
        assign(net, data, backend=backend, progress=progress)
        metrics = _evaluate(net, data, backend=backend, progress=progress)
    metrics["train_seconds"] = net.progress.get("train_seconds")
    if out is not None:
        save_network(net, out, metrics=metrics)
    return net, metrics


def warn_lost_decays(net: Network) -> None:
    """A ``TinySNNWarning`` for each decay factor the quantizer rounded to 0 or 1
    (``net.quant.lost_decays``)."""
    from .log import TinySNNWarning

    for msg in getattr(net.quant, "lost_decays", None) or []:   # no runtime: float, nothing lost
        warnings.warn(msg, TinySNNWarning, stacklevel=3)


def assign(net: Network, data: Dataset, *, backend: Backend | None = None,
           progress: bool = True) -> np.ndarray:
    """Label assignment from one pass over the training set with learning off."""
    return assign_group([net], data, backend=backend, progress=progress)[0]


def assign_group(nets: Sequence[Network], data: Dataset, *, backend: Backend | None = None,
                 progress: bool = True) -> list[np.ndarray]:
    """``assign`` of each of ``nets`` (same config seed and batch size), in one pass over the
    training set for all where the backend runs groups (``run_group_batched``)."""
    if len(data.train_labels) == 0:
        raise InputError(f"{data.name} has no training samples to assign labels on")
    backend = backend or get_backend(nets[0].config)
    _check_group(nets)
    for net in nets:
        check_backend(backend, net, learn=False)
        net.ops["assign"] = OpCounts()
    cfg = nets[0].config
    all_counts = run_group_batched(
        nets, backend, data.train_images, np.arange(len(data.train_images)),
        seed=stream_seed(cfg.seed, "assign"), ops_list=[net.ops["assign"] for net in nets],
        desc="assign", progress=progress, chunk=cfg.train.batch_size)
    for net, counts in zip(nets, all_counts):
        net.assignments, net.proportions, _ = assign_labels(counts, data.train_labels,
                                                            data.n_classes)
    return all_counts


def _check_group(nets) -> None:
    """Networks run as a group share their streams' seed and chunking."""
    keys = {(int(n.config.seed), int(n.config.train.batch_size)) for n in nets}
    if len(keys) > 1:
        raise TinySNNError(f"networks of one group need the same seed and batch size, got "
                           f"{sorted(keys)}")


def evaluate(net: Network, data: Dataset, *, backend: Backend | None = None,
             progress: bool = True, return_predictions: bool = False
             ) -> dict | tuple[dict, np.ndarray]:
    """Test-set accuracy with both classifiers (learning off). ``return_predictions``: also
    the network's own classifier's prediction for each test sample, ``(metrics, predictions)``
    (the paired tests and the report's confusion matrix use them)."""
    out = evaluate_group([net], data, backend=backend, progress=progress)[0]
    return out if return_predictions else out[0]


def evaluate_group(nets: Sequence[Network], data: Dataset, *, backend: Backend | None = None,
                   progress: bool = True) -> list[tuple[dict, np.ndarray]]:
    """``evaluate(net, ..., return_predictions=True)`` of each of ``nets`` (same config seed
    and batch size), in one pass over the test set for all where the backend runs groups
    (``run_group_batched``; ``test_seconds`` is then the group's pass)."""
    for net in nets:
        if net.assignments is None:
            raise TinySNNError("the network has no label assignments yet: run assign (or "
                               "train) first")
    if len(data.test_labels) == 0:      # an accuracy of no samples would be nan
        raise InputError(f"{data.name} has no test samples to evaluate on")
    backend = backend or get_backend(nets[0].config)
    _check_group(nets)
    for net in nets:
        net.ops["test"] = OpCounts()
    cfg = nets[0].config
    started = time.perf_counter()
    all_counts = run_group_batched(
        nets, backend, data.test_images, np.arange(len(data.test_images)),
        seed=stream_seed(cfg.seed, "test"), ops_list=[net.ops["test"] for net in nets],
        desc="test", progress=progress, chunk=cfg.train.batch_size)
    seconds = time.perf_counter() - started
    out = []
    for net, counts in zip(nets, all_counts):
        metrics = {"n_test": int(len(data.test_labels)), "test_seconds": seconds}
        preds = {}
        for clf in ("all-activity", "proportion-weighting"):
            preds[clf] = predict(counts, net.assignments, net.proportions, clf, data.n_classes)
            metrics[f"accuracy_{clf}"] = float((preds[clf] == data.test_labels).mean())
        metrics["accuracy"] = metrics[f"accuracy_{net.config.train.classifier}"]
        net.metrics = metrics
        out.append((metrics, preds[net.config.train.classifier]))
    return out


_evaluate = evaluate    # for run(), whose keyword ``evaluate`` hides the function
