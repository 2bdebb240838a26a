# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Train and inspect
#
# Train the reduced tinySNN network with STDP, watch it learn through a training callback,
# assign labels, measure the test accuracy, and look at what the neurons learned. The same
# steps as `tinysnn run` (docs/api.md). `TINYSNN_EXAMPLE_SMALL=1` runs it in seconds.

# %%
import numpy as np

import tinysnn as tsnn
from _sizes import N_NEURONS, N_TEST, N_TRAIN, OUT, backend

OUT.mkdir(parents=True, exist_ok=True)
cfg = tsnn.Config().replace(n_neurons=N_NEURONS, backend=backend(),
                            train={"n_train": N_TRAIN, "n_test": N_TEST})
data = tsnn.load_dataset(cfg)
print(f"{cfg.plugin_name('topology')} network, N = {cfg.n_neurons}, {cfg.plugin_name('learning')}, "
      f"{len(data.train_labels)} training / {len(data.test_labels)} test samples of {data.name}")

# %% [markdown]
# ## Training, watched
#
# The callback sees every batch: its spike counts and labels, and the live network. Here it
# keeps the spikes per sample and how many neurons have settled on one class so far (a neuron
# "prefers" the class whose samples made it fire most, over the batches seen).

# %%
net = tsnn.build_network(cfg)
per_class = np.zeros((net.n_neurons, data.n_classes))
curve = []

def watch(step: tsnn.TrainStep) -> None:
    np.add.at(per_class.T, step.labels, step.counts)          # spikes by (neuron, class)
    spiking = per_class.sum(axis=1) > 0
    curve.append((step.done, float(step.counts.sum(axis=1).mean()), int(spiking.sum())))

tsnn.train(net, data, callbacks=[watch], progress=False)
for done, spikes, active in curve[:: max(1, len(curve) // 5)] + curve[-1:]:
    print(f"after {done:5d} samples: {spikes:5.1f} spikes per sample, {active} neurons have fired")

# %% [markdown]
# ## Labels and accuracy

# %%
tsnn.assign(net, data, progress=False)
metrics = tsnn.evaluate(net, data, progress=False)
print(f"test accuracy: {100 * metrics['accuracy_all-activity']:.2f}% (all-activity), "
      f"{100 * metrics['accuracy_proportion-weighting']:.2f}% (proportion weighting) "
      f"on {metrics['n_test']} samples")
tsnn.save_network(net, OUT / "float.tsnn", metrics=metrics)

# %% [markdown]
# ## What the neurons learned
#
# Each neuron's class, the adaptive thresholds that keep any one neuron from winning every
# sample, and the learned weights as 28 x 28 images (a digit prototype per neuron).

# %%
classes, sizes = np.unique(net.assignments, return_counts=True)
print("neurons per class:", {int(c): int(k) for c, k in zip(classes, sizes)})
print(f"theta: mean {net.theta.mean():.2f} mV, max {net.theta.max():.2f} mV")
print(f"weights: mean {net.w.mean():.3f}, {100 * (net.w > 0.5).mean():.1f}% above 0.5")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:      # the explore extra brings matplotlib
    plt = None
if plt is not None:
    k = min(25, net.n_neurons)
    fig, axes = plt.subplots(5, 5, figsize=(6, 6))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < k:
            ax.imshow(net.w[:, i].reshape(28, 28), cmap="hot")
            ax.set_title(str(net.assignments[i]), fontsize=8)
    fig.savefig(OUT / "weights.png", dpi=80)
    print(f"weight maps: {OUT / 'weights.png'}")
