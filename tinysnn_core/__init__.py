"""tinySNN: memory- and energy-efficient spiking neural networks, from STDP training to the board.

The core is minimal: hook specifications (``hookspecs``), the plugin registry (``registry``),
the configuration schema (``config``), the fixed-point semantics (``fixedpoint``), the model
file format (``modelfile``) and the training/evaluation flow.  Every concrete neuron model,
learning rule, quantizer, rounding scheme, cost model, backend and data set is a plugin.

The Python API is the facade package ``tinysnn`` (``import tinysnn as tsnn``, docs/api.md): these
modules' functions under one name each.
"""

import pluggy

__version__ = "0.1.0"

#: Decorator for plugin hook implementations: ``@tinysnn_core.hookimpl``.
hookimpl = pluggy.HookimplMarker("tinysnn")

from .fixedpoint import QFormat, from_codes, quantize, to_codes  # noqa: E402

__all__ = ["hookimpl", "QFormat", "quantize", "to_codes", "from_codes", "__version__"]
