"""The plots of SNN papers, from recordings (``tinysnn_core.monitors``), models and training
curves: spike raster, membrane and theta traces, confusion matrix, class-assignment histogram,
training curve.

Every function takes its data and then ``path_or_ax``: a file path (a PNG is written, the path
returned) or matplotlib Axes to draw on (returned; the multi-panel plots take a sequence of
them). Figures are made with ``matplotlib.figure.Figure`` on the Agg canvas, never pyplot, so
nothing here touches a global figure or needs a display.
"""

from __future__ import annotations

from pathlib import Path

from typing import Any

import numpy as np

from .errors import InputError, TinySNNError

DPI = 110
#: one colour per class (matplotlib's tab10), black for "unassigned"
UNASSIGNED_COLOUR = "black"


def _mpl():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise TinySNNError("plots need matplotlib: pip install 'matplotlib>=3.7,<4' (the "
                           "'explore' extra of tinysnn)") from None
    return matplotlib, Figure


def _axes(path_or_ax, n: int, figsize, sharex: bool = False):
    """(figure or None, list of n Axes, path or None) for ``path_or_ax``."""
    if isinstance(path_or_ax, (str, Path)):
        _, Figure = _mpl()
        fig = Figure(figsize=figsize, layout="constrained")
        axes = fig.subplots(n, 1, sharex=sharex, squeeze=False)[:, 0].tolist()
        return fig, axes, Path(path_or_ax)
    axes = list(path_or_ax) if isinstance(path_or_ax, (list, tuple, np.ndarray)) else [path_or_ax]
    if len(axes) < n:
        raise InputError(f"this plot draws on {n} axes, got {len(axes)}")
    return None, axes[:n], None


def _done(fig, axes, path):
    if path is None:
        return axes[0] if len(axes) == 1 else axes
    fig.savefig(path, dpi=DPI)
    return path


def _class_colours(n_classes: int):
    matplotlib, _ = _mpl()
    cmap = matplotlib.colormaps["tab10" if n_classes <= 10 else "tab20"]
    return [cmap(c % cmap.N) for c in range(n_classes)]


def _title(rec, sample, p) -> str:
    row = int(rec.pres_sample[p])
    text = f"sample {sample}, presentation {int(rec.pres_retry[p])}"
    if rec.labels[row] >= 0:
        text += f", label {int(rec.labels[row])}"
    if rec.predictions[row] >= 0:
        text += f", predicted {int(rec.predictions[row])}"
    return text


# -- from a recording ----------------------------------------------------------------------------

def plot_raster(rec, sample, path_or_ax, *, retry: int | None = None, assignments=None) -> Any:
    """Spike raster: a tick per spike at (time, neuron), coloured by the neuron's class when
    ``assignments`` [N] are given. ``sample``: one sample id (its presentation ``retry``,
    default the last), or a list of them, whose last presentations are drawn one after the
    other (each labelled with its class and prediction)."""
    if "spikes" not in rec.header.get("variables", ()):
        raise InputError("this recording has no spikes (record the variable 'spikes')")
    many = not isinstance(sample, (int, np.integer))
    samples = list(sample) if many else [int(sample)]
    if not samples:
        raise InputError("no samples to draw")
    dt = float(rec.header.get("dt", 1.0))
    N, T = int(rec.header["n_neurons"]), int(rec.header["time_steps"])
    pres = [rec.presentation(s, None if many else retry) for s in samples]
    parts = [rec.spikes(p) for p in pres]
    steps = np.concatenate([st * dt + i * T * dt for i, (st, _) in enumerate(parts)])
    neurons = np.concatenate([nr for _, nr in parts])
    fig, (ax,), path = _axes(path_or_ax, 1, (7.0 if not many else max(7.0, 1.1 * len(samples)),
                                              3.6))
    if assignments is not None:
        assignments = np.asarray(assignments)
        n_classes = int(rec.header.get("n_classes", 10))
        colours = _class_colours(n_classes)
        cls = assignments[neurons] if neurons.size else np.zeros(0, dtype=int)
        for c in range(-1, n_classes):
            sel = cls == c
            if sel.any():
                ax.scatter(steps[sel], neurons[sel], s=30, marker="|",
                           color=UNASSIGNED_COLOUR if c < 0 else colours[c],
                           label="unassigned" if c < 0 else f"class {c}")
        if neurons.size:
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                      title="neuron's class", title_fontsize=6)
    else:
        ax.scatter(steps, neurons, s=30, marker="|", color="black")
    if many:
        for i, (s, p) in enumerate(zip(samples, pres)):
            if i:
                ax.axvline(i * T * dt, color="0.8", lw=0.8)
            row = int(rec.pres_sample[p])
            lab, pred = int(rec.labels[row]), int(rec.predictions[row])
            text = (f"{lab if lab >= 0 else '?'}" + (f"->{pred}" if pred >= 0 else ""))
            ax.text((i + 0.5) * T * dt, N * 1.01, text, ha="center", va="bottom", fontsize=7)
        ax.set_title(f"{len(samples)} samples ({T * dt:g} ms each; label->prediction): "
                     f"{steps.size} spikes", fontsize=9, pad=14)
    else:
        ax.set_title(f"{_title(rec, samples[0], pres[0])}: {steps.size} spikes", fontsize=9)
    ax.set_xlim(0, len(samples) * T * dt)
    ax.set_ylim(-0.5, N - 0.5)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("excitatory neuron")
    return _done(fig, [ax], path)


