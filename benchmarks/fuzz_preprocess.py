"""Fuzz every modality's preprocessing and tally the outcomes (the figures of RELIABILITY.md).

    python benchmarks/fuzz_preprocess.py --count 500 --seed 0 [--modalities audio,vision] [--memory-gib 8]

Per modality, ``count`` inputs in four equal kinds: random bytes written under the modality's file suffixes;
valid small files with 1-12 bytes overwritten (half of them in the first 64 bytes) and maybe truncated; valid
files with an edited header (a PNG declaring a random width and height, a ``.npy`` with one header character
replaced, a WAV declaring a random sample rate, a CSV with one timestamp replaced by a random power of ten);
arrays/tensors of random dtype, shape and magnitude (1e-30..1e30, NaN/Inf/dtype extremes mixed in) wrapped the way
the modality takes them (with odd sample rates for audio/IMU). Each input goes through ``preprocess`` and, when
accepted, a tiny encoder; the outcome is

* ``typed``: a ``bindcore.BindcoreError`` (the contract for bad input),
* ``raw``: any other exception (listed by type; allocations beyond ``--memory-gib`` show up as MemoryError),
* ``nan``: accepted, but the preprocessed tensor or the embedding is not finite,
* ``ok``: accepted, finite tensor and embedding.

The generator uses only numpy's seeded RNG and public plugin APIs, so the same script runs on older code
(put that code first on PYTHONPATH) and counts the same inputs.
"""

from __future__ import annotations

import argparse
import collections
import io
import math
import platform
import resource
import struct
import sys
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bindcore import BindcoreError

RATES = (1e-310, 5e-324, 1e-3, 1, 7, 50, 200, 8000, 44100, 384_000, 10_000_019, 2**31, 1e300, 0, -1,
         8000.5, math.nan, math.inf)
DTYPES = ("uint8", "uint16", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "bool",
          "complex64")


def _encoded(save: Callable[[io.BytesIO], None]) -> bytes:
    buffer = io.BytesIO()
    save(buffer)
    return buffer.getvalue()


def _image_files(rng: np.random.Generator) -> dict[str, bytes]:
    pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    gray16 = pixels[..., 0].astype(np.uint16) * 257
    return {
        ".png": _encoded(lambda b: Image.fromarray(gray16).save(b, format="PNG")),
        ".jpg": _encoded(lambda b: Image.fromarray(pixels).save(b, format="JPEG")),
        ".tif": _encoded(lambda b: Image.fromarray(gray16).save(b, format="TIFF")),
        ".npy": _encoded(lambda b: np.save(b, gray16.astype(np.float32) / 65535)),
    }


def _audio_files(rng: np.random.Generator) -> dict[str, bytes]:
    import soundfile as sf

    tone = (0.3 * np.sin(np.arange(2400) * 0.2) + 0.01 * rng.standard_normal(2400)).astype(np.float32)
    return {suffix: _encoded(lambda b, f=fmt, s=subtype: sf.write(b, tone, 8000, format=f, subtype=s))
            for suffix, fmt, subtype in ((".wav", "WAV", "PCM_16"), (".flac", "FLAC", "PCM_16"),
                                         (".ogg", "OGG", "VORBIS"))}


def _imu_files(rng: np.random.Generator) -> dict[str, bytes]:
    samples = np.sin(np.arange(60)[:, None] * 0.1 + np.arange(6)) * 3 + 0.01 * rng.standard_normal((60, 6))
    rows = "".join(f"{i * 0.005:.3f},{','.join(f'{v:.4f}' for v in row)}\n" for i, row in enumerate(samples))
    return {".csv": ("time,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n" + rows).encode(),
            ".npy": _encoded(lambda b: np.save(b, samples.T.astype(np.float32)))}


def random_array(rng: np.random.Generator, shapes: list[tuple[int, ...]]) -> np.ndarray:
    """An array of a random dtype, one of ``shapes`` or a random shape, with values of a random magnitude."""
    dtype = np.dtype(rng.choice(DTYPES))
    if rng.random() < 0.7:
        shape = shapes[rng.integers(len(shapes))]
    else:
        shape = tuple(int(s) for s in rng.integers(0, 13, size=rng.integers(0, 5)))
    size = math.prod(shape)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = rng.integers(info.min, int(info.max) + 1, size=size, dtype=dtype) if rng.random() < 0.5 else \
            np.clip(rng.normal(0, 10 ** rng.uniform(0, 4), size), info.min, info.max).astype(dtype)
    elif dtype.kind == "b":
        values = rng.random(size) < 0.5
    else:
        values = rng.normal(0, 10 ** rng.uniform(-30, 30), size)
        if rng.random() < 0.3:  # sprinkle NaN/Inf/float extremes
            specials = np.array([np.nan, np.inf, -np.inf, 1e20, -1e20, 3e38, 1e308, 5e-324])
            spots = rng.random(size) < 0.1
            values[spots] = rng.choice(specials, int(spots.sum()))
        if rng.random() < 0.5:  # mostly in-range floats too (images in [0, 1], depths in metres)
            values = np.abs(values) / max(np.nanmax(np.abs(values[np.isfinite(values)]), initial=0), 1e-300)
        with np.errstate(over="ignore", invalid="ignore"):
            values = values.astype(dtype)
    return values.reshape(shape)


