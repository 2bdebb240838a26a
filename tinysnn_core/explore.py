"""Design-space exploration: network x scheme x precision x rounding x parameter groups.

Every point is a quantization plan applied to a network: a post-training point (``ptq``) reuses
the trained float model; an in-training point (``itq``) trains a new network with the plan. Each
finished point is appended as one JSON line to the results file, keyed by a hash of everything
that determines it (the point and the base model's checksum); a rerun skips the keys already in
the file, so a killed exploration resumes with nothing lost or repeated.

Workers are local processes, or the workers of an existing Dask distributed cluster
(``scheduler="tcp://host:port"``). Only the parent process writes the results file, and it holds
an exclusive lock on it while it runs, so that a second exploration on the same file stops with a
message instead of doubling every row. Local workers die with the parent (killed or terminated),
and an exploration on a Dask cluster that has had no workers for ``no_workers_timeout`` seconds
stops with a message instead of waiting forever.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import ConfigError, InputError, TinySNNError
from .log import get_logger
from .quant import QuantPlan, default_format

log = get_logger(__name__)

#: groups quantized together in a "weights + neuron parameters" point
ALL_GROUPS = ("weights", "potential", "theta", "inhibition", "decay")
#: integer inference needs every one of these groups in fixed point
DEPLOYABLE_GROUPS = ALL_GROUPS
#: "mixed": the weights at the swept precision, the neuron groups at a fixed one (neuron_bits)
GROUP_SETS = {"weights": ("weights",), "all": ALL_GROUPS, "mixed": ALL_GROUPS}


@dataclass
class Point:
    scheme: str                     # "ptq" or "itq"
    bits: int                       # precision of the swept groups
    rounding: str                   # rounding of the swept groups
    groups: dict                    # group -> {"format", "rounding"}
    kind: str = "grid"              # "grid" or "sensitivity"
    group_set: str = "all"          # which groups are swept ("weights", "all", or one group)
    label: str = ""
    inference: dict = field(default_factory=dict)   # [inference] settings of its integer test
    train_time_steps: int = 0       # T while an in-training point learns (0: the model's)

    def key(self, base_digest: str) -> str:
        point = asdict(self)
        for name in ("inference", "train_time_steps"):  # keys of points without them as before
            if not point[name]:
                del point[name]
        blob = json.dumps({"point": point, "base": base_digest}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def quantization(self) -> "Point":
        """The same point without its inference settings: what is quantized (or trained)."""
        return replace(self, inference={}, label=self.label.split(" | ")[0])


#: the inference design axes of ``build_grid`` (config ``[inference]`` keys)
INFERENCE_AXES = ("time_steps", "rate_hz", "max_retries", "exit_margin")


def inference_variants(**axes) -> list[dict]:
    """Every combination of the given ``[inference]`` values (an axis left out, or given as
    ``None``, keeps the model's setting)."""
    import itertools

    unknown = sorted(set(axes) - set(INFERENCE_AXES))
    if unknown:
        raise ConfigError(f"unknown inference axes {unknown}; known: {', '.join(INFERENCE_AXES)}")
    named = [(k, v) for k, v in axes.items() if v]
    combos = itertools.product(*[v for _, v in named])
    return [{k: val for (k, _), val in zip(named, combo)} for combo in combos] or [{}]


def inference_label(settings: dict) -> str:
    short = {"time_steps": "T", "rate_hz": "rate", "max_retries": "retries",
             "exit_margin": "exit"}
    return " ".join(f"{short[k]}={v:g}" if isinstance(v, float) else f"{short[k]}={v}"
                    for k, v in settings.items())


def make_groups(names, bits: int, rounding: str, ranges: dict | None = None,
                neuron_bits: int | None = None) -> dict:
    """Formats for ``names`` at ``bits`` (``neuron_bits`` for the neuron groups when given),
    their integer bits sized to ``ranges`` (``quant.model_ranges`` of the float model)."""
    ranges = ranges or {}
    out = {}
    for g in names:
        b = bits if (g == "weights" or neuron_bits is None) else neuron_bits
        out[g] = {"format": str(default_format(g, b, ranges.get(g))), "rounding": rounding}
    return out


#: Margin on the float model's ranges for the groups that grow while an in-training point learns.
#: Its formats are fixed before it trains, and theta (with the potential that must reach the
#: threshold) need not stay within the float run's values. On Fashion-MNIST an ITQ run whose theta
#: format left 10 % above the float model's largest theta ended with every theta stuck at the
#: format's top and a silent layer (docs/results.md). 1.5x costs at most one integer bit.
IN_TRAINING_HEADROOM = {"theta": 1.5, "potential": 1.5}


def training_ranges(ranges: dict | None) -> dict | None:
    """``ranges`` with the in-training headroom applied."""
    if not ranges:
        return ranges
    return {g: (m * IN_TRAINING_HEADROOM.get(g, 1.0) if m is not None else None)
            for g, m in ranges.items()}


def decays_lost_in_training(net, points) -> list[str]:
    """For the in-training points: each decay format that rounds (to nearest) one of ``net``'s
    decay factors to 0 or 1, once per format, as a sentence. At 16 bits theta's decay
    exp(-1/1e7) becomes 1, and a long in-training run's theta then only grows."""
    from .fixedpoint import quantize
    from .quant import decay_factors

    factors = decay_factors(net)
    formats = [p.groups["decay"]["format"] for p in points
               if "decay" in p.groups and _in_training(p.scheme)]
    out = []
    for fmt in dict.fromkeys(formats):          # each format once, in grid order
        lost = [name for name, v in factors.items()
                if 0.0 < v < 1.0 and float(quantize(v, fmt)) in (0.0, 1.0)]
        if lost:
            out.append(f"{formats.count(fmt)} in-training point(s) store the decay factors in "
                       f"{fmt}, which rounds {', '.join(lost)} to 0 or 1")
    return out


def _in_training(scheme: str) -> bool:
    from .registry import get_registry

    return bool(getattr(get_registry().get("quantizer", scheme), "in_training", False))


def build_grid(*, schemes, bits, roundings, group_sets, sensitivity: bool,
               ranges: dict | None = None, sensitivity_groups=ALL_GROUPS,
               neuron_bits: int = 16, decay_bits: int | None = None,
               inference: list[dict] | None = None,
               train_time_steps=(0,)) -> list[Point]:
    """The grid's points, then the sensitivity sweep's (one group at a time, post-training).
    ``decay_bits`` fixes the decay group's precision at every grid point that has it.
    ``inference``: ``[inference]`` settings (``inference_variants``); every deployable grid
    point is tested under each of them (they change the integer test only, not the training).
    ``train_time_steps``: the T values in-training points learn with (0: the model's)."""
    variants = inference or [{}]
    points = []
    for scheme in schemes:
        scheme_ranges = training_ranges(ranges) if _in_training(scheme) else ranges
        for gs in group_sets:
            if gs not in GROUP_SETS:
                raise ConfigError(f"unknown group set {gs!r}; known: {', '.join(GROUP_SETS)}")
            for b in bits:
                for r in roundings:
                    nb = neuron_bits if gs == "mixed" else None
                    groups = make_groups(GROUP_SETS[gs], b, r, scheme_ranges, nb)
                    label = f"{scheme} {gs} {b}b" + (f"/{nb}b" if nb else "") + f" {r}"
                    if decay_bits is not None and "decay" in groups:
                        groups["decay"]["format"] = str(default_format("decay", decay_bits))
                        label += f" decay {decay_bits}b"
                    deployable = all(g in groups for g in DEPLOYABLE_GROUPS)
                    for tt in (train_time_steps if _in_training(scheme) else (0,)):
                        base_label = label + (f" trained T={tt}" if tt else "")
                        for v in (variants if deployable else [{}]):
                            points.append(Point(
                                scheme, b, r, groups, "grid", gs,
                                base_label + (f" | {inference_label(v)}" if v else ""),
                                dict(v), int(tt)))
    if sensitivity:
        for g in sensitivity_groups:
            for b in bits:
                for r in roundings:
                    groups = make_groups([g], b, r, ranges)
                    points.append(Point("ptq", b, r, groups, "sensitivity", g,
                                        f"sensitivity {g} {b}b {r}"))
    seen, unique = set(), []
    for p in points:
        k = json.dumps(asdict(p), sort_keys=True)
        if k not in seen:
            seen.add(k)
            unique.append(p)
    return unique


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:20]


