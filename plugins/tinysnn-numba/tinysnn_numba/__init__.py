"""tinysnn-numba: the compiled CPU backend of tinySNN (backend name ``numba``).

Installing this distribution registers the backend through the ``tinysnn`` entry point group;
select it with ``backend = "numba"`` in a configuration (or ``--set backend=numba``).
"""

__version__ = "0.1.0"

from .backend import NumbaBackend, UnsupportedNetwork  # noqa: E402

__all__ = ["NumbaBackend", "UnsupportedNetwork", "__version__"]
