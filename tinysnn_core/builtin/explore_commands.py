"""Sub-commands of the quantization flow: explore, select, report."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from tinysnn_core import hookimpl
from tinysnn_core.errors import ConfigError, TinySNNError
from tinysnn_core.log import TinySNNWarning

if TYPE_CHECKING:
    from tinysnn_core.network import Network


def _csv(text, cast=str, flag: str = "", lo=None, hi=None):
    """The comma-separated values of ``text``; with ``flag`` (a flag that was given) at least
    one value, each in ``lo..hi`` when those are given."""
    what = f"{flag}: " if flag else ""
    try:
        values = [cast(x.strip()) for x in str(text).split(",") if x.strip()]
    except ValueError:
        kind = {int: "integers", float: "numbers"}.get(cast, "names")
        raise ConfigError(f"{what}cannot parse the list {text!r} (comma-separated {kind})") from None
    if flag and not values:
        raise ConfigError(f"{flag} gives no values")
    for v in values:
        if cast is float and v != v:
            raise ConfigError(f"{what}{v} is not a number")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(f"{what}{v} is outside {lo}..{hi}")
    return values


def _check_flags(args, reg) -> None:
    """The single-valued explore flags, before any model is read (the lists are checked where
    they are parsed)."""
    if not 1 <= args.neuron_bits <= 32:
        raise ConfigError(f"--neuron-bits: {args.neuron_bits} is outside 1..32")
    if args.decay_bits is not None and not 2 <= args.decay_bits <= 32:
        raise ConfigError(f"--decay-bits: {args.decay_bits} is outside 2..32")
    if not 1 <= args.workers <= 1024:
        raise ConfigError(f"--workers: {args.workers} is outside 1..1024")
    if args.assign_limit is not None and args.assign_limit < 1:
        raise ConfigError(f"--assign-limit must be a positive number of samples, got "
                          f"{args.assign_limit}")
    if args.scheduler is not None and not args.scheduler.strip():
        raise ConfigError("--scheduler is empty: give an address such as tcp://127.0.0.1:8786")
    timeout = args.no_workers_timeout
    if timeout is not None and not 0 < timeout < float("inf"):
        raise ConfigError(f"--no-workers-timeout must be a positive number of seconds, got "
                          f"{timeout}")
    if args.backend is not None:
        reg.get_entry("backend", args.backend)       # an unknown name lists the known ones
    for flag, path in (("--results", args.results), ("--save-models", args.save_models)):
        if path is not None and not str(path).strip():
            raise ConfigError(f"{flag} is empty")
    if Path(args.results).is_dir():
        raise ConfigError(f"--results {args.results} is a directory; give a file")
    if args.save_models and Path(args.save_models).exists() and not Path(args.save_models).is_dir():
        raise ConfigError(f"--save-models {args.save_models} exists and is not a directory")


class ExploreCommand:
    """Grid over scheme x precision x rounding x parameter groups (+ per-group sensitivity),
    one JSON line per finished point; rerun to resume."""

    def add_arguments(self, p):
        p.add_argument("model", nargs="+", help="the trained float model(s) (.tsnn) that PTQ "
                       "points quantize and ITQ points retrain from their configuration; several "
                       "models (e.g. N = 100, 400, 1600) make network size an axis")
        p.add_argument("--results", "-r", default="runs/explore.jsonl", help="results file (JSON lines)")
        p.add_argument("--schemes", default="ptq,itq", help="quantizer plugins (default ptq,itq)")
        p.add_argument("--bits", default="16,12,8,6,4,2", help="precisions (default 16,12,8,6,4,2)")
        p.add_argument("--roundings", default="truncation,nearest,stochastic",
                       help="rounding plugins (default truncation,nearest,stochastic)")
        p.add_argument("--group-sets", default="weights,all",
                       help="weights (weights alone), all (weights + neuron parameters at the "
                            "same precision), mixed (weights swept, neuron parameters at "
                            "--neuron-bits)")
        p.add_argument("--neuron-bits", type=int, default=16,
                       help="precision of the neuron groups in the 'mixed' set (default 16)")
        p.add_argument("--decay-bits", type=int,
                       help="precision of the decay group at every grid point that quantizes it "
                            "(default: that point's neuron precision). theta's decay exp(-1/1e7) "
                            "needs about 32 bits, or in-training points lose it; the group holds "
                            "3-4 constants")
        p.add_argument("--time-steps", help="inference axis: time steps T per presentation, "
                       "e.g. 350,200,100 (default: the model's)")
        p.add_argument("--rates", help="inference axis: input rate of the first presentation in "
                       "Hz, e.g. 63.75,127.5 (default: the encoder's)")
        p.add_argument("--retries", help="inference axis: maximum retries, e.g. 4,0 (0: the "
                       "retry rule off; default: the encoder's)")
        p.add_argument("--exit-margins", help="inference axis: early-exit margins in spikes, "
                       "e.g. 0,2,4 (0: off; docs/fixed-point.md section 6)")
        p.add_argument("--train-time-steps", help="training axis of in-training points: T "
                       "while they learn, e.g. 350,200 (default: the model's)")
        p.add_argument("--cost-models", default="",
                       help="cost models that cost integer inference, added to every row "
                            "(e.g. board-nucleo-l432kc; tinysnn plugins --kind cost_model)")
        p.add_argument("--boards", default="", help="shorthand: the board-NAME cost model of "
                       "each board, e.g. nucleo-l432kc,qemu-mps2-an385")
        p.add_argument("--no-sensitivity", action="store_true",
                       help="skip the per-group sensitivity sweep")
        p.add_argument("--workers", type=int, default=1, help="local worker processes")
        p.add_argument("--scheduler", help="address of a Dask distributed scheduler, "
                                           "e.g. tcp://127.0.0.1:8786")
        p.add_argument("--no-workers-timeout", type=float, metavar="SECONDS",
                       help="with --scheduler: stop when the cluster has had no workers this "
                            "long (default: dask config tinysnn.no-workers-timeout, else 60)")
        p.add_argument("--group-size", type=int, default=None, metavar="K",
                       help="post-training points evaluated together on the same input spikes "
                            "(drawn once for all; same results), default 8")
        p.add_argument("--no-group", action="store_true",
                       help="evaluate every point on its own (the same as --group-size 1)")
        p.add_argument("--backend", help="simulation backend for the points (default: the model's)")
        p.add_argument("--save-models", metavar="DIR",
                       help="also save the model of every in-training (ITQ) point here, so that "
                            "select need not retrain it")
        p.add_argument("--assign-limit", type=int, metavar="N",
                       help="assign labels on the first N training samples (default: all)")
        p.add_argument("--seeds", metavar="K", help="each point over K seeds: every MODEL is "
                       "then a run directory of tinysnn run --seeds, and its first K seeds' "
                       "models are the bases (one per seed); each seed is explored into "
                       "RESULTS.seeds/seed<S>.jsonl, and RESULTS gets one row per point with "
                       "the mean accuracy, its 95%% CI and per-sample results per seed")
        p.add_argument("--quiet", "-q", action="store_true")

    def run(self, args) -> int:
        from tinysnn_core.explore import build_grid, decays_lost_in_training, run_exploration
        from tinysnn_core.modelfile import load_network
        from tinysnn_core.registry import get_registry

        from tinysnn_core.explore import inference_variants

        reg = get_registry()
        _check_flags(args, reg)
        variants = inference_variants(
            time_steps=_csv(args.time_steps, int, "--time-steps")
            if args.time_steps is not None else None,
            rate_hz=_csv(args.rates, float, "--rates") if args.rates is not None else None,
            max_retries=_csv(args.retries, int, "--retries") if args.retries is not None else None,
            exit_margin=_csv(args.exit_margins, int, "--exit-margins")
            if args.exit_margins is not None else None)
        seed_sets = _seed_sets(args)
        group_size = _group_size(args)
        models = [s[0][1] for s in seed_sets] if seed_sets else args.model
        nets = [load_network(m) for m in models]
        net = nets[0]
        for v in variants:  # the config schema checks every value, before any work
            net.config.with_overrides([f"inference.{k}={val}" for k, val in v.items()])
        train_steps = (_csv(args.train_time_steps, int, "--train-time-steps", 1, 65535)
                       if args.train_time_steps is not None else [0])
        cost_models = [reg.get_entry("cost_model", c).name for c in _csv(args.cost_models)]
        cost_models += [reg.get_entry("cost_model", f"board-{b}").name for b in _csv(args.boards)]
        schemes = [reg.get_entry("quantizer", s).name
                   for s in _csv(args.schemes, str, "--schemes")]
        roundings = [reg.get_entry("rounding", r).name
                     for r in _csv(args.roundings, str, "--roundings")]
        bits = _csv(args.bits, int, "--bits", 1, 32)
        group_sets = _csv(args.group_sets, str, "--group-sets")
        from tinysnn_core.quant import model_ranges

        options = {"backend": args.backend, "save_models": args.save_models,
                   "cost_models": cost_models}
        if args.assign_limit:
            options["assign_limit"] = args.assign_limit  # part of every point's key
        def grid(net):
            return build_grid(schemes=schemes, bits=bits, roundings=roundings,
                              group_sets=group_sets,
                              sensitivity=not args.no_sensitivity, ranges=model_ranges(net),
                              neuron_bits=args.neuron_bits, decay_bits=args.decay_bits,
                              inference=variants, train_time_steps=train_steps)

        for i, (path, net) in enumerate(zip(models, nets)):
            points = grid(net)
            for msg in decays_lost_in_training(net, points):
                warnings.warn(f"{msg}; --decay-bits 32 keeps theta's decay", TinySNNWarning,
                              stacklevel=2)
            if seed_sets:
                from tinysnn_core.explore import run_seeded_exploration

                rows = run_seeded_exploration(
                    seed_sets[i], lambda m: grid(load_network(m)), args.results,
                    workers=args.workers, scheduler=args.scheduler, options=options,
                    progress=not args.quiet, no_workers_timeout=args.no_workers_timeout,
                    run_dir=args.model[i], group_size=group_size)
                continue
            rows = run_exploration(points, path, args.results, workers=args.workers,
                                   scheduler=args.scheduler, options=options,
                                   progress=not args.quiet,
                                   no_workers_timeout=args.no_workers_timeout,
                                   group_size=group_size)
        print(f"{len([r for r in rows if r.get('kind') != 'baseline'])} points in {args.results}")
        return 0


def _group_size(args) -> int:
    """--group-size / --no-group as run_exploration's group_size."""
    from tinysnn_core.explore import GROUP_SIZE

    if args.no_group:
        if args.group_size not in (None, 1):
            raise ConfigError("--no-group and --group-size: give one of them")
        return 1
    size = GROUP_SIZE if args.group_size is None else args.group_size
    if not 1 <= size <= 1024:
        raise ConfigError(f"--group-size: {size} is outside 1..1024")
    return size


