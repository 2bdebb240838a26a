"""tinySNN's NIR exporter: ``tinysnn export MODEL --format nir FILE`` (docs/nir.md)."""

from .mapping import METADATA_KEY, to_nir, write_nir

__all__ = ["METADATA_KEY", "to_nir", "write_nir"]
