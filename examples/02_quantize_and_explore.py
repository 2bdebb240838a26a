# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Quantize and explore
#
# Take a trained float network, quantize it by hand at a few precisions and roundings, run it
# in integer arithmetic as a board would, then let an exploration sweep the grid and write
# every point to a results file (what `tinysnn explore` does; rerun to resume).
# `TINYSNN_EXAMPLE_SMALL=1` runs it in seconds.

# %%
import tinysnn as tsnn
from _sizes import N_NEURONS, N_TEST, N_TRAIN, OUT, SMALL, backend

OUT.mkdir(parents=True, exist_ok=True)
cfg = tsnn.Config().replace(n_neurons=N_NEURONS, backend=backend(),
                            train={"n_train": N_TRAIN, "n_test": N_TEST})
# the float model (trained once; a rerun reuses its checkpoint)
net, metrics = tsnn.run(cfg, OUT / "float.tsnn", progress=False)
data = tsnn.load_dataset(cfg)
print(f"float model: {100 * metrics['accuracy']:.2f}% on {metrics['n_test']} test samples")

# %% [markdown]
# ## By hand
#
# `quantize_network` applies one exploration point's plan (post-training here) and assigns
# the labels again; the float network is left as it was. With every group quantized the
# network also runs in integer arithmetic (`integer_model`, `run_integer`).

# %%
seed = tsnn.stream_seed(cfg.seed, "test")
sim = tsnn.get_backend(cfg)
print(f"{'bits':>4} {'rounding':>10} {'float sim':>9} {'integer':>8} {'KiB':>6}")
for bits in (16, 4) if SMALL else (16, 8, 6, 4):
    for rounding in ("nearest", "stochastic"):
        q = tsnn.quantize_network(net, bits=bits, rounding=rounding)
        sim_acc = tsnn.evaluate(q, data, progress=False)["accuracy"]
        preds, _ = tsnn.run_integer(tsnn.integer_model(q), data.test_images, seed, backend=sim)
        int_acc = (preds == data.test_labels).mean()
        kib = sum(s.fmt.bits for g, s in q.quant.plan.groups.items() if g == "weights") \
            * q.w.size / 8 / 1024
        print(f"{bits:4d} {rounding:>10} {100 * sim_acc:8.2f}% {100 * int_acc:7.2f}% {kib:6.1f}")

# %% [markdown]
# ## The exploration
#
# The grid: post-training quantization at each precision and rounding, weights alone or
# weights and neuron parameters, and (full size) the per-group sensitivity sweep. Each row
# holds the accuracy (integer inference where the point deploys), memory and the ASIC energy
# model's energy per inference.

# %%
rows = tsnn.explore(OUT / "float.tsnn", OUT / "explore.jsonl", schemes=["ptq"],
                    bits=[8, 4] if SMALL else [16, 8, 6, 4, 2],
                    roundings=["nearest", "stochastic"],
                    group_sets=["all"] if SMALL else ["weights", "all"],
                    sensitivity=not SMALL, progress=False)
grid = [r for r in rows if r["kind"] == "grid"]
for r in sorted(grid, key=lambda r: (-r["bits"], r["label"])):
    print(f"{r['label']:34s} {100 * r['accuracy']:6.2f}%  {r['memory_model_bits'] / 8192:7.1f} KiB"
          f"  {r['energy_inference_pj'] / 1e6:6.3f} uJ")
print(f"explored {len(grid)} points into {OUT / 'explore.jsonl'}")
