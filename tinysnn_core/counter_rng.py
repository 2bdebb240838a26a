"""The counter-based random numbers that every backend and the firmware share.

Randomness in a simulation (input spikes, the one-spike winner) is a pure function of
``(seed, sample, step, index)``, so the NumPy reference, the compiled and GPU backends and the C
firmware draw the very same numbers without carrying a generator state. The mixer is the 32-bit
finaliser of MurmurHash3 (``fmix32``), a bijection on 32-bit words; the keys chain it so that no two
(sample, step, index) tuples of one seed share a word. All arithmetic is modulo 2**32.

    sample_key(seed, sample)   = fmix32(seed + 0x9E3779B9 * sample)
    step_key(sample_key, step) = fmix32(sample_key ^ (0x85EBCA77 * step))
    draw(step_key, index)      = fmix32(step_key + 0xC2B2AE3D * index)

``docs/fixed-point.md`` repeats these lines; the C firmware implements them identically.
"""

from __future__ import annotations

import numpy as np

M32 = 0xFFFFFFFF
GOLDEN = 0x9E3779B9
STEP_MUL = 0x85EBCA77
INDEX_MUL = 0xC2B2AE3D
#: index used for the one-spike winner draw (no input pixel has this index)
WINNER_INDEX = 0xFFFF


def fmix32(x):
    """MurmurHash3's 32-bit finaliser on a uint32 array (or Python int)."""
    if isinstance(x, (int, np.integer)):
        x = int(x) & M32
        x ^= x >> 16
        x = (x * 0x85EBCA6B) & M32
        x ^= x >> 13
        x = (x * 0xC2B2AE35) & M32
        x ^= x >> 16
        return x
    x = np.asarray(x, dtype=np.uint32).copy()
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    return x


def sample_key(seed: int, sample: int) -> int:
    return fmix32((int(seed) + GOLDEN * int(sample)) & M32)


def step_keys(skey: int, n_steps: int) -> np.ndarray:
    """``step_key`` for steps 0..n_steps-1 as uint32."""
    steps = np.arange(n_steps, dtype=np.uint64)
    return fmix32(((steps * STEP_MUL) & M32).astype(np.uint32) ^ np.uint32(skey))


def draws(step_key_arr: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``draw`` for every (step key, index) pair: uint32 [len(step keys), len(index)]."""
    idx = ((np.asarray(index, dtype=np.uint64) * INDEX_MUL) & M32).astype(np.uint32)
    return fmix32(np.asarray(step_key_arr, dtype=np.uint32)[:, None] + idx[None, :])


def draw_one(skey: int, step: int, index: int) -> int:
    k = fmix32((skey ^ ((STEP_MUL * step) & M32)) & M32)
    return fmix32((k + INDEX_MUL * index) & M32)


def keep_one_spike(crossed: np.ndarray, rand: int) -> np.ndarray:
    """The one-spike rule: of the neurons that crossed their threshold this step, only
    ``idx[rand % idx.size]`` (``rand``: the step's WINNER_INDEX draw) emits its spike. Returns
    ``crossed`` itself when at most one crossed, else a new mask with the winner alone."""
    idx = np.flatnonzero(crossed)
    if idx.size <= 1:
        return crossed
    one = np.zeros_like(crossed)
    one[idx[rand % idx.size]] = True
    return one
