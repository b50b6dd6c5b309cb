"""bindcore.nn.linear: the oneDNN inference GEMM must equal F.linear in fp32 and step aside under autograd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bindcore.nn import linear as fast
from bindcore.nn.transformer import Block

needs_onednn = pytest.mark.skipif(fast._resolve("onednn") is None, reason="this PyTorch build has no oneDNN linear")


@pytest.fixture
def backend():
    """Restore the process-wide backend after a test switches it."""
    saved = fast._onednn_op
    yield fast.set_backend
    fast._onednn_op = saved


def _close_to_float64(actual: torch.Tensor, reference: torch.Tensor) -> None:
    scale = reference.abs().max().item()
    assert (actual.double() - reference).abs().max().item() <= 1e-5 * scale


@needs_onednn
@pytest.mark.parametrize("case", ["2d", "3d", "transposed", "no_bias", "row_slice_weight"])
def test_linear_matches_float64_reference(case, backend):
    backend("onednn")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 17, 64, generator=generator)
    weight = torch.randn(96, 64, generator=generator) / 8
    bias = torch.randn(96, generator=generator)
    if case == "2d":
        x = x[0]
    elif case == "transposed":
        x = x.transpose(0, 1)
    elif case == "no_bias":
        bias = None
    elif case == "row_slice_weight":  # how Attention takes q/kv out of the packed in-projection
        weight, bias = weight[32:], bias[32:]
    with torch.no_grad():
        assert fast.uses_onednn(x, weight, bias)
        out = fast.linear(x, weight, bias)
    reference = F.linear(x.double(), weight.double(), None if bias is None else bias.double())
    assert out.shape == reference.shape and out.dtype == torch.float32
    _close_to_float64(out, reference)


@needs_onednn
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_is_fused_and_matches(approximate, backend):
    backend("onednn")
    layer = nn.Linear(48, 80)
    x = torch.randn(2, 9, 48)
    with torch.no_grad():
        out = fast.linear_act(x, layer, nn.GELU(approximate=approximate))
        reference = F.gelu(F.linear(x.double(), layer.weight.double(), layer.bias.double()),
                           approximate=approximate)
    _close_to_float64(out, reference)


def test_other_activations_run_unfused():
    calls = []

    class QuickGELU(nn.Module):
        def forward(self, x):
            calls.append(x.shape)
            return x * torch.sigmoid(1.702 * x)

    layer = nn.Linear(8, 12)
    x = torch.randn(4, 8)
    with torch.no_grad():
        out = fast.linear_act(x, layer, QuickGELU())
        expected = layer(x) * torch.sigmoid(1.702 * layer(x))
    assert calls == [torch.Size([4, 12])]
    torch.testing.assert_close(out, expected)


def test_autograd_keeps_f_linear_and_its_gradients(backend):
    backend("onednn")
    layer = nn.Linear(16, 24)
    x = torch.randn(5, 16, requires_grad=True)
    assert not fast.uses_onednn(x, layer.weight, layer.bias)
    fast.linear(x, layer.weight, layer.bias).square().sum().backward()
    grads = (x.grad.clone(), layer.weight.grad.clone())
    x.grad = None
    layer.zero_grad()
    F.linear(x, layer.weight, layer.bias).square().sum().backward()
    torch.testing.assert_close(grads, (x.grad, layer.weight.grad), rtol=0, atol=0)


def test_inputs_it_does_not_take_fall_back_to_f_linear(backend):
    backend("onednn")
    weight = torch.randn(6, 4)
    with torch.no_grad():
        assert not fast.uses_onednn(torch.randn(4), weight)  # 1-D
        assert not fast.uses_onednn(torch.randn(3, 4, dtype=torch.float64), weight.double())
        assert not fast.uses_onednn(torch.randn(0, 4), weight)  # empty batch
        assert not fast.uses_onednn(torch.randn(3, 4), torch.randn(4, 6).t())  # non-contiguous weight
        assert fast.linear(torch.randn(0, 4), weight).shape == (0, 6)


def test_cpu_autocast_is_left_to_f_linear(backend):
    backend("onednn")
    x, weight = torch.randn(3, 4), torch.randn(6, 4)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fast.uses_onednn(x, weight)
        assert fast.linear(x, weight).dtype == F.linear(x, weight).dtype == torch.bfloat16


def test_aten_backend_switches_it_off(backend):
    backend("aten")
    x, weight = torch.randn(3, 4), torch.randn(6, 4)
    with torch.no_grad():
        assert not fast.uses_onednn(x, weight)
        torch.testing.assert_close(fast.linear(x, weight), F.linear(x, weight), rtol=0, atol=0)


def test_unknown_backend_names_the_variable_and_choices(backend):
    with pytest.raises(ValueError, match=r"BINDCORE_CPU_LINEAR='mkl'.*auto, onednn, aten"):
        backend("mkl")


@pytest.mark.parametrize(("machine", "capability", "vendor", "mkl", "expected"), [
    ("x86_64", "AVX512", "AuthenticAMD", True, True),  # AMD Zen 4/5: MKL stays on AVX2
    ("AMD64", "AVX512", "AuthenticAMD", True, True),  # Windows spells the machine AMD64
    ("x86_64", "AVX2", "AuthenticAMD", True, False),  # AMD Zen 3: no AVX-512, MKL and oneDNN both AVX2
    ("x86_64", "AVX2", "HygonGenuine", True, False),
    ("x86_64", "AVX512", "GenuineIntel", True, False),  # MKL already runs AVX-512 on Intel
    ("x86_64", "AVX2", "GenuineIntel", True, False),
    ("x86_64", "AVX512", "", True, False),  # vendor unreadable: MKL's dispatch unknown
    ("x86_64", "AVX512", "AuthenticAMD", False, False),  # a build whose BLAS is not MKL
    ("aarch64", "SVE256", "", False, False), ("arm64", "DEFAULT", "AuthenticAMD", True, False),
])
def test_auto_uses_onednn_only_where_the_blas_leaves_avx512_unused(machine, capability, vendor, mkl, expected,
                                                                   monkeypatch):
    if fast._resolve("onednn") is None:
        pytest.skip("this PyTorch build has no oneDNN linear")
    monkeypatch.setattr(fast.platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(torch.backends.mkl, "is_available", lambda: mkl)
    monkeypatch.setattr(fast, "cpu_vendor", lambda: vendor)
    assert fast.blas_leaves_avx512_unused() is expected
    assert (fast._resolve("auto") is not None) is expected
    assert (fast._resolve(None) is not None) is expected  # unset variable = auto
    assert fast._resolve("onednn") is not None  # explicit choice: any CPU with the op


def test_cpu_vendor_reads_this_machine():
    vendor = fast.cpu_vendor()
    if Path("/proc/cpuinfo").exists() and "vendor_id" in Path("/proc/cpuinfo").read_text():
        assert vendor and vendor in Path("/proc/cpuinfo").read_text()


def test_environment_variable_is_read_at_import():
    code = "import bindcore.nn.linear as m; print(m._onednn_op is None)"
    env = {**os.environ, fast.ENV_VAR: "aten"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
    env[fast.ENV_VAR] = "blas"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "BINDCORE_CPU_LINEAR='blas'" in result.stderr


@needs_onednn
@pytest.mark.parametrize("first_token_only", [False, True])
def test_block_eval_output_matches_the_aten_path_and_train_mode(first_token_only, backend):
    torch.manual_seed(0)
    block = Block(64, 4, add_bias_kv=True)
    x = torch.randn(2, 11, 64)
    with torch.no_grad():
        backend("onednn")
        fused = block.eval()(x, None, first_token_only)
        backend("aten")
        plain = block(x, None, first_token_only)
        train_mode = block.train()(x, None, first_token_only)  # no dropout configured: same maths, modules' path
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(train_mode, plain, rtol=0, atol=0)
