"""The kernels' input-spike draws: the vector compaction (``_draw_steps_compress``, AVX-512F)
and the portable bit masks (``_draw_steps_masks``) give the encoder's spikes, lists and winner
words, and the same as each other, for any image, rate, key and chunk of steps."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tinysnn_core import counter_rng  # noqa: E402
from tinysnn_numba import kernels as k  # noqa: E402

N_IN = 784
CH_MAX = 64

needs_compress = pytest.mark.skipif(
    not k.DRAW_COMPRESS, reason="the vector draws need numba to target a host with AVX-512F")


def expected(image, rate_unit, skey, step0, ch):
    """The encoder's spikes (tinysnn_core.builtin.encoders): per step, the ascending pixels
    with ``draw < image * rate_unit``; and each step's winner word."""
    nz = np.flatnonzero(image)
    keys = counter_rng.step_keys(skey, step0 + ch)[step0:]
    thr = image[nz].astype(np.uint64) * np.uint64(rate_unit)
    fired = counter_rng.draws(keys, nz) < thr[None, :]
    lists = [nz[f] for f in fired]
    rnd = [counter_rng.fmix32((int(s) + counter_rng.WINNER_INDEX * counter_rng.INDEX_MUL)
                              & counter_rng.M32) for s in keys]
    return lists, rnd


def draw(fn, image, rate_unit, skey, step0, ch):
    nz = np.zeros(N_IN, np.int32)
    thm1 = np.zeros(N_IN, np.uint32)
    im = np.zeros(N_IN, np.uint32)
    n_nz = k._setup_inputs_u32(np.asarray(image, np.int64), rate_unit, nz, thm1, im)
    fired = np.zeros(N_IN + k.DRAW_SCRATCH, np.uint32)
    lst = np.full(CH_MAX * N_IN + 1, -7, np.int32)     # -7: never written
    off = np.zeros(CH_MAX + 1, np.int64)
    rnd = np.zeros(CH_MAX, np.int64)
    n = fn(np.uint64(skey), step0, ch, n_nz, nz, thm1, im, fired, lst, off, rnd)
    return n, lst, off, rnd


images = st.one_of(
    st.lists(st.integers(0, 255), min_size=N_IN, max_size=N_IN),
    # sparse, like a digit: most pixels 0, the rest anywhere in 1..255
    st.lists(st.sampled_from([0] * 6 + [1, 17, 128, 254, 255]), min_size=N_IN, max_size=N_IN),
).map(lambda xs: np.array(xs, dtype=np.int64))
# rate units: tiny, typical (2**32 * 63.75 Hz * 0.5 ms / 255), and saturating (every
# threshold >= 2**32: every non-zero pixel spikes at every step)
rate_units = st.sampled_from([1, 1000, 536870, 2147483, 16843009, 2**32])


@pytest.mark.parametrize("which", ["masks", pytest.param("compress", marks=needs_compress)])
@settings(max_examples=60, deadline=None)
@given(image=images, rate_unit=rate_units, skey=st.integers(0, 2**32 - 1),
       step0=st.integers(0, 2000), ch=st.integers(1, CH_MAX))
def test_draws_are_the_encoders_spikes(which, image, rate_unit, skey, step0, ch):
    fn = k._draw_steps_compress if which == "compress" else k._draw_steps_masks
    n, lst, off, rnd = draw(fn, image, rate_unit, skey, step0, ch)
    lists, want_rnd = expected(image, rate_unit, skey, step0, ch)
    assert n == sum(len(x) for x in lists) == off[ch]
    for tt in range(ch):
        assert lst[off[tt]:off[tt + 1]].tolist() == lists[tt].tolist()
    assert (lst[n:] == -7).all()        # nothing written past the last spike
    assert rnd[:ch].tolist() == want_rnd


@needs_compress
def test_compress_handles_every_lane_count():
    """Every count of pixels 0..784 (a last chunk of 1..16 lanes, 784 = the arrays' end)."""
    rng = np.random.default_rng(3)
    for n_pix in list(range(0, 40)) + [767, 768, 769, 783, 784]:
        image = np.zeros(N_IN, np.int64)
        image[np.sort(rng.choice(N_IN, n_pix, replace=False))] = rng.integers(1, 256, n_pix)
        a = draw(k._draw_steps_compress, image, 2147483, 99, 5, 33)
        b = draw(k._draw_steps_masks, image, 2147483, 99, 5, 33)
        for x, y in zip(a, b):
            assert np.array_equal(x, y), n_pix


def test_a_named_target_uses_the_portable_draws(monkeypatch):
    from numba.core import config

    monkeypatch.setattr(config, "CPU_NAME", "generic")
    assert k._compress_target() is False


@pytest.mark.parametrize("which", ["masks", pytest.param("compress", marks=needs_compress)])
@settings(max_examples=40, deadline=None)
@given(skey=st.integers(0, 2**32 - 1), step=st.integers(0, 700), pixel=st.integers(0, N_IN - 1))
def test_a_draw_equal_to_the_threshold_does_not_fire(which, skey, step, pixel):
    """``draw < threshold``: a pixel whose threshold is its draw + 1 fires, one whose threshold
    is the draw itself does not (the boundary that random thresholds hit once in 2**32)."""
    fn = k._draw_steps_compress if which == "compress" else k._draw_steps_masks
    d = counter_rng.draw_one(skey, step, pixel)
    image = np.zeros(N_IN, np.int64)
    image[pixel] = 1
    for rate_unit, fires in ((d + 1, True), (d, False)):
        n, lst, off, rnd = draw(fn, image, rate_unit, skey, step, 1)
        assert n == int(fires) and (lst[:n] == pixel).all()