def _chosen(rec, p, neurons, limit: int = 4) -> list[int]:
    """Columns of the recorded neurons to draw: those asked, else up to ``limit`` of them,
    the ones that spiked in presentation ``p`` first."""
    recorded = rec.neurons.tolist()
    if neurons is not None:
        missing = [n for n in neurons if n not in recorded]
        if missing:
            raise InputError(f"neuron {missing[0]} was not recorded (recorded: "
                             f"{recorded[:20]}{'...' if len(recorded) > 20 else ''})")
        return [recorded.index(n) for n in neurons]
    _, fired = rec.spikes(p)
    spiking = [k for k, n in enumerate(recorded) if n in set(fired.tolist())]
    rest = [k for k in range(len(recorded)) if k not in spiking]
    return (spiking + rest)[:limit]


def plot_membrane(rec, sample: int, path_or_ax, *, retry: int | None = None, neurons=None) -> Any:
    """Membrane potential of recorded neurons through one presentation, each with its
    threshold ``thresh + theta`` (dashed) and its emitted spikes (triangles on it)."""
    if "v" not in rec.state:
        raise InputError("this recording has no membrane potential (record the variable 'v')")
    p = rec.presentation(sample, retry)
    cols = _chosen(rec, p, neurons)
    dt = float(rec.header.get("dt", 1.0))
    neuron = rec.header.get("neuron")
    if not isinstance(neuron, dict) or "thresh" not in neuron:
        raise InputError("this recording does not say the neurons' threshold (its header has "
                         "no 'neuron'; monitors.record_run writes it)")
    thresh = float(neuron["thresh"])
    T = int(rec.header["time_steps"])
    t = np.arange(T) * dt
    fig, (ax,), path = _axes(path_or_ax, 1, (7.0, 3.4))
    steps, fired = rec.spikes(p)
    colours = _class_colours(10)
    for i, k in enumerate(cols):
        n = int(rec.neurons[k])
        colour = colours[i % len(colours)]
        ax.plot(t, rec.state["v"][p, :, k], color=colour, lw=1.0, label=f"neuron {n}")
        th = np.broadcast_to(thresh + (rec.state["theta"][p, :, k] if "theta" in rec.state
                                       else 0.0), t.shape)
        ax.plot(t, th, color=colour, lw=0.8, ls="--")
        at = steps[fired == n]
        if at.size:     # its emitted spikes: a triangle on its threshold
            ax.plot(at * dt, th[at], ls="none", marker="v", ms=6, color=colour)
    ax.set_xlim(0, T * dt)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("v (mV)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{_title(rec, sample, p)}; dashed: thresh + theta, v: spike", fontsize=9)
    return _done(fig, [ax], path)


def plot_theta(rec, sample: int, path_or_ax, *, retry: int | None = None, neurons=None) -> Any:
    """Adaptive threshold offsets theta of recorded neurons through one presentation (flat in
    inference; stepping up by theta_plus at each spike while learning)."""
    if "theta" not in rec.state:
        raise InputError("this recording has no theta (record the variable 'theta')")
    p = rec.presentation(sample, retry)
    cols = _chosen(rec, p, neurons)
    dt = float(rec.header.get("dt", 1.0))
    T = int(rec.header["time_steps"])
    t = np.arange(T) * dt
    fig, (ax,), path = _axes(path_or_ax, 1, (7.0, 2.6))
    colours = _class_colours(10)
    for i, k in enumerate(cols):
        ax.plot(t, rec.state["theta"][p, :, k], color=colours[i % len(colours)], lw=1.0,
                label=f"neuron {int(rec.neurons[k])}")
    ax.set_xlim(0, T * dt)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("theta (mV)")
    ax.legend(fontsize=7, loc="best")
    ax.set_title(f"{_title(rec, sample, p)}{' (learning)' if rec.header.get('learn') else ''}",
                 fontsize=9)
    return _done(fig, [ax], path)


