"""Shared building blocks: attention equals torch's MultiheadAttention (the layout ImageBind uses)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bindcore.nn import Attention, PatchEncoder, ProjectionHead, Transformer, fold_clips, mean_of_clips


@pytest.mark.parametrize("add_bias_kv", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_attention_matches_torch_multihead_attention(add_bias_kv, masked):
    torch.manual_seed(0)
    dim, heads, length = 32, 4, 7
    ours = Attention(dim, heads, add_bias_kv=add_bias_kv)
    ref = nn.MultiheadAttention(dim, heads, add_bias_kv=add_bias_kv)
    ref.load_state_dict(ours.state_dict())  # identical key names: in_proj_*, bias_k/v, out_proj
    x = torch.randn(3, length, dim)
    mask = torch.full((length, length), float("-inf")).triu(1) if masked else None
    expected = ref(x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), need_weights=False,
                   attn_mask=mask)[0].transpose(0, 1)
    torch.testing.assert_close(ours(x, mask), expected, atol=1e-5, rtol=1e-5)


def test_transformer_drop_path_is_linear_and_checkpointing_keeps_values():
    torch.manual_seed(0)
    trunk = Transformer(16, 3, 2, drop_path=0.4)
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in trunk.blocks]
    assert rates == pytest.approx([0.0, 0.2, 0.4])
    trunk.eval()
    x = torch.randn(2, 5, 16, requires_grad=True)
    plain = trunk(x)
    trunk.grad_checkpointing = True
    trunk.train()
    for block in trunk.blocks:
        block.drop_path = nn.Identity()
    checkpointed = trunk(x)
    torch.testing.assert_close(plain, checkpointed)
    checkpointed.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_patch_encoder_and_head_shapes():
    encoder = PatchEncoder(in_chans=1, input_size=(32, 48), patch_size=16, stride=10, width=24, depth=1,
                           num_heads=2)
    assert encoder.grid == (2, 4) and encoder.pos_embed.shape == (1, 9, 24)
    features = encoder(torch.randn(5, 1, 32, 48))
    z = ProjectionHead(24, 12)(features)
    assert z.shape == (5, 12)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(5))
    with pytest.raises(ValueError, match="spatial size"):
        encoder(torch.randn(1, 1, 30, 48))


def test_clip_helpers():
    x, lead = fold_clips(torch.randn(2, 3, 1, 4, 4), item_dims=3)
    assert x.shape == (6, 1, 4, 4) and lead == (2, 3)
    clips = torch.nn.functional.normalize(torch.randn(2, 3, 8), dim=-1)
    mean = mean_of_clips(clips)
    torch.testing.assert_close(mean.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(mean[0], torch.nn.functional.normalize(clips[0].sum(0), dim=0))


def test_patch_encoder_takes_rectangular_patches_for_a_signal():
    """A (B, C, T) signal is the map (B, C, 1, T) cut into (1, p) patches: one token per p time steps."""
    encoder = PatchEncoder(in_chans=3, input_size=(1, 40), patch_size=(1, 8), stride=(1, 8), width=16, depth=1,
                           num_heads=2)
    assert encoder.grid == (1, 5) and encoder.proj.weight.shape == (16, 3, 1, 8)
    assert encoder.pos_embed.shape == (1, 6, 16)
    assert encoder(torch.randn(2, 3, 1, 40)).shape == (2, 16)
    with pytest.raises(ValueError, match="smaller than patch size"):
        PatchEncoder(in_chans=3, input_size=(1, 40), patch_size=8, stride=8, width=16, depth=1, num_heads=2)


def test_square_patch_side_and_pair_build_the_same_encoder():
    """An int side means (side, side): same parameters, same draws from the generator, same output."""
    def build(patch_size, stride):
        torch.manual_seed(0)
        return PatchEncoder(in_chans=2, input_size=(24, 32), patch_size=patch_size, stride=stride, width=16,
                            depth=1, num_heads=2).eval()

    side, pair = build(8, 4), build((8, 8), (4, 4))
    assert side.grid == pair.grid == (5, 7)
    for (name, a), (_, b) in zip(side.state_dict().items(), pair.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    x = torch.randn(2, 2, 24, 32)
    assert torch.equal(side(x), pair(x))
