import numpy as np
import pytest

from tinysnn_core.config import Config


@pytest.fixture(scope="session")
def mnist5k():
    from tinysnn_core.builtin.datasets import load_mnist_5k

    return load_mnist_5k(0)


@pytest.fixture
def small_config():
    """A network small enough for unit tests: 40 neurons, 80 steps."""
    def make(**over):
        base = {"n_neurons": 40, "train": {"time_steps": 80, "checkpoint_every": 10}}
        base.update(over)
        return Config.from_dict(base)
    return make


@pytest.fixture
def tiny_images(mnist5k):
    return mnist5k.train_images[:12], mnist5k.train_labels[:12]


def rng():
    return np.random.default_rng(0)
