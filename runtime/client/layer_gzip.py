"""The runtime's gzip for layers, for the layers the engine writes itself (a build's COPY and scratch steps).

Layers are compressed in independent blocks, stored where deflate gains nothing (see runtime.diff.gzip_blocks):
one format whichever side writes a layer, and random or already compressed files cost a copy, not a deflate.
"""
from runtime.diff.gzip_blocks import BlockGzip
from runtime.diff.layer_writer import GZIP_LEVEL

__all__ = ["BlockGzip", "GZIP_LEVEL"]
