"""Entry point of the ``tinysnn`` plugin group: registers the ``numba`` backend.

Importing this module does not import numba, so a machine without numba still lists the backend;
``NumbaBackend().available()`` then says that numba is missing.
"""

import tinysnn_core

from .backend import NumbaBackend


@tinysnn_core.hookimpl
def register_backends(register):
    register("numba", NumbaBackend,
             summary="compiled CPU simulator (numba, float64 and simulated fixed point "
                     "bit-identical to numpy, integer mode to intsim; batched parallel inference)")
