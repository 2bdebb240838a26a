"""Rounding schemes onto a fixed-point grid (``scaled`` = value / step).

- truncation (TR): ``floor(x)``, drop the extra fraction bits (toward -inf in two's complement);
- nearest (RN): ``floor(x + 1/2)``, ties go up;
- stochastic (SR): up with probability ``frac(x)``, else down; unbiased, ``E[q(x)] = x``.
"""

import numpy as np

from tinysnn_core import hookimpl


def truncation(scaled, rng=None):
    """Truncation: floor onto the grid."""
    return np.floor(scaled)


def nearest(scaled, rng=None):
    """Round to nearest, ties up: floor(x + 1/2)."""
    return np.floor(np.asarray(scaled) + 0.5)


def stochastic(scaled, rng=None):
    """Stochastic rounding: up with probability equal to the fraction (unbiased)."""
    if rng is None:
        raise ValueError("stochastic rounding needs a random generator (rng=np.random.default_rng(seed))")
    scaled = np.asarray(scaled, dtype=np.float64)
    return np.floor(scaled + rng.random(scaled.shape))


@hookimpl
def register_rounding_schemes(register):
    register("truncation", truncation, aliases=("TR",))
    register("nearest", nearest, aliases=("RN",))
    register("stochastic", stochastic, aliases=("SR",))
