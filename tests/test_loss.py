"""InfoNCE: value and gradients against a naive loop reference, temperature handling, bad inputs, sanity limits."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bindcore
from bindcore.errors import ConfigError
from bindcore.loss import InfoNCE, InfoNCEOutput, info_nce, info_nce_with_stats


def naive_info_nce(a: torch.Tensor, b: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
    """Written from the definition with explicit loops: mean over both directions of -log softmax of the pair."""
    a = a / a.norm(dim=1, keepdim=True)
    b = b / b.norm(dim=1, keepdim=True)
    n = a.shape[0]
    a_to_b = []
    b_to_a = []
    for i in range(n):
        row = torch.stack([torch.dot(a[i], b[j]) for j in range(n)]) / temperature
        col = torch.stack([torch.dot(b[i], a[j]) for j in range(n)]) / temperature
        a_to_b.append(torch.logsumexp(row, dim=0) - row[i])
        b_to_a.append(torch.logsumexp(col, dim=0) - col[i])
    return (torch.stack(a_to_b).mean() + torch.stack(b_to_a).mean()) / 2


def _pair(n: int, d: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g, dtype=dtype)
    b = a + 0.8 * torch.randn(n, d, generator=g, dtype=dtype)  # correlated pairs: a loss well away from log n
    return a.requires_grad_(), b.requires_grad_()


def _grads(loss: torch.Tensor, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(loss, inputs)


def test_lazy_export() -> None:
    assert bindcore.info_nce is info_nce
    assert bindcore.InfoNCE is InfoNCE


@pytest.mark.parametrize(("n", "d", "temperature"), [(1, 3, 0.1), (2, 5, 0.07), (7, 4, 0.5), (12, 16, 1.3)])
def test_value_and_gradients_match_naive_reference(n: int, d: int, temperature: float) -> None:
    a, b = _pair(n, d, seed=n)
    tau = torch.tensor(temperature, dtype=torch.float64, requires_grad=True)
    got = info_nce(a, b, tau)
    want = naive_info_nce(a, b, tau)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for g_got, g_want in zip(_grads(got, a, b, tau), _grads(want, a, b, tau), strict=True):
        torch.testing.assert_close(g_got, g_want, rtol=1e-10, atol=1e-12)


def test_float_temperature_equals_tensor_temperature() -> None:
    a, b = _pair(6, 4)
    torch.testing.assert_close(info_nce(a, b, 0.2), info_nce(a, b, torch.tensor(0.2, dtype=torch.float64)))


def test_gradcheck_against_finite_differences() -> None:
    a, b = _pair(5, 3, seed=3)
    tau = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y, t: info_nce(x, y, t), (a, b, tau))


def test_rows_are_normalised_inside() -> None:
    a, b = _pair(6, 4, seed=1)
    scaled = info_nce(a * 7.0, b * torch.linspace(0.1, 3.0, 6, dtype=torch.float64)[:, None], 0.1)
    torch.testing.assert_close(scaled, info_nce(a, b, 0.1))


def test_symmetric_in_a_and_b() -> None:
    a, b = _pair(9, 5, seed=2)
    torch.testing.assert_close(info_nce(a, b, 0.1), info_nce(b, a, 0.1))


def test_batch_of_one_has_zero_loss() -> None:
    a, b = _pair(1, 4)
    assert info_nce(a, b, 0.05).item() == pytest.approx(0.0, abs=1e-12)


def test_aligned_pairs_give_low_loss_and_full_accuracy() -> None:
    a = torch.eye(16, 32) + 0.01 * torch.randn(16, 32, generator=torch.Generator().manual_seed(0))
    out = info_nce_with_stats(a, a.clone(), 0.05)
    assert out.loss.item() < 1e-6
    assert out.accuracy_a2b.item() == 1.0 and out.accuracy_b2a.item() == 1.0


def test_unrelated_pairs_give_about_log_n() -> None:
    g = torch.Generator().manual_seed(1)
    n, d = 64, 1024
    a, b = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    # Random directions in high dimension are nearly orthogonal: with τ = 1 every logit is ~0, so L ≈ log n.
    assert abs(info_nce(a, b, 1.0).item() - math.log(n)) < 0.02
    # A shuffled aligned batch is just as uninformative about the pairing.
    shuffled = a[torch.randperm(n, generator=g)]
    assert info_nce(a, shuffled, 1.0).item() > math.log(n) - 0.1


def test_accuracy_matches_argmax_reference() -> None:
    a, b = _pair(20, 6, seed=5, dtype=torch.float32)
    out = info_nce_with_stats(a, b, 0.1)
    sim = torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T
    targets = torch.arange(20)
    assert out.accuracy_a2b.item() == pytest.approx((sim.argmax(1) == targets).float().mean().item())
    assert out.accuracy_b2a.item() == pytest.approx((sim.argmax(0) == targets).float().mean().item())
    assert not out.accuracy_a2b.requires_grad


def test_module_fixed_temperature_is_a_buffer() -> None:
    loss_fn = InfoNCE(0.2)
    assert list(loss_fn.parameters()) == []
    assert "log_logit_scale" in dict(loss_fn.named_buffers())
    a, b = _pair(8, 4, dtype=torch.float32)
    out = loss_fn(a, b)
    assert isinstance(out, InfoNCEOutput)
    torch.testing.assert_close(out.loss, info_nce(a, b, 0.2))
    assert loss_fn.temperature == pytest.approx(0.2)


def test_module_learnable_temperature_gradient_matches_reference() -> None:
    loss_fn = InfoNCE(0.1, learnable=True).double()
    a, b = _pair(10, 6, seed=7)
    loss_fn(a, b).loss.backward()
    log_scale = loss_fn.log_logit_scale.detach().clone().requires_grad_()
    naive_info_nce(a.detach(), b.detach(), 1.0 / log_scale.exp()).backward()
    assert loss_fn.log_logit_scale.grad is not None
    torch.testing.assert_close(loss_fn.log_logit_scale.grad, log_scale.grad, rtol=1e-10, atol=1e-12)


def test_module_learnable_temperature_trains_and_respects_clamp() -> None:
    loss_fn = InfoNCE(0.5, learnable=True, max_logit_scale=20.0)
    a = torch.eye(8, 16)
    opt = torch.optim.SGD(loss_fn.parameters(), lr=5.0)
    for _ in range(50):  # aligned pairs: a sharper softmax always lowers the loss, so τ falls to the clamp
        opt.zero_grad()
        loss_fn(a, a.clone()).loss.backward()
        opt.step()
    assert loss_fn.temperature == pytest.approx(1 / 20.0)
    assert loss_fn.logit_scale().item() == pytest.approx(20.0)
    opt.zero_grad()
    loss_fn(a, a.clone()).loss.backward()
    assert loss_fn.log_logit_scale.grad.item() == 0.0  # clamped: no gradient past the limit, like ImageBind


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (torch.randn(4), torch.randn(4), "2-D"),
        (torch.randn(2, 3, 4), torch.randn(2, 3, 4), "2-D"),
        (torch.randn(4, 3), torch.randn(5, 3), "same shape"),
        (torch.randn(4, 3), torch.randn(4, 2), "same shape"),
        (torch.randn(0, 3), torch.randn(0, 3), "empty"),
        (torch.randn(3, 0), torch.randn(3, 0), "dimension is 0"),
        (torch.ones(3, 2, dtype=torch.int64), torch.ones(3, 2, dtype=torch.int64), "floating-point"),
        ([[1.0, 2.0]], torch.randn(1, 2), "torch.Tensor"),
    ],
)
def test_bad_inputs_are_rejected(a: object, b: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        info_nce(a, b, 0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "temperature", [0.0, -0.1, float("nan"), float("inf"), torch.tensor([0.1, 0.2]), torch.tensor(-1.0), True, "0.1"]
)
def test_bad_temperature_is_rejected(temperature: object) -> None:
    with pytest.raises(ConfigError, match="temperature"):
        info_nce(torch.randn(3, 2), torch.randn(3, 2), temperature)  # type: ignore[arg-type]


@pytest.mark.parametrize("chunk_size", [0, -3, 1.5, True])
def test_bad_chunk_size_is_rejected(chunk_size: object) -> None:
    with pytest.raises(ConfigError, match="chunk_size"):
        info_nce(torch.randn(3, 2), torch.randn(3, 2), 0.1, chunk_size=chunk_size)  # type: ignore[arg-type]


def test_bad_gather_is_rejected() -> None:
    with pytest.raises(ConfigError, match="gather"):
        info_nce(torch.randn(3, 2), torch.randn(3, 2), 0.1, gather="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not initialised"):
        info_nce(torch.randn(3, 2), torch.randn(3, 2), 0.1, gather=True)


def test_module_rejects_bad_configuration() -> None:
    with pytest.raises(ConfigError, match="below the clamp"):
        InfoNCE(0.001)
    with pytest.raises(ConfigError, match="max_logit_scale"):
        InfoNCE(0.1, max_logit_scale=0.0)
    with pytest.raises(ConfigError, match="temperature"):
        InfoNCE(-1.0)


# ------------------------------------------------------------------------------------------------ chunked path


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 7, 12, 50])
def test_chunked_matches_plain_value_gradients_and_accuracy(chunk_size: int) -> None:
    a, b = _pair(12, 5, seed=11)
    tau = torch.tensor(0.15, dtype=torch.float64, requires_grad=True)
    plain = info_nce_with_stats(a, b, tau)
    chunked = info_nce_with_stats(a, b, tau, chunk_size=chunk_size)
    torch.testing.assert_close(chunked.loss, plain.loss, rtol=1e-13, atol=1e-13)
    assert chunked.accuracy_a2b.item() == plain.accuracy_a2b.item()
    assert chunked.accuracy_b2a.item() == plain.accuracy_b2a.item()
    for g_chunked, g_plain in zip(_grads(chunked.loss, a, b, tau), _grads(plain.loss, a, b, tau), strict=True):
        torch.testing.assert_close(g_chunked, g_plain, rtol=1e-11, atol=1e-13)


def test_chunked_matches_naive_reference_and_gradcheck() -> None:
    a, b = _pair(7, 3, seed=4)
    tau = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(info_nce(a, b, tau, chunk_size=3), naive_info_nce(a, b, tau), rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x, y, t: info_nce(x, y, t, chunk_size=2), (a, b, tau))


def test_chunked_with_one_side_frozen() -> None:
    a, b = _pair(9, 4, seed=8)
    frozen = b.detach()  # e.g. the frozen anchor's embeddings
    (g_plain,) = _grads(info_nce(a, frozen, 0.1), a)
    (g_chunked,) = _grads(info_nce(a, frozen, 0.1, chunk_size=4), a)
    torch.testing.assert_close(g_chunked, g_plain, rtol=1e-11, atol=1e-13)


def test_chunked_float32_matches_plain() -> None:
    a, b = _pair(40, 16, seed=9, dtype=torch.float32)
    plain = info_nce(a, b, 0.05)
    chunked = info_nce(a, b, 0.05, chunk_size=16)
    torch.testing.assert_close(chunked, plain, rtol=1e-5, atol=1e-5)
    for g_chunked, g_plain in zip(_grads(chunked, a, b), _grads(plain, a, b), strict=True):
        torch.testing.assert_close(g_chunked, g_plain, rtol=1e-4, atol=1e-6)


def test_module_chunked_learnable_temperature_matches_plain() -> None:
    a, b = _pair(11, 6, seed=10)
    plain_fn = InfoNCE(0.1, learnable=True).double()
    chunked_fn = InfoNCE(0.1, learnable=True, chunk_size=4).double()
    plain_fn(a, b).loss.backward()
    chunked_fn(a, b).loss.backward()
    torch.testing.assert_close(chunked_fn.log_logit_scale.grad, plain_fn.log_logit_scale.grad, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize(("chunk_size", "full_matrix_kept"), [(None, True), (8, False)])
def test_chunked_graph_keeps_no_full_logit_matrix(chunk_size: int | None, full_matrix_kept: bool) -> None:
    n, d = 64, 4
    a, b = _pair(n, d, seed=12, dtype=torch.float32)
    saved_sizes: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved_sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        info_nce(a, b, 0.1, chunk_size=chunk_size)
    assert (max(saved_sizes) >= n * n) == full_matrix_kept


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 17),
    d=st.integers(1, 6),
    chunk_size=st.integers(1, 20),
    temperature=st.floats(0.02, 3.0),
    seed=st.integers(0, 2**16),
)
def test_chunked_equals_plain_property(n: int, d: int, chunk_size: int, temperature: float, seed: int) -> None:
    a, b = _pair(n, d, seed=seed)
    plain = info_nce(a, b, temperature)
    chunked = info_nce(a, b, temperature, chunk_size=chunk_size)
    assert torch.isfinite(chunked)
    torch.testing.assert_close(chunked, plain, rtol=1e-12, atol=1e-12)
    for g_chunked, g_plain in zip(_grads(chunked, a, b), _grads(plain, a, b), strict=True):
        torch.testing.assert_close(g_chunked, g_plain, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_zero_rows_give_a_finite_loss_and_gradients(chunk_size: int | None) -> None:
    a = torch.zeros(4, 8, requires_grad=True)  # e.g. an all-zero embedding: normalises to zero, not NaN
    b = torch.randn(4, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss = info_nce(a, b, 0.1, chunk_size=chunk_size)
    assert loss.item() == pytest.approx(math.log(4))  # every logit is 0: no pair is preferred
    assert all(torch.isfinite(g).all() for g in _grads(loss, a, b))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_chunked_matches_plain(dtype: torch.dtype) -> None:
    a, b = _pair(37, 16, seed=13, dtype=dtype)
    plain = info_nce(a, b, 0.07)
    chunked = info_nce(a, b, 0.07, chunk_size=8)
    assert chunked.dtype == plain.dtype == dtype
    torch.testing.assert_close(chunked.float(), plain.float(), rtol=0.02, atol=0.02)
    for g_chunked, g_plain in zip(_grads(chunked, a, b), _grads(plain, a, b), strict=True):
        assert g_chunked.dtype == dtype
        torch.testing.assert_close(g_chunked.float(), g_plain.float(), rtol=0.05, atol=2e-3)


@pytest.mark.parametrize("learnable", [False, True])
def test_module_state_dict_round_trip(learnable: bool) -> None:
    trained = InfoNCE(0.1, learnable=learnable)
    with torch.no_grad():
        trained.log_logit_scale.fill_(math.log(30.0))
    fresh = InfoNCE(0.5, learnable=learnable)
    fresh.load_state_dict(trained.state_dict())
    assert fresh.temperature == pytest.approx(1 / 30.0)
    assert "learnable=" + str(learnable) in repr(fresh)
