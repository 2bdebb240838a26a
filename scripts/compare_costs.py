"""Memory and energy of models side by side (the cost models of tinysnn_core.builtin.costs):
weights + neuron parameters (packed), inference memory, and energy per inference and per
training sample from each model's own operation counts.

    python scripts/compare_costs.py runs/results/mnist5k_dc_n400.tsnn runs/explore/mnist5k/selected.tsnn
"""

import sys

from tinysnn_core.builtin.costs import EnergyModel, MemoryModel
from tinysnn_core.modelfile import load_network


def costs(path):
    net = load_network(path)
    mem = MemoryModel().estimate(net, net.ops)
    energy = EnergyModel().estimate(net, net.ops)["phases"]
    return {
        "model": path,
        "network": f"{net.config.plugin_name('topology')} N={net.n_neurons}",
        "quantization": (net.config.quant.scheme if net.quant is not None else "FP32"),
        "model KiB": mem["model_bits"] / 8192,
        "inference KiB": mem["inference_bits"] / 8192,
        "training KiB": mem["training_bits"] / 8192,
        "uJ / inference": energy["test"]["pj_per_sample"] / 1e6 if "test" in energy else None,
        "uJ / training sample": energy["train"]["pj_per_sample"] / 1e6 if "train" in energy else None,
    }


def main(paths):
    rows = [costs(p) for p in paths]
    keys = ["network", "quantization", "model KiB", "inference KiB", "training KiB",
            "uJ / inference", "uJ / training sample"]
    print("| | " + " | ".join(r["model"] for r in rows) + (" | ratio (first / last) |" if len(rows) > 1 else " |"))
    print("|---|" + "---|" * (len(rows) + (1 if len(rows) > 1 else 0)))
    for k in keys:
        cells = [f"{r[k]:,.1f}" if isinstance(r[k], float) else str(r[k]) for r in rows]
        ratio = ""
        if len(rows) > 1 and isinstance(rows[0][k], float) and isinstance(rows[-1][k], float):
            ratio = f" {rows[0][k] / rows[-1][k]:.1f}x |"
        elif len(rows) > 1:
            ratio = " |"
        print(f"| {k} | " + " | ".join(cells) + " |" + ratio)


if __name__ == "__main__":
    main(sys.argv[1:])
