"""CLIP-pretraining of a small open_clip model on (image, caption) pairs: the toy demo's stand-in for OpenCLIP's
web pretraining, before the model is frozen as the anchor."""

from __future__ import annotations

import math
import sys

import numpy as np
import torch
from torch import Tensor, nn

from bindcore.loss import info_nce_with_stats


def pretrain_clip(model: nn.Module, images: Tensor, captions: list[list[Tensor]], *, steps: int, batch_size: int,
                  lr: float, weight_decay: float, warmup_steps: int, seed: int, progress: bool = True) -> nn.Module:
    """Train ``model`` (an open_clip CLIP) in place with CLIP's loss (:func:`bindcore.loss.info_nce_with_stats` with
    the model's learnable logit scale); ``captions[i]`` are token rows of image i.

    AdamW (no decay on gains, biases and embeddings), linear warmup then cosine decay, logit scale clamped at
    100 as CLIP does. Batches are drawn from ``numpy.random.default_rng(seed)``. Returns the model in eval mode.
    """
    from tqdm import tqdm

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": other, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98))
    rng = np.random.default_rng(seed)
    count = images.shape[0]
    bar = tqdm(range(steps), desc="pretrain anchor", disable=not progress, dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 15)
    model.train()
    for step in bar:
        rate = lr * min(1.0, (step + 1) / max(1, warmup_steps))
        if step >= warmup_steps:
            done = (step - warmup_steps) / max(1, steps - warmup_steps)
            rate = lr * 0.5 * (1 + math.cos(math.pi * done))
        for group in optimizer.param_groups:
            group["lr"] = rate
        batch = rng.choice(count, size=min(batch_size, count), replace=False)
        tokens = torch.stack([captions[i][rng.integers(len(captions[i]))] for i in batch])
        # The project's one InfoNCE; never gathered: only one process pretrains.
        loss = info_nce_with_stats(model.encode_image(images[torch.as_tensor(batch)]), model.encode_text(tokens),
                                   logit_scale=model.logit_scale.exp(), gather=False).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


__all__ = ["pretrain_clip"]
