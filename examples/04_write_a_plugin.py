# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Write a plugin
#
# A plugin is any module or object with `@hookimpl` functions that register things
# (docs/plugins.md; `plugins/tinysnn-example` is a packaged one). Here a third party's cost
# model, written in this script and registered at run time: the integer additions an inference
# does (one per input spike per neuron, one per neuron per time step, the multiply-free
# operations a small core spends its time on). An exploration then costs every point with it,
# and the selection chooses by its figure. `TINYSNN_EXAMPLE_SMALL=1` runs it in seconds.

# %%
import numpy as np

import tinysnn as tsnn
from _sizes import N_NEURONS, N_TEST, N_TRAIN, OUT, SMALL, backend


class IntegerAdds:
    """Integer additions per inference: input spikes x N (synaptic) + steps x N (neurons)."""

    def integer_inference_cost(self, model, ops: dict) -> dict:
        n = int(model.n_neurons)
        adds = (np.asarray(ops["input_spikes"], dtype=np.int64) * n
                + np.asarray(ops["steps"], dtype=np.int64) * n)
        return {"label": "integer additions: synaptic (input spikes x N) + neuron steps",
                "adds_median": float(np.median(adds)), "adds_mean": float(np.mean(adds))}


class MyPlugin:
    @tsnn.hookimpl
    def register_cost_models(self, register):
        register("integer-adds", IntegerAdds, summary="integer additions per inference "
                 "(examples/04_write_a_plugin.py)")


problems = tsnn.get_registry().add_plugin(MyPlugin(), distribution="my-plugin", version="0.1")
assert not problems, problems
print([r for r in tsnn.get_registry().listing() if r["name"] == "integer-adds"][0])

# %% [markdown]
# ## The plugin in an exploration
#
# `cost_models=["integer-adds"]` puts the figures into every deployable row (`costs`); the
# exploration runs in this process (`workers=1`), which knows the plugin. Installed as an
# entry point (docs/plugins.md), worker processes and the command line would know it too.

# %%
OUT.mkdir(parents=True, exist_ok=True)
cfg = tsnn.Config().replace(n_neurons=N_NEURONS, backend=backend(),
                            train={"n_train": N_TRAIN, "n_test": N_TEST})
net, metrics = tsnn.run(cfg, OUT / "float.tsnn", progress=False)
rows = tsnn.explore(OUT / "float.tsnn", OUT / "explore-adds.jsonl", schemes=["ptq"],
                    bits=[8, 6] if SMALL else [16, 8, 6, 4], roundings=["nearest"],
                    group_sets=["all"], sensitivity=False, exit_margins=[0, 2],
                    cost_models=["integer-adds"], progress=False)
for r in rows:
    if "costs" in r:
        print(f"{r['label']:36s} {100 * r['accuracy']:6.2f}%  "
              f"{r['costs']['integer-adds']['adds_median']:12,.0f} adds")

# %% [markdown]
# ## Choose by the plugin's figure
#
# The fewest additions among the points that meet the target (early exit, `exit=2`, stops a
# presentation once the leading class leads by two spikes, and saves steps).

# %%
target = 0.4 if SMALL else metrics["accuracy"] - 0.03
selection = tsnn.select_by_cost(rows, "integer-adds", target=target)
print(selection.explanation)
print(f"chosen by integer-adds: {selection.chosen['label']}, "
      f"{selection.chosen['costs']['integer-adds']['adds_median']:,.0f} adds per inference")
