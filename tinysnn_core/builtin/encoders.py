"""Input encoding: Poisson rate code, as Diehl & Cook's Brian PoissonGroup (a Bernoulli draw per
pixel and step), with the randomness taken from the shared counter-based generator.

A pixel of intensity ``p`` (0..255) spikes at step ``t`` when
``draw(step_key(sample_key(seed, sample), t), pixel) < p * rate_unit(retry)``, with the integer
threshold unit ``rate_unit(k) = floor(2**32 * (max_rate_hz + k * retry_rate_hz) * dt / 1000 / 255)``.
Everything is integer, so host and firmware agree bit for bit. Zero pixels never spike, so only
the non-zero pixels are drawn (about a fifth of an MNIST digit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinysnn_core import counter_rng, hookimpl
from tinysnn_core.errors import ConfigError


@dataclass
class PoissonParams:
    max_rate_hz: float = 63.75      # D&C: 255 / 8 * intensity 2
    retry_rate_hz: float = 31.875   # D&C: +1 intensity when the layer stays too quiet
    retry_min_spikes: int = 5       # D&C: retry when fewer excitatory spikes than this
    max_retries: int = 4            # presentations beyond the first, at most

    def check(self):
        if not 0 < self.max_rate_hz <= 1000:
            raise ValueError(f"max_rate_hz must be in (0, 1000], got {self.max_rate_hz}")
        if self.retry_rate_hz < 0 or self.retry_min_spikes < 0 or self.max_retries < 0:
            raise ValueError("retry_rate_hz, retry_min_spikes and max_retries must be >= 0")
        # the board's counters: a retry count is 8 bits (as inference.max_retries), spikes 16
        if self.retry_rate_hz > 1000 or self.retry_min_spikes > 65535 or self.max_retries > 254:
            raise ValueError(f"retry_rate_hz must be at most 1000, retry_min_spikes at most "
                             f"65535, max_retries at most 254; got {self.retry_rate_hz}, "
                             f"{self.retry_min_spikes}, {self.max_retries}")


def presentation_step_keys(seed: int, sample: int, retry: int, n_steps: int) -> np.ndarray:
    """The generator's step keys of one presentation (shared with the one-spike winner draw)."""
    keys = counter_rng.step_keys(counter_rng.sample_key(seed, sample), (retry + 1) * n_steps)
    return keys[retry * n_steps:]


class PoissonEncoder:
    """Poisson rate coding with Diehl & Cook's retry rule (counter-based, reproducible)."""

    Params = PoissonParams

    def __init__(self, params: PoissonParams, dt: float):
        self.params = params
        self.dt = dt
        top = 255 * self.rate_unit(params.max_retries)
        if top >= 2 ** 32:
            raise ConfigError(   # a ValueError too, for callers that catch those
                f"encoder: {params.max_rate_hz} Hz + {params.max_retries} retries x "
                f"{params.retry_rate_hz} Hz at dt={dt} ms exceeds a spike probability of 1 per step")

    def rate_unit(self, retry: int) -> int:
        """Integer threshold per unit of pixel intensity at presentation ``retry``."""
        p = self.params
        return int(2 ** 32 * (p.max_rate_hz + retry * p.retry_rate_hz) * self.dt / 1000.0 / 255.0)

    def encode(self, image: np.ndarray, seed: int, sample: int, retry: int, n_steps: int):
        """Input spikes of one presentation as a list (one per step) of pixel index arrays.

        Presentation ``retry`` uses the generator's steps ``retry*n_steps .. (retry+1)*n_steps-1``
        of the sample, so a retry draws fresh numbers."""
        nz = np.flatnonzero(image).astype(np.int64)
        keys = presentation_step_keys(seed, sample, retry, n_steps)
        thresholds = image[nz].astype(np.uint64) * np.uint64(self.rate_unit(retry))
        fired = counter_rng.draws(keys, nz) < thresholds[None, :]
        steps, cols = np.nonzero(fired)
        bounds = np.searchsorted(steps, np.arange(n_steps + 1))
        pixels = nz[cols]
        return [pixels[bounds[t]:bounds[t + 1]] for t in range(n_steps)]

    def encode_dense(self, image, seed, sample, retry, n_steps) -> np.ndarray:
        """The same spikes as a bool array [n_steps, 784]."""
        out = np.zeros((n_steps, image.shape[-1]), dtype=bool)
        for t, idx in enumerate(self.encode(image, seed, sample, retry, n_steps)):
            out[t, idx] = True
        return out


@hookimpl
def register_encoders(register):
    register("poisson", PoissonEncoder, aliases=("rate",))
