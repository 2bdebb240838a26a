"""tinySNN GPU backend ``cupy``: CUDA kernels (``cuda/snn_kernels.cu``) run through CuPy.

Importing this package never needs CuPy; ``CupyBackend().available()`` says whether CuPy and a
CUDA device are present. See ``docs/gpu.md``.
"""

from .backend import (CupyBackend, CupyUnavailable, UnsupportedNetwork, KERNEL_SOURCE,
                      cupy_status)

__all__ = ["CupyBackend", "CupyUnavailable", "UnsupportedNetwork", "KERNEL_SOURCE", "cupy_status"]
__version__ = "0.1.0"
