"""``tinysnn plot``: the plots of ``tinysnn_core.plots`` from a recording, a model or a training
curve (docs/monitors.md)."""

from __future__ import annotations

from tinysnn_core import hookimpl
from tinysnn_core.errors import InputError

#: kind -> (what SOURCE is, help)
KINDS = {
    "raster": ("recording", "spike raster of --sample, or of the --samples one after the other"),
    "traces": ("recording", "membrane potential with thresh + theta, and theta, of --sample"),
    "confusion": ("recording", "confusion matrix of the recorded samples' predictions"),
    "assignments": ("model", "class-assignment histogram (neurons per class, unassigned)"),
    "curve": ("curve", "training curve of tinysnn run --curve"),
}


class PlotCommand:
    """Draw one plot into a PNG file."""

    def add_arguments(self, p):
        p.add_argument("kind", choices=sorted(KINDS),
                       help="; ".join(f"{k}: {h} (SOURCE: a {s})" for k, (s, h) in KINDS.items()))
        p.add_argument("source", metavar="SOURCE",
                       help="a recording (tinysnn eval --record), a model (.tsnn) or a training "
                            "curve (tinysnn run --curve)")
        p.add_argument("--out", "-o", required=True, metavar="FILE.png", help="PNG to write")
        p.add_argument("--sample", type=int, help="sample id (raster, traces; default: the first "
                       "recorded)")
        p.add_argument("--samples", metavar="SPEC",
                       help="raster of several samples: recorded sample ids, e.g. 0:12")
        p.add_argument("--neurons", metavar="LIST", help="traces: recorded neurons to draw, "
                       "e.g. 3,17 (default: up to 4, those that spiked first)")
        p.add_argument("--model", metavar="MODEL.tsnn",
                       help="raster: colour each neuron by its class in this model")

    def run(self, args) -> int:
        from tinysnn_core import plots
        from tinysnn_core.monitors import Recording, TrainingCurve, check_out_path, parse_indices

        check_out_path(args.out)
        what = KINDS[args.kind][0]
        if what == "model":
            from tinysnn_core.modelfile import load_network

            net = load_network(args.source)
            if net.assignments is None:
                raise InputError(f"{args.source} has no label assignments: run tinysnn eval on "
                                 "it first")
            n_classes = net.proportions.shape[1] if net.proportions is not None else 10
            plots.plot_assignments(net.assignments, args.out, n_classes=n_classes)
        elif what == "curve":
            plots.plot_training_curve(TrainingCurve.load(args.source), args.out)
        else:
            rec = Recording.load(args.source)
            n_classes = int(rec.header.get("n_classes", 10))
            sample = args.sample if args.sample is not None else (
                int(rec.sample_ids[0]) if len(rec.sample_ids) else None)
            if args.kind == "confusion":
                known = (rec.labels >= 0) & (rec.predictions >= 0)
                if not known.any():
                    raise InputError(f"{args.source} holds no sample with both a label and a "
                                     "prediction")
                plots.plot_confusion(rec.labels[known], rec.predictions[known], args.out,
                                     n_classes=n_classes)
            elif sample is None:
                raise InputError(f"{args.source} holds no samples")
            elif args.kind == "raster":
                assignments = None
                if args.model:
                    from tinysnn_core.modelfile import load_network

                    assignments = load_network(args.model).assignments
                if args.samples:
                    top = int(rec.sample_ids.max()) + 1
                    chosen = parse_indices(args.samples, top, "sample")
                    have = set(rec.sample_ids.tolist())
                    sample = [s for s in (chosen or range(top)) if s in have]
                plots.plot_raster(rec, sample, args.out, assignments=assignments)
            else:
                neurons = None
                if args.neurons:
                    try:
                        neurons = [int(x) for x in args.neurons.split(",")]
                    except ValueError:
                        raise InputError(f"--neurons {args.neurons!r}: give neuron numbers, "
                                         "e.g. 3,17") from None
                plots.plot_traces(rec, sample, args.out, neurons=neurons)
        print(f"{args.kind} plot written to {args.out}")
        return 0


@hookimpl
def register_commands(register):
    register("plot", PlotCommand, summary="plot a recording, a model's class assignments or a "
             "training curve (PNG)")
