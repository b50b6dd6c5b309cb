"""Inference-time linear layers on the CPU through oneDNN instead of the BLAS behind ``F.linear``.

PyTorch's x86 wheels run an fp32 ``F.linear`` on the CPU through MKL's sgemm. MKL enables its AVX-512 kernels on
Intel processors only: on any other x86-64 CPU it runs its AVX2 kernels, even where the CPU has AVX-512. oneDNN's
fp32 GEMM, which ships in the same wheels, picks its kernels from the instruction set alone, so on a non-Intel CPU
with AVX-512 it uses vector units twice as wide as MKL's; on a CPU without AVX-512 both run AVX2 and oneDNN has
nothing to add. Both compute in IEEE fp32 (oneDNN only lowers precision when
``torch.backends.mkldnn.matmul.fp32_precision`` asks for it, which this module leaves alone); results differ in
summation order only, ~1e-6 relative. Measurements: BENCHMARKS.md ("Embedding throughput").

The oneDNN op (``torch.ops.mkldnn._linear_pointwise``, a private PyTorch op) has no autograd formula, so it is
used only where no gradient is needed: inference and the frozen anchor. Training keeps ``F.linear``. It also
fuses a following GELU into the GEMM.

``BINDCORE_CPU_LINEAR`` picks the backend. ``auto`` (default) uses oneDNN only where the CPU has AVX-512 that
``F.linear``'s BLAS leaves unused (:func:`blas_leaves_avx512_unused`: x86-64, PyTorch's CPU capability
``AVX512``, MKL as the BLAS, not an Intel CPU), the case where it was measured to pay, and ``F.linear`` everywhere
else, every CPU without AVX-512 included: the decision is which instruction set each library would run, the
vendor entering only as the condition of MKL's dispatch. ``onednn`` uses oneDNN on any CPU whose PyTorch build has
it; ``aten`` always uses ``F.linear``.
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
#: The vendor string on which MKL dispatches its AVX-512 kernels (on every other x86-64 CPU it stays on AVX2).
MKL_AVX512_VENDOR = "GenuineIntel"


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


def blas_leaves_avx512_unused() -> bool:
    """Whether this x86-64 CPU has AVX-512 (as PyTorch's CPU capability reports it) that ``F.linear``'s BLAS does
    not use: PyTorch's BLAS is MKL and the CPU is not an Intel one. False where either side cannot be told."""
    if platform.machine().lower() not in X86_64 or not torch.backends.mkl.is_available():
        return False
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False  # no AVX-512 (e.g. AMD Zen 3): MKL and oneDNN both run AVX2
    vendor = cpu_vendor()
    return bool(vendor) and vendor != MKL_AVX512_VENDOR


def _resolve(choice: str | None):
    """The oneDNN linear op for backend ``choice``, or None where ``F.linear`` is to be used."""
    choice = (choice or "auto").strip().lower() or "auto"
    if choice not in BACKENDS:
        raise ValueError(f"{ENV_VAR}={choice!r} is not one of {', '.join(BACKENDS)}; unset it to use the default")
    if choice == "aten" or not torch.backends.mkldnn.is_available():
        return None
    if choice == "auto" and not blas_leaves_avx512_unused():
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
