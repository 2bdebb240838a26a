"""The kernels' input-spike draws: the vector compactions (``_draw_steps_x16``, AVX-512F;
``_draw_steps_x8``, AVX2) and the portable bit masks (``_draw_steps_masks``) give the encoder's
spikes, lists and winner words, and the same as each other, for any image, rate, key and chunk of
steps. Each vector path runs where the host has its instructions (an AVX-512F host runs both)."""

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

PATHS = {"masks": k._draw_steps_masks, "x8": k._draw_steps_x8, "x16": k._draw_steps_x16}
NEEDS = {"x8": (8, "AVX2"), "x16": (16, "AVX-512F")}


def path(name):
    """A draw path as a test parameter, skipped where numba's target lacks its instructions."""
    if name not in NEEDS:
        return name
    lanes, isa = NEEDS[name]
    return pytest.param(name, marks=pytest.mark.skipif(
        k.DRAW_LANES < lanes, reason=f"the {name} draws need numba to target a host with {isa}"))


#: the words past the last spike a path may write (scratch to the kernels): _fire8 stores all
#: 8 lanes where the list has room
SPILL = {"masks": 0, "x8": 8, "x16": 0}
ALL_PATHS = [path(p) for p in PATHS]
VECTOR_PATHS = [path(p) for p in NEEDS]


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


@pytest.mark.parametrize("which", ALL_PATHS)
@settings(max_examples=60, deadline=None)
@given(image=images, rate_unit=rate_units, skey=st.integers(0, 2**32 - 1),
       step0=st.integers(0, 2000), ch=st.integers(1, CH_MAX))
def test_draws_are_the_encoders_spikes(which, image, rate_unit, skey, step0, ch):
    n, lst, off, rnd = draw(PATHS[which], image, rate_unit, skey, step0, ch)
    lists, want_rnd = expected(image, rate_unit, skey, step0, ch)
    assert n == sum(len(x) for x in lists) == off[ch]
    for tt in range(ch):
        assert lst[off[tt]:off[tt + 1]].tolist() == lists[tt].tolist()
    assert (lst[n + SPILL[which]:] == -7).all()     # nothing written further
    assert rnd[:ch].tolist() == want_rnd


@pytest.mark.parametrize("which", VECTOR_PATHS)
def test_vector_draws_handle_every_lane_count(which):
    """Every count of pixels 0..39 and around 784 (a last chunk of every lane count, 784 = the
    arrays' end)."""
    rng = np.random.default_rng(3)
    for n_pix in list(range(0, 40)) + [767, 768, 769, 783, 784]:
        image = np.zeros(N_IN, np.int64)
        image[np.sort(rng.choice(N_IN, n_pix, replace=False))] = rng.integers(1, 256, n_pix)
        n, lst, off, rnd = draw(PATHS[which], image, 2147483, 99, 5, 33)
        n_b, lst_b, off_b, rnd_b = draw(k._draw_steps_masks, image, 2147483, 99, 5, 33)
        assert n == n_b and np.array_equal(lst[:n], lst_b[:n]), n_pix
        assert np.array_equal(off, off_b) and np.array_equal(rnd, rnd_b), n_pix
        assert (lst[n + SPILL[which]:] == -7).all(), n_pix


@pytest.mark.parametrize("which", VECTOR_PATHS)
def test_a_list_with_no_room_to_spare_is_written_only_inside(which):
    """A list exactly as long as the spikes (a view into a longer array): the stores that would
    reach past its end are masked, so the words after it stay untouched."""
    image = np.zeros(N_IN, np.int64)
    image[::3] = 255
    n_want = sum(len(x) for x in expected(image, 2**32, 5, 0, 4)[0])    # every pixel fires
    nz = np.zeros(N_IN, np.int32)
    thm1 = np.zeros(N_IN, np.uint32)
    im = np.zeros(N_IN, np.uint32)
    n_nz = k._setup_inputs_u32(image, 2**32, nz, thm1, im)
    big = np.full(n_want + 64, -7, np.int32)
    off = np.zeros(5, np.int64)
    rnd = np.zeros(4, np.int64)
    fired = np.zeros(N_IN + k.DRAW_SCRATCH, np.uint32)
    n = PATHS[which](np.uint64(5), 0, 4, n_nz, nz, thm1, im, fired, big[:n_want], off, rnd)
    assert n == n_want and (big[n_want:] == -7).all()
    assert big[:n_want].tolist() == np.tile(np.flatnonzero(image), 4).tolist()


def test_a_named_target_uses_the_portable_draws(monkeypatch):
    from numba.core import config

    monkeypatch.setattr(config, "CPU_NAME", "generic")
    assert k._draw_lanes() == 0


def test_the_kernels_draw_as_wide_as_the_host_allows():
    assert k._draw_steps is {16: k._draw_steps_x16, 8: k._draw_steps_x8,
                             0: k._draw_steps_masks}[k.DRAW_LANES]


def test_the_packing_orders_list_the_fired_lanes_ascending():
    for m in range(256):
        order = [k._PACK8[m] >> (8 * i) & 0xFF for i in range(8)]
        fired = [i for i in range(8) if m >> i & 1]
        assert order[:len(fired)] == fired and not any(order[len(fired):])


@pytest.mark.parametrize("which", ALL_PATHS)
@settings(max_examples=40, deadline=None)
@given(skey=st.integers(0, 2**32 - 1), step=st.integers(0, 700), pixel=st.integers(0, N_IN - 1))
def test_a_draw_equal_to_the_threshold_does_not_fire(which, skey, step, pixel):
    """``draw < threshold``: a pixel whose threshold is its draw + 1 fires, one whose threshold
    is the draw itself does not (the boundary that random thresholds hit once in 2**32)."""
    fn = PATHS[which]
    d = counter_rng.draw_one(skey, step, pixel)
    image = np.zeros(N_IN, np.int64)
    image[pixel] = 1
    for rate_unit, fires in ((d + 1, True), (d, False)):
        n, lst, off, rnd = draw(fn, image, rate_unit, skey, step, 1)
        assert n == int(fires) and (lst[:n] == pixel).all()
