"""The anchor never trains: optimizer steps through a loss that uses it leave it bit-identical."""

from __future__ import annotations

import torch
from torch import nn

from bindcore.anchor import load_anchor, tiny_anchor_config

TINY = tiny_anchor_config(embed_dim=16, image_size=16, patch_size=8, width=32, layers=1, heads=2)


class _Student(nn.Module):
    """A trainable encoder bound to the anchor; the anchor is a registered submodule on purpose, so a
    careless ``.train()``/``.parameters()`` on the parent reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = load_anchor(arch=TINY, seed=11)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 16))

    def forward(self, images: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        z_student = nn.functional.normalize(self.encoder(images), dim=-1)
        z_image = self.anchor.encode_image(images)
        z_text = self.anchor.encode_text(token_ids)
        logits = z_student @ z_image.T / 0.07
        target = torch.arange(len(images))
        # The anchor's outputs enter the loss twice: as the positive targets and as an extra term.
        return nn.functional.cross_entropy(logits, target) + (z_student * z_text).sum(-1).mean()


def test_anchor_is_bit_identical_after_optimizer_steps() -> None:
    torch.manual_seed(0)
    student = _Student()
    before = {k: v.clone() for k, v in student.anchor.state_dict().items()}
    # Worst case: every parameter, the anchor's included, is handed to an optimizer with weight decay.
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-2, weight_decay=0.1)
    student.train()
    assert student.training and student.encoder.training
    assert not student.anchor.training and not any(m.training for m in student.anchor.modules())

    images = torch.randn(4, 3, 16, 16)
    token_ids = torch.zeros(4, 77, dtype=torch.long)
    token_ids[:, 0], token_ids[:, 1], token_ids[:, 2] = 49406, torch.arange(4) + 320, 49407
    encoder_before = student.encoder[1].weight.clone()
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss = student(images, token_ids)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    assert not torch.equal(student.encoder[1].weight, encoder_before), "the trainable part must have trained"
    assert losses[-1] < losses[0]
    for key, value in student.anchor.state_dict().items():
        assert torch.equal(value, before[key]), f"anchor tensor {key} changed"
    for name, param in student.anchor.named_parameters():
        assert param.grad is None, f"anchor parameter {name} received a gradient"
        assert not param.requires_grad
    assert not student.anchor.training


def test_anchor_outputs_carry_no_autograd_history() -> None:
    anchor = load_anchor(arch=TINY)
    images = torch.randn(2, 3, 16, 16, requires_grad=True)
    out = anchor.encode_image(images)
    assert not out.requires_grad and out.grad_fn is None
    anchor.train(True)
    assert not anchor.training
    # Usable as a constant inside a differentiable expression (inference tensors would not be).
    (images.flatten(1)[:, :16] * out).sum().backward()
    assert images.grad is not None


def test_anchor_refuses_to_be_unfrozen() -> None:
    anchor = load_anchor(arch=TINY)
    try:
        anchor.requires_grad_(True)
    except RuntimeError as error:
        assert "frozen" in str(error)
    else:
        raise AssertionError("requires_grad_(True) must be refused")
    assert not any(p.requires_grad for p in anchor.parameters())