def _seed_sets(args):
    """With --seeds K: per MODEL (a run directory of run --seeds) its first K seeds'
    ``(seed, model path)``; without: None (and no MODEL may be a directory)."""
    if args.seeds is None:
        for m in args.model:
            if Path(m).is_dir():
                raise ConfigError(f"{m} is a directory: explore a run directory of tinysnn run "
                                  "--seeds with --seeds K")
        return None
    from tinysnn_core.seeds import parse_seed_count, read_run_dir

    k = parse_seed_count(args.seeds)
    return [read_run_dir(m, k) for m in args.model]


def _cost_model_arguments(p) -> None:
    p.add_argument("--cost-model", help="choose by this cost model's figure (one whose figures "
                   "tinysnn explore --cost-models put in the rows, a third party's included): "
                   "meet the target and the budget, the least figure")
    p.add_argument("--figure", help="with --cost-model: the figure to choose by (default: its "
                   "first median, e.g. bytes_median)")
    p.add_argument("--max-cost", type=float, help="with --cost-model: budget on the figure")


def _check_cost_model_arguments(args) -> None:
    if args.cost_model is None and (args.figure is not None or args.max_cost is not None):
        raise ConfigError("--figure and --max-cost choose by a cost model: give --cost-model")
    if args.cost_model is not None and args.board:
        raise ConfigError("--cost-model and --board are two ways to choose: give one")
    v = args.max_cost
    if v is not None and not (v > 0 and v != float("inf")):
        raise ConfigError(f"--max-cost must be a positive number, got {v}")


