import numpy as np
import pytest

from tinysnn_core import counter_rng
from tinysnn_core.builtin.encoders import PoissonEncoder, PoissonParams


def test_fmix32_vector_and_scalar_agree():
    xs = np.array([0, 1, 2, 0xFFFFFFFF, 12345], dtype=np.uint32)
    assert [int(v) for v in counter_rng.fmix32(xs)] == [counter_rng.fmix32(int(x)) for x in xs]
    # known value of MurmurHash3's fmix32 (0 is a fixed point; 1 maps to 0x514e28b7)
    assert counter_rng.fmix32(0) == 0 and counter_rng.fmix32(1) == 0x514E28B7


def test_draw_one_matches_vector_draws():
    key = counter_rng.sample_key(7, 3)
    keys = counter_rng.step_keys(key, 5)
    table = counter_rng.draws(keys, np.array([0, 9, 783]))
    for step in range(5):
        for j, idx in enumerate([0, 9, 783]):
            assert int(table[step, j]) == counter_rng.draw_one(key, step, idx)


def test_rate_matches_the_configured_frequency():
    enc = PoissonEncoder(PoissonParams(), dt=1.0)
    image = np.zeros(784, np.uint8)
    image[:200] = 255
    dense = enc.encode_dense(image, seed=1, sample=0, retry=0, n_steps=2000)
    rate_hz = dense[:, :200].mean() * 1000
    # 200 x 2000 Bernoulli(0.06375) draws: standard error ~0.04 Hz per ... allow 3%
    assert abs(rate_hz - 63.75) < 0.03 * 63.75
    assert not dense[:, 200:].any(), "zero pixels never spike"


def test_retry_raises_the_rate_and_draws_fresh_numbers():
    enc = PoissonEncoder(PoissonParams(), dt=1.0)
    image = np.full(784, 128, np.uint8)
    first = enc.encode_dense(image, 0, 0, 0, 500)
    second = enc.encode_dense(image, 0, 0, 1, 500)
    assert second.mean() > 1.3 * first.mean()
    assert not np.array_equal(first, second[:, :])


def test_same_arguments_same_spikes_and_seed_changes_them():
    enc = PoissonEncoder(PoissonParams(), dt=1.0)
    image = np.full(784, 200, np.uint8)
    a = enc.encode_dense(image, 5, 9, 0, 100)
    assert np.array_equal(a, enc.encode_dense(image, 5, 9, 0, 100))
    assert not np.array_equal(a, enc.encode_dense(image, 6, 9, 0, 100))
    assert not np.array_equal(a, enc.encode_dense(image, 5, 10, 0, 100))


def test_probability_above_one_is_refused():
    with pytest.raises(ValueError, match="probability"):
        PoissonEncoder(PoissonParams(max_rate_hz=900, retry_rate_hz=100, max_retries=5), dt=1.0)