#: what every results row holds (select and report read these of every row)
ROW_FIELDS = {"kind": str, "label": str, "scheme": str, "rounding": str,
              "group_set": str, "bits": int, "groups": dict, "accuracy": float}


#: the per-seed fields of a row with per-sample results: lists with one entry per seed, in the
#: order of ``seeds`` (``sample_fields``); ``accuracy_ci`` is there from two seeds on
SEED_FIELDS = ("seeds", "accuracy_seeds", "correct", "test_sizes", "test_digests")


def _is_accuracy(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0 <= value <= 1)


def _seed_problem(row: dict) -> str | None:
    """What is wrong with a row's per-seed fields (None: nothing, or a row without them)."""
    if "seeds" not in row:
        extra = [f for f in (*SEED_FIELDS, "accuracy_ci") if f in row]
        return f"it has {extra[0]!r} but no 'seeds'" if extra else None
    seeds = row["seeds"]
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
            or len(set(seeds)) != len(seeds)):
        return f"field 'seeds' is {seeds!r}, not a list of distinct integers"
    kinds = {"accuracy_seeds": _is_accuracy, "correct": lambda v: isinstance(v, str),
             "test_sizes": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
             "test_digests": lambda v: isinstance(v, str)}
    for name, ok in kinds.items():
        if name not in row and name != "accuracy_seeds":
            continue
        values = row.get(name)
        if not isinstance(values, list) or len(values) != len(seeds) or not all(map(ok, values)):
            return f"field {name!r} is not a list of {len(seeds)} per-seed values"
    if ("correct" in row) != ("test_sizes" in row):
        return "it has only one of 'correct' and 'test_sizes'"
    ci = row.get("accuracy_ci")
    if ci is not None and not (isinstance(ci, list) and len(ci) == 2
                               and all(map(_is_accuracy, ci)) and ci[0] <= ci[1]):
        return f"field 'accuracy_ci' is {ci!r}, not [low, high] in 0..1"
    return None