def _check_target(args) -> None:
    """--target is an accuracy (a fraction), --within percentage points; both finite."""
    if args.target is not None and not 0 <= args.target <= 1:
        raise ConfigError(f"--target is an accuracy in 0..1 (e.g. 0.85), got {args.target}")
    if args.within is not None and not 0 <= args.within <= 100:
        raise ConfigError(f"--within is percentage points in 0..100, got {args.within}")


class SelectCommand:
    """Choose the Pareto-optimal model that meets an accuracy target (and budgets); write it."""

    def add_arguments(self, p):
        p.add_argument("results", help="results file of tinysnn explore")
        p.add_argument("--model", help="the float model whose baseline the target refers to "
                       "(default: the most accurate baseline of the results)")
        p.add_argument("--board", help="choose for this board: fit its flash and RAM, meet the "
                       "budgets under its cost model, the least latency (or energy)")
        p.add_argument("--latency-ms", type=float, help="with --board: latency budget")
        p.add_argument("--energy-uj", type=float, help="with --board: energy budget (board "
                       "model: cycles x datasheet current x VDD)")
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument("--target", type=float, help="absolute accuracy target, e.g. 0.85")
        target.add_argument("--within", type=float,
                            help="accuracy within this many percentage points of the float model")
        p.add_argument("--confidence", type=float, default=0.95,
                       help="confidence of the paired test that decides the target when the "
                            "results have per-sample results (default 0.95)")
        p.add_argument("--max-memory-kib", type=float, help="budget: weights + neuron parameters")
        p.add_argument("--max-energy-uj", type=float, help="budget: energy per inference")
        p.add_argument("--reward", default="ratio", choices=["ratio", "gap"])
        p.add_argument("--mu", type=float, default=1.0, help="weight of the memory saving (ratio)")
        p.add_argument("--tau", type=float, default=0.01, help="accuracy-gap scale (gap)")
        _cost_model_arguments(p)
        p.add_argument("--out", "-o", default="runs/selected.tsnn", help="chosen model file")
        p.add_argument("--json", help="write the selection as JSON too")
        p.add_argument("--quiet", "-q", action="store_true")

    def run(self, args) -> int:
        from tinysnn_core.explore import read_results
        from tinysnn_core.select import select

        from tinysnn_core.select import select_by_cost, select_for_board

        _check_target(args)
        if not 0.5 <= args.confidence < 1:
            raise ConfigError(f"--confidence is in 0.5..1 (e.g. 0.95), got {args.confidence}")
        if not 0 <= args.mu < float("inf"):
            raise ConfigError(f"--mu must be a non-negative number, got {args.mu}")
        if not 0 < args.tau < float("inf"):
            raise ConfigError(f"--tau must be a positive number, got {args.tau}")
        rows = read_results(args.results)
        if not rows:
            raise TinySNNError(f"{args.results} has no results")
        for name in ("latency_ms", "energy_uj", "max_memory_kib", "max_energy_uj"):
            v = getattr(args, name)
            if v is not None and not (v > 0 and v != float("inf")):
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive number, got {v}")
        _check_cost_model_arguments(args)
        if args.cost_model:
            sel = select_by_cost(rows, args.cost_model, args.figure, target=args.target,
                                 within_pp=args.within, max_cost=args.max_cost,
                                 base_model=args.model, confidence=args.confidence)
        elif args.board:
            sel = select_for_board(rows, args.board, target=args.target, within_pp=args.within,
                                   max_latency_ms=args.latency_ms, max_energy_uj=args.energy_uj,
                                   base_model=args.model, confidence=args.confidence)
        else:
            if args.latency_ms or args.energy_uj:
                raise ConfigError("--latency-ms and --energy-uj are board budgets: give --board")
            sel = select(rows, target=args.target, within_pp=args.within,
                         max_memory_bits=args.max_memory_kib * 8192 if args.max_memory_kib else None,
                         max_energy_pj=args.max_energy_uj * 1e6 if args.max_energy_uj else None,
                         reward_kind=args.reward, mu=args.mu, tau=args.tau, base_model=args.model,
                         confidence=args.confidence)
        base_path = sel.chosen.get("base_model_path") or args.model
        if not base_path:
            raise ConfigError("the results do not name their base model: give --model")
        net = materialize(sel.chosen, base_path, progress=not args.quiet)
        from tinysnn_core.modelfile import save_network

        save_network(net, args.out, metrics={"accuracy": sel.chosen["accuracy"],
                                             "selection": sel.explanation})
        print(sel.explanation)
        print(f"model written to {args.out}")
        if args.json:
            Path(args.json).write_text(json.dumps({"chosen": sel.chosen, "baseline": sel.baseline,
                                                   "target": sel.target, "test": sel.test,
                                                   "explanation": sel.explanation}, indent=2))
        return 0


