"""Reading and reshaping single-channel 2-D maps (depth, thermal, any grayscale sensor image).

Modality-agnostic helpers shared by the 1-channel image plugins: every function takes the raw *item*
it works on so that a problem raises :class:`bindcore.InputError` naming that item and a fix.
Nothing here guesses what values mean (units, ranges); that is each plugin's job.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bindcore.errors import InputError

if TYPE_CHECKING:
    from PIL import Image

#: File suffixes read through Pillow (``.npy`` is read by :func:`read_npy`).
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".pgm", ".pnm"})
#: Smallest accepted side: a 1-pixel-wide map carries no spatial structure and is almost surely a mistake.
MIN_SIDE = 2
#: Default largest map decoded from a file, in pixels (values for ``.npy``): 16 MP is 4096 x 4096, over three
#: times the largest depth/thermal sensor frames (about 5 MP), and keeps one item's float64 working set
#: (metres, masks, in-fill indices) near 1 GB. Far below Pillow's 178,956,970-pixel bomb limit.
DEFAULT_MAX_PIXELS = 16_000_000


def as_item_list(inputs: Any, *, where: str) -> list[Any]:
    """The items of a batch; rejects a single path/array/tensor passed where a sequence of items belongs."""
    if isinstance(inputs, (str, bytes, os.PathLike, np.ndarray, Tensor)):
        raise InputError(inputs, f"{where}.preprocess takes a sequence of items, not a single item",
                         fix="wrap it in a list: preprocess([item]), or list(batch) for a stacked batch")
    if not isinstance(inputs, Sequence):
        inputs = list(inputs)
    return list(inputs)


def is_path(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike))


def check_file(item: Any) -> Path:
    """The path of ``item`` if it names a regular file, else ``InputError`` (also for paths the OS refuses,
    e.g. a name over 255 bytes: ``ENAMETOOLONG``)."""
    path = Path(os.fspath(item))
    try:
        info = path.stat()
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            raise InputError(item, "file not found", fix="check the path") from None
        raise InputError(item, f"cannot access the file: {error.strerror or error}",
                         fix="check the path (its length, every folder's permissions)") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(item, "not a file", fix="pass the path of a file")
    return path


def check_pixel_count(item: Any, width: int, height: int, max_pixels: int) -> None:
    """``InputError`` when a ``width`` x ``height`` image exceeds ``max_pixels``: checked from the header, before
    the pixels are decoded, so a small file declaring a huge image costs nothing."""
    if width * height > max_pixels:
        raise InputError(item, f"image of {width}x{height} = {width * height:,} pixels exceeds "
                               f"max_pixels={max_pixels:,}",
                         fix="downscale the image, or raise the modality's max_pixels option if it is genuine")


@contextmanager
def decoded_image(item: Any, max_pixels: int) -> Iterator[Image.Image]:
    """Open and decode the image file ``item`` with Pillow, its size checked against ``max_pixels`` first.

    Every failure is an ``InputError`` naming ``item``: a missing or unreachable file, a size over the limit
    or over Pillow's own decompression-bomb limit, and any exception a decoder raises on corrupt data
    (Pillow's decoders raise OSError, SyntaxError, ValueError, struct.error, IndexError, EOFError, ...).
    """
    from PIL import Image, UnidentifiedImageError

    path = check_file(item)
    with warnings.catch_warnings():
        # max_pixels is the limit that applies; Pillow's warning at half its bomb limit would only repeat it.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except UnidentifiedImageError:
            raise InputError(item, "cannot decode image file: not an image file that Pillow can read",
                             fix="pass a PNG/TIFF/JPEG/BMP/... image") from None
        except Image.DecompressionBombError as error:
            raise InputError(item, f"Pillow refuses it as a decompression bomb ({error})",
                             fix="downscale the image (Pillow's limit is PIL.Image.MAX_IMAGE_PIXELS)") from None
        except Exception as error:  # any decoder failure on untrusted bytes is bad input
            raise InputError(item, f"cannot decode image file: {type(error).__name__}: {error}",
                             fix="the file is corrupt or not an image; re-export it") from None
        try:
            check_pixel_count(item, *image.size, max_pixels)
            image.load()
        except InputError:
            image.close()
            raise
        except Exception as error:  # as above
            image.close()
            raise InputError(item, f"cannot decode image file: {type(error).__name__}: {error}",
                             fix="the file is truncated or corrupt; re-download or re-export it") from None
    try:
        yield image
    finally:
        image.close()


def read_npy(item: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load a ``.npy`` file (no pickles) or raise ``InputError``.

    The header is parsed first: a malformed one, more than ``max_pixels`` values (``None``: no limit but the
    file's size), or a shape whose data the file does not hold are refused before any array is allocated.
    """
    path = check_file(item)
    header_readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            if version not in header_readers:
                raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
            shape, _, dtype = header_readers[version](file)
            data_bytes = os.fstat(file.fileno()).st_size - file.tell()
    except Exception as error:  # numpy's header parser raises ValueError, SyntaxError,
        # tokenize.TokenError, EOFError, ... on malformed headers: all of them mean a corrupt file
        raise InputError(item, f"cannot read as .npy: {type(error).__name__}: {error}",
                         fix="save arrays with numpy.save") from None
    count = math.prod(shape)
    if max_pixels is not None and count > max_pixels:
        raise InputError(item, f"array of shape {shape} = {count:,} values exceeds max_pixels={max_pixels:,}",
                         fix="downscale the map, or raise the modality's max_pixels option if it is genuine")
    if dtype.hasobject:
        raise InputError(item, f"array of Python objects ({dtype})", fix="save a numeric array")
    if count * dtype.itemsize > data_bytes:
        raise InputError(item, f"header declares shape {shape} of {dtype} ({count * dtype.itemsize:,} bytes) but "
                               f"the file holds {data_bytes:,} bytes of data",
                         fix="the file is truncated; re-save it with numpy.save")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as error:  # as above, for the data
        raise InputError(item, f"cannot read as .npy: {type(error).__name__}: {error}",
                         fix="save arrays with numpy.save") from None


def read_gray_image(item: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file into a 2-D array, keeping its bit depth.

    Returns ``uint8`` (8-bit gray), ``uint16`` (16-bit gray, also Pillow's 32-bit ``I`` mode when every value
    fits) or ``float32`` (``F`` mode). Colour files whose channels are all equal (e.g. LLVIP's infrared JPEGs,
    gray images saved as RGB) become one channel; an alpha channel is dropped. Anything else raises
    ``InputError``: a false-colour map cannot be turned back into intensities. Images over ``max_pixels``
    are refused from their header, before decoding.
    """
    with decoded_image(item, max_pixels) as image:
        mode = image.mode
        try:
            if mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
                mode = image.mode
            array = np.array(image)
        except Exception as error:  # Pillow's converters on corrupt palettes and the like
            raise InputError(item, f"cannot decode image file: {type(error).__name__}: {error}",
                             fix="the file is corrupt or not an image; re-export it") from None
    if mode.startswith("I;16"):
        return array.astype(np.uint16, copy=False)
    if mode == "I":
        if array.size and (array.min() < 0 or array.max() > np.iinfo(np.uint16).max):
            raise InputError(item, "32-bit integer image with values outside 0..65535",
                             fix="save it as a 16-bit PNG/TIFF or pass a float array")
        return array.astype(np.uint16)
    if mode == "F":
        return array.astype(np.float32, copy=False)
    if mode == "L":
        return array
    if mode in ("LA", "RGB", "RGBA"):
        colour = array[..., :1] if mode == "LA" else array[..., :3]
        if not (colour == colour[..., :1]).all():
            raise InputError(item, f"{mode} image whose colour channels differ (a false-colour or RGB image?)",
                             fix="pass the raw single-channel sensor image")
        return np.ascontiguousarray(colour[..., 0])
    raise InputError(item, f"unsupported image mode {mode!r}", fix="use an 8/16-bit grayscale PNG or TIFF")


def to_numpy(item: Any, value: Tensor | np.ndarray) -> np.ndarray:
    """A tensor's values as a NumPy array on the CPU (detached); arrays pass through."""
    if isinstance(value, Tensor):
        if value.is_complex():
            raise InputError(item, "complex tensor", fix="pass real values")
        value = value.detach().cpu()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def single_channel(item: Any, array: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(1, H, W)`` → ``(H, W)``; anything else (colour, batches, 1-D) raises ``InputError``."""
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        hint = ("it has several channels; pass one channel of shape (H, W) or (1, H, W)"
                if array.ndim == 3 else "expected shape (H, W) or (1, H, W)")
        raise InputError(item, f"wrong shape {tuple(array.shape)}: {hint}",
                         fix="for a stacked batch pass list(batch); for channel-last data use array[..., 0]")
    if min(array.shape) < MIN_SIDE:
        raise InputError(item, f"image of size {array.shape[0]}x{array.shape[1]} is too small "
                               f"(each side needs at least {MIN_SIDE} pixels)", fix="pass the full-size map")
    return array


def require_finite(item: Any, array: np.ndarray) -> None:
    """Raise ``InputError`` if a float array holds NaN or ±Inf (saying how many pixels)."""
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            raise InputError(item, f"{int(bad.sum())} of {array.size} values are NaN or infinite",
                             fix="replace them (e.g. numpy.nan_to_num) or mark them invalid")


def resize_center_crop(image: Tensor, size: int) -> Tensor:
    """Resize a ``(H, W)`` float map so its shorter side is ``size`` (bilinear, antialiased when shrinking),
    then take the central ``size``×``size`` crop. A map already ``size``×``size`` is returned unchanged."""
    height, width = image.shape[-2:]
    if (height, width) == (size, size):
        return image
    scale = size / min(height, width)
    new_h = size if height <= width else max(size, math.floor(height * scale + 0.5))
    new_w = size if width < height else max(size, math.floor(width * scale + 0.5))
    resized = F.interpolate(image[None, None], size=(new_h, new_w), mode="bilinear", align_corners=False,
                            antialias=scale < 1)[0, 0]
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[top:top + size, left:left + size]
