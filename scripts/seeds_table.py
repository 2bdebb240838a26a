"""Markdown tables of scripts/results_seeds.sh: each network's accuracy over its seeds, and each
explored point's mean, 95% CI and paired difference to the float model of the same seeds.

Usage: python scripts/seeds_table.py runs/seeds [--within 1]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinysnn_core.explore import read_results
from tinysnn_core.select import AccuracyRule, reference_baseline
from tinysnn_core.stats import mean_ci


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", help="the OUT folder of scripts/results_seeds.sh")
    ap.add_argument("--within", type=float, default=1.0)
    args = ap.parse_args()
    out = Path(args.out)
    print("| network | seeds | accuracy, mean | 95% CI | per seed |")
    print("|---|---|---|---|---|")
    for net in ("diehl-cook", "tinysnn"):
        m = json.loads((out / net / "seeds.json").read_text())
        lo, hi = m["accuracy_ci"]
        print(f"| {net} | {m['seeds'][0]}..{m['seeds'][-1]} | {pct(m['accuracy'])}% | "
              f"{pct(lo)}-{pct(hi)}% | {', '.join(pct(a) for a in m['accuracy_seeds'])} |")
    # the same seed shuffles the same 1,000 test digits for both networks: pair them by seed
    a, b = (json.loads((out / n / "seeds.json").read_text()) for n in ("tinysnn", "diehl-cook"))
    if a["seeds"] == b["seeds"]:
        diff = [x - y for x, y in zip(a["accuracy_seeds"], b["accuracy_seeds"])]
        mean, (lo, hi) = mean_ci(diff)
        print(f"\ntinysnn - diehl-cook, paired by seed: {100 * mean:+.2f} points, 95% CI "
              f"{100 * lo:+.2f} to {100 * hi:+.2f} (Student t over {len(diff)} seeds; per seed "
              + ", ".join(f"{100 * d:+.1f}" for d in diff) + ")")
    rows = read_results(out / "explore.jsonl")
    base = reference_baseline(rows)
    rule = AccuracyRule(base, within_pp=args.within)
    print()
    print(f"| point | x smaller | accuracy, mean | 95% CI | per seed | vs float, paired | "
          f"one-sided 95% lower bound | McNemar p | within {args.within:g} point? |")
    print("|---|---|---|---|---|---|---|---|---|")
    order = sorted(rows, key=lambda r: (r["kind"] != "baseline", r["scheme"], r["group_set"],
                                        -r["bits"], r["rounding"]))
    for r in order:
        lo, hi = r["accuracy_ci"]
        cells = [r["label"], f"{base['memory_model_bits'] / r['memory_model_bits']:.2f}",
                 pct(r["accuracy"]) + "%", f"{pct(lo)}-{pct(hi)}%",
                 ", ".join(f"{100 * a:.1f}" for a in r["accuracy_seeds"])]
        if r["kind"] == "baseline":
            cells += ["", "", "", ""]
        else:
            st = rule.stats(r)
            cells += [f"{100 * st.mean:+.2f}", f"{100 * st.lower:+.2f}", f"{st.mcnemar.p:.3g}",
                      "yes" if rule.meets(r) else "no"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