def _row_problem(row: dict) -> str | None:
    for name, kind in ROW_FIELDS.items():
        value = row.get(name)
        if kind is float:
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and 0 <= value <= 1)
        else:
            ok = isinstance(value, kind) and not isinstance(value, bool)
        if not ok:
            what = "an accuracy in 0..1" if kind is float else f"a JSON {kind.__name__}"
            return f"field {name!r} is {value!r}, not {what}"
    return _seed_problem(row)


def read_results(path: str | Path) -> list[dict]:
    """The finished points of a results file; a torn last line (killed writer) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a results file")
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if not isinstance(row, dict):
            raise InputError(f"{path}: line {number} is a JSON {type(row).__name__}, not a "
                             "results row (an object)")
        problem = _row_problem(row)
        if problem:
            raise InputError(f"{path}: line {number} is not a results row of tinysnn explore: "
                             f"{problem}")
        rows.append(row)
    return rows


def repair_results(path: Path) -> None:
    """Drop a torn last line (a writer killed mid-line) so that appends start on a fresh line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(path, "r+b") as fh:
            fh.truncate(keep)


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(row, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def point_network(base, scheme: str, groups: dict, *, backend: str | None = None,
                  progress: bool = False, train_time_steps: int = 0):
    """The network of one exploration point and its data and backend: the float model ``base``
    (changed in place) with the plan put on it (post-training), or a network trained from
    scratch with the plan (in-training). Labels are not assigned yet."""
    from . import train as flow
    from .config import QuantSettings

    cfg = copy.deepcopy(base.config)
    if backend:
        cfg = cfg.with_overrides([f'backend="{backend}"'])
    cfg.quant = QuantSettings(scheme, copy.deepcopy(groups))
    if train_time_steps:
        cfg.train.time_steps = int(train_time_steps)
    data = flow.load_dataset(cfg)
    sim = flow.get_backend(cfg)
    quantizer, plan = flow.quantizer_for(cfg)
    if quantizer.in_training:
        net = flow.build_network(cfg)
        flow.train(net, data, backend=sim, progress=progress)
    else:
        net = base
        net.config = cfg
        net = flow.prepare_quantized(quantizer, net, plan)
    return net, data, sim


def _assign_data(data, options):
    """Label assignment on the first ``assign_limit`` training samples (all when unset)."""
    limit = options.get("assign_limit")
    return data.subset(n_train=limit) if limit else data


def evaluate_points(points: list[Point], base_model: str, options: dict) -> list[dict]:
    """Points that differ only in their inference settings: quantize (PTQ) or train (ITQ)
    once, assign labels once, then test each setting in integer mode. Runs in a worker."""
    return evaluate_group([points], base_model, options, grouped=False)[0]


def evaluate_group(tasks: list[list[Point]], base_model: str, options: dict, *,
                   grouped: bool = True) -> list[list[dict]]:
    """``evaluate_points`` of each task (a list of points of one quantization), the tasks'
    label assignments, float tests and integer tests each run as one group
    (``train.assign_group``, ``train.evaluate_group``, ``intsim.run_integer_group``): on a
    backend that runs groups the input spikes are drawn once per sample for all of them, and
    the results are those of the tasks run one by one (``grouped=False`` runs them so). Two
    or more tasks must share their input spikes (``shares_spikes``: post-training points of
    one base model). Each row's ``seconds`` is its share of the group's time. Runs in a
    worker."""
    from . import intsim
    from . import train as flow
    from .modelfile import load_network

    started = time.perf_counter()
    base = load_network(base_model)
    preps = []
    for points in tasks:
        point = points[0].quantization()
        net, data, backend = point_network(copy.deepcopy(base), point.scheme, point.groups,
                                           backend=options.get("backend"),
                                           train_time_steps=point.train_time_steps)
        preps.append((points, point, net, data, backend))
    nets = [p[2] for p in preps]
    _, _, _, data, backend = preps[0]
    for _, _, _, other, _ in preps[1:]:
        if samples_digest(other) != samples_digest(data):
            raise TinySNNError("evaluate_group: the points of a group need the same samples")
    if grouped:
        flow.assign_group(nets, _assign_data(data, options), backend=backend, progress=False)
        tested = flow.evaluate_group(nets, data, backend=backend, progress=False)
    else:
        tested = []
        for net in nets:
            flow.assign(net, _assign_data(data, options), backend=backend, progress=False)
            tested.append(flow.evaluate(net, data, backend=backend, progress=False,
                                        return_predictions=True))
    digest = samples_digest(data)
    cost_models = integer_cost_models(options.get("cost_models") or ())
    ids = np.arange(len(data.test_images))
    commons, models, owners = [], [], []
    for t, ((points, point, net, _, _), (metrics, pred)) in enumerate(zip(preps, tested)):
        cfg = net.config
        common = {"accuracy_float_sim": metrics["accuracy"],
                  "accuracy_float_sim_pw": metrics["accuracy_proportion-weighting"],
                  "n_neurons": int(net.n_neurons), "base_model_path": str(base_model),
                  "assign_limit": options.get("assign_limit")}
        deployable = all(g in point.groups for g in DEPLOYABLE_GROUPS)
        trained = _in_training(point.scheme)
        if trained:
            common["saturated"] = saturated_fractions(net)
        if net.quant is not None and net.quant.lost_decays:
            common["lost_decays"] = list(net.quant.lost_decays)
        commons.append((common, pred == data.test_labels, deployable, trained))
        if deployable and options.get("integer", True):
            for i, p in enumerate(points):
                net.config = cfg.with_overrides([f"inference.{k}={v}"
                                                 for k, v in p.inference.items()])
                models.append(intsim.from_network(net))
                owners.append((t, i))
                net.config = cfg
    # every task's config has the base model's seed: one test stream for all
    seed = flow.stream_seed(nets[0].config.seed, "test")
    if grouped:
        ran = intsim.run_integer_group(models, data.test_images, seed, ids, backend,
                                       with_ops=True)
    else:
        ran = [intsim.run_integer(m, data.test_images, seed, ids, backend, with_ops=True)
               for m in models]
    results = dict(zip(owners, ran))
    model_of = dict(zip(owners, models))
    n_rows = sum(len(points) for points in tasks)
    share = (time.perf_counter() - started) / n_rows
    out = []
    for t, (points, point, net, _, _) in enumerate(preps):
        common, float_correct, deployable, trained = commons[t]
        cfg = net.config
        # post-training quantization trains in float: its training energy is the float one
        train_ops, train_plan = ((net.ops["train"], net.quant.plan) if trained
                                 else (base.ops.get("train"), QuantPlan("none")))
        rows = []
        for i, p in enumerate(points):
            t0 = time.perf_counter()
            row = dict(common)
            test_ops = net.ops["test"]
            if (t, i) in results:
                model = model_of[(t, i)]
                preds, _, ops = results[(t, i)]
                int_correct = np.asarray(preds) == data.test_labels
                row["accuracy_integer"] = float(int_correct.mean())
                row["infer_ops"] = {k: float(np.mean(v)) for k, v in ops.items()}
                row["infer_ops"]["steps_median"] = float(np.median(ops["steps"]))
                row["costs"] = {name: cm.integer_inference_cost(model, ops)
                                for name, cm in cost_models.items()}
                test_ops = integer_op_counts(model, ops)
            row["accuracy"] = row.get("accuracy_integer", row["accuracy_float_sim"])
            row.update(sample_fields(cfg.seed, row["accuracy"],
                                     int_correct if "accuracy_integer" in row else float_correct,
                                     digest))
            row.update(cost_fields(net, test_ops, net.quant.plan, train_ops, train_plan))
            row.update({"seconds": share + time.perf_counter() - t0, "deployable": deployable})
            if options.get("save_models") and trained:  # post-training points are cheap to redo
                from .modelfile import save_network

                path = Path(options["save_models"]) / f"{point.key(options['base_digest'])}.tsnn"
                if not path.exists():
                    save_network(net, path, metrics=tested[t][0])
                row["model_file"] = str(path)
            rows.append(row)
        out.append(rows)
    return out


def shares_spikes(point: Point) -> bool:
    """Whether ``point`` is evaluated on its base model's input spikes, like every other such
    point of the exploration: a post-training point (an in-training one trains a network of
    its own, and its label assignment and tests follow that training)."""
    return not _in_training(point.scheme) and not point.train_time_steps


#: tasks (quantizations) per group of ``run_exploration`` (``group_size``); 1: no grouping
GROUP_SIZE = 8


def group_tasks(tasks: list[list[Point]], group_size: int) -> list[list[list[Point]]]:
    """The work units of an exploration: the tasks that share their input spikes
    (``shares_spikes``) in groups of up to ``group_size``, those with the same weight format
    next to each other (they share their weight rows' sums too), and every other task alone,
    in the order given."""
    if group_size <= 1:
        return [[t] for t in tasks]
    shared = [t for t in tasks if shares_spikes(t[0])]
    alone = [[t] for t in tasks if not shares_spikes(t[0])]
    order = {id(t): n for n, t in enumerate(shared)}
    shared.sort(key=lambda t: (json.dumps(t[0].groups.get("weights"), sort_keys=True),
                               order[id(t)]))
    return [shared[i:i + group_size] for i in range(0, len(shared), group_size)] + alone


def integer_op_counts(model, ops: dict):
    """The test phase's ``OpCounts`` of integer inference, from intsim's per-sample counts (so
    that the ASIC energy model sees the steps an early exit or a shorter T saved)."""
    from .ops import OpCounts

    n = int(model.n_neurons)
    steps, spikes = int(np.sum(ops["steps"])), int(np.sum(ops["exc_spikes"]))
    return OpCounts(samples=len(ops["steps"]), presentations=int(np.sum(ops["presentations"])),
                    time_steps=steps, input_spikes=int(np.sum(ops["input_spikes"])),
                    exc_spikes=spikes, neuron_updates_exc=steps * n,
                    neuron_updates_inh=steps * n if model.inh is not None else 0,
                    synaptic_events=int(np.sum(ops["input_spikes"])) * n,
                    lateral_events=spikes * (n - 1))


def integer_cost_models(names) -> dict:
    """The named cost models that cost integer inference (``integer_inference_cost(model,
    ops)``), a third party's included, made once: name -> object."""
    from .registry import get_registry

    out = {}
    reg = get_registry()
    for name in names:
        obj = reg.get("cost_model", name)
        if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "integer_inference_cost")):
            obj = obj()        # a class or a factory
        if not hasattr(obj, "integer_inference_cost"):
            raise ConfigError(f"cost model {name!r} does not cost integer inference "
                              "(it has no integer_inference_cost method)")
        out[name] = obj
    return out


