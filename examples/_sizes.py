"""Sizes of the examples: ``TINYSNN_EXAMPLE_SMALL=1`` (the tests and CI) runs them in seconds;
without it they run at a size whose accuracy means something (minutes on 2 cores)."""

import os
from pathlib import Path

SMALL = os.environ.get("TINYSNN_EXAMPLE_SMALL", "").strip() not in ("", "0", "no", "false")

#: network and data sizes: (neurons, training samples, test samples)
N_NEURONS, N_TRAIN, N_TEST = (50, 300, 100) if SMALL else (100, 2000, 1000)
#: test samples run on the emulated board
BOARD_SAMPLES = 3 if SMALL else 100
#: where the examples write (models, results, report, firmware)
OUT = Path(os.environ.get("TINYSNN_EXAMPLE_OUT", "runs/examples"))


def backend() -> str:
    """The compiled backend when it is installed (the ``fast`` extra), else the reference
    simulator; the results are the same."""
    import tinysnn

    registry = tinysnn.get_registry()
    if "numba" in registry.names("backend") and registry.get("backend", "numba")().available()[0]:
        return "numba"
    return "numpy"
