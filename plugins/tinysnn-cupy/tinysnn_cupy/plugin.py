"""Hook implementations of the tinysnn-cupy distribution (entry point group ``tinysnn``)."""

from __future__ import annotations

from tinysnn_core import hookimpl

from .backend import CupyBackend


@hookimpl
def register_backends(register):
    register("cupy", CupyBackend,
             summary="CUDA kernels through CuPy (float64): batched inference and exploration, "
                     "STDP training; needs CuPy and an NVIDIA GPU")