def materialize(row: dict, base_model: str, progress: bool = False) -> "Network":
    """The network of a results row: the float model with the row's plan (PTQ), or the saved
    model of an ITQ point."""
    from tinysnn_core import train as flow
    from tinysnn_core.explore import point_network
    from tinysnn_core.modelfile import load_network

    if row.get("model_file") and Path(row["model_file"]).exists():
        net = load_network(row["model_file"])
    else:
        net, data, backend = point_network(load_network(base_model), row["scheme"],
                                           row["groups"], progress=progress,
                                           train_time_steps=row.get("train_time_steps", 0))
        # labels on the training samples the exploration assigned them on (--assign-limit)
        limit = row.get("assign_limit") or _assign_limit_of(row.get("base_model", ""))
        flow.assign(net, data.subset(n_train=limit) if limit else data, backend=backend,
                    progress=progress)
    # the row's inference settings travel with the model (deploy and intsim read them)
    net.config = net.config.with_overrides(
        [f"inference.{k}={v}" for k, v in (row.get("inference") or {}).items()])
    return net


def _assign_limit_of(base_digest: str) -> int | None:
    """The --assign-limit an exploration's base digest records ("<sha>/assign<N>")."""
    _, _, tail = str(base_digest).partition("/assign")
    return int(tail) if tail.isdigit() else None