def saturated_fractions(net) -> dict:
    """For each learned group on a grid (weights, theta): the fraction of its values at the
    format's largest code. A trained point whose theta sits there has lost its homeostasis."""
    out = {}
    plan = net.quant.plan if net.quant is not None else None
    for group, values in (("weights", net.w), ("theta", net.theta)):
        spec = plan.groups.get(group) if plan is not None else None
        if spec is None or values.size == 0:
            continue
        out[group] = float(np.mean(values >= spec.fmt.max))
    return out


def baseline_row(base_model: str, options: dict) -> dict:
    """The float model itself, measured the same way (the reference of every saving)."""
    from . import train as flow
    from .modelfile import load_network

    net = load_network(base_model)
    if options.get("backend"):
        net.config = net.config.with_overrides([f'backend="{options["backend"]}"'])
    data = flow.load_dataset(net.config)
    backend = flow.get_backend(net.config)
    flow.assign(net, _assign_data(data, options), backend=backend, progress=False)
    metrics, correct = evaluate_correct(net, data, backend)
    fp32 = QuantPlan("none")
    return {"accuracy": metrics["accuracy"], "accuracy_float_sim": metrics["accuracy"],
            **sample_fields(net.config.seed, metrics["accuracy"], correct, samples_digest(data)),
            "n_neurons": int(net.n_neurons), "base_model_path": str(base_model),
            **cost_fields(net, net.ops["test"], fp32, net.ops.get("train"), fp32),
            "deployable": False}


