"""An example tinySNN plugin (see docs/plugins.md): a neuron model and a rounding scheme."""