def as_tensor_maybe(rng: np.random.Generator, array: np.ndarray) -> Any:
    kind = rng.choice(["numpy", "tensor", "bfloat16"])
    if kind == "tensor" and array.dtype != np.uint16:
        return torch.from_numpy(array.copy())
    if kind == "bfloat16" and array.dtype.kind == "f":
        return torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
    return array


class Modality:
    """How to build the tiny modality, its valid files, its suffixes and its in-memory items."""

    def __init__(self, name: str, build: Callable[[], Any], files: Callable[[np.random.Generator], dict[str, bytes]],
                 suffixes: tuple[str, ...], item: Callable[[np.random.Generator], Any]):
        self.name, self.build, self.files, self.suffixes, self.item = name, build, files, suffixes, item


def _vision() -> Any:
    from bind_vision import VisionModality

    from bindcore.anchor import tiny_anchor_config

    return VisionModality(anchor={"arch": tiny_anchor_config(embed_dim=16, image_size=32, patch_size=8, width=32,
                                                             layers=1, heads=2)})


def _patch(cls_path: str, **extra: Any) -> Callable[[], Any]:
    def build() -> Any:
        module, name = cls_path.rsplit(".", 1)
        cls = getattr(__import__(module, fromlist=[name]), name)
        return cls(image_size=32, patch_size=8, width=32, num_layers=1, num_heads=2, embed_dim=16, **extra)

    return build


def _audio() -> Any:
    from bind_audio import AudioModality

    return AudioModality(sample_rate=8000, clip_duration=0.25, clips_per_item=2, num_mel_bins=16, target_length=24,
                         patch_size=8, patch_stride=8, width=16, num_layers=1, num_heads=2, embed_dim=8)


def _imu() -> Any:
    from bind_imu import ImuModality

    return ImuModality(embed_dim=16, width=32, num_layers=1, num_heads=2, window_seconds=1.0, window_steps=200,
                       default_sample_rate=200.0, num_windows=2)


def _audio_item(rng: np.random.Generator) -> Any:
    from bind_audio import AudioArray

    samples = random_array(rng, [(int(rng.integers(1, 3000)),), (int(rng.integers(1, 3)), int(rng.integers(1, 3000)))])
    return AudioArray(as_tensor_maybe(rng, samples), RATES[rng.integers(len(RATES))])


def _imu_item(rng: np.random.Generator) -> Any:
    from bind_imu import ImuRecording

    steps = int(rng.integers(0, 400))
    layout = str(rng.choice(["channels_first", "channels_last"]))
    samples = random_array(rng, [(6, steps) if layout == "channels_first" else (steps, 6)])
    return ImuRecording(as_tensor_maybe(rng, samples), float(RATES[rng.integers(len(RATES))]), layout)


def _depth_item(rng: np.random.Generator) -> Any:
    from bind_depth import DepthInput

    data = as_tensor_maybe(rng, random_array(rng, [(int(rng.integers(1, 40)), int(rng.integers(1, 40)))]))
    unit = [None, 0.001, 1e-300, 1e300][rng.integers(4)]
    try:
        return DepthInput(data, metres_per_unit=unit) if unit else data
    except BindcoreError as error:  # DepthInput validates on construction: that is a typed outcome too
        return error


def _map_item(rng: np.random.Generator) -> Any:
    return as_tensor_maybe(rng, random_array(rng, [(int(rng.integers(1, 40)), int(rng.integers(1, 40)))]))


def _vision_item(rng: np.random.Generator) -> Any:
    shape = (int(rng.integers(1, 25)), int(rng.integers(1, 25)))
    array = random_array(rng, [shape, (*shape, int(rng.integers(1, 5)))])
    if rng.random() < 0.2 and array.dtype in (np.uint8, np.float32) and array.ndim == 2 and array.size:
        return Image.fromarray(array)
    return as_tensor_maybe(rng, array)