def evaluate_correct(net, data, backend):
    """``train.evaluate``'s metrics and, per test sample, whether the network's classifier got
    it right (the paired tests of ``select`` compare these between models)."""
    from . import train as flow

    metrics, pred = flow.evaluate(net, data, backend=backend, progress=False,
                                  return_predictions=True)
    return metrics, pred == data.test_labels


def samples_digest(data) -> str:
    """Which test samples an accuracy is over: a paired test needs the same ones."""
    h = hashlib.sha256(np.ascontiguousarray(data.test_labels).tobytes())
    h.update(np.ascontiguousarray(data.test_images).tobytes())
    return h.hexdigest()[:16]


def sample_fields(seed: int, accuracy: float, correct, digest: str) -> dict:
    """The per-seed fields of a results row (lists with one entry per seed): the seeds, their
    accuracies, per-sample correctness as hex bitmaps (``stats.pack_correct``), the number of
    test samples and which ones (``samples_digest``)."""
    from .stats import pack_correct

    return {"seeds": [int(seed)], "accuracy_seeds": [float(accuracy)],
            "correct": [pack_correct(correct)], "test_sizes": [int(len(correct))],
            "test_digests": [digest]}


def cost_fields(net, test_ops, plan, train_ops, train_plan) -> dict:
    """The memory and energy columns of a results row: inference costed under ``plan``,
    training (when its counts are known) under ``train_plan``."""
    from .builtin.costs import EnergyModel, MemoryModel

    memory = MemoryModel().estimate(net, {"train": train_ops} if train_ops else None, plan)
    test = EnergyModel().estimate(net, {"test": test_ops}, plan)["phases"]["test"]
    train = (EnergyModel().estimate(net, {"train": train_ops}, train_plan)["phases"]["train"]
             if train_ops is not None else {})
    return {"memory_model_bits": memory["model_bits"],
            "memory_inference_bits": memory["inference_bits"],
            "memory_training_bits": memory["training_bits"],
            "memory_parameters_bits": memory["parameters_bits"],
            "energy_inference_pj": test["pj_per_sample"],
            "energy_train_pj": train.get("pj_per_sample"),
            "energy_breakdown_inference": test["breakdown_pj_per_sample"],
            "energy_model": ASIC_ENERGY_LABEL}


