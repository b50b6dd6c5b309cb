"""``Transformer(first_token_only=True)``: the CLS-only last block equals the full stack's token 0."""

from __future__ import annotations

import pytest
import torch

from bindcore.nn import PatchEncoder
from bindcore.nn.transformer import Transformer


@pytest.mark.parametrize(("depth", "bias_kv", "masked"), [(1, True, False), (3, True, True), (2, False, False)])
def test_first_token_only_equals_token_zero_of_the_full_stack(depth: int, bias_kv: bool, masked: bool) -> None:
    torch.manual_seed(0)
    trunk = Transformer(24, depth, 4, add_bias_kv=bias_kv, pre_norm=True).eval()
    x = torch.randn(3, 9, 24)
    mask = torch.randn(9, 9) if masked else None
    with torch.no_grad():
        full = trunk(x, mask)
        first = trunk(x, mask, first_token_only=True)
    assert first.shape == (3, 1, 24)
    torch.testing.assert_close(first[:, 0], full[:, 0], atol=1e-6, rtol=0)


def test_first_token_only_gives_the_same_gradients_with_checkpointing() -> None:
    torch.manual_seed(0)
    trunk = Transformer(16, 2, 2, add_bias_kv=True).train()
    x = torch.randn(2, 5, 16)
    trunk(x)[:, 0].square().sum().backward()
    want = [p.grad.clone() for p in trunk.parameters()]
    trunk.zero_grad()
    trunk.grad_checkpointing = True
    trunk(x, first_token_only=True)[:, 0].square().sum().backward()
    for got, expected in zip((p.grad for p in trunk.parameters()), want, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_patch_encoder_reads_token_zero_of_the_full_trunk() -> None:
    torch.manual_seed(0)
    encoder = PatchEncoder(in_chans=1, input_size=(16, 16), patch_size=8, stride=8, width=16, depth=2,
                           num_heads=2).eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), encoder.trunk(encoder.tokens(x))[:, 0], atol=1e-6, rtol=0)
