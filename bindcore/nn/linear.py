"""Inference-time linear layers on the CPU through oneDNN instead of the BLAS behind ``F.linear``.

PyTorch's x86 wheels run an fp32 ``F.linear`` on the CPU through MKL's sgemm. MKL picks its kernels by CPU
vendor and, on AMD processors, stays on its AVX2 path even where the CPU has AVX-512: on the AMD EPYC machine in
BENCHMARKS.md it reaches ~95 GFLOP/s per core (the AVX2 FMA rate) on transformer shapes, where oneDNN's fp32
GEMM, which ships in the same wheels and has no vendor check, reaches ~190. Both compute in IEEE fp32 (oneDNN
only lowers precision when ``torch.backends.mkldnn.matmul.fp32_precision`` asks for it, which this module leaves
alone); results differ in summation order only, ~1e-6 relative.

The oneDNN op (``torch.ops.mkldnn._linear_pointwise``) has no autograd formula, so it is used only where no
gradient is needed: inference and the frozen anchor. Training keeps ``F.linear``. It also fuses a following
GELU into the GEMM.

``BINDCORE_CPU_LINEAR`` picks the backend: ``auto`` (default) uses oneDNN on x86-64 CPUs from AMD (and Hygon),
where MKL is held back and the gain was measured, and ``F.linear`` elsewhere: on Intel CPUs MKL already runs at
the vector units' rate (and PyTorch's own compiler uses packed MKL, not oneDNN, for fp32 linear layers);
``onednn`` uses it on any CPU whose PyTorch build has it; ``aten`` always uses ``F.linear``.
"""

from __future__ import annotations

import os
import platform

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ENV_VAR = "BINDCORE_CPU_LINEAR"
BACKENDS = ("auto", "onednn", "aten")
X86_64 = ("x86_64", "amd64")
MKL_HELD_BACK_VENDORS = ("AuthenticAMD", "HygonGenuine")


def cpuinfo_field(name: str) -> str:
    """The first ``name`` field of ``/proc/cpuinfo`` (e.g. ``"vendor_id"``, ``"model name"``), or ``""``."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_vendor() -> str:
    """The CPU's vendor string (``GenuineIntel``, ``AuthenticAMD``, ...), or ``""`` when it cannot be read."""
    if vendor := cpuinfo_field("vendor_id"):
        return vendor
    processor = platform.processor()  # Windows: "AMD64 Family 25 Model 1 Stepping 1, AuthenticAMD"
    return processor.rsplit(",", 1)[-1].strip() if "," in processor else ""


def _resolve(choice: str | None):
    """The oneDNN linear op for backend ``choice``, or None where ``F.linear`` is to be used."""
    choice = (choice or "auto").strip().lower() or "auto"
    if choice not in BACKENDS:
        raise ValueError(f"{ENV_VAR}={choice!r} is not one of {', '.join(BACKENDS)}; unset it to use the default")
    if choice == "aten" or not torch.backends.mkldnn.is_available():
        return None
    if choice == "auto" and (platform.machine().lower() not in X86_64 or cpu_vendor() not in MKL_HELD_BACK_VENDORS):
        return None
    return getattr(torch.ops.mkldnn, "_linear_pointwise", None)


# Resolved once at import: a plain global is what torch.compile can trace through without a graph break.
_onednn_op = _resolve(os.environ.get(ENV_VAR))


def set_backend(choice: str) -> None:
    """Switch the CPU inference GEMM backend for this process: ``"auto"`` (default), ``"onednn"`` or ``"aten"``."""
    global _onednn_op
    _onednn_op = _resolve(choice)


def uses_onednn(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> bool:
    """Whether :func:`linear` runs ``x @ weight.T + bias`` through oneDNN (CPU, fp32, no CPU autocast, no autograd
    needed)."""
    if _onednn_op is None or x.device.type != "cpu" or x.dtype != torch.float32 or x.ndim < 2:
        return False
    if weight.dtype != torch.float32 or weight.device.type != "cpu" or not weight.is_contiguous():
        return False
    if x.numel() == 0 or weight.numel() == 0:
        return False
    if torch.is_autocast_enabled("cpu"):  # the caller asked for autocast's lower precision: F.linear applies it
        return False
    if bias is not None and (bias.dtype != torch.float32 or not bias.is_contiguous()):
        return False
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                    or (bias is not None and bias.requires_grad)):
        return False
    return True


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)``, through oneDNN where :func:`uses_onednn` says so."""
    if uses_onednn(x, weight, bias):
        return _onednn_op(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


def _gelu_algorithm(activation: nn.Module) -> str | None:
    """oneDNN's name for ``activation`` when it is a plain ``nn.GELU`` (None: not fusable)."""
    if type(activation) is nn.GELU:
        return {"none": "none", "tanh": "tanh"}.get(activation.approximate)
    return None


def linear_act(x: Tensor, layer: nn.Linear, activation: nn.Module) -> Tensor:
    """``activation(layer(x))``; a plain ``nn.GELU`` is fused into the oneDNN GEMM when that path applies."""
    algorithm = _gelu_algorithm(activation)
    if algorithm is not None and uses_onednn(x, layer.weight, layer.bias):
        return _onednn_op(x, layer.weight, layer.bias, "gelu", [], algorithm)
    return activation(linear(x, layer.weight, layer.bias))