#: the label every ASIC energy figure carries, so that nobody takes it for a board's
ASIC_ENERGY_LABEL = "ASIC 45 nm model (operation counts x Horowitz ISSCC 2014), not a board"


#: seconds a Dask cluster may have no workers before the exploration stops (dask config
#: ``tinysnn.no-workers-timeout`` overrides it, ``explore --no-workers-timeout`` overrides both)
NO_WORKERS_TIMEOUT = 60.0
#: Linux prctl option: the signal a process gets when its parent dies
_PR_SET_PDEATHSIG = 1


def _worker_init(parent_pid: int):
    # one BLAS thread per worker process: the workers already use every core
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    die_with_parent(parent_pid)


def die_with_parent(parent_pid: int) -> None:
    """End this process when the process ``parent_pid`` ends, however it ends (SIGKILL too):
    an orphaned worker would go on computing points that nobody records. On Linux the kernel
    signals it (``prctl(PR_SET_PDEATHSIG)``); elsewhere a thread watches the parent id."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent_pid:      # the parent died before the call took effect
                os._exit(1)
            return

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="tinysnn-parent-watch", daemon=True).start()


@contextlib.contextmanager
def results_lock(path: Path):
    """Hold an exclusive lock on the results file (``flock``) while an exploration writes it;
    another holder is a one-line error. The lock goes with the process, so a killed
    exploration leaves none behind."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TinySNNError(f"{path} is being written by another tinysnn explore (it holds "
                               "the file's lock): wait for it to finish, or give another "
                               "--results") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def no_workers_timeout_default() -> float:
    """The dask config value ``tinysnn.no-workers-timeout`` (seconds), else 60."""
    import dask.config

    value = dask.config.get("tinysnn.no-workers-timeout", NO_WORKERS_TIMEOUT)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"dask config tinysnn.no-workers-timeout must be a number of seconds, "
                          f"got {value!r}") from None
    if not 0 < value < float("inf"):
        raise ConfigError(f"dask config tinysnn.no-workers-timeout must be positive, got {value}")
    return value


