"""Write a ``.safetensors`` file one tensor at a time.

``safetensors.torch.save_file`` serialises every tensor to bytes before writing, so converting a
multi-gigabyte checkpoint that way holds a second full copy in memory. The format is simple (an 8-byte
little-endian header length, a JSON header of dtypes/shapes/offsets, then the raw bytes), so this
writer computes the header from shapes alone and then streams each tensor's bytes in turn: the only
extra memory is one contiguous copy of the tensor being written (none if it is already contiguous).
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import torch
from torch import Tensor

_DTYPE_NAMES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def _nbytes(tensor: Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def write_safetensors(path: str | os.PathLike[str] | BinaryIO, tensors: Mapping[str, Tensor],
                      metadata: Mapping[str, str] | None = None) -> Path | BinaryIO:
    """Write ``tensors`` (any strides, any device, e.g. memory-mapped views) to ``path`` in safetensors format.

    ``path`` may also be an open binary handle (e.g. from :func:`bindcore.io.atomic_file`); it is returned as is.
    Tensors are written in name order; each is made contiguous on the CPU only while it is written.
    """
    if sys.byteorder != "little":  # safetensors stores little-endian data; we write native bytes
        raise RuntimeError("write_safetensors needs a little-endian machine")
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    names = sorted(tensors)
    offset = 0
    for name in names:
        tensor = tensors[name]
        if tensor.dtype not in _DTYPE_NAMES:
            raise TypeError(f"tensor {name!r} has dtype {tensor.dtype}, which safetensors cannot store")
        size = _nbytes(tensor)
        header[name] = {"dtype": _DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # the format pads the header to 8-byte alignment
    if not isinstance(path, (str, os.PathLike)):
        _write_payload(path, header_bytes, names, tensors)
        return path
    target = Path(path)
    with open(target, "wb") as handle:
        _write_payload(handle, header_bytes, names, tensors)
    return target


def _write_payload(handle: BinaryIO, header_bytes: bytes, names: list[str], tensors: Mapping[str, Tensor]) -> None:
    handle.write(struct.pack("<Q", len(header_bytes)))
    handle.write(header_bytes)
    for name in names:
        tensor = tensors[name].detach().to("cpu").contiguous()
        if tensor.numel():
            handle.write(tensor.reshape(-1).view(torch.uint8).numpy().data)
