"""Is the board's selection really within X points of the float model? Paired figures on the
same test samples (docs/results.md section 5).

    python scripts/board_stats.py FLOAT.tsnn SELECTED.tsnn [--seeds 5]

For K input-spike seeds (the test stream's seed, then K-1 others): the float model's accuracy
(float simulation) and the selected model's (integer inference, its own [inference] settings),
their mean and 95% t-interval over the seeds, the paired difference per seed with its interval,
and on the first seed McNemar's exact test on the samples where the two disagree.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from tinysnn_core import intsim
from tinysnn_core import train as flow
from tinysnn_core.modelfile import load_network


def float_predictions(net, data, seed: int) -> np.ndarray:
    """The float model's all-activity predictions with input-spike seed ``seed``."""
    from tinysnn_core.evaluate import predict
    from tinysnn_core.ops import OpCounts

    backend = flow.get_backend(net.config)
    counts = flow.run_batched(net, backend, data.test_images, np.arange(len(data.test_images)),
                              learn=False, seed=seed, ops=OpCounts(), desc="test",
                              progress=False, chunk=net.config.train.batch_size)
    return predict(counts, net.assignments, net.proportions, "all-activity", data.n_classes)


def interval(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(half)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("float_model")
    ap.add_argument("selected")
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    fnet, snet = load_network(args.float_model), load_network(args.selected)
    data = flow.load_dataset(snet.config)
    labels = data.test_labels
    m = intsim.from_network(snet)
    backend = flow.get_backend(snet.config)
    base_seed = flow.stream_seed(snet.config.seed, "test")
    seeds = [base_seed] + [1000 + k for k in range(args.seeds - 1)]
    fl, sel, first = [], [], None
    for s in seeds:
        preds, _ = intsim.run_integer(m, data.test_images, s, None, backend)
        fpreds = float_predictions(fnet, data, s)
        fl.append((fpreds == labels).mean())
        sel.append((preds == labels).mean())
        if first is None:
            first = (fpreds == labels, preds == labels)
        print(f"seed {s}: float {100 * fl[-1]:.2f}%  selected {100 * sel[-1]:.2f}%  "
              f"difference {100 * (sel[-1] - fl[-1]):+.2f} points", flush=True)
    for name, x in (("float", fl), ("selected", sel),
                    ("selected - float", np.array(sel) - np.array(fl))):
        mean, half = interval(np.array(x))
        unit = " points" if "-" in name else "%"
        print(f"{name}: mean {100 * mean:.2f}{unit}, 95% CI +-{100 * half:.2f} points over "
              f"{len(seeds)} input seeds")
    f_ok, s_ok = first
    b = int((f_ok & ~s_ok).sum())     # float right, selected wrong
    c = int((~f_ok & s_ok).sum())
    p = stats.binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0
    print(f"McNemar on seed {seeds[0]} ({len(labels)} samples): float right and selected wrong "
          f"{b}, the other way {c}, exact two-sided p = {p:.3f}")


if __name__ == "__main__":
    main()