def run_on_dask(scheduler: str, fn, tasks: list, args: tuple, on_done, *,
                no_workers_timeout: float, poll: float = 1.0) -> None:
    """``fn(task, *args)`` for every task on the Dask cluster at ``scheduler``;
    ``on_done(task, future)`` as each finishes. When the cluster has had no workers for
    ``no_workers_timeout`` seconds, the rest is cancelled and a ``TinySNNError`` says so."""
    try:
        from dask.distributed import Client, wait
    except ImportError:
        raise TinySNNError("--scheduler needs dask[distributed]: pip install "
                           "'dask[distributed]'") from None
    with Client(scheduler, timeout="20s") as client:
        futures = {client.submit(fn, t, *args, pure=False): t for t in tasks}
        pending, idle_since, warned = set(futures), None, False
        while pending:
            try:
                done, pending = wait(pending, timeout=poll, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            for fut in done:
                on_done(futures[fut], fut)
            if not pending or client.scheduler_info().get("workers"):
                idle_since, warned = None, False
                continue
            now = time.monotonic()
            idle_since = idle_since or now
            if not warned:
                log.info("explore: the Dask cluster at %s has no workers; waiting up to %g s "
                         "for one", scheduler, no_workers_timeout)
                warned = True
            if now - idle_since >= no_workers_timeout:
                client.cancel(list(pending))
                raise TinySNNError(
                    f"the Dask cluster at {scheduler} has had no workers for "
                    f"{no_workers_timeout:g} s; {len(pending)} of {len(futures)} tasks were not "
                    "run: start workers (dask worker ADDRESS) and rerun to resume")


def run_exploration(points: list[Point], base_model: str, results: str, *, workers: int = 1,
                    scheduler: str | None = None, options: dict | None = None,
                    progress: bool = True, no_workers_timeout: float | None = None,
                    group_size: int = GROUP_SIZE) -> list[dict]:
    """Evaluate every point not yet in ``results``; append each as it finishes. The results
    file is locked for the whole run. ``no_workers_timeout``: with ``scheduler``, seconds
    without a worker before it stops (default: ``no_workers_timeout_default()``).
    ``group_size``: post-training quantizations evaluated together on the same input spikes
    (``group_tasks``, ``evaluate_group``); 1 evaluates every point on its own. The rows are
    the same either way, but for their ``seconds``."""
    results = Path(results)
    if group_size < 1:
        raise ConfigError(f"group size must be at least 1, got {group_size}")
    with results_lock(results):
        return _explore_locked(points, base_model, results, workers=workers,
                               scheduler=scheduler, options=options, progress=progress,
                               no_workers_timeout=no_workers_timeout, group_size=group_size)


def base_digest(base_model, options: dict) -> str:
    """What identifies a base model in the keys of its points: its checksum, and the label
    assignment's sample limit when there is one (a different assignment, different points)."""
    digest = file_digest(base_model)
    if options.get("assign_limit"):
        digest += f"/assign{int(options['assign_limit'])}"
    return digest


def evaluate_unit(unit: list[list[Point]], base_model: str, options: dict,
                  grouped: bool) -> list[list[dict]]:
    """The rows of one work unit of ``group_tasks`` (a list of tasks), as a worker computes
    them: together (``evaluate_group``) or each task on its own (``evaluate_points``)."""
    if grouped:
        return evaluate_group(unit, base_model, options)
    return [evaluate_points(task, base_model, options) for task in unit]


def _explore_locked(points, base_model, results: Path, *, workers, scheduler, options,
                    progress, no_workers_timeout, group_size) -> list[dict]:
    from tqdm import tqdm

    options = dict(options or {})
    digest = options["base_digest"] = base_digest(base_model, options)
    repair_results(results)
    done = {row.get("key") for row in read_results(results)}
    base_key = hashlib.sha256(f"baseline:{digest}".encode()).hexdigest()[:20]
    if base_key not in done:
        row = baseline_row(base_model, options)
        row.update({"key": base_key, "kind": "baseline",
                    "label": f"float64 baseline N={row['n_neurons']} (FP32 memory)",
                    "scheme": "none", "bits": 32, "rounding": "none", "group_set": "none",
                    "groups": {}, "base_model": digest})
        _append(results, row)
    todo = [p for p in points if p.key(digest) not in done]
    skipped = len(points) - len(todo)
    if skipped and progress:
        log.info("explore: %d of %d points already in %s; %d to go", skipped, len(points),
                 results, len(todo))

    def record(unit, rows_of_tasks):
        for task, rows in zip(unit, rows_of_tasks):
            for point, row in zip(task, rows):
                row.update({"key": point.key(digest), "base_model": digest, **asdict(point)})
                _append(results, row)

    def size(unit):
        return sum(len(task) for task in unit)

    def name(unit):
        more = size(unit) - 1
        return unit[0][0].label + (f" (and the {more} other points of its group)" if more
                                   else "")

    groups: dict[str, list[Point]] = {}      # one task per quantization point
    for p in todo:
        groups.setdefault(p.quantization().key(digest), []).append(p)
    units = group_tasks(list(groups.values()), group_size)
    args = (base_model, options, group_size > 1)
    bar = tqdm(total=len(todo), desc="explore", unit="point", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    failures = []
    if scheduler:
        def on_done(unit, fut):
            try:
                record(unit, fut.result())
            except Exception as exc:  # noqa: BLE001 - report and go on with the others
                failures.append((name(unit), repr(exc), size(unit)))
            bar.update(size(unit))

        if no_workers_timeout is None:
            no_workers_timeout = no_workers_timeout_default()
        try:
            run_on_dask(scheduler, evaluate_unit, units, args, on_done,
                        no_workers_timeout=no_workers_timeout)
        finally:
            bar.close()
    elif workers <= 1:
        for unit in units:
            try:
                record(unit, evaluate_unit(unit, *args))
            except TinySNNError as exc:
                failures.append((name(unit), str(exc), size(unit)))
            bar.update(size(unit))
    else:
        # spawn, not fork: the parent may already run OpenMP threads (a compiled backend's
        # parallel inference in the baseline), and forking such a process is unsafe
        import multiprocessing

        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                                 initargs=(os.getpid(),),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(evaluate_unit, u, *args): u for u in units}
            for fut in as_completed(futures):
                unit = futures[fut]
                try:
                    record(unit, fut.result())
                except Exception as exc:  # noqa: BLE001
                    failures.append((name(unit), repr(exc), size(unit)))
                bar.update(size(unit))
    bar.close()
    for label, why, _ in failures:
        log.error("explore: point %r failed: %s", label, why)
    if failures:
        failed = sum(n for *_, n in failures)
        raise TinySNNError(f"{failed} of {len(todo)} points failed (see above); the "
                           f"finished ones are in {results}: fix the cause and rerun to finish")
    return read_results(results)


# ---- the same exploration over K seeds -----------------------------------------------------

def per_seed_results(results, seed: int) -> Path:
    """The results file of one seed of a seeded exploration (next to ``results``)."""
    results = Path(results)
    return results.with_name(results.name + ".seeds") / f"seed{int(seed)}.jsonl"


def point_identity(row: dict) -> str:
    """What makes rows of different seeds the same point: everything but the formats (whose
    integer bits follow each seed's float model) and the base model."""
    names = ("kind", "label", "scheme", "bits", "rounding", "group_set", "inference",
             "train_time_steps")
    return json.dumps({n: row.get(n) or None for n in names}, sort_keys=True)


def _mean_of(values):
    """Numbers: the mean (an integer when all are equal); dicts with the same keys: per key;
    anything else: the first seed's."""
    first = values[0]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return first if all(v == first for v in values) else float(np.mean(values))
    if all(isinstance(v, dict) for v in values) and all(v.keys() == first.keys() for v in values):
        return {k: _mean_of([v[k] for v in values]) for k in first}
    return first


def combine_seeds(per_seed: list[list[dict]], *, confidence: float = 0.95,
                  run_dir: str | None = None) -> list[dict]:
    """One row per point over seeds from per-seed rows (``per_seed[i]``: the rows of one seed's
    base model). ``accuracy`` becomes the mean over seeds, ``accuracy_ci`` its Student-t interval,
    the per-seed fields the seeds' lists; other figures (energy, op counts, costs) the mean over
    seeds. A point missing in some seed is left out."""
    from .stats import accuracy_summary

    indexed = []
    for rows in per_seed:
        by_point = {}
        for row in rows:
            if "correct" not in row:
                raise InputError(f"the per-seed row {row.get('label')!r} has no per-sample "
                                 "results: it was written by an older tinysnn; give another "
                                 "--results")
            by_point[point_identity(row)] = row
        indexed.append(by_point)
    digests = sorted({row.get("base_model") for rows in per_seed for row in rows} - {None})
    tag = hashlib.sha256(json.dumps(digests).encode()).hexdigest()[:20]
    out = []
    for ident in indexed[0] if indexed else {}:
        rows = [d.get(ident) for d in indexed]
        if any(r is None for r in rows):
            continue
        merged = copy.deepcopy(rows[0])
        for name, value in rows[0].items():
            if name not in SEED_FIELDS:
                merged[name] = _mean_of([r.get(name) for r in rows])
        for name in SEED_FIELDS:
            merged[name] = [v for r in rows for v in r[name]]
        merged.update(accuracy_summary(merged["accuracy_seeds"], confidence))
        merged["seconds"] = float(sum(r.get("seconds") or 0.0 for r in rows))
        merged["groups"] = rows[0]["groups"]          # the first seed's (select builds it)
        merged["groups_seeds"] = [r["groups"] for r in rows]
        merged["base_model_path"] = rows[0].get("base_model_path")
        merged["base_model_paths"] = [r.get("base_model_path") for r in rows]
        if any(r.get("model_file") for r in rows):
            merged["model_files"] = [r.get("model_file") for r in rows]
        merged["base_model"] = f"seeds:{tag}"
        if run_dir is not None:
            merged["run_dir"] = str(run_dir)
        merged["key"] = hashlib.sha256(f"{ident}|{tag}".encode()).hexdigest()[:20]
        out.append(merged)
    return out


def run_seeded_exploration(seed_models: list[tuple[int, str]], points_of, results, *,
                           workers: int = 1, scheduler: str | None = None,
                           options: dict | None = None, progress: bool = True,
                           no_workers_timeout: float | None = None, confidence: float = 0.95,
                           run_dir: str | None = None,
                           group_size: int = GROUP_SIZE) -> list[dict]:
    """Each point over K seeds: ``seed_models`` are ``(seed, float model path)``, one per seed;
    ``points_of(path)`` the points of that model (their formats follow its ranges). Every seed
    is explored into its own file (``per_seed_results``), resumable point by point like a single
    exploration; then one row per point over the seeds is appended to ``results``
    (``combine_seeds``), each once."""
    results = Path(results)
    options = dict(options or {})
    per_seed = []
    for seed, model in seed_models:
        if progress:
            log.info("explore: seed %s (%s)", seed, model)
        rows = run_exploration(points_of(model), model, per_seed_results(results, seed),
                               workers=workers, scheduler=scheduler, options=options,
                               progress=progress, no_workers_timeout=no_workers_timeout,
                               group_size=group_size)
        digest = base_digest(model, options)
        mine = [r for r in rows if r.get("base_model") == digest]
        if any(r.get("seeds") != [seed] for r in mine if "seeds" in r):
            raise InputError(f"{model} was trained with another seed than the {seed} its run "
                             "directory names")
        per_seed.append(mine)
    with results_lock(results):
        repair_results(results)
        done = {row.get("key") for row in read_results(results)}
        for row in combine_seeds(per_seed, confidence=confidence, run_dir=run_dir):
            if row["key"] not in done:
                _append(results, row)
    return read_results(results)