MODALITIES = {
    "audio": Modality("audio", _audio, _audio_files, (".wav", ".flac", ".ogg", ".mp3"), _audio_item),
    "vision": Modality("vision", _vision, lambda rng: {k: v for k, v in _image_files(rng).items() if k != ".npy"},
                       (".png", ".jpg", ".bmp", ".gif", ".tif", ".webp"), _vision_item),
    "depth": Modality("depth", _patch("bind_depth.DepthModality"), _image_files, (".png", ".npy", ".tif", ".jpg"),
                      _depth_item),
    "thermal": Modality("thermal", _patch("bind_thermal.ThermalModality", scaling="minmax"), _image_files,
                        (".png", ".npy", ".tif", ".jpg"), _map_item),
    "imu": Modality("imu", _imu, _imu_files, (".csv", ".npy"), _imu_item),
}


def mutated(rng: np.random.Generator, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 13))):
        position = int(rng.integers(0, min(64, len(out)))) if rng.random() < 0.5 else int(rng.integers(0, len(out)))
        out[position] = int(rng.integers(0, 256))
    return bytes(out[: int(rng.integers(1, len(out) + 1))] if rng.random() < 0.5 else out)


def header_edited(rng: np.random.Generator, suffix: str, data: bytes) -> bytes:
    """``data`` (a valid file) with its header's size/shape/rate/timestamp field set to a random value."""
    out = bytearray(data)
    if suffix == ".png":  # IHDR width, height; then its CRC
        out[16:24] = struct.pack(">II", *(int(v) for v in rng.integers(0, 2**31, 2)))
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    elif suffix == ".npy":
        out[int(rng.integers(8, out.index(b"\n") + 1))] = int(rng.choice(list(b"(){}[],:'\" 0123456789-e")))
    elif suffix == ".wav":  # fmt chunk's sample rate and byte rate
        out[24:28] = struct.pack("<I", int(rng.integers(1, 2**32)))
    elif suffix == ".csv":
        lines = out.decode().split("\n")
        row = int(rng.integers(1, len(lines) - 1))
        lines[row] = f"{10.0 ** rng.integers(-320, 320)!r}" + lines[row][lines[row].index(","):]
        out = bytearray("\n".join(lines).encode())
    else:  # no header edit defined: a plain mutation
        return mutated(rng, data)
    return bytes(out)


def inputs(spec: Modality, count: int, rng: np.random.Generator, folder: Path) -> Iterator[Any]:
    valid = spec.files(rng)
    for index in range(count):
        kind = index % 4
        if kind == 3:
            yield spec.item(rng)
            continue
        if kind == 0:
            suffix = spec.suffixes[rng.integers(len(spec.suffixes))]
            data = rng.integers(0, 256, int(rng.integers(0, 1025)), dtype=np.uint8).tobytes()
        else:
            suffix = sorted(valid)[rng.integers(len(valid))]
            data = mutated(rng, valid[suffix]) if kind == 1 else header_edited(rng, suffix, valid[suffix])
        path = folder / f"{spec.name}-{index}{suffix}"
        path.write_bytes(data)
        yield path


def outcome(model: Any, item: Any) -> str:
    """``typed``, ``nan``, ``ok`` or ``raw:<ExceptionType>``."""
    if isinstance(item, BindcoreError):
        return "typed"
    try:
        x = model.preprocess([item])
        if not torch.isfinite(x).all():
            return "nan"
        with torch.no_grad():
            z = model.project(model.encode(x))
        return "ok" if torch.isfinite(z).all() else "nan"
    except BindcoreError:
        return "typed"
    except Exception as error:  # counting the untyped ones is the point
        return f"raw:{type(error).__module__}.{type(error).__qualname__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="fuzzed inputs per modality")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modalities", default=",".join(MODALITIES))
    parser.add_argument("--memory-gib", type=float, default=8.0, help="address-space limit of this process")
    args = parser.parse_args()
    limit = int(args.memory_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    print(f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
          f"{platform.machine()}; count {args.count}, seed {args.seed}, address space {args.memory_gib:g} GiB\n")
    print("| modality | inputs | typed | raw | NaN | ok | raw exception types |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in args.modalities.split(","):
        spec = MODALITIES[name]
        model = spec.build().eval()
        rng = np.random.default_rng([args.seed, list(MODALITIES).index(name)])
        tally: collections.Counter[str] = collections.Counter()
        with tempfile.TemporaryDirectory() as folder:
            for item in inputs(spec, args.count, rng, Path(folder)):
                tally[outcome(model, item)] += 1
        raw = {key[4:]: n for key, n in tally.items() if key.startswith("raw:")}
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(raw.items(), key=lambda kv: -kv[1])) or "-"
        print(f"| {name} | {args.count} | {tally['typed']} | {sum(raw.values())} | {tally['nan']} | {tally['ok']} "
              f"| {kinds} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
