# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Select and deploy to QEMU
#
# From an exploration, choose the smallest model that meets an accuracy target, write it, and
# run it on the emulated Cortex-M3 board `qemu-mps2-an385`: generate its C model, check that it
# fits, build the firmware, start QEMU, send test samples over the serial link and compare every
# prediction and spike count with the host's integer simulator. This is the code path of
# `tinysnn select` and `tinysnn deploy` (docs/deploy.md). It needs the Arm toolchain and QEMU
# (`gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm`); without them it says so and
# stops. `TINYSNN_EXAMPLE_SMALL=1` runs it in under a minute.

# %%
import shutil
import sys

import tinysnn as tsnn
from _sizes import BOARD_SAMPLES, N_NEURONS, N_TEST, N_TRAIN, OUT, SMALL, backend

BOARD = "qemu-mps2-an385"
missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
if missing:
    print(f"skipped: {BOARD} needs {', '.join(missing)} (apt-get install gcc-arm-none-eabi "
          "libnewlib-arm-none-eabi qemu-system-arm)")
    sys.exit(0)

OUT.mkdir(parents=True, exist_ok=True)
cfg = tsnn.Config().replace(n_neurons=N_NEURONS, backend=backend(),
                            train={"n_train": N_TRAIN, "n_test": N_TEST})
net, metrics = tsnn.run(cfg, OUT / "float.tsnn", progress=False)
print(f"float model: {100 * metrics['accuracy']:.2f}% on {metrics['n_test']} test samples")
rows = tsnn.explore(OUT / "float.tsnn", OUT / "explore.jsonl", schemes=["ptq"],
                    bits=[8, 6] if SMALL else [16, 8, 6, 4],
                    roundings=["nearest"] if SMALL else ["nearest", "stochastic"],
                    group_sets=["all"], sensitivity=False, progress=False)

# %% [markdown]
# ## Select
#
# The target: within reach of the float model. With few test samples the selection is
# decided at 95% confidence, so the small run asks for less.

# %%
target = 0.4 if SMALL else metrics["accuracy"] - 0.03
selection = tsnn.select(rows, target=target)
print(selection.explanation)
chosen = tsnn.materialize(selection.chosen, str(OUT / "float.tsnn"))
tsnn.save_network(chosen, OUT / "selected.tsnn",
                  metrics={"accuracy": selection.chosen["accuracy"]})

# %% [markdown]
# ## Deploy
#
# `tsnn.deploy` is `tinysnn deploy OUT/selected.tsnn --board qemu-mps2-an385 --samples N`;
# the report it prints is the command's. Every sample's result is in the results file as it
# arrives, so an interrupted run resumes.

# %%
summary = tsnn.deploy(OUT / "selected.tsnn", BOARD, samples=BOARD_SAMPLES,
                      results=OUT / "deploy.jsonl", build_dir=OUT / f"build-{BOARD}")
print(f"on {BOARD}: parity {100 * summary['parity']:.2f}% over {summary['samples']} samples, "
      f"board accuracy {100 * summary['accuracy']:.2f}%, flash {summary['flash_bytes']:,} B, "
      f"RAM {summary['ram_bytes']:,} B")
assert summary["parity"] == 1.0 and summary["counts_identical"] == 1.0
