"""Reading the metadata of a checkpoint (internal).

A checkpoint is a safetensors file: an 8-byte little-endian header length, then a JSON header
whose "__metadata__" holds strings, among them "architecture" (the layers, loss, dtype and seed)
and, with an optimizer, "optimizer" (its algorithm and options), both JSON (see the checkpoint
section of include/backprop.h). The library's loader validates a checkpoint completely; the
binding reads these two entries afterwards, from a file or buffer the library has just accepted,
to rebuild its Python description of the layers and to pick the optimizer's Python class.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Dict, Optional, Union

__all__ = ["metadata_from_bytes", "metadata_from_file", "architecture", "optimizer"]

_LIMIT = 100 * 1024 * 1024  # the library refuses longer headers


def _parse(header: bytes) -> Dict[str, str]:
    document = json.loads(header.decode("utf-8"))
    metadata = document.get("__metadata__", {}) if isinstance(document, dict) else {}
    return {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}


def metadata_from_bytes(data: Union[bytes, bytearray, memoryview]) -> Dict[str, str]:
    """The "__metadata__" strings of a checkpoint held in memory."""
    view = memoryview(data)
    (length,) = struct.unpack("<Q", view[:8])
    if length > _LIMIT or 8 + length > len(view):
        raise ValueError("not a checkpoint: the header length is out of range")
    return _parse(bytes(view[8:8 + length]))


def metadata_from_file(path: Union[str, Path]) -> Dict[str, str]:
    """The "__metadata__" strings of a checkpoint file."""
    with open(path, "rb") as stream:
        (length,) = struct.unpack("<Q", stream.read(8))
        if length > _LIMIT:
            raise ValueError("not a checkpoint: the header length is out of range")
        return _parse(stream.read(length))


def architecture(metadata: Dict[str, str]) -> Dict[str, Any]:
    """The parsed "architecture" entry: input_width, seed, dtype, loss and layers."""
    return json.loads(metadata["architecture"])


def optimizer(metadata: Dict[str, str]) -> Optional[Dict[str, Any]]:
    """The parsed "optimizer" entry (algorithm, step, options, state), or None."""
    text = metadata.get("optimizer")
    return json.loads(text) if text else None
