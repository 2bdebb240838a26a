"""Render a Markdown table of `tinysnn run --json` outputs: accuracy and op counts side by side.

    python scripts/results_table.py runs/results/*.json
"""

import json
import sys
from pathlib import Path

OPS = ["neuron_updates_exc", "neuron_updates_inh", "synaptic_events", "lateral_events",
       "trace_updates", "stdp_updates", "stdp_accumulates", "norm_ops"]


def main(paths):
    runs = []
    for p in paths:
        d = json.loads(Path(p).read_text())
        c = d["config"]
        runs.append((Path(p).stem, c, d["metrics"], d["ops_per_sample"]))
    print("| run | data | topology | rule | N | epochs | T | seed | accuracy (all-activity) "
          "| accuracy (proportion) | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, c, m, _ in runs:
        print(f"| {name} | {c['dataset']['name']} | {c['topology']['name']} | "
              f"{c['learning']['name']} | {c['n_neurons']} | {c['train']['epochs']} | "
              f"{c['train']['time_steps']} | {c['seed']} | {100 * m['accuracy_all-activity']:.2f}% | "
              f"{100 * m['accuracy_proportion-weighting']:.2f}% | "
              f"{m.get('train_seconds') or 0:.0f} |")
    print()
    print("Operations per training sample:")
    print()
    print("| op | " + " | ".join(name for name, *_ in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for op in OPS:
        print(f"| {op} | " + " | ".join(f"{o['train'][op]:,.0f}" for *_, o in runs) + " |")
    print()
    print("Operations per inference (test):")
    print()
    print("| op | " + " | ".join(name for name, *_ in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for op in OPS[:4]:
        print(f"| {op} | " + " | ".join(f"{o['test'][op]:,.0f}" for *_, o in runs) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
