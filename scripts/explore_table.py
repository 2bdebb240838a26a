"""Markdown tables of an exploration results file: accuracy by scheme x group set x rounding x
bits (integer-inference accuracy where every group is fixed point, float-simulated otherwise),
the sensitivity sweep, and the memory saving per precision.

    python scripts/explore_table.py runs/explore/mnist5k/results.jsonl
"""

import json
import sys
from collections import defaultdict


def group_label(r):
    """The row's group set, with the decay precision when ``--decay-bits`` set it apart."""
    tail = r.get("label", "").rsplit(" decay ", 1)
    return r["group_set"] + (f" (decay {tail[1]})" if len(tail) == 2 else "")


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    base = [r for r in rows if r.get("kind") == "baseline"][-1]
    grid = [r for r in rows if r.get("kind") == "grid"]
    sens = [r for r in rows if r.get("kind") == "sensitivity"]
    bits = sorted({r["bits"] for r in grid + sens}, reverse=True)
    print(f"Float baseline: {100 * base['accuracy']:.1f}%, "
          f"{base['memory_model_bits'] / 8192:.1f} KiB (FP32 weights + neuron parameters).\n")
    print("Accuracy (%) of every grid point; `all`: every group at the precision, `mixed`: "
          "weights at the precision, neuron groups at 16 bits, `weights`: weights only (float-"
          "simulated, the rest float64).\n")
    print("| scheme | groups | rounding | " + " | ".join(f"{b} b" for b in bits) + " |")
    print("|---|---|---|" + "---|" * len(bits))
    table = defaultdict(dict)
    for r in grid:
        table[(r["scheme"], group_label(r), r["rounding"])][r["bits"]] = r["accuracy"]
    order = ["weights", "mixed", "all"]
    for key in sorted(table, key=lambda k: (k[0] != "ptq", order.index(k[1].split()[0])
                                            if k[1].split()[0] in order else 9, k[1], k[2])):
        cells = [f"{100 * table[key][b]:.1f}" if b in table[key] else "" for b in bits]
        print(f"| {key[0].upper()} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    if sens:
        print("\nSensitivity (PTQ, one group quantized, the others float64), accuracy %:\n")
        print("| group | rounding | " + " | ".join(f"{b} b" for b in bits) + " |")
        print("|---|---|" + "---|" * len(bits))
        st = defaultdict(dict)
        for r in sens:
            st[(r["group_set"], r["rounding"])][r["bits"]] = r["accuracy"]
        for key in sorted(st):
            cells = [f"{100 * st[key][b]:.1f}" if b in st[key] else "" for b in bits]
            print(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    print("\nMemory of weights + neuron parameters (packed), x smaller than FP32:\n")
    print("| groups | " + " | ".join(f"{b} b" for b in bits) + " |")
    print("|---|" + "---|" * len(bits))
    for gs in ("weights", "mixed", "all"):
        mem = {r["bits"]: r["memory_model_bits"] for r in grid if group_label(r) == gs}
        if mem:
            cells = [f"{base['memory_model_bits'] / mem[b]:.2f}" if b in mem else "" for b in bits]
            print(f"| {gs} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