def plot_traces(rec, sample: int, path_or_ax, *, retry: int | None = None, neurons=None) -> Any:
    """``plot_membrane`` above ``plot_theta`` (two Axes)."""
    fig, axes, path = _axes(path_or_ax, 2, (7.0, 5.4), sharex=True)
    plot_membrane(rec, sample, axes[0], retry=retry, neurons=neurons)
    plot_theta(rec, sample, axes[1], retry=retry, neurons=neurons)
    axes[0].set_xlabel("")
    return _done(fig, axes, path)


# -- from predictions, a model, a training curve ----------------------------------------------

def confusion_matrix(labels, predictions, n_classes: int = 10) -> np.ndarray:
    """counts [true class, predicted class]."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise InputError(f"labels {list(labels.shape)} and predictions "
                         f"{list(predictions.shape)} must be two equal-length lists")
    for what, arr in (("labels", labels), ("predictions", predictions)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise InputError(f"{what} outside 0..{n_classes - 1}")
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (labels, predictions), 1)
    return m


def plot_confusion(labels, predictions, path_or_ax, *, n_classes: int = 10) -> Any:
    """Confusion matrix, each row (true class) as fractions of its samples, with the counts."""
    m = confusion_matrix(labels, predictions, n_classes)
    rows = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros(m.shape), where=rows > 0)
    fig, (ax,), path = _axes(path_or_ax, 1, (4.8, 4.2))
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(n_classes):
        for j in range(n_classes):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(n_classes))
    ax.set_yticks(range(n_classes))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    acc = np.trace(m) / max(1, m.sum())
    ax.set_title(f"{m.sum()} samples, accuracy {100 * acc:.1f}%", fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    return _done(fig, [ax], path)


def plot_assignments(assignments, path_or_ax, *, n_classes: int = 10) -> Any:
    """Class-assignment histogram: neurons per class, and the unassigned ones (never spiked
    during assignment) in black."""
    a = np.asarray(assignments, dtype=np.int64)
    if a.ndim != 1 or (a.size and (a.min() < -1 or a.max() >= n_classes)):
        raise InputError(f"assignments must be classes 0..{n_classes - 1} or -1, one per neuron")
    per = np.array([(a == c).sum() for c in range(n_classes)])
    none = int((a < 0).sum())
    fig, (ax,), path = _axes(path_or_ax, 1, (5.6, 3.0))
    ax.bar(range(n_classes), per, color=_class_colours(n_classes))
    ax.bar([n_classes], [none], color=UNASSIGNED_COLOUR)
    for x, h in enumerate(list(per) + [none]):
        ax.text(x, h, str(int(h)), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(n_classes + 1), [str(c) for c in range(n_classes)] + ["none"])
    ax.set_xlabel("assigned class")
    ax.set_ylabel("neurons")
    ax.set_title(f"{a.size} neurons, {none} unassigned", fontsize=9)
    return _done(fig, [ax], path)


def plot_training_curve(curve, path_or_ax) -> Any:
    """Training curve (``monitors.TrainingCurve``, its ``to_dict()`` or its points) against
    training samples: running accuracy, mean (and max) theta, active neurons per window."""
    points = getattr(curve, "points", None)
    if points is None:
        points = curve.get("points") if isinstance(curve, dict) else curve
    points = list(points)
    if not points:
        raise InputError("the training curve has no points yet (train past one window)")
    done = np.array([p["done"] for p in points])
    acc = np.array([np.nan if p["accuracy"] is None else 100 * p["accuracy"] for p in points])
    fig, axes, path = _axes(path_or_ax, 3, (6.4, 6.0), sharex=True)
    axes[0].plot(done, acc, marker=".", lw=1.0)
    axes[0].set_ylabel("running accuracy (%)")
    axes[0].set_ylim(0, 100)
    axes[1].plot(done, [p["theta_mean"] for p in points], label="mean")
    axes[1].plot(done, [p["theta_max"] for p in points], ls="--", label="max")
    axes[1].set_ylabel("theta (mV)")
    axes[1].legend(fontsize=7)
    axes[2].plot(done, [p["active_neurons"] for p in points], color="tab:green")
    axes[2].set_ylabel("active neurons")
    axes[2].set_xlabel("training samples")
    window = curve.window if hasattr(curve, "window") else (
        curve.get("window") if isinstance(curve, dict) else None)
    if window:
        axes[0].set_title(f"windows of {window} samples: assigned on one, scored on the next",
                          fontsize=9)
    return _done(fig, axes, path)
