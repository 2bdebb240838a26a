"""Hook implementation of tinysnn-nir: the ``nir`` exporter."""

from __future__ import annotations

import tinysnn_core


class NIRExporter:
    """A model as a NIR graph (HDF5 file): Input -> Linear -> LIF, the lateral inhibition as
    a delayed recurrent Linear (docs/nir.md)."""

    suffix = ".nir"

    def export(self, net, path):
        from .mapping import write_nir

        return write_nir(net, path)


@tinysnn_core.hookimpl
def register_exporters(register):
    register("nir", NIRExporter, summary="NIR graph (Neuromorphic Intermediate Representation, "
             "HDF5) for snnTorch, Norse, Lava, Rockpool, Sinabs, SpiNNaker2")
