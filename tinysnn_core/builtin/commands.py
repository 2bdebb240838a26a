"""The core sub-commands: run (the main job), train, eval, plugins."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tinysnn_core import hookimpl
from tinysnn_core.config import Config
from tinysnn_core.errors import ConfigError, ModelFileError


def add_config_arguments(p) -> None:
    p.add_argument("--config", metavar="FILE.toml", help="configuration file (defaults otherwise)")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override a configuration value, e.g. --set topology.w_inh=-20 "
                        "(repeatable)")
    p.add_argument("--seed", type=int, help="random seed (same seed, same weights)")
    p.add_argument("--n-neurons", "-n", type=int, help="excitatory neurons N")
    p.add_argument("--topology", help="network topology plugin (diehl-cook, tinysnn, ...)")
    p.add_argument("--learning", help="learning rule plugin")
    p.add_argument("--dataset", help="data set plugin (mnist-5k, fashion-mnist, mnist-idx)")
    p.add_argument("--backend", help="simulation backend plugin (numpy, numba, cupy)")
    p.add_argument("--epochs", type=int, help="passes over the training set")
    p.add_argument("--time-steps", type=int, help="time steps T per presentation")
    p.add_argument("--n-train", type=int, help="use the first n training samples")
    p.add_argument("--n-test", type=int, help="use the first n test samples")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def config_from_args(args) -> Config:
    cfg = Config.load(args.config) if args.config else Config()
    overrides = list(args.set)
    for flag, key in (("seed", "seed"), ("n_neurons", "n_neurons"), ("topology", "topology"),
                      ("learning", "learning"), ("dataset", "dataset"), ("backend", "backend"),
                      ("epochs", "train.epochs"), ("time_steps", "train.time_steps"),
                      ("n_train", "train.n_train"), ("n_test", "train.n_test")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides.insert(0, f"{key}={json.dumps(value) if isinstance(value, str) else value}")
    cfg = cfg.with_overrides(overrides)
    cfg.resolved()  # validate every plugin's parameters now, before any work
    return cfg


def print_summary(net, metrics: dict, out=None) -> None:
    out = out or sys.stdout
    cfg = net.config
    print(f"network {cfg.plugin_name('topology')} N={cfg.n_neurons}, rule "
          f"{cfg.plugin_name('learning')}, data {cfg.plugin_name('dataset')}, "
          f"epochs {cfg.train.epochs}, T={cfg.train.time_steps}, seed {cfg.seed}", file=out)
    if metrics:
        print(f"test accuracy: {100 * metrics['accuracy_all-activity']:.2f}% (all-activity), "
              f"{100 * metrics['accuracy_proportion-weighting']:.2f}% (proportion weighting) "
              f"on {metrics['n_test']} samples", file=out)
    print("operations per sample:", file=out)
    phases = [p for p in ("train", "assign", "test") if p in net.ops]
    keys = ["neuron_updates_exc", "neuron_updates_inh", "synaptic_events", "lateral_events",
            "trace_updates", "stdp_updates", "stdp_accumulates", "norm_ops", "exc_spikes",
            "presentations"]
    print(f"  {'':20s}" + "".join(f"{p:>14s}" for p in phases), file=out)
    for key in keys:
        row = "".join(f"{net.ops[p].per_sample()[key]:14.1f}" for p in phases)
        print(f"  {key:20s}{row}", file=out)


class RunCommand:
    """Train and evaluate (the main job): STDP training, label assignment, test accuracy,
    operation counts; saves the model and resumes an interrupted run."""

    evaluate = True   # the train command is this one without evaluation

    def add_arguments(self, p):
        add_config_arguments(p)
        p.add_argument("--out", "-o", default="runs/model.tsnn",
                       help="model file to write (default: runs/model.tsnn); its checkpoint "
                            "is OUT.ckpt")
        p.add_argument("--fresh", action="store_true",
                       help="ignore an existing checkpoint and start over")
        p.add_argument("--json", metavar="FILE", help="also write the metrics and op counts as JSON")
        p.add_argument("--curve", metavar="FILE.json",
                       help="also write the training curve (running accuracy, theta, active "
                            "neurons per window of --curve-window samples; docs/monitors.md)")
        p.add_argument("--curve-window", type=int, default=250, metavar="N",
                       help="samples per training-curve window (default 250)")
        p.add_argument("--seeds", metavar="K", help="train K seeds (--seed, --seed + 1, ...; "
                       "each resumable) into the directory --out, with the accuracy's mean and "
                       "95%% confidence interval in OUT/seeds.json")

    def run(self, args) -> int:
        from tinysnn_core import train as flow

        if getattr(args, "seeds", None) is not None and getattr(args, "curve", None):
            raise ConfigError("--curve records one training run: leave it out with --seeds")
        if getattr(args, "seeds", None) is not None:
            from tinysnn_core.seeds import run_seeds_command

            return run_seeds_command(self, args)
        cfg = config_from_args(args)
        out = Path(args.out)
        curve = None
        if getattr(args, "curve", None):
            from tinysnn_core.monitors import TrainingCurve, check_out_path

            check_out_path(args.curve)      # before the training, not after it
            curve = TrainingCurve(window=args.curve_window)
        net, metrics = flow.run(cfg, out, fresh=args.fresh, evaluate=self.evaluate,
                                progress=not args.quiet,
                                callbacks=[curve] if curve is not None else None)
        if curve is not None:
            curve.save(args.curve)
            print(f"training curve ({len(curve.points)} windows) written to {args.curve}")
        print_summary(net, metrics if self.evaluate else {})
        print(f"model written to {out}")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "config": cfg.resolved().to_dict(), "metrics": metrics,
                "ops_per_sample": {p: o.per_sample() for p, o in net.ops.items()}}, indent=2))
        return 0


class TrainCommand(RunCommand):
    """Train with STDP only (no evaluation); resumable."""

    evaluate = False


class EvalCommand:
    """Evaluate a saved model: label assignment on the training set, accuracy on the test set."""

    def add_arguments(self, p):
        p.add_argument("model", help="model file (.tsnn)")
        p.add_argument("--backend", help="simulation backend (default: the model's)")
        p.add_argument("--dataset", help="data set (default: the model's)")
        p.add_argument("--n-test", type=int, help="use the first n test samples")
        p.add_argument("--reassign", action="store_true",
                       help="recompute label assignments even if the model has them")
        p.add_argument("--quiet", "-q", action="store_true")
        g = p.add_argument_group("recording (docs/monitors.md)")
        g.add_argument("--record", metavar="FILE.npz",
                       help="also record spikes and state of chosen test samples into FILE")
        g.add_argument("--record-samples", metavar="SPEC", default="0:10",
                       help="test samples to record: 'all', indices and start:stop ranges "
                            "(default 0:10)")
        g.add_argument("--record-neurons", metavar="SPEC", default="0:10",
                       help="neurons whose v, theta and trace are recorded (spikes: all), "
                            "same form (default 0:10)")
        g.add_argument("--record-variables", metavar="LIST", default="spikes,v,theta,trace",
                       help="comma-separated, of spikes, v, theta, trace "
                            "(default: all four)")

    def run(self, args) -> int:
        from tinysnn_core import train as flow
        from tinysnn_core.modelfile import load_network

        net = load_network(args.model)
        overrides = []
        if args.backend:
            overrides.append(f"backend={json.dumps(args.backend)}")
        if args.dataset:
            overrides.append(f"dataset={json.dumps(args.dataset)}")
        if args.n_test is not None:
            overrides.append(f"train.n_test={args.n_test}")
        if overrides:
            from tinysnn_core.network import Network

            cfg = net.config.with_overrides(overrides)
            net = Network(cfg, net.w, net.theta, net.topology, net.assignments, net.proportions,
                          net.ops, net.progress)
        data = flow.load_dataset(net.config)
        record = None
        if args.record:     # every refusal before the evaluation's work
            from tinysnn_core import monitors

            record = monitors.record_from_specs(args.record_samples, args.record_neurons,
                                                args.record_variables, len(data.test_labels),
                                                net, out=args.record,
                                                backend=flow.get_backend(net.config))
        if net.assignments is None or args.reassign:
            flow.assign(net, data, progress=not args.quiet)
        metrics = flow.evaluate(net, data, progress=not args.quiet)
        print_summary(net, metrics)
        if record is not None:
            rec = monitors.record_test_samples(net, data, record, model=args.model)
            rec.save(args.record)
            print(f"recording of {len(rec.sample_ids)} samples ({len(rec.pres_sample)} "
                  f"presentations, {len(rec.spike_pres)} spikes) written to {args.record}")
        return 0


class PluginsCommand:
    """List every registered plugin: kind, name, distribution and version."""

    def add_arguments(self, p):
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("--kind", help="only this kind")

    def run(self, args) -> int:
        from tinysnn_core.registry import get_registry

        reg = get_registry()
        rows = reg.listing()
        if args.kind:
            rows = [r for r in rows if r["kind"] == args.kind]
        if args.json:
            print(json.dumps({"plugins": rows, "failures": [
                {"source": f.source, "error": f.error} for f in reg.failures]}, indent=2))
            return 0
        width = max([len(r["name"]) for r in rows] + [4])
        for r in rows:
            alias = f" (aka {', '.join(r['aliases'])})" if r["aliases"] else ""
            print(f"{r['kind']:13s} {r['name']:{width}s}  {r['distribution']} {r['version']}"
                  f"  {r['summary']}{alias}")
        for f in reg.failures:
            print(f"FAILED        {f.source}: {f.error}")
        return 0


class ExportCommand:
    """Write a model in another format through an exporter plugin (``tinysnn plugins --kind
    exporter`` lists them)."""

    def add_arguments(self, p):
        p.add_argument("model", help="model file (.tsnn)")
        p.add_argument("--format", "-f", required=True, metavar="NAME",
                       help="exporter: nir (the Neuromorphic Intermediate Representation), "
                            "c (C sources for the firmware), or an installed plugin's")
        p.add_argument("path", metavar="FILE",
                       help="file to write (the format's suffix is added when FILE has none; "
                            "a directory for c)")
        p.add_argument("--option", "-O", metavar="KEY=VALUE", action="append", default=[],
                       help="an option of the exporter (repeatable; values are TOML literals)")

    def run(self, args) -> int:
        from tinysnn_core.export import export_model, parse_options

        written = export_model(args.model, args.format, args.path, **parse_options(args.option))
        print(f"{args.format} export written to {written}")
        return 0


@hookimpl
def register_commands(register):
    register("run", RunCommand, summary="train and evaluate (the main job); resumable")
    register("export", ExportCommand, summary="write a model as NIR, C sources or another "
             "exporter's format")
    register("train", TrainCommand, summary="train with STDP only; resumable")
    register("eval", EvalCommand, summary="evaluate a saved model on the test set")
    register("plugins", PluginsCommand, summary="list the registered plugins")