class ReportCommand:
    """Markdown + HTML report with plots of an exploration (and its selection)."""

    def add_arguments(self, p):
        p.add_argument("results", help="results file of tinysnn explore")
        p.add_argument("--model", help="the float model (for weight maps; the baseline the "
                       "target refers to, as in tinysnn select)")
        p.add_argument("--selected", help="the selected model (for weight maps)")
        target = p.add_mutually_exclusive_group()
        target.add_argument("--target", type=float)
        target.add_argument("--within", type=float)
        p.add_argument("--board", help="the board figures of this board: its candidates' "
                       "latency, board energy, instructions, cycles, flash and fit, accuracy vs "
                       "latency, and what early exit and fewer steps saved; with --target or "
                       "--within the selection is tinysnn select --board's")
        p.add_argument("--latency-ms", type=float, help="with --board: latency budget")
        p.add_argument("--energy-uj", type=float, help="with --board: energy budget (board "
                       "model: cycles x datasheet current x VDD)")
        _cost_model_arguments(p)
        p.add_argument("--curve", metavar="FILE.json", help="a training curve of the float model "
                       "(tinysnn run --curve) to draw")
        p.add_argument("--no-model-views", action="store_true",
                       help="leave out what needs the test set: the float model's confusion "
                       "matrix and a test sample's spike raster (drawn when --model is given)")
        p.add_argument("--out", "-o", default="runs/report", help="output directory")
        p.add_argument("--title", default="tinySNN exploration")

    def run(self, args) -> int:
        from tinysnn_core.explore import read_results
        from tinysnn_core.modelfile import load_network
        from tinysnn_core.report import write_report
        from tinysnn_core.select import select, select_by_cost, select_for_board

        _check_target(args)
        rows = read_results(args.results)
        if not rows:
            raise TinySNNError(f"{args.results} has no results")
        _check_cost_model_arguments(args)
        for name in ("latency_ms", "energy_uj"):
            v = getattr(args, name)
            if v is not None and not (v > 0 and v != float("inf")):
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive number, got {v}")
        if not args.board and (args.latency_ms is not None or args.energy_uj is not None):
            raise ConfigError("--latency-ms and --energy-uj are board budgets: give --board")
        sel = None
        if args.target is not None or args.within is not None:
            if args.cost_model:
                sel = select_by_cost(rows, args.cost_model, args.figure, target=args.target,
                                     within_pp=args.within, max_cost=args.max_cost,
                                     base_model=args.model)
            elif args.board:
                sel = select_for_board(rows, args.board, target=args.target,
                                       within_pp=args.within, max_latency_ms=args.latency_ms,
                                       max_energy_uj=args.energy_uj, base_model=args.model)
            else:
                sel = select(rows, target=args.target, within_pp=args.within)
        elif args.latency_ms is not None or args.energy_uj is not None:
            raise ConfigError("--latency-ms and --energy-uj budget a selection: give --target "
                              "or --within too")
        elif args.cost_model is not None:
            raise ConfigError("--cost-model chooses a model: give --target or --within too")
        fnet = load_network(args.model) if args.model else None
        cnet = load_network(args.selected) if args.selected else None
        curve = None
        if args.curve:
            from tinysnn_core.monitors import TrainingCurve

            curve = TrainingCurve.load(args.curve)
        view = None
        if fnet is not None and not args.no_model_views:
            from tinysnn_core.report import report_views
            from tinysnn_core.train import load_dataset

            view = report_views(fnet, load_dataset(fnet.config))
        path = write_report(rows, sel, args.out, float_w=fnet.w if fnet else None,
                            chosen_w=cnet.w if cnet else None, title=args.title,
                            board=args.board, max_latency_ms=args.latency_ms,
                            results_path=args.results, command=_report_command_line(args),
                            model_paths=[args.model] if args.model else [],
                            float_assignments=fnet.assignments if fnet else None,
                            chosen_assignments=cnet.assignments if cnet else None,
                            float_view=view, curve=curve)
        print(f"report written to {path} (and report.html)")
        return 0


def _report_command_line(args) -> str:
    """The report's command line, rebuilt from its parsed flags (the report's provenance)."""
    import shlex

    words = ["tinysnn", "report", args.results]
    for flag in ("model", "selected", "target", "within", "board", "latency_ms", "energy_uj",
                 "cost_model", "figure", "max_cost", "curve", "out", "title"):
        value = getattr(args, flag, None)
        if value is not None:
            words += [f"--{flag.replace('_', '-')}", str(value)]
    return shlex.join(words)


@hookimpl
def register_commands(register):
    register("explore", ExploreCommand, summary="design-space exploration of quantization; resumable")
    register("select", SelectCommand, summary="choose the model that meets an accuracy target")
    register("report", ReportCommand, summary="Markdown/HTML report with plots of an exploration")
