"""The ANEMLL layout, in one place: ``meta.yaml`` as one record and the naming rules of its parts.

- :mod:`.names`: how part files are named (``{prefix}_FFN_PF_lut6_chunk_01of02.mlpackage``)
- :mod:`.meta`: :class:`AnemllMeta`, read from and written to ``meta.yaml``
- :mod:`.folder`: which files of a folder are the embeddings, FFN chunks and LM head

The engine reads folders with :func:`read_layout`, the converter writes ``meta.yaml`` with
:func:`write_meta` and names parts with :mod:`.names`, and the catalog detects Core ML
folders with :func:`read_meta` + :func:`locate_parts` — so all three agree on every folder.
"""

from anechat.engines.coreml.anemll.folder import CoreMLLayout, FFNChunk, PartFiles, locate_parts, read_layout
from anechat.engines.coreml.anemll.meta import LAYOUT_VERSION, LUT_BITS, AnemllMeta, LayoutError, read_meta, write_meta

__all__ = [
    "LAYOUT_VERSION",
    "LUT_BITS",
    "AnemllMeta",
    "CoreMLLayout",
    "FFNChunk",
    "LayoutError",
    "PartFiles",
    "locate_parts",
    "read_layout",
    "read_meta",
    "write_meta",
]
